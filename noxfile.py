"""Sessions: `nox -s tests`, `lint`, `train_default`, `quality`, `benchmark`, `timeline`, `transcript`,
`speed`, `picture`, `emotion2vec`.

All but `tests` and `lint` read `../shared/corpora` (or `SER_CORPORA`).
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
PACKAGES = ("-e", ".[offline,test]", "-e", "plugins/ser_backend_handcrafted")


@nox.session(python=["3.11", "3.12", "3.13"])
def tests(session: nox.Session) -> None:
    """The default test run (no corpora needed)."""
    session.install(*PACKAGES)
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
def speed(session: nox.Session) -> None:
    """`ser analyze` with transcript on 60 s of English speech: RTF, model load, plain faster-whisper."""
    session.install(*PACKAGES)
    session.run("python", "scripts/benchmark_analyze.py", *session.posargs)


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
