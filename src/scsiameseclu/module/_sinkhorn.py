"""Entropic optimal transport between cells and clusters."""

from __future__ import annotations

import torch


@torch.no_grad()
def sinkhorn(
    scores: torch.Tensor,
    cluster_weights: torch.Tensor | None = None,
    *,
    epsilon: float,
    n_iters: int,
) -> torch.Tensor:
    """Soft assignments whose cluster totals match ``cluster_weights``.

    Solves ``max <Q, scores> + epsilon·H(Q)`` over plans with uniform cell marginals and cluster
    marginals ``cluster_weights`` (uniform when ``None``) by Sinkhorn–Knopp iterations in log
    space. Memory is O(N·K).

    Returns
    -------
    N × K matrix; each row sums to 1 (a distribution over clusters).
    """
    n, k = scores.shape
    log_q = scores / epsilon
    if cluster_weights is None:
        log_c = torch.full((k,), -torch.log(torch.tensor(float(k))).item(), device=scores.device)
    else:
        w = cluster_weights.to(scores.device).clamp_min(1e-8)
        log_c = torch.log(w / w.sum())
    log_r = -torch.log(torch.tensor(float(n), device=scores.device))
    for _ in range(n_iters):
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) + log_c
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) + log_r
    return torch.exp(log_q) * n


@torch.no_grad()
def propagate(proba: torch.Tensor, edges: torch.Tensor, alpha: float, n_iters: int = 10) -> torch.Tensor:
    """Smooth soft assignments over the graph: ``P ← (1 - alpha)·P0 + alpha·mean_neighbours(P)``.

    Propagation with restart (APPNP); O(E·K) per iteration. ``edges`` is a symmetric
    ``edge_index`` (``2 × E``) or the adjacency as a sparse CSR tensor; the CSR form takes one
    sparse-dense product per iteration instead of a message per edge (``E × K`` floats), which
    is what keeps millions of cells in memory. ``alpha = 0`` returns ``proba``. Cells without
    neighbours keep ``(1 - alpha)·P0 + alpha·0`` before renormalisation, i.e. ``P0``.
    """
    if alpha <= 0 or (edges.layout == torch.strided and edges.numel() == 0):
        return proba
    if edges.layout == torch.sparse_csr:
        rowptr = edges.crow_indices()
        degree = (rowptr[1:] - rowptr[:-1]).clamp_min(1).to(proba.dtype).unsqueeze(1)

        def mean_neighbours(p):
            return (edges @ p) / degree

    else:
        from torch_geometric.utils import scatter

        def mean_neighbours(p):
            return scatter(p[edges[0]], edges[1], dim=0, dim_size=p.shape[0], reduce="mean")

    p = proba
    for _ in range(n_iters):
        p = (1 - alpha) * proba + alpha * mean_neighbours(p)
    return p / p.sum(1, keepdim=True).clamp_min(1e-12)
