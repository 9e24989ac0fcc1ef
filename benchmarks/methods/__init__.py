"""Method adapters, one contract for all.

An adapter is ``f(adata, k, seed, *, quick=False) -> (labels, embedding, info)``: ``adata`` is
the preprocessed dataset written by :func:`benchmarks.datasets.prepare` (no labels in it), ``k``
the true number of clusters, ``seed`` the run's seed. ``labels`` has one entry per cell,
``embedding`` is the representation the labels were taken from, ``info`` a dict of anything
worth recording (chosen resolution, epochs). Adapters run in the child process of
:mod:`benchmarks.worker`, inside the method's own environment; this module imports nothing
heavy so that every environment can read the registry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    name: str
    adapter: str  # "module:function" under benchmarks.methods
    env: str | None  # None: the project's own venv; else benchmarks/.envs/<env>
    data: str  # "all", "spatial" or "scrna"
    package: str  # distribution whose version is recorded
    about: str


METHODS = {
    m.name: m
    for m in [
        Method("ssc", "_ssc:ssc", None, "all", "scsiameseclu", "ssc.tl.siamese_cluster, defaults, true k"),
        Method(
            "leiden",
            "_baselines:leiden",
            None,
            "all",
            "scanpy",
            "scanpy Leiden on 15-NN of PCA, resolution bisected to k",
        ),
        Method("kmeans", "_baselines:kmeans", None, "all", "scikit-learn", "KMeans on PCA"),
        Method("gmm", "_baselines:gmm", None, "all", "scikit-learn", "Gaussian mixture on PCA"),
        Method(
            "smooth_gmm",
            "_baselines:smooth_gmm",
            None,
            "spatial",
            "scikit-learn",
            "GMM on neighbour-averaged PCA (spatial graph)",
        ),
        Method("banksy", "_banksy:banksy", "banksy", "spatial", "pybanksy", "BANKSY matrix + PCA + GMM(tied)"),
        Method("spagcn", "_spagcn:spagcn", "spagcn", "spatial", "spagcn", "SpaGCN, resolution searched to k"),
        Method("stagate", "_stagate:stagate", "stagate", "spatial", "stagate-modern", "STAGATE (pyG) + GMM(tied)"),
        Method(
            "cellcharter",
            "_cellcharter:cellcharter",
            "cellcharter",
            "spatial",
            "cellcharter",
            "CellCharter neighbour aggregation + its GMM",
        ),
        Method("graphst", "_graphst:graphst", "graphst", "spatial", "graphst", "GraphST + PCA(20) + GMM(tied)"),
        Method("scvi", "_scvi:scvi", "scvi", "scrna", "scvi-tools", "scVI latent + Leiden bisected to k"),
        Method(
            "scdeepcluster",
            "_scdeepcluster:scdeepcluster",
            "scdeepcluster",
            "scrna",
            "pydance",
            "scDeepCluster (DANCE), ZINB AE + DEC, final epoch",
        ),
    ]
}


def adapter(name: str):
    module, func = METHODS[name].adapter.split(":")
    return getattr(importlib.import_module(f"benchmarks.methods.{module}"), func)


def applies(method: str, spatial: bool) -> bool:
    data = METHODS[method].data
    return data == "all" or (data == "spatial") == spatial
