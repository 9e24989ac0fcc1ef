"""GraphST as in its DLPFC tutorial; its ``clustering`` step (PCA(20) of the embedding + mclust
EEE) with ``GaussianMixture(covariance_type="tied")`` in place of R's mclust, no refinement.

GraphST does its own preprocessing from counts (3000 seurat_v3 HVGs, normalise, log, scale) and
builds a dense spots × spots graph, so it gets the raw counts as ``X``.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np


def graphst(adata, k, seed, *, quick=False):
    import anndata as ad
    import torch
    from GraphST import GraphST
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    data = ad.AnnData(X=adata.layers["counts"].copy(), obs=adata.obs[[]], var=adata.var[[]])
    data.obsm["spatial"] = np.asarray(adata.obsm["spatial"], dtype=np.float64)
    with contextlib.redirect_stdout(io.StringIO()):
        model = GraphST.GraphST(data, device=torch.device("cpu"), random_seed=seed)
        data = model.train()
    emb = PCA(n_components=20, random_state=42).fit_transform(np.asarray(data.obsm["emb"]))
    labels = GaussianMixture(k, covariance_type="tied", random_state=seed).fit(emb).predict(emb)
    return labels, emb, {"pcs": 20, "refinement": False}
