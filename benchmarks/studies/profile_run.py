"""Where one ssc call spends its time: cProfile, regrouped into the method's stages.

    python -m benchmarks.studies.profile_run [--dataset NAME] [--threads N] [--batch-size N]

Runs ``ssc.tl.siamese_cluster`` once (defaults, true k, seed 0; ``--threads`` is passed as
``n_jobs``) under :mod:`cProfile` and prints, per stage, the cumulative seconds and the number
of calls, then the 25 functions with the most time of their own. The tables of
``benchmarks/results/profile.md`` are this output.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# stage label -> (function name, a piece of its file's path)
STAGES = {
    "mask_features": ("mask_features", "scsiameseclu"),
    "perturb_edges (incl. similar pairs)": ("perturb_edges", "scsiameseclu"),
    "network forward (embed)": ("embed", "_network"),
    "cross_correlation_loss": ("cross_correlation_loss", "scsiameseclu"),
    "reconstruction_loss": ("reconstruction_loss", "scsiameseclu"),
    "contrastive_loss": ("contrastive_loss", "scsiameseclu"),
    "swapped_assignment_loss": ("swapped_assignment_loss", "scsiameseclu"),
    "sinkhorn": ("sinkhorn", "scsiameseclu"),
    "backward": ("backward", "_tensor"),
    "optimizer step": ("step", "optim"),
    "seed_prototypes": ("seed_prototypes", "scsiameseclu"),
    "check_labels": ("check_labels", "scsiameseclu"),
    "batch (neighbourhood sampling)": ("batch", "_batches"),
    "fit_final_mixture": ("fit_final_mixture", "scsiameseclu"),
    "training_step": ("training_step", "scsiameseclu"),
    "fit (schedule)": ("fit", "_schedule"),
    "train": ("train", "_model"),
}


def stage_table(stats: pstats.Stats) -> list[tuple[str, float, int]]:
    """(stage, cumulative seconds, calls) for every stage that ran."""
    found: dict[str, list] = {}
    for (file, _line, func), (_cc, n_calls, _tt, cumulative, _callers) in stats.stats.items():
        for label, (name, where) in STAGES.items():
            if func == name and where in file:
                entry = found.setdefault(label, [0.0, 0])
                entry[0] += cumulative
                entry[1] += n_calls
    return [(label, *found[label]) for label in STAGES if label in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="dlpfc_151673_maynard2021_hvg5000")
    parser.add_argument("--threads", type=int, default=None, help="n_jobs (default: ssc decides)")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()

    import scsiameseclu as ssc
    from benchmarks.datasets import DATASETS, load, n_true
    from benchmarks.methods._ssc import user_choice

    adata, labels = load(args.dataset)
    kwargs = user_choice(adata, DATASETS[args.dataset])
    profile = cProfile.Profile()
    t0 = time.perf_counter()
    profile.enable()
    ssc.tl.siamese_cluster(
        adata,
        n_clusters=n_true(labels),
        random_state=0,
        n_jobs=args.threads,
        batch_size=args.batch_size,
        show_progress_bar=False,
        **kwargs,
    )
    profile.disable()
    total = time.perf_counter() - t0
    threads = adata.uns["ssc"]["training"]["n_threads"]
    print(f"{args.dataset}: {total:.1f} s (threads={threads}, batch_size={args.batch_size})")
    print("| stage | seconds | share of the call | calls |\n|---|---|---|---|")
    for label, seconds, n_calls in stage_table(pstats.Stats(profile)):
        print(f"| {label} | {seconds:.2f} | {seconds / total:.0%} | {n_calls} |")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue())


if __name__ == "__main__":
    main()
