"""CellCharter: features of each cell and its 1–3-hop spatial neighbours (mean), then its GMM.

Uses the shared PCA and the shared squidpy graph (CellCharter's own input: a dimensionality
reduction plus ``spatial_connectivities``); long links are pruned as in its tutorials.
"""

from __future__ import annotations

import logging

import numpy as np


def cellcharter(adata, k, seed, *, quick=False):
    import cellcharter as cc

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    # squidpy's `spatial_neighbors_knn` (and files written without `uns`) leave out the record that
    # `remove_long_links` updates; it names the graph squidpy wrote, as `spatial_neighbors` does.
    adata.uns.setdefault(
        "spatial_neighbors",
        {"connectivities_key": "spatial_connectivities", "distances_key": "spatial_distances", "params": {}},
    )
    cc.gr.remove_long_links(adata)
    cc.gr.aggregate_neighbors(adata, n_layers=3, use_rep="X_pca", out_key="X_cellcharter")
    model = cc.tl.Cluster(
        n_clusters=k, random_state=seed, trainer_params={"accelerator": "cpu", "enable_progress_bar": False}
    )
    model.fit(adata, use_rep="X_cellcharter")
    labels = np.asarray(model.predict(adata, use_rep="X_cellcharter"))
    return labels, adata.obsm["X_cellcharter"], {"n_layers": 3}
