"""Tissue domains under the preprocessing users run: a grid of variants × seeds, ssc and the fast peers.

    python -m benchmarks.domains [--datasets NAME ...] [--variants NAME ...] [--methods ssc banksy ...]
                                 [--seeds 0 1 2 3 4] [--timeout 3600]
    python -m benchmarks.domains --report        # rewrite the table from the stored runs only

Every variant changes one choice of the README's flow (``normalize_total``, ``log1p``, ``pca``,
``squidpy.gr.spatial_neighbors_knn(n_neighs=6)``), as scanpy's and squidpy's tutorials do, plus one
typical combination:

========  ===========================================================================
readme    all of the file's genes, ``normalize_total()`` (median), no scaling, 6-NN graph
hvg2000   2,000 highly variable genes (``seurat``, on the log data) before the PCA
hvg3000   3,000 highly variable genes before the PCA
scale     ``sc.pp.scale(max_value=10)`` before the PCA
tsum1e4   ``normalize_total(target_sum=1e4)``
knn8      the 8-NN graph
grid      squidpy's Visium grid graph (``coord_type="grid"``, 6 neighbours; Visium sets only)
typical   2,000 HVG, ``target_sum=1e4``, scaling, 6-NN
========  ===========================================================================

Sets with no more genes than a variant selects (STARmap 1,020, osmFISH 33, BaristaSeq 79) skip the
HVG variants (``typical`` keeps its other choices); the PCA keeps min(50, genes - 1) components. Each variant's data is written once (cached) with the
structure of :func:`benchmarks.datasets.prepare` and every method reads the same file through
:mod:`benchmarks.worker` (one process per run, the method's own environment, ``nice -n 19``; its
seed only changes). Runs are appended to ``results/domains.jsonl``; ``results/domains.md`` holds, per
dataset and method, the mean ARI of each variant over seeds, the worst variant, the spread between
variant means and the largest seed standard deviation. Labels are read for scoring only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results"

from benchmarks.datasets import CACHE, DATASETS, SHARED_DATA, read  # noqa: E402

DOMAIN_SETS = [name for name, target in DATASETS.items() if target == "domains"]
VARIANTS = {
    "readme": {},
    "hvg2000": {"n_hvg": 2000},
    "hvg3000": {"n_hvg": 3000},
    "scale": {"scale": True},
    "tsum1e4": {"target_sum": 1e4},
    "knn8": {"n_neighs": 8},
    "grid": {"graph": "grid"},
    "typical": {"n_hvg": 2000, "target_sum": 1e4, "scale": True},
}
METHODS = ["ssc", "banksy", "cellcharter", "smooth_gmm"]


def applies(name: str, variant: str, n_vars: int) -> bool:
    """A variant applies where it changes something: a gene selection above that many genes, the grid on Visium."""
    options = VARIANTS[variant]
    if set(options) == {"n_hvg"} and n_vars <= options["n_hvg"]:
        return False
    return options.get("graph") != "grid" or name.startswith("dlpfc")


def preprocess(adata, *, n_hvg=None, scale=False, target_sum=None, n_neighs=6, graph="knn"):
    """The README's flow with one variant's choices, in place."""
    import scanpy as sc
    import squidpy as sq

    if adata.uns.get("X_is_integer_counts", True):
        sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)
    if n_hvg is not None and adata.n_vars > n_hvg:
        sc.pp.highly_variable_genes(adata, n_top_genes=n_hvg, subset=True)
    if scale:
        sc.pp.scale(adata, max_value=10)
    sc.pp.pca(adata, n_comps=min(50, adata.n_vars - 1), random_state=0)
    logging.getLogger("squidpy").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if graph == "grid":
            sq.gr.spatial_neighbors(adata, coord_type="grid", n_neighs=6)
        else:
            sq.gr.spatial_neighbors_knn(adata, n_neighs=n_neighs)


def prepared(name: str, variant: str) -> tuple[Path, Path]:
    """The variant's preprocessed file (no labels in it) and its labels, written once (cached)."""
    import anndata as ad
    import numpy as np

    src = SHARED_DATA / f"{name}.h5ad"
    stamp = f"{Path(__file__).read_bytes()!r}{variant}{src.stat().st_size}{src.stat().st_mtime_ns}"
    tag = hashlib.sha1(stamp.encode()).hexdigest()[:10]
    path, label_path = CACHE / f"{name}.{variant}.{tag}.h5ad", CACHE / f"{name}.{variant}.{tag}.labels.npy"
    if path.exists() and label_path.exists():
        return path, label_path
    CACHE.mkdir(parents=True, exist_ok=True)
    adata = read(name)
    labels = adata.obs["label"].astype(str).to_numpy()
    preprocess(adata, **VARIANTS[variant])
    out = ad.AnnData(X=adata.X, obs=adata.obs[[]], var=adata.var[[]])  # BANKSY reads X
    for key in ("X_pca", "spatial"):
        out.obsm[key] = adata.obsm[key]
    for key, value in adata.obsp.items():
        out.obsp[key] = value
    out.uns["benchmark"] = {
        "dataset": name,
        "target": "domains",
        "n_clusters": len(np.unique(labels)),
        "variant": variant,
    }
    tmp = path.with_suffix(".tmp.h5ad")
    out.write_h5ad(tmp)
    tmp.rename(path)
    np.save(label_path, labels.astype(str))
    return path, label_path


def n_genes(name: str) -> int:
    import h5py

    with h5py.File(SHARED_DATA / f"{name}.h5ad", "r") as f:
        return int(f["var"][f["var"].attrs["_index"]].shape[0])


def report(path: Path) -> str:
    import numpy as np

    latest = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if r.get("status") == "ok":
                latest[r["dataset"], r["variant"], r["method"], r["seed"]] = r
    runs = list(latest.values())
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in runs)]
    methods = [m for m in METHODS if any(r["method"] == m for r in runs)]
    lines = [
        "# Tissue domains under preprocessing variants",
        "",
        "Generated by `python -m benchmarks.domains` (variants in its docstring) from the latest run of each",
        "(dataset, variant, method, seed); ARI against the annotation, mean over seeds (count in brackets where",
        "fewer than five). `worst`: the lowest variant mean; `spread`: highest minus lowest variant mean;",
        "`seed sd`: the largest standard deviation over seeds of any variant. One process per run, one torch",
        "thread, true k, labels read for scoring only.",
        "",
        "| dataset | method | " + " | ".join(variants) + " | worst | spread | seed sd |",
        "|---|---|" + "---|" * (len(variants) + 3),
    ]
    for name in DOMAIN_SETS:
        for method in methods:
            means, sds, cells = {}, [], []
            for variant in variants:
                aris = [r["ari"] for r in runs if (r["dataset"], r["variant"], r["method"]) == (name, variant, method)]
                if not aris:
                    cells.append("—")
                    continue
                means[variant] = float(np.mean(aris))
                sds.append(float(np.std(aris, ddof=1)) if len(aris) > 1 else 0.0)
                cells.append(f"{means[variant]:.3f}" + (f" ({len(aris)})" if len(aris) < 5 else ""))
            if not means:
                continue
            worst = min(means.values())
            spread = max(means.values()) - worst
            lines.append(
                f"| {name} | {method} | " + " | ".join(cells) + f" | {worst:.3f} | {spread:.3f} | {max(sds):.3f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    from benchmarks.run import git_commit, one

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=DOMAIN_SETS)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--methods", nargs="*", default=METHODS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--tag", default="", help="stored with each run (e.g. an ssc variant under test)")
    parser.add_argument("--report", action="store_true", help="only rewrite the table from stored runs")
    args = parser.parse_args()
    store = OUT / "domains.jsonl"
    if not args.report:
        meta = {"git_commit": git_commit(), "tag": args.tag}
        for name in args.datasets:
            genes = n_genes(name)
            for variant in args.variants:
                if not applies(name, variant, genes):
                    continue
                files = prepared(name, variant)
                for method in args.methods:
                    for seed in args.seeds:
                        run = one(name, method, seed, quick=False, timeout=args.timeout, meta=meta, prepared=files)
                        run["variant"] = variant
                        with store.open("a") as f:
                            f.write(json.dumps(run, default=str) + "\n")
                        msg = f"ARI={run['ari']:.3f}" if run["status"] == "ok" else run.get("reason", "")[:200]
                        sys.stderr.write(f"{name} {variant} {method} seed={seed}: {run['status']} {msg}\n")
    (OUT / "domains.md").write_text(report(store))


if __name__ == "__main__":
    main()
