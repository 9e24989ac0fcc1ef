"""Several slices in one AnnData (``library_key``): validation, the library term, mini-batches."""

import warnings

import anndata as ad
import numpy as np
import pytest
import torch
from conftest import FAST, assert_unchanged, snapshot

import scsiameseclu as ssc
from scsiameseclu.module import library_moment_loss

TINY = {"max_epochs": 4, "show_progress_bar": False}


@pytest.fixture
def slices(_tissue):
    """Two slices of the planted tissue (the second with shifted expression), one graph per slice."""
    import squidpy as sq

    a, b = _tissue[:200].copy(), _tissue[200:].copy()
    b.obsm["X_pca"] = b.obsm["X_pca"] + 2.0 * a.obsm["X_pca"].std(0)  # a slice-wide shift
    adata = ad.concat({"s1": a, "s2": b}, label="slice", index_unique="-")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6, library_key="slice")
    return adata


def test_library_key_recorded_and_term_trained(slices):
    ssc.tl.siamese_cluster(slices, n_clusters=4, library_key="slice", **TINY)
    uns = slices.uns["ssc"]
    assert uns["params"]["library_key"] == "slice"
    assert uns["params"]["w_library"] == 0.0  # the library term is off by default
    assert "library" not in uns["loss_terms"]
    assert slices.obs["ssc"].nunique() <= 4  # one label set for both slices
    on = slices.copy()
    ssc.tl.siamese_cluster(on, n_clusters=4, library_key="slice", train_kwargs={"w_library": 1.0}, **TINY)
    assert np.isfinite(on.uns["ssc"]["loss_terms"]["library"]).all()


def _slice_gap(adata) -> float:
    """Distance between the slices' mean embeddings, in units of the embedding's spread."""
    z, lib = adata.obsm["X_ssc"], adata.obs["slice"].to_numpy()
    gap = z[lib == "s1"].mean(0) - z[lib == "s2"].mean(0)
    return float(np.linalg.norm(gap) / np.sqrt(z.var(0).sum()))


def test_library_term_removes_a_slice_shift(slices):
    # The identity start passes the shift into the embedding; the term needs some epochs to remove it.
    kw = {**FAST, "max_epochs": 60}
    plain = slices.copy()
    ssc.tl.siamese_cluster(plain, n_clusters=4, library_key="slice", **kw)
    ssc.tl.siamese_cluster(slices, n_clusters=4, library_key="slice", train_kwargs={"w_library": 1.0}, **kw)
    assert _slice_gap(slices) < 0.5 * _slice_gap(plain), (_slice_gap(slices), _slice_gap(plain))


def test_minibatch_with_library(slices):
    on = {"train_kwargs": {"w_library": 1.0}}
    ssc.tl.siamese_cluster(slices, n_clusters=4, library_key="slice", batch_size=32, **on, **TINY)
    assert slices.uns["ssc"]["training"]["mode"] == "minibatch"
    assert np.isfinite(slices.uns["ssc"]["loss_terms"]["library"]).all()


def _nan_library(adata):
    adata.obs["slice"] = adata.obs["slice"].astype(object)
    adata.obs.iloc[5, adata.obs.columns.get_loc("slice")] = np.nan


@pytest.mark.parametrize(
    ("setup", "key", "error", "match"),
    [
        (lambda a: None, "nope", KeyError, "library_key='nope'"),
        (lambda a: None, 3, TypeError, "library_key"),
        (_nan_library, "slice", ValueError, "missing"),
    ],
)
def test_bad_library_key_leaves_adata_unchanged(slices, setup, key, error, match):
    setup(slices)
    before = snapshot(slices)
    with pytest.raises(error, match=match):
        ssc.tl.siamese_cluster(slices, n_clusters=4, library_key=key, **TINY)
    assert_unchanged(slices, before)


def test_library_warnings(slices, tissue):
    tissue.obs["one"] = "a"
    with pytest.warns(UserWarning, match="one library"):
        ssc.tl.siamese_cluster(tissue, n_clusters=4, library_key="one", **TINY)
    # A spatial graph built over both slices at once joins them: the user is told how to fix it.
    tissue.obs["half"] = np.where(np.arange(tissue.n_obs) < 200, "a", "b")
    with pytest.warns(UserWarning, match="library_key='half'"):
        ssc.tl.siamese_cluster(tissue, n_clusters=4, library_key="half", **TINY)


def test_library_moment_loss():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(400, 8, generator=gen)
    same = torch.arange(400) % 2
    assert float(library_moment_loss(z, torch.zeros(400, dtype=torch.long))) == 0.0
    assert float(library_moment_loss(z, same)) < 0.02
    shifted = z + same[:, None] * 2.0
    scaled = z * (1 + same[:, None] * 2.0)
    assert float(library_moment_loss(shifted, same)) > 0.5
    assert float(library_moment_loss(scaled, same)) > 0.2
    # Scale-free: the same gap in other units gives the same loss.
    assert torch.isclose(library_moment_loss(10 * shifted, same), library_moment_loss(shifted, same), rtol=1e-4)
