"""``ssc.pl.n_clusters``: the evidence behind ``n_clusters=None``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from anndata import AnnData

from .._constants import DEFAULT_KEY
from .._defaults import N_CLUSTERS_RESOLUTION
from .._docs import doc_params
from .._spatialdata import resolve_table
from ._figure import figure_path, finish_figure

if TYPE_CHECKING:
    from spatialdata import SpatialData

_WRITEKEY = "ssc_n_clusters"


@doc_params
def n_clusters(
    adata: AnnData | SpatialData,
    *,
    key: str = DEFAULT_KEY,
    ax=None,
    show: bool | None = None,
    save=None,
    return_fig: bool = False,
    table_key: str | None = None,
):
    """Plot how k was chosen: view agreement per candidate k, and Leiden counts per resolution.

    Left: for each candidate k, how much the partitions of augmented views of the data agree
    (mean adjusted Rand index of their Ward partitions; ``uns[key]['n_clusters_stability']``).
    Right: the number of Leiden communities of the pre-trained embedding at each resolution
    (``uns[key]['n_clusters_by_resolution']``); k is the count at the dotted resolution. The chosen k is
    marked on both.

    How to read it: coarse partitions agree more than fine ones, so the curve tends to fall with
    k; what matters is where it drops. A chosen k on a plateau, before a drop, is supported by
    the data; a chosen k just after a steep drop splits a population that the views do not
    split consistently, and the k before the drop is worth a run. Prior knowledge (the cell
    types or layers you expect) wins over both: pass ``n_clusters`` explicitly.

    Parameters
    ----------
    adata
        Annotated data with the results of ``ssc.tl.siamese_cluster(adata, n_clusters=None)``,
        or a :class:`spatialdata.SpatialData` whose table ``table_key`` holds them.
    key
        ``key_added`` of that call.
    ax
        Two :class:`~matplotlib.axes.Axes` (stability, resolution); ``None`` makes a figure.
    show
        Show the figure; default follows ``scanpy.settings.autoshow``.
    save
        Write the figure to a file, as :func:`scsiameseclu.pl.embedding` does (``True``,
        a suffix, or a path).
    return_fig
        Return the :class:`~matplotlib.figure.Figure`.
    {table_key}

    Examples
    --------
    >>> ssc.tl.siamese_cluster(adata, n_clusters=None)
    >>> ssc.pl.n_clusters(adata, save="n_clusters.png")
    """
    import matplotlib.pyplot as plt

    adata = resolve_table(adata, table_key)
    path = figure_path(save, _WRITEKEY)  # checked before any work
    if key not in adata.uns or "n_clusters" not in adata.uns[key]:
        msg = f"`adata.uns[{key!r}]` holds no ssc result; run `ssc.tl.siamese_cluster(adata, key_added={key!r})` first."
        raise KeyError(msg)
    record = adata.uns[key]
    curve = {int(k): float(v) for k, v in dict(record.get("n_clusters_stability", {})).items()}
    if not curve:
        msg = (
            f"`adata.uns[{key!r}]` has no stability curve: k was given. Run "
            "`ssc.tl.siamese_cluster(adata, n_clusters=None)` to choose k and record its curve."
        )
        raise ValueError(msg)
    k = int(record["n_clusters"])
    by_resolution = {float(r): int(c) for r, c in dict(record.get("n_clusters_by_resolution", {})).items()}

    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6))
    else:
        axes = list(np.ravel(ax))
        if len(axes) != 2:
            msg = f"`ax` must hold 2 Axes (stability, resolution), got {len(axes)}."
            raise ValueError(msg)
        fig = axes[0].figure
    ks = sorted(curve)
    axes[0].plot(ks, [curve[c] for c in ks], marker="o", color="0.3", lw=1.2, ms=4)
    if k in curve:
        axes[0].plot([k], [curve[k]], marker="o", color="C3", ms=9, zorder=3, label=f"chosen k = {k}")
        axes[0].legend(frameon=False)
    axes[0].axvline(k, color="C3", lw=0.8, ls="--")
    axes[0].set(xlabel="k", ylabel="agreement of views (ARI)", title="Stability of k")
    axes[0].set_xticks(ks[:: -(-len(ks) // 10)])  # at most about ten ticks
    if by_resolution:
        res = sorted(by_resolution)
        axes[1].plot(res, [by_resolution[r] for r in res], marker="o", color="0.3", lw=1.2, ms=4)
        axes[1].axhline(k, color="C3", lw=0.8, ls="--")
        axes[1].axvline(N_CLUSTERS_RESOLUTION, color="C3", lw=0.8, ls=":")
        axes[1].set(xscale="log", xlabel="Leiden resolution", ylabel="communities", title="Communities by resolution")
    else:
        axes[1].set_axis_off()
    fig.tight_layout()
    return finish_figure(fig, path, show=show, return_fig=return_fig, own_figure=ax is None)
