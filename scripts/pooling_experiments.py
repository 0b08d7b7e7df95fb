"""Attentive statistics pooling of Whisper-base encoder frames vs mean+std + shrinkage LDA.

Usage (after `scripts/augment_experiments.py extract --backend hf_whisper --augs orig --frames`,
which stores the speech-extent frames of layers 2-6, float16, in
/tmp/sercache-aug/hf_whisper/<corpus>/frames.npz):

    nice -n 19 .venv/bin/python scripts/pooling_experiments.py [--heads 2] [--epochs 30]
        [--seeds 0 1] [--variants lda att mean]

* Protocol as scripts/quality.py (Emo-DB, EMOVO leave-one-speaker-out; RAVDESS 6 actor-grouped
  folds). Per fold everything is fitted on the training speakers only: per-dimension frame
  standardisation, the network, the LDA.
* `lda`: mean+std pooled frames (the shipped 5120-dim vector) + ShrinkageLDAClassifier(0.6).
* `att`: small torch head trained per fold: softmax-weighted mean of the 5 standardised layers
  (learned layer weights) -> multi-head attentive statistics pooling (Okabe et al. 2018: per head,
  a = softmax_t(w_h . tanh(W x_t)), pooled attention-weighted mean and std) -> dropout -> linear
  softmax. Class-weighted cross-entropy, AdamW (lr 1e-3, weight decay 1e-2), batch 16, fixed
  epochs, frames subsampled to 25 Hz in training (every other frame, random phase) and at test time
  all frames. Probabilities averaged over seeds.
* `crops`: `lda` with each training clip also pooled over 4 random contiguous crops of its frames
  (50-90 % of its speech-extent frames; seeded): crop augmentation without re-encoding.
* `mean`: the same network with uniform attention (mean+std pooling, learned layer weights): the
  control that separates the pooling from "neural head instead of LDA".
* Metrics: UAR / WA / macro-F1 pooled over folds, McNemar vs `lda`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from itertools import pairwise
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from augment_experiments import AUG_DIR, CORPORA, groups_of, items, lda, report, scores  # noqa: E402


def load_frames(corpus: str) -> tuple[list[np.ndarray], int]:
    data = np.load(AUG_DIR / "hf_whisper" / corpus / "frames.npz")
    frames, offsets = data["frames"], data["offsets"]
    return [frames[a:b] for a, b in pairwise(offsets)], len(data["layers"])


def pooled(frames: list[np.ndarray]) -> np.ndarray:
    return np.stack(
        [np.concatenate([f.astype(np.float32).mean(0), f.astype(np.float32).std(0)]) for f in frames]
    ).astype(np.float64)


def crop_pooled(frames: list[np.ndarray], n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros((n, len(frames), 2 * frames[0].shape[1]))
    for i, f in enumerate(frames):
        for k in range(n):
            m = max(2, round(len(f) * rng.uniform(0.5, 0.9)))
            a = rng.integers(0, max(1, len(f) - m + 1))
            g = f[a : a + m].astype(np.float32)
            out[k, i] = np.concatenate([g.mean(0), g.std(0)])
    return out


def make_net(n_layers: int, width: int, n_classes: int, heads: int, attention: bool):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer_logits = nn.Parameter(torch.zeros(n_layers))
            self.att = (
                nn.Sequential(nn.Linear(width, 64), nn.Tanh(), nn.Linear(64, heads)) if attention else None
            )
            n_heads = heads if attention else 1
            self.drop = nn.Dropout(0.3)
            self.out = nn.Linear(2 * width * n_heads, n_classes)

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            # x (B, T, L, W), mask (B, T) bool
            w = torch.softmax(self.layer_logits, 0)
            h = torch.einsum("btlw,l->btw", x, w)
            if self.att is not None:
                e = self.att(h).masked_fill(~mask[..., None], -1e4)  # (B, T, H)
                a = torch.softmax(e, dim=1)
            else:
                a = mask[..., None].float() / mask.sum(1, keepdim=True)[..., None]
            mu = torch.einsum("bth,btw->bhw", a, h)
            var = torch.einsum("bth,btw->bhw", a, h * h) - mu * mu
            sd = torch.sqrt(var.clamp_min(1e-5))
            z = torch.cat([mu, sd], dim=2).flatten(1)
            return self.out(self.drop(z))

    return Net()


def batchify(frames: list[np.ndarray], idx: np.ndarray, mean, std, n_layers, sub: int, rng):
    import torch

    chosen = []
    for i in idx:
        f = frames[i]
        if sub > 1:
            f = f[rng.integers(sub) :: sub] if len(f) > sub else f
        chosen.append(f)
    t = max(len(f) for f in chosen)
    width = chosen[0].shape[1] // n_layers
    x = np.zeros((len(chosen), t, n_layers * width), np.float32)
    mask = np.zeros((len(chosen), t), bool)
    for k, f in enumerate(chosen):
        x[k, : len(f)] = (f.astype(np.float32) - mean) / std
        mask[k, : len(f)] = True
    return torch.from_numpy(x).view(len(chosen), t, n_layers, width), torch.from_numpy(mask)


def train_predict(frames, y_idx, train, test, n_classes, n_layers, seed, args, attention):
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tr = np.flatnonzero(train)
    cat = np.concatenate([frames[i] for i in tr]).astype(np.float32)
    mean, std = cat.mean(0), cat.std(0) + 1e-5
    del cat
    width = frames[0].shape[1] // n_layers
    net = make_net(n_layers, width, n_classes, args.heads, attention)
    counts = np.bincount(y_idx[tr], minlength=n_classes)
    weight = torch.tensor(len(tr) / (n_classes * np.maximum(counts, 1)), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    steps = args.epochs * int(np.ceil(len(tr) / 16))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps, pct_start=0.1)
    net.train()
    for _ in range(args.epochs):
        order = rng.permutation(tr)
        for k in range(0, len(order), 16):
            b = order[k : k + 16]
            x, m = batchify(frames, b, mean, std, n_layers, 2, rng)
            loss = loss_fn(net(x, m), torch.from_numpy(y_idx[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    te = np.flatnonzero(test)
    out = []
    with torch.no_grad():
        for k in range(0, len(te), 32):
            x, m = batchify(frames, te[k : k + 32], mean, std, n_layers, 1, rng)
            out.append(torch.softmax(net(x, m), 1).numpy())
    return np.concatenate(out)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=["lda", "att", "mean"])
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
    rows: dict[str, dict] = {v: {} for v in args.variants}
    for corpus in args.corpora:
        its = items(corpus)
        y = np.array([it.label for it in its])
        labels = sorted(set(y.tolist()))
        y_idx = np.searchsorted(labels, y)
        groups = groups_of(corpus, its)
        frames, n_layers = load_frames(corpus)
        x = pooled(frames) if {"lda", "crops"} & set(args.variants) else None
        crops = None
        for variant in args.variants:
            start = time.perf_counter()
            proba = np.zeros((len(y), len(labels)))
            for g in sorted(set(groups)):
                test = groups == g
                if variant == "crops":
                    if crops is None:
                        crops = crop_pooled(frames, 4, 0)
                    xs = np.concatenate([x[~test], *[c[~test] for c in crops]])
                    model = lda().fit(xs, list(np.tile(y[~test], 1 + len(crops))))
                    proba[test] = model.predict_proba(x[test])
                elif variant == "lda":
                    model = lda().fit(x[~test], list(y[~test]))
                    proba[test] = model.predict_proba(x[test])
                else:
                    proba[test] = np.mean(
                        [
                            train_predict(
                                frames, y_idx, ~test, test, len(labels), n_layers, s, args, variant == "att"
                            )
                            for s in args.seeds
                        ],
                        axis=0,
                    )
            rows[variant][corpus] = scores(proba, labels, y)
            r = rows[variant][corpus]
            print(
                f"{corpus} {variant}: UAR {r['uar']:.3f} WA {r['wa']:.3f} F1 {r['f1']:.3f}"
                f"  ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    if all(len(r) == len(CORPORA) for r in rows.values()) and "lda" in rows:
        report(rows, base="lda")


if __name__ == "__main__":
    main()
