"""Property tests: random small AnnData → a documented error (adata untouched) or labels for every cell."""

import warnings

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from conftest import _equal, assert_unchanged, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

import scsiameseclu as ssc

DTYPES = [np.int32, np.int64, np.float32, np.float64]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@st.composite
def cases(draw):
    """An AnnData with a graph in ``obsp``, the call's arguments, and the reason it must fail (or None)."""
    n_obs = draw(st.integers(20, 80))
    n_vars = draw(st.integers(5, 30))
    layout = draw(st.sampled_from(["dense", "csr", "csc"]))
    dtype = draw(st.sampled_from(DTYPES))
    density = draw(st.floats(0.05, 1.0))
    # Each defect is drawn with probability ~1/10, so that about half of the cases are valid.
    n_empty_cells = draw(st.sampled_from([0] * 9 + [1, 3]))
    defect = draw(st.sampled_from([None] * 16 + ["negative", "nan"]))
    graph_kind = draw(st.sampled_from(["symmetric", "asymmetric"] * 5 + ["empty"]))
    n_neighbours = draw(st.integers(1, 8))
    n_isolated = draw(st.sampled_from([0, 0, 1, 5]))
    self_loops = draw(st.booleans())
    negative_weight = draw(st.integers(0, 9)) == 0
    graph_key = draw(st.sampled_from(["spatial_connectivities", "connectivities"]))
    n_clusters = draw(
        st.one_of(
            st.none(),
            st.integers(2, 12),
            st.integers(2, 12),
            st.integers(2, 12),
            st.sampled_from([-1, 0, 1, n_obs, n_obs + 1, 2.5, True]),
        )
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    x = rng.poisson(rng.gamma(1.0, 2.0, size=n_vars), size=(n_obs, n_vars)) * (rng.random((n_obs, n_vars)) < density)
    x[:, 0] += 1  # every cell has signal unless emptied below
    if np.issubdtype(dtype, np.floating):
        x = np.log1p(x * rng.lognormal(0, 0.3, size=(n_obs, 1)))
    x[rng.choice(n_obs, n_empty_cells, replace=False)] = 0
    x = x.astype(dtype)
    if defect == "negative":
        x[rng.integers(n_obs), rng.integers(n_vars)] = -3
    if defect == "nan" and np.issubdtype(dtype, np.floating):
        x[rng.integers(n_obs), rng.integers(n_vars)] = np.nan
    x = {"dense": x, "csr": sparse.csr_matrix(x), "csc": sparse.csc_matrix(x)}[layout]

    rows = np.repeat(np.arange(n_obs), n_neighbours)
    cols = rng.integers(0, n_obs, size=rows.size)
    graph = sparse.csr_matrix((rng.uniform(0.1, 1.0, rows.size), (rows, cols)), shape=(n_obs, n_obs))
    if graph_kind == "symmetric":
        graph = graph.maximum(graph.T)
    graph = graph.tolil()
    if graph_kind == "empty":
        graph[:, :] = 0
    isolated = rng.choice(n_obs, n_isolated, replace=False)
    graph[isolated, :] = 0
    graph[:, isolated] = 0
    if self_loops:
        graph.setdiag(1.0)
    graph = graph.tocsr()
    graph.eliminate_zeros()
    if negative_weight and graph.nnz:
        graph.data[0] = -graph.data[0]

    adata = AnnData(
        X=x,
        obs=pd.DataFrame(index=[f"c{i}" for i in range(n_obs)]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(n_vars)]),
    )
    adata.obsp[graph_key] = graph

    off_diagonal = graph - sparse.diags(graph.diagonal())
    off_diagonal.eliminate_zeros()
    dense = x.toarray() if sparse.issparse(x) else x
    reasons = [
        n_clusters is not None
        and (isinstance(n_clusters, bool) or not isinstance(n_clusters, int) or not 2 <= n_clusters <= n_obs),
        n_empty_cells > 0 or (np.abs(np.nan_to_num(dense)).sum(1) == 0).any(),
        defect == "negative" and np.issubdtype(dtype, np.integer),
        defect == "nan" and np.issubdtype(dtype, np.floating),
        off_diagonal.nnz == 0,
        negative_weight and graph.nnz > 0,
    ]
    return adata, n_clusters, any(reasons)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_random_anndata(case):
    adata, n_clusters, must_fail = case
    before = snapshot(adata)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # isolated cells
            # k-means seeding: the Leiden path only sees the learnt embedding, never these inputs,
            # and its first call compiles numba code for ~20 s.
            ssc.tl.siamese_cluster(
                adata,
                n_clusters,
                use_rep="X",
                max_epochs=4,
                random_state=0,
                train_kwargs={"init": "kmeans"},
                show_progress_bar=False,
            )
    except (KeyError, TypeError, ValueError) as err:
        assert_unchanged(adata, before)
        assert must_fail, f"valid input rejected: {err}"
        return
    assert not must_fail, "invalid input was accepted"
    labels = adata.obs["ssc"]
    assert labels.shape == (adata.n_obs,) and labels.notna().all()
    k = adata.uns["ssc"]["n_clusters"]
    assert 1 <= labels.nunique() == k <= (n_clusters or 20)
    assert adata.obsm["X_ssc"].shape[0] == adata.n_obs
    assert adata.obsm["ssc_proba"].shape == (adata.n_obs, k)
    after = snapshot(adata)
    for key in ("X", "obsp", "layers"):  # inputs, incl. the user's graph, are never modified
        assert _equal(after[key], before[key]), key
