"""The final assignments: a tied-covariance Gaussian mixture over the trained embedding."""

from __future__ import annotations

import logging

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch.nn import functional as F

from ..module import SiameseNetwork, fit_tied_mixture, mixture_posterior
from ._init import leiden_partition, ward_partition
from ._settings import Limits

logger = logging.getLogger("scsiameseclu")


def fit_final_mixture(
    net: SiameseNetwork,
    z: torch.Tensor,
    *,
    starts: tuple[str, ...],
    kmeans_starts: int,
    limits: Limits,
    random_state: int,
    device,
) -> dict[str, float]:
    """Fit the network's final mixture on the embedding ``z``; returns each start's mean log-likelihood.

    EM runs from each of ``starts`` (``TrainConfig.mixture_starts``) and the likeliest fit is kept
    (labels are never read):

    ``"prototypes"``
        the clustering head's labels;
    ``"leiden"``
        Leiden communities (k parts) of the embedding, which follow the data's own population
        sizes where balanced prototypes split a large domain and merge a small one;
    ``"ward"``
        Ward's hierarchical partition of the embedding (k parts). Deterministic, as mclust starts
        EM: the final labels then move with the embedding only, not with a random start;
    ``"kmeans"``
        ``kmeans_starts`` k-means partitions (one k-means++ draw each).

    The mixture is fitted on a fixed random subsample of at most ``limits.mixture_max_cells``
    cells. Leiden and Ward run on at most ``limits.leiden_start_max_cells`` and
    ``limits.ward_start_max_cells`` of them (Ward's memory is quadratic in cells), and a mixture
    fitted on their partition gives the start for the rest.
    """
    rng = np.random.default_rng(random_state)
    if z.shape[0] > limits.mixture_max_cells:
        z = z[np.sort(rng.choice(z.shape[0], limits.mixture_max_cells, replace=False))]
    z = z.to(device)
    k = net.n_clusters
    responsibilities, names = [], []
    for start in starts:
        if start == "prototypes":
            responsibilities.append(_one_hot(net.cluster_scores(z).argmax(1).cpu(), k, z))
            names.append(start)
        elif start in ("leiden", "ward"):
            max_cells = limits.leiden_start_max_cells if start == "leiden" else limits.ward_start_max_cells
            sub = np.sort(rng.choice(z.shape[0], min(z.shape[0], max_cells), replace=False))
            z_sub = z[sub].cpu().numpy()
            labels = (
                leiden_partition(z_sub, k, random_state=random_state) if start == "leiden" else ward_partition(z_sub, k)
            )
            if labels is None:
                logger.info("Leiden gave no partition with %d clusters; the mixture does not start from it.", k)
                continue
            # A mixture fitted on the partition of the subsample (all cells, when they are fewer)
            # gives every cell its start.
            responsibilities.append(mixture_posterior(z, *fit_tied_mixture(z[sub], _one_hot(labels, k, z))))
            names.append(start)
        elif start == "kmeans":
            z_np = z.cpu().numpy()
            for i, seed in enumerate(rng.integers(0, 2**31 - 1, size=kmeans_starts)):
                labels = KMeans(k, n_init=1, random_state=int(seed)).fit_predict(z_np)
                responsibilities.append(_one_hot(labels, k, z))
                names.append(f"kmeans{i}")
        else:
            raise ValueError(f"Unknown mixture start {start!r}.")
    if not responsibilities:  # only a Leiden start, and Leiden found no k communities
        responsibilities.append(_one_hot(net.cluster_scores(z).argmax(1).cpu(), k, z))
        names.append("prototypes")
    log_liks = net.fit_mixture(z, responsibilities)
    return dict(zip(names, log_liks, strict=True))


def _one_hot(labels, n_clusters: int, like: torch.Tensor) -> torch.Tensor:
    """Hard labels as responsibilities on ``like``'s device and dtype (a copy: scanpy's are read-only)."""
    codes = torch.tensor(np.asarray(labels), dtype=torch.long, device=like.device)
    return F.one_hot(codes, n_clusters).to(like.dtype)
