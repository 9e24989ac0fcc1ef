"""Run ssc with its defaults and the true k on every shared dataset; write a table.

    python -m benchmarks.studies.run_ssc [--datasets NAME ...] [--seeds 0 1 2] [--out benchmarks/results]

Each (dataset, seed) runs in its own process so that peak RSS is that run's own. The only
per-dataset choice is the user's: tissue domains (default ``graph_weight``) or cell types on a
spatial graph (``graph_weight=0``, as the README tells users). Labels are used for scoring only.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import child  # noqa: E402
from benchmarks.methods._ssc import CELL_TYPE_GRAPH_WEIGHT, user_choice  # noqa: E402


def one_run(name: str, seed: int) -> dict:

    import numpy as np
    import torch
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    import scsiameseclu as ssc
    from benchmarks.datasets import DATASETS, load, n_true

    t0 = time.perf_counter()
    adata, labels = load(name)
    t_prep = time.perf_counter() - t0
    kwargs = user_choice(adata, DATASETS[name])
    t1 = time.perf_counter()
    ssc.tl.siamese_cluster(adata, n_clusters=n_true(labels), random_state=seed, show_progress_bar=False, **kwargs)
    t_ssc = time.perf_counter() - t1
    pred = adata.obs["ssc"].to_numpy()
    return {
        "dataset": name,
        "target": DATASETS[name],
        "seed": seed,
        "n_obs": adata.n_obs,
        "ari": float(adjusted_rand_score(labels, pred)),
        "nmi": float(normalized_mutual_info_score(labels, pred)),
        "seconds_ssc": t_ssc,
        "seconds_end_to_end": time.perf_counter() - t0,
        "seconds_preprocess_and_graph": t_prep,
        "peak_rss_mb": child.peak_rss_mb(),
        "graph_weight": adata.uns["ssc"]["params"]["graph_weight"],
        "stopped_epoch": adata.uns["ssc"]["stopped_epoch"],
        "device": adata.uns["ssc"]["params"]["device"],
        "torch_threads": torch.get_num_threads(),
        "version": ssc.__version__,
        "n_clusters_found": int(np.unique(pred).size),
    }


def table(runs: list[dict]) -> str:
    import pandas as pd

    df = pd.DataFrame(runs)
    g = df.groupby(["dataset", "target"], sort=False)
    out = g.agg(
        n_obs=("n_obs", "first"),
        seeds=("seed", "count"),
        ari_mean=("ari", "mean"),
        ari_std=("ari", "std"),
        nmi_mean=("nmi", "mean"),
        seconds_ssc=("seconds_ssc", "mean"),
        seconds_end_to_end=("seconds_end_to_end", "mean"),
        peak_rss_mb=("peak_rss_mb", "max"),
    ).reset_index()
    lines = [
        "| dataset | target | cells | seeds | ARI mean ± std | NMI mean | ssc s | end-to-end s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out.itertuples():
        lines.append(
            f"| {r.dataset} | {r.target} | {r.n_obs} | {r.seeds} | {r.ari_mean:.3f} ± {r.ari_std:.3f} | "
            f"{r.nmi_mean:.3f} | {r.seconds_ssc:.1f} | {r.seconds_end_to_end:.1f} | {r.peak_rss_mb:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    from benchmarks.datasets import available

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--one", nargs=2, metavar=("DATASET", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one[0], int(args.one[1]))))
        return
    names = args.datasets or available()
    if not names:
        sys.exit("No datasets found in ../shared/data.")
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for name in names:
        for seed in args.seeds:
            run = child.run("benchmarks.studies.run_ssc", name, seed)
            runs.append(run)
            sys.stderr.write(f"{name} seed={seed} ARI={run['ari']:.3f} ssc={run['seconds_ssc']:.1f}s\n")
    commit = child.commit()
    meta = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "git_commit": commit,
    }
    (args.out / "ssc_defaults.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    header = (
        "# ssc with defaults and the true k\n\n"
        f"`python -m benchmarks.studies.run_ssc` at commit {commit}, CPU ({runs[0]['torch_threads']} torch threads), "
        f"seeds {args.seeds}. Domains: default `graph_weight`; cell types on a spatial graph: "
        f"`graph_weight={CELL_TYPE_GRAPH_WEIGHT}`. End-to-end = read + normalise + PCA + graph + ssc.\n\n"
    )
    (args.out / "ssc_defaults.md").write_text(header + table(runs) + "\n")
    print(table(runs))


if __name__ == "__main__":
    main()
