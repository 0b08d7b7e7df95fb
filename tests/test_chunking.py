"""Chunked encoding of long audio: frames stitched back in time order."""

from __future__ import annotations

import numpy as np

from ser_core.contract.encoders import chunked


def test_chunked_keeps_time_alignment():
    signal = np.arange(16000 * 10, dtype=np.float32)

    def encode(x):  # one "frame" per 20 ms holding the time of its first sample
        return x[::320, None] / 16000

    frames = chunked(signal, encode, 50.0, chunk_seconds=3.0, overlap_seconds=1.0)
    assert frames.shape == (500, 1)
    np.testing.assert_allclose(frames[:, 0], np.arange(500) * 0.02, atol=1e-6)
