"""Tied-covariance Gaussian mixture (EM) on the embedding, started from the clustering head."""

from __future__ import annotations

import math

import torch

#: Cells per block of the posterior: its float64 intermediates (whitened embedding, distances)
#: are made block by block, so their memory does not grow with the number of cells.
POSTERIOR_BLOCK = 65_536


def _m_step(z: torch.Tensor, resp: torch.Tensor, reg: float):
    nk = resp.sum(0).clamp_min(1e-8)
    means = (resp.T @ z) / nk[:, None]
    cov = (z.T @ z - (means.T * nk) @ means) / z.shape[0]
    cov = 0.5 * (cov + cov.T) + reg * torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    return nk / z.shape[0], means, cov


def _log_resp(z: torch.Tensor, weights: torch.Tensor, means: torch.Tensor, cov: torch.Tensor):
    chol = torch.linalg.cholesky(cov)
    # Mahalanobis distances through the shared Cholesky factor: whiten once, then squared distances.
    zw = torch.linalg.solve_triangular(chol, z.T, upper=False).T
    mw = torch.linalg.solve_triangular(chol, means.T, upper=False).T
    dist = (zw * zw).sum(1, keepdim=True) - 2 * zw @ mw.T + (mw * mw).sum(1)[None, :]
    log_det = 2 * torch.log(torch.diagonal(chol)).sum()
    log_prob = -0.5 * (dist + log_det + z.shape[1] * math.log(2 * math.pi)) + torch.log(weights)[None, :]
    log_norm = torch.logsumexp(log_prob, dim=1, keepdim=True)
    return log_prob - log_norm, float(log_norm.mean())


@torch.no_grad()
def fit_tied_mixture(
    z: torch.Tensor, resp: torch.Tensor, *, max_iter: int = 100, tol: float = 1e-4, reg: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """EM of a Gaussian mixture with one shared covariance, started from assignments ``resp``.

    Starts with an M-step on ``resp`` (cells × clusters), so cluster identities follow the
    clustering head; unlike cosine prototypes, the mixture learns cluster sizes and the shape
    of the embedding (as mclust ``EEE`` does). O(N·K·d + d³) per iteration, no N×N matrix.

    Returns the mixture weights (K), means (K × d) and shared covariance (d × d), in float64.
    """
    z = z.double()
    resp = resp.double()
    previous = -math.inf
    for _ in range(max_iter):
        weights, means, cov = _m_step(z, resp, reg)
        log_resp, log_lik = _log_resp(z, weights.clamp_min(1e-12), means, cov)
        resp = log_resp.exp()
        if abs(log_lik - previous) < tol:
            break
        previous = log_lik
    return _m_step(z, resp, reg)


@torch.no_grad()
def mixture_log_likelihood(z: torch.Tensor, weights: torch.Tensor, means: torch.Tensor, cov: torch.Tensor) -> float:
    """Mean log-likelihood per cell of ``z`` under a fitted tied mixture (compares fits on the same ``z``)."""
    return _log_resp(z.double(), weights.clamp_min(1e-12), means, cov)[1]


@torch.no_grad()
def mixture_posterior(z: torch.Tensor, weights: torch.Tensor, means: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """Posterior cluster probabilities (cells × clusters) of ``z`` under a fitted tied mixture."""
    out = torch.empty(z.shape[0], means.shape[0], dtype=z.dtype, device=z.device)
    for start in range(0, z.shape[0], POSTERIOR_BLOCK):
        log_resp, _ = _log_resp(z[start : start + POSTERIOR_BLOCK].double(), weights.clamp_min(1e-12), means, cov)
        out[start : start + POSTERIOR_BLOCK] = log_resp.exp()
    return out
