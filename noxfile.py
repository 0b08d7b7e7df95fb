"""Sessions: `nox -s tests`, `lint`, `train_default`, `quality`, `benchmark`, `batch`, `timeline`,
`transcript`, `words`, `robustness`, `speakers`, `serve_load`, `speed`, `speed_accurate`, `memory`, `picture`, `emotion2vec`, `fuzz`, `mutants`.

All but `tests`, `lint`, `fuzz` and `mutants` read `../shared/corpora` (or `SER_CORPORA`).
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
PACKAGES = ("-e", ".[offline,test]", "-e", "plugins/ser_backend_handcrafted")


@nox.session(python=["3.11", "3.12", "3.13"])
def tests(session: nox.Session) -> None:
    """The default test run (no corpora needed), with the Ray extra as in CI."""
    session.install("-e", ".[offline,test,ray]", "-e", "plugins/ser_backend_handcrafted")
    session.run("pytest", "-q", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session(python="3.11")
def train_default(session: nox.Session) -> None:
    """Re-train a shipped default model (`-- --profile accurate` for the accurate one)."""
    session.install(*PACKAGES)
    session.run("python", "scripts/train_default.py", *session.posargs)


@nox.session(python="3.11")
def quality(session: nox.Session) -> None:
    """Speaker-independent accuracy of the fast profile on Emo-DB, EMOVO and RAVDESS 01-18."""
    session.install(*PACKAGES)
    session.run("python", "scripts/quality.py", *session.posargs)


@nox.session(python="3.11")
def benchmark(session: nox.Session) -> None:
    """Feature-extraction real-time factor of the fast profile (one worker)."""
    session.install(*PACKAGES)
    session.run("python", "scripts/benchmark_features.py", *session.posargs)


@nox.session(python="3.11")
def batch(session: nox.Session) -> None:
    """Batch throughput on RAVDESS (fast, no transcript): local engine (1 process) vs local Ray (2 actors)."""
    session.install("-e", ".[offline,ray]", "-e", "plugins/ser_backend_handcrafted")
    session.run("python", "scripts/benchmark_batch.py", *session.posargs)


@nox.session(python="3.11")
def timeline(session: nox.Session) -> None:
    """Timeline accuracy on long recordings composed from corpus clips (frame accuracy, boundaries)."""
    session.install(*PACKAGES)
    session.run("python", "scripts/benchmark_timeline.py", *session.posargs)


@nox.session(python="3.11")
def transcript(session: nox.Session) -> None:
    """Word error rate of tiny.en and base on the RAVDESS statements."""
    session.install(*PACKAGES)
    session.run("python", "scripts/benchmark_transcript.py", *session.posargs)


@nox.session(python="3.11")
def words(session: nox.Session) -> None:
    """Words on long single-emotion-block recordings (RAVDESS, Emo-DB, EMOVO): recall, WER, lost,
    zero-length and duplicated words, sentences across pauses, per corpus and emotion."""
    session.install(*PACKAGES)
    session.run("python", "scripts/benchmark_words.py", *session.posargs)


@nox.session(python="3.11")
def robustness(session: nox.Session) -> None:
    """UAR under telephone, codecs, noise, rooms, levels and 1 s crops (leave-one-corpus-out over the
    four corpora and within each), ECE and reliability diagrams: `-- --profile accurate` for the
    accurate profile (needs the hf plugin)."""
    session.install(*PACKAGES, "-e", ".[augment]", "matplotlib")
    if "accurate" in session.posargs:
        session.install("torch==2.13.0")
        session.install("-e", "plugins/ser_backend_hf[frontend]")
    session.run("python", "scripts/benchmark_robustness.py", *session.posargs)


@nox.session(python="3.11")
def speakers(session: nox.Session) -> None:
    """Who speaks when on conversations composed from the corpora: DER (pyannote.metrics), speaker
    count and RTF of the built-in diarizer (`--speakers`); `-- --prototypes` adds the torch
    prototypes of the first measurements."""
    session.install(*PACKAGES, "pyannote.metrics")
    if "--prototypes" in session.posargs:
        session.install("torch==2.13.0", "resemblyzer")
    session.run("python", "scripts/benchmark_speakers.py", *session.posargs)


@nox.session(python="3.11")
def serve_load(session: nox.Session) -> None:
    """`ser serve --jobs 2` under 50 uploads of 10-60 s, 8 at a time (none lost, results equal to
    the library's, latency, peak memory), then killed and restarted (finished results kept)."""
    session.install(*PACKAGES, "-e", ".[serve]", "httpx")
    session.run("python", "scripts/benchmark_serve_load.py", *session.posargs)


@nox.session(python="3.11")
def speed(session: nox.Session) -> None:
    """`ser analyze` with transcript on 60 s of English speech: RTF, model load, plain faster-whisper."""
    session.install(*PACKAGES)
    session.run("python", "scripts/benchmark_analyze.py", *session.posargs)


@nox.session(python="3.11")
def speed_accurate(session: nox.Session) -> None:
    """Accurate profile on 2 threads per runtime (torch, onnx, onnx-int8): ready time, encoder, analyze RTF."""
    session.install(*PACKAGES)
    session.install("torch==2.13.0")
    session.install("-e", "plugins/ser_backend_hf[frontend]")
    session.run("python", "scripts/benchmark_accurate.py", *session.posargs)


@nox.session(python="3.11")
def memory(session: nox.Session) -> None:
    """Peak RSS of `ser analyze` (fast, with transcript) on 1 min vs 60 min of speech (`-- --mp3`)."""
    session.install(*PACKAGES)
    session.run("python", "scripts/benchmark_memory.py", *session.posargs)


@nox.session(python="3.11")
def picture(session: nox.Session) -> None:
    """Render the HTML timeline page in headless Chromium (apt-get install chromium) into docs/."""
    session.install(*PACKAGES)
    session.run("python", "scripts/render_picture.py", *session.posargs)


@nox.session(python="3.11")
def emotion2vec(session: nox.Session) -> None:
    """The restricted emotion2vec plugin's tests (tiny model through FunASR; no network)."""
    session.install(*PACKAGES)
    session.install("torch==2.13.0")
    session.install("--no-deps", "-e", "plugins/ser_backend_emotion2vec", "funasr==1.4.16")
    session.install("omegaconf", "kaldiio", "librosa", "requests")
    session.run("pytest", "-q", "plugins/ser_backend_emotion2vec/tests", *session.posargs)


@nox.session(python="3.11")
def fuzz(session: nox.Session) -> None:
    """Coverage-guided fuzzing (atheris) of the audio and model loaders, 60 s each; libFuzzer flags
    after `--` replace the default (`nox -s fuzz -- -max_total_time=600`)."""
    session.install(*PACKAGES, "atheris")
    flags = session.posargs or ["-max_total_time=60"]
    for target in ("scripts/fuzz_audio.py", "scripts/fuzz_artifact.py"):
        session.run("python", target, *flags)


@nox.session(python="3.11")
def mutants(session: nox.Session) -> None:
    """Mutation spot-check: small bugs, each applied alone to a copy of the tree, must fail the
    tests that guard that code (`-- -k stamp` for some of them; see scripts/mutants.py)."""
    session.install(*PACKAGES)
    session.run("python", "scripts/mutants.py", *session.posargs)
