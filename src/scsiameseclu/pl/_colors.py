"""Colours of ``ssc.pl.embedding``: each cluster takes the colour of the reference group it overlaps most."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def _hex(color) -> str:
    from matplotlib.colors import to_hex

    return to_hex(color, keep_alpha=False).lower()


def default_palette(n: int) -> list[str]:
    """The default colours of scanpy for ``n`` categories (matplotlib's cycle, then its 20-, 28-, 102-colour palettes)."""
    from matplotlib import rcParams
    from scanpy.plotting import palettes

    cycle = rcParams["axes.prop_cycle"].by_key().get("color", [])
    for palette in (cycle, palettes.default_20, palettes.default_28, palettes.default_102):
        if len(palette) >= n:
            return [_hex(c) for c in palette[:n]]
    return ["#808080"] * n  # as scanpy: grey beyond 102 categories


def palette_of(uns: Mapping, key: str, n: int) -> list[str]:
    """The colours scanpy draws a categorical ``obs[key]`` with: ``uns[f"{key}_colors"]`` when it fits."""
    from matplotlib.colors import is_color_like

    colors = uns.get(f"{key}_colors")
    if colors is not None and len(colors) >= n and all(is_color_like(c) for c in colors):
        return [_hex(c) for c in list(colors)[:n]]
    return default_palette(n)


def _spare_colors(used: set[str]) -> list[str]:
    """Colours of scanpy's palettes that ``used`` does not hold, in palette order."""
    from scanpy.plotting import palettes

    spare = []
    for c in [*palettes.default_20, *palettes.default_28, *palettes.default_102]:
        h = _hex(c)
        if h not in used and h not in spare:
            spare.append(h)
    return spare


def matched_palettes(obs: pd.DataFrame, uns: Mapping, key: str, reference: str) -> dict[str, list[str]]:
    """Palettes of ``obs[key]`` (clusters) and ``obs[reference]`` (both categorical) that agree.

    The reference keeps its palette (:func:`palette_of`). Clusters and reference groups are paired
    one-to-one by the largest total overlap (Hungarian matching of the contingency table); a pair
    counts when the group is the cluster's best-overlapping group or the cluster the group's, and
    its cluster takes the group's colour. Any other cluster (more clusters than groups, or a pair
    that only fills the matching) takes a colour that no reference group uses. Returns the two
    ``uns`` entries.
    """
    from scipy.optimize import linear_sum_assignment

    clusters, groups = obs[key].cat, obs[reference].cat
    ref_colors = palette_of(uns, reference, len(groups.categories))
    codes = np.column_stack([clusters.codes.to_numpy(), groups.codes.to_numpy()])
    codes = codes[(codes >= 0).all(1)]  # cells without a label in either column do not count
    table = np.zeros((len(clusters.categories), len(groups.categories)), dtype=np.int64)
    np.add.at(table, (codes[:, 0], codes[:, 1]), 1)
    key_colors: list[str | None] = [None] * table.shape[0]
    for i, j in zip(*linear_sum_assignment(table, maximize=True), strict=True):
        if table[i, j] > 0 and table[i, j] in (table[i].max(), table[:, j].max()):
            key_colors[i] = ref_colors[j]
    spare = iter(_spare_colors(set(ref_colors)))
    key_colors = [c if c is not None else next(spare, "#808080") for c in key_colors]
    return {f"{key}_colors": key_colors, f"{reference}_colors": ref_colors}


def figure_palettes(obs: pd.DataFrame, uns: Mapping, key: str, colors: list[str]) -> dict[str, list[str]]:
    """The matched palettes when ``colors`` draws the clusters ``obs[key]`` next to a categorical reference.

    The reference is the first other categorical column of ``colors``; ``{}`` when there is none.
    """
    if key not in colors or not isinstance(obs.get(key, pd.Series(dtype=float)).dtype, pd.CategoricalDtype):
        return {}
    for c in colors:
        if c != key and c in obs and isinstance(obs[c].dtype, pd.CategoricalDtype):
            return matched_palettes(obs, uns, key, c)
    return {}
