"""AnnData-facing model: its settings, its input spec, the network and what training fitted."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np
from anndata import AnnData

from .. import _read
from .. import _validation as val
from .._checks import check_saved_number
from .._device import deterministic_algorithms, resolve_device, resolve_seed, torch_threads
from .._docs import doc_params
from .._graph import graph_to_pairs
from ._input import InputSpec, TrainingData
from ._settings import DOMAINS, MAX_MISSING_GENES, ModelSettings

logger = logging.getLogger("scsiameseclu")


def order_by_size(proba: np.ndarray) -> list[int]:
    """Columns of ``proba`` by the size of their hard clusters, largest first; empty ones dropped."""
    counts = np.bincount(proba.argmax(1), minlength=proba.shape[1])
    return [int(c) for c in np.argsort(-counts, kind="stable") if counts[c] > 0]


@dataclass(frozen=True)
class FitState:
    """What training fixed besides the weights: seed, k, cluster numbering and how it ran."""

    random_state: int
    n_clusters_fitted: int
    n_clusters_by_resolution: dict[float, int]
    cluster_order: tuple[int, ...]  # network clusters by training size, empty ones dropped
    mode: str  # "full" or "minibatch"
    batch_size: int | None
    trained_on: str  # device
    n_obs: int
    # Agreement of augmented views' partitions per candidate k (``n_clusters=None`` only).
    n_clusters_stability: dict[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "random_state": self.random_state,
            "n_clusters_fitted": self.n_clusters_fitted,
            "n_clusters_by_resolution": {str(r): k for r, k in self.n_clusters_by_resolution.items()},
            "cluster_order": list(self.cluster_order),
            "mode": self.mode,
            "batch_size": self.batch_size,
            "trained_on": self.trained_on,
            "n_obs": self.n_obs,
            "n_clusters_stability": {str(k): s for k, s in self.n_clusters_stability.items()},
        }

    @classmethod
    def from_dict(cls, values: dict) -> FitState:
        keys = ("random_state", "n_clusters_fitted", "n_clusters_by_resolution", "cluster_order", "mode")
        keys += ("batch_size", "trained_on", "n_obs")
        optional = ("n_clusters_stability",)  # absent from saves made before it was recorded
        if not isinstance(values, dict) or not set(keys) <= set(values) <= set(keys + optional):
            msg = f"`fit` must have the keys {sorted(keys)} (and optionally {list(optional)})."
            raise ValueError(msg)
        k = val.check_int("fit['n_clusters_fitted']", values["n_clusters_fitted"], 1)
        order = values["cluster_order"]
        if not isinstance(order, list) or not order or len(set(order)) < len(order):
            raise ValueError("`fit['cluster_order']` must list distinct cluster indices.")
        order = tuple(val.check_int("fit['cluster_order']", c, 0) for c in order)
        if max(order) >= k:
            raise ValueError(f"`fit['cluster_order']` names a cluster >= n_clusters_fitted={k}.")
        if values["mode"] not in ("full", "minibatch") or not isinstance(values["trained_on"], str):
            raise ValueError("`fit['mode']` must be 'full' or 'minibatch' and `fit['trained_on']` a string.")
        by_resolution = values["n_clusters_by_resolution"]
        if not isinstance(by_resolution, dict):
            raise ValueError("`fit['n_clusters_by_resolution']` must be a JSON object.")
        try:
            by_resolution = {
                float(r): val.check_int("n_clusters_by_resolution", c, 1) for r, c in by_resolution.items()
            }
        except (TypeError, ValueError) as err:
            raise ValueError(f"`fit['n_clusters_by_resolution']` is invalid: {err}") from err
        batch_size = values["batch_size"]
        return cls(
            random_state=val.check_seed("fit['random_state']", values["random_state"]),
            n_clusters_fitted=k,
            n_clusters_by_resolution=by_resolution,
            cluster_order=order,
            mode=values["mode"],
            batch_size=None if batch_size is None else val.check_int("fit['batch_size']", batch_size, 1),
            trained_on=values["trained_on"],
            n_obs=val.check_int("fit['n_obs']", values["n_obs"], 2),
            n_clusters_stability=_stability_from_dict(values.get("n_clusters_stability", {})),
        )


def _stability_from_dict(values) -> dict[int, float]:
    """A saved stability curve ``{"k": agreement}``, checked."""
    if not isinstance(values, dict):
        raise ValueError("`fit['n_clusters_stability']` must be a JSON object.")
    name = "fit['n_clusters_stability']"
    return {
        check_saved_number(f"{name} key", int(k) if str(k).isdigit() else k, lo=2, integer=True): check_saved_number(
            f"{name}[{k}]", s, lo=-1.0, hi=1.0
        )
        for k, s in values.items()
    }


@dataclass(frozen=True)
class ClusterResults:
    """What :func:`~scsiameseclu.tl.siamese_cluster` writes for the training cells."""

    embedding: np.ndarray  # cells × n_latent, float32
    proba: np.ndarray  # cells × clusters, float32, columns ordered by size
    labels: np.ndarray  # cluster per cell, 0 the largest
    uns: dict  # the record for `uns[key_added]`


@doc_params
class SiameseClusterModel:
    """Siamese GAT/MLP fusion with an optimal-transport clustering head.

    Parameters
    ----------
    adata
        Annotated data with an expression representation and a cell graph in ``obsp``.
    {n_clusters}
    use_rep, layer
        Expression input: ``obsm[use_rep]``, ``layers[layer]``, else ``obsm['X_pca']`` if present,
        else ``X``. For ``obsm['X_pca']`` from ``sc.pp.pca``, the model also keeps the PCA's
        genes, means and loadings, so that new cells are put on the training PCs.
    {connectivity_key}
    {graph_weight}
    {max_epochs}
    extra_rep
        ``obsm`` key(s) of extra per-cell modalities (e.g. ``"ADT"`` proteins), used as given;
        each gets an MLP branch of its own in the fusion. New cells need the same keys.
    library_key
        ``obs`` column of the library (slice, sample) of each cell.
    counts_layer
        Layer of raw counts: a decoder head then models the counts of the input's genes (the
        PCA's genes for a PCA input) with a negative-binomial likelihood in training.
    network_kwargs, augment_kwargs, train_kwargs
        Overrides of :class:`~scsiameseclu.module.NetworkConfig`,
        :class:`~scsiameseclu.module.AugmentConfig`, :class:`~scsiameseclu.module.TrainConfig`.

    Notes
    -----
    The model's state has three parts: :attr:`settings` (:class:`~scsiameseclu.model.ModelSettings`),
    :attr:`spec` (:class:`~scsiameseclu.model.InputSpec`, how AnnData becomes network input) and,
    once trained, the network with what training fixed (seed, k, cluster numbering). A saved
    model is these three parts; :meth:`load` rebuilds it through :meth:`from_parts`.

    Examples
    --------
    >>> model = ssc.tl.siamese_cluster(adata, n_clusters=7, return_model=True)
    >>> model.save("my_model/")
    >>> model = ssc.model.SiameseClusterModel.load("my_model/")
    >>> labels = model.predict(new_adata)  # cluster index per cell
    >>> z = model.get_latent_representation(new_adata)
    """

    def __init__(
        self,
        adata: AnnData,
        n_clusters: int | None = None,
        *,
        use_rep: str | None = None,
        layer: str | None = None,
        connectivity_key: str | None = None,
        graph_weight: float | None = None,
        max_epochs: int | None = None,
        extra_rep: str | list[str] | None = None,
        library_key: str | None = None,
        counts_layer: str | None = None,
        network_kwargs: dict | None = None,
        augment_kwargs: dict | None = None,
        train_kwargs: dict | None = None,
    ):
        val.check_adata(adata)
        n_clusters = val.check_n_clusters(n_clusters, adata.n_obs)
        graph_key = _read.resolve_connectivity_key(adata, connectivity_key)
        arguments = {
            "graph_weight": graph_weight,
            "max_epochs": max_epochs,
            "network_kwargs": network_kwargs,
            "augment_kwargs": augment_kwargs,
            "train_kwargs": train_kwargs,
        }
        # Settings first: a wrong argument is refused before the data is read.
        settings = ModelSettings.resolve(
            n_clusters=n_clusters, spatial_graph=graph_key.startswith("spatial"), **arguments
        )
        spec, data = InputSpec.fit(
            adata,
            use_rep=use_rep,
            layer=layer,
            connectivity_key=graph_key,
            extra_rep=extra_rep,
            library_key=library_key,
            counts_layer=counts_layer,
        )
        n_count_genes = 0 if spec.count_genes is None else len(spec.count_genes)
        network = replace(settings.network, extra_dims=spec.extra_dims, n_count_genes=n_count_genes)
        settings = replace(settings, network=network)
        self._assemble(settings, spec, data=data)

    @classmethod
    def from_parts(
        cls,
        settings: ModelSettings,
        spec: InputSpec,
        *,
        state: dict | None = None,
        fit: FitState | None = None,
        adata: AnnData | None = None,
        device="auto",
    ) -> SiameseClusterModel:
        """A model from its parts: settings, input spec and, for a trained model, weights and fit.

        Parameters
        ----------
        state
            The network's ``state_dict`` (with ``fit``), as saved by :meth:`save`.
        adata
            Data to attach for training or for ``predict()`` without arguments; read with ``spec``.
        """
        if (state is None) != (fit is None):
            msg = "Pass both `state` and `fit` (a trained model) or neither."
            raise ValueError(msg)
        model = cls.__new__(cls)
        data = None
        if adata is not None:
            val.check_adata(adata)
            x = spec.features(adata)
            library = _read.check_library_key(adata, spec.library_key)
            data = TrainingData(x, spec.graph(adata), library)
        model._assemble(settings, spec, data=data, fit=fit, device=resolve_device(device))
        if state is not None:
            model._load_network(state)
        return model

    def _assemble(self, settings, spec, *, data=None, fit=None, device=None) -> None:
        """The one place that sets the model's attributes."""
        self.settings: ModelSettings = settings
        self.spec: InputSpec = spec
        self.data: TrainingData | None = data
        self.fit: FitState | None = fit
        self.device = device
        self.network = None
        self.record = None  # TrainingRecord of the last training run (not saved)
        self._latent = None  # (embedding, gate or, on large data, its mean) of the training cells
        self._proba = None  # their smoothed soft assignments, network column order

    def _load_network(self, state: dict) -> None:
        import torch

        from ..module import SiameseNetwork

        # Starting weights from a private generator (replaced by the saved ones below).
        generator = torch.Generator().manual_seed(0)
        net = SiameseNetwork(self.spec.n_input, self.fit.n_clusters_fitted, self.settings.network, generator=generator)
        # Buffers (the final mixture) keep the shape they had when saved, which need not follow
        # the fitted k (a mixture never fitted after k was estimated).
        buffers = dict(net.named_buffers())
        for name, value in state.items():
            if name in buffers and buffers[name].shape != value.shape:
                owner, _, attr = name.rpartition(".")
                setattr(net.get_submodule(owner) if owner else net, attr, torch.empty_like(value))
        net.load_state_dict(state)
        self.network = net.to(self.device).eval()

    # Views of the state, for users and the docs' tutorials.
    @property
    def is_trained(self) -> bool:
        return self.network is not None

    @property
    def n_clusters(self) -> int | None:
        return self.settings.n_clusters

    @property
    def n_clusters_fitted(self) -> int | None:
        return None if self.fit is None else self.fit.n_clusters_fitted

    @property
    def n_clusters_by_resolution(self) -> dict[float, int]:
        return {} if self.fit is None else dict(self.fit.n_clusters_by_resolution)

    @property
    def n_clusters_stability(self) -> dict[int, float]:
        """Agreement of augmented views' partitions per candidate k (with ``n_clusters=None``; else empty)."""
        return {} if self.fit is None else dict(self.fit.n_clusters_stability)

    @property
    def random_state(self) -> int | None:
        return None if self.fit is None else self.fit.random_state

    @property
    def graph_weight(self) -> float:
        return self.settings.graph_weight

    @property
    def connectivity_key(self) -> str:
        return self.spec.connectivity_key

    @property
    def input_source(self) -> str:
        return self.spec.source

    @property
    def n_features(self) -> int:
        return self.spec.expression.n_features

    @property
    def var_names(self) -> list[str] | None:
        return None if self.spec.var_names is None else list(self.spec.var_names)

    def train(
        self,
        *,
        device="auto",
        random_state: int | None = 0,
        batch_size: int | None = None,
        n_jobs: int | None = None,
        deterministic: bool = True,
        show_progress_bar: bool | None = None,
    ) -> SiameseClusterModel:
        """Train on the data given at construction; the global RNG state is left unchanged.

        ``batch_size`` seed cells per step switches to mini-batch training on their
        neighbourhood subgraphs (memory linear in cells and edges; only batches go to the
        device). ``None``: the whole graph at once up to ``settings.limits.full_batch_max_cells``
        cells, mini-batches of about ``target_batch_cells`` cells above. ``n_jobs`` torch CPU
        threads during training (``None``: one for full-batch training, torch's setting for
        mini-batches; :meth:`ModelSettings.n_threads <scsiameseclu.model.ModelSettings.n_threads>`);
        the caller's setting is restored afterwards. ``deterministic`` (on CUDA): torch's
        deterministic kernels, so that one seed gives one result on the GPU too;
        ``False`` is faster and uses less GPU memory, but two runs can differ in a few cells. CPU
        runs are deterministic either way. ``show_progress_bar``: a tqdm bar over steps; ``None``
        shows it unless ``scanpy.settings.verbosity`` is 0 (errors only), ``True``/``False`` wins
        over the verbosity. Info lines follow the verbosity alone (from 2, ``"info"``).
        """
        if self.data is None:
            msg = "This model was loaded without `adata`; load it with `adata` to train it again."
            raise ValueError(msg)
        if batch_size is not None:
            batch_size = val.check_int("batch_size", batch_size, 2)
        if n_jobs is not None:
            n_jobs = val.check_int("n_jobs", n_jobs, 1)
        device = resolve_device(device)
        seed = resolve_seed(random_state)
        val.check_bool("deterministic", deterministic)
        n_threads = self.settings.n_threads(self.data.n_obs, batch_size, n_jobs)
        with torch_threads(n_threads), deterministic_algorithms(device, deterministic):
            return self._train(device, seed, batch_size, n_threads, deterministic, show_progress_bar)

    def _train(
        self, device, seed: int, batch_size: int | None, n_threads: int, deterministic: bool, show_progress_bar: bool
    ):
        """:meth:`train` with its arguments checked, inside the thread setting."""
        from ..module import SiameseNetwork
        from ._batches import CellGraph, FullGraph, SampledNeighbourhoods, receptive_field
        from ._distributed import ProcessGroup
        from ._n_clusters import N_VIEWS, estimate_n_clusters, stability_curve, stability_range
        from ._schedule import fit, init_generator, sampler_generator

        settings, data = self.settings, self.data
        minibatch = settings.minibatch(data.n_obs, batch_size)
        # Large data: one CSR of the graph (int32 indices) serves the chunked inference and the
        # training batches. (Chunked inference implies mini-batches, so the whole-graph source
        # always finds pairs in `edges`.)
        edges = self._inference_edges(data.graph)
        if isinstance(edges, CellGraph):
            graph = edges
        else:
            graph = CellGraph(edges, data.n_obs) if minibatch else None
        by_resolution: dict[float, int] = {}
        stability: dict[int, float] = {}
        k_seconds: dict[str, float] = {}

        def choose_k(z: np.ndarray, views) -> int:
            k, counts = estimate_n_clusters(z, max_cells=settings.limits.n_clusters_max_cells, random_state=seed)
            by_resolution.update(counts)
            logger.info("Estimated n_clusters=%d (Leiden communities of the pre-trained embedding).", k)
            t0 = time.perf_counter()
            stability.update(stability_curve(views(N_VIEWS, settings.limits.stability_max_cells), stability_range(k)))
            k_seconds["n_clusters_stability"] = time.perf_counter() - t0
            logger.info(
                "Stability curve of k from %d augmented views in %.1f s.", N_VIEWS, k_seconds["n_clusters_stability"]
            )
            return k

        group = ProcessGroup.current()
        if group.active:
            logger.info("Data-parallel training: rank %d of %d processes.", group.rank, group.world_size)
        t0 = time.perf_counter()
        net = SiameseNetwork(
            self.spec.n_input, settings.n_clusters or 2, settings.network, generator=init_generator(seed)
        ).to(device)
        t_index = time.perf_counter()
        if minibatch:
            source = SampledNeighbourhoods(
                data.x,
                graph,
                data.library,
                device=device,
                n_hops=receptive_field(net),
                batch_size=batch_size,
                limits=settings.limits,
                generator=sampler_generator(seed),
                rank=group.rank,
                world_size=group.world_size,
                counts=data.counts,
            )
        else:
            source = FullGraph(data.x, edges, data.library, device=device, counts=data.counts)
        t_index = time.perf_counter() - t_index
        if settings.network.init_weights == "identity":
            net.identity_init(source.x)
        record = fit(
            net,
            source,
            augment=settings.augment,
            train=settings.train,
            random_state=seed,
            n_clusters_fn=choose_k if settings.n_clusters is None else None,
            show_progress_bar=show_progress_bar,
        )
        del source  # its per-step buffers; the graph itself is kept for inference
        record.seconds["graph_index"] = t_index
        record.seconds.update(k_seconds)
        record.seconds["train"] = time.perf_counter() - t0
        record.n_threads = n_threads
        record.deterministic = deterministic
        before = dict(vars(self))
        self.network, self.device, self.record = net, device, record
        try:
            self._finish(edges, seed, by_resolution, stability)
        except BaseException:
            vars(self).update(before)  # the model as it was before the call
            raise
        return self

    def _finish(self, edges, seed: int, by_resolution: dict[float, int], stability: dict[int, float]) -> None:
        """After training: embed the training cells, fit the final mixture, number the clusters."""
        import torch

        from ._schedule import divergence_error

        settings, net, record, device = self.settings, self.network, self.record, self.device
        t0 = time.perf_counter()
        # Embedded once: the mixture, the cluster numbering and `results` all read it.
        self._latent = self._embed(self.data.x, edges)
        record.seconds["embed"] = time.perf_counter() - t0
        if not torch.isfinite(self._latent[0]).all():
            raise divergence_error("non-finite embedding after training", settings.train.learning_rate)
        if settings.train.final_assignment == "mixture":
            from ._final_mixture import fit_final_mixture

            t0 = time.perf_counter()
            try:
                record.mixture_log_likelihood = fit_final_mixture(
                    net,
                    self._latent[0],
                    starts=settings.train.mixture_starts,
                    kmeans_starts=settings.train.mixture_kmeans_starts,
                    limits=settings.limits,
                    random_state=seed,
                    device=device,
                )
            except torch.linalg.LinAlgError as err:  # an embedding blown up to huge, near-singular values
                raise divergence_error(f"the final mixture failed: {err}", settings.train.learning_rate) from err
            record.seconds["mixture"] = time.perf_counter() - t0
        self._proba = self._assign(self._latent[0], edges)
        self.fit = FitState(
            random_state=seed,
            n_clusters_fitted=net.n_clusters,
            n_clusters_by_resolution=by_resolution,
            n_clusters_stability=stability,
            cluster_order=tuple(order_by_size(self._proba)),
            mode=record.mode,
            batch_size=record.batch_size,
            trained_on=str(device),
            n_obs=self.data.n_obs,
        )

    def _check_trained(self) -> None:
        if not self.is_trained:
            msg = "The model is not trained yet; call `.train()` first."
            raise RuntimeError(msg)

    def _inference_edges(self, graph):
        """The ``obsp`` graph as inference reads it: edge pairs, or on large data a CSR :class:`CellGraph`."""
        from ._batches import CellGraph

        pairs = graph_to_pairs(graph)
        return CellGraph(pairs, graph.shape[0]) if self.settings.chunked_inference(graph.shape[0]) else pairs

    def _embed(self, x: np.ndarray, edges):
        """Clean embedding and graph gate (CPU tensors); chunked on large data (``edges`` a CellGraph)."""
        from ._batches import embed_cells

        chunked = self.settings.chunked_inference(x.shape[0])
        chunk = self.settings.limits.inference_chunk if chunked else None
        with deterministic_algorithms(self.device):
            return embed_cells(self.network, x, edges, device=self.device, chunk_size=chunk)

    def _assign(self, z, edges) -> np.ndarray:
        """Soft assignments refined over the graph (weight ``graph_weight``), network column order."""
        import torch

        from ..module import propagate

        # Large data (a CellGraph) stays on the CPU: the assignments and their smoothing are
        # O(N·K) and O(E·K); the smoothing runs as sparse products over its CSR.
        if isinstance(edges, np.ndarray):
            device = self.device
            pairs_t = torch.as_tensor(edges, device=device)
            edges_t = torch.cat([pairs_t, pairs_t.flip(0)], dim=1)
        else:
            device = torch.device("cpu")
            edges_t = edges.adjacency()
        with torch.no_grad(), deterministic_algorithms(device):
            proba = self.network.soft_assign(z.to(device), self.settings.train.cluster_temperature)
            proba = propagate(proba, edges_t, self.settings.graph_weight)
        return proba.cpu().numpy()

    def _ordered(self, proba: np.ndarray) -> np.ndarray:
        """Columns as in ``obs[key_added]``: 0 the largest cluster in training, empty ones dropped."""
        proba = proba[:, list(self.fit.cluster_order)]
        return (proba / np.maximum(proba.sum(1, keepdims=True), 1e-12)).astype(np.float32)

    def _forward(self, adata: AnnData | None, match_genes: str = "name", max_missing_genes: float | None = None):
        """Embedding, ordered soft assignments and gate of the training cells or of ``adata``."""
        self._check_trained()
        if adata is None:
            if self.data is None:
                msg = "This model was loaded without `adata`; pass `adata` (cells with the training genes and a graph)."
                raise ValueError(msg)
            if self._latent is None:
                edges = self._inference_edges(self.data.graph)
                self._latent = self._embed(self.data.x, edges)
                self._proba = self._assign(self._latent[0], edges)
            z, gate = self._latent
            proba = self._proba
        else:
            val.check_adata(adata)
            if max_missing_genes is None:
                max_missing_genes = MAX_MISSING_GENES
            max_missing_genes = val.check_fraction("max_missing_genes", max_missing_genes, upper_open=False)
            x = self.spec.features(adata, match_genes=match_genes, max_missing=max_missing_genes)
            edges = self._inference_edges(self.spec.graph(adata))
            z, gate = self._embed(x, edges)
            proba = self._assign(z, edges)
        return z.numpy().astype(np.float32, copy=False), self._ordered(proba), gate.numpy()

    def get_latent_representation(
        self, adata: AnnData | None = None, *, match_genes: str = "name", max_missing_genes: float | None = None
    ) -> np.ndarray:
        """Fused embedding (cells × ``n_latent``, float32) of the training data or of ``adata``.

        New cells are read the way the training cells were (a model trained on ``X`` reads ``X``,
        whatever else ``adata`` holds; a model trained on a PCA projects the cells onto the
        training PCs unless ``adata`` holds that same PCA).

        Parameters
        ----------
        adata
            New cells with the training input and a cell graph; ``None``: the training cells.
        match_genes
            ``"name"`` finds the training genes (of ``X``, or of the PCA) in ``adata.var_names``,
            in any order, extra genes ignored; ``"position"`` takes the columns in order when the
            names differ (only for the same genes under other names).
        max_missing_genes
            Largest share of the training genes that ``adata`` may lack: each missing gene takes
            its mean over the training cells, with a warning that counts them; more are refused
            with the count and how to train on the shared genes. ``None``: 0.6
            (``MAX_MISSING_GENES``, set from the measured cost in accuracy: :doc:`/guarantees`).
        """
        z = self._forward(adata, match_genes, max_missing_genes)[0]
        return z.copy() if adata is None else z  # not the cached array of the training cells

    def predict(
        self,
        adata: AnnData | None = None,
        *,
        soft: bool = False,
        match_genes: str = "name",
        max_missing_genes: float | None = None,
    ) -> np.ndarray:
        """Cluster per cell as an integer code, or soft assignments (cells × clusters) when ``soft``.

        Codes are numbered as the categories of ``obs[key_added]`` of the training data (code
        ``i`` is the category ``str(i)``; 0 the largest cluster there, clusters left empty in
        training dropped): ``pd.Categorical.from_codes(codes, [str(i) for i in range(k)])`` gives
        the same labels. ``adata``, ``match_genes`` and ``max_missing_genes`` as in
        :meth:`get_latent_representation`.
        """
        proba = self._forward(adata, match_genes, max_missing_genes)[1]
        return proba if soft else proba.argmax(1)

    def results(self) -> ClusterResults:
        """Embedding, assignments and the ``uns`` record of the training cells, as ``tl`` writes them.

        The embedding is the model's cached array itself (not a copy); copy it before editing it.
        """
        import warnings

        from .. import __version__

        t0 = time.perf_counter()
        z, proba, gate = self._forward(None)
        t_infer = time.perf_counter() - t0
        n_found, n_fitted = proba.shape[1], self.fit.n_clusters_fitted
        if n_found < n_fitted:
            warnings.warn(
                f"{n_fitted - n_found} of {n_fitted} clusters ended up empty, so {n_found} clusters are returned "
                "(recorded in `uns[key_added]['n_clusters']` next to 'n_clusters_fitted'). The embedding does not "
                "separate that many groups: many identical cells, or fewer populations than asked for.",
                UserWarning,
                stacklevel=3,
            )
        record, fit = self.record, self.fit
        minibatch = fit.mode == "minibatch"
        training = {
            "mode": fit.mode,
            "batch_size": fit.batch_size if minibatch else -1,
            "mean_batch_cells": float(record.mean_batch_cells) if minibatch else float(fit.n_obs),
            "n_hops": int(record.n_hops) if minibatch else -1,
            "inference": "chunked" if self.settings.chunked_inference(fit.n_obs) else "full",
            "n_threads": int(record.n_threads),
            "deterministic": bool(record.deterministic),
            "world_size": int(record.world_size),
        }
        log_lik = record.mixture_log_likelihood
        mixture = {"start": max(log_lik, key=log_lik.get), "log_likelihood": dict(log_lik)} if log_lik else {}
        # A diverged run's huge losses overflow float32: written as inf, without numpy's notice.
        # (np.errstate, unlike warnings.catch_warnings, is local to the thread.)
        with np.errstate(over="ignore", invalid="ignore"):
            uns = {
                # h5ad has no None: an unset optional entry is the string "None" (a stable schema
                # that existing notebooks read); `use_rep` and `layer` are the resolved input.
                "params": {k: ("None" if v is None else v) for k, v in self.params().items()},
                "n_clusters": int(n_found),
                "n_clusters_fitted": int(n_fitted),
                "n_clusters_estimated": self.settings.n_clusters is None,
                "n_clusters_by_resolution": {str(r): k for r, k in fit.n_clusters_by_resolution.items()},
                "n_clusters_stability": {str(k): s for k, s in fit.n_clusters_stability.items()},
                "loss": np.asarray(record.loss, dtype=np.float32),
                "loss_terms": {k: np.asarray(v, dtype=np.float32) for k, v in record.terms.items()},
                "label_change": np.asarray(record.label_change, dtype=np.float32),
                "stopped_epoch": -1 if record.stopped_epoch is None else int(record.stopped_epoch),
                # Steps each stage ran: fewer than its length where its loss reached a plateau.
                "epochs": {stage: int(n) for stage, n in record.epochs.items()},
                "gate_mean": float(np.mean(gate)),
                "mixture": mixture,
                "timings": {**{k: float(v) for k, v in record.seconds.items()}, "inference": t_infer},
                "training": training,
                "version": __version__,
            }
        return ClusterResults(z, proba, proba.argmax(1), uns)

    def save(self, dir_path, *, overwrite: bool = False) -> None:
        """Save the trained model to the directory ``dir_path``.

        Parameters
        ----------
        dir_path
            Directory to create; it receives ``model.pt`` (weights), ``config.json`` (settings,
            input spec, fit), for gene-level input ``var_names.csv`` and for a PCA input
            ``input.npz`` (the projection). The training data is not saved.
        overwrite
            Write into ``dir_path`` even if it exists (files of the model are replaced).
        """
        from ._io import save_model

        self._check_trained()
        save_model(self, dir_path, overwrite=overwrite)

    @classmethod
    def load(cls, dir_path, adata: AnnData | None = None, *, device="auto") -> SiameseClusterModel:
        """Load a model written by :meth:`save`.

        Parameters
        ----------
        dir_path
            Directory given to :meth:`save`.
        adata
            Optional data to attach (same input and genes as in training, with a cell graph):
            then ``get_latent_representation()`` and ``predict()`` without arguments use it.
            Without it, pass an AnnData to those methods.
        device
            ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; a model trained on a GPU loads on CPU.

        Returns
        -------
        The trained model, ready for :meth:`get_latent_representation` and :meth:`predict`.
        """
        from ._io import load_model

        return load_model(cls, dir_path, adata, device=device)

    def params(self) -> dict:
        """Every setting of the model, flat, for ``uns``."""
        spec = self.spec
        return {
            **self.settings.params(),
            # The input as read, not as asked: `use_rep=None` resolved to `X_pca`, say.
            "use_rep": spec.input_keys[0],
            "layer": spec.input_keys[1],
            "input": spec.source,
            "connectivity_key": spec.connectivity_key,
            "extra_rep": list(spec.extra_rep) or None,
            "library_key": spec.library_key,
            "random_state": self.random_state,
            "device": str(self.device),
            "batch_size": None if self.fit is None else self.fit.batch_size,
        }

    @property
    def target(self) -> str:
        """``"domains"`` or ``"cell types"`` (see :class:`~scsiameseclu.model.ModelSettings`)."""
        return self.settings.target

    def __repr__(self) -> str:
        k = self.n_clusters_fitted if self.is_trained else self.n_clusters
        state = "trained" if self.is_trained else "not trained"
        domains = "tissue domains" if self.settings.target == DOMAINS else "cell types"
        return f"SiameseClusterModel({domains}, k={k}, input {self.spec.source}, {state})"
