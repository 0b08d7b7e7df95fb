"""Fisher-vector and bag-of-audio-words encodings of the `fast` frame LLDs, speaker-independent.

Usage (from the repository root, with the project venv; the machine is shared, so one thread, niced):

    nice -n 19 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        .venv/bin/python scripts/encoding_experiments.py [--encoders fv16 fv32 fv64 bow256h bow256s ...]
        [--llds nomel|all] [--deltas] [--pca] [--seed N] [--codebook fold|other]
        [--corpora emodb emovo ravdess] [--rtf]

Recommended setting (as of handcrafted features c3119edf): `--deltas --encoders bow256s`, i.e.
functionals + BoAW-256 (soft, 46 LLDs + deltas) with shrinkage LDA: mean UAR 0.601 +- 0.002 over
seeds 0-2 vs 0.585 for the functionals alone (Emo-DB 0.776 / EMOVO 0.397 / RAVDESS 0.630 vs
0.763 / 0.389 / 0.604), extra RTF 0.00025. Fisher vectors, log-mel LLDs, PCA and late fusion were
no better; a whole run of the default grid takes about 10 minutes on one busy core.

Question: does a Gaussian-mixture Fisher vector (FV) or a bag-of-audio-words histogram (BoAW) of the
frame-level descriptors of ser_backend_handcrafted (`HandcraftedFeatures.frames`) add to, or replace,
the 1259 utterance functionals (`pool`)?

* Corpora, audio cache, labels, speaker groups and the functionals come from
  scripts/feature_experiments.py (imported, not copied). Frame LLDs are cached per corpus in
  /tmp/ser_encoding_cache (keyed by the features module's hash), and so are the per-fold encodings.
* Protocol: Emo-DB and EMOVO leave-one-speaker-out, RAVDESS (actors 01-18) six actor-grouped folds
  (1-3, ..., 16-18). Everything learnt is fitted on the training fold only, per fold: the LLD
  standardisation (mean / std of the training frames), the GMM / k-means codebook (on at most
  `--sample` randomly drawn training frames), and the classifier. No speaker normalisation.
* Frames: only "active" frames are encoded (log energy within 40 dB of the utterance's loudest, the
  rule `pool` uses). `--llds nomel` (default) uses the 46 LLDs without the 40 log-mel energies
  (which the 20 MFCCs summarise); `all` uses all 86. The voiced-only LLDs (F0, HNR, H1-H2) are
  NaN on unvoiced frames and are set to the training mean (0 after standardisation) there.
  `--deltas` appends +-2-frame regression deltas.
* `--codebook other` instead fits the standardiser and GMM / codebook once on the frames of the
  other two corpora (a frozen, shippable codebook that never saw the test corpus); the classifier
  is still trained per fold.
* `--seed` seeds the frame sample and the GMM / k-means initialisation; `--pca` rotates the
  standardised LLDs onto their training-frame principal axes (for the diagonal GMM).
* Encoders: `fvK`: diagonal GMM with K components (sklearn, k-means init), Fisher vector of mean and
  variance gradients (Sanchez et al. 2013), power (signed sqrt) and L2 normalised, dim 2*K*D.
  `bowKh` / `bowKs`: k-means codebook of K words; hard assignment (nearest word) or soft
  multi-assignment (each frame votes for its 5 nearest words, as openXBOW's `-a 5`); term
  frequencies divided by the frame count, then square-rooted (Hellinger / power normalisation).
* Variants per encoder: `enc` (encoding alone), `func+enc` (concatenated with the functionals),
  `func|enc` (late fusion: sum of the two models' log-probabilities). `func` is the baseline.
  Classifiers: ser_core.models.classifiers.ShrinkageLDAClassifier (kind shrinkage_lda, its defaults) and
  LogisticClassifier (C = 0.01). Fixed hyper-parameters for every corpus (no per-fold tuning).
* Metrics: UAR (balanced accuracy), WA (accuracy), macro-F1, pooled over all test folds.
* `--rtf`: one-thread wall seconds of the extra per-utterance work (active-frame selection,
  standardisation, [deltas], encoding with a fitted model) divided by audio seconds; the frames
  themselves are already computed for `pool`, so this is the encoding's extra cost.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from itertools import pairwise
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import feature_experiments as fe

CACHE = Path("/tmp/ser_encoding_cache")
SOFT_ASSIGN = 5
CLASSIFIERS = ("lda", "lr")


# ---------------------------------------------------------------------------------------------------
# Frame descriptors


def frame_llds(corpus: str) -> tuple[np.ndarray, np.ndarray]:
    """All frames' LLDs of a corpus concatenated (float32) and per-file offsets; cached."""
    digest = hashlib.sha1(fe.DEFAULT_MODULE.read_bytes()).hexdigest()[:12]
    CACHE.mkdir(parents=True, exist_ok=True)
    cache = CACHE / f"lld_{corpus}_{digest}.npz"
    if not cache.exists():
        features = fe.load_module(fe.DEFAULT_MODULE).HandcraftedFeatures()
        signals, _, _ = fe.load_corpus(corpus)
        llds = [features.frames(s) for s in signals]
        offsets = np.cumsum([0] + [len(x) for x in llds])
        np.savez(cache, lld=np.concatenate(llds), offsets=offsets)
    data = np.load(cache)
    return data["lld"], data["offsets"]


class Frames:
    """Turns one utterance's raw LLDs into the rows that get encoded (active frames, chosen columns)."""

    def __init__(self, llds: str, deltas: bool) -> None:
        module = fe.load_module(fe.DEFAULT_MODULE)
        self.module = module
        names = module.LLD_NAMES
        keep = [i for i, n in enumerate(names) if llds == "all" or not n.startswith("logmel")]
        self.columns = np.array(keep)
        self.deltas = deltas
        self.energy = names.index("log_energy")
        self.active_db = module.ACTIVE_DB

    def __call__(self, lld: np.ndarray) -> np.ndarray:
        energy = lld[:, self.energy]
        x = lld[:, self.columns]
        if self.deltas:
            x = np.hstack([x, np.nan_to_num(self.module._delta(x), nan=0.0)])
        if len(x) == 0:
            return x
        return x[energy >= energy.max() - self.active_db]


class Standardiser:
    """Training-frame z-scores (NaN -> 0); with `pca`, also rotated onto the principal axes."""

    def __init__(self, pca: bool = False) -> None:
        self.pca = pca

    def fit(self, x: np.ndarray) -> Standardiser:
        self.mean = np.nan_to_num(np.nanmean(x, axis=0))
        self.scale = np.nanstd(x, axis=0)
        self.scale[~(self.scale > 1e-8)] = 1.0
        self.rotation = None
        if self.pca:
            z = np.nan_to_num((x - self.mean) / self.scale, nan=0.0).astype(np.float64)
            _, vectors = np.linalg.eigh(z.T @ z / len(z))
            self.rotation = vectors[:, ::-1].astype(np.float32)
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = np.nan_to_num((x - self.mean) / self.scale, nan=0.0).astype(np.float32)
        return z if self.rotation is None else z @ self.rotation


# ---------------------------------------------------------------------------------------------------
# Encoders: fit on standardised training frames, encode one utterance's standardised frames.


class FisherVector:
    def __init__(self, k: int) -> None:
        self.k = k

    def fit(self, x: np.ndarray, seed: int) -> FisherVector:
        from sklearn.mixture import GaussianMixture

        gmm = GaussianMixture(
            self.k,
            covariance_type="diag",
            max_iter=100,
            reg_covar=1e-3,
            random_state=seed,
            init_params="kmeans",
        ).fit(x)
        self.w = gmm.weights_.astype(np.float32)
        self.mu = gmm.means_.astype(np.float32)
        var = gmm.covariances_.astype(np.float32)
        self.sigma = np.sqrt(var)
        self.inv_var = 1.0 / var
        self.mu_inv_var = self.mu * self.inv_var
        self.const = (
            np.log(self.w)
            - 0.5 * np.sum(np.log(2 * np.pi * var), axis=1)
            - 0.5 * np.sum(self.mu * self.mu_inv_var, axis=1)
        ).astype(np.float32)
        return self

    @property
    def dim(self) -> int:
        return 2 * self.mu.size

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros(self.dim, np.float32)
        log_p = -0.5 * ((x * x) @ self.inv_var.T) + x @ self.mu_inv_var.T + self.const
        log_p -= log_p.max(axis=1, keepdims=True)
        gamma = np.exp(log_p)
        gamma /= gamma.sum(axis=1, keepdims=True)
        n = len(x)
        s0 = gamma.sum(axis=0)[:, None]
        s1 = gamma.T @ x
        s2 = gamma.T @ (x * x)
        g_mu = (s1 - self.mu * s0) / (self.sigma * n * np.sqrt(self.w)[:, None])
        g_var = ((s2 - 2 * self.mu * s1 + self.mu * self.mu * s0) * self.inv_var - s0) / (
            n * np.sqrt(2 * self.w)[:, None]
        )
        fv = np.concatenate([g_mu.ravel(), g_var.ravel()])
        fv = np.sign(fv) * np.sqrt(np.abs(fv))
        return (fv / max(float(np.linalg.norm(fv)), 1e-12)).astype(np.float32)


class BagOfWords:
    def __init__(self, k: int, soft: bool) -> None:
        self.k, self.soft = k, soft

    def fit(self, x: np.ndarray, seed: int) -> BagOfWords:
        from sklearn.cluster import KMeans

        km = KMeans(self.k, n_init=1, max_iter=100, random_state=seed).fit(x)
        self.centres = km.cluster_centers_.astype(np.float32)
        self.half_sq = 0.5 * np.sum(self.centres * self.centres, axis=1)
        return self

    @property
    def dim(self) -> int:
        return self.k

    def __call__(self, x: np.ndarray) -> np.ndarray:
        hist = np.zeros(self.k, np.float32)
        if len(x) == 0:
            return hist
        score = x @ self.centres.T - self.half_sq  # larger = nearer
        if self.soft:
            words = np.argpartition(-score, SOFT_ASSIGN - 1, axis=1)[:, :SOFT_ASSIGN].ravel()
        else:
            words = score.argmax(axis=1)
        hist += np.bincount(words, minlength=self.k)
        return np.sqrt(hist / len(x))


def make_encoder(name: str) -> FisherVector | BagOfWords:
    if name.startswith("fv"):
        return FisherVector(int(name[2:]))
    if name.startswith("bow") and name[-1] in "hs":
        return BagOfWords(int(name[3:-1]), soft=name[-1] == "s")
    raise SystemExit(f"unknown encoder {name!r} (fvK, bowKh, bowKs)")


# ---------------------------------------------------------------------------------------------------
# Per-fold encodings (cached) and evaluation


def encode_fold(
    name: str, frames: list[np.ndarray], fit_on: list[np.ndarray], args: argparse.Namespace, tag: str
) -> tuple[np.ndarray, float]:
    """Encodings of every file in `frames` with an encoder fitted on the `fit_on` files' frames."""
    sample = args.sample
    cache = CACHE / f"enc_{tag}_{name}_s{sample}_seed{args.seed}{'_pca' if args.pca else ''}.npy"
    if cache.exists():
        return np.load(cache), 0.0
    start = time.perf_counter()
    train_frames = np.concatenate(fit_on)
    standardiser = Standardiser(args.pca).fit(train_frames)
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(train_frames), size=min(sample, len(train_frames)), replace=False)
    encoder = make_encoder(name).fit(standardiser(train_frames[pick]), seed=args.seed)
    encoded = np.stack([encoder(standardiser(f)) for f in frames])
    np.save(cache, encoded)
    return encoded, time.perf_counter() - start


def fit_predict(kind: str, x: np.ndarray, y: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Log-probabilities of the test rows, columns in sorted label order."""
    from ser_core.models.classifiers import LogisticClassifier, ShrinkageLDAClassifier

    model = ShrinkageLDAClassifier() if kind == "lda" else LogisticClassifier(c=0.01)
    model.fit(x[train], list(y[train]))
    assert model.labels == sorted(set(y.tolist()))
    return np.log(np.maximum(model.predict_proba(x[~train]), 1e-300))


def scores(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    return {
        "uar": balanced_accuracy_score(y, predicted),
        "wa": accuracy_score(y, predicted),
        "f1": f1_score(y, predicted, average="macro"),
    }


def run_corpus(corpus: str, args: argparse.Namespace, frames_of: Frames) -> dict[tuple[str, str], dict]:
    _, y, groups = fe.load_corpus(corpus)
    func = fe.extract(fe.DEFAULT_MODULE, corpus).astype(np.float64)
    lld, offsets = frame_llds(corpus)
    frames = [frames_of(lld[a:b]) for a, b in pairwise(offsets)]
    labels = np.array(sorted(set(y.tolist())))
    digest = hashlib.sha1(fe.DEFAULT_MODULE.read_bytes()).hexdigest()[:8]
    setting = f"{corpus}_{args.llds}{'_d' if args.deltas else ''}_{digest}"
    other: list[np.ndarray] = []
    if args.codebook == "other":  # a frozen codebook from the other corpora: no test-corpus frames
        for other_corpus in sorted({"emodb", "emovo", "ravdess"} - {corpus}):
            other_lld, other_offsets = frame_llds(other_corpus)
            other += [frames_of(other_lld[a:b]) for a, b in pairwise(other_offsets)]
    log_p: dict[tuple[str, str], np.ndarray] = {}
    fit_seconds = 0.0
    for group in np.unique(groups):
        train = groups != group
        test_index = np.flatnonzero(~train)
        fold = {}
        for kind in CLASSIFIERS:
            fold[("func", kind)] = fit_predict(kind, func, y, train)
        for name in args.encoders:
            if args.codebook == "other":
                enc, seconds = encode_fold(name, frames, other, args, f"{setting}_other")
            else:
                fit_on = [frames[i] for i in np.flatnonzero(train)]
                enc, seconds = encode_fold(name, frames, fit_on, args, f"{setting}_{group}")
            fit_seconds += seconds
            for kind in CLASSIFIERS:
                alone = fit_predict(kind, enc.astype(np.float64), y, train)
                fold[(name, kind)] = alone
                fold[(f"func+{name}", kind)] = fit_predict(kind, np.hstack([func, enc]), y, train)
                fold[(f"func|{name}", kind)] = fold[("func", kind)] + alone
        for key, value in fold.items():
            log_p.setdefault(key, np.zeros((len(y), len(labels))))[test_index] = value
        print(f"  {corpus} fold {group} done", flush=True, file=sys.stderr)
    print(f"{corpus}: {len(y)} files, encoder fitting+encoding {fit_seconds:.0f}s", flush=True)
    return {key: scores(y, labels[value.argmax(axis=1)]) for key, value in log_p.items()}


def measure_rtf(corpus: str, name: str, args: argparse.Namespace, frames_of: Frames) -> float:
    """Extra one-thread seconds per audio second: frame selection, standardisation, encoding."""
    lld, offsets = frame_llds(corpus)
    raw = [lld[a:b] for a, b in pairwise(offsets)]
    train = np.concatenate([frames_of(r) for r in raw[::2]])
    standardiser = Standardiser(args.pca).fit(train)
    pick = np.random.default_rng(0).choice(len(train), size=min(args.sample, len(train)), replace=False)
    encoder = make_encoder(name).fit(standardiser(train[pick]), seed=0)
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        for r in raw:
            encoder(standardiser(frames_of(r)))
        best = min(best, time.perf_counter() - start)
    return best / (offsets[-1] * 0.01)  # one frame per 10 ms of audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--encoders", nargs="+", default=["fv16", "fv32", "fv64", "bow256h", "bow256s", "bow512s"]
    )
    parser.add_argument("--llds", choices=["nomel", "all"], default="nomel")
    parser.add_argument("--deltas", action="store_true")
    parser.add_argument(
        "--sample", type=int, default=40000, help="training frames drawn to fit the GMM/codebook"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the frame sample and GMM/k-means init")
    parser.add_argument("--pca", action="store_true", help="decorrelate the standardised LLDs (training PCA)")
    parser.add_argument(
        "--codebook",
        choices=["fold", "other"],
        default="fold",
        help="fit standardiser+GMM/codebook per training fold, or once on the other two corpora",
    )
    parser.add_argument("--corpora", nargs="+", default=["emodb", "emovo", "ravdess"])
    parser.add_argument("--rtf", action="store_true", help="only measure the extra real-time factor")
    args = parser.parse_args()
    frames_of = Frames(args.llds, args.deltas)

    if args.rtf:
        for name in args.encoders:
            rtfs = "  ".join(f"{c} {measure_rtf(c, name, args, frames_of):.5f}" for c in args.corpora)
            print(f"extra RTF {name:8s} {rtfs}", flush=True)
        return

    results = {corpus: run_corpus(corpus, args, frames_of) for corpus in args.corpora}
    keys = list(results[args.corpora[0]])
    extras = f"{' + deltas' if args.deltas else ''}{' + PCA' if args.pca else ''}, seed {args.seed}"
    extras += f", codebook from {'training fold' if args.codebook == 'fold' else 'the other corpora'}"
    print(f"LLDs {args.llds}{extras}; UAR/WA/F1 per corpus, mean UAR")
    for variant, kind in sorted(keys, key=lambda k: (k[1], k[0])):
        row = [results[c][(variant, kind)] for c in args.corpora]
        cells = " | ".join(
            f"{c} {r['uar']:.3f} {r['wa']:.3f} {r['f1']:.3f}" for c, r in zip(args.corpora, row, strict=True)
        )
        print(f"{variant:14s} {kind:3s} {cells} | mean {np.mean([r['uar'] for r in row]):.3f}")


if __name__ == "__main__":
    main()
