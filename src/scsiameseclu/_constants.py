"""AnnData key names used across the package."""

SPATIAL_CONNECTIVITIES = "spatial_connectivities"
SCANPY_CONNECTIVITIES = "connectivities"
SPATIAL_KEY = "spatial"
PCA_KEY = "X_pca"
DEFAULT_KEY = "ssc"
AUGMENT_KEY = "ssc_augmented"

GRAPH_HINT = (
    "Build a cell graph first: `squidpy.gr.spatial_neighbors(adata)` for tissue, or "
    "`sc.pp.neighbors(adata)` for dissociated cells."
)

# Default weight of the graph branch: smooth tissue domains on a spatial graph; an even, learned
# balance on an expression kNN graph, where the expression branch must be able to dominate.
GRAPH_WEIGHT_SPATIAL = 0.8
GRAPH_WEIGHT_KNN = 0.5
