"""What ssc prints follows scanpy's verbosity; ``ssc.pl.embedding`` matches cluster colours to a reference."""

import logging
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import scsiameseclu as ssc
from scsiameseclu import _verbosity
from scsiameseclu.pl._colors import matched_palettes

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = {"n_clusters": None, "max_epochs": 4, "copy": True}  # n_clusters=None: logs the k it estimated


@pytest.fixture
def verbosity(capfd):
    """Set ``scanpy.settings.verbosity`` in a test; restored afterwards, as is scanpy's logfile.

    scanpy keeps the stderr of its import as its logfile: pointed at this test's (``capfd``'s).
    """
    before, logfile = sc.settings.verbosity, sc.settings.logfile
    sc.settings.logfile = sys.stderr
    yield lambda v: setattr(sc.settings, "verbosity", v)
    sc.settings.verbosity, sc.settings.logfile = before, logfile


def test_verbosity_0_is_silent(tissue, verbosity, capfd):
    verbosity(0)
    capfd.readouterr()
    ssc.tl.siamese_cluster(tissue, **TINY)  # show_progress_bar=None: follows the verbosity
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_verbosity_2_shows_info_and_bar(tissue, verbosity, capfd):
    verbosity(2)
    capfd.readouterr()
    ssc.tl.siamese_cluster(tissue, **TINY)
    err = capfd.readouterr().err
    assert "Estimated n_clusters=" in err  # ssc's info line, to scanpy's logfile (stderr)
    assert "ssc:" in err  # the tqdm bar
    assert "running Leiden" not in err  # scanpy's lines from ssc's inner Leiden calls stay out
    assert sc.settings.verbosity == 2  # restored after those inner calls


def test_explicit_show_progress_bar_wins(tissue, verbosity, capfd):
    verbosity(0)
    capfd.readouterr()
    ssc.tl.siamese_cluster(tissue, show_progress_bar=True, **TINY)
    err = capfd.readouterr().err
    assert "ssc:" in err and "Estimated" not in err
    verbosity(2)
    ssc.tl.siamese_cluster(tissue, show_progress_bar=False, **TINY)
    err = capfd.readouterr().err
    assert "ssc:" not in err and "Estimated n_clusters=" in err
    with pytest.raises(TypeError, match="show_progress_bar"):
        ssc.tl.siamese_cluster(tissue, show_progress_bar="yes", **TINY)


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        (0, ["error"]),
        (1, ["warning", "error"]),
        (2, ["info", "warning", "error"]),
        (3, ["debug", "info", "warning", "error"]),
    ],
)
def test_logger_levels_follow_verbosity(verbosity, capfd, level, shown):
    verbosity(level)
    log = logging.getLogger("scsiameseclu")
    capfd.readouterr()
    for name in ("debug", "info", "warning", "error"):
        getattr(log, name)("msg-%s", name)
    err = capfd.readouterr().err
    assert [n for n in ("debug", "info", "warning", "error") if f"msg-{n}" in err] == shown
    assert ("WARNING: msg-warning" in err) == ("warning" in shown)  # scanpy's layout


def test_dependency_noise_off_is_scoped():
    log = logging.getLogger("spatialdata._logging")  # squidpy's graph builders log through it
    filters, before = list(log.filters), list(warnings.filters)
    with _verbosity.dependency_noise_off():
        warnings.warn_explicit("'n_jobs' is not a valid key!", SyntaxWarning, "decorators.py", 1, module="docrep")
        assert not log.filters[-1].filter(logging.makeLogRecord({"levelno": logging.INFO}))
        with pytest.warns(FutureWarning):  # deprecations of a call still reach the caller
            warnings.warn("goes away", FutureWarning, stacklevel=1)
    assert log.filters == filters and warnings.filters == before


def test_matched_palettes_pair_overlapping_groups():
    # clusters 0..3 vs reference a, b, c: 0~b, 1~a, 2~c; cluster 3 overlaps nothing more than 1 cell
    key = pd.Categorical(["0"] * 10 + ["1"] * 10 + ["2"] * 10 + ["3"] * 3)
    ref = pd.Categorical(["b"] * 10 + ["a"] * 10 + ["c"] * 9 + ["b"] + ["a", "b", "c"])
    obs = pd.DataFrame({"ssc": key, "truth": ref})
    user = {"truth_colors": ["#ff0000", "#00ff00", "#0000ff"]}
    pal = matched_palettes(obs, user, "ssc", "truth")
    assert pal["truth_colors"] == user["truth_colors"]  # the reference keeps the user's palette
    assert pal["ssc_colors"][:3] == ["#00ff00", "#ff0000", "#0000ff"]  # b, a, c
    assert pal["ssc_colors"][3] not in pal["truth_colors"]  # unmatched: a colour of no group
    # a pair that only fills the matching is no match: cluster 1 is mostly a (taken by 0), c mostly 2
    key = pd.Categorical(["0"] * 10 + ["1"] * 9 + ["2"] * 15)
    ref = pd.Categorical(["a"] * 10 + ["a"] * 8 + ["c"] + ["b"] * 10 + ["c"] * 5)
    pal = matched_palettes(pd.DataFrame({"ssc": key, "truth": ref}), {}, "ssc", "truth")
    assert pal["ssc_colors"][0] == pal["truth_colors"][0] and pal["ssc_colors"][2] == pal["truth_colors"][1]
    assert pal["ssc_colors"][1] not in pal["truth_colors"]
    many = pd.DataFrame({"ssc": pd.Categorical(list("0123456789")), "truth": pd.Categorical(list("aabbccddee"))})
    pal = matched_palettes(many, {}, "ssc", "truth")
    assert len(set(pal["ssc_colors"])) == 10  # five matched, five in colours the reference does not use
    assert len(set(pal["ssc_colors"]) & set(pal["truth_colors"])) == 5


def test_plot_colours_match_reference_and_uns_unchanged(tissue):
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    matplotlib.use("Agg")
    ssc.tl.siamese_cluster(tissue, n_clusters=4, max_epochs=30, show_progress_bar=False)
    # The user's palettes: one too short for the clusters (scanpy would replace it), one for the truth.
    tissue.uns["ssc_colors"] = ["#111111"]
    tissue.uns["domain_colors"] = np.array(["#e41a1c", "#377eb8", "#4daf4a", "#984ea3"], dtype=object)
    before = {k: list(v) for k, v in tissue.uns.items() if k.endswith("_colors")}
    fig = ssc.pl.embedding(tissue, color=["ssc", "domain"], spatial_key=None, show=False, return_fig=True)
    assert {k: list(v) for k, v in tissue.uns.items() if k.endswith("_colors")} == before

    ax_ssc, ax_ref = (a for a in fig.axes if a.get_title())

    def colour_per_cell(ax):
        return np.array([to_hex(c, keep_alpha=False) for c in ax.collections[0].get_facecolors()])

    # scanpy draws cells in its own order on both panels (same obs, same basis): cell i <-> cell i
    ssc_cells, ref_cells = colour_per_cell(ax_ssc), colour_per_cell(ax_ref)
    table = pd.crosstab(tissue.obs["ssc"], tissue.obs["domain"])
    same = {c: ssc_cells[np.asarray(tissue.obs["ssc"] == c)][0] for c in table.index if (tissue.obs["ssc"] == c).any()}
    groups = {g: ref_cells[np.asarray(tissue.obs["domain"] == g)][0] for g in table.columns}
    assert set(groups.values()) == set(before["domain_colors"])  # the reference keeps the user's palette
    assert len(set(same.values())) == len(same)  # no two clusters share a colour
    matched = [c for c, colour in same.items() if colour in groups.values()]
    assert len(matched) >= 3  # four planted layers, four clusters: most pair up
    for c in matched:  # a cluster shares a colour only with the group that holds most of its cells
        g = next(g for g, colour in groups.items() if colour == same[c])
        assert table.loc[c, g] in (table.loc[c].max(), table[g].max())
        assert table.loc[c, g] > table.loc[c].sum() / 2  # here: planted layers, clean clusters
    plt.close(fig)
