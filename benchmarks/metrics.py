"""Agreement of predicted clusters with the ground truth: ARI, NMI and Hungarian accuracy."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    """Fraction of cells correctly labelled under the best one-to-one cluster ↔ class matching."""
    t_codes, t_idx = np.unique(np.asarray(truth).astype(str), return_inverse=True)
    p_codes, p_idx = np.unique(np.asarray(pred).astype(str), return_inverse=True)
    table = np.zeros((p_codes.size, t_codes.size), dtype=np.int64)
    np.add.at(table, (p_idx, t_idx), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(t_idx))


def scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    truth = np.asarray(truth).astype(str)
    pred = np.asarray(pred).astype(str)
    return {
        "ari": float(adjusted_rand_score(truth, pred)),
        "nmi": float(normalized_mutual_info_score(truth, pred)),
        "acc": accuracy(truth, pred),
    }
