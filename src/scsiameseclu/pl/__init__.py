"""Plotting."""

from ._embedding import embedding
from ._n_clusters import n_clusters

__all__ = ["embedding", "n_clusters"]
