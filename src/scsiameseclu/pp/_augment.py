"""``ssc.pp.augment``: materialise one augmented view, with the training loop's own code."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from anndata import AnnData
from scipy import sparse

from .. import _read
from .. import _validation as val
from .._constants import AUGMENT_KEY, PCA_KEY
from .._docs import doc_params
from .._spatialdata import resolve_table
from .._write import check_outputs, write_results

if TYPE_CHECKING:
    from spatialdata import SpatialData

#: Fields every ``uns[key_added]`` record of :func:`augment` has had.
_RECORD_FIELDS = frozenset({"params", "fraction_masked", "n_edges"})


@doc_params
def augment(
    adata: AnnData | SpatialData,
    *,
    use_rep: str | None = None,
    layer: str | None = None,
    connectivity_key: str | None = None,
    mask_rate: float | None = None,
    noise_std: float | None = None,
    edge_drop_rate: float | None = None,
    edge_add_rate: float | None = None,
    edge_add_mode: str | None = None,
    key_added: str = AUGMENT_KEY,
    overwrite: bool = False,
    random_state: int | None = 0,
    table_key: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Draw one augmented view of expression and of the cell graph.

    :func:`~scsiameseclu.tl.siamese_cluster` draws two such views at every training step with
    the same functions (:func:`~scsiameseclu.module.mask_features`,
    :func:`~scsiameseclu.module.perturb_edges`); this exposes one for inspection.

    Parameters
    ----------
    {adata}
    {use_rep}
    {layer}
    {connectivity_key}
    mask_rate
        Fraction of expression entries (per cell, per feature) set to zero. For sparse input only
        stored entries can change (masking a zero is a no-op), so the output stays sparse.
    noise_std
        Standard deviation of added Gaussian noise, in units of the input's standard deviation.
        Sparse input receives noise on its stored entries only.
    edge_drop_rate
        Fraction of undirected edges removed.
    edge_add_rate
        Edges added, as a fraction of the number of edges.
    edge_add_mode
        ``"similar"``: of 10 random candidate pairs per added edge, the most similar in expression
        (cosine) are kept; ``"random"``: uniformly random pairs.

        For these five, ``None`` takes the training default of
        :class:`~scsiameseclu.module.AugmentConfig` (0.2, 0.0, 0.2, 0.05, ``"similar"``), so that
        the view shown is the one training draws.
    {key_added}
    {overwrite}
    random_state
        Seed; the global RNG state is not changed.
    {table_key}
    {copy}

    Returns
    -------
    ``None``, or the copy when ``copy=True``. Sets (for a SpatialData, in its table
    ``sdata.tables[table_key]``):

    ``adata.layers[key_added]`` or ``adata.obsm[key_added]``
        Augmented expression (a layer when the input was ``X`` or a layer, same sparsity).
    ``adata.obsp[f"{key_added}_connectivities"]``
        Perturbed graph, binary, symmetric, CSR.
    ``adata.uns[key_added]``
        Parameters and what changed (fraction of non-zero entries masked, edges dropped and
        added).

    Examples
    --------
    >>> ssc.pp.augment(adata, mask_rate=0.3, random_state=1)
    >>> adata.uns["ssc_augmented"]["fraction_masked"], adata.uns["ssc_augmented"]["n_edges"]
    """
    from .._device import resolve_seed
    from .._graph import edge_index_to_csr, graph_to_pairs
    from .._torch import torch  # names the install command where torch is missing
    from ..module import AugmentConfig, mask_features, perturb_edges

    adata = resolve_table(adata, table_key)  # a SpatialData's table, written in place
    val.check_target(adata, copy=copy)
    key_added = val.check_key_added(key_added)
    seed = resolve_seed(random_state)
    rates = {
        "mask_rate": mask_rate,
        "noise_std": noise_std,
        "edge_drop_rate": edge_drop_rate,
        "edge_add_rate": edge_add_rate,
        "edge_add_mode": edge_add_mode,
    }
    config = AugmentConfig(**{k: v for k, v in rates.items() if v is not None})
    mat, source = _read.get_features(adata, use_rep=use_rep, layer=layer)
    graph_key = _read.resolve_connectivity_key(adata, connectivity_key)
    graph = _read.get_graph(adata, graph_key)
    as_obsm = source.startswith("obsm") or (use_rep is None and layer is None and PCA_KEY in adata.obsm)
    outputs = {
        "obsm" if as_obsm else "layers": (key_added,),
        "obsp": (f"{key_added}_connectivities",),
        "uns": (key_added,),
    }
    check_outputs(
        adata, key_added, outputs, record_fields=_RECORD_FIELDS, overwrite=overwrite, function="ssc.pp.augment"
    )
    generator = torch.Generator().manual_seed(seed)

    scale = float(mat.data.std()) if sparse.issparse(mat) else float(mat.std())
    if sparse.issparse(mat):
        before = mat.data
        after = mask_features(
            torch.as_tensor(before), config.mask_rate, config.noise_std * scale, generator=generator
        ).numpy()
        view = sparse.csr_matrix((after, mat.indices, mat.indptr), shape=mat.shape)
    else:
        before = np.ascontiguousarray(mat)
        after = view = mask_features(
            torch.as_tensor(before), config.mask_rate, config.noise_std * scale, generator=generator
        ).numpy()
    nonzero = before != 0
    fraction_masked = float((after[nonzero] == 0).mean()) if nonzero.any() else 0.0

    pairs = torch.as_tensor(graph_to_pairs(graph))
    features = mat.toarray() if sparse.issparse(mat) else mat
    edge_index = perturb_edges(
        pairs,
        adata.n_obs,
        config.edge_drop_rate,
        config.edge_add_rate,
        x=torch.as_tensor(np.ascontiguousarray(features)),
        add_mode=config.edge_add_mode,
        generator=generator,
    ).numpy()
    new_graph = edge_index_to_csr(edge_index, adata.n_obs)
    n_before = pairs.shape[1]
    n_after = new_graph.nnz // 2
    kept = int(graph_to_pairs(new_graph.multiply(graph > 0)).shape[1])
    info = {
        "params": {
            "use_rep": "None" if use_rep is None else use_rep,  # h5ad has no None
            "layer": "None" if layer is None else layer,
            "input": source,
            "connectivity_key": graph_key,
            "random_state": seed,
            **{k: v for k, v in config.__dict__.items()},
        },
        "fraction_masked": fraction_masked,
        "n_edges": int(n_before),
        "n_edges_dropped": int(n_before - kept),
        "n_edges_added": int(n_after - kept),
    }

    adata = write_results(
        adata,
        copy=copy,
        obsm={key_added: np.asarray(view, dtype=np.float32)} if as_obsm else None,
        layers=None if as_obsm else {key_added: view},
        obsp={f"{key_added}_connectivities": new_graph},
        uns={key_added: info},
    )
    return adata if copy else None
