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
    "key_added_slash": (lambda a: None, {"key_added": "run/1"}, ValueError, "key_added"),
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
    from scsiameseclu.model import _distributed

    real = _distributed.training_step
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_distributed, "training_step", interrupted)
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
    with pytest.raises(ValueError, match="key_added"):
        ssc.pp.augment(tissue, key_added="run/1")  # h5ad could not read it back
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


# --- Cases of issue 5's validation list not covered above -------------------------------------

SHORT = {"max_epochs": 4, "show_progress_bar": False}


@pytest.mark.parametrize(
    ("setup", "kwargs", "error", "match"),
    [
        (lambda a: _set(a, "layers", "f", _with(a.X.toarray(), (2, 3), np.nan)), {"layer": "f"}, ValueError, "NaN"),
        (lambda a: a.obsm.__setitem__("c", a.obsm["X_pca"] * 1j), {"use_rep": "c"}, TypeError, "real"),
        (
            lambda a: _set(a, "obsp", "g", a.obsp["spatial_connectivities"] * 1j),
            {"connectivity_key": "g"},
            TypeError,
            "real",
        ),
        (lambda a: None, {"device": "cuda:7"}, ValueError, "cuda:7"),
        (lambda a: None, {"device": "meta"}, ValueError, "meta"),
        (lambda a: None, {"n_clusters": "4"}, TypeError, "n_clusters"),
        (lambda a: None, {"connectivity_key": 3}, TypeError, "connectivity_key"),
    ],
    ids=[
        "nan_layer",
        "complex_rep",
        "complex_graph",
        "cuda7",
        "meta_device",
        "n_clusters_str",
        "key_int",
    ],
)
def test_more_bad_input(tissue, setup, kwargs, error, match):
    setup(tissue)
    before = snapshot(tissue)
    with pytest.raises(error, match=match):
        ssc.tl.siamese_cluster(tissue, **{"n_clusters": 4, **SHORT, **kwargs})
    assert_unchanged(tissue, before)


def test_string_rep(tissue):
    tissue.obsm["s"] = np.full((tissue.n_obs, 2), "a")
    with pytest.raises(TypeError, match="numeric"):
        ssc.tl.siamese_cluster(tissue, n_clusters=4, use_rep="s", **SHORT)
    assert "ssc" not in tissue.obs and "X_ssc" not in tissue.obsm


@pytest.mark.parametrize("n_obs", [0, 1])
def test_too_few_cells(tissue, n_obs):
    small = tissue[:n_obs].copy()
    with pytest.raises(ValueError, match="at least 2"):
        ssc.tl.siamese_cluster(small, **SHORT)


def test_graph_shape_checked():
    # AnnData itself refuses a wrong-sized obsp; the check guards other containers.
    from types import SimpleNamespace

    from scsiameseclu import _read

    fake = SimpleNamespace(obsp={"g": sparse.random(5, 4, density=0.5, format="csr")}, n_obs=5)
    with pytest.raises(ValueError, match=r"shape \(5, 4\), expected \(5, 5\)"):
        _read.get_graph(fake, "g")


def test_user_graph_not_modified(tissue):
    # Self-loops and explicit zeros are cleaned on a copy: csr_matrix(csr) would share arrays.
    g = tissue.obsp["spatial_connectivities"].copy().tolil()
    g.setdiag(1.0)
    g = g.tocsr()
    g.data[:5] = 0.0
    tissue.obsp["g"] = g
    reference = (g.data.copy(), g.indices.copy(), g.indptr.copy())
    ssc.tl.siamese_cluster(tissue, n_clusters=4, connectivity_key="g", **SHORT)
    stored = tissue.obsp["g"]
    assert all(
        np.array_equal(a, b) for a, b in zip(reference, (stored.data, stored.indices, stored.indptr), strict=True)
    )


def test_csc_graph_and_zero_gene(tissue):
    x = tissue.X.toarray()
    x[:, 5] = 0  # a gene without signal is dropped, not an error
    tissue.X = sparse.csc_matrix(x)
    tissue.obsp["spatial_connectivities"] = sparse.csc_matrix(tissue.obsp["spatial_connectivities"])
    model = ssc.tl.siamese_cluster(tissue, n_clusters=4, use_rep="X", return_model=True, **SHORT)
    assert tissue.obs["ssc"].notna().all()
    index = model.spec.expression.index
    assert 5 not in index and len(index) == tissue.n_vars - 1


def test_view_with_copy_stays_a_view(tissue):
    view = tissue[:300]
    out = ssc.tl.siamese_cluster(view, n_clusters=3, copy=True, **SHORT)
    assert view.is_view and "ssc" not in view.obs
    assert not out.is_view and out.n_obs == 300 and "ssc" in out.obs


def test_view_failure_leaves_view_alone(tissue):
    view = tissue[:300]
    with pytest.raises(ValueError, match="n_clusters"):
        ssc.tl.siamese_cluster(view, n_clusters=1, **SHORT)
    assert view.is_view and "ssc" not in view.obs


def test_backed_adata(tissue, tmp_path):
    import anndata as ad

    tissue.write_h5ad(tmp_path / "a.h5ad")
    backed = ad.read_h5ad(tmp_path / "a.h5ad", backed="r")
    with pytest.raises(ValueError, match="backed"):
        ssc.tl.siamese_cluster(backed, n_clusters=4, use_rep="X", **SHORT)
    assert "ssc" not in backed.obs
    # obsm and obsp are in memory: the default input X_pca works and results land in memory.
    ssc.tl.siamese_cluster(backed, n_clusters=4, **SHORT)
    assert backed.isbacked and backed.obs["ssc"].notna().all() and "X_ssc" in backed.obsm
    backed.file.close()


def test_plot_spatial_key(tissue):
    import matplotlib

    matplotlib.use("Agg")
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **SHORT)
    before = snapshot(tissue)
    with pytest.raises(KeyError, match="spatial_key='coords'"):
        ssc.pl.embedding(tissue, spatial_key="coords", show=False)
    with pytest.raises(TypeError, match="spatial_key"):
        ssc.pl.embedding(tissue, spatial_key=0, show=False)
    tissue.obsm["line"] = np.zeros((tissue.n_obs, 1))
    with pytest.raises(ValueError, match="line"):
        ssc.pl.embedding(tissue, spatial_key="line", show=False)
    del tissue.obsm["line"]
    assert_unchanged(tissue, before)
    fig = ssc.pl.embedding(tissue, spatial_key=None, show=False, return_fig=True)
    assert not any("tissue" in ax.get_title() for ax in fig.axes)
