"""The Hugging Face backends through their real loading path with tiny, randomly initialised models
written with `save_pretrained` and loaded by id from their directory: the wav2vec2 family for the
medium profile, and a transformers Whisper directory for the accurate one."""

from __future__ import annotations

import numpy as np
import pytest
from ser_backend_hf.settings import HFSettings, parse_layers
from ser_backend_hf.xlsr import HFAudioBackend

from ser_core.errors import ArtifactError

transformers = pytest.importorskip("transformers")


#: A tiny randomly initialised encoder of the wav2vec2 family (same keywords for each family).
TINY = dict(
    hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
    conv_dim=(16, 16, 16, 16, 16, 16, 16), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(**TINY)
    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    transformers.Wav2Vec2Model(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(folder)
    return folder


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    # Harmonics of a gliding pitch, pulsed at a syllable rate: a pure tone is not speech to the VAD.
    phase = 2 * np.pi * np.cumsum(180 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))) / 16000
    source = sum(0.7**k * np.sin(k * phase) for k in range(1, 9))
    return (0.15 * source * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(len(t))).astype(
        np.float32
    )


def test_frames_and_pooling_from_a_saved_model(tiny_wav2vec2):
    backend = HFAudioBackend(
        hf=HFSettings(medium_model_id=str(tiny_wav2vec2), medium_layers="1-3", hf_device="cpu")
    )
    frames = backend.frames(speechlike(2.0))
    assert frames.shape == (99, 3 * 32)  # 50 Hz (20 ms stride, 25 ms receptive field) x 3 layers
    vector = backend.pool(frames)
    assert vector.shape == (backend.dim,) == (192,) and np.isfinite(vector).all()
    # Layer choice changes the features; the same input gives the same output (eval mode).
    other = HFAudioBackend(
        hf=HFSettings(medium_model_id=str(tiny_wav2vec2), medium_layers="0", hf_device="cpu")
    )
    assert other.dim == 64 and not np.allclose(other.frames(speechlike(2.0)), frames[:, :32])
    np.testing.assert_allclose(backend.frames(speechlike(2.0)), frames, atol=1e-5)
    assert backend.config()["layers"] == [1, 2, 3]
    assert backend.frames(np.zeros(100, np.float32)).shape[1] == 96  # shorter than the receptive field


def test_long_audio_is_chunked_and_stitched(tiny_wav2vec2):
    hf = HFSettings(medium_model_id=str(tiny_wav2vec2), medium_layers="3", hf_device="cpu")
    whole = HFAudioBackend(hf=hf)
    signal = speechlike(12.0, seed=1)
    reference = whole.frames(signal)
    cut = HFAudioBackend(hf=hf.model_copy(update={"hf_chunk_seconds": 5.0, "hf_chunk_overlap": 2.0}))
    stitched = cut.frames(signal)
    assert abs(len(stitched) - len(reference)) <= 1
    n = min(len(stitched), len(reference))
    cosine = (stitched[:n] * reference[:n]).sum(1) / (
        np.linalg.norm(stitched[:n], axis=1) * np.linalg.norm(reference[:n], axis=1)
    )
    print(f"stitched vs whole: mean frame cosine {cosine.mean():.4f}, min {cosine.min():.4f}")
    assert cosine.mean() > 0.9


def test_hub_id_offline_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ArtifactError, match=r"not available locally .* set SER_MEDIUM_MODEL_ID"):
        HFAudioBackend(hf=HFSettings(medium_model_id="facebook/wav2vec2-xls-r-300m", hf_device="cpu"))


def test_parse_layers():
    assert (
        parse_layers("2-6") == (2, 3, 4, 5, 6) and parse_layers("4") == (4,) and parse_layers("1,3") == (1, 3)
    )
    with pytest.raises(ValueError):
        parse_layers("")


def test_equal_length_clips_are_batched_with_the_same_numbers(tiny_wav2vec2):
    backend = HFAudioBackend(
        hf=HFSettings(medium_model_id=str(tiny_wav2vec2), medium_layers="2-3", hf_device="cpu")
    )
    signals = [speechlike(1.0, seed) for seed in range(3)] + [speechlike(0.7, 5)]
    for signal, vector in zip(signals, backend.embed_many(signals), strict=True):
        np.testing.assert_allclose(vector, backend.embed(signal), rtol=1e-4, atol=1e-4)


FAMILY = {
    "hubert": ("HubertConfig", "HubertModel"),
    "wavlm": ("WavLMConfig", "WavLMModel"),
    "data2vec-audio": ("Data2VecAudioConfig", "Data2VecAudioModel"),
}


@pytest.mark.parametrize("family", sorted(FAMILY))
def test_other_families_load_through_automodel(family, tmp_path):
    import torch

    config_class, model_class = (getattr(transformers, name) for name in FAMILY[family])
    torch.manual_seed(0)
    model_class(config_class(**TINY)).save_pretrained(tmp_path / family)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(
        tmp_path / family
    )
    backend = HFAudioBackend(
        hf=HFSettings(medium_model_id=str(tmp_path / family), medium_layers="1-2", hf_device="cpu")
    )
    assert type(backend.model) is model_class
    frames = backend.frames(speechlike(2.0))
    assert frames.shape == (99, 2 * 32) and np.isfinite(frames).all()
    assert backend.embed(speechlike(2.0)).shape == (backend.dim,) == (128,)


def test_train_evaluate_analyze_with_the_medium_profile(tiny_wav2vec2, tmp_path, ser_env):
    import json

    import soundfile as sf
    from typer.testing import CliRunner

    from ser_core.cli import app

    ser_env(MEDIUM_MODEL_ID=tiny_wav2vec2, MEDIUM_LAYERS="1-3", HF_DEVICE="cpu")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for s, speaker in enumerate(("03", "08", "09")):
        for take in range(3):
            high = speechlike(1.5, 10 * s + take) * 2.0
            low = speechlike(1.5, 50 + 10 * s + take)[::2].repeat(2) * 0.2  # an octave lower, quieter
            sf.write(corpus / f"{speaker}a0{take + 1}Wa.wav", np.clip(high, -1, 1), 16000)
            sf.write(corpus / f"{speaker}a0{take + 1}Ta.wav", low, 16000)
    cli = CliRunner()
    model = tmp_path / "medium.npz"
    trained = cli.invoke(
        app, ["train", "--profile", "medium", "-d", str(corpus), "--out", str(model), "--no-progress"]
    )
    assert trained.exit_code == 0, trained.output
    evaluated = cli.invoke(
        app, ["evaluate", "--profile", "medium", "-d", str(corpus), "-f", "json", "--no-progress"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["profile"] == "medium" and report["cv"] == "leave-one-speaker-out"
    assert report["backend_model_id"] == str(tiny_wav2vec2) and len(report["folds"]) == 3
    clip = tmp_path / "clip.wav"
    sf.write(clip, np.clip(speechlike(3.0, 99) * 2.0, -1, 1), 16000)
    analysed = cli.invoke(app, ["analyze", str(clip), "--profile", "medium", "--model", str(model)])
    assert analysed.exit_code == 0, analysed.output
    result = json.loads(analysed.stdout)
    assert result["profile"] == "medium" and result["backend_id"] == "hf_xlsr"
    assert result["label"] in {"angry", "sad"} and result["segments"]


def test_a_transformers_whisper_directory_serves_the_accurate_profile(tmp_path, tiny_wav2vec2):
    """The accurate profile with a hub id or directory (not a pack): AutoModel's real loading path
    on a tiny random Whisper written with `save_pretrained`; a non-Whisper model is refused."""
    import torch
    from ser_backend_hf.whisper_encoder import WhisperEncoderBackend

    from ser_core.settings import Settings

    torch.manual_seed(0)
    config = transformers.WhisperConfig(
        vocab_size=64, d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
        max_source_positions=1500, max_target_positions=32, pad_token_id=0, bos_token_id=1,
        eos_token_id=2, decoder_start_token_id=1,
    )  # fmt: skip
    transformers.WhisperModel(config).save_pretrained(tmp_path / "tiny-whisper")
    settings = Settings(cache_dir=tmp_path / "cache")
    hf = HFSettings(accurate_model_id=str(tmp_path / "tiny-whisper"), accurate_layers="1-2", hf_device="cpu")
    backend = WhisperEncoderBackend(settings, hf)
    frames = backend.frames(speechlike(2.0))
    assert frames.shape == (100, 2 * 32) and np.isfinite(frames).all()  # 50 Hz, unpadded
    long = backend.frames(speechlike(35.0))  # past one 30 s window: chunks stitched at 50 Hz
    assert abs(len(long) - 35 * 50) <= 1
    not_whisper = hf.model_copy(update={"accurate_model_id": str(tiny_wav2vec2)})
    with pytest.raises(ArtifactError, match="is not a Whisper model"):
        WhisperEncoderBackend(settings, not_whisper)
