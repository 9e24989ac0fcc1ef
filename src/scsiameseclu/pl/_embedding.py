"""``ssc.pl.embedding``: clusters in tissue space next to a UMAP of the fused embedding."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from anndata import AnnData

from .. import _read
from .._constants import DEFAULT_KEY, SPATIAL_KEY
from .._docs import doc_params
from .._spatialdata import resolve_table
from .._verbosity import scanpy_quiet
from ._colors import figure_palettes
from ._figure import figure_path, finish_figure

if TYPE_CHECKING:
    from spatialdata import SpatialData

logger = logging.getLogger("scsiameseclu")
_WRITEKEY = "ssc_embedding"


def _umap_of(adata: AnnData, key: str, random_state: int) -> np.ndarray:
    """UMAP of ``obsm[f"X_{key}"]``, cached in ``obsm[f"X_{key}_umap"]``; never touches ``X_umap``."""
    import scanpy as sc

    cache = f"X_{key}_umap"
    if cache in adata.obsm and adata.obsm[cache].shape == (adata.n_obs, 2):
        return adata.obsm[cache]
    rep = f"X_{key}"
    tmp = AnnData(obs=adata.obs[[]].copy(), obsm={rep: adata.obsm[rep]})
    with scanpy_quiet():  # ssc's private graph, not the user's call
        sc.pp.neighbors(tmp, use_rep=rep, random_state=random_state)
        sc.tl.umap(tmp, random_state=random_state)
    return tmp.obsm["X_umap"]


@doc_params
def embedding(
    adata: AnnData | SpatialData,
    *,
    key: str = DEFAULT_KEY,
    color: str | Sequence[str] | None = None,
    spatial_key: str | None = SPATIAL_KEY,
    ax=None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    return_fig: bool = False,
    random_state: int = 0,
    table_key: str | None = None,
    **kwargs,
):
    """Plot ssc results: clusters in tissue space (if coordinates exist) and a UMAP of ``X_{key}``.

    The UMAP is computed from the fused embedding on a private neighbour graph and cached in
    ``adata.obsm[f"X_{key}_umap"]``; the user's ``X_umap`` and ``neighbors`` are not changed.

    Parameters
    ----------
    adata
        Annotated data with results of :func:`~scsiameseclu.tl.siamese_cluster`, or a
        :class:`spatialdata.SpatialData` whose table ``table_key`` holds them. The panels are
        drawn from the table (coordinates from its ``obsm[spatial_key]``, which
        ``squidpy.gr.spatial_neighbors(sdata, ...)`` fills with the element centroids);
        spatialdata-plot is not needed. To draw the labels on the shapes themselves, use e.g.
        ``sdata.pl.render_shapes(color=key)`` of spatialdata-plot.
    key
        ``key_added`` of that call.
    color
        ``obs`` column(s) or genes to colour by; default the cluster labels ``obs[key]``. With
        ``obs[key]`` and a categorical reference column (the first other one in ``color``, e.g.
        annotated layers), each cluster is drawn in the colour of the reference group it
        overlaps most (one-to-one matching of the contingency table), and clusters without a
        match in colours that no reference group uses; the reference keeps its palette
        (``adata.uns[f"{column}_colors"]`` when set, else scanpy's default). A ``palette`` in
        ``**kwargs`` turns the matching off. Colours are chosen for the figure only:
        ``adata.uns`` is not changed.
    spatial_key
        ``obsm`` key of the coordinates; ``None`` draws the UMAP only, as does the default
        ``"spatial"`` when absent (dissociated cells). Any other key must exist.
    ax
        One :class:`~matplotlib.axes.Axes` per panel (a single Axes when one panel is drawn).
    show
        Show the figure; default follows ``scanpy.settings.autoshow``.
    save
        Write the whole figure to one file. As in scanpy, ``True`` writes
        ``ssc_embedding{plot_suffix}.{file_format_figs}`` and a string such as ``"_domains.png"`` is
        a suffix of that name, both in ``scanpy.settings.figdir``; a :class:`~pathlib.Path`, or a
        string with a directory part (``"figures/domains.pdf"``, an absolute path), is written
        exactly there. Default follows ``scanpy.settings.autosave``.
    return_fig
        Return the :class:`~matplotlib.figure.Figure`.
    random_state
        Seed of the UMAP.
    {table_key}
    **kwargs
        Passed to :func:`scanpy.pl.embedding`.

    Examples
    --------
    After ``ssc.tl.siamese_cluster(adata, n_clusters=7)``; in a script, save the figure (a
    non-interactive backend shows nothing):

    >>> ssc.pl.embedding(adata, color=["ssc", "layer"], save="figures/domains.png")
    """
    import matplotlib.pyplot as plt
    import scanpy as sc

    adata = resolve_table(adata, table_key)  # a SpatialData's table: the UMAP cache goes there
    path = figure_path(save, _WRITEKEY)  # checked before any work
    rep = f"X_{key}"
    if rep not in adata.obsm:
        msg = f"`adata.obsm[{rep!r}]` not found; run `ssc.tl.siamese_cluster(adata, key_added={key!r})` first."
        raise KeyError(msg)
    colors = [key] if color is None else ([color] if isinstance(color, str) else list(color))
    for c in colors:
        if c not in adata.obs and c not in adata.var_names:
            msg = f"`color={c!r}` is neither a column of `adata.obs` nor a gene in `adata.var_names`."
            raise KeyError(msg)
    spatial = _read.check_spatial_key(adata, spatial_key, default=SPATIAL_KEY)
    bases = (["spatial"] if spatial else []) + ["umap"]
    n_panels = len(bases) * len(colors)

    if ax is None:
        # One row per colour with spatial | UMAP columns; UMAP-only panels side by side.
        n_rows, n_cols = (len(colors), len(bases)) if len(bases) > 1 else (1, len(colors))
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(5.8 * n_cols, 4.4 * n_rows), squeeze=False)
        axes = list(axes.ravel())
    else:
        axes = [ax] if not isinstance(ax, Sequence | np.ndarray) else list(np.ravel(ax))
        if len(axes) != n_panels:
            msg = f"`ax` must hold {n_panels} Axes (bases {bases} × colors {colors}), got {len(axes)}."
            raise ValueError(msg)
        fig = axes[0].figure

    # A private AnnData so that scanpy's plotting reads `X_spatial`/`X_umap` without us writing them.
    genes = [c for c in colors if c not in adata.obs]
    plot_data = AnnData(
        X=adata.X if genes else None,
        obs=adata.obs,
        var=adata.var[[]] if genes else None,
        uns={k: list(v) for k, v in adata.uns.items() if k.endswith("_colors")},  # copies: scanpy may edit them
    )
    plot_data.strings_to_categoricals()  # as scanpy would, on this private copy
    if "palette" not in kwargs:
        plot_data.uns.update(figure_palettes(plot_data.obs, plot_data.uns, key, colors))
    plot_data.obsm["X_umap"] = _umap_of(adata, key, random_state)
    adata.obsm[f"X_{key}_umap"] = plot_data.obsm["X_umap"]
    if spatial:
        plot_data.obsm["X_spatial"] = np.asarray(adata.obsm[spatial_key])[:, :2]
    i = 0
    for c in colors:
        for basis in bases:
            with warnings.catch_warnings():  # scanpy's own call of a matplotlib API it must change
                warnings.filterwarnings("ignore", "The set_bad function", PendingDeprecationWarning)
                sc.pl.embedding(
                    plot_data,
                    basis=basis,
                    color=c,
                    ax=axes[i],
                    show=False,
                    title=f"{c} ({'tissue' if basis == 'spatial' else 'UMAP of ' + rep})",
                    **kwargs,
                )
            if basis == "spatial":
                axes[i].set_aspect("equal")
                axes[i].invert_yaxis()
            i += 1
    fig.tight_layout()
    return finish_figure(fig, path, show=show, return_fig=return_fig, own_figure=ax is None)
