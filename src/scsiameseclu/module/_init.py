"""Starting weights: the identity of the input (the default), or the random default schemes drawn from a generator."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._gat import SparseGATConv

#: Rows of the input used to find its principal axes (evenly spaced, no random draw); keeps the
#: SVD cheap for inputs of many genes.
AXES_MAX_CELLS = 2_000


def principal_axes(x: torch.Tensor, k: int) -> torch.Tensor:
    """The top-``k`` principal axes (rows, ``k × d``) of ``x`` on at most ``AXES_MAX_CELLS`` evenly spaced rows."""
    if x.shape[0] > AXES_MAX_CELLS:
        x = x[torch.linspace(0, x.shape[0] - 1, AXES_MAX_CELLS, device=x.device).long()]
    x = x.double()
    _, _, vh = torch.linalg.svd(x - x.mean(0), full_matrices=False)
    return vh[:k]


def identity_weight(n_out: int, n_in: int, x: torch.Tensor | None = None) -> torch.Tensor:
    """``n_out × n_in`` start of a linear map: the identity where it fits, else the principal axes of ``x``.

    ``n_in <= n_out``: the identity into the first ``n_in`` outputs (a PCA input keeps its
    coordinates). ``n_in > n_out``: the projection onto the top ``n_out`` principal axes of the
    layer's input ``x`` (without ``x``, or when ``x`` is not that input, e.g. the graph branch's
    neighbour means with ``n_hops > 0``: its first ``n_out`` columns).
    """
    if n_in <= n_out or x is None or x.shape[1] != n_in:
        return torch.eye(n_out, n_in)
    axes = principal_axes(x, n_out).float().cpu()
    out = torch.zeros(n_out, n_in)
    out[: axes.shape[0]] = axes
    return out


@torch.no_grad()
def identity_init(module: nn.Module, x: torch.Tensor | None = None) -> None:
    """Start every linear map of ``module`` at :func:`identity_weight`, biases at 0, attention uniform.

    ``x`` (the module's input) gives the principal axes for a first layer narrower than its
    input; later layers take the identity. Graph-attention layers start with zero attention
    vectors, i.e. a plain mean over each cell's neighbours.
    """
    first = True
    for m in module.modules():
        if isinstance(m, SparseGATConv):
            weight = m.lin.weight
            nn.init.zeros_(m.att_src)
            nn.init.zeros_(m.att_dst)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            weight = m.weight
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        else:
            continue
        weight.copy_(identity_weight(*weight.shape, x if first else None).to(weight.device))
        first = False


@torch.no_grad()
def random_init(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """PyTorch's default starting weights for every layer of ``module``, drawn from ``generator``.

    Linear layers as ``nn.Linear.reset_parameters`` (Kaiming-uniform weights, uniform biases),
    graph-attention layers as PyTorch Geometric's ``GATConv`` (Glorot-uniform weights and attention
    vectors, zero bias), layer norms at one and zero. Unlike the layers' own ``reset_parameters``,
    nothing is drawn from torch's global RNG unless ``generator`` is ``None``.
    """
    for m in module.modules():
        if isinstance(m, SparseGATConv):
            for name, p in m.named_parameters():
                if name.endswith("bias"):
                    nn.init.zeros_(p)
                else:  # PyG's glorot: uniform within sqrt(6 / (fan_in + fan_out)) of its last two dims
                    bound = math.sqrt(6.0 / (p.shape[-2] + p.shape[-1]))
                    nn.init.uniform_(p, -bound, bound, generator=generator)
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                bound = 1 / math.sqrt(m.in_features) if m.in_features > 0 else 0.0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def split_blocks(n: int, n_blocks: int) -> list[slice]:
    """``n`` coordinates in ``n_blocks`` contiguous blocks of (nearly) equal size, the first one the widest."""
    size = n // n_blocks
    if size < 1:
        msg = f"Cannot split {n} coordinates into {n_blocks} blocks."
        raise ValueError(msg)
    first = n - size * (n_blocks - 1)
    return [slice(0, first)] + [slice(first + i * size, first + (i + 1) * size) for i in range(n_blocks - 1)]


def block_weight(n_out: int, parts: list[int], blocks: list[slice], x: torch.Tensor | None = None) -> torch.Tensor:
    """``n_out × sum(parts)`` map taking input part ``i`` onto output block ``i`` (:func:`identity_weight` of each).

    Keeps modalities on separate coordinates: an extra modality whose identity map would start
    on the same coordinates as the expression's starts on its own instead. ``x`` (the layer's
    input) gives each part's principal axes where the part is wider than its block.
    """
    out = torch.zeros(n_out, sum(parts))
    xs = torch.split(x, parts, dim=1) if x is not None else [None] * len(parts)
    start = 0
    for n_in, block, x_part in zip(parts, blocks, xs, strict=True):
        out[block, start : start + n_in] = identity_weight(block.stop - block.start, n_in, x_part)
        start += n_in
    return out
