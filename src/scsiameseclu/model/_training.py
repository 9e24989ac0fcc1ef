"""Training loop: pre-train the Siamese encoder, seed prototypes (Leiden), then train jointly."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import torch
from tqdm.auto import tqdm

from ..module import AugmentConfig, SiameseNetwork, TrainConfig, training_step
from ._init import initial_prototypes

logger = logging.getLogger("scsiameseclu")


@dataclass
class TrainingHistory:
    """Per-epoch loss terms, timings and the label-free stopping record."""

    loss: list[float] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)
    label_change: list[float] = field(default_factory=list)
    stopped_epoch: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    # Mean log-likelihood of the final mixture from each start (the higher one is kept).
    mixture_log_likelihood: dict[str, float] = field(default_factory=dict)

    def record(self, loss: float, terms: dict[str, float]) -> None:
        self.loss.append(loss)
        for k, v in terms.items():
            self.terms.setdefault(k, [float("nan")] * (len(self.loss) - 1)).append(v)
        for v in self.terms.values():
            if len(v) < len(self.loss):
                v.append(float("nan"))


@torch.no_grad()
def embed_all(net: SiameseNetwork, x: torch.Tensor, edge_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Embedding and graph gate of the clean (un-augmented) input."""
    net.eval()
    z, gate = net.embed(x, edge_index)
    net.train()
    return z, gate


def labels_settled(history: TrainingHistory, labels: torch.Tensor, new: torch.Tensor, tol: float, step: int) -> bool:
    """Record the fraction of labels changed since the last check; ``True`` (and the stop step) below ``tol``."""
    change = float((new != labels).float().mean())
    history.label_change.append(change)
    if change >= tol:
        return False
    history.stopped_epoch = step
    logger.info("Stopped at step %d: %.4f of labels changed.", step, change)
    return True


def seed_prototypes(
    net: SiameseNetwork, optimizer, z, train: TrainConfig, random_state: int, n_clusters_fn=None
) -> None:
    """After pre-training: choose k (``n_clusters_fn``), seed the prototypes from embedding ``z`` (NumPy), lower the lr."""
    if n_clusters_fn is not None and (k := int(n_clusters_fn(z))) != net.n_clusters:
        # The prototypes had no gradient yet; swap the tensor in the optimiser too.
        group = optimizer.param_groups[0]
        group["params"] = [p for p in group["params"] if p is not net.prototypes]
        net.set_n_clusters(k)
        optimizer.add_param_group({"params": [net.prototypes]})
    centres = initial_prototypes(z, net.n_clusters, random_state, train.init)
    net.set_prototypes(torch.as_tensor(centres, dtype=net.prototypes.dtype, device=net.prototypes.device))
    for group in optimizer.param_groups:
        group["lr"] = train.learning_rate * train.cluster_lr_scale


def pretrain_config(train: TrainConfig) -> TrainConfig:
    """``train`` with the pre-training weight of the contrastive term (None: ``w_contrastive``)."""
    if train.w_contrastive_pretrain is None:
        return train
    return replace(train, w_contrastive=train.w_contrastive_pretrain)


def _optimise(optimizer, out, history: TrainingHistory, bar) -> None:
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    optimizer.step()
    history.record(float(out.loss.detach()), out.terms)
    bar.update()
    bar.set_postfix(loss=f"{history.loss[-1]:.3f}")


def fit(
    net: SiameseNetwork,
    x: torch.Tensor,
    pairs: torch.Tensor,
    *,
    augment: AugmentConfig,
    train: TrainConfig,
    random_state: int,
    n_clusters_fn=None,
    show_progress_bar: bool = True,
    library: torch.Tensor | None = None,
) -> TrainingHistory:
    """Train ``net`` in place on features ``x`` (on its device) and undirected ``pairs``.

    Parameters
    ----------
    n_clusters_fn
        Optional callable ``embedding -> k`` used after pre-training to choose the number of
        prototypes (for ``n_clusters=None``).
    library
        Optional integer library (slice) code per cell, on ``x``'s device, for the library term.
    """
    history = TrainingHistory()
    generator = torch.Generator(device=x.device).manual_seed(random_state)
    optimizer = torch.optim.Adam(net.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay)
    edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
    n_total = train.n_epochs_pretrain + train.n_epochs_cluster
    bar = tqdm(total=n_total, desc="ssc", disable=not show_progress_bar, leave=False)
    net.train()

    t0 = time.perf_counter()
    pretrain = pretrain_config(train)
    for _ in range(train.n_epochs_pretrain):
        _optimise(
            optimizer,
            training_step(net, x, pairs, augment, pretrain, generator, cluster=False, library=library),
            history,
            bar,
        )
    history.seconds["pretrain"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    z, _ = embed_all(net, x, edge_index)
    z_np = z.cpu().numpy()
    seed_prototypes(net, optimizer, z_np, train, random_state, n_clusters_fn)
    labels = net.cluster_scores(z).argmax(1)
    sizes = torch.bincount(labels, minlength=net.n_clusters).float() / x.shape[0]
    history.seconds["init_prototypes"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    uniform = torch.full_like(sizes, 1.0 / net.n_clusters)
    check_every = 10
    for epoch in range(train.n_epochs_cluster):
        target = (1 - train.balance) * sizes + train.balance * uniform
        out = training_step(
            net,
            x,
            pairs,
            augment,
            train,
            generator,
            cluster=True,
            cluster_weights=target,
            edge_index=edge_index,
            library=library,
        )
        _optimise(optimizer, out, history, bar)
        # Running estimate of cluster sizes: the Sinkhorn target follows it, pulled towards uniform.
        sizes = train.size_momentum * sizes + (1 - train.size_momentum) * out.assignments.mean(0).detach()
        if (epoch + 1) % check_every == 0:
            z, _ = embed_all(net, x, edge_index)
            new = net.cluster_scores(z).argmax(1)
            stop = labels_settled(history, labels, new, train.tol, train.n_epochs_pretrain + epoch + 1)
            labels = new
            if stop:
                break
    history.seconds["cluster"] = time.perf_counter() - t0
    bar.close()
    net.eval()
    return history
