"""The peers' own gene selection: seurat_v3 HVGs on counts (needs scikit-misc)."""

from __future__ import annotations


def mark_hvg(adata, n_top: int) -> int:
    """Set ``var['highly_variable']`` to the top ``n_top`` seurat_v3 genes when there are more.

    Returns the number of genes kept. Sets with at most ``n_top`` genes keep them all.
    """
    import scanpy as sc

    if adata.n_vars <= n_top or "counts" not in adata.layers:
        adata.var["highly_variable"] = True
    else:
        try:
            sc.pp.highly_variable_genes(adata, flavor="seurat_v3", n_top_genes=n_top, layer="counts")
        except ValueError:
            # The loess fit of mean vs variance is singular on some very sparse sets (worm neurons:
            # "reciprocal condition number"); a wider span is the usual fix.
            sc.pp.highly_variable_genes(adata, flavor="seurat_v3", n_top_genes=n_top, layer="counts", span=1.0)
    return int(adata.var["highly_variable"].sum())
