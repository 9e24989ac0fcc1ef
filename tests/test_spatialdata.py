"""SpatialData in and out (issue 31): the public functions take a ``SpatialData`` and a
``table_key``, read and write that table in place, keep its links to the spatial elements, and the
results survive a zarr round trip. Skipped where spatialdata is not installed."""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import assert_unchanged, make_tissue, snapshot

import scsiameseclu as ssc

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_CELLS = 240
RUN = {"n_clusters": 4, "max_epochs": 20, "show_progress_bar": False, "random_state": 0}


def build_sdata(adata, *, region="cells", table_key="table"):
    """A SpatialData of ``adata``: one circle per cell (shapes ``region``) annotated by the table."""
    gpd = pytest.importorskip("geopandas")
    sd = pytest.importorskip("spatialdata")
    from spatialdata.models import ShapesModel, TableModel

    xy = np.asarray(adata.obsm["spatial"])
    circles = gpd.GeoDataFrame(
        {"radius": np.full(adata.n_obs, 12.0)},
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
        index=pd.RangeIndex(adata.n_obs),
    )
    table = adata.copy()
    table.obs["region"] = pd.Categorical([region] * table.n_obs)
    table.obs["cell_id"] = np.arange(table.n_obs)
    table = TableModel.parse(table, region=region, region_key="region", instance_key="cell_id")
    return sd.SpatialData(shapes={region: ShapesModel.parse(circles)}, tables={table_key: table})


@pytest.fixture(scope="module")
def _base():
    pytest.importorskip("spatialdata")
    return make_tissue(N_CELLS)


@pytest.fixture
def sdata(_base):
    """Cells with expression, X_pca and the squidpy graph built on the SpatialData itself."""
    sq = pytest.importorskip("squidpy")
    adata = _base.copy()
    del adata.obsp["spatial_connectivities"], adata.obsp["spatial_distances"], adata.uns["spatial_neighbors"]
    sdata = build_sdata(adata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # squidpy reads the circle centres into the table's obsm['spatial'] and builds the graph there
        # (`spatial_neighbors_knn` from squidpy 1.8, which deprecates `spatial_neighbors`).
        build = getattr(sq.gr, "spatial_neighbors_knn", None)
        kwargs = {} if build else {"coord_type": "generic"}
        (build or sq.gr.spatial_neighbors)(
            sdata, table_key="table", elements_to_coordinate_systems={"cells": "global"}, n_neighs=6, **kwargs
        )
    return sdata


@pytest.fixture(scope="module")
def clustered(_base):
    """One clustering run on a SpatialData, shared by the tests that only read its result."""
    sd = pytest.importorskip("spatialdata")
    sdata = build_sdata(_base)
    table = sdata.tables["table"]
    ssc.tl.siamese_cluster(sdata, table_key="table", **RUN)
    assert sdata.tables["table"] is table
    return sd, sdata


def _attrs(table):
    return dict(table.uns["spatialdata_attrs"])


def test_cluster_writes_into_the_table_and_round_trips(clustered, _base, tmp_path):
    sd, sdata = clustered
    table = sdata.tables["table"]
    assert {"ssc"} <= set(table.obs) and {"X_ssc", "ssc_proba"} <= set(table.obsm) and "ssc" in table.uns
    assert _attrs(table) == {"region": "cells", "region_key": "region", "instance_key": "cell_id"}
    np.testing.assert_array_equal(table.obs["cell_id"], np.arange(N_CELLS))

    # The same seed on the plain AnnData gives the same result: the SpatialData path adds nothing.
    plain = _base.copy()
    ssc.tl.siamese_cluster(plain, **RUN)
    np.testing.assert_array_equal(plain.obs["ssc"].to_numpy(), table.obs["ssc"].to_numpy())
    np.testing.assert_array_equal(plain.obsm["X_ssc"], table.obsm["X_ssc"])

    path = tmp_path / "tissue.zarr"
    sdata.write(path)
    back = sd.read_zarr(path)
    read = back.tables["table"]
    assert read.obs["ssc"].dtype == "category"
    np.testing.assert_array_equal(read.obs["ssc"].to_numpy(), table.obs["ssc"].to_numpy())
    assert list(read.obs["ssc"].cat.categories) == list(table.obs["ssc"].cat.categories)
    for key in ("X_ssc", "ssc_proba"):
        np.testing.assert_array_equal(np.asarray(read.obsm[key]), table.obsm[key])
    assert read.uns["ssc"]["n_clusters"] == table.uns["ssc"]["n_clusters"]
    # The annotation links survive: the table still annotates every circle of "cells".
    assert _attrs(read) == _attrs(table)
    np.testing.assert_array_equal(read.obs["cell_id"], table.obs["cell_id"])
    assert (read.obs["region"] == "cells").all()
    assert len(back.shapes["cells"]) == N_CELLS
    assert set(back.shapes["cells"].index) == set(read.obs["cell_id"])


def test_graph_built_by_squidpy_on_the_spatialdata(sdata):
    table = sdata.tables["table"]
    assert "spatial_connectivities" in table.obsp
    ssc.pp.augment(sdata)  # the only table, found without table_key
    assert "ssc_augmented_connectivities" in table.obsp
    assert "ssc_augmented" in table.obsm  # the input was X_pca
    assert _attrs(table)["region"] == "cells"


def test_plot_from_the_table(clustered):
    _, sdata = clustered
    table = sdata.tables["table"]
    # A UMAP cache of the right shape is used as is: no UMAP run (and numba compile) in this test.
    cache = np.random.default_rng(0).normal(size=(table.n_obs, 2))
    table.obsm["X_ssc_umap"] = cache
    fig = ssc.pl.embedding(sdata, show=False, return_fig=True)
    titles = [ax.get_title() for ax in fig.axes]
    assert any("tissue" in t for t in titles) and any("UMAP" in t for t in titles)
    np.testing.assert_array_equal(table.obsm["X_ssc_umap"], cache)  # read from the table
    assert _attrs(table)["region"] == "cells"


def test_copy_returns_the_table_and_leaves_the_spatialdata(sdata):
    table = sdata.tables["table"]
    before = snapshot(table)
    out = ssc.pp.augment(sdata, table_key="table", copy=True)
    assert out is not table and sdata.tables["table"] is table
    assert "ssc_augmented" in out.obsm and _attrs(out) == _attrs(table)
    assert_unchanged(table, before)


def test_table_key_resolution(sdata):
    from spatialdata.models import TableModel

    other = sdata.tables["table"].copy()
    sdata.tables["other"] = TableModel.parse(other)
    table = sdata.tables["table"]
    ssc.pp.augment(sdata)  # several tables: the one called "table"
    assert "ssc_augmented" in table.obsm and "ssc_augmented" not in sdata.tables["other"].obsm
    ssc.pp.augment(sdata, table_key="other")
    assert "ssc_augmented" in sdata.tables["other"].obsm

    sdata.tables["second"] = sdata.tables.pop("table")
    with pytest.raises(KeyError, match=r"several tables.*table_key.*'other'.*'second'"):
        ssc.pp.augment(sdata)


@pytest.mark.parametrize("func", ["cluster", "augment", "embedding"])
def test_unknown_table_key_names_the_tables(sdata, func):
    call = {
        "cluster": lambda: ssc.tl.siamese_cluster(sdata, table_key="cells_table", **RUN),
        "augment": lambda: ssc.pp.augment(sdata, table_key="cells_table"),
        "embedding": lambda: ssc.pl.embedding(sdata, table_key="cells_table", show=False),
    }[func]
    before = snapshot(sdata.tables["table"])
    with pytest.raises(KeyError, match=r"table_key='cells_table'.*\['table'\]"):
        call()
    assert_unchanged(sdata.tables["table"], before)


def test_wrong_types(sdata, _base):
    with pytest.raises(TypeError, match="table_key"):
        ssc.pp.augment(sdata, table_key=1)
    with pytest.raises(TypeError, match="AnnData or a spatialdata.SpatialData"):
        ssc.pp.augment({"table": _base})
    with pytest.raises(TypeError, match="AnnData or a spatialdata.SpatialData"):
        ssc.pl.embedding("table", show=False)
    with pytest.raises(ValueError, match="table_key='table'.*AnnData"):
        ssc.tl.siamese_cluster(_base.copy(), table_key="table", **RUN)


def test_no_table():
    sd = pytest.importorskip("spatialdata")
    with pytest.raises(KeyError, match="no table"):
        ssc.pp.augment(sd.SpatialData())


@pytest.mark.parametrize("key", ["region", "cell_id", "spatialdata_attrs"])
def test_annotation_links_are_never_overwritten(sdata, monkeypatch, key):
    from scsiameseclu.model import _schedule

    monkeypatch.setattr(_schedule, "fit", lambda *a, **k: pytest.fail("training started"))
    table = sdata.tables["table"]
    before = snapshot(table)
    with pytest.raises(ValueError, match="link the table to its spatial elements"):
        ssc.tl.siamese_cluster(sdata, key_added=key, overwrite=True, **RUN)
    assert_unchanged(table, before)


def test_failure_during_training_leaves_the_spatialdata_as_it_was(sdata, monkeypatch):
    from scsiameseclu.model import _schedule

    def fail(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(_schedule, "fit", fail)
    table = sdata.tables["table"]
    before = snapshot(table)
    with pytest.raises(RuntimeError, match="interrupted"):
        ssc.tl.siamese_cluster(sdata, **RUN)
    assert sdata.tables["table"] is table and list(sdata.tables) == ["table"]
    assert_unchanged(table, before)


def test_package_imports_without_spatialdata():
    code = (
        "import sys; sys.modules['spatialdata'] = None\n"  # an import of spatialdata now fails
        "import scsiameseclu as ssc, scsiameseclu.pp, scsiameseclu.tl, scsiameseclu.pl\n"
        "from scsiameseclu._spatialdata import is_spatialdata, resolve_table\n"
        "import anndata, numpy as np\n"
        "a = anndata.AnnData(np.zeros((3, 2)))\n"
        "assert resolve_table(a, None) is a and not is_spatialdata(a)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
