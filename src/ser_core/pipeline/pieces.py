"""Long recordings in pieces: a stream of audio blocks cut at quiet moments, so analysis holds one
piece at a time and its memory does not grow with the recording's length."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from ser_core.pipeline.audio import LOUDNESS_STEP, SAMPLE_RATE, block_db

#: Length of the quiet stretch a cut is centred in, in loudness blocks (6 x 50 ms).
_QUIET_BLOCKS = 6


def pieces(
    blocks: Iterable[np.ndarray], seconds: float, sample_rate: int = SAMPLE_RATE
) -> Iterator[tuple[int, np.ndarray]]:
    """(offset in samples, samples) of consecutive pieces of at most `seconds` (at least 1 s),
    together the whole stream. Each cut is at the quietest 0.3 s of the last third of a piece, so
    a cut rarely falls inside a word; offsets are whole loudness blocks (50 ms)."""
    limit = max(int(seconds * sample_rate), sample_rate) // LOUDNESS_STEP * LOUDNESS_STEP
    buffer: list[np.ndarray] = []
    held = offset = 0
    for block in blocks:
        buffer.append(block)
        held += len(block)
        if held <= limit:
            continue
        data = np.concatenate(buffer)
        while len(data) > limit:
            cut = quiet_cut(data[:limit])
            yield offset, data[:cut]
            offset += cut
            data = data[cut:]
        buffer, held = [data], len(data)
    if held:
        yield offset, np.concatenate(buffer)


def quiet_cut(signal: np.ndarray) -> int:
    """Sample index (a whole number of loudness blocks) at the centre of the quietest 0.3 s in the
    last third of `signal`."""
    db = block_db(signal, LOUDNESS_STEP)
    first = max(1, len(db) * 2 // 3)
    if first >= len(db):
        return len(db) * LOUDNESS_STEP or len(signal)
    smooth = np.convolve(db, np.ones(_QUIET_BLOCKS) / _QUIET_BLOCKS, mode="same")
    return (first + int(np.argmin(smooth[first:]))) * LOUDNESS_STEP
