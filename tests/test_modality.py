"""Extra modalities (``extra_rep``): fusion, validation, save/load, new cells, mini-batches."""

import json

import numpy as np
import pytest
import torch
from conftest import FAST, assert_unchanged, snapshot
from sklearn.metrics import adjusted_rand_score

import scsiameseclu as ssc
from scsiameseclu.model import SiameseClusterModel
from scsiameseclu.module import GatedFusion, NetworkConfig, SiameseNetwork, SoftmaxFusion

TINY = {"max_epochs": 4, "show_progress_bar": False}


def _proteins(adata, n=5, seed=0):
    """Float proteins that follow the cell types and split the two largest in two (RNA cannot)."""
    rng = np.random.default_rng(seed)
    cell_type = adata.obs["cell_type"].cat.codes.to_numpy()
    split = np.isin(cell_type, np.argsort(-np.bincount(cell_type))[:2]) & (rng.random(adata.n_obs) < 0.5)
    group = np.unique(2 * cell_type + split, return_inverse=True)[1]
    centres = rng.normal(scale=2.0, size=(group.max() + 1, n))
    return (centres[group] + rng.normal(size=(adata.n_obs, n))).astype(np.float32), group


@pytest.fixture
def cite(knn):
    adata = knn
    adata.obsm["ADT"], adata.obs["group"] = _proteins(adata)
    return adata


def test_extra_rep_results_and_params(cite):
    before = cite.obsm["ADT"].copy()
    ssc.tl.siamese_cluster(cite, n_clusters=4, extra_rep="ADT", **TINY)
    uns = cite.uns["ssc"]
    assert cite.obsm["X_ssc"].shape == (cite.n_obs, 32)
    assert list(uns["params"]["extra_rep"]) == ["ADT"]
    assert list(uns["params"]["extra_dims"]) == [5]
    assert uns["params"]["library_key"] == "None"
    assert uns["params"]["init_weights"] == "identity"  # one block of coordinates per modality
    assert np.array_equal(cite.obsm["ADT"], before)  # used as given, never transformed in place


def test_several_extra_reps(cite):
    cite.obsm["ATAC"] = np.random.default_rng(1).normal(size=(cite.n_obs, 3)).astype(np.float32)
    model = ssc.tl.siamese_cluster(cite, n_clusters=4, extra_rep=["ADT", "ATAC"], return_model=True, **TINY)
    assert list(cite.uns["ssc"]["params"]["extra_dims"]) == [5, 3]
    assert len(model.network.extras) == 2
    x = model.spec.features(cite)
    assert x.shape[1] == cite.obsm["X_pca"].shape[1] + 8


def test_proteins_separate_what_rna_cannot(cite):
    """Two cell types are split in two by the proteins only: with them, the groups are found better."""
    rna = cite.copy()
    kw = {"n_clusters": int(cite.obs["group"].nunique()), **FAST}
    ssc.tl.siamese_cluster(rna, **kw)
    ssc.tl.siamese_cluster(cite, extra_rep="ADT", **kw)
    ari_rna = adjusted_rand_score(cite.obs["group"], rna.obs["ssc"])
    ari_both = adjusted_rand_score(cite.obs["group"], cite.obs["ssc"])
    assert ari_both > ari_rna + 0.04, (ari_rna, ari_both)


def _with_nan(adata):
    adata.obsm["ADT"][3, 1] = np.nan


BAD = {
    "missing": (lambda a: None, {"extra_rep": "nope"}, KeyError, "extra_rep='nope'"),
    "missing_in_list": (lambda a: None, {"extra_rep": ["ADT", "nope"]}, KeyError, "extra_rep='nope'"),
    "nan": (_with_nan, {"extra_rep": "ADT"}, ValueError, "NaN"),
    "not_a_key": (lambda a: None, {"extra_rep": 3}, TypeError, "extra_rep"),
    "empty_list": (lambda a: None, {"extra_rep": []}, TypeError, "extra_rep"),
    "duplicate": (lambda a: None, {"extra_rep": ["ADT", "ADT"]}, ValueError, "more than once"),
    "is_expression": (lambda a: None, {"extra_rep": "X_pca"}, ValueError, "expression input"),
    "is_use_rep": (lambda a: None, {"use_rep": "ADT", "extra_rep": "ADT"}, ValueError, "expression input"),
    "constant": (
        lambda a: a.obsm.__setitem__("flat", np.ones((a.n_obs, 2), dtype=np.float32)),
        {"extra_rep": "flat"},
        ValueError,
        "constant",
    ),
    "extra_dims_by_hand": (lambda a: None, {"network_kwargs": {"extra_dims": (5,)}}, ValueError, "extra_rep"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_extra_rep_leaves_adata_unchanged(cite, case):
    setup, kwargs, error, match = BAD[case]
    setup(cite)
    before = snapshot(cite)
    with pytest.raises(error, match=match):
        ssc.tl.siamese_cluster(cite, n_clusters=4, **{**TINY, **kwargs})
    assert_unchanged(cite, before)


def test_integer_counts_warn_and_get_log1p(cite):
    counts = np.random.default_rng(0).poisson(5.0, size=(cite.n_obs, 4)).astype(np.int64)
    cite.obsm["ADT_counts"] = counts
    with pytest.warns(UserWarning, match="clr"):
        model = ssc.tl.siamese_cluster(cite, n_clusters=4, extra_rep="ADT_counts", return_model=True, **TINY)
    kept = np.log1p(counts[:, list(model.spec.extras[0].index)])
    x = model.spec.features(cite)
    assert np.allclose(x[:, -kept.shape[1] :], kept / model.spec.extras[0].scale, atol=1e-5)


def test_save_load_and_new_cells(cite, tmp_path):
    train, new = cite[:300].copy(), cite[300:].copy()
    for part in (train, new):
        import scanpy as sc

        sc.pp.neighbors(part, n_neighbors=10, random_state=0)
    model = ssc.tl.siamese_cluster(train, n_clusters=4, extra_rep="ADT", return_model=True, **TINY)
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["input"]["extra_rep"] == ["ADT"] and config["settings"]["network"]["extra_dims"] == [5]
    loaded = SiameseClusterModel.load(tmp_path / "m", device="cpu")
    assert loaded.params() == model.params()
    assert np.array_equal(loaded.get_latent_representation(train), train.obsm["X_ssc"])
    assert np.array_equal(loaded.predict(new), model.predict(new))
    # The proteins matter: changing them changes the embedding of the same cells.
    shuffled = new.copy()
    shuffled.obsm["ADT"] = shuffled.obsm["ADT"][::-1].copy()
    assert not np.allclose(loaded.get_latent_representation(shuffled), loaded.get_latent_representation(new))
    without = new.copy()
    del without.obsm["ADT"]
    with pytest.raises(KeyError, match="extra_rep='ADT'"):
        loaded.predict(without)
    narrow = new.copy()
    narrow.obsm["ADT"] = narrow.obsm["ADT"][:, :3]
    with pytest.raises(ValueError, match="3 columns"):
        loaded.predict(narrow)


def test_minibatch_with_extra_rep(cite):
    model = ssc.tl.siamese_cluster(cite, n_clusters=4, extra_rep="ADT", batch_size=32, return_model=True, **TINY)
    assert cite.uns["ssc"]["training"]["mode"] == "minibatch"
    assert cite.obsm["X_ssc"].shape == (cite.n_obs, 32)
    assert len(model.network.extras) == 1 and model.predict().shape == (cite.n_obs,)


def test_softmax_fusion_generalises_gated_fusion():
    torch.manual_seed(0)
    z_expr, z_graph = torch.randn(20, 8), torch.randn(20, 8)
    for w in (0.0, 0.3, 0.8, 1.0):
        gated, g1 = GatedFusion(8, w)(z_expr, z_graph)
        soft, g2 = SoftmaxFusion(8, 1, w)([z_expr], z_graph)
        assert torch.allclose(gated, soft, atol=1e-6) and torch.allclose(g1, g2, atol=1e-6)
    # Three branches at initialisation: the prior weights, graph w, the others (1 - w) / 2 each.
    z_extra = torch.randn(20, 8)
    z, gate = SoftmaxFusion(8, 2, 0.6)([z_expr, z_extra], z_graph)
    assert torch.allclose(z, 0.2 * z_expr + 0.2 * z_extra + 0.6 * z_graph, atol=1e-6)
    assert torch.allclose(gate, torch.full_like(gate, 0.6))
    z, gate = SoftmaxFusion(8, 2, 0.0)([z_expr, z_extra], None)
    assert torch.allclose(z, 0.5 * (z_expr + z_extra), atol=1e-6) and not gate.any()


def test_network_splits_modalities():
    torch.manual_seed(0)
    net = SiameseNetwork(13, 3, NetworkConfig(extra_dims=(3,))).eval()
    assert net.n_input == 10 and net.decoder[-1].out_features == 13
    x = torch.randn(30, 13)
    edges = torch.stack([torch.arange(29), torch.arange(1, 30)])
    edges = torch.cat([edges, edges.flip(0)], dim=1)
    with torch.no_grad():
        z, gate = net.embed(x, edges)
        x2 = x.clone()
        x2[:, 10:] += 1.0
        z2, _ = net.embed(x2, edges)
    assert z.shape == (30, 32) and gate.shape == (30, 32)
    assert not torch.allclose(z, z2)
    with pytest.raises(ValueError, match="extra_dims"):
        NetworkConfig(extra_dims=(0,))
    with pytest.raises(ValueError, match="no expression column"):
        SiameseNetwork(3, 2, NetworkConfig(extra_dims=(3,)))
