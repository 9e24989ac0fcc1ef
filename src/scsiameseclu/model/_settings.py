"""The one home of the model's defaults: every setting and every "auto" rule, resolved once.

:class:`ModelSettings` is built once per model from the user's arguments and the kind of cell
graph, holds the three module configs in their final form, and is saved with the model. Nothing
downstream re-derives a default: training, inference, ``uns`` and the saved ``config.json`` all
read this object. ``docs/parameters.md``'s table of defaults is generated from it
(:func:`defaults_table`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from numbers import Integral

from .._defaults import (  # the per-target numbers (where docstrings read them without torch)
    GRAPH_WEIGHT_KNN,
    GRAPH_WEIGHT_SPATIAL,
    MIXTURE_STARTS_CELL_TYPES,
    MIXTURE_STARTS_DOMAINS,
    N_EPOCHS_CLUSTER_DOMAINS,
    PLATEAU_TOL,
    PLATEAU_TOL_PRETRAIN_DOMAINS,
    PRETRAIN_SHARE,
)
from ..module import AugmentConfig, NetworkConfig, TrainConfig

#: torch CPU threads for full-batch training when the user does not choose (``n_jobs=None``).
#: The network is small (a few thousand cells × 64 features per layer), so a second thread gains
#: about 1.2× on an idle 2-core machine, while on a busy one OpenMP threads spin-waiting for each
#: other made a DLPFC run 3.2× slower than idle (one thread: 2.1×, benchmarks/results/
#: busy_machine.md); one thread also keeps the result independent of the machine's core count.
FULL_BATCH_THREADS = 1

#: Largest share of a model's training genes that new cells may lack (``predict``,
#: ``get_latent_representation``): each missing gene takes its mean over the training cells.
#: Set from the measured cost in accuracy of missing genes (benchmarks/results/reuse.md).
MAX_MISSING_GENES = 0.6

DOMAINS = "domains"
CELL_TYPES = "cell types"


def from_dict(cls, values: dict, *, name: str):
    """A config dataclass ``cls`` from ``values`` (arguments, or JSON read back); unknown keys are refused."""
    if not isinstance(values, dict):
        msg = f"`{name}` must be a dict, got {type(values).__name__}."
        raise TypeError(msg)
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - valid
    if unknown:
        msg = f"`{name}` has unknown key(s) {sorted(unknown)}; valid keys: {sorted(valid)}."
        raise ValueError(msg)
    return cls(**values)


@dataclass(frozen=True)
class Limits:
    """Size thresholds: where training and inference change strategy, and subsample sizes.

    Every cost that grows faster than linearly in cells is bounded by one of these.
    """

    #: Up to this many cells, training steps take the whole graph and inference is one pass;
    #: above, steps take sampled neighbourhoods and inference runs in chunks.
    full_batch_max_cells: int = 50_000
    #: Cells (seeds with their neighbourhoods) aimed at per mini-batch step.
    target_batch_cells: int = 8_192
    #: Fewest seed cells per mini-batch step when the batch size is chosen automatically.
    min_batch_seeds: int = 32
    #: Cells embedded to seed the prototypes and choose k in mini-batch training.
    init_max_cells: int = 30_000
    #: Cells whose labels are compared for the stopping rule in mini-batch training.
    check_max_cells: int = 10_000
    #: Seed cells per chunk of chunked inference.
    inference_chunk: int = 16_384
    #: The final mixture is fitted on at most this many cells (EM costs O(N·K·d) per iteration).
    mixture_max_cells: int = 100_000
    #: Leiden communities for the mixture's second start on at most this many cells (its exact
    #: kNN graph and the bisection on the resolution dominate the cost).
    leiden_start_max_cells: int = 8_000
    #: Ward's partition for the mixture's start on at most this many cells (its memory is
    #: quadratic in cells: about 250 MB at 8,000).
    ward_start_max_cells: int = 8_000
    #: Cells sampled to estimate k when ``n_clusters=None``.
    n_clusters_max_cells: int = 50_000
    #: Cells whose partitions in augmented views give the stability curve of k (Ward's
    #: hierarchy: memory quadratic in cells, about 40 MB at 2,000).
    stability_max_cells: int = 2_000

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                msg = f"`{f.name}` must be an int >= 1, got {value!r}."
                raise ValueError(msg)


@dataclass(frozen=True)
class ModelSettings:
    """Every setting of a :class:`~scsiameseclu.model.SiameseClusterModel`, resolved.

    Built by :meth:`resolve` from the user's arguments; frozen and saved with the model.

    Attributes
    ----------
    n_clusters
        The requested k, ``None`` to estimate it after pre-training.
    graph_weight
        Prior weight of the graph branch and of neighbours in the final smoothing.
    target
        ``"domains"`` (a spatial graph weighing at least half) or ``"cell types"``; decides the
        prototype seeding (``train.init``) and the pre-training weight of the contrastive term.
    network, augment, train
        The module configs, with every ``"auto"`` / ``None`` resolved.
    limits
        Size thresholds (:class:`Limits`).
    """

    n_clusters: int | None
    graph_weight: float
    target: str
    network: NetworkConfig
    augment: AugmentConfig
    train: TrainConfig
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def resolve(
        cls,
        *,
        n_clusters: int | None,
        spatial_graph: bool,
        graph_weight: float | None = None,
        max_epochs: int | None = None,
        extra_dims: tuple[int, ...] = (),
        network_kwargs: dict | None = None,
        augment_kwargs: dict | None = None,
        train_kwargs: dict | None = None,
        limits: Limits | None = None,
    ) -> ModelSettings:
        """Apply the rules that turn the user's arguments into settings.

        - ``graph_weight=None``: :data:`GRAPH_WEIGHT_SPATIAL` on a spatial graph, else
          :data:`GRAPH_WEIGHT_KNN`.
        - The target is tissue domains on a spatial graph with ``graph_weight >= 0.5``, else cell
          types. Domains: prototypes seeded by spherical k-means (compact, similar-sized domains)
          and the contrastive term on in pre-training; cell types: Leiden communities with k
          parts (they follow the data's own population sizes) and the contrastive term only in
          the clustering stage.
        - Cell types skip the clustering stage (``n_epochs_cluster=0``): the stage's
          near-balanced transport splits large populations and merges rare ones, and the final
          mixture labels the pre-trained embedding better (``docs/method.md``).
        - The final mixture starts from :data:`MIXTURE_STARTS_DOMAINS` for tissue domains and
          from :data:`MIXTURE_STARTS_CELL_TYPES` (Ward's partition) for cell types.
        - Pre-training stops at its loss plateau for cell types (``plateau_tol_pretrain``
          :data:`PLATEAU_TOL`) and runs its full length for tissue domains
          (:data:`PLATEAU_TOL_PRETRAIN_DOMAINS`): their loss still falls at 150 steps, and
          stopping at 140 cost accuracy on DLPFC.
        - ``max_epochs`` splits into :data:`PRETRAIN_SHARE` pre-training and the rest clustering
          for tissue domains, and is all pre-training for cell types.
        """
        from .._validation import check_fraction, check_int

        if graph_weight is None:
            graph_weight = GRAPH_WEIGHT_SPATIAL if spatial_graph else GRAPH_WEIGHT_KNN
        graph_weight = check_fraction("graph_weight", graph_weight, upper_open=False)
        network_kwargs, train_kwargs = dict(network_kwargs or {}), dict(train_kwargs or {})
        for key, instead in (("graph_weight", "graph_weight"), ("extra_dims", "extra_rep")):
            if key in network_kwargs:
                msg = f"`network_kwargs[{key!r}]` is set from the arguments; pass `{instead}` instead."
                raise ValueError(msg)
        target = DOMAINS if spatial_graph and graph_weight >= 0.5 else CELL_TYPES
        if max_epochs is not None:
            max_epochs = check_int("max_epochs", max_epochs, 2)
            if max_epochs > TrainConfig.MAX_EPOCHS:
                msg = f"`max_epochs` must be at most {TrainConfig.MAX_EPOCHS:,}, got {max_epochs!r}."
                raise ValueError(msg)
            for key in ("n_epochs_pretrain", "n_epochs_cluster"):
                if key in train_kwargs:
                    msg = f"Pass either `max_epochs` or `train_kwargs[{key!r}]`, not both."
                    raise ValueError(msg)
            n_pre = int(round(PRETRAIN_SHARE * max_epochs)) if target == DOMAINS else max_epochs
            train_kwargs.update(n_epochs_pretrain=n_pre, n_epochs_cluster=max_epochs - n_pre)
        network = from_dict(NetworkConfig, {**network_kwargs, "graph_weight": graph_weight}, name="network_kwargs")
        network = replace(network, extra_dims=tuple(extra_dims))
        augment = from_dict(AugmentConfig, dict(augment_kwargs or {}), name="augment_kwargs")
        train = from_dict(TrainConfig, train_kwargs, name="train_kwargs")
        if train.init == "auto":
            train = replace(train, init="kmeans" if target == DOMAINS else "leiden")
        if train.w_contrastive_pretrain is None:
            train = replace(train, w_contrastive_pretrain=train.w_contrastive if target == DOMAINS else 0.0)
        if train.n_epochs_cluster is None:
            train = replace(train, n_epochs_cluster=N_EPOCHS_CLUSTER_DOMAINS if target == DOMAINS else 0)
        if train.plateau_tol_pretrain is None:
            tol = PLATEAU_TOL_PRETRAIN_DOMAINS if target == DOMAINS else PLATEAU_TOL
            train = replace(train, plateau_tol_pretrain=tol)
        if train.mixture_starts is None:
            starts = MIXTURE_STARTS_DOMAINS if target == DOMAINS else MIXTURE_STARTS_CELL_TYPES
            train = replace(train, mixture_starts=starts)
        return cls(n_clusters, graph_weight, target, network, augment, train, limits or Limits())

    def minibatch(self, n_obs: int, batch_size: int | None) -> bool:
        """Train on sampled neighbourhoods: a ``batch_size`` was given or the data is large."""
        return batch_size is not None or n_obs > self.limits.full_batch_max_cells

    def n_threads(self, n_obs: int, batch_size: int | None, n_jobs: int | None) -> int:
        """CPU threads of torch during training.

        ``n_jobs`` if given, else :data:`FULL_BATCH_THREADS` for full-batch training and torch's
        current setting for mini-batches.
        """
        import torch

        if n_jobs is not None:
            return n_jobs
        return torch.get_num_threads() if self.minibatch(n_obs, batch_size) else FULL_BATCH_THREADS

    def chunked_inference(self, n_obs: int) -> bool:
        """Embed in chunks on neighbourhood subgraphs (exact) rather than in one pass."""
        return n_obs > self.limits.full_batch_max_cells

    def to_dict(self) -> dict:
        """JSON-serialisable form (for ``config.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelSettings:
        """Settings read back from :meth:`to_dict`; every field is validated again."""
        if not isinstance(values, dict):
            msg = f"`settings` must be a dict, got {type(values).__name__}."
            raise TypeError(msg)
        valid = {f.name for f in dataclasses.fields(cls)}
        if set(values) != valid:
            msg = f"`settings` must have exactly the keys {sorted(valid)}, got {sorted(values)}."
            raise ValueError(msg)
        from .._validation import check_fraction, check_n_clusters

        n_clusters = values["n_clusters"]
        if n_clusters is not None:
            n_clusters = check_n_clusters(n_clusters, n_clusters)
        if values["target"] not in (DOMAINS, CELL_TYPES):
            msg = f"`settings['target']` must be {DOMAINS!r} or {CELL_TYPES!r}, got {values['target']!r}."
            raise ValueError(msg)
        return cls(
            n_clusters=n_clusters,
            graph_weight=check_fraction("graph_weight", values["graph_weight"], upper_open=False),
            target=values["target"],
            network=from_dict(NetworkConfig, values["network"], name="network"),
            augment=from_dict(AugmentConfig, values["augment"], name="augment"),
            train=from_dict(TrainConfig, _train_fields(values["train"], values["target"]), name="train"),
            limits=from_dict(Limits, values["limits"], name="limits"),
        )

    def params(self) -> dict:
        """Every setting, flat (for ``uns``): the configs' fields, ``graph_weight`` and the target."""
        flat = {"n_clusters": self.n_clusters, "target": self.target}
        for config in (self.network, self.augment, self.train):
            flat.update(dataclasses.asdict(config))
        # Tuples cannot be written to h5ad.
        flat["extra_dims"] = list(self.network.extra_dims)
        flat["mixture_starts"] = list(self.train.mixture_starts or ())
        return flat


def _train_fields(train, target: str):
    """A saved ``train`` config in today's fields, with the schedule it was trained with.

    Saves from before ``mixture_starts`` keep their starts; saves from before the label-free
    plateau stop ran every stage its full length (both tolerances 0).
    """
    if not isinstance(train, dict):
        return train
    train = dict(train)
    if "mixture_starts" not in train:
        n_kmeans = train.get("mixture_kmeans_starts") or 0
        if n_kmeans:
            train["mixture_starts"] = ["prototypes", "kmeans"]
        else:
            train["mixture_starts"] = list(MIXTURE_STARTS_DOMAINS) if target == DOMAINS else ["prototypes"]
            train["mixture_kmeans_starts"] = TrainConfig().mixture_kmeans_starts
    if not {"plateau_tol_pretrain", "plateau_tol_cluster", "plateau_window"} & set(train):
        train.update(plateau_tol_pretrain=0.0, plateau_tol_cluster=0.0)
    return train


def defaults_table(symbols: dict[str, str] | None = None) -> str:
    """Markdown table of every default: the auto rules, the module configs and the limits.

    ``symbols`` maps setting names to the symbols the method's description uses (a column).
    """
    symbols = symbols or {}
    rows = ["| setting | symbol | default | where |", "|---|---|---|---|"]

    def row(name: str, default: str, where: str) -> None:
        rows.append(f"| `{name}` | {symbols.get(name, '')} | {default} | {where} |")

    row("graph_weight", f"{GRAPH_WEIGHT_SPATIAL} on a spatial graph, {GRAPH_WEIGHT_KNN} otherwise", "argument")
    row(
        "max_epochs",
        f"tissue domains: {PRETRAIN_SHARE:.0%} pre-training, the rest clustering; cell types: all pre-training",
        "argument",
    )
    auto = {
        "init": "`'kmeans'` for tissue domains, `'leiden'` for cell types",
        "w_contrastive_pretrain": "`w_contrastive` for tissue domains, 0 for cell types",
        "n_epochs_cluster": f"{N_EPOCHS_CLUSTER_DOMAINS} for tissue domains, 0 for cell types",
        "plateau_tol_pretrain": f"{PLATEAU_TOL_PRETRAIN_DOMAINS} (off) for tissue domains, {PLATEAU_TOL} for cell types",
        "mixture_starts": f"`{MIXTURE_STARTS_DOMAINS!r}` for tissue domains, `{MIXTURE_STARTS_CELL_TYPES!r}` for cell types",
        "graph_weight": "from the argument `graph_weight`",
        "extra_dims": "from `extra_rep`",
    }
    for cls, where in (
        (AugmentConfig, "augment_kwargs"),
        (NetworkConfig, "network_kwargs"),
        (TrainConfig, "train_kwargs"),
    ):
        config = cls()
        for f in dataclasses.fields(cls):
            row(f.name, auto.get(f.name, f"`{getattr(config, f.name)!r}`"), f"`{where}` (`{cls.__name__}`)")
    limits = Limits()
    for f in dataclasses.fields(Limits):
        row(f.name, f"{getattr(limits, f.name):,}", "`Limits`")
    return "\n".join(rows)
