"""Hyper-parameters of the network and its training, one set for every dataset."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class AugmentConfig:
    """How one stochastic view is drawn (see :func:`scsiameseclu.pp.augment`)."""

    mask_rate: float = 0.2
    noise_std: float = 0.0
    edge_drop_rate: float = 0.2
    edge_add_rate: float = 0.05
    edge_add_mode: str = "similar"

    def __post_init__(self):
        for name in ("mask_rate", "edge_drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                msg = f"`{name}` must be in [0, 1), got {value!r}."
                raise ValueError(msg)
        for name in ("noise_std", "edge_add_rate"):
            value = getattr(self, name)
            if not value >= 0.0:
                msg = f"`{name}` must be >= 0, got {value!r}."
                raise ValueError(msg)
        if self.edge_add_mode not in ("random", "similar"):
            msg = f"`edge_add_mode` must be 'random' or 'similar', got {self.edge_add_mode!r}."
            raise ValueError(msg)


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the Siamese network."""

    n_hidden: int = 64
    n_latent: int = 32
    n_gat_layers: int = 2
    gat_heads: int = 1
    n_hops: int = 0
    graph_weight: float = 0.5
    # Starting weights: "identity" (every layer starts as the identity of its input, with one
    # block of coordinates per modality when there are extra ones, see
    # `SiameseNetwork.identity_init`) or "random" (PyTorch's default initialisation, drawn from
    # `random_state`). With random weights the start decided which layer split a DLPFC run found
    # (benchmarks/results/seed_stability.md) and RNA + ADT runs spread widely over seeds
    # (benchmarks/results/multimodal.md).
    init_weights: str = "identity"
    # Widths of extra modalities (``extra_rep``), the last columns of the input; set from the data.
    extra_dims: tuple[int, ...] = ()

    def __post_init__(self):
        dims = tuple(self.extra_dims)
        if not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in dims):
            msg = f"`extra_dims` must be positive ints, got {self.extra_dims!r}."
            raise ValueError(msg)
        object.__setattr__(self, "extra_dims", dims)  # a list read back from JSON
        if self.init_weights not in ("identity", "random"):
            msg = f"`init_weights` must be 'identity' or 'random', got {self.init_weights!r}."
            raise ValueError(msg)
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

    n_epochs_pretrain: int = 150
    n_epochs_cluster: int = 100
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    w_correlation: float = 1.0
    w_reconstruction: float = 1.0
    w_contrastive: float = 0.5
    # Weight of the contrastive term in pre-training (`w_contrastive` is its weight in the
    # clustering stage). None is resolved by the model layer: `w_contrastive` for tissue domains,
    # 0 for cell types, whose unbalanced populations InfoNCE spreads over the sphere before the
    # clustering head sees them (peer table, seeds 0-4: CITE-seq PBMC 0.48 -> 0.64 ARI, CBMC
    # 0.57 -> 0.61; with it on domains, seed 0: BaristaSeq 0.66 vs 0.48, osmFISH 0.67 vs 0.53).
    w_contrastive_pretrain: float | None = None
    w_cluster: float = 0.5
    # Weight of the library term (moment matching of the embedding between libraries, with a
    # reconstruction target free of library mean shifts); acts only with a `library_key`. Off by
    # default: on two adjacent DLPFC slices it did not raise ARI (benchmarks/results/multimodal.md).
    w_library: float = 0.0
    contrastive_temperature: float = 0.5
    contrastive_max_cells: int = 1024
    cluster_temperature: float = 0.2
    sinkhorn_epsilon: float = 0.2
    sinkhorn_iters: int = 3
    balance: float = 0.1
    size_momentum: float = 0.9
    tol: float = 1e-3
    cluster_lr_scale: float = 0.1
    # "kmeans" or "leiden" seeding of the prototypes; "auto" is resolved by the model layer.
    init: str = "auto"
    # Final labels: "mixture" (a tied-covariance Gaussian mixture over the embedding, EM from the
    # head's labels and, in domain mode, from Leiden communities, the likelier fit kept; from the
    # head's labels alone it gave, over 10 seeds, +0.05 ARI on DLPFC 151673, +0.02 on 151674, equal
    # on STARmap) or "prototypes" (the OT head's cosine prototypes).
    final_assignment: str = "mixture"


def to_dict(*configs) -> dict:
    """Merge dataclass configs into one flat dict (for ``uns`` and checkpoints)."""
    out: dict = {}
    for c in configs:
        out.update(asdict(c))
    return out
