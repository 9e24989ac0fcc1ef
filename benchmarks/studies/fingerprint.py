"""Fingerprints of ssc's results on the shared datasets: did a refactor change what ssc computes?

    python -m benchmarks.studies.fingerprint --out before.json [--datasets NAME ...] [--seeds 0 1 2]
    python -m benchmarks.studies.fingerprint --compare before.json after.json

Each (dataset, seed) runs with the defaults and the true k (as in ``benchmarks/studies/run_ssc.py``) in
its own process, on one torch thread (floating-point sums depend on the thread count). The record
holds SHA-256 digests of the labels and of the embedding's bytes, and the ARI (scored against the
annotation, for the comparison table only). ``--compare`` lists, per run, whether labels and
embedding are bit-identical and the ARI of both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def one_run(name: str, seed: int) -> dict:
    import numpy as np
    import torch
    from sklearn.metrics import adjusted_rand_score

    import scsiameseclu as ssc
    from benchmarks.datasets import DATASETS, load, n_true
    from benchmarks.methods._ssc import user_choice

    torch.set_num_threads(1)
    adata, labels = load(name)
    kwargs = user_choice(adata, DATASETS[name])
    ssc.tl.siamese_cluster(adata, n_clusters=n_true(labels), random_state=seed, show_progress_bar=False, **kwargs)
    pred = adata.obs["ssc"].cat.codes.to_numpy().astype(np.int64)
    z = np.ascontiguousarray(adata.obsm["X_ssc"], dtype=np.float32)
    return {
        "dataset": name,
        "seed": seed,
        "labels_sha256": hashlib.sha256(pred.tobytes()).hexdigest(),
        "embedding_sha256": hashlib.sha256(z.tobytes()).hexdigest(),
        "ari": float(adjusted_rand_score(labels, pred)),
    }


def compare(before: Path, after: Path) -> str:
    runs = {(r["dataset"], r["seed"]): r for r in json.loads(before.read_text())}
    lines = [
        "| dataset | seed | labels identical | embedding identical | ARI before | ARI after |",
        "|---|---|---|---|---|---|",
    ]
    for r in json.loads(after.read_text()):
        b = runs.get((r["dataset"], r["seed"]))
        if b is None:
            continue
        lines.append(
            f"| {r['dataset']} | {r['seed']} | {b['labels_sha256'] == r['labels_sha256']} | "
            f"{b['embedding_sha256'] == r['embedding_sha256']} | {b['ari']:.3f} | {r['ari']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.datasets import available

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--one", nargs=2, metavar=("DATASET", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one[0], int(args.one[1]))))
        return
    if args.compare:
        print(compare(*args.compare))
        return
    if args.out is None:
        parser.error("--out is required")
    from benchmarks import child

    runs = []
    for name in args.datasets or available():
        for seed in args.seeds:
            runs.append(child.run("benchmarks.studies.fingerprint", name, seed))
            sys.stderr.write(f"{name} seed={seed} ARI={runs[-1]['ari']:.3f}\n")
            args.out.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
