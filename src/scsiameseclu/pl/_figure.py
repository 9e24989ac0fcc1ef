"""Where a figure goes: scanpy's ``save``/``show`` conventions, and a word when a script would lose it."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

logger = logging.getLogger("scsiameseclu")


def figure_path(save, writekey: str) -> Path | None:
    """Where ``save`` asks the figure to go (scanpy's convention for ``True`` and suffixes), or ``None``.

    ``True`` writes ``{writekey}{plot_suffix}.{file_format_figs}`` in ``scanpy.settings.figdir``, a
    string without a directory part is a suffix of that name, and a path (or a string with a
    directory part) is used as it is. ``None`` follows ``scanpy.settings.autosave``.
    """
    import scanpy as sc

    save = sc.settings.autosave if save is None else save
    if save is False:
        return None
    if not isinstance(save, bool | str | os.PathLike):
        msg = f"`save` must be a bool, a str or a path, got {save!r}."
        raise TypeError(msg)
    if isinstance(save, os.PathLike) or (isinstance(save, str) and os.path.dirname(save)):
        return Path(save)
    suffix, ext = ("" if save is True else save), sc.settings.file_format_figs
    for candidate in (".svg", ".pdf", ".png"):  # the extensions scanpy recognises in a suffix
        if suffix.endswith(candidate):
            suffix, ext = suffix[: -len(candidate)], candidate[1:]
            break
    return Path(sc.settings.figdir) / f"{writekey}{suffix}{sc.settings.plot_suffix}.{ext}"


def finish_figure(fig, path: Path | None, *, show: bool | None, return_fig: bool, own_figure: bool):
    """Save ``fig`` to ``path``, show it as scanpy would, and return it when asked.

    In a script, matplotlib's non-interactive backend (Agg) makes ``plt.show()`` a silent no-op:
    a figure that is neither saved nor returned would be lost without a word, so that case is
    warned with the two ways to keep it.
    """
    import matplotlib
    import matplotlib.pyplot as plt
    import scanpy as sc

    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, bbox_inches="tight")
        logger.info("Saved the figure to %s.", path)
    if show is None:
        show = sc.settings.autoshow
    interactive = matplotlib.get_backend().lower() not in ("agg", "pdf", "ps", "svg", "cairo", "template")
    if show and not interactive and path is None and not return_fig and own_figure:
        warnings.warn(
            f"The figure is not shown: matplotlib's backend {matplotlib.get_backend()!r} cannot display "
            "it (a script without a display). Pass `save='name.png'` to write it to a file, or "
            "`return_fig=True` to get the Figure.",
            UserWarning,
            stacklevel=3,
        )
    if show:
        plt.show()
    elif path is not None and not return_fig and own_figure:
        plt.close(fig)  # written to its file; as scanpy does, do not also leave it open
    return fig if return_fig else None
