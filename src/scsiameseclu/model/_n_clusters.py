"""Label-free choice of the number of clusters."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score


def estimate_n_clusters(
    z: np.ndarray, *, k_min: int = 2, k_max: int = 20, max_cells: int = 5000, random_state: int = 0
) -> tuple[int, dict[int, float]]:
    """Pick k by the mean silhouette of spherical k-means on the pre-trained embedding.

    Cells are L2-normalised (the clustering head uses cosine similarity); at most ``max_cells``
    cells are sampled so the cost stays bounded. Returns the chosen k and the score of every k.
    """
    rng = np.random.default_rng(random_state)
    if z.shape[0] > max_cells:
        z = z[rng.choice(z.shape[0], max_cells, replace=False)]
    zn = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    k_max = min(k_max, zn.shape[0] - 1)
    scores = {}
    for k in range(k_min, k_max + 1):
        labels = KMeans(k, n_init=3, random_state=random_state).fit_predict(zn)
        if len(np.unique(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(zn, labels, random_state=random_state))
    if not scores:
        return k_min, scores
    return max(scores, key=scores.get), scores
