"""Results are a function of the values only: any layout, copy, file round trip or thread gives the same clusters.

The property test runs on subsamples of three shared sets (a tissue with a PCA input, and an
scRNA-seq set on genes) through every equivalent form of the same values a user's notebook can
hold; each must give bit-identical labels and embedding (CPU, one torch thread).
"""

from __future__ import annotations

import random
import threading
import warnings

import anndata as ad
import numpy as np
import pytest
import scanpy as sc
import torch
from conftest import make_tissue, require_shared, spatial_graph
from scipy import sparse

import scsiameseclu as ssc
from scsiameseclu.model import SiameseClusterModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RUN = {"max_epochs": 10, "random_state": 3, "show_progress_bar": False}


def _subsample(name: str, n: int, seed: int = 0):
    adata = ad.read_h5ad(require_shared(name))
    keep = np.sort(np.random.default_rng(seed).choice(adata.n_obs, min(n, adata.n_obs), replace=False))
    return adata[keep].copy()


def _tissue_set(name: str):
    """The README's steps on a subsample: normalise, log1p, PCA, squidpy graph."""
    adata = _subsample(name, 500)
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=30, random_state=0)
    spatial_graph(adata)
    return adata


def _cell_set(name: str):
    """scanpy's clustering flow on a subsample, trained on 1,000 HVG themselves (``use_rep='X'``)."""
    adata = _subsample(name, 500)
    sc.pp.filter_genes(adata, min_cells=3)
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=1000, subset=True)
    sc.pp.pca(adata, n_comps=30, random_state=0)
    sc.pp.neighbors(adata, n_neighbors=15, random_state=0)
    return adata


def _result(adata, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ssc.tl.siamese_cluster(adata, n_clusters=5, **RUN, **kwargs)
    return adata.obs["ssc"].to_numpy().copy(), np.array(adata.obsm["X_ssc"])


def _with(adata, *, x=None, pca=None, graph=None):
    """A copy of ``adata`` holding the same values in another form."""
    out = adata.copy()
    if x is not None:
        out.X = x
    if pca is not None:
        out.obsm["X_pca"] = pca
    if graph is not None:
        key = "spatial_connectivities" if "spatial_connectivities" in out.obsp else "connectivities"
        out.obsp[key] = graph
    return out


def _unsorted(mat: sparse.csr_matrix) -> sparse.csr_matrix:
    """The same CSR matrix with each row's entries in reverse order."""
    mat = sparse.csr_matrix(mat, copy=True)
    for i in range(mat.shape[0]):
        lo, hi = mat.indptr[i], mat.indptr[i + 1]
        mat.indices[lo:hi] = mat.indices[lo:hi][::-1].copy()
        mat.data[lo:hi] = mat.data[lo:hi][::-1].copy()
    mat.has_sorted_indices = False
    return mat


def _int64(mat: sparse.csr_matrix) -> sparse.csr_matrix:
    out = sparse.csr_matrix(mat, copy=True)
    out.indices, out.indptr = out.indices.astype(np.int64), out.indptr.astype(np.int64)
    return out


def _duplicated(mat: sparse.csr_matrix) -> sparse.csr_matrix:
    """The same values with every entry stored as two halves (exact in binary floating point)."""
    coo = sparse.coo_matrix(mat)
    half = coo.data / 2
    doubled = sparse.csr_matrix(
        (np.concatenate([half, half]), (np.tile(coo.row, 2), np.tile(coo.col, 2))), shape=mat.shape
    )
    assert not doubled.has_canonical_format or doubled.nnz == coo.nnz  # scipy keeps duplicates in CSR
    return doubled


def _round_trips(adata, tmp_path, name):
    """The object after an h5ad and a zarr round trip, and read back with ``backed='r'`` (X on disk)."""
    h5ad = tmp_path / f"{name}.h5ad"
    adata.write_h5ad(h5ad)
    adata.write_zarr(tmp_path / f"{name}.zarr")
    return {
        "h5ad round trip": ad.read_h5ad(h5ad),
        "zarr round trip": ad.read_zarr(tmp_path / f"{name}.zarr"),
        "backed h5ad": ad.read_h5ad(h5ad, backed="r"),
    }


def _view(adata):
    """A view of the cells of a larger object (its graph block-diagonal with the extra cells' one)."""
    extra = adata[:50].copy()
    extra.obs_names = [f"extra_{i}" for i in range(extra.n_obs)]
    parent = ad.concat([adata, extra], merge="same", uns_merge="same")
    for key, graph in adata.obsp.items():
        parent.obsp[key] = sparse.block_diag([graph, extra.obsp[key]], format="csr")
    parent.obsm["X_pca"] = np.vstack([adata.obsm["X_pca"], extra.obsm["X_pca"]])
    view = parent[: adata.n_obs]
    assert view.is_view
    return view


def _assert_same(results, reference):
    labels, z = results[reference]
    for name, (other_labels, other_z) in results.items():
        assert np.array_equal(other_labels, labels), f"labels differ: {name} vs {reference}"
        assert np.array_equal(other_z, z), f"embedding differs: {name} vs {reference}"


@pytest.mark.parametrize("name", ["starmap_visp_wang2018_1207", "dlpfc_151673_maynard2021_hvg5000"])
def test_pca_input_same_result_in_every_form(name, tmp_path):
    base = _tissue_set(name)
    pca = base.obsm["X_pca"]
    graph = base.obsp["spatial_connectivities"]
    variants = {
        "C order": _with(base, pca=np.ascontiguousarray(pca)),
        "F order": _with(base, pca=np.asfortranarray(pca)),  # as sc.pp.pca often writes it
        "float64": _with(base, pca=np.asfortranarray(pca, dtype=np.float64)),
        "float64, C order": _with(base, pca=np.ascontiguousarray(pca, dtype=np.float64)),
        "copy": base.copy(),
        "view": _view(base),
        "graph, unsorted indices": _with(base, graph=_unsorted(graph)),
        "graph, int64 indices": _with(base, graph=_int64(graph)),
        **_round_trips(base, tmp_path, "tissue"),
    }
    results = {key: _result(adata) for key, adata in variants.items()}
    variants["backed h5ad"].file.close()
    _assert_same(results, "C order")


def test_gene_input_same_result_in_every_form(tmp_path):
    base = _cell_set("baron_mouse_pancreas1_baron2016")
    x = sparse.csr_matrix(base.X)
    variants = {
        "CSR": _with(base, x=x),
        "dense": _with(base, x=x.toarray()),
        "dense, F order": _with(base, x=np.asfortranarray(x.toarray())),
        "dense float64": _with(base, x=x.toarray().astype(np.float64)),
        "CSR float64": _with(base, x=x.astype(np.float64)),
        "CSR, unsorted indices": _with(base, x=_unsorted(x)),
        "CSR, int64 indices": _with(base, x=_int64(x)),
        "CSR, duplicate entries": _with(base, x=_duplicated(x)),
        "CSC": _with(base, x=sparse.csc_matrix(x)),
        "view": _view(base),
        "graph, unsorted indices": _with(base, graph=_unsorted(base.obsp["connectivities"])),
        **{k: v for k, v in _round_trips(base, tmp_path, "cells").items() if k != "backed h5ad"},
    }
    results = {key: _result(adata, use_rep="X") for key, adata in variants.items()}
    _assert_same(results, "CSR")
    # The PCA input of the same cells, in a backed file (X stays on disk; the PCA is read).
    backed = _round_trips(base, tmp_path, "pca")["backed h5ad"]
    in_memory = _result(_with(base, pca=np.ascontiguousarray(base.obsm["X_pca"])))
    on_disk = _result(backed)
    backed.file.close()
    _assert_same({"memory": in_memory, "backed": on_disk}, "memory")


def test_input_canonical_form_is_not_a_copy_of_the_users_arrays():
    """Canonical CSR is made without changing the user's matrix in place."""
    from scsiameseclu._read import checked_matrix

    x = _unsorted(sparse.random(30, 20, density=0.3, format="csr", random_state=0, dtype=np.float64))
    x.data += 0.1
    before = (x.indices.copy(), x.data.copy())
    out = checked_matrix(x, "X", 30)
    assert out.has_canonical_format and out.dtype == np.float32 and out.indices.dtype == np.int32
    assert np.array_equal(x.indices, before[0]) and np.array_equal(x.data, before[1])
    dense = np.asfortranarray(np.random.default_rng(0).random((30, 4)))
    canon = checked_matrix(dense, "obsm['X_pca']", 30)
    assert canon.flags["C_CONTIGUOUS"] and canon.dtype == np.float32
    assert checked_matrix(canon, "obsm['X_pca']", 30) is canon  # already canonical: no copy


def test_concurrent_calls_equal_sequential_runs_and_leave_global_state(monkeypatch):
    """Two calls in two threads give their sequential results; global RNGs and torch's thread count stay as they were.

    The threads are made to overlap in the order that exposed shared global state: the first to
    start training finishes first, while the second is still inside its call.
    """
    from scsiameseclu.model import _schedule

    tissue = make_tissue(300)
    cells = tissue.copy()
    del cells.obsp["spatial_connectivities"], cells.obsp["spatial_distances"]
    sc.pp.neighbors(cells, n_neighbors=10, random_state=0)
    jobs = {"first": (tissue, 1, 10), "second": (cells, 2, 30)}

    def run(adata, seed, epochs):
        ssc.tl.siamese_cluster(adata, n_clusters=4, random_state=seed, max_epochs=epochs, show_progress_bar=False)
        return adata.obs["ssc"].to_numpy().copy(), np.array(adata.obsm["X_ssc"])

    sequential = {name: run(a.copy(), seed, epochs) for name, (a, seed, epochs) in jobs.items()}

    started = {name: threading.Event() for name in jobs}
    finished = threading.Event()
    real_fit = _schedule.fit

    def ordered_fit(*args, **kwargs):
        name = threading.current_thread().name
        started[name].set()
        if name == "first":
            assert started["second"].wait(120)  # both calls are inside training before the first trains
        else:
            assert finished.wait(300)  # the second trains once the first has returned
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(_schedule, "fit", ordered_fit)
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    states = torch.random.get_rng_state().clone(), np.random.get_state()[1].copy(), random.getstate()
    n_threads = torch.get_num_threads()
    results, errors = {}, []

    def target(name):
        adata, seed, epochs = jobs[name]
        try:
            results[name] = run(adata.copy(), seed, epochs)
        except BaseException as err:  # reported below, in the test's thread
            errors.append(err)
        finally:
            if name == "first":
                finished.set()

    threads = [threading.Thread(target=target, args=(name,), name=name) for name in jobs]
    threads[0].start()
    assert started["first"].wait(120)
    threads[1].start()
    for t in threads:
        t.join(600)
    assert not errors, errors
    for name in jobs:
        assert np.array_equal(results[name][0], sequential[name][0]), name
        assert np.array_equal(results[name][1], sequential[name][1]), name
    assert torch.equal(states[0], torch.random.get_rng_state())
    assert np.array_equal(states[1], np.random.get_state()[1])
    assert states[2] == random.getstate()
    assert torch.get_num_threads() == n_threads


def test_network_construction_reads_no_global_rng():
    """Random starting weights come from the generator given; torch's global RNG is neither read nor moved."""
    from scsiameseclu.module import NetworkConfig, SiameseNetwork

    config = NetworkConfig(n_hidden=16, n_latent=4, init_weights="random")
    torch.manual_seed(0)
    state = torch.random.get_rng_state().clone()
    nets = [SiameseNetwork(12, 3, config, generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    torch.manual_seed(1)
    nets.append(SiameseNetwork(12, 3, config, generator=torch.Generator().manual_seed(5)))
    torch.manual_seed(0)
    assert torch.equal(state, torch.random.get_rng_state())
    for net in nets[1:]:
        for (key, a), b in zip(nets[0].state_dict().items(), net.state_dict().values(), strict=True):
            assert torch.equal(a, b), key
    other = SiameseNetwork(12, 3, config, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(other.expression.net[0].weight, nets[0].expression.net[0].weight)
    # Torch's own scheme: Kaiming-uniform bounds of nn.Linear, Glorot bounds of GATConv, unit layer norms.
    first = nets[0].expression.net[0]
    assert first.weight.abs().max() <= 1 / np.sqrt(12) and first.weight.std() > 0
    assert torch.equal(nets[0].expression.net[1].weight, torch.ones(16))
    assert torch.isclose(nets[0].prototypes.norm(dim=1), torch.ones(3)).all()


def test_model_trained_on_x_reads_x_of_new_cells(tissue):
    """A model trained on X predicts new cells from X even when they also carry an X_pca (as after the usual steps)."""
    train = tissue.copy()
    del train.obsm["X_pca"]  # no PCA yet: scanpy's rule reads X
    model = ssc.tl.siamese_cluster(train, n_clusters=4, return_model=True, max_epochs=10, show_progress_bar=False)
    assert model.input_source == "X"
    expected = train.obs["ssc"].cat.codes.to_numpy()
    new = tissue.copy()
    assert "X_pca" in new.obsm
    np.testing.assert_array_equal(model.predict(new), expected)
    np.testing.assert_array_equal(model.get_latent_representation(new), train.obsm["X_ssc"])


@pytest.mark.parametrize("where", ["writing", "swapping"])
def test_interrupted_overwrite_keeps_the_previous_save(tissue, tmp_path, monkeypatch, where):
    """``save(overwrite=True)`` is all or nothing: interrupted, the previous save still loads and predicts the same."""
    import os

    model = ssc.tl.siamese_cluster(tissue, n_clusters=4, return_model=True, max_epochs=10, show_progress_bar=False)
    path = tmp_path / "m"
    model.save(path)
    (path / "notes.txt").write_text("the user's own file")
    expected = SiameseClusterModel.load(path).predict(tissue)
    retrained = ssc.tl.siamese_cluster(
        tissue.copy(), n_clusters=4, random_state=1, return_model=True, max_epochs=10, show_progress_bar=False
    )
    if where == "writing":

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(torch, "save", interrupted)
    else:  # the last step: the new directory taking the old one's place
        real_rename = os.rename

        def rename(src, dst):
            if str(src).endswith(".saving"):
                raise KeyboardInterrupt
            return real_rename(src, dst)

        monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        retrained.save(path, overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # nothing half-written left beside it
    assert (path / "notes.txt").read_text() == "the user's own file"
    np.testing.assert_array_equal(SiameseClusterModel.load(path).predict(tissue), expected)
    retrained.save(path, overwrite=True)  # and a save that completes replaces it, the user's file kept
    assert (path / "notes.txt").exists()
    np.testing.assert_array_equal(SiameseClusterModel.load(path).predict(tissue), retrained.predict(tissue))


def test_next_slice_with_the_readme_steps(tmp_path):
    """Train on DLPFC 151673, save, load, predict on 151674, both preprocessed as the README says.

    The two files hold different gene selections (151674 lacks about half of the training PCA's
    genes): the prediction works, the missing genes take their training means, and a warning
    counts them. Fewer shared genes than the limit allows are refused with the count and the fix.
    """
    slices = {}
    for name in ("dlpfc_151673_maynard2021_hvg5000", "dlpfc_151674_maynard2021_hvg5000"):
        adata = _subsample(name, 600)
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
        sc.pp.pca(adata)
        spatial_graph(adata)
        slices[name[6:12]] = adata
    model = ssc.tl.siamese_cluster(
        slices["151673"], n_clusters=7, return_model=True, max_epochs=10, show_progress_bar=False
    )
    model.save(tmp_path / "model")
    loaded = SiameseClusterModel.load(tmp_path / "model")
    new = slices["151674"]
    genes = loaded.spec.projection.var_names
    n_missing = len(set(genes) - set(new.var_names))
    assert n_missing > 0.4 * len(genes)
    with pytest.warns(UserWarning, match=f"lack {n_missing:,} of the model's {len(genes):,} training genes") as record:
        labels = loaded.predict(new)
    assert record[0].filename == __file__  # the warning points at the user's line
    assert labels.shape == (new.n_obs,) and len(np.unique(labels)) >= 3
    with pytest.raises(ValueError, match=rf"lack {n_missing:,} of .*more than the 10%.*intersection"):
        loaded.predict(new, max_missing_genes=0.1)
    # Every training gene present (the training slice itself, without its PCA): no warning.
    own = slices["151673"].copy()
    del own.obsm["X_pca"], own.varm["PCs"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        np.testing.assert_array_equal(loaded.predict(own), loaded.predict(slices["151673"]))
