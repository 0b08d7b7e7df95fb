"""Mutation spot-check: each entry below is a small, plausible bug; applied alone to a copy of the
tree, it must make the tests that guard that code fail ("killed"). A surviving mutant means a
regression there would pass the suite unnoticed.

The working tree (tracked files and untracked ones git does not ignore) is copied into a
temporary directory and the tests run there with the copy's `src/` folders first on PYTHONPATH,
so the installed editable packages are shadowed and the real tree is never touched (checked
before any mutant runs). Exit status 1 when a mutant survives, a snippet is not found exactly
once (the list has fallen behind the code: update it), or the unmutated tests fail.

    python scripts/mutants.py            # all mutants
    python scripts/mutants.py -k stamp   # those whose name contains "stamp"
    nox -s mutants
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    original: str
    mutated: str
    tests: tuple[str, ...]


MUTANTS = [
    Mutant(
        "sentences not shifted by their piece's offset",
        "src/ser_core/analysis.py",
        "self.sentences += _shifted(part.sentences, start)",
        "self.sentences += part.sentences",
        ("tests/test_sentences.py::test_sentences_of_later_pieces_are_in_file_time",),
    ),
    Mutant(
        "sentence emotion from the whole piece, not its own span",
        "src/ser_core/analysis.py",
        "spans = np.array([[group[0].start, group[-1].end] for group in groups])",
        "spans = np.array([[0.0, len(frames) / backend.frame_rate] for group in groups])",
        (
            "tests/test_sentences.py::test_each_sentence_takes_the_emotion_of_its_own_audio",
            "tests/test_hooks.py::test_hook_ser_register_transcribers",
        ),
    ),
    Mutant(
        "short run merged into the farther neighbour",
        "src/ser_core/default_plugins/timeline.py",
        "target = min(neighbours, key=",
        "target = max(neighbours, key=",
        ("tests/test_timeline_merge.py",),
    ),
    Mutant(
        "CSV confidence column empty",
        "src/ser_core/exports.py",
        'row.emotion or "",\n                    _num(row.confidence),',
        'row.emotion or "",\n                    "",',
        ("tests/test_exports_format.py",),
    ),
    Mutant(
        "SRT/VTT stamp cut, not rounded, to the millisecond",
        "src/ser_core/exports.py",
        "ms = round(seconds * 1000)",
        "ms = int(seconds * 1000)",
        ("tests/test_exports_format.py",),
    ),
    Mutant(
        "zero-length cue guard removed",
        "src/ser_core/exports.py",
        "_stamp(max(row.end, row.start + 0.001), sep)",
        "_stamp(row.end, sep)",
        ("tests/test_exports_format.py",),
    ),
    Mutant(
        "row confidence not weighted by word duration",
        "src/ser_core/alignment.py",
        "weights = [max(w.end - w.start, 1e-3) for w in words]",
        "weights = [1.0 for w in words]",
        ("tests/test_timeline_rows.py",),
    ),
    Mutant(
        "overall probabilities not weighted by segment duration",
        "src/ser_core/analysis.py",
        "weights = seconds if seconds.sum() > 0 else np.ones_like(seconds)",
        "weights = np.ones_like(seconds)",
        ("tests/test_speech_status.py",),
    ),
    Mutant(
        "overall label from the mean probability, not the largest share of speech",
        "src/ser_core/analysis.py",
        "key=lambda k: (share[k], mean[k])",
        "key=lambda k: (mean[k], share[k])",
        ("tests/test_speech_status.py",),
    ),
    Mutant(
        "speech without words left out of the timeline",
        "src/ser_core/alignment.py",
        "return sorted(rows + _uncovered_rows(rows, segments, gap), key=lambda row: (row.start, row.end))",
        "return rows",
        ("tests/test_alignment.py", "tests/test_exports.py"),
    ),
    Mutant(
        "a label on a file without speech",
        "src/ser_core/analysis.py",
        "    if not segments:\n        return None, {}, {}\n",
        "    if not segments:\n        segments = [Segment(start=0, end=1, label=labels[0], confidence=1.0, "
        "probabilities={labels[0]: 1.0})]\n",
        ("tests/test_speech_status.py",),
    ),
    Mutant(
        "tones taken for speech",
        "src/ser_core/vad.py",
        "return held / total > TONE_SHARE",
        "return False",
        ("tests/test_speech_status.py",),
    ),
]


def copy_tree(dest: Path) -> None:
    """The working tree as it is now: tracked files plus untracked ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def environment(tree: Path) -> dict[str, str]:
    paths = [tree / "src", *sorted(tree.glob("plugins/*/src"))]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a restored file must never be read from a stale .pyc
    return env


def check_shadowing(tree: Path, env: dict[str, str]) -> None:
    """ser_core and the built-in backend plugin must be imported from the copy, not the install."""
    code = "import ser_core, ser_backend_handcrafted; print(ser_core.__file__); print(ser_backend_handcrafted.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True)
    files = out.stdout.split()
    if out.returncode or len(files) != 2 or not all(Path(f).is_relative_to(tree) for f in files):
        sys.exit(f"the copy does not shadow the installed packages: {out.stdout}{out.stderr}")


def run_tests(tree: Path, env: dict[str, str], tests: tuple[str, ...], timeout: float) -> tuple[str, str]:
    """(outcome, detail): outcome "pass", "fail" (detail: the first failing test) or "timeout"."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        out = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", f"over {timeout:g} s"
    if out.returncode == 0:
        return "pass", ""
    text = out.stdout + out.stderr
    if out.returncode in (1, 2):  # tests failed, or collection failed (say, a mutant that does not import)
        failed = re.search(r"^(?:FAILED|ERROR) (\S+)", text, re.MULTILINE)
        return "fail", failed.group(1) if failed else text.strip().splitlines()[-1]
    sys.exit(f"pytest could not run {' '.join(tests)} (exit {out.returncode}):\n{text[-2000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="match", default="", help="only mutants whose name contains this")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per test run")
    parser.add_argument("--keep", action="store_true", help="keep the copied tree (its path is printed)")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.match.lower() in m.name.lower()]
    if not chosen:
        sys.exit(f"no mutant matches {args.match!r}")
    tree = Path(tempfile.mkdtemp(prefix="ser-mutants-")).resolve()
    try:
        copy_tree(tree)
        env = environment(tree)
        check_shadowing(tree, env)
        missing = []
        for m in chosen:
            found = (tree / m.file).read_text().count(m.original) if (tree / m.file).is_file() else 0
            if found != 1:
                missing.append(f"{m.name}: snippet found {found} times in {m.file}: {m.original!r}")
        selected = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        outcome, detail = run_tests(tree, env, selected, args.timeout)
        if outcome != "pass":
            print(f"the unmutated tests do not pass ({detail}); nothing to compare mutants with")
            return 1
        survivors = 0
        for m in chosen:
            path = tree / m.file
            source = path.read_text()
            if source.count(m.original) != 1:
                continue
            path.write_text(source.replace(m.original, m.mutated))
            started = time.monotonic()
            try:
                outcome, detail = run_tests(tree, env, m.tests, args.timeout)
            finally:
                path.write_text(source)
            killed = outcome != "pass"
            survivors += not killed
            verdict = f"killed by {detail}" if killed else "SURVIVED"
            print(
                f"{'ok ' if killed else 'BAD'} {m.name} ({m.file}, {time.monotonic() - started:.0f} s): {verdict}",
                flush=True,
            )
        for line in missing:
            print(f"BAD {line}")
        print(
            f"{len(chosen) - survivors - len(missing)} killed, {survivors} survived, {len(missing)} not found"
        )
        return 1 if survivors or missing else 0
    finally:
        if args.keep:
            print(f"copy kept in {tree}")
        else:
            shutil.rmtree(tree, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
