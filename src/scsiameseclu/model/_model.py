"""AnnData-facing model: validates inputs, trains the Siamese network, returns results."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import replace

import numpy as np
from anndata import AnnData

from .. import _validation as val
from .._constants import GRAPH_WEIGHT_KNN, GRAPH_WEIGHT_SPATIAL
from .._device import resolve_device, resolve_seed, seeded_torch
from .._graph import graph_to_pairs

#: The final mixture is fitted on at most this many cells (a fixed random subsample).
MIXTURE_MAX_CELLS = 100_000
#: Leiden communities for the mixture's second start (domain mode) on at most this many of them,
#: which bounds the cost of their exact kNN graph and of the bisection on the resolution.
LEIDEN_START_MAX_CELLS = 8_000

logger = logging.getLogger("scsiameseclu")


def order_by_size(proba: np.ndarray) -> list[int]:
    """Columns of ``proba`` by the size of their hard clusters, largest first; empty ones dropped."""
    counts = np.bincount(proba.argmax(1), minlength=proba.shape[1])
    return [int(c) for c in np.argsort(-counts, kind="stable") if counts[c] > 0]


class SiameseClusterModel:
    """Siamese GAT/MLP fusion with an optimal-transport clustering head.

    Parameters
    ----------
    adata
        Annotated data with an expression representation and a cell graph in ``obsp``.
    n_clusters
        Number of clusters; ``None`` estimates it after pre-training (see
        :func:`~scsiameseclu.model.estimate_n_clusters`).
    use_rep, layer
        Expression input: ``obsm[use_rep]``, ``layers[layer]``, else ``obsm['X_pca']`` if present,
        else ``X``.
    connectivity_key
        ``obsp`` key of the cell graph; default ``spatial_connectivities`` if present, else
        ``connectivities``. squidpy's short form (``"spatial"``) is accepted.
    graph_weight
        How much the graph weighs, in ``[0, 1]``: prior weight of the graph (GAT) branch in the
        fusion (the learned gate moves each cell by at most one logit around it) and of the
        neighbours when final assignments are smoothed over the graph. ``None``: 0.8 on a squidpy
        spatial graph (smooth tissue domains), 0.5 otherwise. Use 0 (ignore the graph) to find
        cell types on a spatial graph. It also sets two defaults of ``train_kwargs``: for
        domains (spatial graph and ``graph_weight >= 0.5``) prototypes are seeded by spherical
        k-means and the contrastive term acts in pre-training too; for cell types prototypes
        are seeded by Leiden communities with k parts and the contrastive term acts in the
        clustering stage only (``init`` and ``w_contrastive_pretrain``).
    network_kwargs, augment_kwargs, train_kwargs
        Overrides of :class:`~scsiameseclu.module.NetworkConfig`,
        :class:`~scsiameseclu.module.AugmentConfig`, :class:`~scsiameseclu.module.TrainConfig`.
    extra_rep
        ``obsm`` key(s) of extra per-cell modalities (e.g. ``"ADT"`` proteins), used as given
        (normalise them first: CLR for protein counts); each is divided by its own global scale
        and gets an MLP branch of its own in the fusion. New cells need the same keys.
    library_key
        ``obs`` column of the library (slice, sample) of each cell; with
        ``train_kwargs['w_library'] > 0`` (default 0) a term keeps library identity out of the
        embedding.

    Notes
    -----
    :func:`~scsiameseclu.tl.siamese_cluster` builds and trains this model; pass
    ``return_model=True`` to get it. A trained model embeds and labels new cells with the same
    input (the same genes, or the same ``obsm`` representation) and their own cell graph, and can
    be saved and loaded in another Python process: the directory holds the network weights
    (``model.pt``, read with ``weights_only=True``), ``config.json`` (settings, fitted k,
    feature scaling, versions) and ``var_names.csv``.

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
        network_kwargs: dict | None = None,
        augment_kwargs: dict | None = None,
        train_kwargs: dict | None = None,
        extra_rep: str | list[str] | None = None,
        library_key: str | None = None,
    ):
        from ..module import AugmentConfig, NetworkConfig, TrainConfig

        val.check_adata(adata, copy=True)
        self.n_clusters = val.check_n_clusters(n_clusters, adata.n_obs)
        self.connectivity_key = val.resolve_connectivity_key(adata, connectivity_key)
        if graph_weight is None:
            spatial = self.connectivity_key.startswith("spatial")
            graph_weight = GRAPH_WEIGHT_SPATIAL if spatial else GRAPH_WEIGHT_KNN
        self.graph_weight = val.check_fraction("graph_weight", graph_weight, upper_open=False)
        self.use_rep, self.layer = use_rep, layer
        self.extra_rep = val.check_extra_rep(adata, extra_rep, use_rep=use_rep, layer=layer)
        if "extra_dims" in (network_kwargs or {}):
            msg = "`network_kwargs['extra_dims']` is set from the data; pass `extra_rep` instead."
            raise ValueError(msg)
        extras = [val.feature_matrix(val.get_extra_features(adata, key)) for key in self.extra_rep]
        # Per extra modality: kept columns, global scale, column count before dropping constants.
        self.extra_index = [index for _, index, _ in extras]
        self.extra_scale = [scale for _, _, scale in extras]
        self.extra_n_features = [adata.obsm[key].shape[1] for key in self.extra_rep]
        self.library_key = library_key
        self._library = val.check_library_key(adata, library_key)
        self.network_config = _make_config(
            NetworkConfig,
            "network_kwargs",
            network_kwargs,
            graph_weight=self.graph_weight,
            extra_dims=tuple(len(index) for index in self.extra_index),
        )
        self.augment_config = _make_config(AugmentConfig, "augment_kwargs", augment_kwargs)
        self.train_config = _make_config(TrainConfig, "train_kwargs", train_kwargs)
        # The user's target decides two defaults: tissue domains (a spatial graph weighing at least
        # half) or cell types (see `TrainConfig.init` and `w_contrastive_pretrain`).
        domains = self.connectivity_key.startswith("spatial") and self.graph_weight >= 0.5
        if self.train_config.init == "auto":
            self.train_config = replace(self.train_config, init="kmeans" if domains else "leiden")
        if self.train_config.w_contrastive_pretrain is None:
            w = self.train_config.w_contrastive if domains else 0.0
            self.train_config = replace(self.train_config, w_contrastive_pretrain=w)
        w = self.train_config.w_contrastive_pretrain
        if isinstance(w, bool) or not isinstance(w, int | float) or not w >= 0:
            msg = f"`train_kwargs['w_contrastive_pretrain']` must be a number >= 0 or None, got {w!r}."
            raise ValueError(msg)
        if self.train_config.final_assignment not in ("prototypes", "mixture"):
            msg = (
                "`train_kwargs['final_assignment']` must be 'prototypes' or 'mixture', "
                f"got {self.train_config.final_assignment!r}."
            )
            raise ValueError(msg)
        if self.train_config.init not in ("kmeans", "leiden"):
            msg = f"`train_kwargs['init']` must be 'auto', 'kmeans' or 'leiden', got {self.train_config.init!r}."
            raise ValueError(msg)
        mat, self.input_source = val.get_features(adata, use_rep=use_rep, layer=layer)
        self._graph = val.get_graph(adata, self.connectivity_key)
        self._x, self.feature_index, self.input_scale = val.feature_matrix(mat)
        if extras:  # extra modalities: the last columns of the network input, each scaled on its own
            self._x = np.hstack([self._x, *(x for x, _, _ in extras)])
        if self._library is not None and self.connectivity_key.startswith("spatial"):
            n_cross = val.cross_library_edges(self._graph, self._library)
            if n_cross:
                warnings.warn(
                    f"{n_cross} edge(s) of `adata.obsp[{self.connectivity_key!r}]` join cells of different "
                    f"libraries; build the graph per slice with "
                    f"`squidpy.gr.spatial_neighbors(adata, library_key={library_key!r})`.",
                    UserWarning,
                    stacklevel=3,
                )
        self.n_features = mat.shape[1]
        self.var_names = None if self.input_source.startswith("obsm") else list(map(str, adata.var_names))
        self.n_obs = adata.n_obs
        self.network = None
        self.history = None
        self.device = None
        self.random_state = None
        # Leiden community count of the pre-trained embedding per resolution (n_clusters=None).
        self.n_clusters_by_resolution: dict[float, int] = {}
        self._latent = None  # (embedding, gate) of the training cells, kept after training
        self.cluster_order: list[int] | None = None  # network clusters by training size, empty ones dropped

    @property
    def is_trained(self) -> bool:
        return self.network is not None

    def train(
        self,
        *,
        device="auto",
        random_state: int | None = 0,
        batch_size: int | None = None,
        show_progress_bar: bool = True,
    ) -> SiameseClusterModel:
        """Train on the data given at construction; the global RNG state is left unchanged.

        ``batch_size`` seed cells per step switches to mini-batch training on their
        neighbourhood subgraphs (memory linear in cells and edges; only batches go to the
        device). ``None``: the whole graph at once up to 50,000 cells, above that mini-batches
        of about 8,000 cells (seeds with their neighbourhoods; see
        :mod:`scsiameseclu.model._minibatch`).
        """
        import torch

        from ..module import SiameseNetwork
        from ._minibatch import fit_minibatch, use_minibatch
        from ._n_clusters import estimate_n_clusters
        from ._training import fit

        if self._x is None:
            msg = "This model was loaded without `adata`; load it with `adata` to train it again."
            raise ValueError(msg)
        if batch_size is not None:
            batch_size = val.check_int("batch_size", batch_size, 2)
        self.device = resolve_device(device)
        self.random_state = resolve_seed(random_state)
        minibatch = use_minibatch(batch_size, self.n_obs)
        data_device = torch.device("cpu") if minibatch else self.device
        x = torch.as_tensor(self._x, device=data_device)
        pairs = torch.as_tensor(graph_to_pairs(self._graph), device=data_device)

        def choose_k(z: np.ndarray) -> int:
            k, self.n_clusters_by_resolution = estimate_n_clusters(z, random_state=self.random_state)
            logger.info("Estimated n_clusters=%d (Leiden communities of the pre-trained embedding).", k)
            return k

        t0 = time.perf_counter()
        with seeded_torch(self.random_state, self.device):
            net = SiameseNetwork(x.shape[1], self.n_clusters or 2, self.network_config).to(self.device)
            if self.network_config.init_weights == "identity":
                net.identity_init(x)
            common = {
                "augment": self.augment_config,
                "train": self.train_config,
                "random_state": self.random_state,
                "n_clusters_fn": choose_k if self.n_clusters is None else None,
                "show_progress_bar": show_progress_bar,
                # Library code per cell for the library term (issue 7), None without `library_key`.
                "library": None if self._library is None else torch.as_tensor(self._library, device=data_device),
            }
            if minibatch:
                self.history = fit_minibatch(net, x, pairs, batch_size=batch_size, device=self.device, **common)
            else:
                self.history = fit(net, x, pairs, **common)
        # Seeds per step of mini-batch training; None: trained on the whole graph at once.
        self.batch_size = self.history.batch_size if minibatch else None
        self.history.seconds["train"] = time.perf_counter() - t0
        self.network = net
        self.n_clusters_fitted = net.n_clusters
        t0 = time.perf_counter()
        # Embedded once: the mixture and the results of `tl.siamese_cluster` both read it.
        self._latent = self._embed(self._x, graph_to_pairs(self._graph))
        self.history.seconds["embed"] = time.perf_counter() - t0
        if self.train_config.final_assignment == "mixture":
            t0 = time.perf_counter()
            self._fit_mixture()
            self.history.seconds["mixture"] = time.perf_counter() - t0
        self.cluster_order = None
        self.cluster_order = order_by_size(self._forward(None)[1])
        return self

    def _fit_mixture(self) -> None:
        """Fit the final tied-covariance mixture over the embedding; in domain mode from two starts.

        With k-means seeding of the prototypes (domain mode), EM also starts from the Leiden
        communities (k parts) of the final embedding, which follow the data's own population sizes
        where the head's balanced prototypes split a large domain and merge a small one; the higher
        mean log-likelihood wins (labels are never read). With Leiden seeding (cell types) the
        head's labels already descend from Leiden communities, so a second one is not run. The
        mixture is fitted on a fixed random subsample of at most ``MIXTURE_MAX_CELLS`` cells (EM
        costs O(N·K·d) per iteration); Leiden runs on at most ``LEIDEN_START_MAX_CELLS`` of them
        (its kNN graph and bisection dominate the cost), and a mixture fitted on its partition
        gives the start for the rest.
        """
        import torch
        from torch.nn import functional as F

        from ..module import fit_tied_mixture, mixture_posterior
        from ._init import leiden_partition

        net, z = self.network, self._latent[0]
        rng = np.random.default_rng(self.random_state)
        if z.shape[0] > MIXTURE_MAX_CELLS:
            z = z[np.sort(rng.choice(z.shape[0], MIXTURE_MAX_CELLS, replace=False))]
        z = z.to(self.device)
        starts = []
        if self.train_config.init == "kmeans":
            sub = np.sort(rng.choice(z.shape[0], min(z.shape[0], LEIDEN_START_MAX_CELLS), replace=False))
            communities = leiden_partition(z[sub].cpu().numpy(), net.n_clusters, random_state=self.random_state)
            if communities is None:
                logger.info(
                    "Leiden gave no partition with %d clusters; the mixture starts from the prototypes only.",
                    net.n_clusters,
                )
            else:
                codes = torch.tensor(communities, dtype=torch.long, device=z.device)  # a copy: scanpy's are read-only
                resp = F.one_hot(codes, net.n_clusters).to(z.dtype)
                starts.append(mixture_posterior(z, *fit_tied_mixture(z[sub], resp)))
        log_liks = net.fit_mixture(z, starts)
        self.history.mixture_log_likelihood = dict(zip(("prototypes", "leiden"), log_liks, strict=False))

    def _check_trained(self) -> None:
        if not self.is_trained:
            msg = "The model is not trained yet; call `.train()` first."
            raise RuntimeError(msg)

    def _inputs(self, adata: AnnData | None):
        """Scaled features and edge list of the training data or of a new AnnData."""
        if adata is None:
            if self._x is None:
                msg = "This model was loaded without `adata`; pass `adata` (cells with the training genes and a graph)."
                raise ValueError(msg)
            return self._x, graph_to_pairs(self._graph)
        x, graph = self._prepare(adata)
        return x, graph_to_pairs(graph)

    def _prepare(self, adata: AnnData):
        """Features of ``adata`` scaled as in training, and its validated graph."""
        val.check_adata(adata, copy=True)
        mat, source = val.get_features(adata, use_rep=self.use_rep, layer=self.layer)
        if source != self.input_source:
            msg = f"The model was trained on {self.input_source} but `adata` gives {source}; pass the same input."
            raise ValueError(msg)
        names = list(map(str, adata.var_names))
        if self.var_names is not None and names != self.var_names:
            position = {g: i for i, g in enumerate(names)}
            if len(position) == len(names) and all(g in position for g in self.var_names):
                # Every training gene is there: match by name (another order, or more genes).
                logger.info("Selecting the model's %d genes from `adata.var_names` by name.", len(self.var_names))
                mat = mat[:, [position[g] for g in self.var_names]]
            elif mat.shape[1] == self.n_features:
                warnings.warn(
                    "`adata.var_names` differ from the training data's; features are matched by position.",
                    UserWarning,
                    stacklevel=5,
                )
        mat = mat.toarray() if hasattr(mat, "toarray") else mat
        if mat.shape[1] != self.n_features:
            msg = f"`adata` has {mat.shape[1]} input features in {source}; the model was trained on {self.n_features}."
            raise ValueError(msg)
        x = (mat[:, self.feature_index] / self.input_scale).astype(np.float32)
        x = np.hstack([x, *self._extra_inputs(adata)]) if self.extra_rep else x
        key = val.resolve_connectivity_key(adata, self.connectivity_key)
        return x, val.get_graph(adata, key)

    def _extra_inputs(self, adata: AnnData) -> list[np.ndarray]:
        """The extra modalities of ``adata`` (same ``obsm`` keys and widths), scaled as in training."""
        out = []
        for key, index, scale, n in zip(
            self.extra_rep, self.extra_index, self.extra_scale, self.extra_n_features, strict=True
        ):
            mat = val.get_extra_features(adata, key)
            mat = mat.toarray() if hasattr(mat, "toarray") else mat
            if mat.shape[1] != n:
                msg = f"`adata.obsm[{key!r}]` has {mat.shape[1]} columns; the model was trained on {n}."
                raise ValueError(msg)
            out.append((mat[:, index] / scale).astype(np.float32))
        return out

    def _embed(self, x: np.ndarray, pairs: np.ndarray):
        """Clean embedding and graph gate (CPU tensors); chunked above ``FULL_BATCH_MAX_CELLS`` cells."""
        import torch

        from ._minibatch import FULL_BATCH_MAX_CELLS, CellGraph, embed_chunked, locality_order

        net = self.network
        net.eval()
        if x.shape[0] > FULL_BATCH_MAX_CELLS:
            # Chunks of cells on their receptive-field subgraphs: O(chunk) memory on the device.
            graph = CellGraph(torch.from_numpy(pairs), x.shape[0])
            order = locality_order(pairs, x.shape[0])
            z, gate, _ = embed_chunked(
                net, torch.from_numpy(np.ascontiguousarray(x)), graph, device=self.device, order=order
            )
            return z, gate
        x_t = torch.as_tensor(x, device=self.device)
        pairs_t = torch.as_tensor(pairs, device=self.device)
        with torch.no_grad():
            z, gate = net.embed(x_t, torch.cat([pairs_t, pairs_t.flip(0)], dim=1))
        return z.cpu(), gate.cpu()

    def _forward(self, adata: AnnData | None):
        """Embedding, soft assignments refined over the graph (weight ``graph_weight``) and gate."""
        import torch

        from ..module import propagate
        from ._minibatch import FULL_BATCH_MAX_CELLS

        self._check_trained()
        x, pairs = self._inputs(adata)
        if adata is None and self._latent is not None:
            z, gate = self._latent
        else:
            z, gate = self._embed(x, pairs)
        # Large data stays on the CPU: the assignments and their smoothing are O(N·K) and O(E·K).
        device = self.device if x.shape[0] <= FULL_BATCH_MAX_CELLS else torch.device("cpu")
        pairs_t = torch.as_tensor(pairs, device=device)
        with torch.no_grad():
            proba = self.network.soft_assign(z.to(device), self.train_config.cluster_temperature)
            proba = propagate(proba, torch.cat([pairs_t, pairs_t.flip(0)], dim=1), self.graph_weight)
        proba = proba.cpu().numpy()
        if self.cluster_order is not None:  # the labels of `obs[key_added]`: 0 the largest, empty ones dropped
            proba = proba[:, self.cluster_order]
            proba = proba / np.maximum(proba.sum(1, keepdims=True), 1e-12)
        return z.numpy().astype(np.float32), proba.astype(np.float32), gate.numpy()

    def get_latent_representation(self, adata: AnnData | None = None) -> np.ndarray:
        """Fused embedding (cells × ``n_latent``, float32) of the training data or of ``adata``."""
        return self._forward(adata)[0]

    def predict(self, adata: AnnData | None = None, *, soft: bool = False) -> np.ndarray:
        """Cluster per cell, or soft assignments (cells × clusters) when ``soft``.

        Clusters are numbered as in ``obs[key_added]`` of the training data: 0 the largest there,
        clusters left empty in training dropped.
        """
        proba = self._forward(adata)[1]
        return proba if soft else proba.argmax(1)

    def save(self, dir_path, *, overwrite: bool = False) -> None:
        """Save the trained model to the directory ``dir_path``.

        Parameters
        ----------
        dir_path
            Directory to create; it receives ``model.pt`` (weights), ``config.json`` and, for
            gene-level input, ``var_names.csv``. The training data is not saved.
        overwrite
            Write into ``dir_path`` even if it exists (files of the model are replaced).
        """
        from ._io import save_model

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
        from ..module._config import to_dict

        configs = to_dict(self.network_config, self.augment_config, self.train_config)
        configs["extra_dims"] = list(configs["extra_dims"])  # a tuple cannot be written to h5ad
        return {
            "n_clusters": self.n_clusters,
            "use_rep": self.use_rep,
            "layer": self.layer,
            "input": self.input_source,
            "connectivity_key": self.connectivity_key,
            "extra_rep": list(self.extra_rep) or None,
            "library_key": self.library_key,
            "random_state": self.random_state,
            "device": str(self.device),
            **configs,
        }


def _make_config(cls, name: str, overrides: dict | None, **fixed):
    import dataclasses

    overrides = dict(overrides or {})
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = set(overrides) - valid
    if unknown:
        msg = f"`{name}` has unknown key(s) {sorted(unknown)}; valid keys: {sorted(valid)}."
        raise ValueError(msg)
    overrides.update(fixed)
    return replace(cls(), **overrides)
