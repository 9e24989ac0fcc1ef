"""Mini-batch training on neighbourhood subgraphs and chunked inference (small data, fast)."""

import numpy as np
import pytest
import torch
from conftest import FAST, assert_unchanged, make_tissue, snapshot
from sklearn.metrics import adjusted_rand_score
from torch_geometric.utils import k_hop_subgraph, subgraph

import scsiameseclu as ssc
from scsiameseclu._graph import graph_to_pairs
from scsiameseclu.model import Limits, ModelSettings, SiameseClusterModel
from scsiameseclu.model._batches import CellGraph, auto_batch_size, embed_chunked, locality_order
from scsiameseclu.module import NetworkConfig, SiameseNetwork

LIMITS = Limits()

TINY = {"max_epochs": 4, "show_progress_bar": False}  # where only the mechanics matter


@pytest.fixture(scope="module")
def _tissue600():
    return make_tissue(600)


@pytest.fixture
def tissue600(_tissue600):
    return _tissue600.copy()


def _pairs(adata):
    return graph_to_pairs(adata.obsp["spatial_connectivities"])


def test_neighbourhood_matches_k_hop_subgraph(tissue600):
    pairs = _pairs(tissue600)
    n = tissue600.n_obs
    graph = CellGraph(torch.from_numpy(pairs), n)
    edge_index = torch.from_numpy(np.hstack([pairs, pairs[::-1]]))
    seeds = torch.tensor([7, 3, 512, 99])
    for hops in (0, 1, 2, 3):
        nodes, local_pairs, local_edges = graph.neighbourhood(seeds, hops)
        assert nodes[:4].tolist() == seeds.tolist()  # seeds first, in order
        ref_nodes = k_hop_subgraph(seeds, hops, edge_index, num_nodes=n)[0]
        assert sorted(nodes.tolist()) == ref_nodes.tolist()
        ref_edges = subgraph(nodes, edge_index, num_nodes=n)[0]
        got = nodes[local_edges]
        assert set(map(tuple, got.T.tolist())) == set(map(tuple, ref_edges.T.tolist()))
        assert (local_pairs[0] < local_pairs[1]).all() and local_pairs.shape[1] * 2 == local_edges.shape[1]
    # the lookup buffer is reset: a second call gives the same answer
    again = graph.neighbourhood(seeds, 2)[0]
    assert torch.equal(again, graph.neighbourhood(seeds, 2)[0])


@pytest.mark.parametrize("n_hops", [0, 1])
def test_chunked_embedding_equals_full(tissue600, n_hops):
    pairs = _pairs(tissue600)
    x = torch.from_numpy(tissue600.obsm["X_pca"].astype(np.float32))
    edge_index = torch.from_numpy(np.hstack([pairs, pairs[::-1]]))
    torch.manual_seed(0)  # test-local network weights; the package never seeds globally
    net = SiameseNetwork(x.shape[1], 4, NetworkConfig(graph_weight=0.8, n_hops=n_hops)).eval()
    with torch.no_grad():
        z, gate = net.embed(x, edge_index)
        scores = net.cluster_scores(z)
    graph = CellGraph(torch.from_numpy(pairs), x.shape[0])
    order = locality_order(graph)
    z2, gate2, scores2 = embed_chunked(net, x, graph, device=torch.device("cpu"), chunk_size=53, order=order)
    torch.testing.assert_close(z2, z, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(gate2, gate, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(scores2, scores, atol=1e-5, rtol=1e-4)
    # a subset of cells, in the order asked for
    nodes = torch.tensor([400, 3, 250])
    z3 = embed_chunked(net, x, graph, nodes, device=torch.device("cpu"), chunk_size=2)[0]
    torch.testing.assert_close(z3, z[nodes], atol=1e-5, rtol=1e-4)


def test_chunked_forward_equals_full_on_trained_model(tissue600):
    from dataclasses import replace

    model = ssc.tl.siamese_cluster(tissue600, n_clusters=4, batch_size=128, return_model=True, **TINY)
    res = model.results()  # the training cells, embedded once after training
    z_full = model.get_latent_representation(tissue600)  # 600 cells: the whole graph at once
    proba_full = model.predict(tissue600, soft=True)
    np.testing.assert_array_equal(res.embedding, z_full)
    np.testing.assert_array_equal(res.proba, proba_full)
    # The same weights with chunked inference (chunks of 97 cells on their subgraphs) above 100 cells.
    small = replace(model.settings, limits=Limits(full_batch_max_cells=100, inference_chunk=97))
    state = model.network.state_dict()
    chunked = SiameseClusterModel.from_parts(small, model.spec, state=state, fit=model.fit, adata=tissue600)
    assert chunked.settings.chunked_inference(tissue600.n_obs)
    np.testing.assert_allclose(chunked.get_latent_representation(), z_full, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(chunked.predict(soft=True), proba_full, atol=1e-5, rtol=1e-4)


def test_cell_graph_is_int32_csr_of_both_directions(tissue600):
    pairs = _pairs(tissue600)
    graph = CellGraph(pairs, tissue600.n_obs)
    assert graph.col.dtype == torch.int32 and graph.rowptr.dtype == torch.int32
    assert graph.n_edges == 2 * pairs.shape[1]
    adj = graph.to_scipy()
    ref = tissue600.obsp["spatial_connectivities"]
    ref = ((ref + ref.T) > 0).astype(np.int8)
    ref.setdiag(0)
    ref.eliminate_zeros()
    assert (adj != ref).nnz == 0
    for i in (0, 17, 599):  # neighbours in ascending order, as in the edge lists
        row = graph.col[graph.rowptr[i] : graph.rowptr[i + 1]]
        assert torch.equal(row, torch.sort(row).values)
    np.testing.assert_array_equal(graph.degree().numpy(), np.diff(adj.indptr))


def test_propagate_on_csr_equals_edge_index(tissue600):
    from scsiameseclu.module import propagate

    pairs = _pairs(tissue600)
    graph = CellGraph(pairs, tissue600.n_obs)
    proba = torch.softmax(torch.randn(tissue600.n_obs, 5, generator=torch.Generator().manual_seed(0)), 1)
    edge_index = torch.from_numpy(np.hstack([pairs, pairs[::-1]]))
    for alpha in (0.0, 0.5, 0.8):
        torch.testing.assert_close(propagate(proba, graph.adjacency(), alpha), propagate(proba, edge_index, alpha))
    # a cell without neighbours keeps its own assignment
    lonely = CellGraph(pairs[:, pairs.max(0) < 599], tissue600.n_obs)
    torch.testing.assert_close(propagate(proba, lonely.adjacency(), 0.8)[599], proba[599])


def test_auto_batch_size_follows_neighbourhood_size():
    n = 60_000
    ring = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
    ring = torch.sort(ring, dim=0).values
    graph = CellGraph(ring, n)
    gen = torch.Generator().manual_seed(0)
    # 5 cells within 2 hops of each cell of a ring, 3 within 1 hop
    kw = {"target_cells": LIMITS.target_batch_cells, "min_seeds": LIMITS.min_batch_seeds}
    assert auto_batch_size(graph, 2, gen, **kw) == pytest.approx(LIMITS.target_batch_cells / 5, rel=0.05)
    assert auto_batch_size(graph, 1, gen, **kw) == pytest.approx(LIMITS.target_batch_cells / 3, rel=0.05)
    assert auto_batch_size(CellGraph(ring[:, :50], 100), 2, gen, **kw) == 100  # never more than the cells


def test_minibatch_runs_and_records(tissue600):
    ssc.tl.siamese_cluster(tissue600, n_clusters=4, batch_size=128, **FAST)
    uns = tissue600.uns["ssc"]
    training = uns["training"]
    assert training["mode"] == "minibatch" and training["batch_size"] == 128
    assert training["n_hops"] == 2 and 128 < training["mean_batch_cells"] < tissue600.n_obs
    assert training["inference"] == "full"
    assert uns["params"]["batch_size"] == 128
    assert {"pretrain", "init_prototypes", "cluster", "inference"} <= set(uns["timings"])
    assert len(uns["loss"]) <= 30 and np.isfinite(uns["loss"]).all()
    assert tissue600.obsm["X_ssc"].shape == (tissue600.n_obs, 32)


def test_default_is_full_batch_on_small_data(tissue600):
    settings = ModelSettings.resolve(n_clusters=4, spatial_graph=True)
    n = settings.limits.full_batch_max_cells
    assert not settings.minibatch(n, None) and settings.minibatch(n + 1, None) and settings.minibatch(100, 64)
    assert not settings.chunked_inference(n) and settings.chunked_inference(n + 1)
    ssc.tl.siamese_cluster(tissue600, n_clusters=4, **TINY)
    assert tissue600.uns["ssc"]["training"]["mode"] == "full"
    assert tissue600.uns["ssc"]["params"]["batch_size"] == "None"


def test_minibatch_ari_close_to_full_batch(tissue600):
    # Measured (seeds 0-2, 30 epochs): full batch ARI 0.84-0.86, batch_size=128 0.84-0.87.
    truth = tissue600.obs["domain"]
    full = ssc.tl.siamese_cluster(tissue600, n_clusters=4, copy=True, **FAST)
    mini = ssc.tl.siamese_cluster(tissue600, n_clusters=4, batch_size=128, copy=True, **FAST)
    ari_full = adjusted_rand_score(truth, full.obs["ssc"])
    ari_mini = adjusted_rand_score(truth, mini.obs["ssc"])
    assert ari_mini > 0.75, ari_mini
    assert ari_mini > ari_full - 0.08, (ari_mini, ari_full)


def test_minibatch_deterministic(tissue600):
    a = ssc.tl.siamese_cluster(
        tissue600, n_clusters=4, batch_size=100, random_state=3, copy=True, max_epochs=20, show_progress_bar=False
    )
    b = ssc.tl.siamese_cluster(
        tissue600, n_clusters=4, batch_size=100, random_state=3, copy=True, max_epochs=20, show_progress_bar=False
    )
    np.testing.assert_array_equal(a.obsm["X_ssc"], b.obsm["X_ssc"])
    assert a.obs["ssc"].equals(b.obs["ssc"])
    c = ssc.tl.siamese_cluster(
        tissue600, n_clusters=4, batch_size=100, random_state=4, copy=True, max_epochs=20, show_progress_bar=False
    )
    assert not np.array_equal(a.obsm["X_ssc"], c.obsm["X_ssc"])


def test_minibatch_leaves_global_rng(tissue600):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    ssc.tl.siamese_cluster(tissue600, n_clusters=4, batch_size=128, **TINY)
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize(
    ("batch_size", "error"),
    [(0, ValueError), (1, ValueError), (-5, ValueError), (2.5, TypeError), ("128", TypeError), (True, TypeError)],
)
def test_invalid_batch_size(tissue600, batch_size, error):
    before = snapshot(tissue600)
    with pytest.raises(error, match="batch_size"):
        ssc.tl.siamese_cluster(tissue600, n_clusters=4, batch_size=batch_size, **FAST)
    assert_unchanged(tissue600, before)
    model = ssc.model.SiameseClusterModel(tissue600, 4)
    with pytest.raises(error, match="batch_size"):
        model.train(batch_size=batch_size)
