"""Leiden partitions of the embedding: the shared-neighbour graph and the fixed-k bisection."""

import subprocess
import sys
import textwrap

import numpy as np
from sklearn.metrics import adjusted_rand_score

from scsiameseclu.model._init import leiden_partition, shared_neighbour_graph


def blobs(n_per: int = 60, n_blobs: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = 20.0 * np.eye(n_blobs, 8)
    z = np.vstack([c + rng.normal(size=(n_per, 8)) for c in centres]).astype(np.float32)
    return z, np.repeat(np.arange(n_blobs), n_per)


def test_shared_neighbour_graph():
    z, labels = blobs()
    graph = shared_neighbour_graph(z, n_neighbors=10).obsp["connectivities"]
    assert graph.shape == (z.shape[0], z.shape[0])
    assert abs(graph - graph.T).max() < 1e-6
    assert graph.diagonal().max() == 0
    assert graph.data.min() > 0 and graph.data.max() <= 1
    rows, cols = graph.nonzero()
    assert (labels[rows] == labels[cols]).all()  # far-apart blobs share no neighbours
    # Every cell is joined to its 9 nearest other cells (its set of 10 includes itself).
    dist = ((z[:, None] - z[None]) ** 2).sum(-1)
    nearest = np.argsort(dist, axis=1)[:, 1:10]
    assert all(graph[i, j] > 0 for i in range(0, z.shape[0], 17) for j in nearest[i])


def test_leiden_partition_has_k_parts():
    z, labels = blobs()
    parts = leiden_partition(z, 3, random_state=0)
    assert parts is not None and len(np.unique(parts)) == 3
    assert adjusted_rand_score(labels, parts) == 1.0
    assert leiden_partition(z, 3, random_state=0).tolist() == parts.tolist()


def test_fixed_k_run_does_not_compile_umap():
    # The Leiden partitions of a run with a given k use no scanpy kNN graph, so that a fresh
    # process does not import umap / pynndescent (about 10 s of numba compilation).
    code = textwrap.dedent(
        """
        import sys, warnings
        import scanpy as sc, squidpy as sq
        import scsiameseclu as ssc
        adata = ssc.datasets.synthetic_tissue(300, n_domains=3, n_genes=50, random_state=0)
        sc.pp.pca(adata, n_comps=10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6)
        for graph_weight in (None, 0.0):  # domains (mixture's Leiden start), cell types (Leiden seeding)
            ssc.tl.siamese_cluster(adata, n_clusters=3, graph_weight=graph_weight, max_epochs=10, show_progress_bar=False)
        assert adata.uns["ssc"]["params"]["init"] == "leiden"
        assert "umap" not in sys.modules and "pynndescent" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=600)
