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


def test_final_mixture_starts_recover_unequal_populations():
    # A large population (600 cells) and two small, nearby ones (60, 40): prototypes that split
    # the large one and merge the two small ones start EM in an optimum it does not fully leave;
    # k-means starts find a likelier fit that keeps every population whole (labels are never
    # read by the fit).
    import torch

    from scsiameseclu.model import Limits
    from scsiameseclu.model._final_mixture import fit_final_mixture
    from scsiameseclu.module import NetworkConfig, SiameseNetwork

    rng = np.random.default_rng(0)
    sizes = [600, 60, 40]
    centres = np.array([[-10.0, 0.0], [0.0, 3.0], [0.0, -3.0]])
    truth = np.repeat(np.arange(3), sizes)
    z = torch.as_tensor(centres[truth] + rng.normal(size=(truth.size, 2)), dtype=torch.float32)

    def fit(starts, limits=None, random_state=0):
        limits = limits or Limits()
        net = SiameseNetwork(5, 3, NetworkConfig(n_hidden=4, n_latent=2))
        net.set_prototypes(torch.tensor([[-1.0, 0.1], [-1.0, -0.1], [1.0, 0.0]]))
        log_lik = fit_final_mixture(
            net, z, starts=starts, kmeans_starts=5, limits=limits, random_state=random_state, device="cpu"
        )
        return log_lik, net.soft_assign(z, 1.0).argmax(1).numpy()

    alone, labels_alone = fit(("prototypes",))
    several, labels = fit(("prototypes", "kmeans"))
    assert list(alone) == ["prototypes"] and list(several) == ["prototypes", *(f"kmeans{i}" for i in range(5))]
    assert several["prototypes"] == alone["prototypes"]
    assert max(several.values()) > alone["prototypes"] + 0.1
    assert adjusted_rand_score(truth, labels) > 0.99
    assert adjusted_rand_score(truth, labels_alone) < 0.98
    # Ward's partition alone (the cell-type default) keeps every population whole, without a random
    # draw: any seed gives the same fit; on a subsample of 200 cells too.
    ward, labels_ward = fit(("ward",))
    assert list(ward) == ["ward"] and adjusted_rand_score(truth, labels_ward) > 0.99
    assert np.array_equal(fit(("ward",), random_state=7)[1], labels_ward)
    assert adjusted_rand_score(truth, fit(("ward",), Limits(ward_start_max_cells=200))[1]) > 0.99
