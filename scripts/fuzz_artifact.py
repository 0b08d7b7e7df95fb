"""Coverage-guided fuzzing of `ser_core.models.artifacts.load_model` with atheris (libFuzzer).

Each input is the bytes of a `.npz` model file. Any exception other than `SerError` is a crash, and
so is an error message that is not one line starting with the path, or a loaded model whose
classifier does not match its metadata; libFuzzer's memory limit (`-rss_limit_mb`, 2048 by default)
catches unbounded allocations (forged array shapes, zip bombs). The zip, `.npy` header and JSON
parsers are instrumented too, so coverage guides the search through them.

    python scripts/fuzz_artifact.py -max_total_time=60 [CORPUS_DIR ...] [libFuzzer flags]

Without a corpus folder, `$TMPDIR/ser-fuzz/artifact` is used (seeded with a real model, kept
between runs); crashes are written there as `crash-*` unless `-artifact_prefix=` says otherwise.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import atheris
from fuzzing import check_message, fuzz

with atheris.instrument_imports(include=["ser_core", "numpy.lib", "json"]):
    import numpy as np

    from ser_core.errors import SerError
    from ser_core.models.artifacts import Model, ModelMeta, load_model
    from ser_core.models.classifiers import LogisticClassifier, ShrinkageLDAClassifier

# zipfile is imported before this script runs (by the interpreter's start-up), so it is instrumented
# in place; the zip parser is where most of the format's branches are.
for _function in vars(zipfile).values():
    if (
        callable(_function)
        and getattr(_function, "__module__", None) == "zipfile"
        and hasattr(_function, "__code__")
    ):
        atheris.instrument_func(_function)
for _class in (zipfile.ZipFile, zipfile.ZipExtFile, zipfile.ZipInfo, zipfile.LZMADecompressor):
    for _function in vars(_class).values():
        if hasattr(_function, "__code__"):
            atheris.instrument_func(_function)

WORK = Path(tempfile.gettempdir()) / "ser-fuzz" / "artifact"
_path = WORK / "input.npz"


def seeds() -> dict[str, bytes]:
    """Real models (both classifier kinds), deflated and stored."""
    rng = np.random.default_rng(0)
    labels = ["angry", "happy", "sad"]
    x = rng.standard_normal((30, 4)) + np.repeat(np.eye(3, 4) * 3, 10, axis=0)
    y = [label for label in labels for _ in range(10)]
    out = {}
    for classifier in (ShrinkageLDAClassifier().fit(x, y), LogisticClassifier(max_iter=200).fit(x, y)):
        meta = ModelMeta(
            profile="fast",
            backend_id="handcrafted",
            backend_model_id="fuzz",
            feature_dim=4,
            labels=labels,
            classifier="",
            ser_core_version="0",
        )
        saved = Model(meta, classifier).save(WORK / "seed.npz").read_bytes()
        out[classifier.kind] = saved
        stored = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(saved)) as zin, zipfile.ZipFile(stored, "w") as zout:
            for info in zin.infolist():
                zout.writestr(info.filename, zin.read(info))
        out[f"{classifier.kind}-stored"] = stored.getvalue()
    (WORK / "seed.npz").unlink()
    return out


def test_one_input(data: bytes) -> None:
    _path.write_bytes(data)
    try:
        model = load_model(_path)
    except SerError as exc:
        check_message(exc, _path)
        return
    if model.classifier.labels != model.labels:
        raise AssertionError("loaded a model whose classifier labels differ from its metadata")


def main() -> None:
    fuzz("load_model", WORK, seeds, test_one_input)


if __name__ == "__main__":
    main()
