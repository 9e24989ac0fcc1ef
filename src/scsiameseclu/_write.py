"""Writing results into an AnnData: everything at once, after every computation has succeeded."""

from __future__ import annotations

from anndata import AnnData


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
    leaves ``adata`` untouched. A view is made an actual AnnData first (scanpy's behaviour).
    ``drop`` names stale entries of an earlier run to remove, per slot (e.g. a plotting cache).
    """
    if copy:
        adata = adata.copy()
    elif adata.is_view:
        adata._init_as_actual(adata.copy())
    for slot, values in (("obs", obs), ("obsm", obsm), ("obsp", obsp), ("layers", layers), ("uns", uns)):
        target = getattr(adata, slot)
        for key, value in (values or {}).items():
            target[key] = value
    for slot, keys in (drop or {}).items():
        target = getattr(adata, slot)
        for key in keys:
            target.pop(key, None)
    return adata
