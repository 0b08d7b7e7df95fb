"""Coverage-guided fuzzing of `ser_core.pipeline.audio.load_audio` with atheris (libFuzzer).

Each input is one byte choosing an extension libsndfile owns, then the file's bytes. Any exception
other than `SerError` is a crash, and so is an error message that is not one line starting with the
path; libFuzzer's memory limit (`-rss_limit_mb`, 2048 by default) catches unbounded allocations.

    python scripts/fuzz_audio.py -max_total_time=60 [CORPUS_DIR ...] [libFuzzer flags]

Without a corpus folder, `$TMPDIR/ser-fuzz/audio` is used (seeded with small valid files, kept
between runs); crashes are written there as `crash-*` unless `-artifact_prefix=` says otherwise.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import atheris
from fuzzing import check_message, fuzz

with atheris.instrument_imports(include=["ser_core", "soundfile"]):
    import numpy as np
    import soundfile as sf

    from ser_core.errors import SerError
    from ser_core.pipeline.audio import load_audio

EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".au", ".caf", ".w64", ".rf64", ".oga", ".snd")
WORK = Path(tempfile.gettempdir()) / "ser-fuzz" / "audio"
_path = WORK / "input"


def seeds() -> dict[str, bytes]:
    """Small valid files in every container the loader reads, one to three channels."""
    out = {}
    t = np.arange(4000) / 8000
    mono = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    cases = [
        ("WAV", "PCM_16", 1, 0),
        ("WAV", "FLOAT", 2, 0),
        ("FLAC", "PCM_16", 1, 0),
        ("FLAC", "PCM_24", 3, 0),
        ("OGG", "VORBIS", 1, 2),
        ("AIFF", "PCM_16", 2, 3),
        ("AU", "ULAW", 1, 4),
        ("CAF", "ALAC_16", 1, 5),
        ("W64", "PCM_U8", 1, 6),
        ("RF64", "PCM_32", 1, 7),
    ]
    for fmt, subtype, channels, ext in cases:
        buffer = io.BytesIO()
        data = np.stack([mono * (0.5 + 0.2 * c) for c in range(channels)], axis=1)
        sf.write(buffer, data, 8000, format=fmt, subtype=subtype)
        out[f"{fmt}-{subtype}-{channels}"] = bytes([ext]) + buffer.getvalue()
    return out


def test_one_input(data: bytes) -> None:
    if not data:
        return
    path = _path.with_suffix(EXTENSIONS[data[0] % len(EXTENSIONS)])
    path.write_bytes(data[1:])
    try:
        signal = load_audio(path, max_seconds=60.0)
    except SerError as exc:
        check_message(exc, path)
        return
    finally:
        path.unlink(missing_ok=True)
    if signal.dtype != np.float32 or signal.ndim != 1 or not signal.size or not np.isfinite(signal).all():
        raise AssertionError(f"bad signal: {signal.dtype} {signal.shape}")
    if signal.size > 60.1 * 16000:
        raise AssertionError(f"longer than the limit: {signal.size} samples")


def main() -> None:
    fuzz("load_audio", WORK, seeds, test_one_input)


if __name__ == "__main__":
    main()
