"""scVI (scvi-tools) on counts, then Leiden on its latent space with the resolution bisected to k.

As in the scvi-tools tutorial: 2000 seurat_v3 HVGs on counts (all genes where there are
fewer), default model and training schedule, on CPU.
"""

from __future__ import annotations

import logging


def scvi(adata, k, seed, *, quick=False):
    import scanpy as sc
    import scvi as scvi_tools

    from benchmarks.methods._hvg import mark_hvg
    from benchmarks.methods._leiden import leiden_k

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("scvi").setLevel(logging.ERROR)
    scvi_tools.settings.seed = seed
    n_genes = mark_hvg(adata, 2000)
    data = adata[:, adata.var["highly_variable"]].copy()
    scvi_tools.model.SCVI.setup_anndata(data, layer="counts")
    model = scvi_tools.model.SCVI(data)
    model.train(accelerator="cpu", enable_progress_bar=False, max_epochs=20 if quick else None)
    data.obsm["X_scVI"] = model.get_latent_representation()
    sc.pp.neighbors(data, use_rep="X_scVI", n_neighbors=15, random_state=0)
    labels, info = leiden_k(data, k, seed)
    epochs = len(model.history["elbo_train"])
    return labels, data.obsm["X_scVI"], {"n_genes": n_genes, "epochs": epochs, **info}
