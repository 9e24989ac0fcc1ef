"""AnnData-facing model layer: settings, input spec, training and reuse of a trained model."""

from .. import _torch  # noqa: F401  (first: where torch is missing, says how to install it)
from ._input import InputSpec, ModalitySpec, Projection
from ._model import ClusterResults, FitState, SiameseClusterModel
from ._n_clusters import estimate_n_clusters
from ._settings import Limits, ModelSettings, defaults_table

__all__ = [
    "ClusterResults",
    "FitState",
    "InputSpec",
    "Limits",
    "ModalitySpec",
    "ModelSettings",
    "Projection",
    "SiameseClusterModel",
    "defaults_table",
    "estimate_n_clusters",
]
