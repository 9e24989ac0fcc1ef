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

logger = logging.getLogger("scsiameseclu")


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
        spatial graph (smooth tissue domains), 0.5 otherwise. Use ~0.2 to find cell types on a
        spatial graph, 0 to ignore the graph. With ``train_kwargs['init']="auto"`` it also picks
        how prototypes are seeded: spherical k-means for domains (spatial graph and
        ``graph_weight >= 0.5``), else Leiden communities with k parts (cell types).
    network_kwargs, augment_kwargs, train_kwargs
        Overrides of :class:`~scsiameseclu.module.NetworkConfig`,
        :class:`~scsiameseclu.module.AugmentConfig`, :class:`~scsiameseclu.module.TrainConfig`.

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
        self.network_config = _make_config(
            NetworkConfig, "network_kwargs", network_kwargs, graph_weight=self.graph_weight
        )
        self.augment_config = _make_config(AugmentConfig, "augment_kwargs", augment_kwargs)
        self.train_config = _make_config(TrainConfig, "train_kwargs", train_kwargs)
        if self.train_config.init == "auto":
            domains = self.connectivity_key.startswith("spatial") and self.graph_weight >= 0.5
            self.train_config = replace(self.train_config, init="kmeans" if domains else "leiden")
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
        self.n_features = mat.shape[1]
        self.var_names = None if self.input_source.startswith("obsm") else list(map(str, adata.var_names))
        self.n_obs = adata.n_obs
        self.network = None
        self.history = None
        self.device = None
        self.random_state = None
        self.n_clusters_scores: dict[int, float] = {}

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
        of about 16,000 cells (seeds with their neighbourhoods; see
        :mod:`scsiameseclu.model._minibatch`).
        """
        import torch

        from ..module import SiameseNetwork
        from ._minibatch import fit_minibatch, use_minibatch
        from ._n_clusters import estimate_n_clusters
        from ._training import fit

        if batch_size is not None:
            batch_size = val.check_int("batch_size", batch_size, 2)
        self.device = resolve_device(device)
        self.random_state = resolve_seed(random_state)
        minibatch = use_minibatch(batch_size, self.n_obs)
        data_device = torch.device("cpu") if minibatch else self.device
        x = torch.as_tensor(self._x, device=data_device)
        pairs = torch.as_tensor(graph_to_pairs(self._graph), device=data_device)

        def choose_k(z: np.ndarray) -> int:
            k, self.n_clusters_scores = estimate_n_clusters(
                z, k_max=min(20, self.n_obs - 1), random_state=self.random_state
            )
            logger.info("Estimated n_clusters=%d (silhouette %.3f).", k, self.n_clusters_scores.get(k, float("nan")))
            return k

        t0 = time.perf_counter()
        with seeded_torch(self.random_state, self.device):
            net = SiameseNetwork(x.shape[1], self.n_clusters or 2, self.network_config).to(self.device)
            common = {
                "augment": self.augment_config,
                "train": self.train_config,
                "random_state": self.random_state,
                "n_clusters_fn": choose_k if self.n_clusters is None else None,
                "show_progress_bar": show_progress_bar,
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
        if self.train_config.final_assignment == "mixture":
            t0 = time.perf_counter()
            # A tied-covariance mixture over the embedding, started from the head's labels.
            net.fit_mixture(torch.as_tensor(self.get_latent_representation(), device=self.device))
            self.history.seconds["mixture"] = time.perf_counter() - t0
        return self

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
        mat = mat.toarray() if hasattr(mat, "toarray") else mat
        if mat.shape[1] != self.n_features:
            msg = f"`adata` has {mat.shape[1]} input features in {source}; the model was trained on {self.n_features}."
            raise ValueError(msg)
        if self.var_names is not None and list(map(str, adata.var_names)) != self.var_names:
            warnings.warn(
                "`adata.var_names` differ from the training data's; features are matched by position.",
                UserWarning,
                stacklevel=5,
            )
        x = (mat[:, self.feature_index] / self.input_scale).astype(np.float32)
        key = val.resolve_connectivity_key(adata, self.connectivity_key)
        return x, val.get_graph(adata, key)

    def _forward(self, adata: AnnData | None):
        """Embedding, soft assignments refined over the graph (weight ``graph_weight``) and gate."""
        import torch

        from ..module import propagate
        from ._minibatch import FULL_BATCH_MAX_CELLS, forward_chunked

        self._check_trained()
        x, pairs = self._inputs(adata)
        if x.shape[0] > FULL_BATCH_MAX_CELLS:
            # Chunks of cells on their receptive-field subgraphs: O(chunk) memory on the device.
            return forward_chunked(
                self.network,
                x,
                pairs,
                device=self.device,
                cluster_temperature=self.train_config.cluster_temperature,
                graph_weight=self.graph_weight,
            )
        x = torch.as_tensor(x, device=self.device)
        pairs = torch.as_tensor(pairs, device=self.device)
        edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
        self.network.eval()
        with torch.no_grad():
            z, gate = self.network.embed(x, edge_index)
            proba = self.network.soft_assign(z, self.train_config.cluster_temperature)
            proba = propagate(proba, edge_index, self.graph_weight)
        return z.cpu().numpy().astype(np.float32), proba.cpu().numpy().astype(np.float32), gate.cpu().numpy()

    def get_latent_representation(self, adata: AnnData | None = None) -> np.ndarray:
        """Fused embedding (cells × ``n_latent``, float32) of the training data or of ``adata``."""
        return self._forward(adata)[0]

    def predict(self, adata: AnnData | None = None, *, soft: bool = False) -> np.ndarray:
        """Cluster index per cell, or soft assignments (cells × clusters) when ``soft``."""
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

        return {
            "n_clusters": self.n_clusters,
            "use_rep": self.use_rep,
            "layer": self.layer,
            "input": self.input_source,
            "connectivity_key": self.connectivity_key,
            "random_state": self.random_state,
            "device": str(self.device),
            **to_dict(self.network_config, self.augment_config, self.train_config),
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
