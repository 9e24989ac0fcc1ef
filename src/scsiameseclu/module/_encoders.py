"""The two branches of the Siamese encoder and their learned fusion."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch_geometric.utils import add_self_loops, remove_self_loops, scatter

from ._gat import SparseGATConv, SparseGraph


class _ExpELU(torch.autograd.Function):
    """ELU through ``exp`` rather than ``expm1``: the same function (to float32 rounding).

    Torch's CPU ELU evaluates ``expm1`` element by element, several times slower than its
    vectorised ``exp``, and the network's layers are small enough for activations to be a
    visible part of a step. The backward pass needs only the output: the slope is 1 where it is
    positive and ``out + 1`` (= exp(x)) elsewhere.
    """

    @staticmethod
    def forward(ctx, x):
        out = x.clamp_max(0).exp_().sub_(1).add_(x.clamp_min(0))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out.clamp_max(0).add_(1)


def elu(x: torch.Tensor) -> torch.Tensor:
    """``F.elu`` (alpha 1), faster on the CPU."""
    return _ExpELU.apply(x)


class ELU(nn.Module):
    """:func:`elu` as a layer (no parameters, so it stands in for ``nn.ELU`` in saved networks)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return elu(x)


class ExpressionEncoder(nn.Module):
    """MLP over a cell's own expression."""

    def __init__(self, n_input: int, n_hidden: int, n_latent: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_input, n_hidden), nn.LayerNorm(n_hidden), ELU(), nn.Linear(n_hidden, n_latent)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def neighbourhood_features(x: torch.Tensor, edge_index: torch.Tensor, n_hops: int) -> torch.Tensor:
    """``[x, Ax, A²x, …]`` with ``A`` the row-normalised adjacency (mean over neighbours), sparse."""
    feats, h = [x], x
    for _ in range(n_hops):
        h = scatter(h[edge_index[0]], edge_index[1], dim=0, dim_size=x.shape[0], reduce="mean")
        feats.append(h)
    return torch.cat(feats, dim=1)


class GraphEncoder(nn.Module):
    """Graph-attention network over the cell graph (sparse ``edge_index``; :class:`SparseGATConv` layers).

    Its input is the cell's features concatenated with their means over 1…``n_hops`` hops of the
    (perturbed) graph, so that the attention layers see a wider neighbourhood than their depth.
    """

    def __init__(self, n_input: int, n_hidden: int, n_latent: int, n_layers: int = 2, heads: int = 1, n_hops: int = 0):
        super().__init__()
        self.n_hops = n_hops
        dims = [n_input * (n_hops + 1)] + [n_hidden] * (n_layers - 1)
        # Self-loops are added once per call in `forward`, not again by every layer.
        self.convs = nn.ModuleList(SparseGATConv(d, n_hidden // heads, heads=heads) for d in dims)
        self.norms = nn.ModuleList(nn.LayerNorm(n_hidden) for _ in dims)
        self.out = nn.Linear(n_hidden, n_latent)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        h = neighbourhood_features(x, edge_index, self.n_hops) if self.n_hops else x
        # Each cell attends to itself as well (GATConv's own default, done here once for all layers),
        # and the sparse form of the graph is built once for all layers.
        edge_index, _ = add_self_loops(remove_self_loops(edge_index)[0], num_nodes=x.shape[0])
        graph = SparseGraph(edge_index, x.shape[0])
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = elu(norm(conv(h, graph)))
        return self.out(h)


class GatedFusion(nn.Module):
    """Per-cell, per-dimension gate between the graph and the expression branch.

    ``z = g * z_graph + (1 - g) * z_expr`` with ``g = sigmoid(logit(w) + s * tanh(a(z_expr, z_graph)))``:
    ``w`` (``graph_weight``) sets the prior balance, the learned term ``a`` moves each cell's gate
    by at most ``s`` logits. ``w = 0`` or ``1`` switch a branch off entirely.
    """

    def __init__(self, n_latent: int, graph_weight: float, max_shift: float = 1.0):
        super().__init__()
        self.graph_weight = float(graph_weight)
        self.max_shift = max_shift
        self.gate = nn.Linear(2 * n_latent, n_latent)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The gate at its prior: no learned shift."""
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    def forward(self, z_expr: torch.Tensor, z_graph: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.graph_weight
        if w <= 0.0:
            return z_expr, torch.zeros_like(z_expr)
        if w >= 1.0:
            return z_graph, torch.ones_like(z_graph)
        shift = self.max_shift * torch.tanh(self.gate(torch.cat([z_expr, z_graph], dim=1)))
        g = torch.sigmoid(math.log(w / (1 - w)) + shift)
        return g * z_graph + (1 - g) * z_expr, g


class SoftmaxFusion(nn.Module):
    """Per-cell, per-dimension softmax gate over any number of branches (:class:`GatedFusion` generalised).

    ``z = sum_b g_b * z_b`` with ``g = softmax_b(log p_b + s * tanh(a_b(z_1, ..., z_B)))``. The
    graph branch (last) has prior weight ``p = w`` (``graph_weight``), the others share
    ``1 - w`` equally; the learned term moves each logit by at most ``s``. ``w = 0`` drops the
    graph branch, ``w = 1`` keeps it alone. With two branches this is :class:`GatedFusion`'s
    form (a sigmoid of the logit difference).

    Parameters
    ----------
    n_latent
        Embedding dimension of every branch.
    n_branches
        Number of non-graph branches (expression and each extra modality).
    graph_weight
        Prior weight of the graph branch, in ``[0, 1]``.
    max_shift
        Bound ``s`` on the learned change of each logit.
    """

    def __init__(self, n_latent: int, n_branches: int, graph_weight: float, max_shift: float = 1.0):
        super().__init__()
        self.graph_weight = float(graph_weight)
        self.max_shift = max_shift
        w = self.graph_weight
        self.prior = [(1 - w) / n_branches] * n_branches + ([w] if w > 0 else [])
        self.register_buffer("log_prior", torch.empty(1, len(self.prior), 1), persistent=False)
        width = len(self.prior) * n_latent
        self.gate = nn.Linear(width, width)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The gate at its prior: no learned shift, the branches weighted by ``prior``."""
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)
        if not self.log_prior.is_meta:  # a network built on the meta device sets it once it has storage
            self.log_prior.copy_(torch.log(torch.tensor(self.prior)).view(1, -1, 1))

    def forward(
        self, z_branches: list[torch.Tensor], z_graph: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused embedding and the graph branch's gate (zeros without a graph branch)."""
        w = self.graph_weight
        if w >= 1.0:
            return z_graph, torch.ones_like(z_graph)
        zs = list(z_branches) + ([z_graph] if w > 0 else [])
        stacked = torch.stack(zs, dim=1)  # cells x branches x d
        shift = self.max_shift * torch.tanh(self.gate(stacked.flatten(1))).view_as(stacked)
        g = torch.softmax(self.log_prior + shift, dim=1)
        z = (g * stacked).sum(1)
        gate = g[:, -1] if w > 0 else torch.zeros_like(z)
        return z, gate
