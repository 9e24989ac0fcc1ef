"""Model reuse: save → load (here and in a new Python process) gives identical results; new cells."""

import json
import random
import subprocess
import sys
import textwrap

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST, assert_unchanged, snapshot, spatial_graph
from sklearn.metrics import adjusted_rand_score

import scsiameseclu as ssc
from scsiameseclu.model import SiameseClusterModel


@pytest.fixture(scope="module")
def split(_tissue):
    """Training cells and held-out cells of the same tissue, each with its own spatial graph."""
    order = np.random.default_rng(0).permutation(_tissue.n_obs)
    parts = []
    for idx in (np.sort(order[:300]), np.sort(order[300:])):
        part = _tissue[idx].copy()
        del part.obsp["spatial_connectivities"], part.obsp["spatial_distances"]
        spatial_graph(part)
        parts.append(part)
    return parts


@pytest.fixture(scope="module")
def trained(split):
    """A model on gene-level input with k estimated (``n_clusters=None``)."""
    train, _ = split
    adata = train.copy()
    model = ssc.tl.siamese_cluster(adata, n_clusters=None, use_rep="X", return_model=True, **FAST)
    return model, adata


@pytest.fixture(scope="module")
def pca_model(split):
    """A short-trained model on ``obsm['X_pca']`` (no gene names stored)."""
    train = split[0].copy()
    model = ssc.tl.siamese_cluster(train, n_clusters=3, return_model=True, max_epochs=4, show_progress_bar=False)
    return model, train


def _run_python(code: str, cwd) -> None:
    """Run ``code`` in a fresh Python process and require success."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_round_trip_identical(trained, tmp_path):
    model, adata = trained
    model.save(tmp_path / "m")
    files = ["config.json", "input.npz", "model.pt", "var_names.csv"]  # input.npz: the genes' training means
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == files
    loaded = SiameseClusterModel.load(tmp_path / "m")
    assert loaded is not model and loaded.network is not model.network
    assert model.n_clusters is None and loaded.n_clusters_fitted == model.n_clusters_fitted
    assert loaded.n_clusters_by_resolution == model.n_clusters_by_resolution
    assert loaded.n_clusters_stability == model.n_clusters_stability and model.n_clusters_stability
    assert loaded.var_names == model.var_names and loaded.random_state == model.random_state
    assert loaded.params() == model.params()
    assert np.array_equal(loaded.get_latent_representation(adata), model.get_latent_representation(adata))
    assert np.array_equal(loaded.predict(adata), model.predict(adata))
    assert np.array_equal(loaded.predict(adata, soft=True), model.predict(adata, soft=True))
    # The labels written by tl.siamese_cluster are the model's clusters, renumbered by size.
    codes = adata.obs["ssc"].cat.codes.to_numpy()
    assert adjusted_rand_score(codes, loaded.predict(adata)) == 1.0


def test_load_with_adata_attaches_it(trained, tmp_path):
    model, adata = trained
    model.save(tmp_path / "m")
    loaded = SiameseClusterModel.load(tmp_path / "m", adata)
    assert np.array_equal(loaded.get_latent_representation(), model.get_latent_representation())
    assert np.array_equal(loaded.predict(), model.predict())


def test_load_without_adata_needs_one(trained, tmp_path):
    model, _ = trained
    model.save(tmp_path / "m")
    loaded = SiameseClusterModel.load(tmp_path / "m")
    for call in (loaded.get_latent_representation, loaded.predict, loaded.train):
        with pytest.raises(ValueError, match="without `adata`"):
            call()


def test_load_in_new_process(trained, tmp_path):
    model, adata = trained
    model.save(tmp_path / "m")
    adata.write_h5ad(tmp_path / "a.h5ad")
    _run_python(
        """
        import sys
        import anndata as ad, numpy as np
        import scsiameseclu as ssc  # the README's form: ssc.model without importing it by name
        assert "torch" not in sys.modules  # torch is imported on first use of ssc.model
        adata = ad.read_h5ad("a.h5ad")
        model = ssc.model.SiameseClusterModel.load("m", device="cpu")
        assert "torch" in sys.modules and ssc.module.SiameseNetwork is not None
        np.save("z.npy", model.get_latent_representation(adata))
        np.save("labels.npy", model.predict(adata))
        """,
        tmp_path,
    )
    assert np.array_equal(np.load(tmp_path / "z.npy"), model.get_latent_representation(adata))
    assert np.array_equal(np.load(tmp_path / "labels.npy"), model.predict(adata))


def test_predict_unseen_cells(trained, split, tmp_path):
    model, _ = trained
    held = split[1].copy()
    z = model.get_latent_representation(held)
    assert z.shape == (held.n_obs, model.settings.network.n_latent) and z.dtype == np.float32
    proba = model.predict(held, soft=True)
    assert proba.shape == (held.n_obs, model.n_clusters_fitted)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)
    labels = model.predict(held)
    assert labels.shape == (held.n_obs,)
    assert adjusted_rand_score(held.obs["domain"], labels) > 0.3  # evaluation only
    model.save(tmp_path / "m")
    loaded = SiameseClusterModel.load(tmp_path / "m")
    assert np.array_equal(loaded.predict(held), labels)
    assert np.array_equal(loaded.get_latent_representation(held), z)


def test_new_cells_must_match_training_input(trained, split):
    model, _ = trained
    held = split[1]
    with pytest.warns(UserWarning, match=r"lack 50 of the model's 100 training genes \(50%\); each is filled"):
        assert model.predict(held[:, :50].copy()).shape == (held.n_obs,)
    before = snapshot(held)
    with pytest.raises(ValueError, match=r"lack 70 of the model's 100 training genes \(70%\), more than the 60%"):
        model.predict(held[:, :30].copy())
    with pytest.raises(ValueError, match="max_missing_genes"):
        model.predict(held, max_missing_genes=1.5)
    assert_unchanged(held, before)


def test_other_genes_are_an_error(trained, split):
    # Same number of genes, other names (a new slice with its own HVG set): matching by position
    # would give silently wrong labels, so it takes an explicit opt-in.
    model, _ = trained
    held = split[1]
    expected = model.predict(held)
    renamed = held.copy()
    renamed.var_names = [f"other_{i}" for i in range(renamed.n_vars)]
    before = snapshot(renamed)
    for call in (model.predict, model.get_latent_representation):
        with pytest.raises(ValueError, match="lack 100 of the model's 100.*match_genes='position'"):
            call(renamed)
    assert_unchanged(renamed, before)
    np.testing.assert_array_equal(model.predict(renamed, match_genes="position"), expected)
    other_hvg = held.copy()  # half the genes shared, the rest new: the missing half at training means
    other_hvg.var_names = [g if i % 2 else f"new_{i}" for i, g in enumerate(held.var_names)]
    with pytest.warns(UserWarning, match="lack 50 of the model's 100"):
        model.predict(other_hvg)
    with pytest.raises(ValueError, match="lack 50 of the model's 100.*more than the 40%.*intersection"):
        model.predict(other_hvg, max_missing_genes=0.4)
    with pytest.raises(ValueError, match="match_genes"):
        model.predict(held, match_genes="order")


def test_new_cells_matched_by_gene_name(trained, split):
    model, _ = trained
    held = split[1]
    expected = model.predict(held)
    shuffled = held[:, np.random.default_rng(0).permutation(held.n_vars)].copy()
    wider = ad.AnnData(  # 5 more genes in front
        np.hstack(
            [np.ones((held.n_obs, 5), dtype=held.X.dtype), held.X.toarray() if hasattr(held.X, "toarray") else held.X]
        ),
        obs=held.obs,
        var=pd.DataFrame(index=[f"extra_{i}" for i in range(5)] + list(held.var_names)),
        obsp=held.obsp,
    )
    for adata in (shuffled, wider):
        np.testing.assert_array_equal(model.predict(adata), expected)


def test_predict_numbers_clusters_as_obs(pca_model):
    model, train = pca_model
    assert model.fit.cluster_order
    np.testing.assert_array_equal(model.predict(), train.obs["ssc"].astype(int).to_numpy())
    assert model.predict(soft=True).shape == train.obsm["ssc_proba"].shape


def test_new_cells_on_the_training_pcs(pca_model, split):
    # A PCA input: new cells are put on the training PCs, from their own X_pca only when it is
    # that PCA (same loadings), else projected from their genes; another PCA is refused.
    import scanpy as sc

    model, _ = pca_model
    held = split[1]
    assert model.spec.projection is not None and model.spec.projection.offset is not None
    expected = model.get_latent_representation(held)  # held-out cells of the training PCA
    no_pca = held.copy()
    del no_pca.obsm["X_pca"], no_pca.varm["PCs"]
    np.testing.assert_allclose(model.get_latent_representation(no_pca), expected, atol=1e-4, rtol=1e-3)
    own = held.copy()
    sc.pp.pca(own, n_comps=20, random_state=0)  # another coordinate system
    np.testing.assert_allclose(model.get_latent_representation(own), expected, atol=1e-4, rtol=1e-3)
    genes_lost = own[:, 10:].copy()  # its own PCA, and 10 training genes fewer to project from
    with pytest.warns(UserWarning, match=r"lack 10 of the model's 100 training genes"):
        z = model.get_latent_representation(genes_lost)
    assert np.abs(z - expected).max() < np.abs(expected).max()  # near, not equal: 10 genes at their means
    with pytest.raises(ValueError, match=r"lack 70 of .*more than the 60%.*intersection"):
        model.predict(own[:, 70:].copy())
    no_genes = own.copy()
    no_genes.var_names = [f"other_{i}" for i in range(own.n_vars)]
    with pytest.raises(ValueError, match="does not hold that PCA.*training genes"):
        model.predict(no_genes)


def test_obsm_input_round_trip(pca_model, tmp_path):
    model, train = pca_model
    assert model.var_names is None
    model.save(tmp_path / "m")
    assert not (tmp_path / "m" / "var_names.csv").exists()
    loaded = SiameseClusterModel.load(tmp_path / "m")
    assert loaded.input_source == "obsm['X_pca']"
    assert np.array_equal(loaded.get_latent_representation(train), model.get_latent_representation(train))


def test_odd_var_names_survive(trained, tmp_path):
    from dataclasses import replace

    model, _ = trained
    names = ["NA", "nan", "a,b", '"q"', "", "None", " x "]
    names += [f"g{i}" for i in range(len(model.var_names) - len(names))]
    spec = replace(model.spec, var_names=tuple(names))
    state = model.network.state_dict()
    SiameseClusterModel.from_parts(model.settings, spec, state=state, fit=model.fit).save(tmp_path / "m")
    assert SiameseClusterModel.load(tmp_path / "m").var_names == names


def test_load_leaves_global_rng_alone(trained, tmp_path):
    model, _ = trained
    model.save(tmp_path / "m")
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    states = torch.random.get_rng_state().clone(), np.random.get_state()[1].copy(), random.getstate()
    SiameseClusterModel.load(tmp_path / "m")
    assert torch.equal(states[0], torch.random.get_rng_state())
    assert np.array_equal(states[1], np.random.get_state()[1])
    assert states[2] == random.getstate()


def test_save_errors(trained, tmp_path, tissue):
    model, adata = trained
    with pytest.raises(RuntimeError, match="train"):
        SiameseClusterModel(tissue, 4).save(tmp_path / "untrained")
    assert not (tmp_path / "untrained").exists()
    with pytest.raises(TypeError, match="dir_path"):
        model.save(3)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        model.save(tmp_path / "file", overwrite=True)
    model.save(tmp_path / "m")
    with pytest.raises(ValueError, match="overwrite=True"):
        model.save(tmp_path / "m")
    (tmp_path / "m" / "keep.txt").write_text("user file")
    model.save(tmp_path / "m", overwrite=True)
    assert (tmp_path / "m" / "keep.txt").read_text() == "user file"  # overwrite replaces only model files
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "input.npz",
        "keep.txt",
        "model.pt",
        "var_names.csv",
    ]
    loaded = SiameseClusterModel.load(tmp_path / "m")
    assert np.array_equal(loaded.predict(adata), model.predict(adata))


def _edit_config(path, *keys, value=None, drop=False):
    """Set (or drop) the field at ``keys`` of a saved config.json."""
    config = json.loads((path / "config.json").read_text())
    node = config
    for key in keys[:-1]:
        node = node[key]
    if drop:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    (path / "config.json").write_text(json.dumps(config))


def _write(path, name, data: bytes):
    (path / name).write_bytes(data)


@pytest.mark.parametrize(
    ("damage", "error", "match"),
    [
        (lambda p: None, None, None),
        (lambda p: (p / "model.pt").unlink(), FileNotFoundError, "model.pt"),
        (lambda p: (p / "config.json").unlink(), FileNotFoundError, "config.json"),
        (lambda p: (p / "var_names.csv").unlink(), FileNotFoundError, "var_names.csv"),
        (lambda p: (p / "config.json").write_text("{not json"), ValueError, "not valid JSON"),
        (lambda p: _write(p, "config.json", b"\xff\xfe"), ValueError, "not valid JSON"),
        (lambda p: _edit_config(p, "format", value="something.else"), ValueError, "does not describe"),
        (lambda p: _edit_config(p, "format_version", value=99), ValueError, "format version 99"),
        (lambda p: _edit_config(p, "format_version", value=1), ValueError, "format version 1.*train the model again"),
        (lambda p: _edit_config(p, "settings", "network", "n_latent", value=7), ValueError, "does not match"),
        (lambda p: _edit_config(p, "settings", "train", "new_knob", value=1), ValueError, "new_knob"),
        (lambda p: _edit_config(p, "settings", "train", "learning_rate", value="0.1"), ValueError, "learning_rate"),
        (lambda p: _edit_config(p, "input", "expression", "n_features", value=3), ValueError, "'input'"),
        (lambda p: _edit_config(p, "input", "expression", "scale", drop=True), ValueError, "scale"),
        (lambda p: _edit_config(p, "input", "expression", "scale", value=0), ValueError, "scale"),
        (lambda p: _edit_config(p, "input", "expression", "index", value=[0, 0]), ValueError, "index"),
        (lambda p: _edit_config(p, "fit", "cluster_order", value=[99]), ValueError, "cluster_order"),
        (lambda p: _edit_config(p, "fit", "random_state", value=2**70), ValueError, "random_state"),
        (lambda p: _write(p, "model.pt", b""), ValueError, "model.pt"),
        (lambda p: _write(p, "model.pt", b"not a checkpoint"), ValueError, "model.pt"),
        (lambda p: _write(p, "var_names.csv", b"genes\na\n"), ValueError, "var_names"),
    ],
)
def test_load_errors(trained, tmp_path, damage, error, match):
    model, adata = trained
    path = tmp_path / "m"
    model.save(path)
    damage(path)
    if error is None:
        assert np.array_equal(SiameseClusterModel.load(path).predict(adata), model.predict(adata))
        return
    with pytest.raises(error, match=match):
        SiameseClusterModel.load(path)


def _flip_byte(file, position):
    data = bytearray(file.read_bytes())
    data[int(position * len(data))] ^= 0xFF
    file.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        # Found by tests/test_fuzz.py: a damaged tensor loaded and predicted NaN; a truncated
        # archive raised zipfile.BadZipFile; a flipped byte in the pickle a KeyError.
        (lambda p: _flip_byte(p / "model.pt", 0.2), "model.pt` does not match its checksum"),
        (lambda p: _flip_byte(p / "model.pt", 0.025), "model.pt` does not match its checksum"),
        (lambda p: _write(p, "input.npz", (p / "input.npz").read_bytes()[:100]), "input.npz` does not match"),
        (lambda p: _edit_config(p, "sha256", value="x"), "field 'sha256'"),
        (lambda p: _edit_config(p, "extra", value=1), "unknown field"),
    ],
)
def test_damaged_files_fail_at_load(pca_model, tmp_path, damage, match):
    model, _ = pca_model
    path = tmp_path / "m"
    model.save(path)
    damage(path)
    with pytest.raises(ValueError, match=match):
        SiameseClusterModel.load(path)


def test_saves_without_checksums_still_load(pca_model, tmp_path):
    model, adata = pca_model
    model.save(tmp_path / "m")
    _edit_config(tmp_path / "m", "sha256", drop=True)  # as written before checksums
    np.testing.assert_array_equal(SiameseClusterModel.load(tmp_path / "m").predict(adata), model.predict(adata))
    (tmp_path / "m" / "input.npz").write_bytes(b"PK\x03\x04 cut")  # damaged, and no checksum to catch it
    with pytest.raises(ValueError, match="input.npz` cannot be read"):
        SiameseClusterModel.load(tmp_path / "m")


def test_load_argument_errors(trained, tmp_path):
    model, _ = trained
    with pytest.raises(FileNotFoundError, match="not a directory"):
        SiameseClusterModel.load(tmp_path / "nowhere")
    with pytest.raises(TypeError, match="dir_path"):
        SiameseClusterModel.load(None)
    model.save(tmp_path / "m")
    with pytest.raises(ValueError, match="device"):
        SiameseClusterModel.load(tmp_path / "m", device="tpu")
    _edit_config(tmp_path / "m", "scsiameseclu_version", value="0.0.1")
    with pytest.warns(UserWarning, match="0.0.1"):
        SiameseClusterModel.load(tmp_path / "m")


def test_load_with_other_genes_fails(trained, split, tmp_path):
    model, _ = trained
    model.save(tmp_path / "m")
    held = split[1].copy()
    held.var_names = [f"other_{i}" for i in range(held.n_vars)]
    with pytest.raises(ValueError, match="var_names"):
        SiameseClusterModel.load(tmp_path / "m", held)


_DETERMINISM = """
import numpy as np, scanpy as sc
from sklearn.neighbors import kneighbors_graph
import scsiameseclu as ssc
adata = ssc.datasets.synthetic_tissue(300, n_domains=3, n_genes=60, random_state=3)
sc.pp.normalize_total(adata)
sc.pp.log1p(adata)
adata.obsp["spatial_connectivities"] = kneighbors_graph(adata.obsm["spatial"], 6).tocsr()
ssc.tl.siamese_cluster(adata, n_clusters=3, use_rep="X", random_state=11, max_epochs=30, show_progress_bar=False)
np.save("{out}_z.npy", adata.obsm["X_ssc"])
np.save("{out}_labels.npy", adata.obs["ssc"].cat.codes.to_numpy())
"""


def test_same_seed_same_result_across_processes(tmp_path):
    for out in ("a", "b"):
        _run_python(_DETERMINISM.format(out=out), tmp_path)
    assert np.array_equal(np.load(tmp_path / "a_labels.npy"), np.load(tmp_path / "b_labels.npy"))
    assert np.array_equal(np.load(tmp_path / "a_z.npy"), np.load(tmp_path / "b_z.npy"))
    assert len(np.unique(np.load(tmp_path / "a_labels.npy"))) >= 2


def test_round_trip_head_assignments_with_estimated_k(split, tmp_path, monkeypatch):
    # With k estimated after pre-training, network state that is not refitted (the optional final
    # mixture) keeps the shape of the initial network; loading must restore it as it was.
    from dataclasses import fields

    from scsiameseclu.module import TrainConfig

    if "final_assignment" not in {f.name for f in fields(TrainConfig)}:
        pytest.skip("no optional final assignment step")
    from scsiameseclu.model import _n_clusters

    # The estimate is not under test here: k must differ from the initial network's 2.
    monkeypatch.setattr(_n_clusters, "estimate_n_clusters", lambda z, **kw: (4, {0.3: 4, 1.0: 6}))
    train = split[0].copy()
    kwargs = {"train_kwargs": {"final_assignment": "prototypes"}, "max_epochs": 4, "show_progress_bar": False}
    model = ssc.tl.siamese_cluster(train, None, use_rep="X", return_model=True, **kwargs)
    assert model.n_clusters_fitted == 4
    model.save(tmp_path / "m")
    loaded = SiameseClusterModel.load(tmp_path / "m")
    assert np.array_equal(loaded.predict(train, soft=True), model.predict(train, soft=True))
    assert np.array_equal(loaded.get_latent_representation(train), model.get_latent_representation(train))
