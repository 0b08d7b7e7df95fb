"""emotion2vec through FunASR's real loading path, on a tiny random model of the same format."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from ser_backend_emotion2vec.backend import map_head
from ser_backend_emotion2vec.tiny import build_tiny_emotion2vec

import ser_core
from ser_core.errors import ArtifactError, ConsentError
from ser_core.plugins import manager as plugins
from ser_core.plugins.lookup import get_backend, get_backend_by_id
from ser_core.settings import get_settings

SR = 16000


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_emotion2vec(tmp_path_factory.mktemp("tiny_e2v") / "model")


@pytest.fixture
def env(monkeypatch, tmp_path, tiny_dir):
    for name in ("models", "cache", "data"):
        monkeypatch.setenv(f"SER_{name.upper()}_DIR", str(tmp_path / name))
    monkeypatch.setenv("SER_ACCURATE_RESEARCH_MODEL_ID", str(tiny_dir))
    monkeypatch.setenv("SER_ENABLE_RESTRICTED_BACKENDS", "true")
    monkeypatch.setenv("SER_VAD", "energy")
    monkeypatch.setenv("SER_TRANSCRIPT", "false")
    _reset()
    yield
    _reset()


def _reset():
    get_settings.cache_clear()
    get_backend_by_id.cache_clear()
    plugins.reset()


def tone(f0, seconds, loud, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    # Harmonics of a gliding pitch, pulsed at a syllable rate: a pure tone is not speech to the VAD.
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))) / SR
    source = sum(0.7**k * np.sin(k * phase) for k in range(1, 9)) / 2.5
    return (loud * source * (1 + np.sin(2 * np.pi * 3 * t)) / 2 + 0.003 * rng.standard_normal(len(t))).astype(
        np.float32
    )


def test_frames_at_50_hz_and_pooling(env, tiny_dir):
    backend = get_backend("accurate-research")
    assert (backend.backend_id, backend.model_id) == ("emotion2vec", str(tiny_dir))
    frames = backend.frames(tone(200, 3.0, 0.5, 0))
    assert frames.shape == (149, 32)  # floor((48000 - 400) / 320) + 1 frames of the tiny model's 32 dims
    assert backend.pool(frames).shape == (backend.dim,) == (64,)
    assert backend.frames(np.zeros(100, np.float32)).shape == (1, 32)  # shorter than the receptive field


def test_head_mapped_onto_core_labels(env):
    probs = get_backend("accurate-research").head(tone(200, 2.0, 0.5, 1))
    assert set(probs) == {"angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised"}
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    assert map_head(["生气/angry", "其他/other", "难过/sad"], [0.5, 0.3, 0.2]) == pytest.approx(
        {"angry": 0.5 / 0.7, "sad": 0.2 / 0.7}
    )


def test_train_and_analyze_through_the_core(env, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for s, speaker in enumerate(("03", "08", "09")):
        for take in range(2):
            sf.write(corpus / f"{speaker}a0{take + 1}Wa.wav", tone(240 + 10 * s, 1.5, 0.6, s * 10 + take), SR)
            sf.write(
                corpus / f"{speaker}a0{take + 1}Ta.wav", tone(110 + 5 * s, 1.5, 0.05, s * 10 + take + 5), SR
            )
    trained = ser_core.train([corpus], profile="accurate-research", out=tmp_path / "m.npz", holdout=0)
    clip = tmp_path / "clip.wav"
    sf.write(
        clip,
        np.concatenate([tone(245, 2.5, 0.6, 50), np.zeros(SR, np.float32), tone(112, 2.5, 0.05, 51)]),
        SR,
    )
    result = ser_core.analyze(clip, profile="accurate-research", model=trained.path)
    assert result.backend_id == "emotion2vec" and len(result.segments) == 2
    assert set(result.probabilities) == {"angry", "sad"}


def test_consent_is_required(env, monkeypatch):
    monkeypatch.delenv("SER_ENABLE_RESTRICTED_BACKENDS")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(""))
    _reset()
    with pytest.raises(ConsentError, match="licence emotion2vec-model-card"):
        get_backend("accurate-research")


def test_offline_hub_id_and_bad_directory(env, monkeypatch, tmp_path):
    monkeypatch.setenv("SER_ACCURATE_RESEARCH_MODEL_ID", "iic/emotion2vec_plus_large")
    _reset()
    with pytest.raises(ArtifactError, match=r"not available locally .* SER_ACCURATE_RESEARCH_MODEL_ID"):
        get_backend("accurate-research")
    monkeypatch.setenv("SER_ACCURATE_RESEARCH_MODEL_ID", str(tmp_path))
    _reset()
    with pytest.raises(ArtifactError, match="not an emotion2vec model directory"):
        get_backend("accurate-research")


def test_own_head_works_without_training(env, tmp_path):
    backend = get_backend("accurate-research")
    signal = tone(220, 3.0, 0.5, 7)
    # The shipped-by-the-weights head, as a core artifact: same numbers as FunASR's own head.
    model = ser_core.pipeline.analysis.get_model("accurate-research")
    model.check_backend(backend, "accurate-research")
    ours = dict(
        zip(model.labels, model.predict_proba(backend.pool(backend.frames(signal))[None])[0], strict=True)
    )
    theirs = backend.head(signal)
    assert ours == pytest.approx(theirs, abs=1e-5)
    # ... so analyze runs with no model argument and no training, over time too.
    path = tmp_path / "x.wav"
    sf.write(path, np.concatenate([signal, np.zeros(SR, np.float32), tone(120, 3.0, 0.1, 8)]), SR)
    result = ser_core.analyze(path, profile="accurate-research")
    assert result.model == str(model.path) and len(result.segments) == 2
    assert set(result.probabilities) == {
        "angry",
        "disgust",
        "fearful",
        "happy",
        "neutral",
        "sad",
        "surprised",
    }


def test_long_audio_in_chunks(env):
    frames = get_backend("accurate-research").frames(tone(180, 65.0, 0.4, 9))
    assert abs(len(frames) - 65 * 50) <= 2 and np.isfinite(frames).all()


def test_weights_that_do_not_match_the_config_are_refused(env, monkeypatch, tmp_path):
    folder = build_tiny_emotion2vec(tmp_path / "bad")
    config = (folder / "config.yaml").read_text()
    (folder / "config.yaml").write_text(config.replace("embed_dim: 32", "embed_dim: 48", 1))
    monkeypatch.setenv("SER_ACCURATE_RESEARCH_MODEL_ID", str(folder))
    _reset()
    with pytest.raises(ArtifactError, match=r"weights do not match config\.yaml"):
        get_backend("accurate-research")


def test_without_funasr_the_profile_is_not_installed(env, monkeypatch):
    import importlib.util
    import sys

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "funasr" else real(name, *a)
    )
    monkeypatch.delitem(sys.modules, "ser_backend_emotion2vec")
    _reset()
    with pytest.raises(ser_core.errors.ProfileError, match="pip install ser-backend-emotion2vec"):
        get_backend("accurate-research")
    skipped = {s.name: s.reason for s in plugins.skipped_plugins()}
    assert "needs funasr" in skipped["emotion2vec"]
