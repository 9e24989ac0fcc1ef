"""ssc through its public API, defaults, true k; the user's one choice follows the label kind."""

from __future__ import annotations

CELL_TYPE_GRAPH_WEIGHT = 0.0  # the README's documented choice for cell types on a spatial graph
QUICK_EPOCHS = 10


def user_choice(adata, target: str) -> dict:
    """The one argument a user picks by target: ``graph_weight=0`` for cell types on a spatial graph."""
    if "spatial_connectivities" in adata.obsp and target == "cell types":
        return {"graph_weight": CELL_TYPE_GRAPH_WEIGHT}
    return {}


def ssc(adata, k, seed, *, quick=False):
    import scsiameseclu as ssc

    kwargs = user_choice(adata, adata.uns["benchmark"]["target"])
    if quick:
        kwargs["max_epochs"] = QUICK_EPOCHS
    ssc.tl.siamese_cluster(adata, n_clusters=k, random_state=seed, show_progress_bar=False, **kwargs)
    u = adata.uns["ssc"]
    info = {
        "graph_weight": u["params"]["graph_weight"],
        "stopped_epoch": u.get("stopped_epoch"),
        "device": u["params"]["device"],
        **({"max_epochs": QUICK_EPOCHS} if quick else {}),
    }
    return adata.obs["ssc"].to_numpy(), adata.obsm["X_ssc"], info
