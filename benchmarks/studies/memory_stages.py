"""Where the memory of one large ssc call goes: resident memory per stage, on tiled cells.

    python -m benchmarks.studies.memory_stages [--cells 1000000] [--dataset dlpfc] [--out DIR]

Tiles a shared dataset to ``--cells`` cells (``benchmarks.studies.scaling.tile``), builds the squidpy
graph, then runs ``ssc.tl.siamese_cluster`` (defaults, true k, seed 0) with each stage of the
call wrapped: a thread samples the process's RSS every 20 ms and books each sample to the
stages running (a stage's peak includes the stages nested in it). Per stage it reports RSS on entry, the peak inside and RSS on exit,
in MB, plus the sizes of what the call holds per cell (the input matrix, the graph's edge pairs,
the embedding). Appends one JSON line per run to ``memory_stages.jsonl`` under ``--out``.
The wrapping replaces module attributes for the duration of the run only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.studies.scaling import RssSampler  # noqa: E402

# stage label -> (module, attribute path)
STAGES = {
    "read input and graph (model constructor)": ("scsiameseclu.model._model", "SiameseClusterModel.__init__"),
    "graph to edge pairs": ("scsiameseclu.model._model", "graph_to_pairs"),
    "cell graph (CSR for training and inference)": ("scsiameseclu.model._batches", "CellGraph.__init__"),
    "training (schedule)": ("scsiameseclu.model._schedule", "fit"),
    "  training steps": ("scsiameseclu.model._distributed", "training_step"),
    "  embedding of the seeding sample": ("scsiameseclu.model._batches", "SampledNeighbourhoods.embed_init"),
    "  prototype seeding": ("scsiameseclu.model._schedule", "seed_prototypes"),
    "  stopping checks": ("scsiameseclu.model._batches", "SampledNeighbourhoods.check_labels"),
    "  locality order (inference)": ("scsiameseclu.model._batches", "locality_order"),
    "embed every cell": ("scsiameseclu.model._model", "SiameseClusterModel._embed"),
    "final mixture": ("scsiameseclu.model._final_mixture", "fit_final_mixture"),
    "soft assignments": ("scsiameseclu.model._model", "SiameseClusterModel._assign"),
    "results": ("scsiameseclu.model._model", "SiameseClusterModel.results"),
    "write into adata": ("scsiameseclu.tl._siamese_cluster", "write_results"),
}


class StageMemory(RssSampler):
    """RSS sampler (in MB) that books each sample to every active stage."""

    def __init__(self, interval: float = 0.02):
        super().__init__(interval)
        self.stack: list[str] = []
        self.stats: dict[str, dict[str, float]] = {}

    def rss(self) -> float:
        return super().rss() / 2**20

    def sample(self, rss: float) -> None:
        super().sample(rss)
        for label in list(self.stack):
            entry = self.stats[label]
            entry["peak_mb"] = max(entry["peak_mb"], rss)

    @contextlib.contextmanager
    def stage(self, label: str):
        now = self.rss()
        entry = self.stats.setdefault(label, {"entry_mb": now, "peak_mb": now, "exit_mb": now, "calls": 0})
        entry["calls"] += 1
        self.stack.append(label)
        try:
            yield
        finally:
            self.sample(self.rss())
            self.stack.pop()
            entry["exit_mb"] = self.rss()


def _wrap(memory: StageMemory, label: str, fn):
    def wrapped(*args, **kwargs):
        with memory.stage(label):
            return fn(*args, **kwargs)

    return wrapped


@contextlib.contextmanager
def staged(memory: StageMemory):
    """Wrap every stage of :data:`STAGES` for the duration of the block."""
    import importlib

    undo = []
    for label, (module_name, path) in STAGES.items():
        owner = importlib.import_module(module_name)
        *parents, attr = path.split(".")
        for name in parents:
            owner = getattr(owner, name)
        original = getattr(owner, attr)
        setattr(owner, attr, _wrap(memory, label, original))
        undo.append((owner, attr, original))
    try:
        yield
    finally:
        for owner, attr, original in reversed(undo):
            setattr(owner, attr, original)


def run(short: str, n_cells: int, seed: int = 0) -> dict:
    import warnings

    import numpy as np
    import squidpy as sq
    from sklearn.metrics import adjusted_rand_score

    import scsiameseclu as ssc
    from benchmarks import child
    from benchmarks.datasets import load
    from benchmarks.studies.scaling import TILED, tile

    name, _target, kwargs = TILED[short]
    base, labels = load(name)
    adata, labels = tile(base, labels, n_cells, seed=seed)
    del base
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6)
    graph = adata.obsp["spatial_connectivities"]
    memory = StageMemory()
    with staged(memory), memory:  # wrapping imports the model layer (and torch) first
        before = memory.rss()
        t0 = time.perf_counter()
        with memory.stage("whole call"):
            ssc.tl.siamese_cluster(
                adata, n_clusters=len(np.unique(labels)), random_state=seed, show_progress_bar=False, **kwargs
            )
    seconds = time.perf_counter() - t0
    return {
        "dataset": short,
        "n_obs": adata.n_obs,
        "n_edges": int(graph.nnz // 2),
        "seconds_ssc": seconds,
        "rss_before_call_mb": before,
        "peak_rss_process_mb": child.peak_rss_mb(),
        "stages": memory.stats,
        "sizes_mb": {
            "input X_pca (float32)": adata.obsm["X_pca"].nbytes / 2**20,
            "graph in obsp (CSR)": (graph.data.nbytes + graph.indices.nbytes + graph.indptr.nbytes) / 2**20,
            "embedding obsm['X_ssc']": adata.obsm["X_ssc"].nbytes / 2**20,
        },
        "training": dict(adata.uns["ssc"]["training"]),
        "ari": float(adjusted_rand_score(labels, adata.obs["ssc"].to_numpy())),
    }


def report(row: dict) -> str:
    lines = [
        f"{row['dataset']}, {row['n_obs']:,} cells, {row['n_edges']:,} edges: {row['seconds_ssc']:.0f} s, "
        f"RSS before the call {row['rss_before_call_mb']:.0f} MB, process peak {row['peak_rss_process_mb']:.0f} MB, "
        f"ARI {row['ari']:.3f}",
        "",
        "| stage | calls | RSS on entry (MB) | peak inside (MB) | RSS on exit (MB) | peak − entry (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for label, s in row["stages"].items():
        lines.append(
            f"| {label} | {s['calls']} | {s['entry_mb']:.0f} | {s['peak_mb']:.0f} | {s['exit_mb']:.0f} | "
            f"{s['peak_mb'] - s['entry_mb']:.0f} |"
        )
    lines += ["", "| held per cell | MB |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in row["sizes_mb"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--dataset", default="dlpfc")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--label", default="", help="what code ran (stored with the row)")
    args = parser.parse_args(argv)
    row = {"label": args.label, **run(args.dataset, args.cells)}
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "memory_stages.jsonl").open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    print(report(row))


if __name__ == "__main__":
    main()
