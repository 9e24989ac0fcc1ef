"""One measurement in a fresh process: what the harness and every study share.

A run in its own process has its own peak memory (``ru_maxrss`` is per process and only ever
grows) and its own imports, so no run inherits another's state. A study's module answers
``python -m <module> --one ARGS...`` with one JSON line (its last line of output); :func:`run`
starts it and reads that line back, and :func:`peak_rss_mb` is what the child reports as its
memory. :func:`commit` names the code a result came from.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class ChildFailed(RuntimeError):
    """A child run exited with an error; the message ends with the tail of its stderr."""


def run(module: str, *args, timeout: float | None = None, env: dict | None = None, nice: int | None = None) -> dict:
    """``python -m module --one *args`` in a fresh process (from the repository root); its last JSON line.

    ``nice`` lowers the child's priority (as the harness runs peers); ``env`` is added to this
    process's environment.
    """
    cmd = [sys.executable, "-m", module, "--one", *map(str, args)]
    if nice is not None:
        cmd = ["nice", "-n", str(nice), *cmd]
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=None if env is None else os.environ | env
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-8:])
        raise ChildFailed(f"{module} {' '.join(map(str, args))}: exit {done.returncode}: {tail[-2000:]}")
    return json.loads(lines[-1])


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, MB (``ru_maxrss``)."""
    return max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


def commit() -> str:
    """The short commit of the checkout, with ``-dirty`` when tracked files differ from it."""

    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT, check=False).stdout.strip()

    return (git("rev-parse", "--short", "HEAD") or "unknown") + (
        "-dirty" if git("status", "--porcelain", "-uno") else ""
    )
