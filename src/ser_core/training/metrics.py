"""Classification metrics for reports: UAR, WA, macro-F1, confusion matrix and per-class scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def classification_report(
    truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Scores over `labels` (rows of `confusion` are true labels, columns predictions)."""
    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(truth, predicted, strict=True):
        confusion[index[t], index[p]] += 1
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    hits = np.diag(confusion)
    recall = np.divide(hits, support, out=np.zeros(len(labels)), where=support > 0)
    precision = np.divide(hits, predicted_count, out=np.zeros(len(labels)), where=predicted_count > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(len(labels)), where=denominator > 0)
    present = support > 0
    return {
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "wa": float(hits.sum() / max(confusion.sum(), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "labels": list(labels),
        "confusion": confusion.tolist(),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "n_files": int(confusion.sum()),
    }


def calibration_report(probs: np.ndarray, truth_index: np.ndarray, bins: int = 15) -> dict[str, Any]:
    """Expected calibration error of the top label over `bins` equal-width confidence bins, and the
    bins themselves (for a reliability diagram): how often a label given with confidence p is right."""
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(truth_index)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = []
    ece = 0.0
    for b in range(bins):
        members = which == b
        n = int(members.sum())
        if n:
            accuracy, mean_conf = float(correct[members].mean()), float(confidence[members].mean())
            ece += n / len(confidence) * abs(accuracy - mean_conf)
            rows.append({"low": b / bins, "high": (b + 1) / bins, "n": n, "accuracy": accuracy, "confidence": mean_conf})
    return {
        "ece": float(ece),
        "bins": rows,
        "mean_confidence": float(confidence.mean()) if len(confidence) else 0.0,
        "accuracy": float(correct.mean()) if len(correct) else 0.0,
        "n": len(confidence),
    }
