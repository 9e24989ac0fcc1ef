"""Where training steps and inference passes get their cells: the whole graph, or neighbourhoods.

:class:`FullGraph` gives every step the whole graph. :class:`SampledNeighbourhoods` is the
mini-batch source for large data, with memory linear in cells and edges. Chunked inference
(:func:`embed_chunked`) embeds each chunk of seed cells on the subgraph of their receptive
field (``n_gat_layers + n_hops`` hops), so the result is exactly the whole graph's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..module import AugmentConfig, SiameseNetwork, draw_view
from ._settings import Limits


def auto_batch_size(
    graph: CellGraph, n_hops: int, generator: torch.Generator, *, target_cells: int, min_seeds: int, n_probe: int = 256
) -> int:
    """Seeds per step such that seeds plus neighbourhoods make about ``target_cells`` cells.

    The neighbourhood size per seed is measured on ``n_probe`` random seeds (it grows with the
    graph's degree: ~20 cells within 2 hops on a 6-neighbour spatial graph, hundreds on a kNN graph).
    """
    probe = torch.randperm(graph.n_nodes, generator=generator)[: min(n_probe, graph.n_nodes)]
    per_seed = graph.neighbourhood(probe, n_hops)[0].numel() / probe.numel()
    return int(min(max(round(target_cells / per_seed), min_seeds), target_cells, graph.n_nodes))


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

    def __init__(self, pairs: torch.Tensor | np.ndarray, n_nodes: int):
        from scipy import sparse

        pairs = np.asarray(pairs.cpu() if isinstance(pairs, torch.Tensor) else pairs)
        # scipy's COO -> CSR conversion is a counting sort into int32 indices (while they fit):
        # no int64 copies or argsort of every directed edge, which dominated at millions of cells.
        upper = sparse.coo_matrix((np.ones(pairs.shape[1], dtype=np.int8), (pairs[0], pairs[1])), shape=(n_nodes,) * 2)
        adj = (upper.tocsr() + upper.T.tocsr()).tocsr()
        del upper
        adj.sort_indices()  # neighbours in ascending order, as the edge lists of the graph encoder
        index_dtype = torch.int32 if adj.nnz < np.iinfo(np.int32).max else torch.long
        self.col = torch.from_numpy(adj.indices).to(index_dtype)
        self.rowptr = torch.from_numpy(adj.indptr).to(index_dtype)
        self.n_nodes = n_nodes
        # Global -> local index of the current subgraph (-1 outside); reset after each use so that
        # each call costs O(subgraph), not O(N).
        self._local = torch.full((n_nodes,), -1, dtype=torch.long)

    @property
    def n_edges(self) -> int:
        """Directed edges (each undirected edge twice)."""
        return int(self.col.numel())

    def degree(self) -> torch.Tensor:
        """Neighbours per cell."""
        return (self.rowptr[1:] - self.rowptr[:-1]).long()

    def to_scipy(self):
        """The adjacency as a binary scipy CSR matrix sharing this graph's index arrays."""
        from scipy import sparse

        data = np.ones(self.n_edges, dtype=np.int8)
        return sparse.csr_matrix((data, self.col.numpy(), self.rowptr.numpy()), shape=(self.n_nodes,) * 2)

    def adjacency(self) -> torch.Tensor:
        """The adjacency as a torch sparse CSR tensor (float32 ones), for sparse-dense products."""
        import warnings

        from .._device import GLOBAL_STATE_LOCK

        values = torch.ones(self.n_edges, dtype=torch.float32)
        # torch's notice that its CSR support is in beta is not for users; warning filters are
        # process-wide, so concurrent calls change them one at a time.
        with GLOBAL_STATE_LOCK, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                self.rowptr, self.col, values, size=(self.n_nodes,) * 2, check_invariants=False
            )

    def _neighbours(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every edge out of ``nodes``: source positions in ``nodes`` and global targets."""
        start, stop = self.rowptr[nodes].long(), self.rowptr[nodes + 1].long()
        counts = stop - start
        owner = torch.repeat_interleave(torch.arange(nodes.numel()), counts)
        offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        return owner, self.col[start[owner] + offsets].long()

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


def locality_order(graph: CellGraph) -> np.ndarray:
    """Cells in reverse Cuthill–McKee order, so that consecutive chunks are compact in the graph."""
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    return np.asarray(reverse_cuthill_mckee(graph.to_scipy(), symmetric_mode=True), dtype=np.int64)


@torch.no_grad()
def embed_chunked(
    net: SiameseNetwork,
    x: torch.Tensor,
    graph: CellGraph,
    nodes: torch.Tensor | None = None,
    *,
    device: torch.device,
    chunk_size: int,
    order: torch.Tensor | np.ndarray | None = None,
    keep_gate: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact clean-view embedding, gate and cluster scores of ``nodes`` (default: all), chunk by chunk.

    Each chunk of seed cells is embedded on its receptive-field subgraph, so peak memory is that
    of one chunk's neighbourhood. ``x`` stays where it is (CPU); results are on the CPU, in the
    order of ``nodes``. ``order`` (a permutation of ``nodes``' positions) only sets how cells are
    grouped into chunks (compact groups have small neighbourhoods), not the result.
    ``keep_gate=False`` returns only the mean of the gate (a 0-d tensor) instead of a value per
    cell and dimension, which would be as large as the embedding.
    """
    was_training = net.training
    net.eval()
    n_hops = receptive_field(net)
    if nodes is None:
        nodes = torch.arange(x.shape[0])
    positions = torch.arange(nodes.numel()) if order is None else torch.as_tensor(order, dtype=torch.long)
    z = torch.empty(nodes.numel(), net.prototypes.shape[1])
    gate = torch.empty_like(z) if keep_gate else torch.zeros((), dtype=torch.float64)
    scores = torch.empty(nodes.numel(), net.n_clusters)
    for start in range(0, nodes.numel(), chunk_size):
        pos = positions[start : start + chunk_size]
        sub, _, edge_index = graph.neighbourhood(nodes[pos], n_hops)
        z_b, g_b = net.embed(x[sub].to(device, non_blocking=True), edge_index.to(device, non_blocking=True))
        z_b, g_b = z_b[: pos.numel()], g_b[: pos.numel()]
        z[pos] = z_b.cpu()
        if keep_gate:
            gate[pos] = g_b.cpu()
        else:
            gate += g_b.sum(dtype=torch.float64).cpu()
        scores[pos] = net.cluster_scores(z_b).cpu()
    net.train(was_training)
    if not keep_gate:
        gate /= z.numel()
    return z, gate, scores


def _subsample(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    if n <= size:
        return torch.arange(n, device=generator.device)
    return torch.sort(torch.randperm(n, generator=generator, device=generator.device)[:size]).values


def _embed_views(net, x, pairs, rows, augment, generator, n_views) -> list[np.ndarray]:
    """Rows ``rows`` of the embeddings of ``n_views`` augmented views of ``(x, pairs)`` (eval mode)."""
    was_training = net.training
    net.eval()
    try:
        views = []
        for _ in range(n_views):
            x_view, edge_index = draw_view(x, pairs, augment, generator, graph=net.fusion.graph_weight > 0)
            views.append(net.embed(x_view, edge_index)[0][rows].float().cpu().numpy())
        return views
    finally:
        net.train(was_training)


class _SeedStream:
    """Seed cells without replacement within a pass over the data, reshuffled every pass.

    Under data-parallel training every rank draws the same permutation (one shared generator) and
    takes every ``world_size``-th cell of each step's ``batch_size`` seeds: the ranks split the
    batch one process would train on, so a step costs each of them a share of it.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, rank: int = 0, world_size: int = 1):
        self.n, self.batch_size, self.generator = n, min(max(batch_size, world_size), n), generator
        self.rank, self.world_size = rank, world_size
        self.perm, self.pos = torch.randperm(n, generator=generator), 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.generator), 0
        seeds = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return seeds[self.rank :: self.world_size]


@dataclass
class Batch:
    """The cells of one training step: features, undirected ``pairs`` and symmetric ``edge_index``.

    The first ``n_seeds`` cells are a uniform sample of all cells (all of them for the whole graph),
    so they estimate the cluster sizes; ``library`` holds their library codes or is ``None``.
    """

    x: torch.Tensor
    pairs: torch.Tensor
    edge_index: torch.Tensor
    library: torch.Tensor | None
    n_seeds: int
    counts: torch.Tensor | None = None  # raw counts of the count genes (dense), or None


class FullGraph:
    """Every step takes the whole graph, on the training device."""

    mode = "full"

    def __init__(
        self, x: np.ndarray, pairs: np.ndarray, library: np.ndarray | None, *, device: torch.device, counts=None
    ):
        self.device = device
        self.counts = None if counts is None else torch.as_tensor(counts.toarray(), device=device)
        self.x = torch.as_tensor(x, device=device)
        self.pairs = torch.as_tensor(pairs, device=device)
        self.edge_index = torch.cat([self.pairs, self.pairs.flip(0)], dim=1)
        self.library = None if library is None else torch.as_tensor(library, device=device)
        self.batch_size = None
        self.n_hops = None

    def batch(self) -> Batch:
        return Batch(self.x, self.pairs, self.edge_index, self.library, self.x.shape[0], self.counts)

    @torch.no_grad()
    def _embed(self, net: SiameseNetwork) -> torch.Tensor:
        net.eval()
        z, _ = net.embed(self.x, self.edge_index)
        net.train()
        return z

    def embed_init(self, net: SiameseNetwork) -> torch.Tensor:
        """Clean embedding of the cells that seed the prototypes: all of them."""
        return self._embed(net)

    @torch.no_grad()
    def view_embeddings(
        self, net: SiameseNetwork, augment: AugmentConfig, generator: torch.Generator, n_views: int, max_cells: int
    ) -> list[np.ndarray]:
        """Embeddings of ``n_views`` augmented views of the whole graph, at the same ``max_cells`` random cells."""
        rows = _subsample(self.x.shape[0], max_cells, generator)
        return _embed_views(net, self.x, self.pairs, rows, augment, generator, n_views)

    def check_labels(self, net: SiameseNetwork, init_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Prototype labels of the cells the stopping rule compares: all of them."""
        if init_labels is not None:  # the seeding cells are these cells: nothing to recompute
            return init_labels
        with torch.no_grad():
            return net.cluster_scores(self._embed(net)).argmax(1)


class SampledNeighbourhoods:
    """Mini-batches for large data: each step takes random seed cells with their neighbourhoods.

    Every step works on the subgraph induced by its seeds and their neighbourhood of
    ``n_hops`` hops (the receptive field of the graph encoder). Losses are taken over every cell
    of the subgraph (cells at its rim see part of their neighbourhood, much like a stronger edge
    drop); the seeds, a uniform sample of cells, estimate the cluster sizes. Prototypes are
    seeded from the exact embedding of a fixed subsample, and the stopping rule compares the
    labels of another. The adjacency stays on the CPU as CSR; only a batch moves to the device.
    With ``world_size`` ranks (data-parallel training), ``batch_size`` is the seeds of a step
    across all ranks and each takes its ``rank``'s share; ``generator`` must then be in the same
    state on every rank, so that the seed permutations and the fixed subsamples agree.
    """

    mode = "minibatch"

    def __init__(
        self,
        x: np.ndarray,
        graph: CellGraph,
        library: np.ndarray | None,
        *,
        device: torch.device,
        n_hops: int,
        batch_size: int | None,
        limits: Limits,
        generator: torch.Generator,
        rank: int = 0,
        world_size: int = 1,
        counts=None,
    ):
        self.device, self.n_hops, self.limits, self.generator = device, n_hops, limits, generator
        self.counts = counts  # CSR, rows densified per batch
        self.x = torch.as_tensor(x)
        self.library = None if library is None else torch.as_tensor(library)
        self.graph = graph
        self.batch_size = batch_size or auto_batch_size(
            self.graph,
            n_hops,
            generator,
            target_cells=limits.target_batch_cells,
            min_seeds=limits.min_batch_seeds,
        )
        self.stream = _SeedStream(self.x.shape[0], self.batch_size, generator, rank, world_size)
        self.check_cells: torch.Tensor | None = None
        self.n_cells_drawn = 0
        self.n_batches = 0

    def batch(self) -> Batch:
        seeds = self.stream.next()
        nodes, pairs, edge_index = self.graph.neighbourhood(seeds, self.n_hops)
        self.n_cells_drawn += nodes.numel()
        self.n_batches += 1
        library = None if self.library is None else self.library[nodes].to(self.device)
        x = self.x[nodes].to(self.device, non_blocking=True)
        counts = None
        if self.counts is not None:
            counts = torch.as_tensor(self.counts[nodes.numpy()].toarray()).to(self.device, non_blocking=True)
        return Batch(x, pairs.to(self.device), edge_index.to(self.device), library, seeds.numel(), counts)

    @property
    def mean_batch_cells(self) -> float:
        return self.n_cells_drawn / max(self.n_batches, 1)

    def _scores(self, net: SiameseNetwork, cells: torch.Tensor, *, embedding: bool):
        # `cells` is a random subsample, scattered over the graph: a chunk of them brings a
        # receptive field many times its size (compact chunks, as in inference, do not). So a
        # chunk holds as many seeds as about `inference_chunk` cells' worth of training batches,
        # which bounds its memory like that of a compact chunk rather than by the whole graph.
        seeds = self.batch_size * max(1, self.limits.inference_chunk // self.limits.target_batch_cells)
        z, _, scores = embed_chunked(net, self.x, self.graph, cells, device=self.device, chunk_size=seeds)
        return z if embedding else scores

    def embed_init(self, net: SiameseNetwork) -> torch.Tensor:
        """Exact clean embedding of a fixed random subsample (at most ``init_max_cells`` cells)."""
        cells = _subsample(self.x.shape[0], self.limits.init_max_cells, self.generator)
        return self._scores(net, cells, embedding=True)

    @torch.no_grad()
    def view_embeddings(
        self, net: SiameseNetwork, augment: AugmentConfig, generator: torch.Generator, n_views: int, max_cells: int
    ) -> list[np.ndarray]:
        """Embeddings of ``n_views`` augmented views at ``max_cells`` random cells.

        Each view is drawn on the subgraph of those cells and their neighbourhood of ``n_hops``
        hops, so the cells see their whole receptive field, as in the whole graph.
        """
        seeds = _subsample(self.x.shape[0], max_cells, generator).cpu()
        nodes, pairs, _ = self.graph.neighbourhood(seeds, self.n_hops)
        x = self.x[nodes].to(self.device)
        rows = torch.arange(seeds.numel(), device=self.device)  # the seeds come first in `nodes`
        return _embed_views(net, x, pairs.to(self.device), rows, augment, generator, n_views)

    def check_labels(self, net: SiameseNetwork, init_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Prototype labels of a fixed random subsample (at most ``check_max_cells`` cells)."""
        if self.check_cells is None:
            self.check_cells = _subsample(self.x.shape[0], self.limits.check_max_cells, self.generator)
        return self._scores(net, self.check_cells, embedding=False).argmax(1)


@torch.no_grad()
def embed_cells(
    net: SiameseNetwork, x: np.ndarray, edges: np.ndarray | CellGraph, *, device: torch.device, chunk_size: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean embedding and graph gate of every cell (CPU tensors; chunked: the gate's mean only).

    ``edges`` as pairs (``2 × E``) with ``chunk_size=None``: one pass over the whole graph on
    ``device``. As a :class:`CellGraph` with a ``chunk_size``: chunks of cells (in reverse
    Cuthill–McKee order) on their receptive-field subgraphs, exact, with O(chunk) memory on the device.
    """
    net.eval()
    if isinstance(edges, CellGraph):
        if chunk_size is None:
            raise ValueError("Chunked inference on a `CellGraph` needs a `chunk_size`.")
        x_t = torch.from_numpy(np.ascontiguousarray(x))
        order = locality_order(edges)
        z, gate_mean, _ = embed_chunked(
            net, x_t, edges, device=device, chunk_size=chunk_size, order=order, keep_gate=False
        )
        return z, gate_mean
    x_t = torch.as_tensor(x, device=device)
    pairs_t = torch.as_tensor(edges, device=device)
    z, gate = net.embed(x_t, torch.cat([pairs_t, pairs_t.flip(0)], dim=1))
    return z.cpu(), gate.cpu()
