"""A model reused on the next slice: DLPFC 151673 → 151674 as the README's steps, and missing genes.

    python -m benchmarks.studies.reuse [--seeds 0 1 2 3 4] [--jobs 1]
    python -m benchmarks.studies.reuse --report   # rewrite the table from the stored runs only

Per seed, in its own process (one torch thread), with the README's preprocessing of each slice
on its own (``normalize_total``, ``log1p``, ``pca``, ``spatial_neighbors_knn(n_neighs=6)``):

- **readme**: train on 151673 (``return_model=True``), save, load, ``predict`` on 151674. The two
  files hold different 5,000-gene selections (2,340 shared), so 151674 lacks 53% of the training
  PCA's genes; they take their training means (``max_missing_genes=1`` to allow them all).
- **shared genes**: both slices cut to their shared genes before the preprocessing, then the same
  (the fix the error message gives).
- **trained on 151674**: ssc run on 151674 itself, the reference for what reuse can reach.
- **missing genes**: the 151673 model predicting 151673 with a random share of its genes
  removed (ARI against the layers, and against its own prediction with every gene); the same for
  a PBMC4k model (cell types; scanpy's flow: ``filter_genes(min_cells=3)``, ``normalize_total``,
  ``log1p``, 2,000 HVG, PCA 50, 15-NN).

Appends one line per seed to ``results/reuse.jsonl``; ``results/reuse.md`` is rewritten from
the latest line of each seed. Labels are read for scoring only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import child  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
TRAIN, NEW = "dlpfc_151673_maynard2021_hvg5000", "dlpfc_151674_maynard2021_hvg5000"
CELLS = "pbmc4k_10x_top2000"
SHARES = (0.1, 0.25, 0.5, 0.6, 0.75)


def _prepare(adata):
    import logging

    import scanpy as sc
    import squidpy as sq

    logging.getLogger("squidpy").setLevel(logging.ERROR)
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sq.gr.spatial_neighbors_knn(adata, n_neighs=6)
    return adata


def _missing_curve(model, adata, truth, rng) -> dict:
    """ARI of ``model``'s predictions of ``adata`` with each share of its training genes removed at random."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score as ari

    full = model.predict(adata)
    genes = np.asarray(model.spec.projection.var_names)
    curve = {}
    for share in SHARES:
        drop = set(rng.choice(genes, int(round(share * len(genes))), replace=False))
        kept = adata[:, [g for g in adata.var_names if g not in drop]].copy()
        del kept.obsm["X_pca"], kept.varm["PCs"]  # projected from the genes it still has
        pred = model.predict(kept, max_missing_genes=1.0)
        curve[str(share)] = {"ari": float(ari(truth, pred)), "agreement": float(ari(full, pred))}
    return curve


def one_run(seed: int) -> dict:
    import numpy as np
    import scanpy as sc
    import torch
    from sklearn.metrics import adjusted_rand_score as ari

    import scsiameseclu as ssc
    from benchmarks.datasets import read

    torch.set_num_threads(1)
    warnings.simplefilter("ignore", UserWarning)  # the missing-gene warning, expected here
    raw = {name: read(name) for name in (TRAIN, NEW)}
    truth = {name: a.obs["label"].astype(str).to_numpy() for name, a in raw.items()}
    out = {"seed": seed}

    # The README's steps, each slice preprocessed on its own.
    train, new = _prepare(raw[TRAIN].copy()), _prepare(raw[NEW].copy())
    model = ssc.tl.siamese_cluster(train, n_clusters=7, random_state=seed, return_model=True, show_progress_bar=False)
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "m")
        model = ssc.model.SiameseClusterModel.load(Path(tmp) / "m")
    genes = model.spec.projection.var_names
    out["n_genes"] = len(genes)
    out["n_missing"] = int(len(set(genes) - set(new.var_names)))
    out["train_ari"] = float(ari(truth[TRAIN], train.obs["ssc"]))
    out["readme_ari"] = float(ari(truth[NEW], model.predict(new, max_missing_genes=1.0)))

    # Missing genes on the training slice itself: drop a random share of the training genes.
    rng = np.random.default_rng(seed)
    out["missing"] = _missing_curve(model, train, truth[TRAIN], rng)

    # The same on dissociated cells (cell types): PBMC4k under scanpy's clustering flow.
    cells = read(CELLS)
    cells_truth = cells.obs["label"].astype(str).to_numpy()
    sc.pp.filter_genes(cells, min_cells=3)
    sc.pp.normalize_total(cells)
    sc.pp.log1p(cells)
    sc.pp.highly_variable_genes(cells, n_top_genes=2000, subset=True)
    sc.pp.pca(cells, n_comps=50, random_state=0)
    sc.pp.neighbors(cells, n_neighbors=15, random_state=0)
    k = len(np.unique(cells_truth))
    model_c = ssc.tl.siamese_cluster(cells, n_clusters=k, random_state=seed, return_model=True, show_progress_bar=False)
    out["cells_train_ari"] = float(ari(cells_truth, cells.obs["ssc"]))
    out["cells_missing"] = _missing_curve(model_c, cells, cells_truth, rng)

    # The fix the message gives: both slices on their shared genes before the preprocessing.
    shared = raw[TRAIN].var_names.intersection(raw[NEW].var_names)
    out["n_shared"] = int(len(shared))
    train_s, new_s = _prepare(raw[TRAIN][:, shared].copy()), _prepare(raw[NEW][:, shared].copy())
    model_s = ssc.tl.siamese_cluster(
        train_s, n_clusters=7, random_state=seed, return_model=True, show_progress_bar=False
    )
    out["shared_train_ari"] = float(ari(truth[TRAIN], train_s.obs["ssc"]))
    out["shared_ari"] = float(ari(truth[NEW], model_s.predict(new_s)))

    # Reference: ssc trained on the new slice itself.
    ssc.tl.siamese_cluster(new, n_clusters=7, random_state=seed, show_progress_bar=False)
    out["direct_ari"] = float(ari(truth[NEW], new.obs["ssc"]))
    return out


def report(path: Path) -> str:
    import numpy as np

    latest = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            latest[r["seed"]] = r
    runs = [latest[s] for s in sorted(latest)]

    def cell(values) -> str:
        values = np.asarray(values, dtype=float)
        return f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0:.3f}"

    seeds = ", ".join(str(r["seed"]) for r in runs)
    r0 = runs[0]
    lines = [
        "# A model reused on the next slice (DLPFC 151673 → 151674)",
        "",
        f"Generated by `python -m benchmarks.studies.reuse` (seeds {seeds}, one process and one torch thread per seed,",
        "2-core CPU). Each slice preprocessed on its own with the README's steps (`normalize_total`, `log1p`,",
        "`pca`, `spatial_neighbors_knn(n_neighs=6)`); k = 7; ARI against the layer annotation, mean ± sd over",
        "seeds. The two files hold different 5,000-gene selections: the training PCA's",
        f"{r0['n_genes']:,} genes, of which 151674 lacks {r0['n_missing']:,} ({r0['n_missing'] / r0['n_genes']:.0%});",
        f"{r0['n_shared']:,} genes are shared.",
        "",
        "| how | ARI on 151674 |",
        "|---|---|",
        f"| trained on 151673, predict on 151674 (the README's steps; missing genes at their training means) | "
        f"{cell([r['readme_ari'] for r in runs])} |",
        f"| both cut to the shared genes first, then the same | {cell([r['shared_ari'] for r in runs])} |",
        f"| ssc trained on 151674 itself (reference) | {cell([r['direct_ari'] for r in runs])} |",
        "",
        f"On the training slice: ARI {cell([r['train_ari'] for r in runs])} with all genes, "
        f"{cell([r['shared_train_ari'] for r in runs])} on the shared genes.",
        "",
        "Missing genes on the training slice itself: the 151673 model predicting 151673 with a random share of",
        "its training genes removed (they take their training means).",
        "",
        "| genes missing | ARI against the layers | ARI against the prediction with every gene |",
        "|---|---|---|",
        f"| 0% | {cell([r['train_ari'] for r in runs])} | 1.000 |",
    ]
    for share in SHARES:
        key = str(share)
        lines.append(
            f"| {share:.0%} | {cell([r['missing'][key]['ari'] for r in runs])} | "
            f"{cell([r['missing'][key]['agreement'] for r in runs])} |"
        )
    runs = [r for r in runs if "cells_missing" in r]
    if runs:
        lines += [
            "",
            "The same for a PBMC4k model (cell types, k = 8; scanpy's flow: `filter_genes(min_cells=3)`,",
            "`normalize_total`, `log1p`, 2,000 HVG, PCA 50, 15-NN graph) predicting PBMC4k:",
            "",
            "| genes missing | ARI against the annotation | ARI against the prediction with every gene |",
            "|---|---|---|",
            f"| 0% | {cell([r['cells_train_ari'] for r in runs])} | 1.000 |",
        ]
        for share in SHARES:
            key = str(share)
            lines.append(
                f"| {share:.0%} | {cell([r['cells_missing'][key]['ari'] for r in runs])} | "
                f"{cell([r['cells_missing'][key]['agreement'] for r in runs])} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--report", action="store_true", help="only rewrite the table from stored runs")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    store = OUT / "reuse.jsonl"
    if args.one is not None:
        print(json.dumps(one_run(args.one)))
        return
    if not args.report:
        commit = child.commit()
        for seed in args.seeds:
            try:
                run = {**child.run("benchmarks.studies.reuse", seed), "commit": commit}
            except child.ChildFailed as err:
                sys.stderr.write(f"{err}\n")
                continue
            with store.open("a") as f:
                f.write(json.dumps(run) + "\n")
            sys.stderr.write(
                f"seed {seed}: {run['readme_ari']:.3f} / {run['shared_ari']:.3f} / {run['direct_ari']:.3f}\n"
            )
    (OUT / "reuse.md").write_text(report(store))


if __name__ == "__main__":
    main()
