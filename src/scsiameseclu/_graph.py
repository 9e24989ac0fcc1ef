"""Conversions between ``obsp`` sparse graphs and torch-geometric edge lists."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def graph_to_pairs(graph: sparse.spmatrix | sparse.sparray) -> np.ndarray:
    """Undirected edges of a (symmetrised) sparse graph, each once as ``i < j``: ``2 × E`` int64."""
    coo = sparse.coo_matrix(graph)
    n = coo.shape[0]
    # Endpoints in the index dtype of the graph (int32 up to 2**31 cells); only the edge keys
    # need int64, so no int64 copy of every stored entry is made.
    lo, hi = np.minimum(coo.row, coo.col), np.maximum(coo.row, coo.col)
    keep = lo != hi
    keys = lo[keep].astype(np.int64)
    keys *= n
    keys += hi[keep]
    del lo, hi, keep, coo
    keys = np.unique(keys)
    return np.vstack([keys // n, keys % n])


def edge_index_to_csr(edge_index: np.ndarray, n_nodes: int) -> sparse.csr_matrix:
    """Binary CSR adjacency from a ``2 × E`` edge list."""
    data = np.ones(edge_index.shape[1], dtype=np.float32)
    adj = sparse.csr_matrix((data, (edge_index[0], edge_index[1])), shape=(n_nodes, n_nodes))
    adj.sum_duplicates()
    adj.data[:] = 1.0
    return adj
