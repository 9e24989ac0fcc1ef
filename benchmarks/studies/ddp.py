"""Data-parallel training (torch.distributed, gloo on the CPU): N processes against one, same data.

    python -m benchmarks.studies.ddp --datasets synthetic dlpfc --seeds 0 1 2 --nproc 2

Each (dataset, seed) runs once in one process and once under
``python -m torch.distributed.run --standalone --nproc_per_node N`` (torchrun: each process one
CPU thread, the ``gloo`` backend); rank 0 writes the labels. ``--batch-size`` forces mini-batch
training (neighbourhood samples; without it, a dataset under 50,000 cells trains on the whole
graph, and the ranks then differ only in their augmentations). Datasets: ``synthetic`` (the
layered tissue of ``ssc.datasets``, 3,000 cells or N with ``synthetic:N``, squidpy 6-NN graph), ``dlpfc`` (DLPFC 151673 as in
``benchmarks/datasets.py``) or ``tiled:N`` (DLPFC tiled to N cells as in ``benchmarks.studies.scaling``).
Rows are appended to ``<out>/ddp.jsonl``; the table is printed.

The worker (``--worker``) is what torchrun starts; it is also the test's entry point
(``tests/test_distributed.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def load(dataset: str):
    """(AnnData with X_pca and a spatial graph, labels, k, ssc keyword arguments)."""
    import logging
    import warnings

    import numpy as np

    logging.getLogger("squidpy").setLevel(logging.ERROR)
    if dataset.split(":")[0] == "synthetic":
        import scanpy as sc
        import squidpy as sq

        import scsiameseclu as ssc

        n_cells = int(dataset.split(":")[1]) if ":" in dataset else 3000
        adata = ssc.datasets.synthetic_tissue(n_cells, random_state=0)
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
        sc.pp.pca(adata, n_comps=30, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6)
        labels = adata.obs["domain"].astype(str).to_numpy()
        return adata, labels, len(np.unique(labels)), {}
    from benchmarks.studies.scaling import TILED

    name, _, kwargs = TILED["dlpfc"]
    if dataset == "dlpfc":
        from benchmarks.datasets import load as load_shared

        adata, labels = load_shared(name)
        return adata, labels, len(np.unique(labels)), kwargs
    if dataset.startswith("tiled:"):
        import squidpy as sq

        from benchmarks.datasets import load as load_shared
        from benchmarks.studies.scaling import tile

        base, labels = load_shared(name)
        adata, labels = tile(base, labels, int(dataset.split(":")[1]), seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6)
        return adata, labels, len(np.unique(labels)), kwargs
    raise ValueError(f"Unknown dataset {dataset!r}: 'synthetic', 'dlpfc' or 'tiled:N'.")


def worker(dataset: str, seed: int, batch_size: int | None, out: Path) -> None:
    """One process of the run: join the group when torchrun started it, cluster, rank 0 writes."""
    import numpy as np
    import torch
    import torch.distributed as dist
    from sklearn.metrics import adjusted_rand_score

    import scsiameseclu as ssc
    from benchmarks import child

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    try:
        adata, labels, k, kwargs = load(dataset)
        t0 = time.perf_counter()
        # One torch thread per process, as torchrun intends (OMP_NUM_THREADS=1): two processes of
        # two threads each on two cores would spend their time waiting for each other.
        ssc.tl.siamese_cluster(
            adata, n_clusters=k, random_state=seed, batch_size=batch_size, n_jobs=1, show_progress_bar=False, **kwargs
        )
        seconds = time.perf_counter() - t0
        rank = dist.get_rank() if distributed else 0
        if rank == 0:
            uns = adata.uns["ssc"]
            row = {
                "dataset": dataset,
                "seed": seed,
                "n_obs": adata.n_obs,
                "world_size": int(uns["training"]["world_size"]),
                "mode": uns["training"]["mode"],
                "batch_size": uns["training"]["batch_size"],
                "torch_threads": torch.get_num_threads(),
                "seconds_ssc": seconds,
                "seconds_train": float(uns["timings"]["train"]),
                "peak_rss_mb_rank0": child.peak_rss_mb(),
                "ari": float(adjusted_rand_score(labels, adata.obs["ssc"].to_numpy())),
                "labels": np.asarray(adata.obs["ssc"].cat.codes).tolist(),
            }
            out.write_text(json.dumps(row))
    finally:
        if distributed:
            dist.destroy_process_group()


def launch(dataset: str, seed: int, batch_size: int | None, nproc: int, timeout: float | None = None) -> dict:
    """Run the worker in ``nproc`` processes (torchrun) or, for ``nproc=1``, in one plain process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        args = [
            "-m",
            "benchmarks.studies.ddp",
            "--worker",
            "--datasets",
            dataset,
            "--seeds",
            str(seed),
            "--out",
            str(out),
        ]
        if batch_size is not None:
            args += ["--batch-size", str(batch_size)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        if nproc > 1:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
        else:
            cmd = [sys.executable, *args]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, timeout=timeout, stdout=subprocess.DEVNULL)
        row = json.loads(out.read_text())
    row["seconds_process"] = time.perf_counter() - t0
    row["nproc"] = nproc
    return row


def table(rows: list[dict]) -> str:
    from sklearn.metrics import adjusted_rand_score

    lines = [
        "| dataset | cells | mode | seed | processes | ssc call (s) | training (s) | ARI | ARI − one process's | ARI between the two runs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    single = {(r["dataset"], r["seed"], r["batch_size"]): r for r in rows if r["nproc"] == 1}
    for r in rows:
        ref = single.get((r["dataset"], r["seed"], r["batch_size"]))
        diff = "" if ref is None else f"{r['ari'] - ref['ari']:+.3f}"
        same = "" if ref is None else f"{adjusted_rand_score(r['labels'], ref['labels']):.3f}"
        lines.append(
            f"| {r['dataset']} | {r['n_obs']:,} | {r['mode']} | {r['seed']} | {r['nproc']} | {r['seconds_ssc']:.1f} | "
            f"{r['seconds_train']:.1f} | {r['ari']:.3f} | {diff} | {same} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "dlpfc"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.datasets[0], args.seeds[0], args.batch_size, args.out)
        return
    rows = []
    for dataset in args.datasets:
        for seed in args.seeds:
            for nproc in (1, args.nproc):
                rows.append(launch(dataset, seed, args.batch_size, nproc))
                args.out.mkdir(parents=True, exist_ok=True)
                with (args.out / "ddp.jsonl").open("a") as fh:
                    fh.write(json.dumps({k: v for k, v in rows[-1].items() if k != "labels"}) + "\n")
    text = table(rows)
    sys.stdout.write(text)
    (args.out / "ddp.md").write_text(report(text, args))


def report(text: str, args) -> str:
    import platform

    import torch

    return (
        "# Data-parallel training: processes against one (issue 30)\n\n"
        f"`python -m benchmarks.studies.ddp --datasets {' '.join(args.datasets)} --seeds {' '.join(map(str, args.seeds))} "
        f"--nproc {args.nproc}" + (f" --batch-size {args.batch_size}" if args.batch_size else "") + "`: each "
        "dataset and seed once in one process and once under `torchrun --standalone "
        f"--nproc_per_node {args.nproc}` (gloo backend, one CPU thread per process, also for the single "
        "process), ssc defaults with the true k. ARI against the annotation; the last column compares the "
        "labels of the two runs with each other. "
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{time.strftime('%Y-%m-%d')}.\n\n" + text
    )


if __name__ == "__main__":
    main()
