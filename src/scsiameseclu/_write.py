"""Writing results into an AnnData: checked before any work, written all at once or not at all.

Two rules protect the user's data:

- :func:`check_outputs` runs before any computation. The entries a call would write (or drop as
  stale) may replace only an earlier result of the same ssc function under the same
  ``key_added`` (said with a warning); anything else that exists there (``X_pca``, ``spatial``,
  ``neighbors``, another tool's keys, the inputs being read) is refused unless the user passes
  ``overwrite=True``.
- :func:`write_results` writes every entry after every result is computed and restores what was
  there if a write fails or is interrupted halfway.

A table of a SpatialData is written in place like any AnnData; its annotation links
(``uns['spatialdata_attrs']`` and the region and instance columns) are never replaced.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from anndata import AnnData

from . import _validation as val
from ._spatialdata import check_links

_SLOTS = ("obs", "obsm", "obsp", "layers", "uns")
_MISSING = object()


def _names(entries) -> str:
    return ", ".join(f"adata.{slot}[{key!r}]" for slot, key in entries)


def check_outputs(
    adata: AnnData,
    key_added: str,
    targets: Mapping[str, tuple[str, ...]],
    *,
    record_fields: frozenset[str],
    overwrite: bool,
    function: str,
) -> None:
    """Refuse, before any work, to replace entries that ssc did not write.

    Parameters
    ----------
    targets
        Per slot, every key the call writes or drops.
    record_fields
        Fields that every ``uns[key_added]`` record of ``function`` has had, in every version: an
        ``uns[key_added]`` holding them is an earlier result of ``function``, whose entries may
        be replaced.
    overwrite
        The user's explicit permission to replace entries ssc did not write.
    """
    val.check_bool("overwrite", overwrite)
    check_links(adata, targets)  # a SpatialData table's links to its elements: never replaced
    found = [(slot, key) for slot, keys in targets.items() for key in keys if key in getattr(adata, slot)]
    if not found:
        return
    record = adata.uns.get(key_added)
    if isinstance(record, Mapping) and record_fields <= set(record):
        warnings.warn(
            f"Replacing the earlier result of `{function}` with key_added={key_added!r} ({_names(found)}).",
            UserWarning,
            stacklevel=3,
        )
        return
    if overwrite:
        warnings.warn(f"Overwriting {_names(found)} (overwrite=True).", UserWarning, stacklevel=3)
        return
    msg = (
        f"`key_added={key_added!r}` would overwrite {_names(found)}, which ssc did not write. Choose another "
        "`key_added`, or pass `overwrite=True` to replace them."
    )
    raise ValueError(msg)


def write_results(
    adata: AnnData,
    *,
    copy: bool,
    obs: dict | None = None,
    obsm: dict | None = None,
    obsp: dict | None = None,
    layers: dict | None = None,
    uns: dict | None = None,
    drop: dict[str, tuple[str, ...]] | None = None,
) -> AnnData:
    """Write results into ``adata`` (or a copy) and return the object written to.

    Called once per public function, when every result is computed, so that a failure earlier
    leaves ``adata`` untouched; a failure or interrupt between two writes puts back every entry
    already written. A view is made an actual AnnData first (scanpy's behaviour). ``drop`` names
    stale entries of an earlier run to remove, per slot (e.g. a plotting cache).
    """
    if copy:
        adata = adata.copy()
    elif adata.is_view:
        adata._init_as_actual(adata.copy())
    values = {"obs": obs, "obsm": obsm, "obsp": obsp, "layers": layers, "uns": uns}
    done: list[tuple[str, str, object]] = []  # (slot, key, previous value) of each entry changed
    try:
        for slot in _SLOTS:
            target = getattr(adata, slot)
            for key, value in (values[slot] or {}).items():
                done.append((slot, key, target[key] if key in target else _MISSING))
                target[key] = value
        for slot, keys in (drop or {}).items():
            target = getattr(adata, slot)
            for key in keys:
                if key in target:
                    done.append((slot, key, target[key]))
                    del target[key]
    except BaseException:
        _restore(adata, done)
        raise
    return adata


def _restore(adata: AnnData, done: list[tuple[str, str, object]]) -> None:
    """Put back, newest first, the entries :func:`write_results` changed."""
    for slot, key, previous in reversed(done):
        target = getattr(adata, slot)
        if previous is _MISSING:
            if key in target:
                del target[key]
        elif slot == "obs":  # by position: obs_names need not be unique
            target[key] = previous.array
        else:
            target[key] = previous
