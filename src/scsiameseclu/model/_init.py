"""Label-free starting prototypes: Leiden communities of the embedding with exactly k clusters."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.cluster import KMeans

from .._verbosity import scanpy_quiet

logger = logging.getLogger("scsiameseclu")


def leiden_partition(
    z: np.ndarray, n_clusters: int, *, random_state: int = 0, n_neighbors: int = 15, max_steps: int = 12
) -> np.ndarray | None:
    """Leiden labels with exactly ``n_clusters`` communities, by bisection on the resolution.

    Runs igraph Leiden (through scanpy) on the shared-neighbour graph of ``z``
    (:func:`shared_neighbour_graph`), on a private AnnData (the user's graph and ``obsp`` are not
    touched). Returns ``None`` when no resolution gives ``n_clusters``.
    """
    tmp = shared_neighbour_graph(z, n_neighbors=n_neighbors)
    lo, hi = 0.0, 1.0
    while True:  # find an upper resolution with at least n_clusters communities
        labels = leiden_labels(tmp, hi, random_state=random_state)
        if labels.max() + 1 >= n_clusters or hi > 100:
            break
        lo, hi = hi, hi * 2
    for _ in range(max_steps):
        if labels.max() + 1 == n_clusters:
            return labels
        mid = (lo + hi) / 2
        labels = leiden_labels(tmp, mid, random_state=random_state)
        if labels.max() + 1 < n_clusters:
            lo = mid
        else:
            hi = mid
    return labels if labels.max() + 1 == n_clusters else None


def ward_partition(z: np.ndarray, n_clusters: int) -> np.ndarray:
    """Ward's agglomerative partition of ``z`` into ``n_clusters`` clusters (no random draw).

    Memory and time grow with the square of the cells (scikit-learn's unstructured Ward): callers
    pass a bounded subsample (``Limits.ward_start_max_cells``).
    """
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=n_clusters, linkage="ward").fit_predict(np.asarray(z, dtype=np.float64))


def shared_neighbour_graph(z: np.ndarray, *, n_neighbors: int = 15):
    """A private AnnData whose ``obsp['connectivities']`` is the Jaccard shared-neighbour graph of ``z``.

    Each cell's ``n_neighbors`` nearest cells in ``z`` (itself included; exact, scikit-learn)
    form its neighbour set; two cells are joined when one is in the other's set, with weight the
    Jaccard index of their sets (as PhenoGraph weights its graph). Unlike scanpy's UMAP-weighted
    graph, it needs no numba compilation (about 10 s in a fresh process) and stays exact at any
    size.
    """
    from anndata import AnnData
    from sklearn.neighbors import NearestNeighbors

    n = z.shape[0]
    k = min(n_neighbors, n)
    knn = NearestNeighbors(n_neighbors=k).fit(z).kneighbors_graph(z, mode="connectivity")  # CSR
    shared = (knn @ knn.T).multiply((knn + knn.T) > 0).tocsr()  # |N_i ∩ N_j| on the kNN pairs
    shared.data = shared.data / (2 * k - shared.data)
    shared.setdiag(0)
    shared.eliminate_zeros()
    tmp = AnnData(obs={"cell": np.arange(n)})
    tmp.obsp["connectivities"] = shared.astype(np.float32)
    return tmp


def embedding_graph(z: np.ndarray, *, n_neighbors: int = 15, random_state: int = 0):
    """A private AnnData holding scanpy's kNN graph of ``z`` (the user's ``obsp`` is not touched)."""
    import scanpy as sc
    from anndata import AnnData

    tmp = AnnData(obsm={"z": z})
    with scanpy_quiet():
        sc.pp.neighbors(tmp, use_rep="z", n_neighbors=min(n_neighbors, z.shape[0] - 1), random_state=random_state)
    return tmp


def leiden_labels(tmp, resolution: float, *, random_state: int = 0) -> np.ndarray:
    """Leiden community codes (0..n-1) on the graph ``tmp.obsp['connectivities']``."""
    import scanpy as sc

    with scanpy_quiet():
        sc.tl.leiden(
            tmp,
            resolution=resolution,
            flavor="igraph",
            n_iterations=2,
            random_state=random_state,
            key_added="c",
            obsp="connectivities",
        )
    return tmp.obs["c"].cat.codes.to_numpy()


def initial_prototypes(z: np.ndarray, n_clusters: int, random_state: int, method: str = "leiden") -> np.ndarray:
    """Starting prototypes: centroids of the L2-normalised embedding over a partition.

    ``"kmeans"``: spherical k-means (10 restarts), suited to smooth, compact tissue domains.
    ``"leiden"``: Leiden communities with exactly ``n_clusters`` parts, which follow the data's own
    population sizes where k-means splits large ones (cell types); falls back to k-means when no
    resolution gives ``n_clusters``.
    """
    zn = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    if method not in ("kmeans", "leiden"):
        msg = f"`init` must be 'kmeans', 'leiden' or 'auto', got {method!r}."
        raise ValueError(msg)
    labels = leiden_partition(z, n_clusters, random_state=random_state) if method == "leiden" else None
    if labels is None:
        if method == "kmeans":
            return KMeans(n_clusters, n_init=10, random_state=random_state).fit(zn).cluster_centers_
        logger.info("Leiden gave no partition with %d clusters; starting prototypes from k-means.", n_clusters)
        return KMeans(n_clusters, n_init=10, random_state=random_state).fit(zn).cluster_centers_
    return np.stack([zn[labels == c].mean(0) for c in range(n_clusters)])
