"""``ssc.tl.siamese_cluster``: the method as one scanpy-style call."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pandas as pd
from anndata import AnnData

from .. import _validation as val
from .._constants import DEFAULT_KEY
from .._docs import doc_params
from .._spatialdata import resolve_table
from .._write import check_outputs, write_results

if TYPE_CHECKING:
    from spatialdata import SpatialData

#: Fields every ``uns[key_added]`` record of this function has had, in every version.
_RECORD_FIELDS = frozenset({"params", "n_clusters", "version"})


@doc_params
def siamese_cluster(
    adata: AnnData | SpatialData,
    n_clusters: int | None = None,
    *,
    use_rep: str | None = None,
    layer: str | None = None,
    connectivity_key: str | None = None,
    graph_weight: float | None = None,
    extra_rep: str | list[str] | None = None,
    library_key: str | None = None,
    counts_layer: str | None = None,
    max_epochs: int | None = None,
    mask_rate: float | None = None,
    edge_drop_rate: float | None = None,
    edge_add_rate: float | None = None,
    network_kwargs: dict | None = None,
    train_kwargs: dict | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    n_jobs: int | None = None,
    deterministic: bool = True,
    random_state: int | None = 0,
    key_added: str = DEFAULT_KEY,
    overwrite: bool = False,
    show_progress_bar: bool | None = None,
    return_model: bool = False,
    table_key: str | None = None,
    copy: bool = False,
):
    """Cluster cells by Siamese fusion of expression and cell-graph views.

    Two augmented views of every cell (masked expression, perturbed graph; drawn afresh at every
    step) pass through a weight-shared MLP (expression) and graph-attention network (graph),
    fused per cell by a learned gate. Pre-training: cross-view cross-correlation, reconstruction
    and contrastive terms. Tissue domains then train cluster prototypes on Sinkhorn-balanced
    self-labels (the clustering stage); cell types skip that stage. The labels come from a
    Gaussian mixture with one shared covariance over the fused embedding (EM started, for
    domains, from the prototypes' labels and from Leiden communities, the likelier fit kept;
    for cell types from Ward's partition), with soft assignments smoothed over the graph. The
    graph is used as given and never densified; no label is read. :doc:`/method` has the
    details, :doc:`/parameters` the defaults.

    Parameters
    ----------
    {adata}
    {n_clusters}
    {use_rep}
    {layer}
    {connectivity_key}
    {graph_weight}
    extra_rep
        ``obsm`` key, or list of keys, of extra per-cell modalities to fuse with expression and
        graph (e.g. ``"ADT"``: CITE-seq proteins). Used as given, so normalise them first (CLR for
        protein counts; integer-typed counts get log1p with a warning); each is divided by its
        own global scale, masked like expression, and encoded by an MLP branch of its own; the
        branches and the graph branch are fused by a softmax gate in which the graph keeps the
        prior weight ``graph_weight``. New cells given to the model need the same keys.
    library_key
        ``obs`` column naming each cell's library (slice or sample), as in
        ``squidpy.gr.spatial_neighbors_knn(adata, library_key=...)``, which builds one graph per slice.
        All libraries share one model and one set of labels. ``train_kwargs={"w_library": 1.0}``
        adds a library term (moment matching of the embedding between libraries) that keeps
        slice identity out of the embedding; it is off by default (``w_library=0``).
    counts_layer
        Layer holding the raw counts (keep them before normalising:
        ``adata.layers["counts"] = adata.X.copy()``). A decoder head then models the counts of the
        input's genes (for a PCA input, the PCA's genes) with a negative-binomial likelihood
        (weight ``train_kwargs["w_counts"]``), as scVI does, besides reconstructing the input.
        Training only: new cells need no counts.
    {max_epochs}
    mask_rate, edge_drop_rate, edge_add_rate
        Augmentation rates, as in :func:`scsiameseclu.pp.augment`; ``None``:
        :class:`~scsiameseclu.module.AugmentConfig`'s defaults (0.2, 0.2, 0.05).
    network_kwargs, train_kwargs
        Advanced overrides of :class:`~scsiameseclu.module.NetworkConfig` and
        :class:`~scsiameseclu.module.TrainConfig`.
    {device}
    batch_size
        Seed cells per training step. Given, training runs in mini-batches: each step uses the
        subgraph of its seeds and their neighbourhood (as many hops as the graph encoder sees),
        so memory grows linearly with cells and edges and only batches move to the device; the
        schedule keeps one step per epoch. ``None``: the whole graph at once up to 50,000 cells,
        above that mini-batches of about 8,000 cells (seeds with their neighbourhoods). Above
        50,000 cells the final embedding is also computed in chunks (exactly). Which path ran is
        recorded in ``uns[key_added]['training']``.
    n_jobs
        torch CPU threads during training; the caller's setting is restored afterwards. ``None``:
        one thread for full-batch training (the network is small: a second thread gains little
        on an idle machine and, with OpenMP threads waiting on each other, costs far more on a
        busy one; see :doc:`/faq`), torch's current setting for mini-batches.
    deterministic
        On a GPU, train with torch's deterministic kernels so that the same seed gives the same
        result, as on the CPU. ``False`` is faster and needs less GPU memory (on an H200, 1M
        cells: see ``benchmarks/results/gpu_check.md``) but two runs can differ in a few cells.
        No effect on the CPU, where runs are deterministic either way.
    {random_state}
    {key_added}
    {overwrite}
    {show_progress_bar}
    return_model
        Also return the trained :class:`~scsiameseclu.model.SiameseClusterModel`.
    {table_key}
    {copy}

    Returns
    -------
    ``None``, or the copy when ``copy=True`` (with the model, as a tuple, when ``return_model``).
    Sets (for a SpatialData, in its table ``sdata.tables[table_key]``):

    ``adata.obs[key_added]``
        Categorical cluster labels (strings, ``"0"`` the largest cluster).
    ``adata.obsm[f"X_{key_added}"]``
        Fused embedding, float32.
    ``adata.obsm[f"{key_added}_proba"]``
        Soft cluster assignments, float32, columns in the order of the categories.
    ``adata.uns[key_added]``
        ``params`` (every setting, seed, input keys, ``extra_rep``, ``library_key``, device),
        ``n_clusters`` (returned) and ``n_clusters_fitted`` (fewer when clusters ended up empty,
        which is warned), ``loss`` history, ``timings``, ``version``, mean graph ``gate``,
        ``mixture`` (the final mixture's EM starts, ``"prototypes"`` and ``"leiden"`` for tissue
        domains, ``"ward"`` for cell types, with the mean log-likelihood of each fit, and the
        ``start`` that was kept), with ``n_clusters=None`` the ``n_clusters_stability`` curve,
        ``training`` (``n_threads`` used, ``mode`` ``"full"`` or
        ``"minibatch"``, seeds per step ``batch_size``, ``mean_batch_cells``, ``n_hops``, and
        ``inference`` ``"full"`` or ``"chunked"``).

    Examples
    --------
    Tissue domains on a spatial graph:

    >>> import scanpy as sc, squidpy as sq, scsiameseclu as ssc
    >>> adata = ssc.datasets.synthetic_tissue()
    >>> sc.pp.normalize_total(adata); sc.pp.log1p(adata); sc.pp.pca(adata)
    >>> sq.gr.spatial_neighbors_knn(adata, n_neighs=6)
    >>> ssc.tl.siamese_cluster(adata, n_clusters=5)
    >>> adata.obs["ssc"].value_counts()

    Cell types: the same call on ``sc.pp.neighbors``' graph (or ``graph_weight=0`` on a spatial
    one); ``n_clusters=None`` chooses k and :func:`scsiameseclu.pl.n_clusters` shows how.
    """
    from ..model import SiameseClusterModel

    t_start = time.perf_counter()
    adata = resolve_table(adata, table_key)  # a SpatialData's table, written in place
    val.check_target(adata, copy=copy)
    key_added = val.check_key_added(key_added)
    written = {"obs": (key_added,), "obsm": (f"X_{key_added}", f"{key_added}_proba"), "uns": (key_added,)}
    # Plotting caches of an earlier run under this key, stale once it is replaced.
    stale = {"obsm": (f"X_{key_added}_umap",), "uns": (f"{key_added}_colors",)}
    check_outputs(
        adata,
        key_added,
        {slot: written[slot] + stale.get(slot, ()) for slot in written},
        record_fields=_RECORD_FIELDS,
        overwrite=overwrite,
        function="ssc.tl.siamese_cluster",
    )
    rates = {"mask_rate": mask_rate, "edge_drop_rate": edge_drop_rate, "edge_add_rate": edge_add_rate}
    model = SiameseClusterModel(
        adata,
        n_clusters,
        use_rep=use_rep,
        layer=layer,
        extra_rep=extra_rep,
        library_key=library_key,
        counts_layer=counts_layer,
        connectivity_key=connectivity_key,
        graph_weight=graph_weight,
        max_epochs=max_epochs,
        network_kwargs=network_kwargs,
        augment_kwargs={k: v for k, v in rates.items() if v is not None},
        train_kwargs=train_kwargs,
    )
    model.train(
        device=device,
        random_state=random_state,
        batch_size=batch_size,
        n_jobs=n_jobs,
        deterministic=deterministic,
        show_progress_bar=show_progress_bar,
    )
    res = model.results()
    res.uns["timings"]["total"] = time.perf_counter() - t_start
    categories = [str(i) for i in range(res.proba.shape[1])]
    # `res.embedding` is the model's own array (no copy on large data): a returned model keeps a
    # copy, so that editing `obsm` cannot change what the model predicts.
    embedding = res.embedding.copy() if return_model else res.embedding
    adata = write_results(
        adata,
        copy=copy,
        obs={key_added: pd.Categorical.from_codes(res.labels, categories=categories)},
        obsm={f"X_{key_added}": embedding, f"{key_added}_proba": res.proba},
        uns={key_added: res.uns},
        drop=stale,
    )
    if copy:
        return (adata, model) if return_model else adata
    return model if return_model else None
