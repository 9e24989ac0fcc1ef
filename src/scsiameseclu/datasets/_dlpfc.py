"""Human DLPFC 10x Visium slices (Maynard et al. 2021, spatialLIBD) with their manual layer annotation."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from ._download import cache_path, download

SAMPLE_IDS = (
    "151507",
    "151508",
    "151509",
    "151510",
    "151669",
    "151670",
    "151671",
    "151672",
    "151673",
    "151674",
    "151675",
    "151676",
)
LAYERS = ("L1", "L2", "L3", "L4", "L5", "L6", "WM")

# The public spatialLIBD sources: Space Ranger count matrices on the project's S3 bucket, spot
# positions and the manual layer map (`layer_guess`, one row per annotated spot) in the
# LieberInstitute/HumanPilot repository.
_COUNTS_URL = "https://spatial-dlpfc.s3.us-east-2.amazonaws.com/h5/{sample_id}_filtered_feature_bc_matrix.h5"
_HUMANPILOT = "https://raw.githubusercontent.com/LieberInstitute/HumanPilot/master/10X"
_POSITIONS_URL = _HUMANPILOT + "/{sample_id}/tissue_positions_list.txt"
_LAYERS_URL = _HUMANPILOT + "/barcode_level_layer_map.tsv"

_POSITION_COLUMNS = ["barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"]


def _file_names(sample_id: str) -> dict[str, str]:
    return {
        "counts": f"{sample_id}_filtered_feature_bc_matrix.h5",
        "positions": f"{sample_id}_tissue_positions_list.txt",
        "layers": "barcode_level_layer_map.tsv",
    }


def _urls(sample_id: str) -> dict[str, str]:
    return {
        "counts": _COUNTS_URL.format(sample_id=sample_id),
        "positions": _POSITIONS_URL.format(sample_id=sample_id),
        "layers": _LAYERS_URL,
    }


def _check_sample_id(sample_id) -> str:
    if isinstance(sample_id, bool) or not isinstance(sample_id, str | int | np.integer):
        msg = f"`sample_id` must be a string such as '151673', got {type(sample_id).__name__}: {sample_id!r}."
        raise TypeError(msg)
    sample_id = str(sample_id)
    if sample_id not in SAMPLE_IDS:
        msg = f"`sample_id` must be one of {list(SAMPLE_IDS)}, got {sample_id!r}."
        raise ValueError(msg)
    return sample_id


def _local_files(folder: Path, sample_id: str) -> dict[str, Path]:
    """The three files in ``folder``, named as in the cache or without the sample prefix."""
    if not folder.is_dir():
        msg = f"`path` must be a folder holding the DLPFC files, got {str(folder)!r}."
        raise FileNotFoundError(msg)
    found, missing = {}, []
    for kind, name in _file_names(sample_id).items():
        candidates = [folder / name, folder / name.removeprefix(f"{sample_id}_")]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            missing.append(" or ".join(repr(p.name) for p in dict.fromkeys(candidates)))
        found[kind] = hit
    if missing:
        msg = f"`path` {str(folder)!r} lacks {', '.join(missing)}."
        raise FileNotFoundError(msg)
    return found


def read_positions(file: Path) -> pd.DataFrame:
    """Space Ranger spot positions, indexed by barcode (with or without the header line of v2+)."""
    with open(file) as f:
        has_header = f.readline().startswith("barcode")
    table = pd.read_csv(file, header=0 if has_header else None, names=_POSITION_COLUMNS, index_col=0)
    table.index = table.index.astype(str)
    return table


def read_layer_map(file: Path, sample_id: str) -> pd.Series:
    """Manual layer of each annotated spot of ``sample_id`` from spatialLIBD's barcode-level map.

    The map has no header; its columns are barcode, sample and layer (``L1``–``L6``, ``WM``).
    """
    table = pd.read_csv(file, sep="\t", header=None, dtype=str)
    if table.shape[1] != 3:
        msg = f"{str(file)!r} must have 3 tab-separated columns (barcode, sample, layer), found {table.shape[1]}."
        raise ValueError(msg)
    table.columns = ["barcode", "sample_id", "layer"]
    table = table[table["sample_id"] == sample_id]
    if table["barcode"].duplicated().any():
        msg = f"{str(file)!r} lists a barcode of sample {sample_id} more than once."
        raise ValueError(msg)
    return table.set_index("barcode")["layer"]


def read_dlpfc(counts: Path, positions: Path, layers: Path, sample_id: str) -> AnnData:
    """Assemble the AnnData of one slice from its three files (see :func:`dlpfc`)."""
    import scanpy as sc

    with warnings.catch_warnings():
        # 10x matrices repeat some gene symbols; they are made unique right below.
        warnings.filterwarnings("ignore", "Variable names are not unique", UserWarning)
        adata = sc.read_10x_h5(counts)
    adata.var_names_make_unique()
    pos = read_positions(positions)
    absent = adata.obs_names.difference(pos.index)
    if len(absent):
        msg = f"{len(absent)} barcodes of {counts.name!r} (e.g. {absent[0]!r}) have no position in {positions.name!r}."
        raise ValueError(msg)
    pos = pos.loc[adata.obs_names]
    layer = read_layer_map(layers, sample_id).reindex(adata.obs_names)
    categories = [c for c in LAYERS if c in set(layer.dropna())]
    categories += sorted(set(layer.dropna()) - set(categories))

    adata.obs["in_tissue"] = pos["in_tissue"].to_numpy().astype(bool)
    adata.obs["array_row"] = pos["array_row"].to_numpy()
    adata.obs["array_col"] = pos["array_col"].to_numpy()
    adata.obs["sample_id"] = pd.Categorical([sample_id] * adata.n_obs)
    adata.obs["layer"] = pd.Categorical(layer.to_numpy(), categories=categories)
    # x, y in full-resolution image pixels, as scanpy's read_visium stores them.
    adata.obsm["spatial"] = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(dtype=np.float64)
    adata.uns["dlpfc"] = {
        "sample_id": sample_id,
        "source": "Maynard et al. 2021, Nat Neurosci 24:425 (spatialLIBD)",
        "layer_annotation": "spatialLIBD manual layer_guess (barcode_level_layer_map.tsv)",
        "n_unannotated": int(layer.isna().sum()),
    }
    return adata


def dlpfc(
    sample_id: str = "151673",
    *,
    path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    annotated_only: bool = False,
) -> AnnData:
    """One human DLPFC 10x Visium slice with its manual cortical-layer annotation.

    Maynard et al. (2021), *Transcriptome-scale spatial gene expression in the human dorsolateral
    prefrontal cortex*, Nat Neurosci 24:425 (spatialLIBD): 12 slices from 3 donors, each spot
    annotated as layer 1–6 or white matter. Without ``path`` the files are downloaded from the
    public sources (the spatialLIBD S3 bucket and the LieberInstitute/HumanPilot repository,
    a few tens of MB per slice) into ``cache_dir`` once and read from there afterwards.

    Parameters
    ----------
    sample_id
        Slice: one of ``151507``–``151510``, ``151669``–``151676``.
    path
        Folder with a local copy of the files, read instead of downloading:
        ``{sample_id}_filtered_feature_bc_matrix.h5`` (Space Ranger counts),
        ``{sample_id}_tissue_positions_list.txt`` and ``barcode_level_layer_map.tsv``; the first two
        may also be named without the ``{sample_id}_`` prefix.
    cache_dir
        Download cache; the files go to ``cache_dir/dlpfc``. Default ``~/.cache/scsiameseclu``.
    annotated_only
        Keep only the spots with a layer annotation (the usual benchmark setting).

    Returns
    -------
    AnnData with raw UMI counts in ``X`` (CSR, float32), gene symbols as ``var_names`` (made
    unique) and Ensembl IDs in ``var['gene_ids']``, and:

    ``obs['layer']``
        Manual annotation, categorical in the order ``L1``…``L6``, ``WM``; NaN for the spots the
        authors left unannotated.
    ``obs['in_tissue']``, ``obs['array_row']``, ``obs['array_col']``, ``obs['sample_id']``
        Spot metadata.
    ``obsm['spatial']``
        Spot centres (x, y) in full-resolution image pixels.
    ``uns['dlpfc']``
        Sample, source and the number of unannotated spots.

    Examples
    --------
    >>> adata = ssc.datasets.dlpfc("151673")  # doctest: +SKIP
    >>> adata.obs["layer"].value_counts()  # doctest: +SKIP
    """
    sample_id = _check_sample_id(sample_id)
    if not isinstance(annotated_only, bool):
        msg = f"`annotated_only` must be a bool, got {type(annotated_only).__name__}: {annotated_only!r}."
        raise TypeError(msg)
    if path is not None:
        if cache_dir is not None:
            msg = "Pass either `path` (a local copy) or `cache_dir` (where to download), not both."
            raise ValueError(msg)
        if not isinstance(path, str | os.PathLike):
            msg = f"`path` must be a folder path, got {type(path).__name__}: {path!r}."
            raise TypeError(msg)
        files = _local_files(Path(path).expanduser(), sample_id)
    else:
        folder = cache_path(cache_dir, "dlpfc")
        urls = _urls(sample_id)
        files = {kind: download(urls[kind], folder / name) for kind, name in _file_names(sample_id).items()}
    adata = read_dlpfc(files["counts"], files["positions"], files["layers"], sample_id)
    if annotated_only:
        adata = adata[adata.obs["layer"].notna()].copy()
    return adata
