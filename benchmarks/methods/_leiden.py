"""Leiden with the resolution bisected until it gives k clusters (labels are never read)."""

from __future__ import annotations

import numpy as np


def leiden_k(adata, k: int, seed: int, *, neighbors_key: str | None = None, max_steps: int = 30):
    """Return labels with k clusters (or the closest count reached) and the resolution used."""
    import scanpy as sc

    def run(res: float) -> np.ndarray:
        sc.tl.leiden(
            adata,
            resolution=res,
            random_state=seed,
            flavor="igraph",
            n_iterations=2,
            directed=False,
            key_added="_leiden",
            neighbors_key=neighbors_key,
        )
        return adata.obs["_leiden"].to_numpy()

    lo, hi = 0.0, 1.0
    labels = run(hi)
    while len(np.unique(labels)) < k and hi < 64:
        lo, hi = hi, hi * 2
        labels = run(hi)
    best = (abs(len(np.unique(labels)) - k), hi, labels)
    for _ in range(max_steps):
        n = len(np.unique(labels))
        if n == k:
            break
        mid = (lo + hi) / 2
        labels = run(mid)
        n = len(np.unique(labels))
        best = min(best, (abs(n - k), mid, labels), key=lambda t: t[0])
        if n < k:
            lo = mid
        elif n > k:
            hi = mid
    _, res, labels = best
    return labels, {"resolution": float(res), "n_found": int(len(np.unique(labels)))}
