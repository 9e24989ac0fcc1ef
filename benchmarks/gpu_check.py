"""The GPU path in one command: tests, run-to-run agreement and large-data timings on CUDA.

    python -m benchmarks.gpu_check [--out benchmarks/results] [--sizes 100000 1000000 10000000]

On a machine with CUDA it

1. runs the ``gpu``-marked tests (``tests/test_gpu.py``: full batch, mini-batch, predict, save on
   the GPU and load on the CPU, global CUDA RNG left alone);
2. clusters one tissue twice on the GPU with the same seed and checks that the two labelings
   agree (ARI >= 0.99; with the default ``deterministic=True`` they are identical), and once on
   the CPU for comparison;
3. times ssc on tiled copies of that tissue (``benchmarks.studies.scaling.tile``, squidpy graph) at each
   size (100,000, 1,000,000 and 10,000,000 cells by default; above 50,000 cells training runs in
   mini-batches), with the stages and the peak GPU memory, with ``deterministic=True`` (the
   default) and, while the budget allows, ``False``;

and writes ``gpu_check.json`` and ``gpu_check.md`` under ``--out``. The tissue is DLPFC 151673
when ``../shared/data`` holds it, else the synthetic tissue of ``ssc.datasets`` (4,000 cells).
Each part stops when the time budget (``--budget``, 540 s by default: a lent device gives 600 s per
command) is spent, and what ran is written; a size that does not fit is listed as not run. On a machine without CUDA it says so and exits 0 without writing anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import child  # noqa: E402

#: Two GPU runs with the same seed must agree at least this well.
MIN_AGREEMENT = 0.99
DLPFC = "dlpfc_151673_maynard2021_hvg5000"


def spatial_graph(adata) -> None:
    """squidpy's graph (``coord_type="generic", n_neighs=6``), or where squidpy is not installed
    (a GPU machine with a minimal environment) the same symmetrised 6-NN graph from scikit-learn."""
    import warnings

    try:
        import squidpy as sq
    except ImportError:
        from sklearn.neighbors import kneighbors_graph

        knn = kneighbors_graph(adata.obsm["spatial"], 6, mode="connectivity", n_jobs=-1)
        adata.obsp["spatial_connectivities"] = ((knn + knn.T) > 0).astype("float32").tocsr()
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6)


def tissue():
    """(AnnData with X_pca, spatial and a squidpy graph, labels, name): DLPFC if available, else synthetic."""
    import numpy as np
    import scanpy as sc

    import scsiameseclu as ssc
    from benchmarks.datasets import SHARED_DATA, load

    if (SHARED_DATA / f"{DLPFC}.h5ad").exists():
        adata, labels = load(DLPFC)
        return adata, np.asarray(labels), DLPFC
    adata = ssc.datasets.synthetic_tissue(4000, n_domains=5, random_state=0)
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=30, random_state=0)
    spatial_graph(adata)
    return adata, adata.obs["domain"].to_numpy(), "synthetic_tissue(4000)"


def run_tests(budget: float) -> dict:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests/test_gpu.py"]
    try:
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=budget, check=False)
        summary, rc = (res.stdout.strip().splitlines() or [""])[-1], res.returncode
    except subprocess.TimeoutExpired:
        summary, rc = f"timed out after {budget:.0f} s", None
    return {"command": " ".join(cmd[1:]), "returncode": rc, "summary": summary, "seconds": time.perf_counter() - t0}


def cluster(adata, k: int, device: str, seed: int = 0, **kwargs) -> tuple:
    """Labels, seconds and the ``uns`` record of one ssc call on ``device`` (on a copy)."""
    import scsiameseclu as ssc

    t0 = time.perf_counter()
    out = ssc.tl.siamese_cluster(
        adata, n_clusters=k, device=device, random_state=seed, show_progress_bar=False, copy=True, **kwargs
    )
    return out.obs["ssc"].to_numpy(), time.perf_counter() - t0, out.uns["ssc"]


def agreement(adata, labels) -> dict:
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    k = len(np.unique(labels))
    a, seconds_a, _ = cluster(adata, k, "cuda")
    b, seconds_b, _ = cluster(adata, k, "cuda")
    c, seconds_cpu, _ = cluster(adata, k, "cpu")
    gpu_gpu = float(adjusted_rand_score(a, b))
    return {
        "ari_gpu_run1_vs_run2": gpu_gpu,
        "ari_gpu_vs_cpu": float(adjusted_rand_score(a, c)),
        "ari_truth_gpu": float(adjusted_rand_score(labels, a)),
        "ari_truth_cpu": float(adjusted_rand_score(labels, c)),
        "seconds_gpu": [seconds_a, seconds_b],
        "seconds_cpu": seconds_cpu,
        "passed": gpu_gpu >= MIN_AGREEMENT,
    }


def timing(base, labels, n_cells: int, left) -> list[dict]:
    """One row per setting of ``deterministic`` (the default first; the other while time is left)."""
    import numpy as np
    import torch
    from sklearn.metrics import adjusted_rand_score

    from benchmarks.studies.scaling import tile

    t0 = time.perf_counter()
    adata, tiled_labels = tile(base, labels, n_cells, seed=0)
    spatial_graph(adata)
    t_graph = time.perf_counter() - t0
    rows = []
    for deterministic in (True, False):
        if rows and left() < 2 * rows[0]["seconds_ssc"]:
            break
        torch.cuda.reset_peak_memory_stats()
        pred, seconds, uns = cluster(adata, len(np.unique(labels)), "cuda", deterministic=deterministic)
        rows.append(
            {
                "n_obs": int(adata.n_obs),
                "deterministic": deterministic,
                "seconds_tile_and_graph": t_graph,
                "seconds_ssc": seconds,
                "timings": {k: float(v) for k, v in uns["timings"].items()},
                "training": dict(uns["training"]),
                "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20,
                "ari": float(adjusted_rand_score(tiled_labels, pred)),
            }
        )
    return rows


def report(result: dict) -> str:
    lines = [
        "# GPU check",
        "",
        f"`python -m benchmarks.gpu_check` on {result['device_name']} (torch {result['torch']}, "
        f"{result['cpus']} CPU cores), commit {result['git_commit']}, tissue {result['tissue']}.",
        "",
        f"- gpu-marked tests: `{result['tests']['summary']}` (exit {result['tests']['returncode']}).",
    ]
    agree = result.get("agreement")
    if agree:
        lines.append(
            f"- Two GPU runs, same seed: ARI {agree['ari_gpu_run1_vs_run2']:.4f} between them "
            f"({'pass' if agree['passed'] else 'FAIL'}, threshold {MIN_AGREEMENT}); GPU vs CPU "
            f"{agree['ari_gpu_vs_cpu']:.4f}; ARI against the annotation GPU {agree['ari_truth_gpu']:.3f}, "
            f"CPU {agree['ari_truth_cpu']:.3f}; seconds GPU {agree['seconds_gpu'][0]:.1f} / "
            f"{agree['seconds_gpu'][1]:.1f}, CPU {agree['seconds_cpu']:.1f}."
        )
    if result.get("timings"):
        lines += [
            "",
            "| cells | deterministic | tile + graph (s) | ssc (s) | train (s) | embed (s) | mixture (s) | mode | peak GPU (MB) | ARI |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in result["timings"]:
            t = row["timings"]
            lines.append(
                f"| {row['n_obs']:,} | {row.get('deterministic', False)} | {row['seconds_tile_and_graph']:.1f} | "
                f"{row['seconds_ssc']:.1f} | "
                f"{t.get('train', float('nan')):.1f} | {t.get('embed', 0):.1f} | {t.get('mixture', 0):.1f} | "
                f"{row['training']['mode']} | {row['peak_gpu_mb']:.0f} | {row['ari']:.3f} |"
            )
    for note in result["skipped"]:
        lines.append(f"- Not run: {note}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--sizes", nargs="*", type=int, default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for the whole check")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("No CUDA device on this machine: nothing to check (the GPU check runs where CUDA is available).")
        return 0
    t_start = time.perf_counter()

    def left() -> float:
        return args.budget - (time.perf_counter() - t_start)

    result = {
        "device_name": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "git_commit": child.commit(),
        "skipped": [],
        "timings": [],
    }
    result["tests"] = run_tests(budget=max(60.0, 0.3 * args.budget))
    base, labels, result["tissue"] = tissue()
    if left() > 60:
        result["agreement"] = agreement(base, labels)
    else:
        result["skipped"].append("agreement runs (time budget spent)")
    for n_cells in sorted(args.sizes):
        if left() < 30:
            result["skipped"].append(f"{n_cells:,} cells (time budget spent)")
            continue
        result["timings"] += timing(base, labels, n_cells, left)
    result["seconds_total"] = time.perf_counter() - t_start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=2))
    (args.out / "gpu_check.md").write_text(report(result))
    print(report(result))
    passed = result["tests"]["returncode"] == 0 and result.get("agreement", {}).get("passed", False)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
