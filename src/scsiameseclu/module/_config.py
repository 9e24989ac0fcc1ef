"""Hyper-parameters of the network and its training, one set for every dataset.

Each config checks the type and range of every field when it is built, so that a wrong value is
refused with its name before any work starts. Defaults that depend on the data or on the user's
target (``graph_weight``, ``init``, ``w_contrastive_pretrain``, ``n_epochs_cluster``,
``plateau_tol_pretrain``, ``mixture_starts``) are resolved by the model layer
(:class:`~scsiameseclu.model.ModelSettings`), not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import ClassVar

from .._checks import check_choice, check_number
from .._defaults import N_EPOCHS_PRETRAIN, PLATEAU_TOL


def _check_number(owner, name: str, **bounds) -> None:
    # A frozen dataclass's field, checked and stored in its canonical type.
    object.__setattr__(owner, name, check_number(name, getattr(owner, name), **bounds))


def _check_choice(owner, name: str, choices: tuple) -> None:
    check_choice(name, getattr(owner, name), choices)


#: Where the final mixture's EM may start (``TrainConfig.mixture_starts``).
MIXTURE_STARTS = ("prototypes", "leiden", "ward", "kmeans")


@dataclass(frozen=True)
class AugmentConfig:
    """How one stochastic view is drawn (see :func:`scsiameseclu.pp.augment`)."""

    mask_rate: float = 0.2
    noise_std: float = 0.0
    edge_drop_rate: float = 0.2
    edge_add_rate: float = 0.05
    edge_add_mode: str = "similar"

    def __post_init__(self):
        _check_number(self, "mask_rate", hi=1.0, hi_open=True)
        _check_number(self, "edge_drop_rate", hi=1.0, hi_open=True)
        _check_number(self, "noise_std")
        # Added edges are drawn as a multiple of the existing ones; more than as many again would
        # drown the graph (and allocate a candidate list of that size).
        _check_number(self, "edge_add_rate", hi=1.0)
        _check_choice(self, "edge_add_mode", ("random", "similar"))


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the Siamese network."""

    #: Largest hidden or latent width, and most GAT layers, heads or hops: upper bounds that keep
    #: a typo from allocating weights or activations of many gigabytes.
    MAX_WIDTH: ClassVar[int] = 4096
    MAX_DEPTH: ClassVar[int] = 16

    n_hidden: int = 64
    n_latent: int = 32
    n_gat_layers: int = 2
    gat_heads: int = 1
    n_hops: int = 0
    graph_weight: float = 0.5
    # Starting weights: "identity" (every layer starts as the identity of its input, with one
    # block of coordinates per modality when there are extra ones, see
    # `SiameseNetwork.identity_init`) or "random" (PyTorch's default initialisation, drawn from
    # `random_state`). From the identity the seed moves only the training noise, not the starting
    # map, so runs differ less between seeds.
    init_weights: str = "identity"
    # Widths of extra modalities (``extra_rep``), the last columns of the input; set from the data.
    extra_dims: tuple[int, ...] = ()
    # Genes whose raw counts a negative-binomial decoder head models (``counts_layer``); 0: none.
    # Set from the data.
    n_count_genes: int = 0

    def __post_init__(self):
        for name in ("n_hidden", "n_latent"):
            _check_number(self, name, lo=1, hi=self.MAX_WIDTH, integer=True)
        for name in ("n_gat_layers", "gat_heads"):
            _check_number(self, name, lo=1, hi=self.MAX_DEPTH, integer=True)
        _check_number(self, "n_hops", hi=self.MAX_DEPTH, integer=True)
        if self.n_hidden % self.gat_heads:  # the heads' outputs are concatenated to n_hidden
            msg = f"`gat_heads={self.gat_heads}` must divide `n_hidden={self.n_hidden}`."
            raise ValueError(msg)
        _check_number(self, "graph_weight", hi=1.0)
        dims = tuple(self.extra_dims)
        if not all(isinstance(m, Integral) and not isinstance(m, bool) and m > 0 for m in dims):
            msg = f"`extra_dims` must be positive ints, got {self.extra_dims!r}."
            raise ValueError(msg)
        object.__setattr__(self, "extra_dims", tuple(int(m) for m in dims))  # a list read back from JSON
        _check_number(self, "n_count_genes", integer=True)
        _check_choice(self, "init_weights", ("identity", "random"))
        n_modalities = 1 + len(dims)
        if self.init_weights == "identity" and min(self.n_hidden, self.n_latent) < n_modalities:
            msg = (
                f"`n_hidden={self.n_hidden}` and `n_latent={self.n_latent}` must each be at least the number of "
                f"modalities ({n_modalities}) to start from identity weights; pass `init_weights='random'`."
            )
            raise ValueError(msg)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation schedule and loss weights."""

    #: Most steps of one training stage (a typo guard: a run this long takes days).
    MAX_EPOCHS: ClassVar[int] = 1_000_000
    #: Largest subsample of the contrastive term, which compares every pair of its cells.
    MAX_CONTRASTIVE_CELLS: ClassVar[int] = 16_384

    n_epochs_pretrain: int = N_EPOCHS_PRETRAIN
    # Steps of the clustering stage; None: resolved from the target by the model layer (cell
    # types skip the stage: its balanced transport splits large populations and merges rare
    # ones, and the final mixture labels the pre-trained embedding better).
    n_epochs_cluster: int | None = None
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    w_correlation: float = 1.0
    w_reconstruction: float = 1.0
    w_contrastive: float = 0.5
    # Weight of the contrastive term in pre-training (`w_contrastive` is its weight in the
    # clustering stage); None: resolved from the target by the model layer. Tissue domains keep
    # it; for cell types it is 0, because InfoNCE pushes every cell away from every other and so
    # spreads large, unequal populations over the sphere before the clustering head sees them.
    w_contrastive_pretrain: float | None = None
    w_cluster: float = 0.5
    # Weight of the count term (negative-binomial likelihood of the raw counts of the genes, from
    # both views' embeddings); acts only with a ``counts_layer``.
    w_counts: float = 1.0
    # Weight of the library term (moment matching of the embedding between libraries, with a
    # reconstruction target free of library mean shifts); acts only with a `library_key`. Off by
    # default: adjacent slices of one tissue share their domains, and the term can remove real
    # differences between slices along with technical ones.
    w_library: float = 0.0
    contrastive_temperature: float = 0.5
    contrastive_max_cells: int = 1024
    cluster_temperature: float = 0.2
    sinkhorn_epsilon: float = 0.2
    sinkhorn_iters: int = 3
    balance: float = 0.1
    size_momentum: float = 0.9
    tol: float = 1e-3
    # Steps between two label-free stopping checks (the loss plateau in both stages, the label
    # change in the clustering stage).
    check_every: int = 10
    # Label-free stop of a stage on its own loss (`loss_plateau`): at a check, the mean loss of
    # the last `plateau_window` steps has fallen from the window before by less than the
    # tolerance times its fall since the stage's first window (or has not fallen at all).
    # Relative to the stage's own progress, so one tolerance serves losses of any scale; 0: off
    # (the stage runs its full length, the clustering stage until its labels settle).
    # `plateau_tol_pretrain=None` is resolved from the target by the model layer.
    plateau_tol_pretrain: float | None = None
    plateau_tol_cluster: float = PLATEAU_TOL
    plateau_window: int = 20
    cluster_lr_scale: float = 0.1
    # "kmeans" or "leiden" seeding of the prototypes; "auto" is resolved by the model layer.
    init: str = "auto"
    # Final labels: "mixture" (a tied-covariance Gaussian mixture over the embedding, so that
    # cluster sizes and shapes are learned where cosine prototypes cannot; EM runs from each of
    # `mixture_starts` and the likeliest fit is kept) or "prototypes" (the OT head's cosine
    # prototypes).
    final_assignment: str = "mixture"
    # Where the final mixture's EM starts: any of "prototypes" (the head's labels), "leiden"
    # (Leiden communities of the embedding, k parts), "ward" (Ward's hierarchical partition of the
    # embedding, k parts: deterministic, as mclust starts EM) and "kmeans" (`mixture_kmeans_starts`
    # k-means partitions, one k-means++ draw each). None: resolved from the target by the model
    # layer (tissue domains: prototypes and Leiden; cell types: Ward).
    mixture_starts: tuple[str, ...] | None = None
    # How many k-means starts "kmeans" in `mixture_starts` stands for.
    mixture_kmeans_starts: int = 10

    def __post_init__(self):
        _check_number(self, "n_epochs_pretrain", hi=self.MAX_EPOCHS, integer=True)
        if self.n_epochs_cluster is not None:
            _check_number(self, "n_epochs_cluster", hi=self.MAX_EPOCHS, integer=True)
        for name in ("sinkhorn_iters", "check_every", "plateau_window"):
            _check_number(self, name, lo=1, integer=True)
        _check_number(self, "contrastive_max_cells", lo=1, hi=self.MAX_CONTRASTIVE_CELLS, integer=True)
        for name in ("learning_rate", "contrastive_temperature", "cluster_temperature", "sinkhorn_epsilon", "tol"):
            _check_number(self, name, lo_open=True)
        for name in (
            "weight_decay",
            "w_correlation",
            "w_reconstruction",
            "w_contrastive",
            "w_cluster",
            "w_library",
            "w_counts",
        ):
            _check_number(self, name)
        if self.w_contrastive_pretrain is not None:
            _check_number(self, "w_contrastive_pretrain")
        _check_number(self, "mixture_kmeans_starts", lo=1, integer=True)
        if self.mixture_starts is not None:
            starts = self.mixture_starts
            if isinstance(starts, str) or not isinstance(starts, list | tuple) or not starts:
                msg = f"`mixture_starts` must be a non-empty list of start names, got {starts!r}."
                raise TypeError(msg)
            unknown = [name for name in starts if name not in MIXTURE_STARTS]
            if unknown or len(set(starts)) < len(starts):
                msg = f"`mixture_starts` must list distinct names of {list(MIXTURE_STARTS)}, got {list(starts)!r}."
                raise ValueError(msg)
            object.__setattr__(self, "mixture_starts", tuple(starts))  # a list read back from JSON
        for name in ("balance", "size_momentum"):
            _check_number(self, name, hi=1.0)
        _check_number(self, "cluster_lr_scale", lo_open=True)
        _check_number(self, "plateau_tol_cluster", hi=1.0)
        if self.plateau_tol_pretrain is not None:
            _check_number(self, "plateau_tol_pretrain", hi=1.0)
        _check_choice(self, "init", ("auto", "kmeans", "leiden"))
        _check_choice(self, "final_assignment", ("mixture", "prototypes"))
