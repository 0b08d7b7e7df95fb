"""Speaker-independent comparison of classifier candidates on cached `fast` feature vectors.

Usage (from the repository root, with the project venv):

    .venv/bin/python scripts/classifier_experiments.py --dump      # once: cache vectors to /tmp/clf_data
    .venv/bin/python scripts/classifier_experiments.py [NAME ...]  # evaluate candidates (all by default)

* Vectors come from `ser_core.training.api.load_features(..., get_backend("fast"))` and are dumped to
  /tmp/clf_data/{emodb,emovo,ravdess}.npz so that later runs see one fixed version of the features.
* Protocol: Emo-DB and EMOVO leave-one-speaker-out; RAVDESS (actors 01-18) six actor-grouped folds of
  three sorted, contiguous actors. Only training-fold statistics are used (no speaker normalisation).
* Metrics: UAR (balanced accuracy), WA (accuracy), macro-F1, pooled over all test folds' predictions.
* One setting for all corpora: every candidate has fixed hyper-parameters (no per-fold tuning).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SER_CLF_DATA", "/tmp/clf_data"))
CORPORA = ("emodb", "emovo", "ravdess")


def dump() -> None:
    from ser_core.plugins.lookup import get_backend
    from ser_core.training.api import load_features

    DATA.mkdir(parents=True, exist_ok=True)
    root = Path(os.environ.get("SER_CORPORA", "/work/shared/corpora"))
    for corpus in CORPORA:
        data = load_features([str(root / corpus)], get_backend("fast"))
        np.savez(DATA / f"{corpus}.npz", X=data.vectors, y=np.array(data.labels), s=np.array(data.speakers))


def load(corpus: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = np.load(DATA / f"{corpus}.npz")
    x, y, speakers = data["X"].astype(np.float64), data["y"], data["s"]
    if corpus == "ravdess":
        order = sorted(np.unique(speakers))
        groups = np.array([f"fold{order.index(s) // 3}" for s in speakers])
    else:
        groups = speakers
    return x, y, groups


# --------------------------------------------------------------------------------------------------
# Candidates: factories returning an object with fit(x, labels) and predict_proba(x) + `labels`.


def _project_kind(kind: str, **params):
    sys.path.insert(0, str(ROOT / "src"))
    from ser_core.plugins.lookup import make_classifier

    return lambda: make_classifier(kind, **params)


class SkPipe:
    """Thin adapter around a sklearn pipeline (experiments only)."""

    def __init__(self, build: Callable) -> None:
        self.build = build

    def fit(self, x, labels):
        self.model = self.build()
        self.model.fit(x, np.asarray(labels))
        self.labels = [str(c) for c in self.model.classes_]
        return self

    def predict_proba(self, x):
        if hasattr(self.model, "predict_proba"):
            return self.model.predict_proba(x)
        scores = self.model.decision_function(x)
        return scores


def sk_lr(c=0.01, pre=()):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return lambda: SkPipe(
        lambda: make_pipeline(
            StandardScaler(),
            *[p() for p in pre],
            LogisticRegression(C=c, max_iter=5000, class_weight="balanced"),
        )
    )


def sk_svc(c=1.0, gamma="scale"):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return lambda: SkPipe(
        lambda: make_pipeline(
            StandardScaler(), SVC(C=c, gamma=gamma, class_weight="balanced", decision_function_shape="ovr")
        )
    )


def sk_linsvc(c=0.001):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    return lambda: SkPipe(
        lambda: make_pipeline(StandardScaler(), LinearSVC(C=c, class_weight="balanced", max_iter=20000))
    )


def sk_lda(shrinkage="auto", then_lr=None):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def build():
        lda = LinearDiscriminantAnalysis(
            solver="lsqr" if then_lr is None else "eigen", shrinkage=shrinkage, priors=None
        )
        if then_lr is None:
            return make_pipeline(StandardScaler(), lda)
        return make_pipeline(
            StandardScaler(), lda, LogisticRegression(C=then_lr, max_iter=5000, class_weight="balanced")
        )

    return lambda: SkPipe(build)


class Clip:
    def __init__(self, limit=4.0):
        self.limit = limit

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        return np.clip(x, -self.limit, self.limit)

    def fit_transform(self, x, y=None):
        return self.transform(x)


class SignedLog:
    def fit(self, x, y=None):
        return self

    def transform(self, x):
        return np.sign(x) * np.log1p(np.abs(x))

    def fit_transform(self, x, y=None):
        return self.transform(x)


class RowNorm:
    def fit(self, x, y=None):
        return self

    def transform(self, x):
        return x / np.linalg.norm(x, axis=1, keepdims=True) * np.sqrt(x.shape[1])

    def fit_transform(self, x, y=None):
        return self.transform(x)


class AvgProba:
    """Average of probability outputs of several members (same label order)."""

    def __init__(self, members: list[Callable]) -> None:
        self.members = members

    def fit(self, x, labels):
        self.fitted = [m().fit(x, labels) for m in self.members]
        self.labels = self.fitted[0].labels
        return self

    def predict_proba(self, x):
        return np.mean([m.predict_proba(x) for m in self.fitted], axis=0)


class Subspace:
    """Random-subspace bag of balanced LRs on standardised features."""

    def __init__(self, n=20, frac=0.5, c=0.01, seed=0, bootstrap=False):
        self.n, self.frac, self.c, self.seed, self.bootstrap = n, frac, c, seed, bootstrap

    def fit(self, x, labels):
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(self.seed)
        y = np.asarray(labels)
        self.mean, self.scale = x.mean(0), x.std(0) + 1e-12
        z = (x - self.mean) / self.scale
        self.models = []
        for _ in range(self.n):
            cols = np.sort(rng.choice(x.shape[1], int(self.frac * x.shape[1]), replace=False))
            rows = rng.choice(len(y), len(y)) if self.bootstrap else np.arange(len(y))
            m = LogisticRegression(C=self.c / self.frac, max_iter=5000, class_weight="balanced")
            m.fit(z[rows][:, cols], y[rows])
            self.models.append((cols, m))
        self.labels = [str(c) for c in self.models[0][1].classes_]
        return self

    def predict_proba(self, x):
        z = (x - self.mean) / self.scale
        return np.mean([m.predict_proba(z[:, cols]) for cols, m in self.models], axis=0)


class Augmented:
    """Balanced LR trained on the training fold plus feature-space augmentation (training side only).

    mode "noise": Gaussian noise (sigma in standardised units);
    mode "mixup": convex mixes of same-class pairs from different training speakers;
    mode "spkshift": copies moved by the mean offset between two training speakers (speaker-style transfer).
    """

    def __init__(self, mode="noise", copies=1, sigma=0.3, c=0.01, seed=0):
        self.mode, self.copies, self.sigma, self.c, self.seed = mode, copies, sigma, c, seed

    def fit_groups(self, x, labels, groups):
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(self.seed)
        y = np.asarray(labels)
        self.mean, self.scale = x.mean(0), x.std(0) + 1e-12
        z = (x - self.mean) / self.scale
        zs, ys = [z], [y]
        for _ in range(self.copies):
            if self.mode == "noise":
                zs.append(z + self.sigma * rng.standard_normal(z.shape))
                ys.append(y)
            elif self.mode == "mixup":
                partner = np.empty(len(y), dtype=int)
                for i in range(len(y)):
                    pool = np.flatnonzero((y == y[i]) & (groups != groups[i]))
                    partner[i] = rng.choice(pool) if len(pool) else i
                lam = rng.beta(self.sigma, self.sigma, size=(len(y), 1))
                lam = np.maximum(lam, 1 - lam)
                zs.append(lam * z + (1 - lam) * z[partner])
                ys.append(y)
            elif self.mode == "spkshift":
                spk = np.unique(groups)
                means = {s: z[groups == s].mean(0) for s in spk}
                out = np.empty_like(z)
                for s in spk:
                    idx = groups == s
                    t = rng.choice([u for u in spk if u != s])
                    out[idx] = z[idx] - self.sigma * (means[s] - means[t])
                zs.append(out)
                ys.append(y)
        m = LogisticRegression(C=self.c, max_iter=5000, class_weight="balanced")
        m.fit(np.vstack(zs), np.concatenate(ys))
        self.model = m
        self.labels = [str(c) for c in m.classes_]
        return self

    def predict_proba(self, x):
        return self.model.predict_proba((x - self.mean) / self.scale)


class ShrinkLDA:
    """Numpy shrinkage LDA on standardised features with uniform class priors.

    Within-class covariance: mean of the per-class covariances ("balanced") or pooled scatter; shrunk
    towards (trace/d) I by `shrinkage`. Optional quantile->normal transform before standardising.
    """

    def __init__(self, shrinkage=0.5, balanced=True, quantile=False):
        self.shrinkage, self.balanced, self.quantile = shrinkage, balanced, quantile

    def fit(self, x, labels):
        y = np.asarray(labels)
        if self.quantile:
            from sklearn.preprocessing import QuantileTransformer

            self.qt = QuantileTransformer(output_distribution="normal", n_quantiles=200).fit(x)
            x = self.qt.transform(x)
        self.labels = sorted({str(v) for v in y})
        self.mean, self.scale = x.mean(0), x.std(0) + 1e-12
        z = (x - self.mean) / self.scale
        means = np.stack([z[y == k].mean(0) for k in self.labels])
        d = z.shape[1]
        if self.balanced:
            cov = np.zeros((d, d))
            for i, k in enumerate(self.labels):
                r = z[y == k] - means[i]
                cov += r.T @ r / max(len(r) - 1, 1)
            cov /= len(self.labels)
        else:
            r = z - means[np.searchsorted(self.labels, y)]
            cov = r.T @ r / (len(z) - len(self.labels))
        mu = np.trace(cov) / d
        cov = (1 - self.shrinkage) * cov + self.shrinkage * mu * np.eye(d)
        self.coef = np.linalg.solve(cov, means.T).T
        self.intercept = -0.5 * np.sum(self.coef * means, axis=1)
        return self

    def scores(self, x):
        if self.quantile:
            x = self.qt.transform(x)
        return ((x - self.mean) / self.scale) @ self.coef.T + self.intercept

    def predict_proba(self, x):
        s = self.scores(x)
        s -= s.max(1, keepdims=True)
        p = np.exp(s)
        return p / p.sum(1, keepdims=True)


class NestedSLDA:
    """Shrinkage LDA whose shrinkage is chosen per outer fold by inner speaker-grouped CV (mean UAR)."""

    grid = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)

    def __init__(self, balanced=True):
        self.balanced = balanced

    def fit_groups(self, x, labels, groups):
        from sklearn.metrics import balanced_accuracy_score

        y = np.asarray(labels)
        pred = np.empty((len(self.grid), len(y)), dtype=y.dtype)
        for g in np.unique(groups):
            test = groups == g
            for i, a in enumerate(self.grid):
                m = ShrinkLDA(a, self.balanced).fit(x[~test], y[~test])
                pred[i, test] = np.asarray(m.labels)[m.scores(x[test]).argmax(1)]
        scores = [balanced_accuracy_score(y, p) for p in pred]  # inner predictions pooled, as outside
        self.chosen = self.grid[int(np.argmax(scores))]
        self.model = ShrinkLDA(self.chosen, self.balanced).fit(x, y)
        self.labels = self.model.labels
        return self

    def predict_proba(self, x):
        return self.model.predict_proba(x)


class Blend:
    """Mean of log-probabilities of LR and shrinkage LDA (geometric-mean ensemble)."""

    def __init__(self, members, weights=None):
        self.members, self.weights = members, weights

    def fit(self, x, labels):
        self.fitted = [m().fit(x, labels) for m in self.members]
        self.labels = self.fitted[0].labels
        assert all(list(m.labels) == list(self.labels) for m in self.fitted)
        return self

    def predict_proba(self, x):
        w = self.weights or [1.0] * len(self.fitted)
        logp = sum(
            wi * np.log(np.clip(m.predict_proba(x), 1e-300, None))
            for wi, m in zip(w, self.fitted, strict=True)
        )
        logp = logp / sum(w)
        logp -= logp.max(1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(1, keepdims=True)


def candidates() -> dict[str, Callable]:
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import QuantileTransformer

    cands: dict[str, Callable] = {
        "lr_c0.01": sk_lr(0.01),
        "lr_c0.003": sk_lr(0.003),
        "lr_c0.03": sk_lr(0.03),
        "lr_multiC": lambda: AvgProba([sk_lr(0.003), sk_lr(0.01), sk_lr(0.03)]),
        "lr_clip3": sk_lr(0.01, pre=(lambda: Clip(3.0),)),
        "lr_clip5": sk_lr(0.01, pre=(lambda: Clip(5.0),)),
        "lr_slog": sk_lr(0.01, pre=(SignedLog,)),
        "lr_slog_c0.03": sk_lr(0.03, pre=(SignedLog,)),
        "lr_rownorm": sk_lr(0.01, pre=(RowNorm,)),
        "lr_quantile": sk_lr(
            0.01, pre=(lambda: QuantileTransformer(output_distribution="normal", n_quantiles=200),)
        ),
        "pcaw_lr": sk_lr(0.01, pre=(lambda: PCA(whiten=True, n_components=0.99),)),
        "pca200_lr": sk_lr(0.01, pre=(lambda: PCA(n_components=200),)),
        "linsvc_1e-3": sk_linsvc(0.001),
        "svc_rbf_c1": sk_svc(1.0),
        "svc_rbf_c10": sk_svc(10.0),
        "svc_rbf_c3_g0.5": sk_svc(3.0, gamma=0.5 / 1229),
        "lda_auto": sk_lda("auto"),
        "lda_0.5": sk_lda(0.5),
        "lda_0.8": sk_lda(0.8),
        "subspace20_0.5": lambda: Subspace(20, 0.5, 0.01),
        "bag20": lambda: Subspace(20, 1.0, 0.01, bootstrap=True),
        "aug_noise0.5": lambda: Augmented("noise", 1, 0.5),
        "aug_noise1.0": lambda: Augmented("noise", 2, 1.0),
        "aug_mixup": lambda: Augmented("mixup", 2, 0.4),
        "aug_spkshift": lambda: Augmented("spkshift", 2, 1.0),
    }
    for a in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        cands[f"slda{a}"] = lambda a=a: ShrinkLDA(a)
    cands["slda0.5_pooled"] = lambda: ShrinkLDA(0.5, balanced=False)
    cands["slda0.5_quant"] = lambda: ShrinkLDA(0.5, quantile=True)
    cands["blend_lr_slda0.5"] = lambda: Blend([sk_lr(0.01), lambda: ShrinkLDA(0.5)])
    cands["avg_lr_slda0.5"] = lambda: AvgProba([sk_lr(0.01), lambda: ShrinkLDA(0.5)])
    cands["slda0.55"] = lambda: ShrinkLDA(0.55)
    cands["slda0.65"] = lambda: ShrinkLDA(0.65)
    cands["slda0.6_pooled"] = lambda: ShrinkLDA(0.6, balanced=False)
    cands["slda_multi"] = lambda: AvgProba([lambda a=a: ShrinkLDA(a) for a in (0.4, 0.5, 0.6, 0.7)])
    cands["blend_lr_slda0.6"] = lambda: Blend([sk_lr(0.01), lambda: ShrinkLDA(0.6)])
    cands["slda_nested"] = lambda: NestedSLDA()
    for a in (0.4, 0.5, 0.7, 0.8):
        cands[f"slda{a}_pooled"] = lambda a=a: ShrinkLDA(a, balanced=False)
    cands["slda_nested_pooled"] = lambda: NestedSLDA(balanced=False)
    cands["kind:shrinkage_lda"] = _project_kind("shrinkage_lda")
    cands["kind:shrinkage_lda_balanced"] = _project_kind("shrinkage_lda", covariance="balanced")
    cands["kind:logistic"] = _project_kind("logistic")
    return cands


# --------------------------------------------------------------------------------------------------


def evaluate(factory: Callable, x: np.ndarray, y: np.ndarray, groups: np.ndarray, jobs: int = 2) -> dict:
    from joblib import Parallel, delayed
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    def fold(g):
        test = groups == g
        start = time.perf_counter()
        model = factory()
        if hasattr(model, "fit_groups"):
            model.fit_groups(x[~test], list(y[~test]), groups[~test])
        else:
            model.fit(x[~test], list(y[~test]))
        seconds = time.perf_counter() - start
        proba = model.predict_proba(x[test])
        return np.flatnonzero(test), np.asarray(model.labels)[np.argmax(proba, axis=1)], seconds

    predicted = np.empty_like(y)
    times = []
    for index, labels, seconds in Parallel(n_jobs=jobs)(delayed(fold)(g) for g in np.unique(groups)):
        predicted[index] = labels
        times.append(seconds)
    return {
        "uar": balanced_accuracy_score(y, predicted),
        "wa": accuracy_score(y, predicted),
        "f1": f1_score(y, predicted, average="macro"),
        "fit_s": float(np.mean(times)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="candidates to run (default: all)")
    parser.add_argument("--dump", action="store_true", help="cache feature vectors to SER_CLF_DATA")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if args.dump:
        dump()
        return
    cands = candidates()
    names = args.names or list(cands)
    data = {c: load(c) for c in CORPORA}
    print(f"{'candidate':24s} " + " ".join(f"{c:>22s}" for c in CORPORA) + f" {'meanUAR':>8s} {'fit_s':>6s}")
    for name in names:
        results = {c: evaluate(cands[name], *data[c], jobs=args.jobs) for c in CORPORA}
        cells = " ".join(f"{r['uar']:.3f}/{r['wa']:.3f}/{r['f1']:.3f}".rjust(22) for r in results.values())
        mean = np.mean([r["uar"] for r in results.values()])
        fit = np.mean([r["fit_s"] for r in results.values()])
        print(f"{name:24s} {cells} {mean:8.4f} {fit:6.2f}", flush=True)


if __name__ == "__main__":
    main()
