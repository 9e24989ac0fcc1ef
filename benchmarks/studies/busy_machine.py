"""ssc on a busy machine: one DLPFC slice idle and next to busy processes, per thread count.

    python -m benchmarks.studies.busy_machine [--threads 1 2] [--busy 2] [--dataset NAME] [--out DIR]

Each run is a fresh process calling ``ssc.tl.siamese_cluster`` (defaults, true k, seed 0) with
``n_jobs`` set to each thread count, first on the idle machine, then while ``--busy`` processes
spin on the CPU (``while True: pass``), the load of other users on a laptop or shared server.
Records method seconds, process CPU seconds and ARI; writes ``busy_machine.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import child  # noqa: E402


def one_run(name: str, n_jobs: int) -> dict:
    from sklearn.metrics import adjusted_rand_score

    import scsiameseclu as ssc
    from benchmarks.datasets import DATASETS, load, n_true
    from benchmarks.methods._ssc import user_choice

    adata, labels = load(name)
    t0, c0 = time.perf_counter(), time.process_time()
    ssc.tl.siamese_cluster(
        adata,
        n_clusters=n_true(labels),
        random_state=0,
        n_jobs=n_jobs,
        show_progress_bar=False,
        **user_choice(adata, DATASETS[name]),
    )
    return {
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "ari": float(adjusted_rand_score(labels, adata.obs["ssc"])),
        "n_threads": int(adata.uns["ssc"]["training"]["n_threads"]),
    }


def measure(name: str, n_jobs: int, n_busy: int) -> dict:
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n_busy)]
    try:
        time.sleep(1 if busy else 0)
        load = os.getloadavg()[0]
        run = child.run("benchmarks.studies.busy_machine", name, n_jobs)
    finally:
        for p in busy:
            p.kill()
    return {"n_jobs": n_jobs, "busy": n_busy, "loadavg_before": load, **run}


def report(name: str, runs: list[dict]) -> str:
    idle = {r["n_jobs"]: r["seconds"] for r in runs if r["busy"] == 0}
    best_idle = min(idle.values()) if idle else float("nan")
    lines = [
        f"# ssc on a busy machine ({name}, seed 0)",
        "",
        "`python -m benchmarks.studies.busy_machine`: fresh process per run, `n_jobs` torch threads, idle and next to "
        f"busy processes (`while True: pass`), {os.cpu_count()} CPU cores. Ratios are to the fastest idle run.",
        "",
        "| n_jobs | busy processes | seconds | CPU seconds | × fastest idle | ARI |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['n_jobs']} | {r['busy']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
            f"{r['seconds'] / best_idle:.2f} | {r['ari']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="dlpfc_151673_maynard2021_hvg5000")
    parser.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--busy", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--one", nargs=2, metavar=("DATASET", "N_JOBS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one[0], int(args.one[1]))))
        return
    runs = []
    for n_busy in (0, args.busy):
        for n_jobs in args.threads:
            runs.append(measure(args.dataset, n_jobs, n_busy))
            sys.stderr.write(f"n_jobs={n_jobs} busy={n_busy}: {runs[-1]['seconds']:.1f} s\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "busy_machine.json").write_text(json.dumps({"dataset": args.dataset, "runs": runs}, indent=2))
    (args.out / "busy_machine.md").write_text(report(args.dataset, runs))
    print(report(args.dataset, runs))


if __name__ == "__main__":
    main()
