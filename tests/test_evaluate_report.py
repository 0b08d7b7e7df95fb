"""`ser evaluate --model`: the profile asked for is the one scored, the report names the model file
and profile, and scoring speakers the model was trained on is flagged (issue 11, item 5)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import ser_core
from ser_core.cli import app
from ser_core.models.artifacts import Model, load_model
from ser_core.plugins import manager as plugins
from ser_core.plugins import registries
from ser_core.plugins.lookup import get_backend_by_id

from .conftest import SR, STYLES, voice

runner = CliRunner()

FAKE_MEDIUM = """
from ser_core.contract.hookspecs import hookimpl
from ser_backend_handcrafted import HandcraftedBackend

class Medium(HandcraftedBackend):
    backend_id = "hf_xlsr"

@hookimpl
def ser_register_backends(register):
    register("hf_xlsr", Medium, model_id=Medium.model_id)

@hookimpl
def ser_default_models(register):
    register("medium", {path!r})
"""


@pytest.fixture
def medium_default(tmp_path, monkeypatch, corpus):
    """A plugin that serves the medium profile (handcrafted features under another id) and ships a
    default model for it, trained here on the tiny corpus; the real hf plugin is kept out."""
    shipped = tmp_path / "medium-default.npz"
    dist = tmp_path / "ser_fake_medium-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ser-fake-medium\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ser_core]\nfakemedium = ser_fake_medium\n")
    (tmp_path / "ser_fake_medium.py").write_text(FAKE_MEDIUM.format(path=str(shipped)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SER_PLUGINS", "handcrafted,fakemedium")
    plugins.reset()
    get_backend_by_id.cache_clear()
    ser_core.train([corpus], profile="medium", out=shipped)
    yield shipped
    get_backend_by_id.cache_clear()


def test_evaluate_default_model_of_the_profile_asked_for(medium_default, corpus):
    args = ["evaluate", "--model", "default", "--profile", "medium", "-d", str(corpus), "--no-progress"]
    result = runner.invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == str(medium_default) and report["profile"] == "medium"
    assert list(report)[:2] == ["model", "profile"]  # the JSON report's header
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0] == f"model {medium_default} (profile medium)"


def test_evaluate_refuses_a_model_of_another_profile(trained_model, corpus):
    args = ["evaluate", "--model", str(trained_model), "--profile", "accurate", "-d", str(corpus)]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 4 and "trained for profile 'fast', not 'accurate'" in result.stderr
    two = runner.invoke(app, [*args, "--profile", "fast", "--no-progress"], env={"COLUMNS": "250"})
    assert two.exit_code == 2 and "at most one --profile" in two.output


def _other_speakers(root):
    """EMOVO-layout files of two voices: speakers the tiny model has never heard."""
    for s, speaker in enumerate(("f1", "m2")):
        for label, code in (("angry", "rab"), ("sad", "tri")):
            style = STYLES[label]
            for take in range(2):
                signal = voice(style["f0"] * (0.9 + 0.2 * s), 1.5, style["loudness"],
                               style["syllables_per_s"], 500 + 10 * s + take, style["breath"])
                path = root / speaker / f"{code}-{speaker}-b{take + 1}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, signal, SR)
    return root


def test_training_speakers_recorded_and_overlap_flagged(trained_model, corpus, tmp_path):
    assert load_model(trained_model).meta.training_speakers == ["emodb:03", "emodb:08", "emodb:09", "emodb:10"]
    report = tmp_path / "same.json"
    args = ["evaluate", "--model", str(trained_model), "-d", str(corpus), "--no-progress"]
    result = runner.invoke(app, [*args, "--report", str(report)])
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "4 speaker(s) / 32 file(s) (100% of the data)" in warning[0]
    overlap = json.loads(report.read_text())["training_overlap"]
    assert (overlap["known"], overlap["speakers"], overlap["files"], overlap["share"]) == (True, 4, 32, 1.0)

    other = _other_speakers(tmp_path / "emovo")
    result = runner.invoke(app, ["evaluate", "--model", str(trained_model), "-d", str(other), "--no-progress"])
    assert result.exit_code == 0 and "warning" not in result.stderr
    overlap = ser_core.evaluate_model(trained_model, [other])["training_overlap"]
    assert (overlap["speakers"], overlap["files"], overlap["share"]) == (0, 0, 0.0)


def test_old_artifact_without_training_speakers_loads_and_overlap_is_unknown(trained_model, corpus, tmp_path):
    """An artifact written before the field existed: no key in its metadata, checksum as it was."""
    fitted = load_model(trained_model)
    new = Model(fitted.meta.model_copy(update={"training_speakers": None}), fitted.classifier)
    new.save(tmp_path / "new.npz")
    old = tmp_path / "old.npz"
    with np.load(tmp_path / "new.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    del meta["training_speakers"]
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    old.write_bytes(buffer.getvalue())
    assert "training_speakers" not in zipfile.ZipFile(old).read("__meta__.npy").decode("latin-1")
    assert load_model(old).meta.training_speakers is None  # the checksum still verifies
    result = runner.invoke(app, ["evaluate", "--model", str(old), "-d", str(corpus), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr and "training speakers: unknown" in result.stdout
    assert ser_core.evaluate_model(old, [corpus])["training_overlap"]["known"] is False


def test_shipped_models_record_their_training_speakers():
    shipped = registries.registered("ser_default_models")["fast"].value
    speakers = load_model(shipped).meta.training_speakers
    assert speakers is not None and len(speakers) == 99
    assert {s.split(":")[0] for s in speakers} == {"emodb", "emovo", "ravdess", "ased"}
