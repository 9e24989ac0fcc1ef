"""Every method on every shared dataset, the same preprocessing and the true k; merge and report.

    python -m benchmarks.run [--datasets NAME ...] [--methods NAME ...] [--seeds 0 1 2 3 4]
                             [--out benchmarks/results] [--timeout 3600] [--quick] [--resume]

Each (dataset, method, seed) runs in its own child process (``nice -n 19``; in the method's own
virtual environment for peers, built on first use by :mod:`benchmarks.envs`), so its peak RSS is
its own. A run that fails, times out or cannot be installed is stored with its reason. Results
merge: the runs of this call replace the same (dataset, method, seed) in ``results.json``, and
``summary.md`` and the figures are regenerated from all stored runs.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks import envs
from benchmarks.child import commit as git_commit
from benchmarks.datasets import available, is_spatial, prepare
from benchmarks.methods import METHODS, applies
from benchmarks.metrics import scores

ROOT = Path(__file__).resolve().parents[1]
QUICK_DATASET = "starmap_visp_wang2018_1207"
QUICK_METHODS = ["ssc", "kmeans"]


def python_for(method: str) -> tuple[str | None, str | None]:
    """The interpreter a method runs in, or (None, reason) when its env cannot be built."""
    env = METHODS[method].env
    if env is None:
        return sys.executable, None
    reason = envs.failure(env)
    if reason is None and not envs.ready(env):
        sys.stderr.write(f"building env {env} (first use) ...\n")
        reason = envs.build(env)
    return (None, reason) if reason else (str(envs.python(env)), None)


def one(
    name: str,
    method: str,
    seed: int,
    *,
    quick: bool,
    timeout: float,
    meta: dict,
    prepared: tuple[Path, Path] | None = None,
) -> dict:
    """One run in its own process (the method's env); ``prepared``: another preprocessing's (data, labels) files."""
    data, label_path = prepared or prepare(name)
    run = {
        "dataset": name,
        "method": method,
        "seed": seed,
        "quick": quick,
        "env": METHODS[method].env or "project",
        "timeout_s": timeout,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        **meta,
    }
    py, reason = python_for(method)
    if py is None:
        return run | {"status": "install_failed", "reason": reason}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.npz"
        cmd = ["nice", "-n", "19", py, "-m", "benchmarks.worker", method, str(data), str(seed), str(out)]
        cmd += ["--quick"] if quick else []
        env = os.environ | {"PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", "MPLBACKEND": "Agg"}
        t0 = time.perf_counter()
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return run | {"status": "timeout", "reason": f"no result within {timeout:.0f} s", "wall_s": timeout}
        wall = time.perf_counter() - t0
        if res.returncode != 0 or not out.exists():
            # Traceback paths relative to the repository, so stored reasons name no machine.
            tail = " | ".join(res.stderr.strip().splitlines()[-8:]).replace(f"{ROOT}/", "")
            return run | {"status": "failed", "reason": f"exit {res.returncode}: {tail[-1500:]}", "wall_s": wall}
        child = json.loads(res.stdout.strip().splitlines()[-1])
        pred = np.load(out)["labels"]
    labels = np.load(label_path)
    return run | {
        "status": "ok",
        "n_obs": int(labels.size),
        "k": int(np.unique(labels).size),
        **scores(labels, pred),
        "wall_s": wall,
        **child,
    }


@contextmanager
def locked(path: Path):
    lock = path.with_suffix(".lock")
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def store(out: Path, new: dict) -> list[dict]:
    """Replace the run with the same key in ``results.json`` (or append it); return all runs."""
    path = out / "results.json"
    with locked(path):
        runs = json.loads(path.read_text())["runs"] if path.exists() else []
        key = ("dataset", "method", "seed", "quick")
        runs = [r for r in runs if tuple(r[k] for k in key) != tuple(new[k] for k in key)] + [new]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"runs": runs}, indent=1, default=str))
        tmp.replace(path)
    return runs


def main(argv: list[str] | None = None) -> None:
    from benchmarks import report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=None, help="default: every shared dataset")
    parser.add_argument("--methods", nargs="*", default=None, help=f"default: all of {list(METHODS)}")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DATASET}, seed 0, {QUICK_METHODS}, ssc short")
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument("--resume", action="store_true", help="skip runs already stored with a result")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets = args.datasets or [QUICK_DATASET]
        args.methods = args.methods or QUICK_METHODS
        args.seeds = [0]
    names = args.datasets or available()
    methods = args.methods or list(METHODS)
    for bad, known, what in ((names, available(), "dataset"), (methods, list(METHODS), "method")):
        unknown = sorted(set(bad) - set(known))
        if unknown:
            parser.error(f"unknown or missing {what}(s) {unknown}; available: {known}")
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "git_commit": git_commit(),
        "host": platform.node(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": "cpu",
        "nice": 19,
    }
    done = set()
    if args.resume and (args.out / "results.json").exists():
        stored = json.loads((args.out / "results.json").read_text())["runs"]
        done = {(r["dataset"], r["method"], r["seed"], r["quick"]) for r in stored if r["status"] == "ok"}
    for name in names:
        spatial = is_spatial(name)
        for method in methods:
            if not applies(method, spatial):
                continue
            for seed in args.seeds:
                if (name, method, seed, args.quick) in done:
                    continue
                run = one(name, method, seed, quick=args.quick, timeout=args.timeout, meta=meta)
                runs = store(args.out, run)
                report.write_summary(runs, args.out)
                msg = f"ARI={run['ari']:.3f} {run['seconds']:.1f}s" if run["status"] == "ok" else run["reason"][:300]
                sys.stderr.write(f"{name} {method} seed={seed}: {run['status']} {msg}\n")
    if not args.no_figures:
        report.write_figures(json.loads((args.out / "results.json").read_text())["runs"], args.out)


if __name__ == "__main__":
    main()
