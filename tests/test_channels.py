"""Simulated recording channels: what each one does to a signal, measured on the signal."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from ser_core.pipeline.audio import block_db
from ser_core.pipeline.bandwidth import BandStats
from ser_core.training import channels

from .conftest import SR, voice


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    quiet = np.zeros(int(0.4 * SR), np.float32)
    return np.concatenate([quiet, voice(180.0, 2.0, 0.3, 4.0, seed=3), quiet])


def _stats(signal: np.ndarray) -> BandStats:
    stats = BandStats()
    stats.add(signal)
    return stats


def _high_band_db(signal: np.ndarray) -> float:
    powers = _stats(signal).powers
    return 10 * np.log10((powers[1] + powers[2]) / powers.sum())


@pytest.mark.parametrize("name", [n for n in channels.CONDITIONS if n != "first-1s"])
def test_every_condition_is_deterministic_and_keeps_the_length(speech, name) -> None:
    talkers = [voice(120.0, 1.5, 0.2, 3.0, seed=s) for s in (7, 8, 9, 10, 11)]
    once = channels.apply(name, speech, np.random.default_rng(5), talkers)
    again = channels.apply(name, speech, np.random.default_rng(5), talkers)
    assert once.dtype == np.float32 and len(once) == len(speech)
    np.testing.assert_array_equal(once, again)
    if name != "clean":
        assert not np.allclose(once, speech)


def test_telephone_and_gsm_remove_the_band_above_4_khz(speech) -> None:
    assert _high_band_db(speech) > -35
    for name in ("telephone", "gsm"):
        coded = channels.apply(name, speech, np.random.default_rng(0))
        assert _high_band_db(coded) < -40, name
        # still the same speech: its loudness follows the input's, 50 ms block by block
        envelope = [block_db(x, SR // 20) for x in (coded, speech)]
        assert np.corrcoef(*envelope)[0, 1] > 0.9


def test_noise_is_added_at_the_asked_snr(speech) -> None:
    for name, snr in (("white-15dB", 15.0), ("pink-15dB", 15.0)):
        noisy = channels.apply(name, speech, np.random.default_rng(1))
        noise = noisy - speech
        measured = 10 * np.log10(channels.speech_power(speech) / np.mean(noise.astype(np.float64) ** 2))
        assert measured == pytest.approx(snr, abs=0.1)


def test_a_room_spreads_energy_into_the_pause_after_the_speech(speech) -> None:
    wet = channels.apply("reverb", speech, np.random.default_rng(2))
    tail = slice(int(2.45 * SR), int(2.6 * SR))  # just after the voice ends at 2.4 s
    assert np.mean(wet[tail] ** 2) > 100 * np.mean(speech[tail] ** 2) + 1e-9
    assert channels.speech_power(wet) == pytest.approx(channels.speech_power(speech), rel=0.05)


def test_levels_and_crops(speech) -> None:
    quiet = channels.apply("peak-25dBFS", speech, np.random.default_rng(0))
    assert 20 * np.log10(np.abs(quiet).max()) == pytest.approx(-25.0, abs=0.01)
    clipped = channels.apply("clipped", speech, np.random.default_rng(0))
    assert np.abs(clipped).max() == pytest.approx(1.0) and np.mean(np.abs(clipped) >= 0.999) > 0.01
    first = channels.apply("first-1s", speech, np.random.default_rng(0))
    assert len(first) == SR and np.abs(first[:160]).max() > 0.01  # starts where the speech starts


def test_codec_batches_match_one_by_one(speech) -> None:
    signals = [speech, speech[::-1].copy(), 0.5 * speech]
    batched = channels.apply_many("telephone", signals, [0, 1, 2])
    for one, signal in zip(batched, signals, strict=True):
        alone = channels.apply("telephone", signal, np.random.default_rng(0))
        assert np.corrcoef(one, alone)[0, 1] > 0.99


def test_training_copies_are_seeded_and_vary(speech) -> None:
    talkers = [voice(120.0, 1.5, 0.2, 3.0, seed=s) for s in (7, 8)]
    copies = channels.training_copies([speech] * 12, list(range(12)), talkers)
    again = channels.training_copies([speech] * 12, list(range(12)), talkers)
    for a, b in zip(copies, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(len(c) == len(speech) for c in copies)
    distinct = {round(float(np.corrcoef(c, speech)[0, 1]), 3) for c in copies}
    assert len(distinct) >= 6  # different channels, not one transformation


def test_unknown_condition_names_the_known_ones(speech) -> None:
    with pytest.raises(channels.ChannelError, match="telephone"):
        channels.apply("underwater", speech, np.random.default_rng(0))


def test_bandwidth_warnings(speech) -> None:
    assert _stats(speech).warnings() == []
    (warning,) = _stats(channels.telephone(speech)).warnings(better="accurate")
    assert warning.startswith("narrowband") and "accurate profile" in warning
    # energy up to 6 kHz but none above 7 kHz: a low-rate codec
    from scipy.signal import butter, sosfilt

    low = sosfilt(butter(12, 6500, fs=SR, output="sos"), speech).astype(np.float32)
    (warning,) = _stats(low).warnings()
    assert warning.startswith("band-limited")
    assert BandStats().warnings() == []


def test_mp3_at_32_kbps_is_heavily_compressed_and_128_is_not() -> None:
    from ser_core.pipeline.audio import load_audio

    from .conftest import espeak

    spoken = load_audio(espeak("The quick brown fox jumps over the lazy dog near the river bank.", Path(tempfile.mkdtemp()) / "s.wav"))
    assert _stats(spoken).warnings() == []
    (warning,) = _stats(channels.mp3(spoken, 32)).warnings()
    assert warning.startswith("heavily compressed")
    assert _stats(channels.mp3(spoken, 128)).warnings() == []


def test_speech_crops_lie_inside_the_speech(speech) -> None:
    crops = [channels.speech_crop(speech, np.random.default_rng(seed)) for seed in range(20)]
    assert all(SR <= len(c) <= 2 * SR for c in crops)
    assert len({len(c) for c in crops}) > 10  # random lengths
    assert all(channels.speech_power(c) > 0.5 * channels.speech_power(speech) for c in crops)
    short = speech[: int(1.2 * SR)]  # 0.4 s of silence, 0.8 s of voice: the whole extent
    assert len(channels.speech_crop(short, np.random.default_rng(0))) < SR
