"""Hardening: odd path names, unwritable and full disks, symlinks, and processes racing for one file.

Everything runs the real pipeline on synthetic voices. A full disk is simulated by making the atomic
writer's temporary file run out of space halfway (`OSError(ENOSPC)`), and, where a filesystem can be
mounted (root), also by a real tiny tmpfs.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import ser_core
from ser_core import atomic_files as ser_io
from ser_core.cli import app
from ser_core.errors import AudioError, OutputError, TranscriberError
from ser_core.models.artifacts import Model, load_model
from ser_core.pipeline.model_packs import MODEL_FILES, Pack, pack_dir
from ser_core.runs import batch

from .conftest import SR, voice

runner = CliRunner()
ODD_NAMES = ["with spaces", "accents éàçüñ", "CJK 中文音频", "emoji 🎙️😀", "-leading dash"]
ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"


def write_clip(path: Path, seed: int = 1, angry: bool = True) -> Path:
    """Three seconds of a synthetic angry (high, loud) or sad (low, quiet) voice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    style = (240.0, 3.0, 0.5, 5.0, seed, 0.05) if angry else (110.0, 3.0, 0.08, 2.0, seed, 0.01)
    sf.write(path, voice(*style), SR)
    return path


def one_line_error(output: str, path: Path, cause: str) -> str:
    """The CLI's error line: exactly one, naming `path`, with `cause`."""
    lines = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, output
    assert lines[0].startswith(f"error: {path}: ") and cause in lines[0], lines[0]
    return lines[0]


def leftovers(*folders: Path) -> list[Path]:
    """Temporary files of the atomic writer (and staging folders) left anywhere under `folders`."""
    return [
        p
        for folder in folders
        if folder.exists()
        for p in folder.rglob(".*")
        if p.suffix in {".tmp", ".probe"} or p.is_dir()
    ]


# --- unicode, spaces and leading dashes in paths --------------------------------------------------------


@pytest.mark.parametrize("name", ODD_NAMES)
def test_analyze_api_and_cli_with_odd_names(tmp_path: Path, trained_model: Path, name: str) -> None:
    folder = tmp_path / name
    source = write_clip(folder / f"{name}.wav")
    plain = write_clip(tmp_path / "plain.wav")
    result = ser_core.analyze(source, model=trained_model, transcript=False)
    reference = ser_core.analyze(plain, model=trained_model, transcript=False)
    assert result.path == str(source) and result.label == "angry"
    assert result.probabilities == reference.probabilities and result.segments == reference.segments

    out = folder / f"{name} out.json"
    args = ["analyze", str(source), "--model", str(trained_model), "--no-transcript", "-o", str(out)]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text(encoding="utf-8"))["path"] == str(source)


def test_relative_names_with_a_leading_dash_after_double_dash(
    tmp_path: Path, trained_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_clip(tmp_path / "-clip é.wav")
    monkeypatch.chdir(tmp_path)
    args = ["analyze", "--model", str(trained_model), "--no-transcript", "-f", "csv", "-o", "-out 中.csv"]
    done = runner.invoke(app, [*args, "--", "-clip é.wav"])
    assert done.exit_code == 0, done.output
    rows = (tmp_path / "-out 中.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("path,") and rows[1].startswith("-clip é.wav,")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_ffmpeg_input_with_leading_dash_and_unicode(tmp_path: Path, trained_model: Path) -> None:
    wav = write_clip(tmp_path / "clip.wav")
    mp3 = tmp_path / "-ffmpeg 中文 🎙️.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(wav), f"file:{mp3}"], check=True)
    assert ser_core.analyze(mp3, model=trained_model, transcript=False).label == "angry"


def test_batch_with_odd_names(tmp_path: Path, trained_model: Path) -> None:
    inputs = tmp_path / "inputs 输入 -x"
    for i, name in enumerate(ODD_NAMES):
        write_clip(inputs / name / f"{name}.wav", seed=i)
    out = tmp_path / "-outputs é 🎙️"
    args = ["analyze", str(inputs), "--recursive", "--output-dir", str(out), "--model", str(trained_model)]
    done = runner.invoke(app, [*args, "--no-transcript", "--no-progress", "-f", "json"])
    assert done.exit_code == 0, done.output
    report = json.loads((out / batch.REPORT_NAME).read_text(encoding="utf-8"))
    assert sorted(Path(r["path"]).relative_to(inputs) for r in report["analysed"]) == sorted(
        Path(name) / f"{name}.wav" for name in ODD_NAMES
    )
    for name in ODD_NAMES:
        data = json.loads((out / name / f"{name}.json").read_text(encoding="utf-8"))
        assert data["path"] == str(inputs / name / f"{name}.wav") and data["label"] == "angry"


def test_train_and_evaluate_with_odd_dataset_folders(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = tmp_path / "-корпус 中文 🎙️ é"
    shutil.copytree(corpus, dataset)
    model = tmp_path / "models ü" / "fast 模型.npz"
    done = runner.invoke(app, ["train", "-d", str(dataset), "--out", str(model), "--no-progress"])
    assert done.exit_code == 0, done.output
    assert load_model(model).meta.training["datasets"] == [str(dataset)]
    assert json.loads(model.with_name("fast 模型.report.json").read_text(encoding="utf-8"))["model"] == str(
        model
    )

    monkeypatch.chdir(tmp_path)  # a relative dataset name starting with "-" is still the option's value
    report = tmp_path / "rapport é 😀.json"
    args = ["evaluate", "-d", dataset.name, "--report", report.name, "--no-progress", "-f", "json"]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert json.loads(report.read_text(encoding="utf-8"))["uar"] >= 0.9


# --- unwritable outputs ---------------------------------------------------------------------------------


def _mount(*args: str) -> bool:
    if shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write to: mode 0o555, or, as root (who ignores modes), a read-only tmpfs
    mounted on it."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not _mount("-t", "tmpfs", "-o", "ro,size=64k", "ser-test-ro", str(folder)):
        pytest.skip("running as root, and no read-only filesystem can be mounted")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.fixture(params=["read-only", "under-a-file"])
def unwritable(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """(a folder that cannot be written into, the expected cause): a read-only folder, or a regular
    file used as a folder (which works for every user)."""
    if request.param == "read-only":
        folder = request.getfixturevalue("readonly_dir")
        return folder, "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    return blocker, "Not a directory"  # mkdir alone would say "File exists"


def _spy(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[object]:
    """Record the calls of `owner.name` (still calling through)."""
    calls: list[object] = []
    real = getattr(owner, name)

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return calls


def _nothing_written(folder: Path) -> None:
    if folder.is_file():
        assert folder.read_text() == "not a folder"
    else:
        assert list(folder.iterdir()) == []


def test_unwritable_analyze_output(tmp_path: Path, trained_model: Path, unwritable: tuple[Path, str]) -> None:
    folder, cause = unwritable
    clip = write_clip(tmp_path / "clip.wav")
    out = folder / "out.json"
    done = runner.invoke(app, ["analyze", str(clip), "--model", str(trained_model), "-o", str(out)])
    assert done.exit_code == OutputError.exit_code
    one_line_error(done.output, out, f"cannot write ({cause})")
    _nothing_written(folder)


def test_unwritable_batch_fails_before_the_work(
    tmp_path: Path, trained_model: Path, unwritable: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, cause = unwritable
    write_clip(tmp_path / "in" / "clip.wav")
    analysed = _spy(monkeypatch, batch, "run_group")
    args = ["analyze", str(tmp_path / "in"), "--output-dir", str(folder), "--model", str(trained_model)]
    done = runner.invoke(app, [*args, "--no-progress"])
    assert done.exit_code == OutputError.exit_code
    one_line_error(done.output, folder / batch.REPORT_NAME, f"cannot write ({cause})")
    assert analysed == []
    _nothing_written(folder)


def test_unwritable_train_and_evaluate_fail_before_the_work(
    corpus: Path, unwritable: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, cause = unwritable
    extracted = _spy(monkeypatch, ser_core.training.api, "load_features")
    out = folder / "model.npz"
    done = runner.invoke(app, ["train", "-d", str(corpus), "--out", str(out), "--no-progress"])
    assert done.exit_code == OutputError.exit_code
    one_line_error(done.output, out, f"cannot write ({cause})")
    report = folder / "report.json"
    done = runner.invoke(app, ["evaluate", "-d", str(corpus), "--report", str(report), "--no-progress"])
    assert done.exit_code == OutputError.exit_code
    one_line_error(done.output, report, f"cannot write ({cause})")
    assert extracted == []
    _nothing_written(folder)


def test_unwritable_model_save(trained_model: Path, unwritable: tuple[Path, str]) -> None:
    folder, cause = unwritable
    model = load_model(trained_model)
    with pytest.raises(OutputError) as info:
        Model(model.meta, model.classifier).save(folder / "copy.npz")
    assert str(info.value) == f"{folder / 'copy.npz'}: cannot write ({cause})"
    _nothing_written(folder)


# --- a full disk ----------------------------------------------------------------------------------------


class _FullHandle:
    """A temporary file on a disk that fills up halfway through the write."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, data: bytes) -> int:
        self._handle.write(data[: len(data) // 2])
        self._handle.flush()  # the first half really lands in the temporary file
        raise OSError(errno.ENOSPC, ENOSPC)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _FullHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


class _Module:
    """A module with some functions replaced."""

    def __init__(self, module: Any, **replaced: Any) -> None:
        self._module = module
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


class _FullDisk:
    """The temporary file of a target whose name matches `pattern` runs out of space (installed as
    `ser_core.atomic_files`'s `tempfile.mkstemp` and `os.fdopen`). `hits` lists the targets that did."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.hits: list[str] = []
        self._full: set[int] = set()

    def mkstemp(self, *args: Any, prefix: str = "", **kwargs: Any) -> tuple[int, str]:
        fd, name = tempfile.mkstemp(*args, prefix=prefix, **kwargs)
        target = prefix[1:-1]  # the writer's prefix is ".<target name>."
        if fnmatch.fnmatch(target, self.pattern):
            self.hits.append(target)
            self._full.add(fd)
        return fd, name

    def fdopen(self, fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = os.fdopen(fd, *args, **kwargs)
        if fd in self._full:
            self._full.discard(fd)  # the number is free again once the file is closed
            return _FullHandle(handle)
        return handle


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], _FullDisk]:
    def fill(pattern: str) -> _FullDisk:
        disk = _FullDisk(pattern)
        monkeypatch.setattr(ser_io, "os", _Module(os, fdopen=disk.fdopen))
        monkeypatch.setattr(ser_io, "tempfile", _Module(tempfile, mkstemp=disk.mkstemp))
        return disk

    return fill


def test_full_disk_atomic_write_text(tmp_path: Path, full_disk: Callable[[str], _FullDisk]) -> None:
    disk = full_disk("*.txt")
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("previous")
    for target in (old, new):
        with pytest.raises(OutputError) as info:
            ser_io.atomic_write_text(target, "x" * 100_000)
        assert str(info.value) == f"{target}: cannot write ({ENOSPC})"
    assert disk.hits == ["old.txt", "new.txt"]
    assert old.read_text() == "previous" and not new.exists()
    assert sorted(tmp_path.iterdir()) == [old] and leftovers(tmp_path) == []


def test_full_disk_model_save_keeps_the_old_model(
    trained_model: Path, tmp_path: Path, full_disk: Callable[[str], _FullDisk]
) -> None:
    target = tmp_path / "model.npz"
    shutil.copy(trained_model, target)
    before = target.read_bytes()
    model = load_model(trained_model)
    full_disk("*.npz")
    with pytest.raises(OutputError) as info:
        Model(model.meta, model.classifier).save(target)
    assert str(info.value) == f"{target}: cannot write ({ENOSPC})"
    assert target.read_bytes() == before and load_model(target).labels == model.labels
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("pattern", ["*.npz", "*"])
def test_full_disk_cli_train(
    corpus: Path, tmp_path: Path, trained_model: Path, full_disk: Callable[[str], _FullDisk], pattern: str
) -> None:
    """Only the model cannot be written, or nothing can (the feature cache neither: a warning)."""
    out = tmp_path / "models" / "fast.npz"
    out.parent.mkdir()
    shutil.copy(trained_model, out)
    before = out.read_bytes()
    disk = full_disk(pattern)
    done = runner.invoke(app, ["train", "-d", str(corpus), "--out", str(out), "--no-progress"])
    assert done.exit_code == OutputError.exit_code, done.output
    one_line_error(done.output, out, f"cannot write ({ENOSPC})")
    assert "fast.npz" in disk.hits and out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["fast.npz"]
    assert leftovers(tmp_path, ser_core.settings.get_settings().cache_dir) == []


def test_full_disk_batch_records_the_failure_and_goes_on(
    tmp_path: Path, trained_model: Path, full_disk: Callable[[str], _FullDisk]
) -> None:
    for name in ("one", "two", "three"):
        write_clip(tmp_path / "in" / f"{name}.wav")
    out = tmp_path / "out"
    disk = full_disk("two.json")
    args = ["analyze", str(tmp_path / "in"), "--output-dir", str(out), "--model", str(trained_model)]
    done = runner.invoke(app, [*args, "--no-transcript", "--no-progress"])
    assert done.exit_code == 3, done.output
    assert disk.hits == ["two.json"]
    one_line_error(done.output, out / "two.json", f"cannot write ({ENOSPC})")
    assert sorted(p.name for p in out.iterdir()) == ["one.json", "ser-run-report.json", "three.json"]
    report = json.loads((out / batch.REPORT_NAME).read_text())
    assert [f["path"] for f in report["failures"]] == [str(tmp_path / "in" / "two.wav")]
    assert len(report["analysed"]) == 2 and leftovers(out) == []

    full_disk("ser-run-report.json")  # the run report itself: one line, the outputs stay
    (out / "two.json").unlink(missing_ok=True)
    (out / "one.json").unlink()
    done = runner.invoke(app, [*args, "--no-transcript", "--no-progress"])
    assert done.exit_code == OutputError.exit_code, done.output
    one_line_error(done.output, out / batch.REPORT_NAME, f"cannot write ({ENOSPC})")
    assert (out / "one.json").is_file() and (out / "two.json").is_file()
    assert json.loads((out / batch.REPORT_NAME).read_text())["failures"]  # the previous report, intact
    assert leftovers(out) == []


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 64 kB tmpfs (root only), for a disk that is really full."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=64k", "ser-test-tiny", str(folder)):
        pytest.skip("needs root and a mountable tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_really_full_disk(tmp_path: Path, trained_model: Path, tiny_fs: Path) -> None:
    target = tiny_fs / "out.json"
    target.write_text("previous")
    filler = tiny_fs / "filler"
    with pytest.raises(OSError) as info, filler.open("wb") as handle:
        while True:
            handle.write(b"\0" * 4096)
            handle.flush()
    assert info.value.errno == errno.ENOSPC
    clip = write_clip(tmp_path / "clip.wav")
    done = runner.invoke(app, ["analyze", str(clip), "--model", str(trained_model), "-o", str(target)])
    assert done.exit_code == OutputError.exit_code, done.output
    one_line_error(done.output, target, f"cannot write ({ENOSPC})")
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tiny_fs.iterdir()) == ["filler", "out.json"]


# --- symlinks -------------------------------------------------------------------------------------------


def test_symlink_to_an_audio_file(tmp_path: Path, trained_model: Path) -> None:
    real = write_clip(tmp_path / "real" / "clip.wav")
    link = tmp_path / "link é.wav"
    link.symlink_to(real)
    assert (
        ser_core.analyze(link, model=trained_model, transcript=False).probabilities
        == ser_core.analyze(real, model=trained_model, transcript=False).probabilities
    )


def test_recursive_batch_follows_linked_folders_once(tmp_path: Path, trained_model: Path) -> None:
    inputs = tmp_path / "in"
    write_clip(inputs / "a.wav")
    write_clip(tmp_path / "elsewhere" / "b.wav", angry=False)
    (inputs / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (inputs / "again").symlink_to(tmp_path / "elsewhere", target_is_directory=True)  # same folder twice
    (inputs / "broken.wav").symlink_to(tmp_path / "missing.wav")  # not a file: skipped like any non-audio
    assert [str(r) for _, r in batch.expand([inputs], recursive=True)] == ["a.wav", "again/b.wav"]
    assert [str(r) for _, r in batch.expand([inputs])] == ["a.wav"]
    out = tmp_path / "out"
    args = ["analyze", str(inputs), "--recursive", "--output-dir", str(out), "--model", str(trained_model)]
    done = runner.invoke(app, [*args, "--no-transcript", "--no-progress"])
    assert done.exit_code == 0, done.output
    assert json.loads((out / "again" / "b.json").read_text())["label"] == "sad"


def test_broken_and_looping_symlinks_are_one_line_errors(tmp_path: Path, trained_model: Path) -> None:
    broken = tmp_path / "broken é.wav"
    broken.symlink_to(tmp_path / "missing.wav")
    looping = tmp_path / "self.wav"
    looping.symlink_to(looping)
    for path, cause in (
        (broken, "no such file"),
        (looping, "cannot read file (Too many levels of symbolic links)"),
    ):
        with pytest.raises(AudioError) as info:
            ser_core.analyze(path, model=trained_model, transcript=False)
        assert str(info.value) == f"{path}: {cause}"
        done = runner.invoke(app, ["analyze", str(path), "--model", str(trained_model), "--no-transcript"])
        assert done.exit_code == AudioError.exit_code
        one_line_error(done.output, path, cause)


def test_symlink_loops_in_a_recursive_batch_end(tmp_path: Path, trained_model: Path) -> None:
    inputs = tmp_path / "in"
    write_clip(inputs / "deep" / "a.wav")
    (inputs / "loop").symlink_to(inputs, target_is_directory=True)
    (inputs / "deep" / "up").symlink_to("..", target_is_directory=True)
    (inputs / "self.wav").symlink_to(inputs / "self.wav")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "ser_core", "analyze", str(inputs), "--recursive", "--output-dir", str(out)]
    cmd += ["--model", str(trained_model), "--no-transcript", "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / batch.REPORT_NAME).read_text())
    assert [r["path"] for r in report["analysed"]] == [str(inputs / "deep" / "a.wav")]


# --- processes racing for the same files ----------------------------------------------------------------


def _race(script: str, *args: str, processes: int = 2, timeout: float = 240) -> list[str]:
    """Run `script` in `processes` Python processes released together; their stdouts."""
    go = Path(args[0]) / "go"
    prelude = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        while not Path({str(go)!r}).exists():
            time.sleep(0.005)
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", prelude + textwrap.dedent(script), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    time.sleep(0.5)  # let both import before the start
    go.touch()
    outputs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, stderr[-3000:]
        outputs.append(stdout + "\n--stderr--\n" + stderr)
    return outputs


_TRAIN = """
import ser_core
out = ser_core.train([sys.argv[2]], out=sys.argv[3])  # one file
default = ser_core.train([sys.argv[2]])  # the models dir
print(out.model.meta.sha256, default.model.meta.sha256)
"""


def test_two_processes_train_to_the_same_files(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "shared" / "model.npz"
    outputs = _race(_TRAIN, str(tmp_path), str(corpus), str(out))
    shas = [line.split("\n--stderr--")[0].split() for line in outputs]
    settings = ser_core.settings.get_settings()
    for path, column in ((out, 0), (settings.models_dir / "fast.npz", 1)):
        model = load_model(path)  # loads: checksum verified
        assert model.meta.sha256 in {sha[column] for sha in shas}
        report = json.loads(path.with_name(path.stem + ".report.json").read_text())
        assert report["model"] == str(path) and report["sha256"] in {sha[column] for sha in shas}
    assert leftovers(tmp_path, settings.models_dir, settings.cache_dir) == []


_EXTRACT = """
import numpy as np
from ser_core.plugins.lookup import get_backend
from ser_core.training.extract import extract
paths = sorted(Path(sys.argv[2]).glob("*.wav"))
out = extract(paths, get_backend("fast"))
assert out.ok.all(), out.failures
np.save(sys.argv[3] + f"-{__import__('os').getpid()}.npy", out.vectors)
"""


def test_two_processes_extract_into_the_same_feature_cache(tmp_path: Path, corpus: Path) -> None:
    from ser_core.plugins.lookup import get_backend
    from ser_core.training.extract import extract

    _race(_EXTRACT, str(tmp_path), str(corpus), str(tmp_path / "vectors"))
    results = [np.load(p) for p in sorted(tmp_path.glob("vectors-*.npy"))]
    paths = sorted(corpus.glob("*.wav"))
    backend = get_backend("fast")
    fresh = extract(paths, backend, cache=False).vectors
    assert len(results) == 2
    for vectors in results:
        np.testing.assert_array_equal(vectors, fresh)
    cache = ser_core.settings.get_settings().cache_dir
    entries = sorted((cache / "features").rglob("*.npy"))
    assert len(entries) == len(paths)
    again = extract(paths, backend)
    assert again.cache_hits == len(paths)
    np.testing.assert_array_equal(again.vectors, fresh)
    assert leftovers(cache) == []


def _synthetic_pack(root: Path, size: int = 24 << 20) -> tuple[Pack, bytes]:
    """Two importable packages holding a split `model.bin` (like the Whisper base pack), and the
    pack that names them; returns it and the joined bytes."""
    data = np.random.default_rng(0).bytes(size)
    first = root / "ser_test_pack_a" / "data"
    second = root / "ser_test_pack_b" / "data"
    for folder in (first, second):
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("")
    (first / "model.bin.part1").write_bytes(data[: size // 3])
    (second / "model.bin.part2").write_bytes(data[size // 3 :])
    for name in MODEL_FILES:
        (first / name).write_text(json.dumps({"name": name}))
    pack = Pack(
        "synthetic",
        ("ser-test-pack-a", "ser-test-pack-b"),
        (
            ("ser_test_pack_a", "data", ("model.bin.part1", *MODEL_FILES)),
            ("ser_test_pack_b", "data", ("model.bin.part2",)),
        ),
        size=size,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    return pack, data


_JOIN = """
import logging
logging.basicConfig(level=logging.INFO)
sys.path.insert(0, sys.argv[2])
from ser_core.pipeline.model_packs import MODEL_FILES, Pack, pack_dir
pack = Pack(
    "synthetic",
    ("ser-test-pack-a", "ser-test-pack-b"),
    (
        ("ser_test_pack_a", "data", ("model.bin.part1", *MODEL_FILES)),
        ("ser_test_pack_b", "data", ("model.bin.part2",)),
    ),
    size=int(sys.argv[4]),
    sha256=sys.argv[5],
)
print(pack_dir(pack, Path(sys.argv[3])))
"""


def test_two_processes_join_the_same_model_pack(tmp_path: Path) -> None:
    pack, data = _synthetic_pack(tmp_path / "site")
    cache = tmp_path / "cache"
    outputs = _race(
        _JOIN, str(tmp_path), str(tmp_path / "site"), str(cache), str(pack.size), pack.sha256 or ""
    )
    target = cache / "whisper" / "synthetic"
    assert [o.split("\n--stderr--")[0].strip() for o in outputs] == [str(target)] * 2
    assert sum(o.count("joining model pack synthetic") for o in outputs) == 1  # the other one waited
    assert (target / "model.bin").read_bytes() == data
    stamp = json.loads((target / "pack.json").read_text())
    assert stamp == {"pack": "synthetic", "size": len(data), "sha256": pack.sha256}
    assert sorted(p.name for p in target.iterdir()) == sorted(["model.bin", "pack.json", *MODEL_FILES])
    assert {p.name for p in target.parent.iterdir()} - {"synthetic.lock"} == {"synthetic"}


def test_model_pack_damaged_join_redone_and_bad_parts_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack, data = _synthetic_pack(tmp_path / "site", size=1 << 20)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    cache = tmp_path / "cache"
    target = pack_dir(pack, cache)
    assert target is not None
    with (target / "model.bin").open("r+b") as handle:  # a join cut short
        handle.truncate(1000)
    assert pack_dir(pack, cache) == target and (target / "model.bin").read_bytes() == data
    (target / "pack.json").write_text("[]")  # a stamp that is not a record: joined again too
    assert pack_dir(pack, cache) == target and json.loads((target / "pack.json").read_text())["pack"]

    forged = Pack(pack.name, pack.distributions, pack.parts, pack.size, "0" * 64)
    with (target / "model.bin").open("r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(TranscriberError, match="fails its SHA-256 check") as info:
        pack_dir(forged, cache)
    assert "\n" not in str(info.value)
    assert {p.name for p in target.parent.iterdir()} - {"synthetic.lock"} == {"synthetic"}


def test_model_pack_unwritable_cache_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unwritable: tuple[Path, str]
) -> None:
    folder, cause = unwritable
    pack, _ = _synthetic_pack(tmp_path / "site", size=1 << 16)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(TranscriberError) as info:
        pack_dir(pack, folder)
    message = str(info.value)
    assert message.startswith(f"{folder / 'whisper' / 'synthetic'}: ") and cause in message, message
    assert "\n" not in message
