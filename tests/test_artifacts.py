"""Model artifacts: round trip without pickle, and every fail-closed case."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

import ser_core
from ser_core.errors import ArtifactError
from ser_core.models.adaptation import SourceStats
from ser_core.models.artifacts import Model, load_model
from ser_core.plugins.lookup import get_backend


def _rewrite(src, dst, change):
    """Copy an artifact, letting `change(name, bytes) -> bytes` edit its members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, change(info.filename, zin.read(info.filename)))
    return dst


def _meta_member(raw: bytes) -> dict:
    return json.loads(np.load(io.BytesIO(raw)).tobytes())


def _with_meta(raw: bytes, **update) -> bytes:
    meta = {**_meta_member(raw), **update}
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    return buffer.getvalue()


def test_round_trip_predicts_identically(trained_model, tmp_path, corpus):
    model = load_model(trained_model)
    copy = Model(model.meta, model.classifier, adapted=model.adapted).save(tmp_path / "copy.npz")
    again = load_model(copy)
    x = np.random.default_rng(0).standard_normal((5, model.meta.feature_dim)).astype(np.float32)
    np.testing.assert_array_equal(model.predict_proba(x), again.predict_proba(x))
    source = SourceStats.of(x)
    np.testing.assert_array_equal(model.predict_proba(x, source), again.predict_proba(x, source))
    plain = load_model(Model(model.meta, model.classifier).save(tmp_path / "plain.npz"))
    assert plain.adapted is None and plain.meta.source_norm is None
    meta = again.meta
    assert meta.sha256 and meta.ser_core_version == ser_core.__version__
    assert meta.training["corpora"] == {"emodb": 32} and meta.metrics["uar"] >= 0.9
    again.check_backend(get_backend("fast"), "fast")


def test_no_pickle_anywhere(trained_model):
    with np.load(trained_model, allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)


def test_tampered_array_fails_closed(trained_model, tmp_path):
    def flip(name, raw):
        if name == "coef.npy":
            raw = bytearray(raw)
            raw[-3] ^= 0xFF
            return bytes(raw)
        return raw

    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_model(_rewrite(trained_model, tmp_path / "t.npz", flip))


def test_edited_metadata_fails_closed(trained_model, tmp_path):
    bad = _rewrite(
        trained_model,
        tmp_path / "m.npz",
        lambda n, raw: _with_meta(raw, labels=["sad", "angry"]) if n == "__meta__.npy" else raw,
    )
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_model(bad)


def test_object_array_is_refused(trained_model, tmp_path):
    def pickled(name, raw):
        if name == "coef.npy":
            buffer = io.BytesIO()
            np.save(buffer, np.array([{"x": 1}], dtype=object), allow_pickle=True)
            return buffer.getvalue()
        return raw

    with pytest.raises(ArtifactError, match="not a ser_core model"):
        load_model(_rewrite(trained_model, tmp_path / "p.npz", pickled))


@pytest.mark.parametrize(
    "content, cause",
    [
        (b"", "not a ser_core model"),
        (b"\x00garbage" * 10, "not a ser_core model"),
        (None, "cannot read model"),
    ],
)
def test_unreadable_files(tmp_path, content, cause):
    path = tmp_path / "model.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ArtifactError, match=cause) as info:
        load_model(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_backend_mismatch_fails_closed(trained_model):
    model = load_model(trained_model)
    backend = get_backend("fast")
    with pytest.raises(ArtifactError, match="profile"):
        model.check_backend(backend, "accurate")
    for field, value, what in [
        ("backend_model_id", "handcrafted-v0", "backend model mismatch"),
        ("feature_dim", 3, "feature dimension mismatch"),
        ("backend_id", "hf_whisper", "backend mismatch"),
    ]:
        other = Model(model.meta.model_copy(update={field: value}), model.classifier, trained_model)
        with pytest.raises(ArtifactError, match=what):
            other.check_backend(backend)


def test_analyze_refuses_model_of_other_profile(trained_model, tmp_path, long_recording):
    model = load_model(trained_model)
    other = Model(model.meta.model_copy(update={"profile": "accurate"}), model.classifier)
    path = other.save(tmp_path / "acc.npz")
    with pytest.raises(ArtifactError, match="trained for profile 'accurate'"):
        ser_core.analyze(long_recording[0], model=path)
