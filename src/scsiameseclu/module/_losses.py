"""Training objectives. Every term is O(N·d) or O(B²) for a bounded sample B, never O(N²)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

# exp(-x) stays a normal float32 number for x up to about 87.
_MAX_EXP_RANGE = 80.0


def cross_correlation_loss(
    z1: torch.Tensor, z2: torch.Tensor, off_diagonal_weight: float | None = None
) -> torch.Tensor:
    """Redundancy reduction between two views (Barlow Twins).

    The d × d cross-correlation of the standardised views is pushed to the identity: the diagonal
    keeps each dimension invariant to augmentation, the off-diagonal prevents collapse onto a few
    directions (over-smoothing). ``off_diagonal_weight`` defaults to ``1 / d``.
    """
    n, d = z1.shape
    z1 = (z1 - z1.mean(0)) / (z1.std(0) + 1e-5)
    z2 = (z2 - z2.mean(0)) / (z2.std(0) + 1e-5)
    c = z1.T @ z2 / n
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    lam = 1.0 / d if off_diagonal_weight is None else off_diagonal_weight
    return (on + lam * off) / d


def contrastive_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: float = 0.5,
    max_cells: int = 1024,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE: a cell's two views are positives, other sampled cells negatives.

    At most ``max_cells`` cells are sampled per call, so the similarity matrix is bounded.
    """
    n = z1.shape[0]
    if n > max_cells:
        idx = torch.randperm(n, generator=generator, device=z1.device)[:max_cells]
        z1, z2 = z1[idx], z2[idx]
    sim = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T  # cosines, at most 1
    # Cross-entropy of the logits ``sim / T`` row-wise (z1 → z2) and column-wise (z2 → z1), as
    # log-sum-exp minus the positive pair. Shifted by the bound 1/T, exp((sim - 1) / T) lies in
    # [exp(-2/T), 1], so one exponential of the B × B matrix serves both directions without
    # overflow (the pair of cross-entropies on ``logits`` and ``logits.T`` cost two, and a
    # transposed gradient). At a temperature so low that exp(-2/T) underflows in float32, each
    # direction takes its own stabilised log-sum-exp.
    if 2.0 / temperature <= _MAX_EXP_RANGE:
        e = torch.exp((sim - 1.0) / temperature)
        log_norm = 0.5 * (e.sum(1).log().mean() + e.sum(0).log().mean()) + 1.0 / temperature
    else:
        logits = sim / temperature
        log_norm = 0.5 * (torch.logsumexp(logits, 1).mean() + torch.logsumexp(logits, 0).mean())
    return log_norm - sim.diagonal().mean() / temperature


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error against the clean (un-augmented) input."""
    return F.mse_loss(x_hat, x)


def count_loss(
    logits: torch.Tensor, log_dispersion: torch.Tensor, counts: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """Negative-binomial negative log-likelihood of raw counts, per entry (scVI's decoder form).

    The mean of cell ``i`` and gene ``g`` is ``softmax(logits_i)_g`` times the cell's observed total
    count, so the decoder models composition, not depth; ``log_dispersion`` holds one inverse
    dispersion per gene. O(N·G).
    """
    library = counts.sum(1, keepdim=True)
    mu = torch.softmax(logits, dim=1) * library
    theta = log_dispersion.exp()
    log_theta_mu = torch.log(theta + mu + eps)
    log_lik = (
        theta * (log_dispersion - log_theta_mu)
        + counts * (torch.log(mu + eps) - log_theta_mu)
        + torch.lgamma(counts + theta)
        - torch.lgamma(theta)
        - torch.lgamma(counts + 1.0)
    )
    return -log_lik.mean()


def swapped_assignment_loss(
    scores1: torch.Tensor, scores2: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Each view predicts the other's transport plan (SwAV-style self-labelling)."""
    l1 = -(q2 * F.log_softmax(scores1 / temperature, dim=1)).sum(1).mean()
    l2 = -(q1 * F.log_softmax(scores2 / temperature, dim=1)).sum(1).mean()
    return 0.5 * (l1 + l2)


def library_moment_loss(z: torch.Tensor, library: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Keep library (slice, batch) identity out of the embedding by matching moments, O(N·d).

    For each library with at least two cells, the squared gap between its per-dimension mean and
    log-sd and those of all cells, in units of the overall sd, weighted by the library's share of
    cells and averaged over dimensions. Zero when only one library is present.
    """
    codes, index = torch.unique(library, return_inverse=True)
    if codes.numel() < 2:
        return z.new_zeros(())
    n, d = z.shape
    counts = torch.bincount(index, minlength=codes.numel()).to(z.dtype)
    mean = z.mean(0)
    log_sd = 0.5 * torch.log(z.var(0) + eps)
    mean_l = torch.zeros(codes.numel(), d, dtype=z.dtype, device=z.device).index_add_(0, index, z) / counts[:, None]
    dev = (z - mean_l[index]).pow(2)
    var_l = torch.zeros_like(mean_l).index_add_(0, index, dev) / (counts - 1).clamp(min=1)[:, None]
    gap = ((mean_l - mean) / torch.exp(log_sd)).pow(2) + (0.5 * torch.log(var_l + eps) - log_sd).pow(2)
    share = torch.where(counts >= 2, counts / n, torch.zeros_like(counts))
    return (share[:, None] * gap).sum() / d


def library_centred(x: torch.Tensor, library: torch.Tensor) -> torch.Tensor:
    """``x`` with each library's mean moved to the overall mean (a reconstruction target free of slice shifts)."""
    codes, index = torch.unique(library, return_inverse=True)
    counts = torch.bincount(index, minlength=codes.numel()).to(x.dtype)
    means = torch.zeros(codes.numel(), x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, index, x)
    return x - (means / counts[:, None])[index] + x.mean(0)
