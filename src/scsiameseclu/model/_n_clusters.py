"""Label-free choice of the number of clusters, and the evidence for it.

k is the number of Leiden communities of the pre-trained embedding at a low resolution
(:func:`estimate_n_clusters`). Beside it, :func:`stability_curve` measures for every candidate k how
much partitions of augmented views of the data agree; both are recorded, and
:func:`scsiameseclu.pl.n_clusters` draws them. The most stable k itself was measured as a choice
and found worse than the Leiden count on the shared datasets (low k are the most stable:
``benchmarks/results/n_clusters.md``), so it informs the user rather than choosing.
"""

from __future__ import annotations

import numpy as np

from .._defaults import N_CLUSTERS_RESOLUTION
from ._init import embedding_graph, leiden_labels
from ._settings import Limits

#: Leiden resolution whose community count is the estimate of k.
RESOLUTION = N_CLUSTERS_RESOLUTION
#: Resolutions whose community counts are recorded too, to show how k moves with resolution.
RESOLUTIONS = (0.1, 0.2, 0.3, 0.5, 1.0)
#: Augmented views whose partitions are compared by :func:`stability_curve`.
N_VIEWS = 6
#: Candidate k of the stability curve: 2 to this many, or to twice the chosen k when larger.
STABILITY_K_MAX = 20


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


def ward_cuts(z: np.ndarray, ks) -> np.ndarray:
    """Ward's hierarchy of ``z``, cut at each of ``ks``: one column of labels per k (no random draw)."""
    from scipy.cluster.hierarchy import cut_tree, linkage

    return cut_tree(linkage(np.asarray(z, dtype=np.float64), method="ward"), n_clusters=list(ks))


def stability_curve(views: list[np.ndarray], ks) -> dict[int, float]:
    """Agreement between partitions of augmented views, for each k in ``ks``.

    Each view (the same cells, embedded through another draw of the augmentation) is cut into k
    clusters by Ward's hierarchy; the stability of k is the mean adjusted Rand index over all
    pairs of views (1: every view gives the same partition; 0: chance agreement). ARI corrects
    for chance, but finer partitions are still less stable than coarse ones, so the curve tends
    to fall with k: what it shows is where it drops.
    """
    from sklearn.metrics import adjusted_rand_score

    if len(views) < 2:
        msg = f"A stability curve needs at least 2 views, got {len(views)}."
        raise ValueError(msg)
    ks = [int(k) for k in ks if 2 <= k < views[0].shape[0]]
    cuts = [ward_cuts(z, ks) for z in views]
    pairs = [(a, b) for a in range(len(cuts)) for b in range(a + 1, len(cuts))]
    return {
        k: float(np.mean([adjusted_rand_score(cuts[a][:, i], cuts[b][:, i]) for a, b in pairs]))
        for i, k in enumerate(ks)
    }


def stability_range(k: int) -> range:
    """The candidate k of the stability curve around a chosen ``k``."""
    return range(2, max(STABILITY_K_MAX, 2 * k) + 1)
