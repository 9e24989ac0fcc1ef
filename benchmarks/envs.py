"""Per-peer virtual environments, made by the benchmark itself.

    python -m benchmarks.envs [NAME ...]        # build (or check) the listed environments

Each peer lives in ``benchmarks/.envs/<name>`` with ``torch==2.13.0`` (the CPU wheel; torch is
pinned by a constraints file, so no peer can pull another build) plus the peer's own packages, so
nothing is ever installed into the project's development environment. A failed install is
recorded in ``benchmarks/.envs/<name>.failed`` and becomes the reason on that peer's runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ENVS_DIR = Path(__file__).resolve().parent / ".envs"
TORCH = "torch==2.13.0"

# What the trial run found is encoded here: seurat_v3 HVGs need scikit-misc; SpaGCN's louvain
# needs setuptools<81; cellcharter wants spatialdata/torchgmm, hence an env of its own; pynndescent
# 0.7 breaks scanpy 1.11's `sc.pp.neighbors` above 4,096 cells (scVI + Leiden), as in our own venv.
PACKAGES = {
    "banksy": ["pybanksy==1.3.5", "scanpy", "leidenalg"],
    "spagcn": ["SpaGCN==1.2.7", "setuptools<81", "louvain", "scanpy"],
    "stagate": ["stagate-modern==1.0.0.post1", "torch-geometric", "scikit-misc", "scanpy"],
    "graphst": ["GraphST==1.1.1", "scikit-misc", "scanpy", "POT"],
    "cellcharter": ["cellcharter==0.3.7"],
    "scvi": ["scvi-tools==1.4.2", "scanpy", "igraph", "scikit-misc", "pynndescent<0.7"],
    # DANCE's implementation of scDeepCluster (ZINB autoencoder + deep embedded clustering); the
    # dgl and torchvision it imports are not installed (see benchmarks/methods/_scdeepcluster.py).
    "scdeepcluster": ["pydance==1.0.1", "scanpy", "pynndescent<0.7"],
}


def python(name: str) -> Path:
    return ENVS_DIR / name / "bin" / "python"


def failure(name: str) -> str | None:
    """The recorded reason this env could not be built, or None."""
    path = ENVS_DIR / f"{name}.failed"
    return path.read_text() if path.exists() else None


def ready(name: str) -> bool:
    """Built, and with the package list it has now (a changed list is installed on top)."""
    path = ENVS_DIR / name / ".ready"
    return path.exists() and path.read_text().splitlines()[0] == " ".join(PACKAGES[name])


def _pip(py: Path, args: list[str], log) -> None:
    cmd = ["nice", "-n", "19", str(py), "-m", "pip", "install", "--disable-pip-version-check", *args]
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    res = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(args)} exited {res.returncode}")


def build(name: str, *, force: bool = False) -> str | None:
    """Create ``benchmarks/.envs/<name>``; return None when ready, else the failure reason."""
    env = ENVS_DIR / name
    if ready(name) and not force:
        return None
    ENVS_DIR.mkdir(parents=True, exist_ok=True)
    (ENVS_DIR / f"{name}.failed").unlink(missing_ok=True)
    log_path = ENVS_DIR / f"{name}.log"
    t0 = time.perf_counter()
    fresh = force or not (env / ".ready").exists()
    with open(log_path, "w" if fresh else "a") as log:
        try:
            constraints = env / "constraints.txt"
            if fresh:
                subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True, stdout=log, stderr=log)
                constraints.write_text(TORCH + "\n")
                _pip(python(name), [TORCH], log)
            _pip(python(name), ["-c", str(constraints), *PACKAGES[name]], log)
        except (RuntimeError, subprocess.CalledProcessError) as err:
            tail = log_path.read_text().strip().splitlines()[-15:]
            reason = f"install failed: {err}; last lines: " + " | ".join(tail)
            (ENVS_DIR / f"{name}.failed").write_text(reason)
            return reason
    freeze = subprocess.run(
        [str(python(name)), "-m", "pip", "freeze"], capture_output=True, text=True, check=False
    ).stdout
    (env / "freeze.txt").write_text(freeze)
    (env / ".ready").write_text(" ".join(PACKAGES[name]) + f"\nbuilt in {time.perf_counter() - t0:.0f} s\n")
    return None


def versions(name: str) -> dict[str, str]:
    """Package versions of an env, from the pip freeze taken when it was built."""
    path = ENVS_DIR / name / "freeze.txt"
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "==" in line:
                pkg, ver = line.split("==", 1)
                out[pkg.lower()] = ver
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(PACKAGES)} (default: all)")
    parser.add_argument("--force", action="store_true", help="rebuild even when ready")
    args = parser.parse_args()
    unknown = set(args.names) - set(PACKAGES)
    if unknown:
        parser.error(f"unknown env(s) {sorted(unknown)}; known: {list(PACKAGES)}")
    for name in args.names or list(PACKAGES):
        t0 = time.perf_counter()
        reason = build(name, force=args.force)
        status = "ready" if reason is None else f"FAILED: {reason[:500]}"
        sys.stderr.write(f"{name}: {status} ({time.perf_counter() - t0:.0f} s)\n")


if __name__ == "__main__":
    main()
