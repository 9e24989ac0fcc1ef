"""SpatialData input: the table that ``pp.augment``, ``tl.siamese_cluster`` and ``pl.embedding`` work on.

A :class:`spatialdata.SpatialData` holds its cells' measurements in tables (AnnData objects in
``sdata.tables``) that annotate spatial elements (shapes, points, labels) through
``table.uns['spatialdata_attrs']``: the annotated element(s) (``region``), the ``obs`` column naming
each row's element (``region_key``) and the ``obs`` column with each row's id in it
(``instance_key``). The public functions resolve the table once with :func:`resolve_table`, then
read and write that AnnData object itself, so the results land in the SpatialData; the annotation
links are never written (:func:`check_links`).

spatialdata is optional: it is never imported here. An object can only be a ``SpatialData`` if
spatialdata was imported to build or read it, so the check looks it up in ``sys.modules``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from anndata import AnnData

#: The table used when a SpatialData holds several and ``table_key`` is not given (spatialdata-io's name).
DEFAULT_TABLE = "table"
#: Where spatialdata keeps a table's annotation links (``TableModel.ATTRS_KEY``).
ATTRS_KEY = "spatialdata_attrs"


def is_spatialdata(data) -> bool:
    """Whether ``data`` is a :class:`spatialdata.SpatialData` (without importing spatialdata)."""
    sd = sys.modules.get("spatialdata")
    return sd is not None and isinstance(data, sd.SpatialData)


def resolve_table(data, table_key: str | None) -> AnnData:
    """The AnnData to read and write: ``data`` itself, or the table ``table_key`` of a SpatialData.

    Parameters
    ----------
    data
        An :class:`~anndata.AnnData` or a :class:`spatialdata.SpatialData`.
    table_key
        Key of the table in ``data.tables``. ``None``: the only table, else ``"table"``. Must be
        ``None`` for an AnnData.

    Returns
    -------
    The table object stored in the SpatialData (not a copy), or ``data``.
    """
    if table_key is not None and not isinstance(table_key, str):
        msg = f"`table_key` must be a string or None, got {table_key!r}."
        raise TypeError(msg)
    if not is_spatialdata(data):
        if not isinstance(data, AnnData):
            msg = f"`adata` must be an AnnData or a spatialdata.SpatialData, got {type(data).__name__}."
            raise TypeError(msg)
        if table_key is not None:
            msg = (
                f"`table_key={table_key!r}` names a table of a spatialdata.SpatialData; `adata` is an AnnData, "
                "so leave `table_key=None`."
            )
            raise ValueError(msg)
        return data
    tables = data.tables
    names = list(tables.keys())
    if table_key is None:
        if len(names) == 1:
            table_key = names[0]
        elif DEFAULT_TABLE in names:
            table_key = DEFAULT_TABLE
        elif not names:
            msg = "The SpatialData has no table; add one (`sdata.tables['table'] = TableModel.parse(adata, ...)`)."
            raise KeyError(msg)
        else:
            msg = f"The SpatialData has several tables and none is called {DEFAULT_TABLE!r}; pass `table_key`, one of {names}."
            raise KeyError(msg)
    if table_key not in tables:
        msg = f"`table_key={table_key!r}` is not a table of the SpatialData; its tables: {names}."
        raise KeyError(msg)
    table = tables[table_key]
    if not isinstance(table, AnnData):  # spatialdata validates tables; guard against a stand-in
        msg = f"`sdata.tables[{table_key!r}]` must be an AnnData, got {type(table).__name__}."
        raise TypeError(msg)
    return table


def links(table: AnnData) -> list[tuple[str, str]]:
    """The entries that link ``table`` to its spatial elements, as ``(slot, key)``; empty when it has none."""
    attrs = table.uns.get(ATTRS_KEY)
    if not isinstance(attrs, Mapping):
        return []
    found = [("uns", ATTRS_KEY)]
    for field in ("region_key", "instance_key"):
        column = attrs.get(field)
        if isinstance(column, str):
            found.append(("obs", column))
    return found


def check_links(table: AnnData, targets: Mapping[str, tuple[str, ...]]) -> None:
    """Refuse, even with ``overwrite=True``, to write over a table's annotation links.

    Replacing ``uns['spatialdata_attrs']`` or the region/instance columns would silently detach
    the table from its shapes, points or labels.
    """
    protected = links(table)
    hit = [(slot, key) for slot, key in protected if key in targets.get(slot, ())]
    if hit:
        names = ", ".join(f"adata.{slot}[{key!r}]" for slot, key in hit)
        msg = (
            f"This call would overwrite {names}, which link the table to its spatial elements "
            f"(uns[{ATTRS_KEY!r}]); choose another `key_added` (`overwrite=True` does not apply to these)."
        )
        raise ValueError(msg)
