"""Cell types under the preprocessing scanpy users run, against the simple baselines.

    python -m benchmarks.cell_types [--datasets NAME ...] [--seeds 0 1 2 3 4] [--protocols standard legacy]
        [--methods kmeans gmm leiden ssc] [--variant NAME JSON] [--subsample N] [--out benchmarks/results]

Protocols (the same for every method; labels are read for scoring only):

``standard``
    scanpy's classic flow: ``filter_genes(min_cells=3)``, ``normalize_total`` (counts only),
    ``log1p``, 2,000 highly variable genes (subset), ``scale(max_value=10)``, ``pca(50)``.
``unscaled``
    the same without ``scale`` (the flow of today's scanpy clustering tutorial).
``legacy``
    the peer table's preprocessing (:func:`benchmarks.datasets.load`): ``normalize_total``,
    ``log1p``, ``pca(50)``, no gene selection and no scaling.

Graphs as in :func:`benchmarks.datasets.load`: scanpy's 15-NN graph on the PCA for scRNA-seq,
squidpy's 6-NN spatial graph for spatial sets (where ssc runs with ``graph_weight=0``, the
README's choice for cell types, and Leiden on a 15-NN expression graph; tissue-domain sets keep
the defaults). ``--subsample N`` draws N cells per seed (with that seed) before preprocessing, for
the small-data check; the true k is then the number of labels among them. Methods: k-means on
the PCA (``n_init=10``), a full-covariance GMM on the PCA, Leiden with the resolution bisected to
the true k, and ssc with its defaults (``--variant`` adds ssc with extra keyword arguments,
for experiments). Each (dataset, protocol, method) runs its seeds in one process, on one torch
thread, each seed on a fresh copy of the data; results are appended to ``cell_types.jsonl`` and
summarised in ``cell_types.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import child  # noqa: E402

CELL_TYPE_SETS = [
    "baron_mouse_pancreas1_baron2016",
    "cbmc_citeseq_stoeckius2017_top2000",
    "cite_pbmc_10x_scdcc_top2000",
    "pbmc4k_10x_top2000",
    "worm_neuron_cao2017",
    "merfish_hypothalamus_moffitt2018_animal1",
]
N_TOP_GENES = 2000
#: What each ssc column of the table ran, for columns whose code is no longer the default.
COLUMNS = {
    "ssc": "ssc with its defaults since issue 43 (cell types: pre-training stopped at its loss plateau, no clustering stage, the final mixture started from Ward's partition)",
    "ssc_issue40": "ssc with its defaults of issue 40 (as `ssc`, with pre-training run its full 150 steps)",
    "ssc_issue27": "ssc with its defaults of issue 27 (cell types: no clustering stage, 10 k-means starts of the final mixture)",
    "ssc_before": "ssc before issue 27 (commit 07accc2): clustering stage for cell types, mixture from the prototypes only",
    "ssc_kmeans_starts": "clustering stage kept (`n_epochs_cluster=100`), 10 k-means starts of the final mixture",
    "ssc_gw0": "ssc before issue 27 with `graph_weight=0`",
    "ssc_kmeans_init": "ssc before issue 27 with `train_kwargs={'init': 'kmeans'}`",
    "ssc_balance0": "ssc before issue 27 with `train_kwargs={'balance': 0}`",
}


def load(name: str, protocol: str, *, subsample: int | None = None, seed: int = 0):
    """The dataset under ``protocol`` with its cell graph; returns the AnnData and the labels."""
    import scanpy as sc

    from benchmarks.datasets import cell_graph, read
    from benchmarks.datasets import load as legacy_load

    if protocol == "legacy":
        return legacy_load(name, subsample=subsample, seed=seed)
    if protocol not in ("standard", "unscaled"):
        raise ValueError(f"unknown protocol {protocol!r}")
    adata = read(name, subsample=subsample, seed=seed)
    labels = adata.obs["label"].astype(str).to_numpy()
    sc.pp.filter_genes(adata, min_cells=3)
    if adata.uns.get("X_is_integer_counts", True):
        adata.layers["counts"] = adata.X.copy()  # kept, as scanpy's tutorials do (ssc's `counts_layer`)
        sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    if adata.n_vars > N_TOP_GENES:
        sc.pp.highly_variable_genes(adata, n_top_genes=N_TOP_GENES)
        adata = adata[:, adata.var["highly_variable"]].copy()
    if protocol == "standard":
        sc.pp.scale(adata, max_value=10)
    sc.pp.pca(adata, n_comps=min(50, adata.n_vars - 1), random_state=0)
    cell_graph(adata)
    return adata, labels


def runs(
    name: str, protocol: str, method: str, seeds: list[int], variant: dict, subsample: int | None = None
) -> list[dict]:
    """Every seed of one method on one dataset, the data loaded once (per seed when subsampled)."""
    import torch

    torch.set_num_threads(1)
    if subsample is None:
        data = load(name, protocol)
        return [one_run(data, name, protocol, method, seed, variant) for seed in seeds]
    return [
        one_run(load(name, protocol, subsample=subsample, seed=seed), name, protocol, method, seed, variant)
        | {"subsample": subsample}
        for seed in seeds
    ]


def one_run(data, name: str, protocol: str, method: str, seed: int, variant: dict) -> dict:
    import numpy as np
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    adata, labels = data[0].copy(), data[1]
    k = len(np.unique(labels))
    t0 = time.perf_counter()
    if method == "kmeans":
        from sklearn.cluster import KMeans

        pred = KMeans(k, n_init=10, random_state=seed).fit_predict(adata.obsm["X_pca"])
    elif method == "gmm":
        from sklearn.mixture import GaussianMixture

        x = np.asarray(adata.obsm["X_pca"], dtype=np.float64)
        pred = GaussianMixture(k, random_state=seed).fit(x).predict(x)
    elif method == "leiden":
        import scanpy as sc

        from benchmarks.methods._leiden import leiden_k

        if "connectivities" not in adata.obsp:
            sc.pp.neighbors(adata, n_neighbors=15, use_rep="X_pca", random_state=0)
        pred = leiden_k(adata, k, seed)[0]
    else:  # ssc, or an ssc variant
        import scsiameseclu as ssc
        from benchmarks.datasets import DATASETS
        from benchmarks.methods._ssc import user_choice

        kwargs = user_choice(adata, DATASETS[name]) | dict(variant)
        ssc.tl.siamese_cluster(adata, n_clusters=k, random_state=seed, show_progress_bar=False, **kwargs)
        pred = adata.obs["ssc"].to_numpy()
    return {
        "dataset": name,
        "protocol": protocol,
        "method": method,
        "seed": seed,
        "n_obs": int(adata.n_obs),
        "n_vars": int(adata.n_vars),
        "ari": float(adjusted_rand_score(labels, pred)),
        "nmi": float(normalized_mutual_info_score(labels, pred)),
        "seconds": time.perf_counter() - t0,
        "commit": child.commit(),
    }


def table(runs: list[dict]) -> str:
    import pandas as pd

    df = pd.DataFrame(runs)
    if "subsample" in df:  # a subsampled run is its own row
        sub = df["subsample"].fillna(0).astype(int)
        df["dataset"] = df["dataset"].where(sub == 0, df["dataset"] + " (" + sub.astype(str) + " cells)")
    agg = df.groupby(["dataset", "protocol", "method"]).ari.agg(["mean", "std", "count"]).reset_index()
    methods = list(dict.fromkeys(df["method"]))
    lines = [
        "| dataset | protocol | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for (dataset, protocol), g in agg.groupby(["dataset", "protocol"], sort=False):
        cells = {r.method: r for r in g.itertuples()}
        best = max(cells.values(), key=lambda r: r.mean).method
        row = []
        for m in methods:
            r = cells.get(m)
            if r is None:
                row.append("—")
                continue
            text = f"{r.mean:.3f}" + (f" ± {r.std:.3f}" if r.count > 1 else "") + f" ({r.count})"
            row.append(f"**{text}**" if m == best else text)
        lines.append(f"| {dataset} | {protocol} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=CELL_TYPE_SETS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--protocols", nargs="*", default=["standard", "legacy"])
    parser.add_argument("--methods", nargs="*", default=["kmeans", "gmm", "leiden", "ssc"])
    parser.add_argument("--variant", nargs=2, action="append", default=[], metavar=("NAME", "JSON"))
    parser.add_argument("--subsample", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        name, protocol, method, variant = args.one
        for run in runs(name, protocol, method, args.seeds, json.loads(variant), args.subsample):
            print(json.dumps(run), flush=True)
        return
    runs_file = args.out / "cell_types.jsonl"
    variants = {m: {} for m in args.methods} | {name: json.loads(kw) for name, kw in args.variant}
    for name in args.datasets:
        for protocol in args.protocols:
            for method, variant in variants.items():
                seeds = [str(s) for s in args.seeds]
                res = subprocess.run(
                    [sys.executable, "-m", "benchmarks.cell_types", "--one", name, protocol, method, json.dumps(variant),
                     "--seeds", *seeds, *(["--subsample", str(args.subsample)] if args.subsample else [])],
                    capture_output=True, text=True, check=False, cwd=ROOT,
                )  # fmt: skip
                if res.returncode != 0:
                    sys.stderr.write(res.stderr[-3000:])
                    sys.exit(f"{name} {protocol} {method} failed")
                for line in res.stdout.splitlines():
                    if not line.startswith('{"dataset"'):  # libraries may print to stdout
                        continue
                    run = json.loads(line) | {"variant": variant}
                    with runs_file.open("a") as f:
                        f.write(json.dumps(run) + "\n")
                    sys.stderr.write(f"{name} {protocol} {method} seed={run['seed']} ARI={run['ari']:.3f}\n")
    report(args.out)


def report(out: Path) -> None:
    """Write ``cell_types.md`` from every run stored in ``cell_types.jsonl``."""
    runs_file = out / "cell_types.jsonl"
    all_runs = [json.loads(line) for line in runs_file.read_text().splitlines() if line.strip()]
    (out / "cell_types.md").write_text(
        "# Cell types: ssc and the simple baselines under two preprocessing protocols\n\n"
        "`python -m benchmarks.cell_types` (protocols in its docstring); ARI mean ± std (runs), "
        "one torch thread per run, true k; best mean per row in bold. Rows named with a cell count ran on a "
        "random subsample of that size, drawn anew per seed.\n\n"
        + table(all_runs)
        + "\n\nColumns:\n\n"
        + "".join(f"- `{m}`: {COLUMNS[m]}\n" for m in dict.fromkeys(r["method"] for r in all_runs) if m in COLUMNS)
    )


if __name__ == "__main__":
    main()
