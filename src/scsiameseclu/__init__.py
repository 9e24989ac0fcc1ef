"""Siamese clustering of single-cell and spatial transcriptomics (scverse plugin)."""

import logging
from importlib.metadata import PackageNotFoundError, version

from . import datasets, pl, pp, tl

try:
    __version__ = version("scsiameseclu")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

logging.getLogger("scsiameseclu").addHandler(logging.NullHandler())

__all__ = ["datasets", "pl", "pp", "tl", "__version__"]
