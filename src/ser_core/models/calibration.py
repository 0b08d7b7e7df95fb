"""Temperature scaling: one number that softens (or sharpens) a classifier's probabilities so that
a label given with confidence p is right about p of the time on audio the model was not fit on.

Fit on predictions for speakers (better: whole corpora) held out from the classifier's training;
the artifact stores it and `Model.predict_proba` applies it.
"""

from __future__ import annotations

import numpy as np

#: Probabilities are floored here before taking logs (the classifier's softmax may underflow to 0).
_FLOOR = 1e-300


def scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """`softmax(log(probs) / temperature)`: the classifier's scores divided by the temperature."""
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    if temperature == 1.0:
        return probs
    logits = np.log(np.maximum(probs, _FLOOR)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def nll(probs: np.ndarray, truth_index: np.ndarray) -> float:
    picked = np.asarray(probs)[np.arange(len(truth_index)), truth_index]
    return float(-np.mean(np.log(np.maximum(picked, 1e-12))))


def fit_temperature(probs: np.ndarray, truth_index: np.ndarray) -> float:
    """The temperature (0.05-1000) minimising the negative log-likelihood of the true labels."""
    from scipy.optimize import minimize_scalar

    truth_index = np.asarray(truth_index)
    found = minimize_scalar(
        lambda log_t: nll(scale(probs, float(np.exp(log_t))), truth_index),
        bounds=(np.log(0.05), np.log(1000.0)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(found.x))
