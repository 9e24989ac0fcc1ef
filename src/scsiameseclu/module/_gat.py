"""Graph attention aggregated as one sparse product per layer (PyTorch Geometric's ``GATConv`` semantics).

PyG's ``GATConv`` gathers a message per edge (edges × channels), scales it by its attention
coefficient and scatters it onto the target cell; its backward pass does the same in reverse,
with scatter-additions into both cells. On the CPU those edge-sized gathers and scatters were most
of a training step (``benchmarks/results/profile.md``). Here the attention coefficients fill a
CSR adjacency (targets as rows) and the aggregation is one sparse × dense product; its backward
is the product with the transposed adjacency for the features and, for the coefficients, the
sampled dot products of the edges (``torch.sparse.sampled_addmm``: no edge-sized gather or scatter). The function is the same;
the sums run in another order, so results agree to float32 rounding.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn
from torch.nn import functional as F


def _csr(rowptr: torch.Tensor, col: torch.Tensor, values: torch.Tensor, n_rows: int, n_cols: int) -> torch.Tensor:
    with warnings.catch_warnings():  # torch's notice that its CSR support is in beta: not the user's concern
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(rowptr, col, values, size=(n_rows, n_cols), check_invariants=False)


class SparseGraph:
    """A directed cell graph in CSR form (rows: targets), with its transpose, for attention layers.

    Built once per encoder call from a ``2 × E`` ``edge_index`` (row 0 sources, row 1 targets,
    self-loops included by the caller) and shared by every layer of the call.
    """

    def __init__(self, edge_index: torch.Tensor, n_nodes: int):
        src, dst = edge_index[0], edge_index[1]
        # Edges sorted by target, then source: the CSR order of the adjacency (targets as rows).
        order = torch.argsort(dst * n_nodes + src)
        self.src, self.dst = src[order], dst[order]
        self.n_nodes = n_nodes
        counts = torch.bincount(self.dst, minlength=n_nodes)
        self.rowptr = torch.zeros(n_nodes + 1, dtype=torch.long, device=src.device)
        self.rowptr[1:] = torch.cumsum(counts, 0)
        # The transpose (sources as rows): the CSR positions of the same edges, sorted by source.
        self.t_order = torch.argsort(self.src * n_nodes + self.dst)
        t_counts = torch.bincount(self.src, minlength=n_nodes)
        self.t_rowptr = torch.zeros(n_nodes + 1, dtype=torch.long, device=src.device)
        self.t_rowptr[1:] = torch.cumsum(t_counts, 0)
        self.t_col = self.dst[self.t_order]

    @property
    def n_edges(self) -> int:
        return int(self.src.numel())

    def softmax(self, scores: torch.Tensor) -> torch.Tensor:
        """Softmax of per-edge ``scores`` (edges × heads) over each target's incoming edges."""
        lengths = self.rowptr[1:] - self.rowptr[:-1]
        peak = torch.segment_reduce(scores, "max", lengths=lengths, axis=0, unsafe=True)
        peak = torch.nan_to_num(peak, neginf=0.0)  # targets without edges (none once self-loops are in)
        e = torch.exp(scores - peak[self.dst])
        total = torch.segment_reduce(e, "sum", lengths=lengths, axis=0, unsafe=True)
        return e / total[self.dst].clamp_min(1e-16)


class _Aggregate(torch.autograd.Function):
    """``out[i] = sum_j alpha[i, j] · h[j]`` over the edges of a :class:`SparseGraph`, one head."""

    @staticmethod
    def forward(ctx, alpha: torch.Tensor, h: torch.Tensor, graph: SparseGraph) -> torch.Tensor:
        ctx.graph = graph
        ctx.save_for_backward(alpha, h)
        n = graph.n_nodes
        return torch.sparse.mm(_csr(graph.rowptr, graph.src, alpha, n, n), h)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        alpha, h = ctx.saved_tensors
        graph = ctx.graph
        grad_alpha = grad_h = None
        n = graph.n_nodes
        if ctx.needs_input_grad[0]:  # sampled dot products, one per edge, in CSR order
            pattern = _csr(graph.rowptr, graph.src, torch.ones_like(alpha), n, n)
            grad_alpha = torch.sparse.sampled_addmm(pattern, grad_out.contiguous(), h.T, beta=0.0).values()
        if ctx.needs_input_grad[1]:  # the transposed adjacency times the incoming gradient
            transposed = _csr(graph.t_rowptr, graph.t_col, alpha[graph.t_order], n, n)
            grad_h = torch.sparse.mm(transposed, grad_out.contiguous())
        return grad_alpha, grad_h, None


class _Linear(nn.Module):
    """A bias-free linear map whose parameter is ``weight``, as in PyG's ``GATConv.lin`` (saved networks load)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


class SparseGATConv(nn.Module):
    """Graph attention layer with PyTorch Geometric ``GATConv``'s function and parameters.

    ``GATConv(in_channels, out_channels, heads, concat=True, negative_slope=0.2, dropout=0,
    add_self_loops=False, bias=True)``: per head, ``h = W x``, attention logits
    ``LeakyReLU(a_src · h_j + a_dst · h_i)`` softmax-normalised over each cell's incoming edges,
    ``out_i = sum_j alpha_ij h_j``; heads concatenated, plus a bias. The parameters have PyG's
    names and shapes (``lin.weight``, ``att_src``, ``att_dst``, ``bias``), so one layer's state
    loads into the other. Self-loops, if wanted, are part of the graph the caller passes.

    Parameters
    ----------
    in_channels, out_channels
        Input width and output width per head.
    heads
        Attention heads (outputs concatenated: ``heads * out_channels`` columns).
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1):
        super().__init__()
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.negative_slope = 0.2
        self.lin = _Linear(in_channels, heads * out_channels)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        self.bias = nn.Parameter(torch.empty(heads * out_channels))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyG's scheme: Glorot-uniform weight and attention vectors, zero bias."""
        for p in (self.lin.weight, self.att_src, self.att_dst):
            bound = math.sqrt(6.0 / (p.shape[-2] + p.shape[-1]))
            nn.init.uniform_(p, -bound, bound, generator=generator)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, graph: SparseGraph) -> torch.Tensor:
        n, heads, c = x.shape[0], self.heads, self.out_channels
        h = self.lin(x).view(n, heads, c)
        a_src = (h * self.att_src).sum(-1)  # cells × heads
        a_dst = (h * self.att_dst).sum(-1)
        scores = F.leaky_relu(a_src[graph.src] + a_dst[graph.dst], self.negative_slope)
        alpha = graph.softmax(scores)  # edges × heads
        out = [_Aggregate.apply(alpha[:, k].contiguous(), h[:, k].contiguous(), graph) for k in range(heads)]
        return torch.cat(out, dim=1) + self.bias
