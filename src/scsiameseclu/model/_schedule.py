"""The one training schedule: pre-train the Siamese encoder, seed the prototypes, train jointly.

It runs over a batch source (:class:`~scsiameseclu.model._batches.FullGraph` or
:class:`~scsiameseclu.model._batches.SampledNeighbourhoods`) and does not know which one; one
optimisation step per epoch in both.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from .._verbosity import show_progress
from ..module import AugmentConfig, SiameseNetwork, TrainConfig
from ._distributed import ProcessGroup
from ._init import initial_prototypes

logger = logging.getLogger("scsiameseclu")


def step_generator(random_state: int, device: torch.device) -> torch.Generator:
    """The generator of every training step's augmentation and sampling noise (on ``device``)."""
    return torch.Generator(device=device).manual_seed(random_state)


def init_generator(random_state: int) -> torch.Generator:
    """The CPU generator of the network's random starting weights, a stream of its own.

    It draws every weight with ``init_weights='random'``, and only the prototypes' placeholders
    (replaced when they are seeded) with the default identity start.
    """
    return torch.Generator().manual_seed(int(np.random.SeedSequence([random_state, 1]).generate_state(1)[0]))


def sampler_generator(random_state: int) -> torch.Generator:
    """The CPU generator that draws mini-batch seeds and subsamples, independent of the step noise."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence(random_state).generate_state(1)[0]))


def view_generator(random_state: int, device: torch.device) -> torch.Generator:
    """The generator of the augmented views of the stability curve of k (on ``device``), a stream of its own."""
    seed = int(np.random.SeedSequence([random_state, 2]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(seed)


@dataclass
class TrainingRecord:
    """What ran: per-epoch loss terms, timings, the stopping record and the batch settings."""

    mode: str = "full"
    batch_size: int | None = None  # seeds per step (mini-batch); None for the whole graph
    n_hops: int | None = None  # neighbourhood hops per step (mini-batch)
    mean_batch_cells: float = 0.0
    loss: list[float] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)
    label_change: list[float] = field(default_factory=list)
    stopped_epoch: int | None = None  # the step at which the clustering stage stopped early
    # Steps each stage ran ("pretrain", "cluster"), fewer than its length when it stopped early.
    epochs: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # Mean log-likelihood of the final mixture from each start (the higher one is kept).
    mixture_log_likelihood: dict[str, float] = field(default_factory=dict)
    n_threads: int | None = None  # torch CPU threads during training
    world_size: int = 1  # processes of a torch.distributed group that trained together
    deterministic: bool = True  # torch's deterministic kernels on CUDA (CPU runs are deterministic anyway)

    def record(self, loss: float, terms: dict[str, float]) -> None:
        self.loss.append(loss)
        for k, v in terms.items():
            self.terms.setdefault(k, [float("nan")] * (len(self.loss) - 1)).append(v)
        for v in self.terms.values():
            if len(v) < len(self.loss):
                v.append(float("nan"))


def labels_settled(record: TrainingRecord, labels: torch.Tensor, new: torch.Tensor, tol: float, step: int) -> bool:
    """Record the fraction of labels changed since the last check; ``True`` (and the stop step) below ``tol``."""
    change = float((new != labels).float().mean())
    record.label_change.append(change)
    if change >= tol:
        return False
    record.stopped_epoch = step
    logger.info("Stopped at step %d: %.4f of labels changed.", step, change)
    return True


def loss_plateau(losses: list[float], window: int, tol: float) -> bool:
    """Whether a stage's loss has stopped falling: the label-free stop of :func:`fit`.

    ``losses`` are the stage's per-step losses so far. The mean of the last ``window`` steps is
    compared with the window before: the stage has converged when that fall is at most ``tol``
    times its fall since the stage's first window (or when the loss has not fallen at all), so
    the rule reads the stage's own progress and not the loss's scale. Needs three windows;
    ``tol=0`` never stops.
    """
    if tol <= 0 or len(losses) < 3 * window:
        return False
    first, before, last = (
        float(np.mean(losses[a:b])) for a, b in ((0, window), (-2 * window, -window), (-window, None))
    )
    return before - last <= tol * max(first - last, 0.0)


def seed_prototypes(
    net: SiameseNetwork, optimizer, z: np.ndarray, train: TrainConfig, random_state: int, n_clusters_fn=None
) -> None:
    """After pre-training: choose k (``n_clusters_fn``), seed the prototypes from embedding ``z``, lower the lr."""
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


def stage_converged(losses: list[float], tol: float, train: TrainConfig, group: ProcessGroup, device) -> bool:
    """:func:`loss_plateau` with ``train``'s window and the stage's ``tol``, rank 0's decision for every rank."""
    converged = loss_plateau(losses, train.plateau_window, tol)
    return bool(group.from_rank0(converged, device))


def divergence_error(where: str, learning_rate: float) -> ValueError:
    """The error for a training run whose numbers stopped being finite; it names the learning rate."""
    msg = (
        f"Training diverged ({where}). Lower the learning rate: it is {learning_rate:g}; try "
        f"`train_kwargs={{'learning_rate': {learning_rate / 10:g}}}`. `adata` was not changed."
    )
    return ValueError(msg)


def _optimise(optimizer, out, record: TrainingRecord, bar, learning_rate: float, group: ProcessGroup) -> None:
    # The loss is read once per step anyway (history and bar); a non-finite one stops training
    # before the optimiser spreads it into every weight. Under DDP it is the mean over ranks, so
    # that every rank stops together (a rank left waiting in the gradient all-reduce would hang).
    loss = float(group.mean(out.loss.detach()))
    if not np.isfinite(loss):
        raise divergence_error(f"loss {loss} at step {len(record.loss) + 1}", learning_rate)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    optimizer.step()
    record.record(loss, out.terms)
    bar.update()
    bar.set_postfix(loss=f"{loss:.3f}")


def fit(
    net: SiameseNetwork,
    source,
    *,
    augment: AugmentConfig,
    train: TrainConfig,
    random_state: int,
    n_clusters_fn=None,
    show_progress_bar: bool | None = None,
) -> TrainingRecord:
    """Train ``net`` in place on the batches of ``source``.

    1. Pre-training (up to ``train.n_epochs_pretrain`` steps): correlation, reconstruction and
       (with weight ``w_contrastive_pretrain``) contrastive terms on two augmented views; stops
       early when its loss reaches a plateau (:func:`loss_plateau`, checked every
       ``check_every`` steps).
    2. Prototypes: k chosen by ``n_clusters_fn`` (``(embedding, views) -> k``, where
       ``views(n_views, max_cells)`` embeds augmented views for its evidence) when given, prototypes
       seeded from the clean embedding of ``source.embed_init``, learning rate lowered.
    3. Clustering (up to ``train.n_epochs_cluster`` steps): all terms plus the swapped
       assignment term on Sinkhorn targets whose cluster sizes follow a running estimate (pulled
       towards uniform by ``balance``); stops when fewer than ``tol`` of the labels of
       ``source.check_labels`` change between checks, every ``check_every`` steps, or when its
       loss reaches a plateau.

    Inside a ``torch.distributed`` process group the steps are data-parallel
    (:class:`~scsiameseclu.model._distributed.ProcessGroup`): gradients averaged by DDP, k,
    prototypes and the stopping decisions from rank 0, size estimates and loss averaged.
    """
    group = ProcessGroup.current()
    record = TrainingRecord(
        mode=source.mode, batch_size=source.batch_size, n_hops=source.n_hops, world_size=group.world_size
    )
    generator = step_generator(group.seed(random_state), source.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay)
    n_total = train.n_epochs_pretrain + train.n_epochs_cluster
    # Under data-parallel training, rank 0 alone draws the bar (the ranks advance in step).
    show = show_progress(show_progress_bar) and group.rank == 0
    bar = tqdm(total=n_total, desc="ssc", disable=not show, leave=False)
    try:
        net.train()

        t0 = time.perf_counter()
        pretrain = replace(train, w_contrastive=train.w_contrastive_pretrain)
        step = group.step(net, cluster=False)
        for epoch in range(train.n_epochs_pretrain):
            b = source.batch()
            out = step(b.x, b.pairs, augment, pretrain, generator, cluster=False, library=b.library, counts=b.counts)
            _optimise(optimizer, out, record, bar, train.learning_rate, group)
            check = (epoch + 1) % train.check_every == 0
            if check and stage_converged(record.loss, train.plateau_tol_pretrain, train, group, source.device):
                logger.info("Pre-training stopped at step %d: its loss reached a plateau.", epoch + 1)
                break
        record.epochs["pretrain"] = n_pretrained = len(record.loss)
        record.seconds["pretrain"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        z = source.embed_init(net)
        if not torch.isfinite(z).all():  # the last step's update can make the weights non-finite
            raise divergence_error("non-finite embedding after pre-training", train.learning_rate)

        def views(n_views: int, max_cells: int) -> list[np.ndarray]:  # for the stability curve of k
            generator = view_generator(random_state, source.device)
            return source.view_embeddings(net, augment, generator, n_views, max_cells)

        def pick_k(z):
            k = n_clusters_fn(z, views)
            return group.from_rank0(k, source.device)  # one k for all ranks: rank 0's

        choose_k = pick_k if n_clusters_fn is not None else None
        seed_prototypes(net, optimizer, z.cpu().numpy(), train, random_state, choose_k)
        step = group.step(net, cluster=True)  # again: the prototypes changed (rank 0's are broadcast)
        with torch.no_grad():
            init_labels = net.cluster_scores(z.to(source.device)).argmax(1)
        sizes = group.mean(torch.bincount(init_labels, minlength=net.n_clusters).float() / init_labels.numel())
        labels = source.check_labels(net, init_labels)
        record.seconds["init_prototypes"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        uniform = torch.full_like(sizes, 1.0 / net.n_clusters)
        for epoch in range(train.n_epochs_cluster):
            target = (1 - train.balance) * sizes + train.balance * uniform
            b = source.batch()
            out = step(
                b.x,
                b.pairs,
                augment,
                train,
                generator,
                cluster=True,
                cluster_weights=target,
                edge_index=b.edge_index,
                library=b.library,
                counts=b.counts,
            )
            _optimise(optimizer, out, record, bar, train.learning_rate, group)
            # Running estimate of cluster sizes from the seeds (a uniform sample of cells).
            step_sizes = group.mean(out.assignments[: b.n_seeds].mean(0).detach())
            sizes = train.size_momentum * sizes + (1 - train.size_momentum) * step_sizes
            if (epoch + 1) % train.check_every == 0:
                new = source.check_labels(net)
                stop = labels_settled(record, labels, new, train.tol, n_pretrained + epoch + 1)
                stop = bool(group.from_rank0(stop, source.device))
                labels = new
                losses = record.loss[n_pretrained:]
                if not stop and stage_converged(losses, train.plateau_tol_cluster, train, group, source.device):
                    record.stopped_epoch = n_pretrained + epoch + 1
                    logger.info("Stopped at step %d: the clustering loss reached a plateau.", record.stopped_epoch)
                    stop = True
                if stop:
                    break
        record.epochs["cluster"] = len(record.loss) - n_pretrained
        record.seconds["cluster"] = time.perf_counter() - t0
        record.mean_batch_cells = float(getattr(source, "mean_batch_cells", source.x.shape[0]))
    finally:  # also on an error or interrupt, so the bar does not stay on screen
        bar.close()
    net.eval()
    return record
