"""What the install gives: the package without torch, and the dependencies as pip resolved them."""

import subprocess
import sys
import textwrap


def test_import_without_torch_and_a_clear_error_where_it_is_needed():
    """``import scsiameseclu`` and the data generator need no torch; the model names the install command."""
    code = """
        import sys
        sys.modules["torch"] = None  # as if torch were not installed
        import scsiameseclu as ssc
        adata = ssc.datasets.synthetic_tissue(200, n_domains=3, n_genes=50, random_state=0)
        try:
            ssc.tl.siamese_cluster(adata, n_clusters=3)
        except ModuleNotFoundError as err:
            assert err.name == "torch", err
            assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in str(err), err
        else:
            raise AssertionError("siamese_cluster ran without torch")
    """
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]


def test_scanpy_neighbors(knn):
    """sc.pp.neighbors works with the resolved versions (pynndescent 0.7.0 breaks it under scanpy 1.11: the pin)."""
    assert knn.obsp["connectivities"].nnz > 0
    assert knn.obsp["connectivities"].shape == (knn.n_obs, knn.n_obs)
