import random

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import torch
from conftest import FAST, assert_unchanged, snapshot
from scipy import sparse
from sklearn.metrics import adjusted_rand_score

import scsiameseclu as ssc


def test_outputs(tissue):
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    labels = tissue.obs["ssc"]
    assert isinstance(labels.dtype, pd.CategoricalDtype)
    assert all(isinstance(c, str) for c in labels.cat.categories)
    assert list(labels.cat.categories) == [str(i) for i in range(len(labels.cat.categories))]
    counts = labels.value_counts(sort=False).to_numpy()
    assert (np.diff(counts) <= 0).all()  # "0" is the largest
    z = tissue.obsm["X_ssc"]
    assert z.dtype == np.float32 and z.shape[0] == tissue.n_obs
    proba = tissue.obsm["ssc_proba"]
    assert proba.dtype == np.float32 and proba.shape == (tissue.n_obs, len(labels.cat.categories))
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)
    assert (proba.argmax(1) == labels.cat.codes.to_numpy()).all()
    uns = tissue.uns["ssc"]
    assert uns["params"]["random_state"] == 0
    assert uns["params"]["connectivity_key"] == "spatial_connectivities"
    assert uns["params"]["input"] == "obsm['X_pca']"
    assert uns["params"]["device"] == "cpu"
    assert uns["params"]["graph_weight"] == 0.8
    assert uns["version"] == ssc.__version__
    assert len(uns["loss"]) <= 30 and np.isfinite(uns["loss"]).all()
    assert {"pretrain", "cluster", "total"} <= set(uns["timings"])
    assert adjusted_rand_score(tissue.obs["domain"], labels) > 0.5


def test_writes_h5ad(tissue, tmp_path):
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    tissue.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    assert back.obs["ssc"].equals(tissue.obs["ssc"])


def test_copy(tissue):
    before = snapshot(tissue)
    out = ssc.tl.siamese_cluster(tissue, n_clusters=4, copy=True, **FAST)
    assert isinstance(out, ad.AnnData) and "ssc" in out.obs
    assert_unchanged(tissue, before)
    assert ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST) is None


def test_key_added_keeps_both(tissue):
    ssc.tl.siamese_cluster(tissue, n_clusters=4, key_added="a", **FAST)
    ssc.tl.siamese_cluster(tissue, n_clusters=3, key_added="b", **FAST)
    assert {"a", "b"} <= set(tissue.obs) and {"X_a", "X_b", "a_proba", "b_proba"} <= set(tissue.obsm)
    assert tissue.obs["a"].nunique() == 4 and tissue.obs["b"].nunique() == 3


def test_determinism_and_global_rng(tissue):
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    states = torch.random.get_rng_state().clone(), np.random.get_state()[1].copy(), random.getstate()
    a = ssc.tl.siamese_cluster(tissue, n_clusters=4, random_state=7, copy=True, **FAST)
    b = ssc.tl.siamese_cluster(tissue, n_clusters=4, random_state=7, copy=True, **FAST)
    c = ssc.tl.siamese_cluster(tissue, n_clusters=4, random_state=8, copy=True, **FAST)
    assert torch.equal(states[0], torch.random.get_rng_state())
    assert np.array_equal(states[1], np.random.get_state()[1])
    assert states[2] == random.getstate()
    assert a.obs["ssc"].equals(b.obs["ssc"])
    np.testing.assert_array_equal(a.obsm["X_ssc"], b.obsm["X_ssc"])
    assert not np.array_equal(a.obsm["X_ssc"], c.obsm["X_ssc"])


def test_random_state_none_is_recorded(tissue):
    ssc.tl.siamese_cluster(tissue, n_clusters=4, random_state=None, **FAST)
    assert isinstance(tissue.uns["ssc"]["params"]["random_state"], int)
    assert tissue.uns["ssc"]["params"]["init_weights"] == "identity"


def test_params_record_the_input_read(tissue):
    """`use_rep=None` is recorded as what it resolved to; unset optional entries keep their key."""
    assert "X_pca" in tissue.obsm
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    params = tissue.uns["ssc"]["params"]
    assert params["use_rep"] == "X_pca" and params["input"] == "obsm['X_pca']"
    assert params["layer"] == "None" and params["extra_rep"] == "None"  # h5ad stores no None


def test_estimates_n_clusters(tissue):
    ssc.tl.siamese_cluster(tissue, n_clusters=None, **FAST)
    uns = tissue.uns["ssc"]
    assert uns["n_clusters_estimated"]
    assert 2 <= uns["n_clusters"] <= 50
    assert uns["n_clusters"] == tissue.obs["ssc"].nunique()
    counts = {float(r): k for r, k in uns["n_clusters_by_resolution"].items()}
    assert len(counts) > 1 and 0.3 in counts
    curve = {int(k): s for k, s in uns["n_clusters_stability"].items()}
    assert min(curve) == 2 and max(curve) >= max(20, uns["n_clusters"])
    assert all(-1.0 <= s <= 1.0 for s in curve.values())
    fig = ssc.pl.n_clusters(tissue, show=False, return_fig=True)
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel() == "k"


def test_n_clusters_plot_needs_a_chosen_k(tissue):
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    with pytest.raises(ValueError, match="n_clusters=None"):
        ssc.pl.n_clusters(tissue, show=False)
    with pytest.raises(KeyError, match="siamese_cluster"):
        ssc.pl.n_clusters(tissue, key="other", show=False)


def test_estimate_counts_separated_groups():
    from scsiameseclu.model import estimate_n_clusters

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10.0, size=(6, 8))
    z = np.vstack([c + rng.normal(size=(150, 8)) for c in centres]).astype(np.float32)
    k, counts = estimate_n_clusters(z)
    assert k == 6 == counts[0.3]
    assert counts[1.0] >= counts[0.1]  # finer partitions at higher resolution
    assert estimate_n_clusters(z, k_max=4)[0] == 4


def test_knn_graph_from_scanpy(knn):
    # sc.pp.neighbors must work in this environment (pynndescent < 0.7 with scanpy 1.11).
    assert "connectivities" in knn.obsp
    ssc.tl.siamese_cluster(knn, n_clusters=4, **FAST)
    assert knn.uns["ssc"]["params"]["connectivity_key"] == "connectivities"
    assert knn.uns["ssc"]["params"]["graph_weight"] == 0.5


def test_target_sets_contrastive_pretraining(tissue, knn):
    """Domains: the contrastive term acts in pre-training too; cell types: in the clustering stage only."""
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    params = tissue.uns["ssc"]["params"]
    assert (params["init"], params["w_contrastive_pretrain"]) == ("kmeans", params["w_contrastive"])
    ssc.tl.siamese_cluster(tissue, n_clusters=4, graph_weight=0.2, **FAST)
    assert (tissue.uns["ssc"]["params"]["init"], tissue.uns["ssc"]["params"]["w_contrastive_pretrain"]) == (
        "leiden",
        0.0,
    )
    a = ssc.tl.siamese_cluster(knn, n_clusters=4, copy=True, **FAST)
    b = ssc.tl.siamese_cluster(knn, n_clusters=4, train_kwargs={"w_contrastive_pretrain": 0.0}, copy=True, **FAST)
    c = ssc.tl.siamese_cluster(knn, n_clusters=4, train_kwargs={"w_contrastive_pretrain": 0.5}, copy=True, **FAST)
    assert a.uns["ssc"]["params"]["w_contrastive_pretrain"] == 0.0
    np.testing.assert_array_equal(a.obsm["X_ssc"], b.obsm["X_ssc"])
    assert not np.array_equal(a.obsm["X_ssc"], c.obsm["X_ssc"])
    before = knn.copy()
    with pytest.raises(ValueError, match="w_contrastive_pretrain"):
        ssc.tl.siamese_cluster(knn, n_clusters=4, train_kwargs={"w_contrastive_pretrain": -1.0}, **FAST)
    assert set(knn.obs) == set(before.obs) and set(knn.uns) == set(before.uns)


def test_graph_weight_zero_ignores_graph(tissue):
    a = ssc.tl.siamese_cluster(tissue, n_clusters=4, graph_weight=0.0, copy=True, **FAST)
    other = tissue.copy()
    other.obsp["spatial_connectivities"] = sparse.random(
        other.n_obs, other.n_obs, density=0.02, format="csr", random_state=0
    )
    b = ssc.tl.siamese_cluster(other, n_clusters=4, graph_weight=0.0, copy=True, **FAST)
    assert a.uns["ssc"]["gate_mean"] == 0.0
    np.testing.assert_allclose(a.obsm["X_ssc"], b.obsm["X_ssc"], atol=1e-5)


def test_connectivity_key_short_form(tissue):
    ssc.tl.siamese_cluster(tissue, n_clusters=4, connectivity_key="spatial", **FAST)
    assert tissue.uns["ssc"]["params"]["connectivity_key"] == "spatial_connectivities"


@pytest.mark.parametrize("kind", ["csr", "csc", "dense", "float64", "int"])
def test_input_types(tissue, kind):
    counts = tissue.layers["counts"]
    x = {
        "csr": sparse.csr_matrix(tissue.X),
        "csc": sparse.csc_matrix(tissue.X),
        "dense": tissue.X.toarray(),
        "float64": tissue.X.toarray().astype(np.float64),
        "int": counts.toarray().astype(np.int64),
    }[kind]
    tissue.X = x
    ssc.tl.siamese_cluster(tissue, n_clusters=4, use_rep="X", **FAST)
    assert tissue.obs["ssc"].nunique() >= 2
    assert tissue.uns["ssc"]["params"]["input"] == "X"


def test_layer_input(tissue):
    ssc.tl.siamese_cluster(tissue, n_clusters=4, layer="counts", **FAST)
    assert tissue.uns["ssc"]["params"]["input"] == "layers['counts']"


def test_view_is_materialised(tissue):
    view = tissue[:300]
    with pytest.warns(UserWarning, match="view"):
        ssc.tl.siamese_cluster(view, n_clusters=3, **FAST)
    assert not view.is_view and "ssc" in view.obs


def test_return_model_and_predict_new_cells(tissue):
    model = ssc.tl.siamese_cluster(tissue, n_clusters=4, return_model=True, use_rep="X", **FAST)
    assert isinstance(model, ssc.model.SiameseClusterModel)
    np.testing.assert_allclose(model.get_latent_representation(), tissue.obsm["X_ssc"], atol=1e-5)
    new = ssc.datasets.synthetic_tissue(150, n_domains=4, n_genes=100, random_state=1)
    sc.pp.normalize_total(new)
    sc.pp.log1p(new)
    import squidpy as sq

    sq.gr.spatial_neighbors(new, coord_type="generic", n_neighs=6)
    z = model.get_latent_representation(new)
    assert z.shape == (150, model.settings.network.n_latent)
    proba = model.predict(new, soft=True)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)
    assert model.predict(new).shape == (150,)
    new.var_names = [f"other_{i}" for i in range(new.n_vars)]
    with pytest.raises(ValueError, match="var_names"):
        model.predict(new)


def test_untrained_model_raises(tissue):
    model = ssc.model.SiameseClusterModel(tissue, 4)
    with pytest.raises(RuntimeError, match="train"):
        model.predict()


def test_augment(tissue):
    ssc.pp.augment(tissue, use_rep="X", mask_rate=0.3, edge_drop_rate=0.25, edge_add_rate=0.1)
    view = tissue.layers["ssc_augmented"]
    assert sparse.issparse(view) and view.shape == tissue.shape
    info = tissue.uns["ssc_augmented"]
    assert abs(info["fraction_masked"] - 0.3) < 0.02
    assert abs(info["n_edges_dropped"] / info["n_edges"] - 0.25) < 0.05
    assert 0 < info["n_edges_added"] <= round(0.1 * info["n_edges"])
    graph = tissue.obsp["ssc_augmented_connectivities"]
    assert sparse.issparse(graph) and (graph != graph.T).nnz == 0 and graph.diagonal().sum() == 0


def test_augment_obsm_and_determinism(tissue):
    a = ssc.pp.augment(tissue, random_state=1, copy=True)
    b = ssc.pp.augment(tissue, random_state=1, copy=True)
    c = ssc.pp.augment(tissue, random_state=2, copy=True)
    assert a.obsm["ssc_augmented"].shape == tissue.obsm["X_pca"].shape
    np.testing.assert_array_equal(a.obsm["ssc_augmented"], b.obsm["ssc_augmented"])
    assert (a.obsp["ssc_augmented_connectivities"] != b.obsp["ssc_augmented_connectivities"]).nnz == 0
    assert not np.array_equal(a.obsm["ssc_augmented"], c.obsm["ssc_augmented"])
    assert "ssc_augmented" not in tissue.obsm


def test_plot_spatial_and_umap(tissue):
    import matplotlib

    matplotlib.use("Agg")
    sc.pp.neighbors(tissue, random_state=0)
    sc.tl.umap(tissue, random_state=0)
    before_umap = tissue.obsm["X_umap"].copy()
    before_conn = tissue.obsp["connectivities"].copy()
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    fig = ssc.pl.embedding(tissue, show=False, return_fig=True)
    assert len(fig.axes) >= 2
    titles = [ax.get_title() for ax in fig.axes]
    assert any("tissue" in t for t in titles) and any("UMAP" in t for t in titles)
    np.testing.assert_array_equal(tissue.obsm["X_umap"], before_umap)
    assert (tissue.obsp["connectivities"] != before_conn).nnz == 0
    assert tissue.obsm["X_ssc_umap"].shape == (tissue.n_obs, 2)
    fig2 = ssc.pl.embedding(tissue, color=["ssc", "domain"], show=False, return_fig=True)
    assert len([a for a in fig2.axes if a.get_title()]) == 4


def test_plot_umap_only(knn):
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    del knn.obsm["spatial"]
    ssc.tl.siamese_cluster(knn, n_clusters=4, **FAST)
    fig, ax = plt.subplots()
    assert ssc.pl.embedding(knn, ax=ax, show=False) is None
    assert "UMAP" in ax.get_title()
    with pytest.raises(ValueError, match="ax"):
        ssc.pl.embedding(knn, ax=[ax, ax], show=False)
    with pytest.raises(KeyError, match="siamese_cluster"):
        ssc.pl.embedding(knn, key="other", show=False)


@pytest.fixture
def figdir(tmp_path):
    """scanpy's figure directory in ``tmp_path``, restored afterwards."""
    before = sc.settings.figdir, sc.settings.plot_suffix
    sc.settings.figdir, sc.settings.plot_suffix = tmp_path / "figdir", ""
    yield tmp_path / "figdir"
    sc.settings.figdir, sc.settings.plot_suffix = before


def test_plot_save_writes_one_file_with_the_figure(tissue, tmp_path, figdir):
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    ssc.pl.embedding(tissue, show=False, save="_domains.png")  # scanpy's convention: a suffix
    assert sorted(p.name for p in figdir.iterdir()) == ["ssc_embedding_domains.png"]
    image = plt.imread(figdir / "ssc_embedding_domains.png")
    assert image.shape[1] > 1.5 * image.shape[0]  # both panels, side by side, in one image
    assert image[..., :3].std() > 0.05  # not blank
    target = tmp_path / "elsewhere" / "fig.pdf"
    ssc.pl.embedding(tissue, show=False, save=str(target))  # a path is written exactly there
    assert target.is_file() and target.stat().st_size > 1000
    assert len(list(figdir.iterdir())) == 1
    with pytest.raises(TypeError, match="save"):
        ssc.pl.embedding(tissue, show=False, save=3)


@pytest.mark.parametrize("final", ["mixture", "prototypes"])
def test_final_assignment(tissue, final):
    ssc.tl.siamese_cluster(tissue, n_clusters=4, train_kwargs={"final_assignment": final}, **FAST)
    assert tissue.uns["ssc"]["params"]["final_assignment"] == final
    mixture = tissue.uns["ssc"]["mixture"]
    if final == "mixture":  # EM from the prototypes and from Leiden communities; the more likely fit is kept
        assert set(mixture["log_likelihood"]) == {"prototypes", "leiden"}
        assert mixture["start"] == max(mixture["log_likelihood"], key=mixture["log_likelihood"].get)
    else:
        assert mixture == {}
    proba = tissue.obsm["ssc_proba"]
    assert np.allclose(proba.sum(1), 1, atol=1e-4)
    assert adjusted_rand_score(tissue.obs["domain"], tissue.obs["ssc"]) > 0.5


def test_mixture_starts_by_target(knn, tissue):
    # Cell types: no clustering stage (every step pre-trains); prototypes seeded from Leiden
    # communities; the mixture starts from Ward's partition of the embedding alone.
    ssc.tl.siamese_cluster(knn, n_clusters=4, **FAST)
    uns = knn.uns["ssc"]
    assert uns["params"]["init"] == "leiden"
    assert (uns["params"]["n_epochs_pretrain"], uns["params"]["n_epochs_cluster"]) == (30, 0)
    assert len(uns["label_change"]) == 0
    assert list(uns["params"]["mixture_starts"]) == ["ward"]
    assert set(uns["mixture"]["log_likelihood"]) == {"ward"} and uns["mixture"]["start"] == "ward"
    # Tissue domains: prototypes from k-means and a Leiden start; the likelier fit is kept.
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    assert list(tissue.uns["ssc"]["params"]["mixture_starts"]) == ["prototypes", "leiden"]
    assert tissue.uns["ssc"]["params"]["n_epochs_cluster"] == 12 and len(tissue.uns["ssc"]["label_change"]) > 0
    log_lik = tissue.uns["ssc"]["mixture"]["log_likelihood"]
    assert set(log_lik) == {"prototypes", "leiden"} and tissue.uns["ssc"]["mixture"]["start"] == max(
        log_lik, key=log_lik.get
    )
    # Any starts can be asked for; the likeliest fit over all of them is kept.
    starts = ["prototypes", "kmeans"]
    ssc.tl.siamese_cluster(
        knn, n_clusters=4, train_kwargs={"mixture_starts": starts, "mixture_kmeans_starts": 3}, **FAST
    )
    assert set(knn.uns["ssc"]["mixture"]["log_likelihood"]) == {"prototypes", "kmeans0", "kmeans1", "kmeans2"}


def test_mixture_leiden_start_on_a_subsample(tissue):
    # Above `leiden_start_max_cells` cells Leiden runs on a subsample and a mixture fitted on it
    # starts EM for every cell; lowered here so that the 400-cell tissue takes that path.
    from dataclasses import replace

    from scsiameseclu.model import Limits, SiameseClusterModel

    model = SiameseClusterModel(tissue, 4, max_epochs=FAST["max_epochs"])
    settings = replace(model.settings, limits=Limits(leiden_start_max_cells=150))
    model = SiameseClusterModel.from_parts(settings, model.spec, adata=tissue).train(show_progress_bar=False)
    res = model.results()
    assert set(res.uns["mixture"]["log_likelihood"]) == {"prototypes", "leiden"}
    assert adjusted_rand_score(tissue.obs["domain"], res.labels) > 0.5


def test_final_assignment_invalid(tissue):
    with pytest.raises(ValueError, match="final_assignment"):
        ssc.tl.siamese_cluster(tissue, n_clusters=4, train_kwargs={"final_assignment": "gmm"}, **FAST)


def test_threads_chosen_inside_the_call_and_restored(tissue, monkeypatch):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
        assert tissue.uns["ssc"]["training"]["n_threads"] == 1  # full batch: one thread by default
        assert torch.get_num_threads() == 2
        ssc.tl.siamese_cluster(tissue, n_clusters=4, n_jobs=2, **FAST)
        assert tissue.uns["ssc"]["training"]["n_threads"] == 2
        ssc.tl.siamese_cluster(tissue, n_clusters=4, batch_size=64, **FAST)
        assert tissue.uns["ssc"]["training"]["n_threads"] == 2  # mini-batches: the caller's setting
        with pytest.raises(ValueError, match="n_jobs"):
            ssc.tl.siamese_cluster(tissue, n_clusters=4, n_jobs=0, **FAST)
        from scsiameseclu.model import _distributed

        def interrupted(*args, **kwargs):
            assert torch.get_num_threads() == 1
            raise KeyboardInterrupt

        monkeypatch.setattr(_distributed, "training_step", interrupted)
        with pytest.raises(KeyboardInterrupt):
            ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_deterministic_kernels_only_on_cuda_and_restored():
    import torch

    from scsiameseclu._device import deterministic_algorithms

    with deterministic_algorithms(torch.device("cpu")):
        assert not torch.are_deterministic_algorithms_enabled()  # CPU kernels are deterministic already
    # The flag itself needs no GPU, so the CUDA branch's set-and-restore is checked here too.
    with pytest.raises(KeyboardInterrupt), deterministic_algorithms(torch.device("cuda")):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        raise KeyboardInterrupt
    assert not torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)  # a caller's own strict setting is kept, inside and after
    try:
        with deterministic_algorithms(torch.device("cuda")):
            assert not torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_deterministic_argument(tissue):
    ssc.tl.siamese_cluster(tissue, n_clusters=4, deterministic=False, **FAST)
    assert tissue.uns["ssc"]["training"]["deterministic"] is False
    labels = tissue.obs["ssc"].copy()
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)  # CPU runs are deterministic either way
    assert tissue.uns["ssc"]["training"]["deterministic"] is True
    assert (tissue.obs["ssc"] == labels).all()
    with pytest.raises(TypeError, match="deterministic"):
        ssc.tl.siamese_cluster(tissue, n_clusters=4, deterministic="yes", **FAST)
