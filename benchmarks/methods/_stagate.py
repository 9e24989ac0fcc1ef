"""STAGATE (stagate-modern, ``STAGATE_pyG``) as in its tutorial; tied GMM in place of mclust EEE.

3000 seurat_v3 HVGs on counts (all genes where there are fewer), the shared log-normalised
expression, a 6-NN spatial network (as the shared graph), default training (1000 epochs).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np


def stagate(adata, k, seed, *, quick=False):
    import STAGATE_pyG as STAGATE
    from sklearn.mixture import GaussianMixture

    from benchmarks.methods._hvg import mark_hvg

    n_genes = mark_hvg(adata, 3000)
    with contextlib.redirect_stdout(io.StringIO()):
        STAGATE.Cal_Spatial_Net(adata, k_cutoff=6, model="KNN", verbose=False)
        STAGATE.train_STAGATE(adata, random_seed=seed, device="cpu", verbose=False)
    emb = np.asarray(adata.obsm["STAGATE"], dtype=np.float64)
    labels = GaussianMixture(k, covariance_type="tied", random_state=seed).fit(emb).predict(emb)
    return labels, emb, {"n_genes": n_genes, "k_cutoff": 6, "epochs": 1000}
