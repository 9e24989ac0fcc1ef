"""Checks of plain arguments (numbers, names, the AnnData itself) shared by every public function."""

from __future__ import annotations

import sys
import warnings
from numbers import Integral
from pathlib import Path

from anndata import AnnData

# The checks of plain values live in `_checks` (no AnnData: the torch modules use them too); they
# are re-exported here so that every public function reads its checks from one place.
from ._checks import (  # noqa: F401
    MAX_SEED,
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_non_negative,
    check_number,
    check_seed,
)

_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside this package (the user's line).

    Public functions reach their warnings through different depths of internal calls; counting
    the frames here, rather than hard-coding a ``stacklevel`` at each warning, keeps every
    warning pointing at the user's own call.
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)


def check_adata(adata) -> None:
    """Type and size checks on ``adata`` itself."""
    if not isinstance(adata, AnnData):
        msg = f"`adata` must be an AnnData, got {type(adata).__name__}."
        raise TypeError(msg)
    if adata.n_obs < 2:
        msg = f"`adata` has {adata.n_obs} cell(s); clustering needs at least 2."
        raise ValueError(msg)


def check_target(adata, *, copy: bool) -> None:
    """:func:`check_adata`, and the warnings about writing into ``adata`` (views, duplicate names)."""
    check_adata(adata)
    if adata.is_view and not copy:
        warnings.warn(
            "Received a view of an AnnData; it will be made an actual AnnData when results are written.",
            UserWarning,
            stacklevel=4,
        )
    if not adata.obs_names.is_unique:
        warnings.warn("`adata.obs_names` are not unique; results are stored by position.", UserWarning, stacklevel=4)


def check_n_clusters(n_clusters, n_obs: int) -> int | None:
    """``None`` (estimate) or an int in ``[2, n_obs]``."""
    if n_clusters is None:
        return None
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, Integral):
        msg = f"`n_clusters` must be an int or None, got {n_clusters!r}."
        raise TypeError(msg)
    if not 2 <= n_clusters <= n_obs:
        msg = f"`n_clusters` must be between 2 and n_obs={n_obs}, got {n_clusters}."
        raise ValueError(msg)
    return int(n_clusters)


def check_key_added(key_added) -> str:
    if not isinstance(key_added, str) or not key_added:
        msg = f"`key_added` must be a non-empty string, got {key_added!r}."
        raise TypeError(msg)
    # h5ad and zarr read "/" in a key as a group separator: such a key is written without error
    # and then fails to read back, so it is refused before any work.
    if "/" in key_added:
        msg = f"`key_added` must not contain '/' (h5ad and zarr cannot read such a key back), got {key_added!r}."
        raise ValueError(msg)
    return key_added
