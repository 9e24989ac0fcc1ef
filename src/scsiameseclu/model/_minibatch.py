"""Mini-batch training and chunked inference for large data: memory linear in cells and edges.

Every optimisation step (and every inference chunk) works on the subgraph induced by a set of
seed cells and their neighbourhood of ``n_gat_layers + n_hops`` hops (the receptive field of
the graph encoder), so the seeds' clean embeddings are exactly what the whole graph gives them.
Inference keeps only the seeds' rows. Training takes its losses over every cell of the subgraph
(cells at its rim see part of their neighbourhood, much like a stronger edge drop) and its
running estimate of cluster sizes from the seeds alone, a uniform sample of cells. The adjacency
stays on the CPU as CSR; only a batch's features and edges move to the device.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..module import AugmentConfig, SiameseNetwork, TrainConfig, training_step
from ._training import TrainingHistory, _optimise, labels_settled, pretrain_config, seed_prototypes

#: ``batch_size=None`` trains on the whole graph at once up to this many cells, in mini-batches above.
FULL_BATCH_MAX_CELLS = 50_000
#: Cells (seeds with their neighbourhoods) per step aimed at when the number of seeds is chosen automatically.
TARGET_BATCH_CELLS = 8_192
#: Cells embedded to seed the prototypes (and choose k): a fixed random subsample.
INIT_MAX_CELLS = 30_000
#: Cells whose labels are compared for label-free early stopping: a fixed random subsample.
CHECK_MAX_CELLS = 10_000
#: Seed cells per inference chunk.
INFERENCE_CHUNK = 16_384
#: Clustering steps between early-stopping checks (as in the full-batch schedule).
CHECK_EVERY = 10


def use_minibatch(batch_size: int | None, n_obs: int) -> bool:
    """Mini-batch training when a batch size is given or the data has more than ``FULL_BATCH_MAX_CELLS`` cells."""
    return batch_size is not None or n_obs > FULL_BATCH_MAX_CELLS


def auto_batch_size(graph: CellGraph, n_hops: int, generator: torch.Generator, n_probe: int = 256) -> int:
    """Seeds per step such that seeds plus neighbourhoods make about ``TARGET_BATCH_CELLS`` cells.

    The neighbourhood size per seed is measured on ``n_probe`` random seeds (it grows with the
    graph's degree: ~20 cells within 2 hops on a 6-neighbour spatial graph, hundreds on a kNN graph).
    """
    probe = torch.randperm(graph.n_nodes, generator=generator)[: min(n_probe, graph.n_nodes)]
    per_seed = graph.neighbourhood(probe, n_hops)[0].numel() / probe.numel()
    return int(min(max(round(TARGET_BATCH_CELLS / per_seed), 32), TARGET_BATCH_CELLS, graph.n_nodes))


def receptive_field(net: SiameseNetwork) -> int:
    """Hops of graph context that determine a cell's embedding (GAT layers plus mean-hop features)."""
    if net.fusion.graph_weight <= 0:
        return 0
    return len(net.graph.convs) + net.graph.n_hops


class CellGraph:
    """CSR adjacency of an undirected cell graph (CPU) that cuts out neighbourhood subgraphs.

    Parameters
    ----------
    pairs
        ``2 × E`` undirected edges, each once (``i < j``), as from :func:`~scsiameseclu._graph.graph_to_pairs`.
    n_nodes
        Number of cells.
    """

    def __init__(self, pairs: torch.Tensor, n_nodes: int):
        pairs = torch.as_tensor(pairs, device="cpu")
        src = torch.cat([pairs[0], pairs[1]])
        dst = torch.cat([pairs[1], pairs[0]])
        order = torch.argsort(src * n_nodes + dst)
        self.col = dst[order].contiguous()
        counts = torch.bincount(src, minlength=n_nodes)
        self.rowptr = torch.zeros(n_nodes + 1, dtype=torch.long)
        torch.cumsum(counts, 0, out=self.rowptr[1:])
        self.n_nodes = n_nodes
        # Global -> local index of the current subgraph (-1 outside); reset after each use so that
        # each call costs O(subgraph), not O(N).
        self._local = torch.full((n_nodes,), -1, dtype=torch.long)

    def _neighbours(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every edge out of ``nodes``: source positions in ``nodes`` and global targets."""
        start, stop = self.rowptr[nodes], self.rowptr[nodes + 1]
        counts = stop - start
        owner = torch.repeat_interleave(torch.arange(nodes.numel()), counts)
        offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        return owner, self.col[start[owner] + offsets]

    def neighbourhood(self, seeds: torch.Tensor, n_hops: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cells within ``n_hops`` of ``seeds`` and the subgraph they induce.

        Returns
        -------
        nodes
            Global indices, the (distinct) ``seeds`` first, in their order, then each hop's new cells.
        pairs
            Local undirected edges, each once (``i < j``).
        edge_index
            Local symmetric ``edge_index`` (both directions).
        """
        nodes = seeds.to("cpu", torch.long)
        local = self._local
        local[nodes] = torch.arange(nodes.numel())
        frontier = nodes
        for _ in range(n_hops):
            _, nbrs = self._neighbours(frontier)
            new = torch.unique(nbrs[local[nbrs] < 0])
            if new.numel() == 0:
                break
            local[new] = torch.arange(nodes.numel(), nodes.numel() + new.numel())
            nodes = torch.cat([nodes, new])
            frontier = new
        owner, nbrs = self._neighbours(nodes)
        dst = local[nbrs]
        keep = dst >= 0
        edge_index = torch.stack([owner[keep], dst[keep]])
        local[nodes] = -1
        pairs = edge_index[:, edge_index[0] < edge_index[1]]
        return nodes, pairs, torch.cat([pairs, pairs.flip(0)], dim=1)


def locality_order(pairs: np.ndarray, n_nodes: int) -> np.ndarray:
    """Cells in reverse Cuthill–McKee order, so that consecutive chunks are compact in the graph."""
    from scipy import sparse
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    adj = sparse.csr_matrix((np.ones(pairs.shape[1], dtype=np.int8), (pairs[0], pairs[1])), shape=(n_nodes, n_nodes))
    return np.asarray(reverse_cuthill_mckee((adj + adj.T).tocsr(), symmetric_mode=True), dtype=np.int64)


@torch.no_grad()
def embed_chunked(
    net: SiameseNetwork,
    x: torch.Tensor,
    graph: CellGraph,
    nodes: torch.Tensor | None = None,
    *,
    device: torch.device,
    chunk_size: int | None = None,
    order: torch.Tensor | np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact clean-view embedding, gate and cluster scores of ``nodes`` (default: all), chunk by chunk.

    Each chunk of seed cells is embedded on its receptive-field subgraph, so peak memory is that
    of one chunk's neighbourhood. ``x`` stays where it is (CPU); results are on the CPU, in the
    order of ``nodes``; ``chunk_size`` defaults to ``INFERENCE_CHUNK``. ``order`` (a permutation of ``nodes``' positions) only sets how cells are
    grouped into chunks (compact groups have small neighbourhoods), not the result.
    """
    chunk_size = chunk_size or INFERENCE_CHUNK
    was_training = net.training
    net.eval()
    n_hops = receptive_field(net)
    if nodes is None:
        nodes = torch.arange(x.shape[0])
    positions = torch.arange(nodes.numel()) if order is None else torch.as_tensor(order, dtype=torch.long)
    z = torch.empty(nodes.numel(), net.prototypes.shape[1])
    gate = torch.empty_like(z)
    scores = torch.empty(nodes.numel(), net.n_clusters)
    for start in range(0, nodes.numel(), chunk_size):
        pos = positions[start : start + chunk_size]
        sub, _, edge_index = graph.neighbourhood(nodes[pos], n_hops)
        z_b, g_b = net.embed(x[sub].to(device, non_blocking=True), edge_index.to(device, non_blocking=True))
        z_b, g_b = z_b[: pos.numel()], g_b[: pos.numel()]
        z[pos], gate[pos] = z_b.cpu(), g_b.cpu()
        scores[pos] = net.cluster_scores(z_b).cpu()
    net.train(was_training)
    return z, gate, scores


def _subsample(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    if n <= size:
        return torch.arange(n)
    return torch.sort(torch.randperm(n, generator=generator)[:size]).values


class _SeedStream:
    """Seed cells without replacement within a pass over the data, reshuffled every pass."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, min(batch_size, n), generator
        self.perm, self.pos = torch.randperm(n, generator=generator), 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.generator), 0
        seeds = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return seeds


@dataclass
class MiniBatchHistory(TrainingHistory):
    """:class:`TrainingHistory` plus the batch settings: seeds per step, hops, mean cells per step."""

    batch_size: int = 0
    n_hops: int = 0
    mean_batch_cells: float = 0.0


def fit_minibatch(
    net: SiameseNetwork,
    x: torch.Tensor,
    pairs: torch.Tensor,
    *,
    augment: AugmentConfig,
    train: TrainConfig,
    random_state: int,
    batch_size: int | None,
    device: torch.device,
    n_clusters_fn=None,
    show_progress_bar: bool = True,
    library: torch.Tensor | None = None,
) -> MiniBatchHistory:
    """Train ``net`` (on ``device``) in place with one neighbourhood subgraph per step.

    The schedule is that of :func:`~scsiameseclu.model._training.fit` with one step per epoch:
    pre-training, prototypes seeded from the embedding of a fixed subsample of at most
    ``INIT_MAX_CELLS`` cells, then joint clustering whose Sinkhorn targets follow a running
    estimate of cluster sizes, stopped when fewer than ``train.tol`` of the labels of a fixed
    subsample (at most ``CHECK_MAX_CELLS`` cells) change between checks.

    Parameters
    ----------
    x, pairs
        Features and undirected edges (``i < j``) of all cells, on the CPU; batches are moved to
        ``device``.
    batch_size
        Seed cells per step; each step trains on the subgraph of the seeds and their
        receptive-field neighbourhood. ``None``: chosen by :func:`auto_batch_size`.
    library
        Optional integer library code per cell (CPU), gathered per batch like ``x``.
    """
    history = MiniBatchHistory(n_hops=receptive_field(net))
    seeds = np.random.SeedSequence(random_state).generate_state(2)
    cpu_gen = torch.Generator().manual_seed(int(seeds[0]))
    generator = torch.Generator(device=device).manual_seed(int(seeds[1]))
    optimizer = torch.optim.Adam(net.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay)
    n = x.shape[0]
    t0 = time.perf_counter()
    graph = CellGraph(pairs, n)
    history.batch_size = batch_size or auto_batch_size(graph, history.n_hops, cpu_gen)
    stream = _SeedStream(n, history.batch_size, cpu_gen)
    n_hops = history.n_hops
    history.seconds["graph_index"] = time.perf_counter() - t0

    def batch():
        b = stream.next()
        nodes, p, e = graph.neighbourhood(b, n_hops)
        lib = None if library is None else library[nodes].to(device)  # the library term's codes
        return b.numel(), x[nodes].to(device, non_blocking=True), p.to(device), e.to(device), lib

    n_total = train.n_epochs_pretrain + train.n_epochs_cluster
    bar = tqdm(total=n_total, desc="ssc (mini-batch)", disable=not show_progress_bar, leave=False)
    net.train()
    n_nodes = 0
    t0 = time.perf_counter()
    pretrain = pretrain_config(train)
    for _ in range(train.n_epochs_pretrain):
        _, xb, pb, _, lb = batch()
        n_nodes += xb.shape[0]
        _optimise(
            optimizer, training_step(net, xb, pb, augment, pretrain, generator, cluster=False, library=lb), history, bar
        )
    history.seconds["pretrain"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    init_cells = _subsample(n, INIT_MAX_CELLS, cpu_gen)
    z, _, _ = embed_chunked(net, x, graph, init_cells, device=device)
    z_np = z.numpy()
    seed_prototypes(net, optimizer, z_np, train, random_state, n_clusters_fn)
    check_cells = _subsample(n, CHECK_MAX_CELLS, cpu_gen)
    labels = embed_chunked(net, x, graph, check_cells, device=device)[2].argmax(1)
    init_labels = net.cluster_scores(z.to(device)).argmax(1)
    sizes = torch.bincount(init_labels, minlength=net.n_clusters).float() / init_labels.numel()
    history.seconds["init_prototypes"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    uniform = torch.full_like(sizes, 1.0 / net.n_clusters)
    for epoch in range(train.n_epochs_cluster):
        target = (1 - train.balance) * sizes + train.balance * uniform
        n_seeds, xb, pb, eb, lb = batch()
        n_nodes += xb.shape[0]
        out = training_step(
            net, xb, pb, augment, train, generator, cluster=True, cluster_weights=target, edge_index=eb, library=lb
        )
        _optimise(optimizer, out, history, bar)
        # Seeds are a uniform sample of cells (their neighbours are not): they estimate the sizes.
        batch_sizes = out.assignments[:n_seeds].mean(0).detach()
        sizes = train.size_momentum * sizes + (1 - train.size_momentum) * batch_sizes
        if (epoch + 1) % CHECK_EVERY == 0:
            new = embed_chunked(net, x, graph, check_cells, device=device)[2].argmax(1)
            stop = labels_settled(history, labels, new, train.tol, train.n_epochs_pretrain + epoch + 1)
            labels = new
            if stop:
                break
    history.seconds["cluster"] = time.perf_counter() - t0
    history.mean_batch_cells = n_nodes / max(len(history.loss), 1)
    bar.close()
    net.eval()
    return history
