"""One source for the texts of the parameters that several public functions share.

A docstring names a shared parameter by a line holding only ``{name}``, at the indentation of
its other parameters; :func:`doc_params` puts the parameter's name and text there. Numbers that
are defaults (epochs, graph weights) are read from the settings module, so a docstring cannot
quote a default that :class:`~scsiameseclu.model.ModelSettings` does not have
(``tests/test_docs.py`` checks every public docstring).
"""

from __future__ import annotations

import re
import textwrap

from ._defaults import (
    GRAPH_WEIGHT_KNN,
    GRAPH_WEIGHT_SPATIAL,
    MIXTURE_STARTS_CELL_TYPES,
    MIXTURE_STARTS_DOMAINS,
    N_CLUSTERS_RESOLUTION,
    N_EPOCHS_CLUSTER_DOMAINS,
    N_EPOCHS_PRETRAIN,
    PLATEAU_TOL,
    PRETRAIN_SHARE,
)

_START_WORDS = {
    "prototypes": "the prototypes' labels",
    "leiden": "Leiden communities",
    "ward": "Ward's partition",
    "kmeans": "k-means partitions",
}


def _starts(starts: tuple[str, ...]) -> str:
    return " and ".join(_START_WORDS[s] for s in starts)


#: What the two targets train, in words; the numbers come from the settings.
SCHEDULE = (
    f"Tissue domains: {N_EPOCHS_PRETRAIN} pre-training epochs, then up to {N_EPOCHS_CLUSTER_DOMAINS} "
    "clustering epochs (prototypes trained on Sinkhorn self-labels; stops early when fewer than "
    "``tol`` of the labels change between checks or when its loss reaches a plateau). Cell types: "
    f"up to {N_EPOCHS_PRETRAIN} pre-training epochs, stopped when the loss reaches a plateau, and "
    "no clustering stage. A plateau: over the last window of steps the loss fell by less than "
    f"{PLATEAU_TOL:.0%} of its fall since the stage began (no label is read)."
)

_TEXTS = {
    "adata": """
        Annotated data matrix with a cell graph in ``obsp`` (``squidpy.gr.spatial_neighbors_knn``
        or ``sc.pp.neighbors``), or a :class:`spatialdata.SpatialData` whose table ``table_key``
        is one: the table is read and written into in place; its links to the spatial elements
        (``uns['spatialdata_attrs']``, the region and instance columns) are kept.""",
    "n_clusters": f"""
        Number of clusters. ``None``: chosen after pre-training as the number of Leiden
        communities of the embedding at resolution {N_CLUSTERS_RESOLUTION} (no label is read), with
        the evidence recorded in ``uns[key_added]``: the counts at other resolutions
        (``n_clusters_by_resolution``) and the stability curve (``n_clusters_stability``: for each
        candidate k, how much Ward partitions of augmented views of the data agree);
        :func:`scsiameseclu.pl.n_clusters` draws both.""",
    "use_rep": """
        ``obsm`` key of the expression input, or ``"X"`` for ``X`` (or ``layer``). ``None``:
        ``X_pca`` if present, else ``X``.""",
    "layer": """
        Layer to read instead of ``X`` (with ``use_rep=None`` and no ``X_pca``, or
        ``use_rep="X"``).""",
    "connectivity_key": """
        ``obsp`` key of the cell graph; ``None``: ``spatial_connectivities`` if present, else
        ``connectivities``. squidpy's short form (``"spatial"``) is accepted.""",
    "graph_weight": f"""
        How much the graph weighs, in ``[0, 1]``: the prior weight of the graph branch in the
        fused embedding (a learned gate moves each cell around it) and the weight of neighbours
        when the final soft assignments are smoothed over the graph. ``None``:
        {GRAPH_WEIGHT_SPATIAL} on a squidpy spatial graph, {GRAPH_WEIGHT_KNN} on an expression kNN
        graph. It also sets the target: a spatial graph with ``graph_weight >= 0.5`` means tissue
        domains, anything else cell types (use 0 for cell types on a spatial graph). Domains:
        prototypes seeded by spherical k-means and trained in a clustering stage, final mixture
        started from {_starts(MIXTURE_STARTS_DOMAINS)}; cell types: no clustering stage, final
        mixture started from {_starts(MIXTURE_STARTS_CELL_TYPES)} (:doc:`/parameters`).""",
    "max_epochs": f"""
        Training epochs in all. ``None``: {SCHEDULE} Given, tissue domains spend
        {PRETRAIN_SHARE:.0%} of them pre-training and the rest in the clustering stage; cell types
        pre-train for all of them.""",
    "device": """
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.""",
    "random_state": """
        Seed. The same seed on the same values gives identical results on the CPU (whatever
        their memory layout, float width or sparse format, in any thread) and on a GPU with
        ``deterministic=True``; the global RNG state is neither read nor changed.""",
    "key_added": """
        Name of the results; it may not contain ``/``, which h5ad and zarr cannot read back. An
        earlier result of the same function under this name is replaced, with a warning;
        entries that ssc did not write (``X_pca`` for ``key_added="pca"``, ``uns['spatial']``,
        another tool's keys) are refused before any work unless ``overwrite=True``.""",
    "overwrite": """
        Replace existing entries under ``key_added`` even when ssc did not write them.""",
    "show_progress_bar": """
        Show a tqdm bar over epochs. ``None``: shown unless ``scanpy.settings.verbosity`` is 0
        (errors only). ssc's info lines (inputs read, k chosen, when training stopped) follow the
        verbosity alone: shown from 2 (``"info"``), to ``scanpy.settings.logfile``.""",
    "table_key": """
        For a SpatialData: the key of the table in ``sdata.tables``; ``None`` takes the only
        table, else the one called ``"table"``. Must be ``None`` for an AnnData.""",
    "copy": """
        Return a copy instead of writing to ``adata``. For a SpatialData, a copy of the table
        (an AnnData) with the results; the SpatialData is left unchanged.""",
}
#: Each shared parameter's entry: its name line and its indented text (numpydoc).
PARAMS = {
    name: f"{name}\n" + textwrap.fill(" ".join(text.split()), width=92, initial_indent="    ", subsequent_indent="    ")
    for name, text in _TEXTS.items()
}

_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)\{(?P<name>\w+)\}[ \t]*$", re.MULTILINE)


def fill(doc: str) -> str:
    """``doc`` with every placeholder line ``{name}`` of a shared parameter replaced by its entry."""

    def entry(match: re.Match) -> str:
        name = match["name"]
        if name not in PARAMS:
            msg = f"Docstring placeholder {{{name}}} names no shared parameter; known: {sorted(PARAMS)}."
            raise KeyError(msg)
        return textwrap.indent(PARAMS[name], match["indent"])

    return _PLACEHOLDER.sub(entry, doc)


def doc_params(obj):
    """Decorator: fill the shared parameter entries of ``obj``'s docstring (see :func:`fill`)."""
    if obj.__doc__:
        obj.__doc__ = fill(obj.__doc__)
    return obj
