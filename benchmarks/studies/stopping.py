"""The label-free stop of the training stages: steps, time and ARI against the fixed schedule.

    python -m benchmarks.studies.stopping [--datasets NAME ...] [--seeds 0 1 2 3 4]
        [--config NAME=JSON ...] [--jobs 2] [--out benchmarks/results/stopping.jsonl]

Each (dataset, seed, configuration) runs ``ssc.tl.siamese_cluster`` with the defaults, the true
k and the configuration's ``train_kwargs`` in a fresh process, and appends one JSON line: ARI,
the steps each stage ran, the seconds of the call. The configurations default to ``fixed``
(both plateau tolerances 0: every stage its full length, the schedule before the rule) and ``default``
(the package's defaults). Datasets: every shared set (the user's one choice by target, as in
:mod:`benchmarks.methods._ssc`) and ``synthetic_tissue`` (400 cells, 4 planted layers, the test
suite's tissue). ``--jobs`` runs that many processes side by side (ARI does not depend on it;
the seconds do, so time-to-compare runs use ``--jobs 1`` on a quiet machine). Labels score the
runs only; the rule reads the training loss alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import child  # noqa: E402

SYNTHETIC = "synthetic_tissue"
CONFIGS = {"fixed": {"plateau_tol_pretrain": 0.0, "plateau_tol_cluster": 0.0}, "default": {}}


def synthetic():
    """The test suite's tissue: 400 cells, 4 layers, log-normalised, 20 PCs, a squidpy 6-NN graph."""
    import scanpy as sc
    import squidpy as sq

    import scsiameseclu as ssc

    adata = ssc.datasets.synthetic_tissue(400, n_domains=4, n_genes=100, random_state=1)
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=20, random_state=0)
    sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6)
    return adata, adata.obs["domain"].to_numpy()


def one_run(name: str, seed: int, config: str, train_kwargs: str) -> dict:
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    import scsiameseclu as ssc
    from benchmarks.datasets import DATASETS, load, n_true
    from benchmarks.methods._ssc import user_choice

    if name == SYNTHETIC:
        (adata, labels), kwargs = synthetic(), {}
    else:
        adata, labels = load(name)
        kwargs = user_choice(adata, DATASETS[name])
    t0 = time.perf_counter()
    ssc.tl.siamese_cluster(
        adata,
        n_clusters=n_true(labels),
        random_state=seed,
        show_progress_bar=False,
        train_kwargs=json.loads(train_kwargs),
        **kwargs,
    )
    seconds = time.perf_counter() - t0
    u = adata.uns["ssc"]
    return {
        "dataset": name,
        "seed": seed,
        "config": config,
        "train_kwargs": json.loads(train_kwargs),
        "ari": float(adjusted_rand_score(labels, adata.obs["ssc"].to_numpy())),
        "epochs": {k: int(v) for k, v in u["epochs"].items()},
        "seconds_ssc": seconds,
        "seconds_train": float(u["timings"]["train"]),
        "n_clusters_found": int(np.unique(adata.obs["ssc"]).size),
        "commit": child.commit(),
    }


def table(runs: list[dict], reference: str = "fixed") -> str:
    """Per dataset and configuration: ARI mean ± sd (and its change from ``reference``), steps per stage, train seconds."""
    import pandas as pd

    df = pd.DataFrame(runs)
    df["pretrain"] = [e.get("pretrain", 0) for e in df["epochs"]]
    df["cluster"] = [e.get("cluster", 0) for e in df["epochs"]]
    df["steps"] = df["pretrain"] + df["cluster"]
    g = df.groupby(["dataset", "config"], sort=False)
    out = g.agg(
        seeds=("seed", "nunique"),
        ari=("ari", "mean"),
        sd=("ari", "std"),
        pre=("pretrain", "mean"),
        clu=("cluster", "mean"),
        steps=("steps", "mean"),
        train=("seconds_train", "mean"),
    ).reset_index()
    datasets = list(dict.fromkeys(df["dataset"]))
    configs = [reference, *(c for c in dict.fromkeys(df["config"]) if c != reference)]
    out["order"] = [
        datasets.index(d) * len(configs) + configs.index(c) for d, c in zip(out.dataset, out.config, strict=True)
    ]
    out = out.sort_values("order")
    ref = out[out.config == reference].set_index("dataset")
    lines = [
        f"| dataset | configuration | seeds | ARI mean ± sd | Δ ARI vs {reference} | pre-training steps | "
        f"clustering steps | steps vs {reference} | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out.itertuples():
        delta = steps = ""
        if r.config != reference and r.dataset in ref.index:
            delta = f"{r.ari - ref.loc[r.dataset, 'ari']:+.3f}"
            steps = f"{r.steps / ref.loc[r.dataset, 'steps']:.0%}"
        lines.append(
            f"| {r.dataset} | {r.config} | {r.seeds} | {r.ari:.3f} ± {r.sd:.3f} | {delta} | {r.pre:.0f} | {r.clu:.0f} | "
            f"{steps} | {r.train:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    from benchmarks.datasets import available

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--config", nargs="*", default=None, help="NAME=JSON train_kwargs (default: fixed, default)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stopping.jsonl")
    parser.add_argument("--table", action="store_true", help="print the table of --out and exit")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one[0], int(args.one[1]), args.one[2], args.one[3])))
        return
    if args.table:
        print(table([json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]))
        return
    configs = dict(CONFIGS)
    if args.config:
        configs = {c.split("=", 1)[0]: json.loads(c.split("=", 1)[1]) for c in args.config}
    names = args.datasets or [*available(), SYNTHETIC]
    jobs = [(n, s, c) for n in names for s in args.seeds for c in configs]

    def go(job):
        name, seed, config = job
        run = child.run("benchmarks.studies.stopping", name, seed, config, json.dumps(configs[config]))
        with args.out.open("a") as f:  # one line per run as it ends (appends of a line do not interleave)
            f.write(json.dumps(run) + "\n")
        sys.stderr.write(
            f"{name} seed={seed} {config} ARI={run['ari']:.3f} {run['epochs']} {run['seconds_ssc']:.1f}s\n"
        )
        return run

    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(go, jobs))
    print(table(runs))


if __name__ == "__main__":
    main()
