"""Cheap baselines on the shared PCA: Leiden, KMeans, GMM and a spatially smoothed GMM."""

from __future__ import annotations

import numpy as np


def leiden(adata, k, seed, *, quick=False):
    import scanpy as sc

    from benchmarks.methods._leiden import leiden_k

    # An expression graph, as a scanpy user would build; spatial sets carry only the spatial one.
    if "connectivities" not in adata.obsp:
        sc.pp.neighbors(adata, n_neighbors=15, use_rep="X_pca", random_state=0)
    labels, info = leiden_k(adata, k, seed)
    return labels, adata.obsm["X_pca"], info


def kmeans(adata, k, seed, *, quick=False):
    from sklearn.cluster import KMeans

    x = adata.obsm["X_pca"]
    return KMeans(k, n_init=10, random_state=seed).fit_predict(x), x, {}


def gmm(adata, k, seed, *, quick=False):
    from sklearn.mixture import GaussianMixture

    # float64: in float32 the full covariances of small components were singular (Baron, 13 types).
    x = np.asarray(adata.obsm["X_pca"], dtype=np.float64)
    return GaussianMixture(k, random_state=seed).fit(x).predict(x), x, {}


def smooth_gmm(adata, k, seed, *, quick=False):
    """GMM on the PCA averaged over each cell and its spatial-graph neighbours."""
    from scipy import sparse
    from sklearn.mixture import GaussianMixture

    a = sparse.csr_matrix(adata.obsp["spatial_connectivities"], dtype=np.float64)
    a.data[:] = 1.0
    a = a + sparse.identity(a.shape[0], format="csr")
    a = sparse.diags(1.0 / np.asarray(a.sum(1)).ravel()) @ a
    x = np.asarray(a @ adata.obsm["X_pca"], dtype=np.float64)
    return GaussianMixture(k, random_state=seed).fit(x).predict(x), x, {}
