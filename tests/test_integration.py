"""End-to-end runs on real labelled data from ../shared/data (skipped when it is absent).

Thresholds sit below the means measured by benchmarks/studies/run_ssc.py (see
benchmarks/results/ssc_defaults.md), so a real regression fails while seed noise does not.
"""

import anndata as ad
import numpy as np
import pytest
import scanpy as sc
from conftest import require_shared, spatial_graph
from scipy import sparse
from sklearn.metrics import adjusted_rand_score

import scsiameseclu as ssc

pytestmark = pytest.mark.slow


def _prepare(name, *, spatial):
    adata = ad.read_h5ad(require_shared(name))
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=min(50, adata.n_vars - 1), random_state=0)
    if spatial:
        spatial_graph(adata)
    else:
        sc.pp.neighbors(adata, n_neighbors=15, random_state=0)
    return adata


@pytest.mark.parametrize(
    ("name", "spatial", "min_ari"),
    [
        ("starmap_visp_wang2018_1207", True, 0.65),
        ("baristaseq_visp_sun2021_slice1", True, 0.5),
        ("baron_mouse_pancreas1_baron2016", False, 0.35),
    ],
)
def test_real_data_defaults(name, spatial, min_ari):
    adata = _prepare(name, spatial=spatial)
    k = adata.obs["label"].nunique()
    ssc.tl.siamese_cluster(adata, n_clusters=k, show_progress_bar=False)
    ari = adjusted_rand_score(adata.obs["label"], adata.obs["ssc"])
    assert ari >= min_ari, f"{name}: ARI {ari:.3f} < {min_ari}"
    # downstream scanpy/squidpy steps accept the result
    sc.tl.rank_genes_groups(adata, "ssc", method="t-test")
    if spatial:
        import squidpy as sq

        sq.gr.nhood_enrichment(adata, cluster_key="ssc", n_perms=10, show_progress_bar=False)
        assert "ssc_nhood_enrichment" in adata.uns


def test_augment_on_visium_counts_stays_sparse():
    adata = ad.read_h5ad(require_shared("dlpfc_151673_maynard2021_hvg5000"))
    spatial_graph(adata)  # raw counts on purpose: integer-valued float32 X, sparse
    ssc.pp.augment(adata, use_rep="X", mask_rate=0.25, random_state=0)
    view = adata.layers["ssc_augmented"]
    assert sparse.issparse(view) and view.nnz <= adata.X.nnz
    assert abs(adata.uns["ssc_augmented"]["fraction_masked"] - 0.25) < 0.01
    assert np.isfinite(view.data).all()
