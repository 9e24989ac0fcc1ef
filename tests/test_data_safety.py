"""What ssc promises about the user's AnnData: nothing it did not write is replaced without an
explicit `overwrite=True`, results are written all at once or not at all, a failure or interrupt
at any stage leaves `adata` as it was, and nothing goes silently wrong (divergence is an error,
fewer clusters than asked is a warning)."""

import re

import numpy as np
import pandas as pd
import pytest
from anndata._core.aligned_mapping import AxisArrays
from conftest import FAST, assert_unchanged, snapshot
from sklearn.metrics import adjusted_rand_score

import scsiameseclu as ssc
from scsiameseclu._write import write_results


@pytest.fixture
def no_training(monkeypatch):
    """Fail loudly if a call gets as far as training: refusals must come before any work."""
    from scsiameseclu.model import _schedule

    def fail(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(_schedule, "fit", fail)


def _visium_uns(adata):
    adata.uns["spatial"] = {"slice1": {"images": {"hires": np.zeros((4, 4, 3))}, "scalefactors": {"spot": 1.0}}}


def _old_column(adata):
    adata.obs["ssc"] = "old"


def _other_tool_labels(adata):
    adata.obs["ssc"] = pd.Categorical(["x", "y"] * (adata.n_obs // 2))
    adata.uns["ssc_colors"] = ["#000000", "#ffffff"]


@pytest.mark.parametrize(
    ("setup", "key", "named"),
    [
        (lambda a: None, "pca", r"obsm\['X_pca'\].*uns\['pca'\]"),  # sc.pp.pca wrote both
        (_visium_uns, "spatial", r"uns\['spatial'\]"),
        (_old_column, "ssc", r"obs\['ssc'\]"),
        (_other_tool_labels, "ssc", r"obs\['ssc'\].*uns\['ssc_colors'\]"),
        (lambda a: a.obsm.__setitem__("X_mine", np.zeros((a.n_obs, 2))), "mine", r"obsm\['X_mine'\]"),
    ],
)
def test_cluster_refuses_entries_ssc_did_not_write(tissue, no_training, setup, key, named):
    setup(tissue)
    before = snapshot(tissue)
    with pytest.raises(ValueError, match=rf"key_added='{key}'.*{named}.*overwrite=True"):
        ssc.tl.siamese_cluster(tissue, n_clusters=4, key_added=key, **FAST)
    assert_unchanged(tissue, before)


def test_cluster_overwrite_is_explicit(tissue):
    _other_tool_labels(tissue)
    with pytest.warns(UserWarning, match=r"Overwriting adata.obs\['ssc'\].*overwrite=True"):
        ssc.tl.siamese_cluster(tissue, n_clusters=4, overwrite=True, **FAST)
    assert set(tissue.obs["ssc"].cat.categories) <= {"0", "1", "2", "3"}
    assert "ssc_colors" not in tissue.uns  # colours of the replaced categories are dropped
    with pytest.raises(TypeError, match="overwrite"):
        ssc.tl.siamese_cluster(tissue, n_clusters=4, overwrite="yes", **FAST)


def test_rerun_replaces_own_result_with_a_warning(tissue):
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    tissue.obsm["X_ssc_umap"] = np.zeros((tissue.n_obs, 2))  # plotting cache of the first run
    with pytest.warns(UserWarning, match=r"Replacing the earlier result of `ssc.tl.siamese_cluster`"):
        ssc.tl.siamese_cluster(tissue, n_clusters=3, **FAST)
    assert tissue.uns["ssc"]["params"]["n_clusters"] == 3
    assert "X_ssc_umap" not in tissue.obsm
    # A record written by an earlier version (same fields) counts as ssc's own.
    tissue.uns["ssc"] = {"params": {}, "n_clusters": 3, "version": "0.1.0"}
    with pytest.warns(UserWarning, match="Replacing"):
        ssc.tl.siamese_cluster(tissue, n_clusters=3, **FAST)


def test_augment_refuses_entries_ssc_did_not_write(tissue):
    before = snapshot(tissue)
    # "spatial" would replace the coordinates, the spatial graph (and Visium's uns['spatial']).
    with pytest.raises(ValueError, match=r"obsm\['spatial'\].*obsp\['spatial_connectivities'\]"):
        ssc.pp.augment(tissue, key_added="spatial")
    assert_unchanged(tissue, before)
    ssc.tl.siamese_cluster(tissue, n_clusters=4, max_epochs=5, show_progress_bar=False)
    before = snapshot(tissue)
    with pytest.raises(ValueError, match=r"uns\['ssc'\]"):  # a clustering record is not an augmented view
        ssc.pp.augment(tissue, key_added="ssc")
    assert_unchanged(tissue, before)
    ssc.pp.augment(tissue, key_added="view")
    with pytest.warns(UserWarning, match=r"Replacing the earlier result of `ssc.pp.augment`"):
        ssc.pp.augment(tissue, key_added="view", random_state=1)
    assert tissue.uns["view"]["params"]["random_state"] == 1
    with pytest.warns(UserWarning, match="Overwriting"):
        ssc.pp.augment(tissue, key_added="spatial", overwrite=True)


def test_write_failure_restores_every_entry(tissue):
    tissue.obs["old"] = "kept"
    tissue.obsm["X_old"] = np.ones((tissue.n_obs, 2))
    before = snapshot(tissue)
    with pytest.raises(ValueError):  # the second obsm value has the wrong number of rows
        write_results(
            tissue,
            copy=False,
            obs={"old": pd.Categorical(["a"] * tissue.n_obs), "new": np.arange(tissue.n_obs)},
            obsm={"X_old": np.zeros((tissue.n_obs, 2)), "X_bad": np.zeros((tissue.n_obs + 1, 2))},
            uns={"new": {}},
        )
    assert_unchanged(tissue, before)
    assert list(tissue.obs.columns) == list(before["obs"].columns)


@pytest.mark.parametrize(("n_writes", "error"), [(1, KeyboardInterrupt), (2, RuntimeError)])
def test_interrupt_between_result_writes(tissue, monkeypatch, n_writes, error):
    # obs[key] is written first, then the obsm entries: stop at the first or second obsm write.
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)  # an earlier result that must survive
    before = snapshot(tissue)
    real = AxisArrays.__setitem__
    calls = {"n": 0}

    def failing(self, key, value):
        calls["n"] += 1
        if calls["n"] == n_writes:
            raise error("injected")
        return real(self, key, value)

    monkeypatch.setattr(AxisArrays, "__setitem__", failing)
    with pytest.warns(UserWarning, match="Replacing"), pytest.raises(error, match="injected"):
        ssc.tl.siamese_cluster(tissue, n_clusters=3, random_state=1, **FAST)
    monkeypatch.undo()
    assert_unchanged(tissue, before)


def _raise(error):
    def fail(*args, **kwargs):
        raise error("injected")

    return fail


_STAGES = {
    # stage: (module, class or None, function the stage calls; the step through the process group)
    "pre-training step": ("scsiameseclu.model._distributed", None, "training_step"),
    "prototype seeding": ("scsiameseclu.model._schedule", None, "seed_prototypes"),
    "clustering step": ("scsiameseclu.model._distributed", None, "training_step"),
    "k estimation": ("scsiameseclu.model._n_clusters", None, "estimate_n_clusters"),
    "final mixture": ("scsiameseclu.model._final_mixture", None, "fit_final_mixture"),
    "assignments": ("scsiameseclu.model._model", "SiameseClusterModel", "_assign"),
    "results": ("scsiameseclu.model._model", "SiameseClusterModel", "results"),
}


# An interrupt and an exception alternate over the stages (both are caught the same way).
@pytest.mark.parametrize(
    ("stage", "error"), [(stage, (KeyboardInterrupt, RuntimeError)[i % 2]) for i, stage in enumerate(_STAGES)]
)
def test_failure_at_each_stage_leaves_adata_unchanged(tissue, monkeypatch, stage, error):
    import importlib

    module, cls, name = _STAGES[stage]
    owner = importlib.import_module(module)
    owner = getattr(owner, cls) if cls else owner
    fail = _raise(error)
    if stage == "clustering step":
        real = owner.training_step

        def fail(*args, **kwargs):
            if kwargs.get("cluster"):
                raise error("injected")
            return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, fail)
    before = snapshot(tissue)
    with pytest.raises(error, match="injected"):
        ssc.tl.siamese_cluster(tissue, n_clusters=None if stage == "k estimation" else 4, **FAST)
    assert_unchanged(tissue, before)


def test_failed_retraining_keeps_the_trained_model(tissue, monkeypatch):
    from scsiameseclu.model import _final_mixture

    model = ssc.tl.siamese_cluster(tissue, n_clusters=4, return_model=True, copy=True, **FAST)[1]
    labels = model.predict()
    monkeypatch.setattr(_final_mixture, "fit_final_mixture", _raise(RuntimeError))
    with pytest.raises(RuntimeError, match="injected"):
        model.train(random_state=3, show_progress_bar=False)
    np.testing.assert_array_equal(model.predict(), labels)
    assert model.random_state == 0


@pytest.mark.parametrize(
    ("learning_rate", "where"),
    [(1e6, r"loss (inf|nan) at step"), (100.0, "the final mixture failed")],
)
def test_divergence_is_an_error_naming_the_learning_rate(tissue, learning_rate, where):
    before = snapshot(tissue)
    with pytest.raises(ValueError, match=rf"diverged \({where}.*learning rate.*{re.escape(f'{learning_rate:g}')}"):
        ssc.tl.siamese_cluster(
            tissue, n_clusters=4, train_kwargs={"learning_rate": learning_rate}, max_epochs=40, show_progress_bar=False
        )
    assert_unchanged(tissue, before)


def test_fewer_clusters_than_asked_is_warned_and_recorded(tissue):
    tissue.obsm["X_pca"][:] = 1.0  # two distinct cells, repeated
    tissue.obsm["X_pca"][:, 0] = np.arange(tissue.n_obs) % 2
    with pytest.warns(UserWarning, match="of 4 clusters ended up empty"):
        ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    record = tissue.uns["ssc"]
    assert record["n_clusters_fitted"] == 4
    assert record["n_clusters"] == tissue.obs["ssc"].nunique() < 4


def test_huge_values_are_clustered_like_their_scaled_copy(tissue):
    # float32 squares overflow above ~1e19: the input scale must still be found.
    expected = ssc.tl.siamese_cluster(tissue, n_clusters=4, copy=True, **FAST).obs["ssc"]
    tissue.obsm["X_pca"] = tissue.obsm["X_pca"].astype(np.float32) * np.float32(1e30)
    ssc.tl.siamese_cluster(tissue, n_clusters=4, **FAST)
    assert tissue.uns["ssc"]["n_clusters"] == 4
    assert adjusted_rand_score(tissue.obs["ssc"], expected) > 0.9


def test_dask_and_backed_inputs_cluster_like_in_memory(tissue, tmp_path, monkeypatch):
    """An obsm held as a dask array (read lazily, block by block) or a backed .h5ad gives the same result."""
    da = pytest.importorskip("dask.array")
    import anndata as ad

    import scsiameseclu._read as read

    monkeypatch.setattr(read, "ROW_BLOCK", 97)  # several blocks on this small tissue
    expected = ssc.tl.siamese_cluster(tissue, n_clusters=4, copy=True, **FAST)
    lazy = tissue.copy()
    lazy.obsm["X_pca"] = da.from_array(tissue.obsm["X_pca"], chunks=(150, -1))
    ssc.tl.siamese_cluster(lazy, n_clusters=4, **FAST)
    assert type(lazy.obsm["X_pca"]).__module__.startswith("dask")  # the input was not replaced
    np.testing.assert_array_equal(lazy.obs["ssc"], expected.obs["ssc"])
    np.testing.assert_array_equal(lazy.obsm["X_ssc"], expected.obsm["X_ssc"])

    path = tmp_path / "tissue.h5ad"
    tissue.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")  # X stays on disk; ssc reads obsm and obsp
    ssc.tl.siamese_cluster(backed, n_clusters=4, **FAST)
    np.testing.assert_array_equal(backed.obs["ssc"], expected.obs["ssc"])
    backed.file.close()
