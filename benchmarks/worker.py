"""One (dataset, method, seed) run, in its own process and the method's own environment.

    python -m benchmarks.worker METHOD PREPARED.h5ad SEED OUT.npz [--quick]

Reads the preprocessed file (no labels in it), calls the adapter, writes labels and embedding to
``OUT.npz`` and prints one JSON line: the method's wall seconds, this process's peak RSS and the
versions it ran with. Scoring happens in the parent, which alone holds the labels.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

T_START = time.perf_counter()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _exit_with_parent() -> None:
    """End this run when the harness that started it is gone (killed or timed out)."""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _relative_to_repo(path: str) -> str:
    """``path`` relative to the repository (e.g. ``.venv/bin/python``), so results name no machine."""
    root = Path(__file__).resolve().parents[1]
    try:
        return str(Path(path).absolute().relative_to(root))
    except ValueError:
        return Path(path).name


def main() -> None:
    _exit_with_parent()
    parser = argparse.ArgumentParser()
    parser.add_argument("method")
    parser.add_argument("data")
    parser.add_argument("seed", type=int)
    parser.add_argument("out")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    import anndata as ad
    import numpy as np

    from benchmarks.child import peak_rss_mb
    from benchmarks.methods import METHODS, adapter

    method = METHODS[args.method]
    adata = ad.read_h5ad(args.data)
    k = int(adata.uns["benchmark"]["n_clusters"])
    fn = adapter(args.method)
    load = os.getloadavg()
    t0 = time.perf_counter()
    labels, embedding, info = fn(adata, k, args.seed, quick=args.quick)
    seconds = time.perf_counter() - t0
    labels = np.asarray(labels).astype(str)
    if labels.shape != (adata.n_obs,):
        raise ValueError(f"{args.method} returned labels of shape {labels.shape} for {adata.n_obs} cells")
    np.savez_compressed(args.out, labels=labels, embedding=np.asarray(embedding, dtype=np.float32))
    rss_mb = peak_rss_mb()
    try:
        import torch

        threads, torch_version = torch.get_num_threads(), torch.__version__
    except ImportError:
        threads, torch_version = None, None
    dists = [method.package, "numpy", "scipy", "scikit-learn", "anndata", "scanpy", "torch", "torch-geometric"]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "seconds_process": time.perf_counter() - T_START,
                "peak_rss_mb": rss_mb,
                "loadavg_start": load,
                "loadavg_end": os.getloadavg(),
                "n_clusters_found": int(np.unique(labels).size),
                "embedding_dim": int(np.asarray(embedding).reshape(adata.n_obs, -1).shape[1]),
                "info": info,
                "python": platform.python_version(),
                "executable": _relative_to_repo(sys.executable),
                "torch_threads": threads,
                "versions": {d: _version(d) for d in dists} | {"torch": torch_version},
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()
