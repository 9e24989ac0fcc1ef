"""The final assignments: a tied-covariance Gaussian mixture over the trained embedding."""

from __future__ import annotations

import logging

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch.nn import functional as F

from ..module import SiameseNetwork, fit_tied_mixture, mixture_posterior
from ._init import leiden_partition
from ._settings import Limits

logger = logging.getLogger("scsiameseclu")


def fit_final_mixture(
    net: SiameseNetwork,
    z: torch.Tensor,
    *,
    leiden_start: bool,
    kmeans_starts: int,
    limits: Limits,
    random_state: int,
    device,
) -> dict[str, float]:
    """Fit the network's final mixture on the embedding ``z``; returns each start's mean log-likelihood.

    EM starts from the prototypes' labels; with ``leiden_start`` (tissue domains, whose
    prototypes come from k-means) also from Leiden communities (k parts) of the embedding, which
    follow the data's own population sizes where balanced prototypes split a large domain and
    merge a small one; and from ``kmeans_starts`` k-means partitions of ``z`` (one k-means++ draw
    each), because EM from a single start stays in the optimum nearest to it, and on cell types,
    whose populations differ in size by two orders of magnitude, the prototypes' near-balanced
    partition is rarely the likeliest. The likeliest fit over all starts is kept (labels are never
    read). The mixture is fitted on a fixed random subsample of at most
    ``limits.mixture_max_cells`` cells; Leiden runs on at most ``limits.leiden_start_max_cells``
    of them, and a mixture fitted on its partition gives the start for the rest.
    """
    rng = np.random.default_rng(random_state)
    if z.shape[0] > limits.mixture_max_cells:
        z = z[np.sort(rng.choice(z.shape[0], limits.mixture_max_cells, replace=False))]
    z = z.to(device)
    starts, names = [], ["prototypes"]  # the prototypes' start is added by `fit_mixture`
    if leiden_start:
        sub = np.sort(rng.choice(z.shape[0], min(z.shape[0], limits.leiden_start_max_cells), replace=False))
        communities = leiden_partition(z[sub].cpu().numpy(), net.n_clusters, random_state=random_state)
        if communities is None:
            logger.info(
                "Leiden gave no partition with %d clusters; the mixture starts from the prototypes only.",
                net.n_clusters,
            )
        else:
            resp = _one_hot(communities, net.n_clusters, z)
            starts.append(mixture_posterior(z, *fit_tied_mixture(z[sub], resp)))
            names.append("leiden")
    if kmeans_starts:
        z_np = z.cpu().numpy()
        for i, seed in enumerate(rng.integers(0, 2**31 - 1, size=kmeans_starts)):
            labels = KMeans(net.n_clusters, n_init=1, random_state=int(seed)).fit_predict(z_np)
            starts.append(_one_hot(labels, net.n_clusters, z))
            names.append(f"kmeans{i}")
    log_liks = net.fit_mixture(z, starts)
    return dict(zip(names, log_liks, strict=True))


def _one_hot(labels, n_clusters: int, like: torch.Tensor) -> torch.Tensor:
    """Hard labels as responsibilities on ``like``'s device and dtype (a copy: scanpy's are read-only)."""
    codes = torch.tensor(np.asarray(labels), dtype=torch.long, device=like.device)
    return F.one_hot(codes, n_clusters).to(like.dtype)
