"""Pure-torch building blocks (no AnnData): augmentation, encoders, losses, Sinkhorn."""

from .. import _torch  # noqa: F401  (first: where torch is missing, says how to install it)

# First: torch_geometric without its import-time warning (see _pyg).
from . import _pyg  # noqa: F401
from ._augment import mask_features, perturb_edges
from ._config import AugmentConfig, NetworkConfig, TrainConfig
from ._encoders import ExpressionEncoder, GatedFusion, GraphEncoder, SoftmaxFusion
from ._losses import (
    contrastive_loss,
    count_loss,
    cross_correlation_loss,
    library_moment_loss,
    reconstruction_loss,
    swapped_assignment_loss,
)
from ._mixture import fit_tied_mixture, mixture_log_likelihood, mixture_posterior
from ._network import SiameseNetwork, draw_view, training_step
from ._sinkhorn import propagate, sinkhorn

__all__ = [
    "AugmentConfig",
    "ExpressionEncoder",
    "GatedFusion",
    "GraphEncoder",
    "NetworkConfig",
    "SiameseNetwork",
    "SoftmaxFusion",
    "TrainConfig",
    "contrastive_loss",
    "count_loss",
    "cross_correlation_loss",
    "draw_view",
    "fit_tied_mixture",
    "library_moment_loss",
    "mask_features",
    "mixture_log_likelihood",
    "mixture_posterior",
    "perturb_edges",
    "propagate",
    "reconstruction_loss",
    "sinkhorn",
    "swapped_assignment_loss",
    "training_step",
]
