"""The handcrafted backend's features on signals with known properties."""

from __future__ import annotations

import numpy as np
import pytest
from ser_backend_handcrafted import HandcraftedBackend
from ser_backend_handcrafted.features import LLD_NAMES, HandcraftedFeatures

from .conftest import SR, voice

features = HandcraftedFeatures()


def test_shapes_and_names():
    lld = features.frames(voice(150, 1.0, 0.3, 3, 0))
    assert lld.shape == (100, len(LLD_NAMES)) and lld.dtype == np.float32
    assert features.pool(lld).shape == (features.dim,) and len(features.names) == features.dim


@pytest.mark.parametrize("f0", [90.0, 150.0, 260.0])
def test_pitch_of_a_voice(f0):
    lld = features.frames(voice(f0, 1.5, 0.3, 3, 1, breath=0.005))
    column = lld[:, LLD_NAMES.index("f0_semitones")]
    voiced = column[np.isfinite(column)]
    assert voiced.size > 40
    # the synthetic contour has +-5 % vibrato around f0: about +-0.85 semitone
    assert abs(np.median(voiced) - 12 * np.log2(f0 / 27.5)) < 0.6


def test_noise_is_mostly_unvoiced():
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    column = features.frames(noise)[:, LLD_NAMES.index("f0_semitones")]
    assert np.isfinite(column).mean() < 0.1


def test_louder_is_louder():
    quiet, loud = (
        features.frames(voice(150, 1.0, gain, 3, 2))[:, LLD_NAMES.index("log_energy")] for gain in (0.02, 0.2)
    )
    assert np.median(loud) - np.median(quiet) == pytest.approx(20.0, abs=1.0)


@pytest.mark.parametrize("n_samples", [0, 1, 159, 160, 400])
def test_tiny_inputs_give_finite_vectors(n_samples):
    signal = np.random.default_rng(3).standard_normal(n_samples).astype(np.float32) * 0.1
    lld = features.frames(signal)
    vector = features.pool(lld)
    assert vector.shape == (features.dim,) and np.isfinite(vector).all()
    assert np.isfinite(features.pool(lld[:1])).all() and np.isfinite(features.pool(lld[:0])).all()


def test_windows_pool_from_frames_of_the_whole_signal():
    backend = HandcraftedBackend()
    signal = np.concatenate([voice(240, 2.0, 0.5, 5, 4), voice(110, 2.0, 0.05, 2, 5)])
    frames = backend.frames(signal)
    windows = backend.embed_windows(frames, np.array([[0.0, 2.0], [2.0, 4.0]]))
    np.testing.assert_allclose(windows[0], backend.pool(frames[:200]))
    f0_mean = features.names.index("f0_semitones_mean")
    assert windows[0, f0_mean] - windows[1, f0_mean] == pytest.approx(12 * np.log2(240 / 110), abs=1.0)


def test_deterministic():
    signal = voice(150, 1.0, 0.3, 3, 6)
    np.testing.assert_array_equal(
        features.pool(features.frames(signal)), features.pool(features.frames(signal))
    )


def test_a_window_is_levelled_like_a_training_clip():
    """A 2 s window of a long recording is pooled as that stretch would be alone (a training
    clip), whatever else is in the recording: a loud stretch elsewhere must not make it look quiet.
    (handcrafted-v3 levelled the whole piece, so windows drifted from the training clips.)"""
    backend = HandcraftedBackend()
    quiet = voice(140, 2.0, 0.03, 3, 7)
    loud = voice(220, 2.0, 0.6, 5, 8)  # 26 dB louder
    alone = backend.pool(backend.frames(quiet))
    in_recording = backend.embed_windows(backend.frames(np.concatenate([quiet, loud])), np.array([[0.0, 2.0]]))[0]
    level_dependent = [
        i
        for i, name in enumerate(features.names)
        if name.startswith(("log_energy_", "loudness_", "mfcc0_", "logmel")) and name.endswith(("_mean", "_p50"))
    ]
    assert len(level_dependent) > 40
    np.testing.assert_allclose(in_recording[level_dependent], alone[level_dependent], rtol=0.02, atol=0.3)
    # ... and a recording's level no longer moves its features (the same voice 20 dB quieter).
    softer = backend.pool(backend.frames(quiet * 0.1))
    np.testing.assert_allclose(softer[level_dependent], alone[level_dependent], rtol=0.02, atol=0.3)
