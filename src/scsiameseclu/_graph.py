"""Conversions between ``obsp`` sparse graphs and torch-geometric edge lists."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def graph_to_pairs(graph: sparse.spmatrix | sparse.sparray) -> np.ndarray:
    """Undirected edges of a (symmetrised) sparse graph, each once as ``i < j``: ``2 × E`` int64."""
    coo = sparse.coo_matrix(graph)
    i, j = coo.row.astype(np.int64), coo.col.astype(np.int64)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    keep = lo != hi
    keys = np.unique(lo[keep] * coo.shape[0] + hi[keep])
    return np.vstack([keys // coo.shape[0], keys % coo.shape[0]])


def edge_index_to_csr(edge_index: np.ndarray, n_nodes: int) -> sparse.csr_matrix:
    """Binary CSR adjacency from a ``2 × E`` edge list."""
    data = np.ones(edge_index.shape[1], dtype=np.float32)
    adj = sparse.csr_matrix((data, (edge_index[0], edge_index[1])), shape=(n_nodes, n_nodes))
    adj.sum_duplicates()
    adj.data[:] = 1.0
    return adj
