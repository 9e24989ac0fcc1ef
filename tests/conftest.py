import copy
import importlib.abc
import importlib.util
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scanpy as sc
from scipy import sparse

import scsiameseclu as ssc

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FAST = {"max_epochs": 30, "show_progress_bar": False}

logging.getLogger("squidpy").setLevel(logging.ERROR)

# Test modules import this file a second time (`from conftest import ...`): the finder is registered once.
_FINDER_REGISTERED = any(getattr(f, "skips_without_torch", False) for f in sys.meta_path)
HAS_TORCH = not _FINDER_REGISTERED and importlib.util.find_spec("torch") is not None


class _SkipWithoutTorch(importlib.abc.MetaPathFinder):
    """Where torch is not installed, importing it skips the test (or test module) instead of failing it.

    CI runs the suite once more without torch on the newest Python (there its only PyPI wheel is a
    multi-GB CUDA build): the tests that import torch, directly or through ``ssc.tl``, ``ssc.pp.augment``,
    ``ssc.model`` or ``ssc.module``, are skipped there; everything else runs. With torch installed this
    finder is not registered. Subprocesses do not see it: tests that start one call ``pytest.importorskip("torch")``.
    """

    skips_without_torch = True

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            pytest.skip("needs PyTorch, which is not installed here", allow_module_level=True)
        return None


if not HAS_TORCH and not _FINDER_REGISTERED:
    sys.meta_path.insert(0, _SkipWithoutTorch())


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of many tiny runs (``pytestmark = pytest.mark.usefixtures(...)``).

    On tensors this small, intra-op threads cost far more than the work (badly so on a busy machine).
    """
    import torch

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def spatial_graph(adata):
    """squidpy's 6-NN spatial graph; where squidpy is not installed (the GPU machine), the same
    symmetrised 6-NN graph from scikit-learn."""
    try:
        import squidpy as sq
    except ImportError:
        from sklearn.neighbors import kneighbors_graph

        knn = kneighbors_graph(adata.obsm["spatial"], 6, mode="connectivity")
        adata.obsp["spatial_connectivities"] = ((knn + knn.T) > 0).astype(np.float32).tocsr()
        adata.obsp["spatial_distances"] = kneighbors_graph(adata.obsm["spatial"], 6, mode="distance").tocsr()
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6)


def make_tissue(n_obs: int):
    """Synthetic layered tissue of ``n_obs`` cells: raw counts layer, log-normalised X, X_pca, spatial graph."""
    adata = ssc.datasets.synthetic_tissue(n_obs, n_domains=4, n_genes=100, random_state=1)
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=20, random_state=0)
    spatial_graph(adata)
    return adata


@pytest.fixture(scope="session")
def _tissue():
    return make_tissue(400)


@pytest.fixture
def tissue(_tissue):
    """400 cells, 4 planted layers, log-normalised X, X_pca and a squidpy spatial graph."""
    return _tissue.copy()


@pytest.fixture
def knn(_tissue):
    """The same cells with a scanpy kNN graph only (dissociated-cell setting)."""
    adata = _tissue.copy()
    del adata.obsp["spatial_connectivities"], adata.obsp["spatial_distances"]
    sc.pp.neighbors(adata, n_neighbors=10, random_state=0)
    return adata


def snapshot(adata):
    """Deep copy of everything a call could touch."""
    return {
        "X": adata.X.copy(),
        "obs": adata.obs.copy(),
        "obsm": {k: v.copy() for k, v in adata.obsm.items()},
        "obsp": {k: v.copy() for k, v in adata.obsp.items()},
        "layers": {k: v.copy() for k, v in adata.layers.items()},
        "uns": copy.deepcopy(dict(adata.uns)),
    }


def _equal(a, b):
    if sparse.issparse(a) or sparse.issparse(b):
        if not (sparse.issparse(a) and sparse.issparse(b)) or a.shape != b.shape:
            return False
        a, b = sparse.csr_matrix(a), sparse.csr_matrix(b)
        return all(np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True) for f in ("indptr", "indices", "data"))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    return bool(a == b)


def assert_unchanged(adata, before):
    after = snapshot(adata)
    assert after["obs"].equals(before["obs"])
    for key in ("X", "obsm", "obsp", "layers", "uns"):
        assert _equal(after[key], before[key]), key


def require_shared(name):
    path = SHARED_DATA / f"{name}.h5ad"
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


# `python -m pytest -m "not slow"` is the quick check (about a minute): the unit tests of the
# building blocks, settings, install and benchmark tables. Every test in the other files trains
# the model, runs real data or executes tutorials, so it counts as slow; in the quick files, the
# few tests that do so carry `@pytest.mark.slow` themselves.
QUICK_FILES = frozenset(
    {"test_module.py", "test_settings.py", "test_install.py", "test_benchmarks.py", "test_distributed.py"}
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name not in QUICK_FILES:
            item.add_marker(pytest.mark.slow)
