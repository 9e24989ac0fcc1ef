"""Datasets: public data with their annotation (downloaded once, cached), and a local generator."""

from ._dlpfc import dlpfc
from ._synthetic import synthetic_tissue

__all__ = ["dlpfc", "synthetic_tissue"]
