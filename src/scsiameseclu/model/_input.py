"""How an AnnData becomes network input: fitted once on the training data, replayed on new cells.

:class:`InputSpec` records where the expression comes from (``X``, a layer or an ``obsm``
representation), the genes, and per modality the kept columns and the scale; for a PCA input
also the projection (genes, loadings and centring), so that new cells can be put on the
training PCs instead of their own. It is saved with the model and validated when read back.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from anndata import AnnData
from scipy import sparse

from .. import _read
from .. import _validation as val
from .._checks import check_saved_number
from .._constants import PCA_KEY

logger = logging.getLogger("scsiameseclu")

#: Cells on which a stored PCA is checked against ``X @ PCs - offset``; relative tolerance.
_PCA_CHECK_CELLS = 2_000
_PCA_CHECK_RTOL = 1e-3


def _dense(mat):
    """A dense view of the input: sparse matrices densified, dask arrays left lazy (read by blocks)."""
    if sparse.issparse(mat):
        return mat.toarray()
    return mat if _read.is_lazy(mat) else np.asarray(mat)


def _scaled(dense: np.ndarray, index: np.ndarray, scale: float) -> np.ndarray:
    """``dense[:, index] / scale`` as float32, written block by block into one array.

    Rows are scaled ``ROW_BLOCK`` at a time, as C-ordered float32 blocks (a dask array is read
    so, block by block): the scaled float32 input is then the only full-size array made, and its
    values do not depend on the input's memory order.
    """
    every = index.size == dense.shape[1] and bool((index == np.arange(dense.shape[1])).all())
    out = np.empty((dense.shape[0], index.size), dtype=np.float32)
    for start, block in _read.row_blocks(dense):
        np.divide(block if every else block[:, index], scale, out=out[start : start + len(block)], casting="unsafe")
    return out


def _std(dense: np.ndarray, axis=None):
    """Standard deviation (per column for ``axis=0``) that does not overflow on huge values.

    Above ``ROW_BLOCK`` rows (and for dask arrays) it accumulates in float64 over row blocks (two passes), since
    numpy's ``std`` makes a temporary the size of the input.
    """
    if dense.shape[0] > _read.ROW_BLOCK or _read.is_lazy(dense):
        return _blocked_std(dense, axis)
    with np.errstate(over="ignore", invalid="ignore"):
        std = dense.std(axis)
    if np.isfinite(std).all():
        return std
    # float32 squares of values above about 1e19 overflow, which would make every cell look
    # identical: recompute on the data divided by its peak, in float64.
    peak = float(np.abs(dense).max())
    return (dense / peak).std(axis, dtype=np.float64) * peak


def _blocked_std(dense: np.ndarray, axis) -> np.ndarray | np.floating:
    """:func:`_std` over blocks of rows: float64 sums and the peak of each block, then squared deviations.

    Two passes over the input (a dask array is read twice, not three times).
    """
    total, peak = 0.0, 0.0
    for _, block in _read.row_blocks(dense):
        total = total + block.sum(0, dtype=np.float64)
        peak = max(peak, float(np.abs(block).max()))
    # Divided by the peak (a power of two: exact, so dividing the sum afterwards is the same) so
    # that squares of huge values cannot overflow.
    peak = peak or 1.0
    scale = 2.0 ** np.ceil(np.log2(peak)) if np.isfinite(peak) else 1.0
    total = total / scale
    count = dense.shape[0] if axis == 0 else dense.shape[0] * dense.shape[1]
    mean = total / count if axis == 0 else total.sum() / count
    squares = sum((((block / scale) - mean) ** 2).sum(0) for _, block in _read.row_blocks(dense))
    var = squares / count if axis == 0 else squares.sum() / count
    return np.sqrt(var) * scale


@dataclass(frozen=True)
class ModalitySpec:
    """One block of the network input: its source, the columns kept and the global scale.

    Constant columns carry nothing to cluster and are dropped; the rest is divided by one global
    standard deviation, so relative feature scales (e.g. PCA variances) are kept.
    """

    source: str
    n_features: int
    index: tuple[int, ...]
    scale: float

    @classmethod
    def fit(cls, mat, source: str) -> tuple[ModalitySpec, np.ndarray]:
        """Fit on the training matrix; returns the spec and the scaled training block."""
        dense = _dense(mat)
        keep = np.flatnonzero(_std(dense, axis=0) > 0)
        if keep.size == 0:
            msg = f"Every feature of {source} is constant across cells; there is nothing to cluster."
            raise ValueError(msg)
        if keep.size < dense.shape[1]:
            logger.info("Dropping %d constant feature(s) of %s.", dense.shape[1] - keep.size, source)
        scale = float(_std(dense if keep.size == dense.shape[1] else dense[:, keep]))
        spec = cls(source, int(mat.shape[1]), tuple(int(i) for i in keep), scale)
        return spec, _scaled(dense, keep, scale)

    def apply(self, mat) -> np.ndarray:
        """Scale ``mat`` (same columns as the training matrix) as in training."""
        if mat.shape[1] != self.n_features:
            msg = f"{self.source} of `adata` has {mat.shape[1]} columns; the model was trained on {self.n_features}."
            raise ValueError(msg)
        return _scaled(_dense(mat), np.asarray(self.index, dtype=np.int64), self.scale)

    def to_dict(self) -> dict:
        return {"source": self.source, "n_features": self.n_features, "index": list(self.index), "scale": self.scale}

    @classmethod
    def from_dict(cls, values: dict, *, name: str) -> ModalitySpec:
        _require_keys(values, ("source", "n_features", "index", "scale"), name)
        n, index, scale = values["n_features"], values["index"], values["scale"]
        n = check_saved_number(f"{name}['n_features']", n, lo=1, integer=True)
        if (
            not isinstance(index, list)
            or not index
            or not all(_is_int(i) and 0 <= i < n for i in index)
            or len(set(index)) < len(index)
        ):
            raise ValueError(f"`{name}['index']` must list distinct column indices in [0, {n}).")
        scale = check_saved_number(f"{name}['scale']", scale, lo_open=True)
        if not isinstance(values["source"], str):
            raise ValueError(f"`{name}['source']` must be a string, got {values['source']!r}.")
        return cls(values["source"], int(n), tuple(int(i) for i in index), float(scale))


@dataclass(frozen=True)
class GeneMatch:
    """Where a model's training genes are among the genes of new cells."""

    n_genes: int  # training genes
    present: np.ndarray  # positions, among the training genes, of those found
    columns: np.ndarray  # their columns in the new cells
    missing: np.ndarray  # positions of the training genes not found

    @classmethod
    def find(cls, genes: tuple[str, ...], var_names) -> GeneMatch | None:
        """Match by name; ``None`` when ``var_names`` has duplicates (a name could mean two genes)."""
        names = list(map(str, var_names))
        position = {g: i for i, g in enumerate(names)}
        if len(position) < len(names):
            return None
        found = np.array([g in position for g in genes], dtype=bool)
        present, missing = np.flatnonzero(found), np.flatnonzero(~found)
        columns = np.array([position[genes[i]] for i in present], dtype=np.int64)
        return cls(len(genes), present, columns, missing)

    @property
    def share_missing(self) -> float:
        return self.missing.size / self.n_genes

    def check(self, gene_means: np.ndarray | None, max_missing: float, *, fix: str) -> None:
        """Refuse (``ValueError``) or warn about missing genes; they are filled with ``gene_means``.

        Up to ``max_missing`` of the training genes may be missing when the model knows their
        means; then each missing gene takes its mean over the training cells (so it moves no cell
        away from the others) and a warning counts them. More, or a model saved without the
        means, is refused with the count and ``fix``.
        """
        if not self.missing.size:
            return
        count = f"{self.missing.size:,} of the model's {self.n_genes:,} training genes ({self.share_missing:.0%})"
        if gene_means is None or self.share_missing > max_missing:
            why = (
                f"more than the {max_missing:.0%} that can be filled with their training means"
                if gene_means is not None
                else "and this model was saved without the genes' training means, so they cannot be filled"
            )
            msg = f"`adata.var_names` lack {count}, {why}. {fix}"
            raise ValueError(msg)
        val.warn_user(
            f"`adata.var_names` lack {count}; each is filled with its mean over the training cells. The "
            f"more genes are missing, the less the clusters can be trusted (docs: 'Reuse on new data'). {fix}"
        )

    def take(self, mat, gene_means: np.ndarray | None) -> np.ndarray:
        """``mat``'s columns of the training genes, in training order, missing ones at ``gene_means`` (float32)."""
        sub = mat[:, self.columns]
        out = np.empty((mat.shape[0], self.n_genes), dtype=np.float32)
        out[:, self.present] = sub.toarray() if sparse.issparse(sub) else np.asarray(sub)
        if self.missing.size:
            out[:, self.missing] = gene_means[self.missing]
        return out


def _column_means(mat) -> np.ndarray:
    """Mean of every column (float64), dense by row blocks (a dask array read block by block)."""
    if sparse.issparse(mat):
        return np.asarray(mat.mean(0, dtype=np.float64)).ravel()
    total = sum(block.sum(0, dtype=np.float64) for _, block in _read.row_blocks(mat))
    return total / mat.shape[0]


@dataclass(frozen=True, eq=False)
class Projection:
    """A PCA input's loadings on the training genes, and its centring when it was verified.

    ``offset`` (one value per component, the gene means' projection) is set when
    ``X @ loadings - offset`` reproduces the stored PCA on the training data, so that new cells
    with these genes can be projected onto the training PCs. It is solved for rather than taken
    from the training cells' means, so it also holds when the PCA was fitted on a larger object.
    ``gene_means`` (each gene's mean over the training cells) stand in for genes that new cells
    lack (:meth:`GeneMatch.check`).
    """

    var_names: tuple[str, ...]
    loadings: np.ndarray  # genes × components, float32
    offset: np.ndarray | None  # components, float64
    # Whether the training X held whole numbers (raw counts): new X must agree, so that raw counts
    # are not projected onto PCs of log-normalised data (or the reverse).
    counts: bool = False
    gene_means: np.ndarray | None = None  # genes, float64

    @classmethod
    def fit(cls, adata: AnnData, pca: np.ndarray) -> Projection | None:
        """The projection behind ``obsm['X_pca']``, from ``varm['PCs']`` and ``X``; ``None`` without loadings."""
        pcs = adata.varm.get("PCs") if "PCs" in adata.varm else None
        if pcs is None or np.ndim(pcs) != 2 or pcs.shape[1] != pca.shape[1]:
            return None
        pcs = np.asarray(pcs, dtype=np.float64)
        rows = np.flatnonzero(np.abs(pcs).sum(1) > 0)  # scanpy leaves genes outside `mask_var` at zero
        names = tuple(map(str, adata.var_names[rows]))
        loadings = pcs[rows].astype(np.float32)
        offset, counts, means = None, False, None
        x = None if adata.isbacked or adata.X is None else adata.X
        if x is not None and len(set(names)) == len(names):
            sub = x[:, rows]
            sample = _sample_rows(sub)
            counts = _whole_numbers(sample)
            target = np.asarray(pca[_sample_cells(adata.n_obs)], dtype=np.float64)
            projected = sample @ pcs[rows]
            candidate = (projected - target).mean(0)
            if np.abs(projected - candidate - target).max() <= _PCA_CHECK_RTOL * max(
                float(np.abs(target).max()), 1e-12
            ):
                offset = candidate
                means = _column_means(sub)
        if offset is None:
            logger.info("`obsm[%r]` is not `X @ varm['PCs']` up to centring; new cells cannot be projected.", PCA_KEY)
        return cls(names, loadings, offset, counts, means)

    def same_pca(self, adata: AnnData) -> bool:
        """Whether ``adata.varm['PCs']`` holds these loadings on these genes (the same PCA)."""
        if "PCs" not in adata.varm or adata.varm["PCs"].shape[1] != self.loadings.shape[1]:
            return False
        position = {g: i for i, g in enumerate(map(str, adata.var_names))}
        if not all(g in position for g in self.var_names):
            return False
        pcs = np.asarray(adata.varm["PCs"])[[position[g] for g in self.var_names]]
        return bool(np.allclose(pcs, self.loadings, rtol=1e-4, atol=1e-6))

    def project(self, adata: AnnData, *, max_missing: float) -> np.ndarray | None:
        """``adata``'s coordinates on the training PCs from its genes; ``None`` if it cannot be done.

        Training genes that ``adata`` lacks take their training means (up to ``max_missing`` of
        them, with a warning; more are refused, see :meth:`GeneMatch.check`).
        """
        if self.offset is None or adata.X is None or adata.isbacked:
            return None
        match = GeneMatch.find(self.var_names, adata.var_names)
        if match is None or not match.present.size:
            return None
        if _whole_numbers(_sample_rows(adata.X[:, match.columns])) != self.counts:
            return None  # raw counts where the PCA was of normalised data, or the reverse
        fix = (
            "To project onto the training PCs, train on the genes both data sets share: "
            "`genes = adata_train.var_names.intersection(adata_new.var_names)`, then `adata_train[:, genes].copy()` "
            "(and the same for the new cells) before `sc.pp.pca`."
        )
        match.check(self.gene_means, max_missing, fix=fix)
        x = match.take(adata.X, self.gene_means)
        return (x @ self.loadings.astype(np.float64) - self.offset).astype(np.float32)


@dataclass(frozen=True)
class TrainingData:
    """The training cells as the network sees them (kept in memory, never saved)."""

    x: np.ndarray  # cells × input columns, float32
    graph: sparse.csr_matrix  # symmetric, loop-free
    library: np.ndarray | None  # integer library code per cell
    counts: sparse.csr_matrix | None = None  # raw counts of the count genes (`counts_layer`), float32

    @property
    def n_obs(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True, eq=False)
class InputSpec:
    """Everything needed to turn an AnnData into network input, as fitted on the training data.

    Attributes
    ----------
    use_rep, layer
        The user's choice of input (``None``: scanpy's rule, ``X_pca`` if present, else ``X``).
    connectivity_key
        ``obsp`` key of the cell graph; ``spatial_graph`` whether it is squidpy's.
    var_names
        Training genes for ``X`` or layer input (``None`` for an ``obsm`` input).
    expression, extras
        One :class:`ModalitySpec` for the expression and per extra ``obsm`` modality (``extra_rep``).
    extra_rep, library_key
        ``obsm`` keys of the extra modalities; ``obs`` column of the library.
    projection
        For an ``obsm['X_pca']`` input, the training PCA (:class:`Projection`).
    gene_means
        For ``X`` or layer input, each training gene's mean over the training cells (as read:
        counts after log1p), which stands in for a gene that new cells lack.
    counts_layer, count_genes
        The layer of raw counts whose genes a negative-binomial decoder models in training, and
        those genes (the PCA's, or the input's); ``None`` without.
    """

    use_rep: str | None
    layer: str | None
    connectivity_key: str
    spatial_graph: bool
    var_names: tuple[str, ...] | None
    expression: ModalitySpec
    extra_rep: tuple[str, ...]
    extras: tuple[ModalitySpec, ...]
    library_key: str | None
    projection: Projection | None
    gene_means: np.ndarray | None = None
    counts_layer: str | None = None
    count_genes: tuple[str, ...] | None = None

    @classmethod
    def fit(
        cls,
        adata: AnnData,
        *,
        use_rep: str | None = None,
        layer: str | None = None,
        connectivity_key: str | None = None,
        extra_rep: str | list[str] | None = None,
        library_key: str | None = None,
        counts_layer: str | None = None,
    ) -> tuple[InputSpec, TrainingData]:
        """Read and check every input of ``adata`` once; return the spec and the training data."""
        graph_key = _read.resolve_connectivity_key(adata, connectivity_key)
        extra_keys = _read.check_extra_rep(adata, extra_rep, use_rep=use_rep, layer=layer)
        library = _read.check_library_key(adata, library_key)
        mat, source = _read.get_features(adata, use_rep=use_rep, layer=layer)
        expression, x = ModalitySpec.fit(mat, source)
        extras, blocks = [], []
        for key in extra_keys:
            spec, block = ModalitySpec.fit(_read.get_extra_features(adata, key), f"obsm['{key}']")
            extras.append(spec)
            blocks.append(block)
        if blocks:  # extra modalities: the last columns of the network input, each scaled on its own
            x = np.hstack([x, *blocks])
        graph = _read.get_graph(adata, graph_key)
        spatial = graph_key.startswith("spatial")
        if library is not None and spatial and (n_cross := _read.cross_library_edges(graph, library)):
            warnings.warn(
                f"{n_cross} edge(s) of `adata.obsp[{graph_key!r}]` join cells of different libraries; build the "
                f"graph per slice with `squidpy.gr.spatial_neighbors_knn(adata, library_key={library_key!r})`.",
                UserWarning,
                stacklevel=4,
            )
        projection = Projection.fit(adata, mat) if source == f"obsm['{PCA_KEY}']" else None
        gene_level = not source.startswith("obsm")
        counts, count_genes = None, None
        if counts_layer is not None:  # the genes of the PCA where it has them, else the data's
            count_genes = projection.var_names if projection is not None else tuple(map(str, adata.var_names))
            counts = _read.get_counts(adata, counts_layer, count_genes)
        spec = cls(
            use_rep=use_rep,
            layer=layer,
            connectivity_key=graph_key,
            spatial_graph=spatial,
            var_names=tuple(map(str, adata.var_names)) if gene_level else None,
            expression=expression,
            extra_rep=extra_keys,
            extras=tuple(extras),
            library_key=library_key,
            projection=projection,
            gene_means=_column_means(mat) if gene_level else None,
            counts_layer=counts_layer,
            count_genes=count_genes,
        )
        return spec, TrainingData(x, graph, library, counts)

    @property
    def source(self) -> str:
        return self.expression.source

    @property
    def input_keys(self) -> tuple[str | None, str | None]:
        """The resolved expression input as ``(use_rep, layer)`` arguments: ``("X", None)`` for ``X``."""
        source = self.source
        if source.startswith("layers['") and source.endswith("']"):
            return None, source[len("layers['") : -2]
        if source.startswith("obsm['") and source.endswith("']"):
            return source[len("obsm['") : -2], None
        return "X", None

    @property
    def extra_dims(self) -> tuple[int, ...]:
        return tuple(len(m.index) for m in self.extras)

    @property
    def n_input(self) -> int:
        return len(self.expression.index) + sum(self.extra_dims)

    def features(self, adata: AnnData, *, match_genes: str = "name", max_missing: float = 0.0) -> np.ndarray:
        """Network input of new cells, read and scaled as in training.

        ``match_genes="name"`` finds the training genes in ``adata.var_names``; up to a share
        ``max_missing`` of them may be missing and take their training means, with a warning
        (:meth:`GeneMatch.check`). ``"position"`` takes the columns in order when the names differ.
        """
        if match_genes not in ("name", "position"):
            msg = f"`match_genes` must be 'name' or 'position', got {match_genes!r}."
            raise ValueError(msg)
        mat = self._expression(adata, match_genes, max_missing)
        x = self.expression.apply(mat)
        blocks = []
        for key, spec in zip(self.extra_rep, self.extras, strict=True):
            if key not in adata.obsm:
                msg = f"`extra_rep={key!r}` is not in `adata.obsm` (keys: {list(adata.obsm)}); the model was trained with it."
                raise KeyError(msg)
            blocks.append(spec.apply(_read.get_extra_features(adata, key)))
        return np.hstack([x, *blocks]) if blocks else x

    def graph(self, adata: AnnData) -> sparse.csr_matrix:
        """The validated cell graph of new cells (the training key, or squidpy's / scanpy's default)."""
        return _read.get_graph(adata, _read.resolve_connectivity_key(adata, self.connectivity_key))

    def _expression(self, adata: AnnData, match_genes: str, max_missing: float):
        if self.source == f"obsm['{PCA_KEY}']":
            return self._pca(adata, max_missing)
        # The input the model was trained on, whatever else `adata` holds: a model trained on `X`
        # reads `X` even when the new cells also carry an `X_pca`.
        use_rep, layer = self.input_keys
        mat, _ = _read.get_features(adata, use_rep=use_rep, layer=layer)
        names = list(map(str, adata.var_names))
        if self.var_names is None or names == list(self.var_names):
            return mat
        match = GeneMatch.find(self.var_names, names)
        if match is not None and not match.missing.size:
            # Every training gene is there: match by name (another order, or more genes).
            logger.info("Selecting the model's %d genes from `adata.var_names` by name.", len(self.var_names))
            return match.take(mat, None)
        if match_genes == "position" and mat.shape[1] == self.expression.n_features:
            logger.info("Matching the model's %d genes by position (`match_genes='position'`).", mat.shape[1])
            return mat
        if match is None or not match.present.size:
            raise ValueError(self._gene_mismatch(names, match_genes))
        match.check(self.gene_means, max_missing, fix=self._gene_mismatch(names, match_genes, counted=False))
        return match.take(mat, self.gene_means)

    def _gene_mismatch(self, names: list[str], match_genes: str, *, counted: bool = True) -> str:
        """What differs between ``names`` and the training genes (unless ``counted``), and how to align them."""
        present = set(names)
        missing = [g for g in self.var_names if g not in present]
        what = (
            f"lack {len(missing):,} of the model's {len(self.var_names):,} training genes (e.g. {missing[:3]})"
            if missing
            else "are not unique, so the training genes cannot be found by name"
        )
        how = (
            "Train on the genes both data sets share (`genes = adata_train.var_names.intersection(adata_new.var_names)`, "
            "then `adata_train[:, genes].copy()`); a new HVG selection usually differs, so select the training genes "
            "on the new cells instead (`adata_new[:, model.var_names]` where they are all present)"
        )
        if match_genes == "name" and len(names) == len(self.var_names):
            how += "; if the columns are the training genes in the same order under other names, pass `match_genes='position'`"
        return f"`adata.var_names` {what}. {how}." if counted else f"{how}."

    def _pca(self, adata: AnnData, max_missing: float) -> np.ndarray:
        """A PCA input of new cells on the *training* PCs: their own ``X_pca`` only if it is that PCA."""
        proj = self.projection
        if proj is None:
            msg = (
                f"The model was trained on obsm['{PCA_KEY}'] of data without `varm['PCs']`, so it cannot verify "
                f"that `adata.obsm['{PCA_KEY}']` is the same PCA. Train on genes (`use_rep='X'`), or on a PCA "
                "computed with `sc.pp.pca` (which stores the loadings) so that new cells can be projected."
            )
            raise ValueError(msg)
        if PCA_KEY in adata.obsm and proj.same_pca(adata):
            return _read.get_features(adata, use_rep=PCA_KEY, layer=None)[0]
        projected = proj.project(adata, max_missing=max_missing)
        if projected is not None:
            logger.info("Projected `adata` onto the training PCs from its %d genes.", len(proj.var_names))
            return projected
        how = (
            f"pass cells whose `X` holds the {len(proj.var_names):,} training genes of the PCA, preprocessed as "
            f"the training data was ({'raw counts' if proj.counts else 'normalised, not raw counts'}), and ssc "
            "projects them onto the training PCs"
            if proj.offset is not None
            else "project the cells onto the training PCs yourself (`sc.tl.ingest`, or `(X - mean) @ PCs` of "
            "the training data) and copy the training `varm['PCs']` to `adata`, or train on genes (`use_rep='X'`)"
        )
        msg = (
            f"The model was trained on obsm['{PCA_KEY}'], and `adata` does not hold that PCA: its `varm['PCs']` "
            f"{'are missing' if 'PCs' not in adata.varm else 'differ from the training loadings'}, so its "
            f"`obsm['{PCA_KEY}']` (if any) is another coordinate system. To predict, {how}."
        )
        raise ValueError(msg)

    def to_dict(self) -> dict:
        """JSON-serialisable part (the projection's arrays are saved by :meth:`arrays`)."""
        return {
            "use_rep": self.use_rep,
            "layer": self.layer,
            "connectivity_key": self.connectivity_key,
            "spatial_graph": self.spatial_graph,
            "has_var_names": self.var_names is not None,
            "expression": self.expression.to_dict(),
            "extra_rep": list(self.extra_rep),
            "extras": [m.to_dict() for m in self.extras],
            "library_key": self.library_key,
            "counts_layer": self.counts_layer,
            "n_count_genes": 0 if self.count_genes is None else len(self.count_genes),
            "has_gene_means": self.gene_means is not None,
            "projection": None
            if self.projection is None
            else {
                "n_genes": len(self.projection.var_names),
                "has_offset": self.projection.offset is not None,
                "counts": self.projection.counts,
                "has_gene_means": self.projection.gene_means is not None,
            },
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The gene means and the projection's arrays (empty without either), for an ``.npz`` file."""
        out = {} if self.gene_means is None else {"gene_means": self.gene_means}
        proj = self.projection
        if proj is not None:
            out.update(pca_var_names=np.asarray(proj.var_names, dtype=str), pca_loadings=proj.loadings)
            if proj.offset is not None:
                out["pca_offset"] = proj.offset
            if proj.gene_means is not None:
                out["pca_gene_means"] = proj.gene_means
        return out

    @classmethod
    def from_dict(cls, values: dict, *, var_names: list[str] | None, arrays: dict[str, np.ndarray]) -> InputSpec:
        """Rebuild from :meth:`to_dict`, the gene list and :meth:`arrays`, checking every value."""
        keys = ("use_rep", "layer", "connectivity_key", "spatial_graph", "has_var_names", "expression")
        _require_keys(values, (*keys, "extra_rep", "extras", "library_key", "projection"), "input")
        for key in ("use_rep", "layer", "library_key"):
            if values[key] is not None and not isinstance(values[key], str):
                raise ValueError(f"`input['{key}']` must be a string or null, got {values[key]!r}.")
        counts_layer = values.get("counts_layer")  # the count genes themselves are for training only
        if counts_layer is not None and not isinstance(counts_layer, str):
            raise ValueError(f"`input['counts_layer']` must be a string or null, got {counts_layer!r}.")
        if not isinstance(values["connectivity_key"], str) or not isinstance(values["spatial_graph"], bool):
            raise ValueError("`input['connectivity_key']` must be a string and `input['spatial_graph']` a bool.")
        expression = ModalitySpec.from_dict(values["expression"], name="input['expression']")
        extra_rep, extras = values["extra_rep"], values["extras"]
        if not isinstance(extra_rep, list) or not isinstance(extras, list) or len(extra_rep) != len(extras):
            raise ValueError("`input['extra_rep']` and `input['extras']` must be lists of the same length.")
        if not all(isinstance(k, str) for k in extra_rep):
            raise ValueError("`input['extra_rep']` must list `obsm` keys.")
        if values["has_var_names"] != (var_names is not None):
            raise ValueError("The saved gene list does not match `input['has_var_names']`.")
        if var_names is not None and len(var_names) != expression.n_features:
            raise ValueError(f"The saved gene list has {len(var_names)} names, expected {expression.n_features}.")
        # Saves before gene means were kept lack the flags: their models refuse missing genes.
        gene_means = _saved_means(arrays, "gene_means", values.get("has_gene_means", False), expression.n_features)
        projection = None
        if values["projection"] is not None:
            names, loadings = arrays.get("pca_var_names"), arrays.get("pca_loadings")
            offset = arrays.get("pca_offset")
            if (
                names is None
                or loadings is None
                or loadings.ndim != 2
                or loadings.shape != (len(names), expression.n_features)
                or not np.isfinite(loadings).all()
                or (offset is not None and (offset.shape != (loadings.shape[1],) or not np.isfinite(offset).all()))
            ):
                raise ValueError("The saved PCA projection is incomplete or does not match the input width.")
            counts = values["projection"].get("counts") if isinstance(values["projection"], dict) else None
            if not isinstance(counts, bool):
                raise ValueError("`input['projection']['counts']` must be a bool.")
            flag = values["projection"].get("has_gene_means", False)
            means = _saved_means(arrays, "pca_gene_means", flag, len(names))
            projection = Projection(tuple(map(str, names)), loadings.astype(np.float32), offset, counts, means)
        return cls(
            use_rep=values["use_rep"],
            layer=values["layer"],
            connectivity_key=values["connectivity_key"],
            spatial_graph=values["spatial_graph"],
            var_names=None if var_names is None else tuple(var_names),
            expression=expression,
            extra_rep=tuple(extra_rep),
            extras=tuple(ModalitySpec.from_dict(m, name=f"input['extras'][{i}]") for i, m in enumerate(extras)),
            library_key=values["library_key"],
            projection=projection,
            gene_means=gene_means,
            counts_layer=counts_layer,
        )


def _saved_means(arrays: dict[str, np.ndarray], name: str, flag, n: int) -> np.ndarray | None:
    """The saved gene means ``arrays[name]`` where ``flag`` says they were saved, checked (``n`` finite values)."""
    if not isinstance(flag, bool):
        raise ValueError(f"The flag of `{name}` must be a bool, got {flag!r}.")
    if not flag:
        return None
    means = arrays.get(name)
    if (
        means is None
        or means.shape != (n,)
        or not np.issubdtype(means.dtype, np.floating)
        or not np.isfinite(means).all()
    ):
        raise ValueError(f"The saved `{name}` are missing or are not {n} finite numbers.")
    return means.astype(np.float64)


def _sample_cells(n: int) -> np.ndarray:
    """Up to ``_PCA_CHECK_CELLS`` evenly spaced cell indices of ``n`` (fixed: no random draw)."""
    return np.linspace(0, n - 1, min(n, _PCA_CHECK_CELLS)).astype(np.int64)


def _sample_rows(x) -> np.ndarray:
    """The rows :func:`_sample_cells` picks from ``x``, dense float64."""
    sample = x[_sample_cells(x.shape[0])]
    return np.asarray(sample.toarray() if sparse.issparse(sample) else sample, dtype=np.float64)


def _whole_numbers(sample: np.ndarray) -> bool:
    """Whether every value of ``sample`` is a whole number >= 0 (raw counts)."""
    return bool((sample >= 0).all() and np.array_equal(sample, np.round(sample)))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require_keys(values, keys, name: str) -> None:
    if not isinstance(values, dict):
        raise ValueError(f"`{name}` must be a JSON object, got {type(values).__name__}.")
    missing = sorted(set(keys) - set(values))
    if missing:
        raise ValueError(f"`{name}` lacks the key(s) {missing}.")
