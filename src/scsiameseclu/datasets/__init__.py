"""Datasets: generated locally, no download."""

from ._synthetic import synthetic_tissue

__all__ = ["synthetic_tissue"]
