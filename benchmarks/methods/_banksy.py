"""BANKSY (pybanksy): neighbour-augmented expression matrix, PCA(20), then a tied GMM.

BANKSY's own fixed-k path calls R's mclust (EEE) on the PCA; ``GaussianMixture(tied)`` is the
Python equivalent. ``lambda`` follows the BANKSY authors' guidance for what is sought: 0.8 for
tissue domains, 0.2 for cell types.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np


def banksy(adata, k, seed, *, quick=False):
    from banksy.embed_banksy import generate_banksy_matrix
    from banksy.initialize_banksy import initialize_banksy
    from banksy_utils.umap_pca import pca_umap
    from sklearn.mixture import GaussianMixture

    lam = 0.8 if adata.uns["benchmark"]["target"] == "domains" else 0.2
    xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)
    adata.obs["xcoord"], adata.obs["ycoord"] = xy[:, 0], xy[:, 1]
    adata.obsm["coord_xy"] = xy
    with contextlib.redirect_stdout(io.StringIO()):
        bdict = initialize_banksy(
            adata,
            ("xcoord", "ycoord", "coord_xy"),
            num_neighbours=15,
            nbr_weight_decay="scaled_gaussian",
            max_m=1,
            plt_edge_hist=False,
            plt_nbr_weights=False,
            plt_agf_angles=False,
            plt_theta=False,
        )
        generate_banksy_matrix(adata, bdict, [lam], max_m=1, verbose=False)
        np.random.seed(seed)  # sklearn's PCA inside pca_umap takes no seed; arpack/randomized read this
        pca_umap(bdict, pca_dims=[20], plt_remaining_var=False, add_umap=False)
    emb = np.asarray(bdict["scaled_gaussian"][lam]["adata"].obsm["reduced_pc_20"], dtype=np.float64)
    labels = GaussianMixture(k, covariance_type="tied", random_state=seed).fit(emb).predict(emb)
    return labels, emb, {"lambda": lam, "k_geom": 15, "pcs": 20}
