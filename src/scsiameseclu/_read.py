"""Reading a model's inputs from an AnnData: expression, extra modalities, libraries, the cell graph.

Every reader checks what it reads and raises a ``KeyError``, ``TypeError`` or ``ValueError`` that
names the argument and the offending value; nothing here writes to ``adata``.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from anndata import AnnData
from scipy import sparse

from ._constants import GRAPH_HINT, PCA_KEY, SCANPY_CONNECTIVITIES, SPATIAL_CONNECTIVITIES

logger = logging.getLogger("scsiameseclu")


def get_features(
    adata: AnnData, *, use_rep: str | None, layer: str | None
) -> tuple[np.ndarray | sparse.csr_matrix, str]:
    """The expression representation and a description of where it came from.

    Scanpy's rule: ``obsm[use_rep]`` if given; else ``layers[layer]`` if given; else ``obsm['X_pca']``
    if present; else ``X``. Integer-typed matrices are taken as counts: they must be
    non-negative and are log1p-transformed.
    """
    if use_rep is not None and layer is not None:
        msg = f"Pass either `use_rep` or `layer`, not both (got use_rep={use_rep!r}, layer={layer!r})."
        raise ValueError(msg)
    if use_rep is not None:
        if use_rep == "X":
            mat, source = adata.X, "X"
        elif use_rep not in adata.obsm:
            hint = " Run `sc.pp.pca(adata)` first." if use_rep == PCA_KEY else ""
            msg = f"`use_rep={use_rep!r}` is not in `adata.obsm` (keys: {list(adata.obsm)}).{hint}"
            raise KeyError(msg)
        else:
            mat, source = adata.obsm[use_rep], f"obsm['{use_rep}']"
    elif layer is not None:
        if layer not in adata.layers:
            msg = f"`layer={layer!r}` is not in `adata.layers` (keys: {list(adata.layers)})."
            raise KeyError(msg)
        mat, source = adata.layers[layer], f"layers['{layer}']"
    elif PCA_KEY in adata.obsm:
        mat, source = adata.obsm[PCA_KEY], f"obsm['{PCA_KEY}']"
    else:
        mat, source = adata.X, "X"
    if mat is None:
        msg = "`adata.X` is empty; pass `use_rep` or `layer`."
        raise ValueError(msg)
    if adata.isbacked and source == "X":
        msg = "`adata` is backed and `X` is on disk; call `adata.to_memory()` or pass `use_rep`."
        raise ValueError(msg)
    return checked_matrix(mat, source, adata.n_obs), source


ROW_BLOCK = 65_536  # rows per block where a dense input is read or checked piecewise


def is_lazy(mat) -> bool:
    """A dask array (e.g. an ``obsm`` entry of AnnData read lazily from zarr or h5ad)."""
    return type(mat).__module__.split(".")[0] == "dask"


def row_blocks(mat):
    """``(start, block)`` over blocks of ``ROW_BLOCK`` rows of a float matrix, each C-ordered float32.

    Every reduction over a large or lazy input reads it through these blocks (a dask array block by
    block), so that its result depends on the values only, not on the input's memory order or
    float width (numpy sums F- and C-ordered arrays in different orders, which changes the last
    bits), and no copy of the whole input is made.
    """
    for start in range(0, mat.shape[0], ROW_BLOCK):
        with np.errstate(over="ignore"):  # values beyond float32 become inf: the checks name them
            block = np.ascontiguousarray(mat[start : start + ROW_BLOCK], dtype=np.float32)
        yield start, block


def canonical_csr(mat) -> sparse.csr_matrix:
    """``mat`` as CSR with sorted indices and duplicate entries summed (a copy where it was not so).

    The user's arrays are never changed in place; index arrays are int32 where they fit.
    """
    mat = sparse.csr_matrix(mat)  # shares the arrays of a CSR input
    if not mat.has_canonical_format:
        mat = mat.copy()
        mat.sum_duplicates()  # sums duplicates and sorts the indices, in the input's dtype
    if mat.nnz < np.iinfo(np.int32).max and mat.indices.dtype != np.int32:
        mat = sparse.csr_matrix(
            (mat.data, mat.indices.astype(np.int32), mat.indptr.astype(np.int32)), shape=mat.shape, copy=False
        )
    return mat


def checked_matrix(mat, source: str, n_obs: int):
    """``mat`` after the checks of :func:`get_features`, in one canonical form.

    Results must depend on the values alone, not on how they are stored, so every input is
    brought to one form here, once: a dense matrix becomes C-contiguous float32 (no copy where it
    already is; a matrix of more than ``ROW_BLOCK`` rows, or a dask array, is left as it is and read
    in C-ordered float32 blocks, :func:`row_blocks`, so that no second copy of it is made); a sparse
    one becomes CSR with sorted indices, duplicates summed and float32 values
    (:func:`canonical_csr`). Integer-typed matrices are counts: log1p in float64, then float32.
    """
    if hasattr(mat, "to_numpy"):  # DataFrame in obsm
        mat = mat.to_numpy()
    if sparse.issparse(mat):
        mat = canonical_csr(mat)
        values = mat.data
    elif is_lazy(mat):
        if mat.ndim != 2 or mat.shape[0] != n_obs:
            msg = f"{source} must be a 2-D matrix with {n_obs} rows, got shape {mat.shape}."
            raise ValueError(msg)
        if np.issubdtype(mat.dtype, np.floating):
            return _checked_blocks(mat, source)
        mat = np.asarray(mat)  # counts or an unusual dtype: read it, then check as usual
        values = mat
    else:
        mat = np.asarray(mat)
        values = mat
    if mat.ndim != 2 or mat.shape[0] != n_obs:
        msg = f"{source} must be a 2-D matrix with {n_obs} rows, got shape {mat.shape}."
        raise ValueError(msg)
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        msg = f"{source} must be numeric, got dtype {values.dtype}."
        raise TypeError(msg)
    if np.issubdtype(values.dtype, np.complexfloating):
        msg = f"{source} must be real-valued, got dtype {values.dtype}."
        raise TypeError(msg)
    if not sparse.issparse(mat) and np.issubdtype(values.dtype, np.floating):
        if mat.shape[0] <= ROW_BLOCK:
            # Not finite in float32 (beyond its range) is caught by the checks below.
            with np.errstate(over="ignore"):
                mat = np.ascontiguousarray(mat, dtype=np.float32)
        return _checked_blocks(mat, source)
    if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
        msg = f"{source} contains NaN or infinite values; remove or impute them first."
        raise ValueError(msg)
    if np.issubdtype(values.dtype, np.integer) or values.dtype == bool:
        if (values < 0).any():
            msg = f"{source} has an integer dtype, so it is read as counts, but it has negative values."
            raise ValueError(msg)
        logger.info("%s is integer-typed: treating it as counts and applying log1p.", source)
        mat = mat.astype(np.float64).log1p() if sparse.issparse(mat) else np.log1p(mat, dtype=np.float64)
    with np.errstate(over="ignore"):
        mat = mat.astype(np.float32)
    if sparse.issparse(mat):
        if not np.isfinite(mat.data).all():
            msg = f"{source} has values beyond float32; rescale them first."
            raise ValueError(msg)
        _refuse_empty_cells(int((np.asarray(abs(mat).sum(1)).ravel() == 0).sum()), source)
        return mat
    return _checked_blocks(mat, source)


def _checked_blocks(mat, source: str):
    """The finiteness and signal checks of a dense float matrix, block by block; returns ``mat``."""
    n_empty = 0
    for _, block in row_blocks(mat):
        if not np.isfinite(block).all():
            msg = f"{source} contains NaN or infinite values (or values beyond float32); remove or impute them first."
            raise ValueError(msg)
        n_empty += int((np.abs(block).sum(1) == 0).sum())
    _refuse_empty_cells(n_empty, source)
    return mat


def _refuse_empty_cells(n: int, source: str) -> None:
    if n:
        msg = f"{n} cell(s) have no signal in {source} (all zeros); filter them with `sc.pp.filter_cells(adata, min_counts=1)`."
        raise ValueError(msg)


def get_counts(adata: AnnData, layer, genes) -> sparse.csr_matrix:
    """Raw counts of ``genes`` (in that order) from ``layers[layer]``: CSR float32, checked whole numbers >= 0."""
    if not isinstance(layer, str):
        msg = f"`counts_layer` must be a layer name or None, got {layer!r}."
        raise TypeError(msg)
    if layer not in adata.layers:
        msg = (
            f"`counts_layer={layer!r}` is not in `adata.layers` (keys: {list(adata.layers)}); keep the raw counts "
            "before normalising, e.g. `adata.layers['counts'] = adata.X.copy()`."
        )
        raise KeyError(msg)
    position = {g: i for i, g in enumerate(map(str, adata.var_names))}
    mat = canonical_csr(adata.layers[layer])
    if len(position) < adata.n_vars:
        msg = "`adata.var_names` are not unique; the genes of `counts_layer` cannot be found by name."
        raise ValueError(msg)
    mat = mat[:, [position[g] for g in genes]]
    values = mat.data
    if not np.issubdtype(values.dtype, np.number) or (values < 0).any() or not np.array_equal(values, np.round(values)):
        msg = f"`adata.layers[{layer!r}]` must hold raw counts (whole numbers >= 0); it looks normalised."
        raise ValueError(msg)
    return canonical_csr(mat.astype(np.float32))


def check_extra_rep(adata: AnnData, extra_rep, *, use_rep: str | None, layer: str | None) -> tuple[str, ...]:
    """``extra_rep`` (``None``, an ``obsm`` key or a list of keys) as a tuple of distinct ``obsm`` keys."""
    if extra_rep is None:
        return ()
    keys = (extra_rep,) if isinstance(extra_rep, str) else extra_rep
    if not isinstance(keys, list | tuple) or not keys or not all(isinstance(k, str) for k in keys):
        msg = f"`extra_rep` must be an `obsm` key, a non-empty list of keys or None, got {extra_rep!r}."
        raise TypeError(msg)
    if len(set(keys)) < len(keys):
        msg = f"`extra_rep` lists a key more than once: {list(keys)!r}."
        raise ValueError(msg)
    for key in keys:
        if key == use_rep or (use_rep is None and layer is None and key == PCA_KEY):
            msg = f"`extra_rep={key!r}` is already the expression input (`use_rep`); pass another representation."
            raise ValueError(msg)
        if key not in adata.obsm:
            msg = f"`extra_rep={key!r}` is not in `adata.obsm` (keys: {list(adata.obsm)})."
            raise KeyError(msg)
    return tuple(keys)


def get_extra_features(adata: AnnData, key: str) -> np.ndarray | sparse.csr_matrix:
    """The extra modality ``obsm[key]``, checked like the expression input, as float32.

    Used as given (normalise it first; CLR for protein counts). Integer-typed matrices are taken
    as raw counts and log1p-transformed, as for the expression input, with a warning.
    """
    if key not in adata.obsm:
        msg = f"`extra_rep={key!r}` is not in `adata.obsm` (keys: {list(adata.obsm)}); the model was trained with it."
        raise KeyError(msg)
    mat = adata.obsm[key]
    mat = mat.to_numpy() if hasattr(mat, "to_numpy") else mat
    dtype = getattr(mat, "dtype", None)
    if dtype is not None and (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_)):
        warnings.warn(
            f"`adata.obsm[{key!r}]` is integer-typed: read as raw counts and log1p-transformed. Normalise it "
            "first for a better input (for protein counts, the centred log-ratio: `muon.prot.pp.clr`).",
            UserWarning,
            stacklevel=4,
        )
    return checked_matrix(mat, f"obsm['{key}']", adata.n_obs)


def check_library_key(adata: AnnData, library_key) -> np.ndarray | None:
    """Integer library code of each cell from ``obs[library_key]`` (``None`` without a key)."""
    if library_key is None:
        return None
    if not isinstance(library_key, str):
        msg = f"`library_key` must be an `obs` column name or None, got {library_key!r}."
        raise TypeError(msg)
    if library_key not in adata.obs:
        msg = f"`library_key={library_key!r}` is not a column of `adata.obs` (columns: {list(adata.obs.columns)})."
        raise KeyError(msg)
    column = adata.obs[library_key]
    if column.isna().any():
        msg = (
            f"`adata.obs[{library_key!r}]` has {int(column.isna().sum())} missing value(s); every cell needs a library."
        )
        raise ValueError(msg)
    codes, uniques = column.factorize(sort=True)
    if len(uniques) < 2:
        warnings.warn(
            f"`adata.obs[{library_key!r}]` has one library only; there is no slice identity to correct for.",
            UserWarning,
            stacklevel=3,
        )
    return codes.astype(np.int64)


def cross_library_edges(graph: sparse.csr_matrix, library: np.ndarray) -> int:
    """Number of stored edges of ``graph`` between cells of different libraries."""
    coo = graph.tocoo()
    return int((library[coo.row] != library[coo.col]).sum())


def resolve_connectivity_key(adata: AnnData, connectivity_key: str | None) -> str:
    """Squidpy's ``spatial_connectivities`` if present, else scanpy's ``connectivities``."""
    if connectivity_key is None:
        for key in (SPATIAL_CONNECTIVITIES, SCANPY_CONNECTIVITIES):
            if key in adata.obsp:
                return key
        msg = f"No cell graph in `adata.obsp` (looked for {SPATIAL_CONNECTIVITIES!r}, {SCANPY_CONNECTIVITIES!r}). {GRAPH_HINT}"
        raise KeyError(msg)
    if not isinstance(connectivity_key, str):
        msg = f"`connectivity_key` must be a string, got {connectivity_key!r}."
        raise TypeError(msg)
    if connectivity_key not in adata.obsp and f"{connectivity_key}_connectivities" in adata.obsp:
        return f"{connectivity_key}_connectivities"  # squidpy's short form, e.g. "spatial"
    if connectivity_key not in adata.obsp:
        msg = f"`connectivity_key={connectivity_key!r}` is not in `adata.obsp` (keys: {list(adata.obsp)}). {GRAPH_HINT}"
        raise KeyError(msg)
    return connectivity_key


def get_graph(adata: AnnData, key: str) -> sparse.csr_matrix:
    """Validated, symmetric, loop-free sparse graph from ``obsp[key]`` (never densified).

    Asymmetric graphs (e.g. squidpy's kNN) are symmetrised by taking the union of edges, and
    self-loops are dropped (the GAT adds its own); both are logged. Isolated cells are allowed
    (they are embedded from their own expression) with a warning.
    """
    graph = adata.obsp[key]
    if not sparse.issparse(graph):
        msg = f"`adata.obsp[{key!r}]` must be a scipy sparse matrix, got {type(graph).__name__}; convert it with `scipy.sparse.csr_matrix`."
        raise TypeError(msg)
    if graph.shape != (adata.n_obs, adata.n_obs):
        msg = f"`adata.obsp[{key!r}]` has shape {graph.shape}, expected ({adata.n_obs}, {adata.n_obs})."
        raise ValueError(msg)
    # A copy: csr_matrix(csr) shares the user's arrays, and the clean-up below works in place.
    graph = sparse.csr_matrix(graph, copy=True)
    if not (np.issubdtype(graph.dtype, np.number) or graph.dtype == bool):
        msg = f"`adata.obsp[{key!r}]` must be numeric, got dtype {graph.dtype}."
        raise TypeError(msg)
    if np.issubdtype(graph.dtype, np.complexfloating):
        msg = f"`adata.obsp[{key!r}]` must have real weights, got dtype {graph.dtype}."
        raise TypeError(msg)
    data = graph.data
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        msg = f"`adata.obsp[{key!r}]` contains NaN or infinite weights."
        raise ValueError(msg)
    if (data < 0).any():
        msg = f"`adata.obsp[{key!r}]` has negative edge weights; a cell graph needs weights >= 0."
        raise ValueError(msg)
    graph.eliminate_zeros()
    if graph.diagonal().any():
        logger.info("Ignoring self-loops in `adata.obsp[%r]`.", key)
        graph.setdiag(0)
        graph.eliminate_zeros()
    if (graph != graph.T).nnz:
        logger.info("`adata.obsp[%r]` is not symmetric; using the union of its edges.", key)
        graph = graph.maximum(graph.T).tocsr()
    n_isolated = int((graph.getnnz(axis=1) == 0).sum())
    if n_isolated == adata.n_obs:
        msg = f"`adata.obsp[{key!r}]` has no edges. {GRAPH_HINT}"
        raise ValueError(msg)
    if n_isolated:
        warnings.warn(
            f"{n_isolated} cell(s) have no neighbours in `adata.obsp[{key!r}]`; they are embedded from their own expression.",
            UserWarning,
            stacklevel=3,
        )
    return graph


def check_spatial_key(adata: AnnData, spatial_key, *, default: str) -> bool:
    """Whether ``obsm[spatial_key]`` holds usable coordinates.

    ``None``, or the ``default`` key when absent (dissociated cells), means no coordinates; any
    other key must exist and hold a finite ``n_obs × ≥2`` array.
    """
    if spatial_key is None:
        return False
    if not isinstance(spatial_key, str):
        msg = f"`spatial_key` must be a string or None, got {spatial_key!r}."
        raise TypeError(msg)
    if spatial_key not in adata.obsm:
        if spatial_key == default:
            return False
        msg = (
            f"`spatial_key={spatial_key!r}` is not in `adata.obsm` (keys: {list(adata.obsm)}); pass the key of the "
            "cell coordinates (squidpy readers write `obsm['spatial']`), or `spatial_key=None` for the UMAP only."
        )
        raise KeyError(msg)
    coords = adata.obsm[spatial_key]
    coords = coords.to_numpy() if hasattr(coords, "to_numpy") else np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] < 2 or not np.issubdtype(coords.dtype, np.number):
        msg = f"`adata.obsm[{spatial_key!r}]` must be numeric coordinates of shape (n_obs, >=2), got {coords.dtype} {coords.shape}."
        raise ValueError(msg)
    if not np.isfinite(coords[:, :2]).all():
        msg = f"`adata.obsm[{spatial_key!r}]` contains NaN or infinite coordinates."
        raise ValueError(msg)
    return True
