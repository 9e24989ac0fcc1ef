"""Tools: clustering."""

from ._siamese_cluster import siamese_cluster

__all__ = ["siamese_cluster"]
