"""Training-set audio augmentation, test-time augmentation and score fusion, speaker-independent.

Usage (from the repository root, with the project venv; the machine is shared, so one thread, niced):

    # 1. utterance vectors of augmented copies of every clip, cached under /tmp/sercache-aug
    nice -n 19 .venv/bin/python scripts/augment_experiments.py extract --backend handcrafted \
        --augs orig sp09 sp11 ps-2 ps+2 ps-1 ps+1 ns20 gain
    nice -n 19 .venv/bin/python scripts/augment_experiments.py extract --backend hf_whisper \
        --augs orig sp09 sp11 [--frames]
    # 2. cross-validation with augmented training folds (test clips are never augmented, unless a
    #    `tta` row says so), fast+accurate score fusion
    .venv/bin/python scripts/augment_experiments.py eval --backend handcrafted
    .venv/bin/python scripts/augment_experiments.py eval --backend hf_whisper
    .venv/bin/python scripts/augment_experiments.py fusion

* Augmentations (audio level, 16 kHz, deterministic per file: the random ones are seeded by
  `--seed` and the file name):
  `sp09` / `sp11`: speed perturbation 0.9 / 1.1 as Kaldi's `sox speed` (resampling: tempo and
  pitch change together; `scipy.signal.resample_poly` 10/9 and 10/11). `ps-2`, `ps+2`, `ps-1`,
  `ps+1`: `librosa.effects.pitch_shift` by that many semitones (duration kept; shifts F0 and the
  spectral envelope, a vocal-tract-length-like change). `ns20`: white Gaussian noise at an SNR
  drawn uniformly in 15-25 dB (relative to the clean signal's power over its speech extent);
  pooled over the clean signal's speech extent. `gain`: a gain drawn uniformly in +-6 dB.
  Every augmented signal is clipped to [-1, 1].
* Vectors: the backend's own `embed` (the speech-extent pooling `ser evaluate` uses; for `orig` the
  project's feature cache via `ser_core.training.extract.extract`, so `orig` equals what quality.py sees).
  Cached as /tmp/sercache-aug/<backend>/<corpus>/<aug>.npy (rows in `load_dataset` order).
  `--frames` (hf_whisper, orig only) also stores the speech-extent frames of layers 2-6 in
  float16 for pooling experiments (scripts/pooling_experiments.py).
* Protocol (as scripts/quality.py): Emo-DB and EMOVO leave-one-speaker-out, RAVDESS actors 01-18
  six actor-grouped folds (1-3, ...). Classifier: ShrinkageLDAClassifier (the default kind and
  shrinkage 0.6). Training fold = its original clips + the listed augmented copies of the same
  (training-speaker) clips. Test = the original test clips; a `tta:` row averages the predicted
  probabilities over the listed test-time versions of each test clip. One setting for all corpora.
* Metrics: UAR, WA, macro-F1 pooled over folds; McNemar (exact, two-sided) against the baseline
  on the pooled correct/wrong decisions, per corpus and over all three corpora.
* `eval --nested`: the shrinkage chosen per outer fold by inner speaker-grouped CV (grid 0.2-0.9).
  `loco`: leave-one-corpus-out on the six shared labels (as scripts/train_default.py).

Findings (mean UAR over the three corpora; baseline 0.5815 fast, 0.7419 accurate):
fast: +speed 0.9/1.1 +0.005 at shrinkage 0.6 (+0.007 with nested shrinkage, p=0.15), LOCO +0.015;
pitch shift (librosa, +-1 / +-2 st) -0.02 (p<0.02); noise, gain ~0. accurate: +speed +0.008
(p=0.11), + speed TTA +0.014 (p=0.011) but LOCO -0.012 / -0.010. Score fusion fast+accurate: no gain.
"""

from __future__ import annotations

import argparse
import os
import time
import zlib
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("SER_HF_THREADS", "1")
os.environ.setdefault("SER_HF_DEVICE", "cpu")
os.environ.setdefault("SER_CACHE_DIR", "/tmp/sercache")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPORA_DIR = Path(os.environ.get("SER_CORPORA", ROOT.parent / "shared" / "corpora"))
AUG_DIR = Path(os.environ.get("SER_AUG_DIR", "/tmp/sercache-aug"))
CORPORA = ("emodb", "emovo", "ravdess")
SR = 16000


# --- data ---------------------------------------------------------------------------------------


def items(corpus: str):
    from ser_core.training.datasets import load_dataset

    return load_dataset(CORPORA_DIR / corpus)


def groups_of(corpus: str, its) -> np.ndarray:
    speakers = np.array([it.speaker for it in its], dtype=object)
    if corpus != "ravdess":
        return speakers
    order = sorted(set(speakers))
    chunks = np.array_split(np.array(order, dtype=object), 6)  # as ser_core.training.api._speaker_folds
    fold = {s: k for k, chunk in enumerate(chunks) for s in chunk}
    return np.array([f"fold{fold[s]}" for s in speakers], dtype=object)


# --- augmentations ------------------------------------------------------------------------------


def _rng(seed: int, path: Path, aug: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{path.name}|{aug}".encode())])


def augment(signal: np.ndarray, aug: str, path: Path, seed: int = 0) -> np.ndarray:
    from scipy.signal import resample_poly

    x = signal.astype(np.float64)
    if aug == "orig":
        y = x
    elif aug in ("sp09", "sp11"):
        # n samples -> n * 10 / down samples played at 16 kHz: speed down / 10 (0.9 or 1.1)
        y = resample_poly(x, 10, 9 if aug == "sp09" else 11)
    elif aug.startswith("ps"):
        import librosa

        y = librosa.effects.pitch_shift(x, sr=SR, n_steps=float(aug[2:]))
    elif aug.startswith("ns"):
        from ser_core.contract.signals import speech_extent

        start, end = speech_extent(signal)
        seg = x[int(start * SR) : max(int(end * SR), int(start * SR) + 1)]
        power = float(np.mean(seg**2)) + 1e-12
        snr = _rng(seed, path, aug).uniform(15.0, 25.0)
        noise = _rng(seed, path, aug + "n").standard_normal(len(x))
        y = x + noise * np.sqrt(power / 10 ** (snr / 10))
    elif aug == "gain":
        y = x * 10 ** (_rng(seed, path, aug).uniform(-6.0, 6.0) / 20)
    else:
        raise ValueError(aug)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


# --- extraction ---------------------------------------------------------------------------------


def aug_path(backend: str, corpus: str, aug: str, seed: int = 0) -> Path:
    name = aug if seed == 0 or aug in ("orig", "sp09", "sp11") or aug.startswith("ps") else f"{aug}_s{seed}"
    return AUG_DIR / backend / corpus / f"{name}.npy"


def extract_corpus(backend_id: str, corpus: str, aug: str, seed: int, frames: bool) -> None:
    from ser_core.contract.signals import speech_extent
    from ser_core.pipeline.audio import load_audio
    from ser_core.plugins.lookup import get_backend_by_id
    from ser_core.training.extract import extract

    out = aug_path(backend_id, corpus, aug, seed)
    if out.is_file() and not (frames and aug == "orig"):
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    its = items(corpus)
    backend = get_backend_by_id(backend_id)
    start = time.perf_counter()
    if aug == "orig" and not frames:
        got = extract([it.path for it in its], backend)
        assert got.ok.all(), got.failures
        vectors = got.vectors
    elif frames:
        # hf_whisper only: speech-extent frames (layers concatenated), float16, + pooled vectors
        signals = [load_audio(it.path) for it in its]
        vectors = np.zeros((len(its), backend.dim), np.float32)
        kept: list[np.ndarray | None] = [None] * len(its)
        by_len: dict[int, list[int]] = {}
        for i, s in enumerate(signals):
            by_len.setdefault(len(s), []).append(i)
        for members in by_len.values():
            for k in range(0, len(members), 8):
                batch = members[k : k + 8]
                encoded = backend.encode_batch(np.stack([signals[i] for i in batch]))
                for i, f in zip(batch, encoded, strict=True):
                    a, b = np.round(np.array(speech_extent(signals[i])) * backend.frame_rate).astype(int)
                    f = f[a : max(b, a + 1)]
                    vectors[i] = backend.pool(f)
                    kept[i] = f.astype(np.float16)
        lengths = np.array([len(f) for f in kept])
        np.savez(
            AUG_DIR / backend_id / corpus / "frames.npz",
            frames=np.concatenate(kept),
            offsets=np.r_[0, np.cumsum(lengths)],
            layers=np.array(backend.layers),
        )
        cached = extract([it.path for it in its], backend).vectors
        print(f"  frames check: max |pooled - cached| = {np.abs(vectors - cached).max():.2e}", flush=True)
        vectors = cached  # orig.npy stays exactly what quality.py sees
    else:
        signals = [augment(load_audio(it.path), aug, it.path, seed) for it in its]
        vectors = np.zeros((len(its), backend.dim), np.float32)
        if aug.startswith("ns"):  # pool over the clean speech extent
            for i, (it, s) in enumerate(zip(its, signals, strict=True)):
                extent = np.array([speech_extent(load_audio(it.path))])
                vectors[i] = backend.embed_windows(backend.frames(s), extent)[0]
        else:
            order = sorted(range(len(signals)), key=lambda i: len(signals[i]))
            for k in range(0, len(order), 64):
                chunk = order[k : k + 64]
                for i, v in zip(chunk, backend.embed_many([signals[i] for i in chunk]), strict=True):
                    vectors[i] = v
    np.save(out, vectors.astype(np.float32))
    (out.parent / "paths.txt").write_text("\n".join(str(it.path) for it in its))
    print(f"{backend_id} {corpus} {aug}: {len(its)} clips in {time.perf_counter() - start:.0f} s", flush=True)


# --- evaluation ---------------------------------------------------------------------------------


def lda(shrinkage: float = 0.6):
    from ser_core.models.classifiers import ShrinkageLDAClassifier

    return ShrinkageLDAClassifier(shrinkage=shrinkage)


def load_vectors(backend: str, corpus: str, augs, seed: int = 0) -> dict[str, np.ndarray]:
    return {a: np.load(aug_path(backend, corpus, a, seed)).astype(np.float64) for a in augs}


def cv_proba(
    corpus: str,
    vecs: dict[str, np.ndarray],
    train_augs=(),
    test_augs=("orig",),
    shrinkage: float = 0.6,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Pooled out-of-fold probabilities (n, labels) and the true labels."""
    its = items(corpus)
    y = np.array([it.label for it in its])
    groups = groups_of(corpus, its)
    labels = sorted(set(y.tolist()))
    proba = np.zeros((len(y), len(labels)))
    for g in sorted(set(groups)):
        test = groups == g
        xs = [vecs["orig"][~test]] + [vecs[a][~test] for a in train_augs]
        model = lda(shrinkage).fit(np.concatenate(xs), list(np.tile(y[~test], len(xs))))
        assert model.labels == labels
        proba[test] = np.mean([model.predict_proba(vecs[a][test]) for a in test_augs], axis=0)
    return proba, labels, y


GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def lda_grid_scores(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, grid=GRID) -> np.ndarray:
    """Discriminant scores (len(grid), n_test, labels) of ShrinkageLDAClassifier at every shrinkage
    in `grid` from one thin SVD of the residuals (same model: cov = a*trace(S)/d*I + (1-a)*S)."""
    mean, scale = xtr.mean(0), xtr.std(0)
    scale[scale < 1e-12] = 1.0
    z, zt = (xtr - mean) / scale, (xte - mean) / scale
    labels = sorted(set(ytr.tolist()))
    index = np.searchsorted(labels, ytr)
    means = np.stack([z[index == k].mean(0) for k in range(len(labels))])
    rows = (z - means[index]) / np.sqrt(max(len(z) - len(labels), 1))
    target = float(np.sum(rows * rows)) / z.shape[1] or 1.0
    _, sv, vt = np.linalg.svd(rows, full_matrices=False)
    proj = vt @ means.T  # (r, labels)
    rest = means.T - vt.T @ proj
    out = []
    for a in grid:
        solved = rest / (a * target) + vt.T @ (proj / (a * target + (1 - a) * sv[:, None] ** 2))
        coef = solved.T
        out.append(zt @ coef.T - 0.5 * np.sum(coef * means, axis=1))
    return np.stack(out)


def cv_nested(corpus: str, vecs: dict[str, np.ndarray], train_augs=(), test_augs=("orig",)):
    """As cv_proba, with the shrinkage chosen per outer fold by an inner speaker-grouped CV on the
    training speakers only (inner folds: the remaining speakers / actor groups; inner test clips
    original, inner training clips + the same augmentations); criterion: pooled inner UAR."""
    from sklearn.metrics import balanced_accuracy_score

    its = items(corpus)
    y = np.array([it.label for it in its])
    groups = groups_of(corpus, its)
    labels = sorted(set(y.tolist()))
    proba = np.zeros((len(y), len(labels)))
    chosen = []

    def fit_scores(train, test_rows, augs_test):
        xs = [vecs["orig"][train]] + [vecs[a][train] for a in train_augs]
        ytr = np.tile(y[train], len(xs))
        return np.mean([lda_grid_scores(np.concatenate(xs), ytr, vecs[a][test_rows]) for a in augs_test], 0)

    for g in sorted(set(groups)):
        test = groups == g
        inner_pred = np.zeros((len(GRID), len(y)), int)
        for h in sorted(set(groups[~test])):
            itest = groups == h
            itrain = ~test & ~itest
            inner_pred[:, itest] = fit_scores(itrain, itest, ("orig",)).argmax(2)
        uars = [balanced_accuracy_score(y[~test], np.array(labels)[p[~test]]) for p in inner_pred]
        best = int(np.argmax(uars))
        chosen.append(GRID[best])
        sc = fit_scores(~test, test, test_augs)[best]
        e = np.exp(sc - sc.max(1, keepdims=True))
        proba[test] = e / e.sum(1, keepdims=True)
    return proba, labels, y, chosen


def scores(proba: np.ndarray, labels: list[str], y: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    pred = np.array(labels)[proba.argmax(axis=1)]
    return {
        "uar": balanced_accuracy_score(y, pred),
        "wa": accuracy_score(y, pred),
        "f1": f1_score(y, pred, average="macro"),
        "correct": pred == y,
    }


def mcnemar(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import binomtest

    n01, n10 = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if n01 + n10 == 0:
        return 1.0
    return float(binomtest(n01, n01 + n10, 0.5).pvalue)


def report(rows: dict[str, dict[str, dict]], base: str = "base") -> None:
    head = f"{'setting':34s}" + "".join(f" {c:>20s}" for c in CORPORA) + "   mean UAR   dUAR  p(all)"
    print(head)
    print(f"{'':34s}" + "".join(f" {'UAR/WA/F1':>20s}" for _ in CORPORA))
    b = rows[base]
    for name, r in rows.items():
        cells = "".join(f"  {r[c]['uar']:.3f}/{r[c]['wa']:.3f}/{r[c]['f1']:.3f}" for c in CORPORA)
        mean = np.mean([r[c]["uar"] for c in CORPORA])
        dmean = mean - np.mean([b[c]["uar"] for c in CORPORA])
        p_all = mcnemar(
            np.concatenate([r[c]["correct"] for c in CORPORA]),
            np.concatenate([b[c]["correct"] for c in CORPORA]),
        )
        ps = " ".join(f"{mcnemar(r[c]['correct'], b[c]['correct']):.3f}" for c in CORPORA)
        print(f"{name:34s}{cells}   {mean:.4f}  {dmean:+.4f}  {p_all:.3f}  (per corpus p {ps})", flush=True)


HANDCRAFTED_SETTINGS = {
    "base": ((), ("orig",)),
    "+sp": (("sp09", "sp11"), ("orig",)),
    "+ps2": (("ps-2", "ps+2"), ("orig",)),
    "+ps1": (("ps-1", "ps+1"), ("orig",)),
    "+ps1+ps2": (("ps-1", "ps+1", "ps-2", "ps+2"), ("orig",)),
    "+ns20": (("ns20",), ("orig",)),
    "+gain": (("gain",), ("orig",)),
    "+sp+ps1": (("sp09", "sp11", "ps-1", "ps+1"), ("orig",)),
    "+sp+ps2": (("sp09", "sp11", "ps-2", "ps+2"), ("orig",)),
    "+sp+ns20": (("sp09", "sp11", "ns20"), ("orig",)),
    "+sp+ps2+ns20+gain": (("sp09", "sp11", "ps-2", "ps+2", "ns20", "gain"), ("orig",)),
    "tta sp (train +sp)": (("sp09", "sp11"), ("orig", "sp09", "sp11")),
    "tta ps1 (train +ps1)": (("ps-1", "ps+1"), ("orig", "ps-1", "ps+1")),
    "tta sp (train orig)": ((), ("orig", "sp09", "sp11")),
}

WHISPER_SETTINGS = {
    "base": ((), ("orig",)),
    "+sp": (("sp09", "sp11"), ("orig",)),
    "+sp09": (("sp09",), ("orig",)),
    "+sp11": (("sp11",), ("orig",)),
    "tta sp (train +sp)": (("sp09", "sp11"), ("orig", "sp09", "sp11")),
    "tta sp (train orig)": ((), ("orig", "sp09", "sp11")),
}


def available(backend: str, augs) -> bool:
    return all(aug_path(backend, c, a).is_file() for c in CORPORA for a in augs)


def run_nested(backend: str, names: list[str]) -> None:
    settings = HANDCRAFTED_SETTINGS if backend == "handcrafted" else WHISPER_SETTINGS
    rows: dict[str, dict[str, dict]] = {}
    for name in ["base", *[n for n in names if n != "base"]]:
        train_augs, test_augs = settings[name]
        rows[name] = {}
        for corpus in CORPORA:
            vecs = load_vectors(backend, corpus, {"orig", *train_augs, *test_augs})
            proba, labels, y, chosen = cv_nested(corpus, vecs, train_augs, test_augs)
            rows[name][corpus] = scores(proba, labels, y)
            print(f"  {name} {corpus}: chosen shrinkages {chosen}", flush=True)
    print(f"\n{backend}, shrinkage LDA, shrinkage chosen by inner speaker-grouped CV from {GRID}")
    report(rows)


def run_eval(backend: str, names: list[str] | None, shrinkage: float) -> None:
    settings = HANDCRAFTED_SETTINGS if backend == "handcrafted" else WHISPER_SETTINGS
    rows: dict[str, dict[str, dict]] = {}
    for name, (train_augs, test_augs) in settings.items():
        if names and name not in names and name != "base":
            continue
        need = {"orig", *train_augs, *test_augs}
        if not available(backend, need):
            print(f"skip {name}: vectors of {sorted(need)} not all extracted")
            continue
        rows[name] = {}
        for corpus in CORPORA:
            vecs = load_vectors(backend, corpus, need)
            rows[name][corpus] = scores(*cv_proba(corpus, vecs, train_augs, test_augs, shrinkage))
    print(f"\n{backend}, shrinkage LDA {shrinkage}")
    report(rows)


def run_fusion(acc_train_augs=(), fast_train_augs=()) -> None:
    """Late fusion of the fast and accurate models' out-of-fold probabilities (fixed rules)."""
    rows: dict[str, dict[str, dict]] = {
        n: {} for n in ("accurate", "fast", "mean prob", "mean prob w.25", "sum logp", "geo T")
    }
    for corpus in CORPORA:
        pa, labels, y = cv_proba(
            corpus, load_vectors("hf_whisper", corpus, {"orig", *acc_train_augs}), acc_train_augs
        )
        pf, labels_f, _ = cv_proba(
            corpus, load_vectors("handcrafted", corpus, {"orig", *fast_train_augs}), fast_train_augs
        )
        assert labels == labels_f
        eps = 1e-12
        rows["accurate"][corpus] = scores(pa, labels, y)
        rows["fast"][corpus] = scores(pf, labels, y)
        rows["mean prob"][corpus] = scores((pa + pf) / 2, labels, y)
        rows["mean prob w.25"][corpus] = scores(0.75 * pa + 0.25 * pf, labels, y)
        rows["sum logp"][corpus] = scores(np.log(pa + eps) + np.log(pf + eps), labels, y)
        # entropy-matched: each model's log-probs divided by its mean max-log-odds (no labels used)
        la, lf = np.log(pa + eps), np.log(pf + eps)
        ta = np.mean(la.max(1) - np.median(la, 1))
        tf = np.mean(lf.max(1) - np.median(lf, 1))
        rows["geo T"][corpus] = scores(la / ta + lf / tf, labels, y)
    print(
        f"\nfusion (accurate train augs {acc_train_augs}, fast train augs {fast_train_augs}); baseline = accurate"
    )
    report(rows, base="accurate")


SHARED = ("angry", "disgust", "fearful", "happy", "neutral", "sad")


def run_loco(backend: str, names: list[str], shrinkage: float) -> None:
    """Leave-one-corpus-out on the six shared labels (as scripts/train_default.py): train on two
    corpora (+ the setting's augmented copies of their clips), test on the third's original clips."""
    settings = HANDCRAFTED_SETTINGS if backend == "handcrafted" else WHISPER_SETTINGS
    rows: dict[str, dict[str, dict]] = {}
    for name in ["base", *[n for n in names if n != "base"]]:
        train_augs, test_augs = settings[name]
        need = {"orig", *train_augs, *test_augs}
        data = {}
        for c in CORPORA:
            y = np.array([it.label for it in items(c)])
            keep = np.isin(y, SHARED)
            data[c] = ({a: v[keep] for a, v in load_vectors(backend, c, need).items()}, y[keep])
        rows[name] = {}
        for held in CORPORA:
            train = [c for c in CORPORA if c != held]
            xs = [data[c][0][a] for a in ("orig", *train_augs) for c in train]
            ys = [data[c][1] for a in ("orig", *train_augs) for c in train]
            model = lda(shrinkage).fit(np.concatenate(xs), list(np.concatenate(ys)))
            vecs, y = data[held]
            proba = np.mean([model.predict_proba(vecs[a]) for a in test_augs], axis=0)
            rows[name][held] = scores(proba, model.labels, y)
    print(f"\n{backend}, leave-one-corpus-out (column = held-out corpus), shrinkage LDA {shrinkage}")
    report(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("extract")
    ex.add_argument("--backend", default="handcrafted")
    ex.add_argument("--augs", nargs="+", default=["orig"])
    ex.add_argument("--corpora", nargs="+", default=list(CORPORA))
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--frames", action="store_true")
    ev = sub.add_parser("eval")
    ev.add_argument("--backend", default="handcrafted")
    ev.add_argument("--names", nargs="*")
    ev.add_argument("--shrinkage", type=float, default=0.6)
    ev.add_argument("--nested", action="store_true", help="choose the shrinkage by inner CV")
    lo = sub.add_parser("loco")
    lo.add_argument("--backend", default="handcrafted")
    lo.add_argument("--names", nargs="*", default=["+sp"])
    lo.add_argument("--shrinkage", type=float, default=0.6)
    fu = sub.add_parser("fusion")
    fu.add_argument("--acc-augs", nargs="*", default=[])
    fu.add_argument("--fast-augs", nargs="*", default=[])
    args = parser.parse_args()
    if args.cmd == "extract":
        for aug in args.augs:
            for corpus in args.corpora:
                extract_corpus(args.backend, corpus, aug, args.seed, args.frames and aug == "orig")
    elif args.cmd == "loco":
        run_loco(args.backend, args.names, args.shrinkage)
    elif args.cmd == "eval" and args.nested:
        run_nested(args.backend, args.names or ["+sp"])
    elif args.cmd == "eval":
        run_eval(args.backend, args.names, args.shrinkage)
    else:
        run_fusion(tuple(args.acc_augs), tuple(args.fast_augs))


if __name__ == "__main__":
    main()
