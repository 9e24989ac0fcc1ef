"""AnnData key names used across the package."""

SPATIAL_CONNECTIVITIES = "spatial_connectivities"
SCANPY_CONNECTIVITIES = "connectivities"
SPATIAL_KEY = "spatial"
PCA_KEY = "X_pca"
DEFAULT_KEY = "ssc"
AUGMENT_KEY = "ssc_augmented"

GRAPH_HINT = (
    "Build a cell graph first: `squidpy.gr.spatial_neighbors_knn(adata)` for tissue, or "
    "`sc.pp.neighbors(adata)` for dissociated cells."
)
