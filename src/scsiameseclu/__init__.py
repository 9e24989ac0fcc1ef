"""Siamese clustering of single-cell and spatial transcriptomics (scverse plugin)."""

from importlib.metadata import PackageNotFoundError, version

from . import _verbosity, datasets, pl, pp, tl

try:
    __version__ = version("scsiameseclu")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

_verbosity.configure_logger()  # follows scanpy.settings.verbosity (see _verbosity)

__all__ = ["datasets", "model", "module", "pl", "pp", "tl", "__version__"]


def __getattr__(name: str):
    # `ssc.model` and `ssc.module` import torch: loaded on first use, not by `import scsiameseclu`.
    if name in ("model", "module"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
