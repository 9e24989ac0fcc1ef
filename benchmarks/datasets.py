"""The shared labelled datasets, their label kind, and the one preprocessing every method gets."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import scanpy as sc

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

# What the labels describe decides what a user would ask for: tissue domains or cell types.
DATASETS = {
    "dlpfc_151673_maynard2021_hvg5000": "domains",
    "dlpfc_151674_maynard2021_hvg5000": "domains",
    "starmap_visp_wang2018_1207": "domains",
    "osmfish_sscortex_codeluppi2018": "domains",
    "baristaseq_visp_sun2021_slice1": "domains",
    "merfish_hypothalamus_moffitt2018_animal1": "cell types",
    "baron_mouse_pancreas1_baron2016": "cell types",
    "cbmc_citeseq_stoeckius2017_top2000": "cell types",
    "cite_pbmc_10x_scdcc_top2000": "cell types",
    "pbmc4k_10x_top2000": "cell types",
    "worm_neuron_cao2017": "cell types",
}


def available() -> list[str]:
    return [name for name in DATASETS if (SHARED_DATA / f"{name}.h5ad").exists()]


def read(name: str, *, subsample: int | None = None, seed: int = 0):
    """The raw dataset, or ``subsample`` of its cells drawn with ``seed`` (before any preprocessing)."""
    adata = sc.read_h5ad(SHARED_DATA / f"{name}.h5ad")
    if subsample is not None and subsample < adata.n_obs:
        keep = np.sort(np.random.default_rng(seed).choice(adata.n_obs, subsample, replace=False))
        adata = adata[keep].copy()
    return adata


def load(name: str, *, subsample: int | None = None, seed: int = 0):
    """Read, normalise (counts only), log1p, PCA (≤ 50 components) and build the cell graph.

    Spatial sets get squidpy's 6-nearest-neighbour spatial graph; scRNA-seq sets scanpy's 15-NN
    graph on the PCA. ``subsample`` cells (drawn with ``seed``) are kept before preprocessing, as
    a user with a small dataset would run it. Returns the AnnData and the labels (never passed to
    a method).
    """
    adata = read(name, subsample=subsample, seed=seed)
    labels = adata.obs["label"].astype(str).to_numpy()
    if adata.uns.get("X_is_integer_counts", True):
        sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=min(50, adata.n_vars - 1), random_state=0)
    cell_graph(adata)
    return adata, labels


def cell_graph(adata) -> None:
    """squidpy's 6-nearest-neighbour spatial graph for spatial sets, else scanpy's 15-NN graph on the PCA."""
    if "spatial" in adata.obsm:
        import squidpy as sq

        logging.getLogger("squidpy").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6)
    else:
        sc.pp.neighbors(adata, n_neighbors=15, random_state=0)


def n_true(labels: np.ndarray) -> int:
    return len(np.unique(labels))


CACHE = Path(__file__).resolve().parent / ".cache"


def is_spatial(name: str) -> bool:
    import h5py

    with h5py.File(SHARED_DATA / f"{name}.h5ad", "r") as f:
        return "obsm" in f and "spatial" in f["obsm"]


def prepare(name: str, cache: Path = CACHE) -> tuple[Path, Path]:
    """Write the preprocessed dataset every method reads, without its labels; cached on disk.

    The file holds log-normalised ``X``, raw counts in ``layers['counts']`` (where ``X`` was
    integer counts; peers such as scVI and GraphST start from counts), ``X_pca``, the graph from
    :func:`load`, ``obsm['spatial']`` and ``uns['benchmark']`` (the label kind, i.e. what a
    user would ask for). No ``obs`` column survives, so no annotation can reach a method.
    Returns the path of that file and of the labels (``.npy``, read by the scorer only).
    """
    import hashlib

    import anndata as ad

    src = SHARED_DATA / f"{name}.h5ad"
    stamp = f"{Path(__file__).read_bytes()!r}{src.stat().st_size}{src.stat().st_mtime_ns}"
    tag = hashlib.sha1(stamp.encode()).hexdigest()[:10]
    path, label_path = cache / f"{name}.{tag}.h5ad", cache / f"{name}.{tag}.labels.npy"
    if path.exists() and label_path.exists():
        return path, label_path
    cache.mkdir(parents=True, exist_ok=True)
    adata, labels = load(name)
    counts = ad.read_h5ad(src).X if adata.uns.get("X_is_integer_counts", True) else None
    out = ad.AnnData(X=adata.X, obs=adata.obs[[]], var=adata.var[[]])
    if counts is not None:
        out.layers["counts"] = counts
    for key in ("X_pca", "spatial"):
        if key in adata.obsm:
            out.obsm[key] = adata.obsm[key]
    for key, value in adata.obsp.items():
        out.obsp[key] = value
    for key in ("neighbors", "spatial_neighbors"):
        if key in adata.uns:
            out.uns[key] = adata.uns[key]
    out.uns["benchmark"] = {"dataset": name, "target": DATASETS[name], "n_clusters": n_true(labels)}
    tmp = path.with_suffix(".tmp.h5ad")
    out.write_h5ad(tmp)
    tmp.rename(path)
    np.save(label_path, labels.astype(str))
    return path, label_path
