"""What the atheris fuzz targets share: the one-line error check and the libFuzzer driver."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


def check_message(exc: Exception, path: Path) -> None:
    """A library error must be one line that starts with the path."""
    message = str(exc)
    if not message.startswith(f"{path}: ") or "\n" in message or "\r" in message:
        raise AssertionError(f"badly formed error message: {message!r}") from None


def fuzz(what: str, work: Path, seeds: Callable[[], dict[str, bytes]], target: Callable[[bytes], None]) -> None:
    """Run libFuzzer on `target` with the command line's flags; without a corpus folder, `work/corpus`
    (seeded on first use); crashes go to `work` unless `-artifact_prefix=` says otherwise."""
    import atheris

    args = sys.argv[1:]
    corpora = [a for a in args if not a.startswith("-")]
    if not corpora:
        corpora = [str(work / "corpus")]
        args.append(corpora[0])
    if not any(a.startswith("-artifact_prefix=") for a in args):
        args.append(f"-artifact_prefix={work}/")
    work.mkdir(parents=True, exist_ok=True)
    corpus = Path(corpora[0])
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        for name, data in seeds().items():
            (corpus / name).write_bytes(data)
    print(f"fuzzing {what}: corpus {corpus}, crashes in {work}", file=sys.stderr)
    atheris.Setup([sys.argv[0], *args], target)
    atheris.Fuzz()
