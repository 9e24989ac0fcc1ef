"""The GPU path (``-m gpu``; skipped without CUDA). Run by ``python -m benchmarks.gpu_check``."""

import numpy as np
import pytest
import torch
from conftest import FAST
from sklearn.metrics import adjusted_rand_score

import scsiameseclu as ssc
from scsiameseclu.model import SiameseClusterModel

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_full_batch_on_gpu(tissue):
    rng_state = torch.cuda.get_rng_state()
    ssc.tl.siamese_cluster(tissue, n_clusters=4, device="cuda", **FAST)
    assert tissue.uns["ssc"]["params"]["device"].startswith("cuda")
    assert tissue.uns["ssc"]["training"]["mode"] == "full"
    assert tissue.obs["ssc"].notna().all() and np.isfinite(tissue.obsm["X_ssc"]).all()
    assert adjusted_rand_score(tissue.obs["domain"], tissue.obs["ssc"]) > 0.3  # evaluation only
    assert torch.equal(torch.cuda.get_rng_state(), rng_state)  # the global CUDA RNG is left alone


def test_minibatch_on_gpu(tissue):
    ssc.tl.siamese_cluster(tissue, n_clusters=4, device="cuda", batch_size=64, **FAST)
    assert tissue.uns["ssc"]["training"]["mode"] == "minibatch"
    assert tissue.obs["ssc"].notna().all()


def test_two_gpu_runs_agree(tissue):
    # Deterministic kernels inside the call (atomic scatter sums otherwise reorder from run to run),
    # so two runs with one seed are identical, and the caller's setting is left as it was.
    assert not torch.are_deterministic_algorithms_enabled()
    a = ssc.tl.siamese_cluster(tissue, n_clusters=4, device="cuda", copy=True, **FAST)
    b = ssc.tl.siamese_cluster(tissue, n_clusters=4, device="cuda", copy=True, **FAST)
    assert not torch.are_deterministic_algorithms_enabled()
    np.testing.assert_array_equal(a.obs["ssc"], b.obs["ssc"])
    np.testing.assert_array_equal(a.obsm["X_ssc"], b.obsm["X_ssc"])


def test_predict_and_save_on_gpu_load_on_cpu(tissue, tmp_path):
    model = ssc.tl.siamese_cluster(tissue, n_clusters=4, device="cuda", return_model=True, **FAST)
    labels = tissue.obs["ssc"].astype(int).to_numpy()
    np.testing.assert_array_equal(model.predict(), labels)
    on_gpu = model.predict(tissue)
    assert adjusted_rand_score(on_gpu, labels) >= 0.99
    model.save(tmp_path / "m")
    loaded = SiameseClusterModel.load(tmp_path / "m", device="cpu")
    assert str(loaded.device) == "cpu"
    assert adjusted_rand_score(loaded.predict(tissue), on_gpu) >= 0.99
    z_gpu, z_cpu = model.get_latent_representation(tissue), loaded.get_latent_representation(tissue)
    np.testing.assert_allclose(z_cpu, z_gpu, atol=1e-3)
