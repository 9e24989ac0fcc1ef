"""Stochastic views of expression and of the cell graph (pure torch, seeded generators)."""

from __future__ import annotations

import torch


def mask_features(
    x: torch.Tensor,
    mask_rate: float,
    noise_std: float = 0.0,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Zero a random fraction of entries (independently per cell and feature), then add noise.

    Parameters
    ----------
    x
        Cells × features.
    mask_rate
        Probability that an entry is set to zero.
    noise_std
        Standard deviation of additive Gaussian noise, relative to the data's scale (1 after
        :func:`~scsiameseclu.module.scale_input`).
    generator
        Source of randomness; the global torch RNG is never used.
    """
    out = x
    if mask_rate > 0:
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= mask_rate
        out = out * keep
    if noise_std > 0:
        out = out + noise_std * torch.randn(x.shape, generator=generator, device=x.device)
    return out


def _similar_pairs(x: torch.Tensor, n_pairs: int, n_candidates: int, generator: torch.Generator | None) -> torch.Tensor:
    """Among random candidate pairs, keep the ``n_pairs`` most cosine-similar ones."""
    n = x.shape[0]
    cand = torch.randint(0, n, (2, n_candidates), generator=generator, device=x.device)
    xn = torch.nn.functional.normalize(x, dim=1)
    sim = (xn[cand[0]] * xn[cand[1]]).sum(1)
    return cand[:, sim.topk(min(n_pairs, n_candidates)).indices]


def perturb_edges(
    pairs: torch.Tensor,
    n_nodes: int,
    drop_rate: float,
    add_rate: float,
    *,
    x: torch.Tensor | None = None,
    add_mode: str = "similar",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Drop a fraction of undirected edges and add new ones; return a symmetric ``edge_index``.

    Parameters
    ----------
    pairs
        ``2 × E`` undirected edges, each listed once (``i < j``).
    n_nodes
        Number of cells.
    drop_rate
        Probability that an edge is removed.
    add_rate
        Number of added edges as a fraction of ``E``.
    x
        Cell features, needed when ``add_mode="similar"``.
    add_mode
        ``"random"`` adds uniformly random pairs; ``"similar"`` draws 10 candidate pairs per added
        edge and keeps the most cosine-similar in ``x`` (cells close in expression).
    generator
        Source of randomness.
    """
    device = pairs.device
    n_edges = pairs.shape[1]
    if drop_rate > 0 and n_edges:
        keep = torch.rand(n_edges, generator=generator, device=device) >= drop_rate
        pairs = pairs[:, keep]
    n_add = int(round(add_rate * n_edges))
    if n_add > 0 and n_nodes > 1:
        if add_mode == "similar":
            if x is None:
                msg = "`x` is required when `add_mode='similar'`."
                raise ValueError(msg)
            new = _similar_pairs(x, n_add, 10 * n_add, generator)
        elif add_mode == "random":
            new = torch.randint(0, n_nodes, (2, n_add), generator=generator, device=device)
        else:
            msg = f"`add_mode` must be 'random' or 'similar', got {add_mode!r}."
            raise ValueError(msg)
        new = new[:, new[0] != new[1]]
        new = torch.sort(new, dim=0).values
        # Deduplicate via scalar keys: torch.unique(dim=1) is an order of magnitude slower.
        keys = torch.unique(torch.cat([pairs[0] * n_nodes + pairs[1], new[0] * n_nodes + new[1]]))
        pairs = torch.stack([keys // n_nodes, keys % n_nodes])
    return torch.cat([pairs, pairs.flip(0)], dim=1)
