"""Dataset loaders on small files written here; downloads are mocked (no network)."""

import io
import urllib.request

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import scsiameseclu as ssc
from scsiameseclu.datasets import _dlpfc

SAMPLE = "151673"
BARCODES = ["AAAC-1", "AAAG-1", "AACT-1", "AAGG-1", "ACGT-1"]
GENES = ["MOBP", "PCP4", "SNAP25", "MT-ND1", "MT-ND1"]  # a duplicate symbol, as in real 10x data
GENE_IDS = [f"ENSG{i:011d}" for i in range(len(GENES))]
# (barcode, in_tissue, array_row, array_col, pxl_row_in_fullres, pxl_col_in_fullres); one extra
# spot outside the filtered matrix, as Space Ranger lists every spot of the slide.
POSITIONS = [
    ("ACGT-1", 1, 4, 8, 400, 800),
    ("AAAC-1", 1, 0, 0, 100, 200),
    ("AAAG-1", 1, 1, 2, 110, 220),
    ("TTTT-1", 0, 9, 9, 900, 900),
    ("AACT-1", 1, 2, 4, 120, 240),
    ("AAGG-1", 1, 3, 6, 130, 260),
]
# Another sample's row reuses a barcode with a different layer; AAGG-1 has no annotation.
LAYER_MAP = [
    ("AAAC-1", SAMPLE, "L1"),
    ("AAAG-1", SAMPLE, "WM"),
    ("AACT-1", SAMPLE, "L3"),
    ("ACGT-1", SAMPLE, "L3"),
    ("AAAC-1", "151674", "L6"),
]


def _counts():
    rng = np.random.default_rng(0)
    return sparse.csr_matrix(rng.poisson(2.0, size=(len(BARCODES), len(GENES))).astype(np.float32))


def write_10x_h5(file, counts):
    """A Space Ranger (v3) filtered_feature_bc_matrix.h5: CSC genes × barcodes."""
    csc = sparse.csr_matrix(counts).T.tocsc()  # genes × cells, stored by cell
    with h5py.File(file, "w") as f:
        m = f.create_group("matrix")
        m["barcodes"] = np.array(BARCODES, dtype="S")
        m["data"] = csc.data.astype(np.int32)
        m["indices"] = csc.indices.astype(np.int64)
        m["indptr"] = csc.indptr.astype(np.int64)
        m["shape"] = np.array(csc.shape, dtype=np.int32)
        feats = m.create_group("features")
        feats["id"] = np.array(GENE_IDS, dtype="S")
        feats["name"] = np.array(GENES, dtype="S")
        feats["feature_type"] = np.array(["Gene Expression"] * len(GENES), dtype="S")
        feats["genome"] = np.array(["GRCh38"] * len(GENES), dtype="S")


def write_positions(file, header=False):
    lines = [",".join(_dlpfc._POSITION_COLUMNS)] if header else []
    lines += [",".join(map(str, row)) for row in POSITIONS]
    file.write_text("\n".join(lines) + "\n")


def write_layer_map(file, rows=LAYER_MAP):
    file.write_text("".join("\t".join(row) + "\n" for row in rows))


@pytest.fixture
def files(tmp_path):
    counts = _counts()
    folder = tmp_path / "dlpfc"
    folder.mkdir()
    write_10x_h5(folder / f"{SAMPLE}_filtered_feature_bc_matrix.h5", counts)
    write_positions(folder / f"{SAMPLE}_tissue_positions_list.txt")
    write_layer_map(folder / "barcode_level_layer_map.tsv")
    return folder, counts


def test_reads_local_copy(files):
    folder, counts = files
    adata = ssc.datasets.dlpfc(SAMPLE, path=folder)
    assert list(adata.obs_names) == BARCODES
    assert adata.var_names.is_unique and list(adata.var["gene_ids"]) == GENE_IDS
    assert list(adata.var_names[:3]) == GENES[:3]
    assert sparse.issparse(adata.X)
    np.testing.assert_array_equal(adata.X.toarray(), counts.toarray())

    layer = adata.obs["layer"]
    assert isinstance(layer.dtype, pd.CategoricalDtype)
    assert list(layer.cat.categories) == ["L1", "L3", "WM"]  # cortical order, white matter last
    assert layer.astype(object).where(layer.notna(), None).tolist() == ["L1", "WM", "L3", None, "L3"]
    assert adata.uns["dlpfc"]["n_unannotated"] == 1 and adata.uns["dlpfc"]["sample_id"] == SAMPLE

    # x = pixel column, y = pixel row, matched by barcode (the file lists spots in another order)
    np.testing.assert_array_equal(adata.obsm["spatial"], [[200, 100], [220, 110], [240, 120], [260, 130], [800, 400]])
    assert adata.obs.loc["ACGT-1", "array_row"] == 4 and adata.obs.loc["ACGT-1", "array_col"] == 8
    assert adata.obs["in_tissue"].all()
    assert (adata.obs["sample_id"] == SAMPLE).all()


def test_annotation_of_the_requested_sample_only(tmp_path):
    # Unprefixed files serve any sample: 151674's map row (AAAC-1 = L6) must not leak into 151673.
    write_10x_h5(tmp_path / "filtered_feature_bc_matrix.h5", _counts())
    write_positions(tmp_path / "tissue_positions_list.txt")
    write_layer_map(tmp_path / "barcode_level_layer_map.tsv")
    assert ssc.datasets.dlpfc(SAMPLE, path=tmp_path).obs.loc["AAAC-1", "layer"] == "L1"
    other = ssc.datasets.dlpfc("151674", path=tmp_path)
    assert other.obs.loc["AAAC-1", "layer"] == "L6" and other.obs["layer"].notna().sum() == 1
    assert list(other.obs["layer"].cat.categories) == ["L6"]


def test_annotated_only(files):
    folder, _ = files
    adata = ssc.datasets.dlpfc(SAMPLE, path=folder, annotated_only=True)
    assert "AAGG-1" not in adata.obs_names and adata.n_obs == 4
    assert adata.obs["layer"].notna().all()
    assert not adata.is_view


def test_unprefixed_names_and_positions_header(tmp_path):
    write_10x_h5(tmp_path / "filtered_feature_bc_matrix.h5", _counts())
    write_positions(tmp_path / "tissue_positions_list.txt", header=True)
    write_layer_map(tmp_path / "barcode_level_layer_map.tsv")
    adata = ssc.datasets.dlpfc(int(SAMPLE), path=str(tmp_path))
    assert adata.n_obs == len(BARCODES)
    np.testing.assert_array_equal(adata.obsm["spatial"][0], [200, 100])


def test_missing_file(files):
    folder, _ = files
    (folder / "barcode_level_layer_map.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="barcode_level_layer_map.tsv"):
        ssc.datasets.dlpfc(SAMPLE, path=folder)
    with pytest.raises(FileNotFoundError, match="must be a folder"):
        ssc.datasets.dlpfc(SAMPLE, path=folder / "nope")


def test_barcode_without_position(files):
    folder, _ = files
    rows = [r for r in POSITIONS if r[0] != "AACT-1"]
    (folder / f"{SAMPLE}_tissue_positions_list.txt").write_text("".join(",".join(map(str, r)) + "\n" for r in rows))
    with pytest.raises(ValueError, match="AACT-1"):
        ssc.datasets.dlpfc(SAMPLE, path=folder)


def test_malformed_layer_map(files):
    folder, _ = files
    (folder / "barcode_level_layer_map.tsv").write_text("AAAC-1\tL1\n")
    with pytest.raises(ValueError, match="3 tab-separated columns"):
        ssc.datasets.dlpfc(SAMPLE, path=folder)
    write_layer_map(folder / "barcode_level_layer_map.tsv", LAYER_MAP + [("AAAC-1", SAMPLE, "L2")])
    with pytest.raises(ValueError, match="more than once"):
        ssc.datasets.dlpfc(SAMPLE, path=folder)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sample_id": "999"}, ValueError, "`sample_id` must be one of"),
        ({"sample_id": 1.5}, TypeError, "`sample_id`"),
        ({"sample_id": True}, TypeError, "`sample_id`"),
        ({"annotated_only": "yes"}, TypeError, "`annotated_only`"),
        ({"path": 3}, TypeError, "`path`"),
        ({"path": ".", "cache_dir": "."}, ValueError, "not both"),
        ({"cache_dir": 3}, TypeError, "`cache_dir`"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ssc.datasets.dlpfc(**kwargs)


class _Response(io.BytesIO):
    def __init__(self, payload: bytes, fail_after: int | None = None):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}
        self._fail_after = fail_after

    def read(self, n=-1):
        if self._fail_after is not None and self.tell() >= self._fail_after:
            raise ConnectionResetError("connection dropped")
        return super().read(min(n, 7) if n and n > 0 else n)  # small chunks: exercise the loop


@pytest.fixture
def fake_server(files, monkeypatch):
    """urlopen serving the fixture files by URL; records every request."""
    folder, counts = files
    by_url = {
        url: (folder / _dlpfc._file_names(SAMPLE)[kind]).read_bytes() for kind, url in _dlpfc._urls(SAMPLE).items()
    }
    requested = []

    def urlopen(url, timeout=None):
        requested.append(url)
        return _Response(by_url[url])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return requested, counts


def test_download_then_cache(fake_server, tmp_path):
    requested, counts = fake_server
    cache = tmp_path / "cache"
    adata = ssc.datasets.dlpfc(SAMPLE, cache_dir=cache)
    assert sorted(requested) == sorted(_dlpfc._urls(SAMPLE).values())
    assert requested and all(u.startswith("https://") for u in requested)
    assert sorted(p.name for p in (cache / "dlpfc").iterdir()) == sorted(_dlpfc._file_names(SAMPLE).values())
    np.testing.assert_array_equal(adata.X.toarray(), counts.toarray())
    assert adata.obs["layer"].notna().sum() == 4

    requested.clear()
    again = ssc.datasets.dlpfc(SAMPLE, cache_dir=cache)  # read from the cache, no request
    assert requested == []
    assert again.obs["layer"].equals(adata.obs["layer"])


def test_default_cache_dir(fake_server, tmp_path, monkeypatch):
    monkeypatch.setattr(ssc.datasets._download, "DEFAULT_CACHE_DIR", tmp_path / "home_cache")
    ssc.datasets.dlpfc(SAMPLE)
    assert (tmp_path / "home_cache" / "dlpfc" / "barcode_level_layer_map.tsv").is_file()


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: _Response(b"x" * 100, fail_after=20))
    dest = tmp_path / "file.h5"
    with pytest.raises(ConnectionResetError):
        ssc.datasets._download.download("https://example.org/file.h5", dest)
    assert list(tmp_path.iterdir()) == []
