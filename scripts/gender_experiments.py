"""Gender-dependent and hierarchical classification for the fast profile, speaker-independent.

Usage (from the repository root, with the project venv; reuses the cached handcrafted vectors of
scripts/augment_experiments.py under /tmp/sercache-aug/handcrafted/<corpus>/<aug>.npy):

    OMP_NUM_THREADS=2 .venv/bin/python scripts/gender_experiments.py eval [--augs sp09 sp11]
    OMP_NUM_THREADS=2 .venv/bin/python scripts/gender_experiments.py loco [--augs sp09 sp11]

Protocol and metrics exactly as scripts/augment_experiments.py (Emo-DB / EMOVO leave-one-speaker-
out, RAVDESS six actor-grouped folds; UAR / WA / macro-F1 pooled over folds; exact McNemar against
`base` = the shipped shrinkage LDA 0.6). `loco`: leave-one-corpus-out on the six shared labels.
Every model, including the gender classifier, is fit on the training fold only (training speakers'
clips + the listed augmented copies of them); test clips are the original ones. The gender of a
training speaker comes from the corpus documentation; the gender of a test clip is PREDICTED by a
shrinkage LDA (0.6) on the same handcrafted vector, fit on the training clips (original only).

Settings (one for all corpora, shrinkage 0.6 everywhere, nothing tuned on test folds):
* `base`: one all-speaker shrinkage LDA on the original training clips (the shipped model; the
  McNemar reference). `all+aug` (with --augs): the same on original + augmented training clips; the
  `fuse-*` settings then fuse with this one, and every other model is fit on original + augmented.
* `oracle-hard` (reference only, NOT a valid result: uses the true test gender): gender-specific LDA.
* `hard`: route each test clip to the LDA of its predicted gender (trained on that gender's speakers).
* `soft`: p(male|x) P_male(e|x) + p(female|x) P_female(e|x).
* `fuse-hard` / `fuse-soft`: mean of the all-speaker model's probabilities and `hard` / `soft`.
* `joint14`: one LDA over emotion x gender classes (shared covariance, gender-specific class means),
  P(e|x) = sum_g P(e, g|x); needs no separate gender classifier.
* `gnorm`: standardisation by the training clips of the clip's gender (true gender for training
  clips, predicted gender for test clips), then one all-speaker LDA. Statistics come from training
  speakers only (gender-level, not speaker-level normalisation).
* `gnorm-soft`: the `gnorm` LDA applied under both genders' standardisations, mixed by p(gender|x).
  `gnorm-oracle` (reference only, NOT valid): the true test gender's standardisation.
* `arousal-soft` / `arousal-hard`: two-level: an arousal LDA (high = angry, happy, fearful,
  surprised; low = neutral, sad, boredom, calm, disgust) then an LDA within each arousal group;
  soft P(e) = P(a(e)) P(e|a(e)); hard: the best emotion within the predicted group.
* `fuse-arousal`: mean of the all-speaker model and arousal-soft.
* `pairwise`: one-vs-one shrinkage LDA (pair-specific covariance) coupled into class probabilities
  (Wu, Lin & Weng 2004, method 2).

Findings (mean UAR over the three corpora; base 0.5815, LOCO 0.4214): gender-specific models hurt,
even with the true test gender (oracle-hard 0.531, hard 0.533, fusion with the all-speaker model
0.564); emotion x gender classes 0.556; arousal-first 0.544, pairwise coupling 0.553. Predicted
gender accuracy 0.976 / 0.900 / 0.988 (cross-corpus 0.79 / 0.92 / 0.92). Gender-wise
standardisation: no-aug 0.582 (LOCO 0.415); with speed copies 0.595 (p=0.013; LOCO 0.445) against
0.587 / 0.436 for speed copies alone, but the margin over speed copies shrinks to +0.001 / +0.005
at shrinkage 0.5 / 0.7 and to +0.003 with nested shrinkage (0.588 vs 0.585, p=0.20 vs base).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import augment_experiments as A  # noqa: E402

CORPORA = A.CORPORA
SHRINK = 0.6
GENDER_SHRINK: float | None = None  # of the per-gender emotion models; --gender-shrinkage (diagnostic only)
HIGH_AROUSAL = {"angry", "happy", "fearful", "surprised"}
MALE_EMODB = {"03", "10", "11", "12", "15"}


def gender_of(speaker: str) -> str:
    corpus, spk = speaker.split(":")
    if corpus == "emodb":
        return "m" if spk in MALE_EMODB else "f"
    if corpus == "emovo":
        return spk[0]
    if corpus == "ravdess":
        return "m" if int(spk) % 2 == 1 else "f"
    raise ValueError(speaker)


def lda(shrinkage: float | None = None):
    return A.lda(SHRINK if shrinkage is None else shrinkage)


def expand(proba: np.ndarray, sub_labels: list[str], labels: list[str]) -> np.ndarray:
    out = np.zeros((len(proba), len(labels)))
    for j, lab in enumerate(sub_labels):
        out[:, labels.index(lab)] = proba[:, j]
    return out


def couple_pairwise(r: np.ndarray) -> np.ndarray:
    """Wu-Lin-Weng (2004) method 2: r[i, j] = P(i | i or j); returns class probabilities."""
    k = r.shape[0]
    q = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            if i != j:
                q[i, i] += r[j, i] ** 2
                q[i, j] = -r[j, i] * r[i, j]
    m = np.zeros((k + 1, k + 1))
    m[:k, :k] = q
    m[:k, k] = 1.0
    m[k, :k] = 1.0
    rhs = np.zeros(k + 1)
    rhs[k] = 1.0
    p = np.linalg.lstsq(m, rhs, rcond=None)[0][:k]
    p = np.clip(p, 1e-9, None)
    return p / p.sum()


def predict_all(
    xtr: np.ndarray,
    ytr: np.ndarray,
    gtr: np.ndarray,
    ntr_orig: int,
    xte: np.ndarray,
    gte_true: np.ndarray,
    labels: list[str],
    methods: set[str],
):
    """Probabilities (n_test, labels) of every method. xtr/ytr/gtr: training rows (the first
    `ntr_orig` are the original clips, the rest augmented copies); gte_true only for the oracle."""
    out: dict[str, np.ndarray] = {}
    base = A.lda(0.6).fit(xtr[:ntr_orig], list(ytr[:ntr_orig]))  # the shipped model: original clips only
    assert base.labels == labels
    out["base"] = base.predict_proba(xte)
    allp = out["base"]
    if len(xtr) > ntr_orig:  # all-speaker model on the original + augmented training clips
        allp = out["all+aug"] = lda().fit(xtr, list(ytr)).predict_proba(xte)
    # gender classifier: original training clips only
    gmodel = lda().fit(xtr[:ntr_orig], list(gtr[:ntr_orig]))
    pg = gmodel.predict_proba(xte)[:, gmodel.labels.index("m")]
    gpred = np.where(pg >= 0.5, "m", "f")
    need_gender = {"oracle-hard", "hard", "soft", "fuse-hard", "fuse-soft"} & methods
    if need_gender:
        per_g = {}
        for g in ("m", "f"):
            sel = gtr == g
            model = lda(GENDER_SHRINK if GENDER_SHRINK is not None else SHRINK).fit(xtr[sel], list(ytr[sel]))
            per_g[g] = expand(model.predict_proba(xte), model.labels, labels)
        hard = np.where((gpred == "m")[:, None], per_g["m"], per_g["f"])
        soft = pg[:, None] * per_g["m"] + (1 - pg)[:, None] * per_g["f"]
        out["oracle-hard"] = np.where((gte_true == "m")[:, None], per_g["m"], per_g["f"])
        out["hard"] = hard
        out["soft"] = soft
        out["fuse-hard"] = (allp + hard) / 2
        out["fuse-soft"] = (allp + soft) / 2
    if "joint14" in methods:
        model = lda().fit(xtr, [f"{e}|{g}" for e, g in zip(ytr, gtr, strict=True)])
        pj = model.predict_proba(xte)
        p = np.zeros((len(xte), len(labels)))
        for j, lab in enumerate(model.labels):
            p[:, labels.index(lab.split("|")[0])] += pj[:, j]
        out["joint14"] = p
    if {"gnorm", "gnorm-soft", "gnorm-oracle"} & methods:
        stats = {}
        for g in ("m", "f"):
            sel = gtr == g
            mu, sd = xtr[sel].mean(0), xtr[sel].std(0)
            sd[sd < 1e-12] = 1.0
            stats[g] = (mu, sd)
        ztr = np.empty_like(xtr)
        zte = np.empty_like(xte)
        for g in ("m", "f"):
            ztr[gtr == g] = (xtr[gtr == g] - stats[g][0]) / stats[g][1]
            zte[gpred == g] = (xte[gpred == g] - stats[g][0]) / stats[g][1]
        gmod = lda().fit(ztr, list(ytr))
        out["gnorm"] = gmod.predict_proba(zte)
        pz = {g: gmod.predict_proba((xte - stats[g][0]) / stats[g][1]) for g in ("m", "f")}
        out["gnorm-soft"] = pg[:, None] * pz["m"] + (1 - pg)[:, None] * pz["f"]
        out["gnorm-oracle"] = np.where((gte_true == "m")[:, None], pz["m"], pz["f"])
    if {"arousal-soft", "arousal-hard", "fuse-arousal"} & methods:
        atr = np.array(["hi" if e in HIGH_AROUSAL else "lo" for e in ytr])
        amodel = lda().fit(xtr, list(atr))
        pa = amodel.predict_proba(xte)
        p_hi = pa[:, amodel.labels.index("hi")]
        soft = np.zeros((len(xte), len(labels)))
        hard = np.zeros((len(xte), len(labels)))
        for grp, pw in (("hi", p_hi), ("lo", 1 - p_hi)):
            sel = atr == grp
            model = lda().fit(xtr[sel], list(ytr[sel]))
            pe = expand(model.predict_proba(xte), model.labels, labels)
            soft += pw[:, None] * pe
            chosen = (p_hi >= 0.5) if grp == "hi" else (p_hi < 0.5)
            hard[chosen] = pe[chosen]
        out["arousal-soft"] = soft
        out["arousal-hard"] = hard
        out["fuse-arousal"] = (allp + soft) / 2
    if "pairwise" in methods:
        k = len(labels)
        r = np.full((len(xte), k, k), 0.5)
        for i in range(k):
            for j in range(i + 1, k):
                sel = (ytr == labels[i]) | (ytr == labels[j])
                model = lda().fit(xtr[sel], list(ytr[sel]))
                pij = model.predict_proba(xte)[:, model.labels.index(labels[i])]
                r[:, i, j], r[:, j, i] = pij, 1 - pij
        out["pairwise"] = np.stack([couple_pairwise(rr) for rr in r])
    return {
        m: out[m]
        for m in ["base", "all+aug", *METHODS]
        if m in out and (m in methods or m in ("base", "all+aug"))
    }, gpred


METHODS = [
    "oracle-hard",
    "hard",
    "soft",
    "fuse-hard",
    "fuse-soft",
    "joint14",
    "gnorm",
    "gnorm-soft",
    "gnorm-oracle",
    "arousal-soft",
    "arousal-hard",
    "fuse-arousal",
    "pairwise",
]


def run_cv(train_augs: tuple[str, ...], methods: list[str], ref: str = "base") -> None:
    rows: dict[str, dict[str, dict]] = {}
    gacc = {}
    for corpus in CORPORA:
        its = A.items(corpus)
        y = np.array([it.label for it in its])
        gender = np.array([gender_of(it.speaker) for it in its])
        groups = A.groups_of(corpus, its)
        labels = sorted(set(y.tolist()))
        vecs = A.load_vectors("handcrafted", corpus, {"orig", *train_augs})
        probas: dict[str, np.ndarray] = {}
        gpred_all = np.empty(len(y), dtype=object)
        for g in sorted(set(groups)):
            test = groups == g
            xs = [vecs["orig"][~test]] + [vecs[a][~test] for a in train_augs]
            xtr = np.concatenate(xs)
            ytr = np.tile(y[~test], len(xs))
            gtr = np.tile(gender[~test], len(xs))
            out, gpred = predict_all(
                xtr, ytr, gtr, int((~test).sum()), vecs["orig"][test], gender[test], labels, set(methods)
            )
            gpred_all[test] = gpred
            for m, p in out.items():
                probas.setdefault(m, np.zeros((len(y), len(labels))))[test] = p
        gacc[corpus] = float(np.mean(gpred_all == gender))
        for m, p in probas.items():
            rows.setdefault(m, {})[corpus] = A.scores(p, labels, y)
    print(f"\nspeaker-independent CV, shrinkage LDA {SHRINK}, training copies {train_augs or 'none'}")
    print("predicted-gender accuracy (test clips): " + ", ".join(f"{c} {a:.3f}" for c, a in gacc.items()))
    A.report(rows, base=ref)


def run_loco(train_augs: tuple[str, ...], methods: list[str], ref: str = "base") -> None:
    data = {}
    for c in CORPORA:
        its = A.items(c)
        y = np.array([it.label for it in its])
        g = np.array([gender_of(it.speaker) for it in its])
        keep = np.isin(y, A.SHARED)
        vecs = A.load_vectors("handcrafted", c, {"orig", *train_augs})
        data[c] = ({a: v[keep] for a, v in vecs.items()}, y[keep], g[keep])
    rows: dict[str, dict[str, dict]] = {}
    gacc = {}
    labels = sorted(A.SHARED)
    for held in CORPORA:
        train = [c for c in CORPORA if c != held]
        order = [(a, c) for a in ("orig", *train_augs) for c in train]
        xtr = np.concatenate([data[c][0][a] for a, c in order])
        ytr = np.concatenate([data[c][1] for a, c in order])
        gtr = np.concatenate([data[c][2] for a, c in order])
        ntr = sum(len(data[c][1]) for c in train)
        vecs, y, g = data[held]
        out, gpred = predict_all(xtr, ytr, gtr, ntr, vecs["orig"], g, labels, set(methods))
        gacc[held] = float(np.mean(gpred == g))
        for m, p in out.items():
            rows.setdefault(m, {})[held] = A.scores(p, labels, y)
    print(
        f"\nleave-one-corpus-out (column = held-out corpus), 6 shared labels, shrinkage LDA {SHRINK}, "
        f"training copies {train_augs or 'none'}"
    )
    print(
        "predicted-gender accuracy (held-out corpus): " + ", ".join(f"{c} {a:.3f}" for c, a in gacc.items())
    )
    A.report(rows, base=ref)


def gnorm_transform(xtr, gtr, ntr_orig, xte):
    """`gnorm`: gender-wise standardisation (training-clip statistics; predicted test gender)."""
    gmodel = A.lda(0.6).fit(xtr[:ntr_orig], list(gtr[:ntr_orig]))
    pg = gmodel.predict_proba(xte)[:, gmodel.labels.index("m")]
    gpred = np.where(pg >= 0.5, "m", "f")
    ztr, zte = np.empty_like(xtr), np.empty_like(xte)
    for g in ("m", "f"):
        sel = gtr == g
        mu, sd = xtr[sel].mean(0), xtr[sel].std(0)
        sd[sd < 1e-12] = 1.0
        ztr[sel] = (xtr[sel] - mu) / sd
        zte[gpred == g] = (xte[gpred == g] - mu) / sd
    return ztr, zte


def run_nested(train_augs: tuple[str, ...]) -> None:
    """`all+aug` and `gnorm` with the shrinkage chosen per outer fold by an inner speaker-grouped CV
    on the training speakers only (grid and criterion as augment_experiments.cv_nested; the gender
    classifier and statistics are refit inside every inner fold)."""
    from sklearn.metrics import balanced_accuracy_score

    variants = {"all+aug": lambda xtr, gtr, n, xte: (xtr, xte), "gnorm": gnorm_transform}
    rows: dict[str, dict[str, dict]] = {"base": {}}
    for corpus in CORPORA:
        its = A.items(corpus)
        y = np.array([it.label for it in its])
        gender = np.array([gender_of(it.speaker) for it in its])
        groups = A.groups_of(corpus, its)
        labels = sorted(set(y.tolist()))
        vecs = A.load_vectors("handcrafted", corpus, {"orig", *train_augs})
        rows["base"][corpus] = A.scores(A.cv_proba(corpus, vecs)[0], labels, y)

        def fit_scores(train, test, transform, vecs=vecs, gender=gender, y=y):
            xs = [vecs["orig"][train]] + [vecs[a][train] for a in train_augs]
            ztr, zte = transform(
                np.concatenate(xs), np.tile(gender[train], len(xs)), int(train.sum()), vecs["orig"][test]
            )
            return A.lda_grid_scores(ztr, np.tile(y[train], len(xs)), zte)

        for name, transform in variants.items():
            proba = np.zeros((len(y), len(labels)))
            chosen = []
            for g in sorted(set(groups)):
                test = groups == g
                inner = np.zeros((len(A.GRID), len(y)), int)
                for h in sorted(set(groups[~test])):
                    itest = groups == h
                    inner[:, itest] = fit_scores(~test & ~itest, itest, transform).argmax(2)
                uars = [balanced_accuracy_score(y[~test], np.array(labels)[p[~test]]) for p in inner]
                best = int(np.argmax(uars))
                chosen.append(A.GRID[best])
                sc = fit_scores(~test, test, transform)[best]
                e = np.exp(sc - sc.max(1, keepdims=True))
                proba[test] = e / e.sum(1, keepdims=True)
            rows.setdefault(name, {})[corpus] = A.scores(proba, labels, y)
            print(f"  {name} {corpus}: chosen shrinkages {chosen}", flush=True)
    print(f"\nnested shrinkage (grid {A.GRID}), training copies {train_augs or 'none'}; base = shipped 0.6")
    A.report(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cmd", choices=["eval", "loco", "nested"])
    parser.add_argument("--augs", nargs="*", default=[])
    parser.add_argument("--methods", nargs="*", default=METHODS)
    parser.add_argument(
        "--gender-shrinkage",
        type=float,
        default=None,
        help="diagnostic only (chosen after looking): shrinkage of the per-gender models",
    )
    parser.add_argument(
        "--shrinkage",
        type=float,
        default=0.6,
        help="sensitivity check only: shrinkage of every model except `base` (always 0.6)",
    )
    parser.add_argument("--ref", default="base", help="McNemar / dUAR reference row (base or all+aug)")
    args = parser.parse_args()
    global GENDER_SHRINK, SHRINK
    GENDER_SHRINK = args.gender_shrinkage
    SHRINK = args.shrinkage
    if args.cmd == "nested":
        run_nested(tuple(args.augs))
    else:
        (run_cv if args.cmd == "eval" else run_loco)(tuple(args.augs), args.methods, args.ref)


if __name__ == "__main__":
    main()
