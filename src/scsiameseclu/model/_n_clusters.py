"""Label-free choice of the number of clusters."""

from __future__ import annotations

import numpy as np

from ._init import embedding_graph, leiden_labels
from ._settings import Limits

#: Leiden resolution whose community count is the estimate of k.
RESOLUTION = 0.3
#: Resolutions whose community counts are recorded too, to show how k moves with resolution.
RESOLUTIONS = (0.1, 0.2, 0.3, 0.5, 1.0)


def estimate_n_clusters(
    z: np.ndarray,
    *,
    k_min: int = 2,
    k_max: int = 50,
    resolution: float = RESOLUTION,
    n_neighbors: int = 15,
    max_cells: int | None = None,
    random_state: int = 0,
) -> tuple[int, dict[float, int]]:
    """Pick k as the number of Leiden communities of the pre-trained embedding at a low resolution.

    The embedding's 15-NN graph (scanpy, on a private AnnData) is partitioned by Leiden at
    ``resolution`` (0.3, below scanpy's default 1.0, which splits large populations); the
    community count, clipped to ``[k_min, k_max]``, is k. At most ``max_cells`` cells are sampled
    so the cost stays bounded (``None``: :attr:`Limits.n_clusters_max_cells
    <scsiameseclu.model.Limits.n_clusters_max_cells>`). Returns k and the community count at each of ``RESOLUTIONS`` (and
    ``resolution``).
    """
    if max_cells is None:
        max_cells = Limits().n_clusters_max_cells
    rng = np.random.default_rng(random_state)
    if z.shape[0] > max_cells:
        z = z[np.sort(rng.choice(z.shape[0], max_cells, replace=False))]
    graph = embedding_graph(z, n_neighbors=n_neighbors, random_state=random_state)
    counts = {
        float(r): int(leiden_labels(graph, r, random_state=random_state).max() + 1)
        for r in sorted({*RESOLUTIONS, resolution})
    }
    k_max = max(k_min, min(k_max, z.shape[0] - 1))
    return int(np.clip(counts[float(resolution)], k_min, k_max)), counts
