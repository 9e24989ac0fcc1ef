"""``ssc.tl.siamese_cluster``: the method as one scanpy-style call."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pandas as pd
from anndata import AnnData

from .. import _validation as val
from .._constants import DEFAULT_KEY
from .._spatialdata import resolve_table
from .._write import check_outputs, write_results

if TYPE_CHECKING:
    from spatialdata import SpatialData

#: Fields every ``uns[key_added]`` record of this function has had, in every version.
_RECORD_FIELDS = frozenset({"params", "n_clusters", "version"})


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
    """Cluster cells by Siamese fusion of expression and cell-graph views with OT self-labelling.

    Two augmented views of every cell (masked expression, perturbed graph; fresh every step) pass
    through a weight-shared MLP (expression) and GAT (graph) whose outputs are fused by a learned
    gate. The encoder is pre-trained with cross-view cross-correlation, reconstruction and
    contrastive terms; prototypes are then seeded by k-means and trained jointly with a
    Sinkhorn-balanced self-labelling term. Final soft assignments are smoothed over the graph
    (propagation with restart). The graph is used as given and never densified.

    Parameters
    ----------
    adata
        Annotated data matrix with a cell graph in ``obsp`` (``squidpy.gr.spatial_neighbors`` or
        ``sc.pp.neighbors``), or a :class:`spatialdata.SpatialData` whose table ``table_key``
        is one: the table is read and the results are written into it, so the SpatialData
        holds them; its links to the spatial elements (``uns['spatialdata_attrs']``, the region
        and instance columns) are kept and never overwritten.
    n_clusters
        Number of clusters. ``None`` takes k as the number of Leiden communities (resolution 0.3)
        of the pre-trained embedding; the choice is recorded in ``uns[key_added]['n_clusters']``,
        the counts at other resolutions in ``uns[key_added]['n_clusters_by_resolution']``.
    use_rep
        ``obsm`` key of the input representation (``"X"`` for ``X``). Default: ``X_pca`` if present,
        else ``X`` (or ``layer``).
    layer
        Layer to use instead of ``X``.
    connectivity_key
        ``obsp`` key of the graph; default ``spatial_connectivities`` if present, else
        ``connectivities``.
    graph_weight
        How much the graph weighs, in ``[0, 1]``: the prior weight of the graph branch in the fused
        embedding (the learned gate moves each cell by at most one logit around it) and the weight
        of neighbours when the final soft assignments are smoothed over the graph. ``None``: 0.8
        for a spatial graph (smooth tissue domains), 0.5 for an expression kNN graph. For cell
        types on a spatial graph use 0, which ignores the graph. Below 0.5, or on a kNN
        graph, the target is cell types: prototypes start from Leiden communities and the
        contrastive term acts in the clustering stage only (:doc:`/parameters`).
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
    max_epochs
        Training epochs (60% pre-training, 40% clustering); ``None``: ``TrainConfig``'s 150 + 100.
        Clustering stops early when fewer than ``tol`` of labels change between checks (a
        label-free criterion).
    mask_rate, edge_drop_rate, edge_add_rate
        Augmentation rates, as in :func:`scsiameseclu.pp.augment`; ``None``:
        :class:`~scsiameseclu.module.AugmentConfig`'s defaults (0.2, 0.2, 0.05).
    network_kwargs, train_kwargs
        Advanced overrides of :class:`~scsiameseclu.module.NetworkConfig` and
        :class:`~scsiameseclu.module.TrainConfig`.
    device
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
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
    random_state
        Seed; the same seed on the same values gives identical results on the CPU (whatever their
        memory layout, float width or sparse format, in any thread), and on a GPU with
        ``deterministic=True``. The global RNG state is neither read nor changed.
    key_added
        Name of the results; it may not contain ``/``, which h5ad and zarr cannot read back. An
        earlier result of this function under the same name is replaced, with a warning; entries
        that ssc did not write (``X_pca`` for ``key_added="pca"``, ``uns['spatial']``, another
        tool's keys) are refused before any work unless ``overwrite=True``.
    overwrite
        Replace existing entries under ``key_added`` even when ssc did not write them.
    show_progress_bar
        Show a tqdm bar over epochs. ``None``: shown unless ``scanpy.settings.verbosity`` is 0
        (errors only); ``True`` or ``False`` wins over the verbosity. ssc's info lines (inputs
        read, k estimated, when training stopped) follow the verbosity alone: shown from 2
        (``"info"``), to ``scanpy.settings.logfile``.
    return_model
        Also return the trained :class:`~scsiameseclu.model.SiameseClusterModel`.
    table_key
        For a SpatialData: the key of the table in ``sdata.tables``; ``None`` takes the only
        table, else the one called ``"table"``. Must be ``None`` for an AnnData.
    copy
        Return a copy instead of writing to ``adata``. For a SpatialData, a copy of the table
        (an AnnData) with the results; the SpatialData is left unchanged.

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
        ``mixture`` (the final mixture's EM starts, ``"prototypes"`` and in domain mode
        ``"leiden"``, with the mean log-likelihood of each fit, and the ``start`` that was kept),
        ``training`` (``n_threads`` used, ``mode`` ``"full"`` or
        ``"minibatch"``, seeds per step ``batch_size``, ``mean_batch_cells``, ``n_hops``, and
        ``inference`` ``"full"`` or ``"chunked"``).
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
