"""Preprocessing: augmentation."""

from ._augment import augment

__all__ = ["augment"]
