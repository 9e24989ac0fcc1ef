"""Every bad input gives a clear error naming the argument, and leaves `adata` unchanged."""

import numpy as np
import pytest
from conftest import FAST, assert_unchanged, snapshot
from scipy import sparse

import scsiameseclu as ssc


def _set(adata, slot, key, value):
    getattr(adata, slot)[key] = value


BAD = {
    "nan_rep": (lambda a: a.obsm["X_pca"].__setitem__((0, 0), np.nan), {}, ValueError, "NaN"),
    "inf_X": (
        lambda a: setattr(a, "X", _with(a.X.toarray(), (1, 1), np.inf)),
        {"use_rep": "X"},
        ValueError,
        "infinite",
    ),
    "negative_int_layer": (
        lambda a: _set(a, "layers", "c", -np.ones(a.shape, dtype=np.int32)),
        {"layer": "c"},
        ValueError,
        "negative",
    ),
    "empty_cell": (lambda a: a.obsm["X_pca"].__setitem__(0, 0.0), {}, ValueError, "no signal"),
    "constant_features": (
        lambda a: _set(a, "obsm", "flat", np.ones((a.n_obs, 3))),
        {"use_rep": "flat"},
        ValueError,
        "constant",
    ),
    "missing_rep": (lambda a: None, {"use_rep": "X_nope"}, KeyError, "X_nope"),
    "missing_layer": (lambda a: None, {"layer": "nope"}, KeyError, "nope"),
    "rep_and_layer": (lambda a: None, {"use_rep": "X_pca", "layer": "counts"}, ValueError, "not both"),
    "missing_graph_key": (lambda a: None, {"connectivity_key": "nope"}, KeyError, "spatial_neighbors"),
    "graph_dense": (lambda a: _set(a, "obsp", "g", np.eye(a.n_obs)), {"connectivity_key": "g"}, TypeError, "sparse"),
    "graph_negative": (
        lambda a: _set(a, "obsp", "g", -a.obsp["spatial_connectivities"]),
        {"connectivity_key": "g"},
        ValueError,
        "negative",
    ),
    "graph_nan": (lambda a: _set(a, "obsp", "g", _nan_graph(a)), {"connectivity_key": "g"}, ValueError, "NaN"),
    "graph_empty": (
        lambda a: _set(a, "obsp", "g", sparse.csr_matrix((a.n_obs, a.n_obs))),
        {"connectivity_key": "g"},
        ValueError,
        "no edges",
    ),
    "n_clusters_1": (lambda a: None, {"n_clusters": 1}, ValueError, "n_clusters"),
    "n_clusters_big": (lambda a: None, {"n_clusters": 10_000}, ValueError, "n_clusters"),
    "n_clusters_float": (lambda a: None, {"n_clusters": 2.5}, TypeError, "n_clusters"),
    "n_clusters_bool": (lambda a: None, {"n_clusters": True}, TypeError, "n_clusters"),
    "graph_weight": (lambda a: None, {"graph_weight": 1.5}, ValueError, "graph_weight"),
    "mask_rate": (lambda a: None, {"mask_rate": 1.0}, ValueError, "mask_rate"),
    "edge_add_rate": (lambda a: None, {"edge_add_rate": -0.1}, ValueError, "edge_add_rate"),
    "max_epochs": (lambda a: None, {"max_epochs": 1}, ValueError, "max_epochs"),
    "max_epochs_type": (lambda a: None, {"max_epochs": 10.0}, TypeError, "max_epochs"),
    "device_bad": (lambda a: None, {"device": "tpu"}, ValueError, "device"),
    "device_type": (lambda a: None, {"device": 3}, TypeError, "device"),
    "random_state": (lambda a: None, {"random_state": "x"}, TypeError, "random_state"),
    "key_added": (lambda a: None, {"key_added": ""}, TypeError, "key_added"),
    "train_kwargs": (lambda a: None, {"train_kwargs": {"nope": 1}}, ValueError, "train_kwargs"),
}


def _with(x, idx, value):
    x[idx] = value
    return x


def _nan_graph(a):
    g = a.obsp["spatial_connectivities"].copy()
    g.data[0] = np.nan
    return g


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input(tissue, case):
    setup, kwargs, error, match = BAD[case]
    setup(tissue)
    before = snapshot(tissue)
    kwargs = {"n_clusters": 4, **FAST, **kwargs}
    with pytest.raises(error, match=match):
        ssc.tl.siamese_cluster(tissue, **kwargs)
    assert_unchanged(tissue, before)


def test_cuda_unavailable(tissue):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    before = snapshot(tissue)
    with pytest.raises(ValueError, match="CUDA is not available"):
        ssc.tl.siamese_cluster(tissue, n_clusters=4, device="cuda:1", **FAST)
    assert_unchanged(tissue, before)


def test_missing_graph_names_both_commands(tissue):
    del tissue.obsp["spatial_connectivities"]
    before = snapshot(tissue)
    for call in (lambda: ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST), lambda: ssc.pp.augment(tissue)):
        with pytest.raises(KeyError) as err:
            call()
        assert "squidpy.gr.spatial_neighbors" in str(err.value) and "sc.pp.neighbors" in str(err.value)
    assert_unchanged(tissue, before)


def test_not_anndata():
    with pytest.raises(TypeError, match="AnnData"):
        ssc.tl.siamese_cluster(np.zeros((5, 5)))


def test_single_cell(tissue):
    with pytest.raises(ValueError, match="at least 2"):
        ssc.tl.siamese_cluster(tissue[:1].copy(), **FAST)


def test_interrupt_leaves_adata_unchanged(tissue, monkeypatch):
    from scsiameseclu.model import _training

    real = _training.training_step
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_training, "training_step", interrupted)
    before = snapshot(tissue)
    with pytest.raises(KeyboardInterrupt):
        ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    assert_unchanged(tissue, before)


def test_asymmetric_graph_and_self_loops_are_handled(tissue):
    g = sparse.triu(tissue.obsp["spatial_connectivities"], format="csr") + sparse.eye(tissue.n_obs, format="csr")
    tissue.obsp["g"] = g
    ssc.tl.siamese_cluster(tissue, n_clusters=4, connectivity_key="g", **FAST)
    assert tissue.obs["ssc"].nunique() >= 2
    assert (tissue.obsp["g"] != g).nnz == 0  # the user's graph is not modified


def test_isolated_cells_warn(tissue):
    g = tissue.obsp["spatial_connectivities"].tolil()
    g[0, :] = 0
    g[:, 0] = 0
    tissue.obsp["g"] = g.tocsr()
    with pytest.warns(UserWarning, match="no neighbours"):
        ssc.tl.siamese_cluster(tissue, n_clusters=4, connectivity_key="g", **FAST)
    assert tissue.obs["ssc"].notna().all()


def test_key_added_clash_overwrites(tissue):
    tissue.obs["ssc"] = "old"
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    assert "old" not in tissue.obs["ssc"].cat.categories


def test_duplicate_obs_names_warn(tissue):
    tissue.obs_names = ["a"] * tissue.n_obs
    with pytest.warns(UserWarning, match="unique"):
        ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    assert len(tissue.obs["ssc"]) == tissue.n_obs


def test_augment_bad_input(tissue):
    before = snapshot(tissue)
    with pytest.raises(ValueError, match="edge_add_mode"):
        ssc.pp.augment(tissue, edge_add_mode="nope")
    with pytest.raises(ValueError, match="mask_rate"):
        ssc.pp.augment(tissue, mask_rate=-0.1)
    assert_unchanged(tissue, before)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"noise_std": "x"}, TypeError), ({"noise_std": -1.0}, ValueError), ({"edge_add_rate": np.inf}, ValueError)],
)
def test_augment_rates(tissue, kwargs, error):
    before = snapshot(tissue)
    with pytest.raises(error, match=next(iter(kwargs))):
        ssc.pp.augment(tissue, **kwargs)
    assert_unchanged(tissue, before)
