"""SpaGCN, as in its tutorial without histology: l for p=0.5, resolution searched to give k.

SpaGCN calls ``.A`` on sparse matrices (gone from current scipy), so it gets a dense ``X``
(the shared log-normalised expression). SpaGCN reduces to 50 PCs, which fails on panels of
fewer genes (osmFISH: 33); there it keeps ``n_genes - 1`` PCs (``search_res`` has no argument for
it, so its ``SpaGCN`` class is swapped for one with that default).
"""

from __future__ import annotations

import contextlib
import io
import random

import numpy as np


def spagcn(adata, k, seed, *, quick=False):
    import anndata as ad
    import SpaGCN as spg
    import torch
    from scipy import sparse

    x = adata.X.toarray() if sparse.issparse(adata.X) else np.asarray(adata.X)
    data = ad.AnnData(X=x.astype(np.float32), obs=adata.obs[[]], var=adata.var[[]])
    xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)
    n_pcs = min(50, x.shape[1] - 1)

    class SpaGCNPcs(spg.SpaGCN):
        def train(self, *args, **kwargs):
            kwargs.setdefault("num_pcs", n_pcs)
            return super().train(*args, **kwargs)

    spg.util.SpaGCN = SpaGCNPcs
    with contextlib.redirect_stdout(io.StringIO()):
        adj = spg.calculate_adj_matrix(x=xy[:, 0].tolist(), y=xy[:, 1].tolist(), histology=False)
        lval = spg.search_l(0.5, adj, start=0.01, end=1000, tol=0.01, max_run=100)
        res = spg.search_res(
            data,
            adj,
            lval,
            k,
            start=0.7,
            step=0.1,
            tol=5e-3,
            lr=0.05,
            max_epochs=20,
            r_seed=seed,
            t_seed=seed,
            n_seed=seed,
        )
        clf = SpaGCNPcs()
        clf.set_l(lval)
        random.seed(seed)
        torch.manual_seed(seed)
        np.random.seed(seed)
        clf.train(data, adj, init_spa=True, init="louvain", res=res, tol=5e-3, lr=0.05, max_epochs=200)
        labels, _ = clf.predict()
        z, _ = clf.model.predict(clf.embed, clf.adj_exp)
    return labels, z.detach().numpy(), {"l": float(lval), "resolution": float(res)}
