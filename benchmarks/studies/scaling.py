"""Scaling of ssc: shared datasets tiled into larger tissues, each stage timed, one process per size.

    python -m benchmarks.studies.scaling --sizes 10000 100000 1000000 --out benchmarks/results/

A tissue of N cells is made of copies of a shared dataset placed side by side on a grid, with
coordinates jittered (a quarter of the median nearest-neighbour distance) and expression jittered
(Gaussian noise of 10% of each principal component's standard deviation, on the PCA fitted once
on the original data as in ``benchmarks/datasets.py``); the last copy is subsampled to give
exactly N cells, and every cell keeps its copy's label. The untiled dataset (no noise) is run
too, as the reference ARI. squidpy builds the graph (``coord_type="generic", n_neighs=6``), then
``ssc.tl.siamese_cluster`` runs with its defaults and the true k (``graph_weight=0.2`` for the
MERFISH cell types, so that the graph branch is part of what scales, although the README now
advises 0 for cell types on a spatial graph), which picks mini-batch training above 50,000 cells.

Each (dataset, N) runs in a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own; RSS
is also sampled during the ssc call alone. Results accumulate in ``scaling.json`` (a rerun of
the same dataset, N, seed and device replaces its row), from which ``scaling.md`` and
``scaling.png`` (log-log time and memory against N) are rewritten. The machine may be shared:
every row records the 1-minute load average before and after the run and the process CPU time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import child  # noqa: E402

# short name -> (shared dataset, what the labels are, ssc keyword arguments a user would pass)
TILED = {
    "merfish": ("merfish_hypothalamus_moffitt2018_animal1", "cell types", {"graph_weight": 0.2}),
    "dlpfc": ("dlpfc_151673_maynard2021_hvg5000", "domains", {}),
}
COORD_JITTER = 0.25  # of the median nearest-neighbour distance
EXPRESSION_NOISE = 0.1  # of each principal component's standard deviation


def tile(adata, labels, n_cells: int, seed: int = 0):
    """``n_cells`` cells from jittered copies of ``adata`` side by side; returns (AnnData, labels).

    The result holds only what ssc reads: ``obsm['X_pca']`` and ``obsm['spatial']``.
    """
    import anndata as ad
    import numpy as np
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    n0 = adata.n_obs
    n_copies = math.ceil(n_cells / n0)
    last = n_cells - (n_copies - 1) * n0
    idx = np.concatenate([np.tile(np.arange(n0), n_copies - 1), np.sort(rng.choice(n0, last, replace=False))]).astype(
        np.int64
    )
    copy = np.concatenate([np.repeat(np.arange(n_copies - 1), n0), np.full(last, n_copies - 1)])

    xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)[:, :2]
    xy = xy - xy.min(0)
    span = xy.max(0)
    nn_dist = float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1]))
    cols = math.ceil(math.sqrt(n_copies))
    offsets = np.stack([np.arange(n_copies) % cols, np.arange(n_copies) // cols], 1) * (span * 1.05 + 10 * nn_dist)
    spatial = xy[idx] + offsets[copy] + rng.normal(scale=COORD_JITTER * nn_dist, size=(idx.size, 2))

    pca = np.asarray(adata.obsm["X_pca"], dtype=np.float32)
    sd = pca.std(0).astype(np.float32)
    out = np.empty((idx.size, pca.shape[1]), dtype=np.float32)
    step = 200_000  # draw the noise in blocks to keep the transient memory small
    for s in range(0, idx.size, step):
        noise = rng.standard_normal((min(step, idx.size - s), pca.shape[1]), dtype=np.float32)
        out[s : s + step] = pca[idx[s : s + step]] + EXPRESSION_NOISE * sd * noise
    tiled = ad.AnnData(obsm={"X_pca": out, "spatial": spatial.astype(np.float32)})
    tiled.obs_names = [f"c{i}" for i in range(idx.size)]
    return tiled, labels[idx]


class RssSampler:
    """Peak resident memory of this process, sampled every ``interval`` seconds while running."""

    def __init__(self, interval: float = 0.05):
        import psutil

        self.proc, self.peak, self.interval = psutil.Process(), 0, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return self.proc.memory_info().rss

    def sample(self, rss: int) -> None:
        self.peak = max(self.peak, rss)

    def _run(self):
        while not self._stop.is_set():
            self.sample(self.rss())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample(self.rss())


def _cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one_run(short: str, n_cells: int, seed: int, device: str, batch_size: int | None = None) -> dict:
    """Load, tile (``n_cells=0``: untiled), build the graph, run ssc; every stage timed."""
    import logging
    import warnings

    import numpy as np
    import psutil
    import squidpy as sq
    import torch
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    import scsiameseclu as ssc
    from benchmarks.datasets import load

    logging.getLogger("squidpy").setLevel(logging.ERROR)
    name, target, kwargs = TILED[short]
    load_before = os.getloadavg()[0]
    rss_idle = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    base, labels = load(name)
    if n_cells:
        adata, labels = tile(base, labels, n_cells, seed=seed)
        del base
        t_tile = time.perf_counter() - t0
        t1, c1 = time.perf_counter(), _cpu_seconds()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6)
        t_graph, c_graph = time.perf_counter() - t1, _cpu_seconds() - c1
    else:  # the untiled reference: load() built the same squidpy graph
        adata, t_tile, t_graph, c_graph = base, time.perf_counter() - t0, float("nan"), float("nan")
    rss_before_ssc = psutil.Process().memory_info().rss
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t2, c2 = time.perf_counter(), _cpu_seconds()
    with RssSampler() as sampler:
        ssc.tl.siamese_cluster(
            adata,
            n_clusters=len(np.unique(labels)),
            random_state=seed,
            device=device,
            batch_size=batch_size,
            show_progress_bar=False,
            **kwargs,
        )
    t_ssc, c_ssc = time.perf_counter() - t2, _cpu_seconds() - c2
    uns = adata.uns["ssc"]
    timings = uns["timings"]
    on_cuda = uns["params"]["device"].startswith("cuda")
    pred = adata.obs["ssc"].to_numpy()
    return {
        "dataset": short,
        "source": name,
        "target": target,
        "tiled": bool(n_cells),
        "n_obs": adata.n_obs,
        "n_edges": int(adata.obsp["spatial_connectivities"].nnz // 2),
        "seed": seed,
        "batch_size_arg": batch_size,
        "ari": float(adjusted_rand_score(labels, pred)),
        "nmi": float(normalized_mutual_info_score(labels, pred)),
        "seconds_load_tile": t_tile,
        "seconds_graph": t_graph,
        "cpu_seconds_graph": c_graph,
        "seconds_pretrain": timings.get("pretrain", float("nan")),
        "seconds_init": timings.get("init_prototypes", float("nan")),
        "seconds_cluster": timings.get("cluster", float("nan")),
        "seconds_train": timings.get("train", float("nan")),
        # Embedding every cell once after training, the final mixture fit, then labelling.
        "seconds_embed": timings.get("embed", 0.0),
        "seconds_mixture": timings.get("mixture", 0.0),
        "seconds_inference": timings.get("inference", float("nan")),
        "seconds_ssc": t_ssc,
        "cpu_seconds_ssc": c_ssc,
        "peak_rss_mb": child.peak_rss_mb(),
        "peak_rss_ssc_mb": sampler.peak / 2**20,
        "rss_idle_mb": rss_idle / 2**20,
        "rss_before_ssc_mb": rss_before_ssc / 2**20,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if on_cuda else None,
        "device": uns["params"]["device"],
        "device_name": torch.cuda.get_device_name() if on_cuda else f"CPU ({os.cpu_count()} cores)",
        "torch_threads": torch.get_num_threads(),
        "training": dict(uns["training"]),
        "stopped_epoch": int(uns["stopped_epoch"]),
        "n_steps": len(uns["loss"]),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg()[0],
        "version": ssc.__version__,
    }


def _key(run: dict) -> tuple:
    return run["dataset"], run["n_obs"] if run["tiled"] else 0, run["seed"], run["device"], run["batch_size_arg"]


def table(runs: list[dict]) -> str:
    lines = [
        "| dataset | cells | tiled | device | training (per step) | graph s | pre-train s | init s | clustering s "
        "| inference s | mixture s | ssc s (CPU s) | peak RSS MB (ssc) | GPU MB | ARI | NMI | load before/after | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: (r["dataset"], r["tiled"], r["n_obs"], r["device"])):
        tr = r["training"]
        path = "full batch"
        if tr["mode"] == "minibatch":
            path = f"mini-batch ({tr['batch_size']} seeds, {tr['mean_batch_cells']:,.0f} cells)"
        if tr.get("inference") == "chunked":
            path += ", chunked inference"
        gpu = "–" if r["peak_gpu_mb"] is None else f"{r['peak_gpu_mb']:.0f}"
        graph = "–" if not r["tiled"] else f"{r['seconds_graph']:.1f}"
        lines.append(
            f"| {r['dataset']} ({r['target']}) | {r['n_obs']:,} | {'yes' if r['tiled'] else 'no'} | "
            f"{r['device_name']} | {path} | {graph} | {r['seconds_pretrain']:.1f} | {r['seconds_init']:.1f} | "
            f"{r['seconds_cluster']:.1f} | {r.get('seconds_embed', 0.0) + r['seconds_inference']:.1f} | "
            f"{r.get('seconds_mixture', float('nan')):.1f} | {r['seconds_ssc']:.1f} "
            f"({r['cpu_seconds_ssc']:.0f}) | {r['peak_rss_mb']:.0f} ({r['peak_rss_ssc_mb']:.0f}) | {gpu} | "
            f"{r['ari']:.3f} | {r['nmi']:.3f} | {r['loadavg_before']:.1f}/{r['loadavg_after']:.1f} | "
            f"{r.get('git_commit', '–')} |"
        )
    return "\n".join(lines)


def summary(runs: list[dict]) -> str:
    """Log-log slopes of memory and time (from the first size >= 100,000 and from 1,000,000 cells to the largest) and ARI against the untiled reference."""
    out = []
    for short in sorted({r["dataset"] for r in runs}):
        for device in sorted({r["device"] for r in runs if r["dataset"] == short}):
            rows = [r for r in runs if r["dataset"] == short and r["device"] == device]
            tiled = sorted((r for r in rows if r["tiled"]), key=lambda r: r["n_obs"])
            ref = [r for r in rows if not r["tiled"]]
            if ref:
                diffs = ", ".join(f"{r['n_obs']:,}: {r['ari'] - ref[0]['ari']:+.3f}" for r in tiled)
                out.append(f"- {short} on {device}: untiled ARI {ref[0]['ari']:.3f}; tiled minus untiled: {diffs}.")
            big = [r for r in tiled if r["n_obs"] >= 100_000]
            spans = [(big[0], big[-1])] if len(big) >= 2 else []
            million = [r for r in big if r["n_obs"] >= 1_000_000]
            if len(million) >= 2 and million[0] is not big[0]:  # the slope the atlas-scale target names
                spans.append((million[0], million[-1]))
            for a, b in spans:
                span = math.log(b["n_obs"] / a["n_obs"])
                slope = math.log(b["peak_rss_mb"] / a["peak_rss_mb"]) / span
                grow_a = a["peak_rss_ssc_mb"] - a["rss_idle_mb"]
                grow_b = b["peak_rss_ssc_mb"] - b["rss_idle_mb"]
                slope_net = math.log(grow_b / grow_a) / span
                t_slope = math.log(b["seconds_ssc"] / a["seconds_ssc"]) / span
                out.append(
                    f"- {short} on {device}, {a['n_obs']:,} → {b['n_obs']:,} cells: log-log slope of peak RSS "
                    f"{slope:.2f} (of the RSS above the idle interpreter, during ssc: {slope_net:.2f}); "
                    f"of ssc wall time {t_slope:.2f}."
                )
    return "\n".join(out)


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    groups = sorted({(r["dataset"], r["device"]) for r in runs if r["tiled"]})
    for (short, device), marker in zip(groups, "osD^v<>", strict=False):
        rows = sorted(
            (r for r in runs if r["tiled"] and (r["dataset"], r["device"]) == (short, device)), key=lambda r: r["n_obs"]
        )
        n = [r["n_obs"] for r in rows]
        label = f"{short} ({device})"
        axes[0].plot(n, [r["seconds_ssc"] for r in rows], marker=marker, label=f"{label}: ssc (after graph)")
        axes[0].plot(n, [r["seconds_graph"] for r in rows], marker=marker, ls=":", label=f"{label}: squidpy graph")
        axes[1].plot(n, [r["peak_rss_mb"] / 1024 for r in rows], marker=marker, label=f"{label}: peak RSS")
        gpu = [(r["n_obs"], r["peak_gpu_mb"] / 1024) for r in rows if r["peak_gpu_mb"] is not None]
        if gpu:
            axes[1].plot(*zip(*gpu, strict=True), marker=marker, ls="--", label=f"{label}: peak GPU memory")
    ns = sorted({r["n_obs"] for r in runs if r["tiled"]})
    if len(ns) >= 2:
        ref = [r for r in runs if r["tiled"] and r["n_obs"] == ns[0]]
        t0, m0 = min(r["seconds_ssc"] for r in ref), min(r["peak_rss_mb"] for r in ref) / 1024
        for ax, y0 in ((axes[0], t0), (axes[1], m0)):
            ax.plot(ns, [y0 * n / ns[0] for n in ns], color="grey", lw=0.8, label="slope 1 (linear)")
    for ax, ylabel, title in (
        (axes[0], "wall time (s)", "Time"),
        (axes[1], "memory (GiB)", "Peak memory (whole process)"),
    ):
        ax.set(xscale="log", yscale="log", xlabel="cells", ylabel=ylabel, title=title)
        ax.grid(True, which="both", lw=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def write_report(runs: list[dict], out: Path, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    header = (
        "# Scaling: tiled tissues\n\n"
        "`python -m benchmarks.studies.scaling` (see its docstring for the tiling). Times are wall seconds; "
        "`ssc s` is `ssc.tl.siamese_cluster` end to end after the graph (pre-training, prototype init "
        "and clustering are its training stages, inference embeds and labels every cell, mixture fits the "
        "final tied-covariance mixture on at most 100,000 of them), with the "
        "process CPU seconds in brackets. Peak RSS is the whole process (`ru_maxrss`: loading, tiling, "
        "graph and ssc); in brackets, the peak sampled during the ssc call. `load` is the 1-minute load "
        f"average before/after the run on a machine with {os.cpu_count()} cores shared with other "
        "jobs: a load above the core count means the wall times are inflated by other work.\n\n"
    )
    body = table(runs) + "\n\n" + summary(runs) + "\n\n![time and memory against cells](scaling.png)\n"
    (out / "scaling.md").write_text(header + body)
    plot(runs, out / "scaling.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--datasets", nargs="*", default=list(TILED), choices=list(TILED))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="force mini-batches (default: ssc decides)")
    parser.add_argument("--no-untiled", action="store_true", help="skip the untiled reference run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--one", nargs=5, metavar=("DATASET", "N", "SEED", "DEVICE", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        short, n, seed, device, batch = args.one
        print(json.dumps(one_run(short, int(n), int(seed), device, None if batch == "None" else int(batch))))
        return
    path = args.out / "scaling.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    sizes = ([] if args.no_untiled else [0]) + sorted(args.sizes)
    for short in args.datasets:
        for n in sizes:
            run = child.run("benchmarks.studies.scaling", short, n, args.seed, args.device, args.batch_size)
            commit = child.commit()
            run["git_commit"] = commit  # rows of other runs keep theirs
            runs = [r for r in runs if _key(r) != _key(run)] + [run]
            meta = {
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "git_commit": commit,
            }
            write_report(runs, args.out, meta)
            sys.stderr.write(
                f"{short} n={run['n_obs']} ARI={run['ari']:.3f} ssc={run['seconds_ssc']:.0f}s "
                f"rss={run['peak_rss_mb']:.0f}MB load={run['loadavg_before']:.1f}/{run['loadavg_after']:.1f}\n"
            )


if __name__ == "__main__":
    main()
