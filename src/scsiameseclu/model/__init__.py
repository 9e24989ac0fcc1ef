"""AnnData-facing model layer."""

from ._model import SiameseClusterModel
from ._n_clusters import estimate_n_clusters

__all__ = ["SiameseClusterModel", "estimate_n_clusters"]
