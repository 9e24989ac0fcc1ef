"""scDeepCluster (ZINB autoencoder + deep embedded clustering), DANCE's implementation (``pydance``).

Run as DANCE's example script runs it (``examples/single_modality/clustering/scdeepcluster.py``):
its preprocessing from counts (genes and cells with a count kept, counts saved for the ZINB
likelihood, ``normalize_total``, ``log1p``, ``scale``), encoder 256-64, 32 latent dimensions,
noise ``sigma=2.5``, ``gamma=1``, 50 pre-training epochs, 500 clustering epochs, batch 256, on
CPU. One departure, for time: the example reads every gene (``select_genes=0``); the two sets
with more than 2,000 genes (Baron, worm neurons: ~14,000) are cut to 2,000 seurat_v3 HVGs on
counts, the peers' own selection (:func:`benchmarks.methods._hvg.mark_hvg`), as the other sets
already are (their files hold their top 2,000 genes). On every gene a worm run would take
about three hours on one core.

**Final epoch, labels never read.** DANCE's ``fit`` scores every epoch against the true labels it
is given and keeps the best one (its stopping rule is switched off): an upper bound, not a
clustering. Here ``fit`` gets a constant dummy label vector, so nothing is learned from labels,
and the labels are taken from the network as it stands after the last epoch (its soft
assignments to the final cluster centres), not from the epoch ``fit`` picked.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import types

#: DANCE's example defaults (``--pretrain_epochs``, ``--maxiter``, ``--lr``, ``--pretrain_lr``).
PRETRAIN_EPOCHS, EPOCHS, LR, PRETRAIN_LR = 50, 500, 1.0, 0.001
QUICK_EPOCHS = 5


class _Unused(types.ModuleType):
    """A stand-in module: every attribute is another stand-in, and calling one returns it."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Unused(f"{self.__name__}.{name}")

    def __call__(self, *args, **kwargs):
        return self

    def __mro_entries__(self, bases):
        return (object,)


class _UnusedImports(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Stand-ins for DANCE's imports that scDeepCluster never uses: ``dgl`` and ``torchvision``.

    ``dance`` imports both at package import time (its graph methods and spatial transforms), and
    ``dance.utils.set_seed`` calls ``dgl.seed``. DGL's last wheels on the package index (2.1, 2.2)
    load only with the torch versions they were built for, not with the torch 2.13 every peer
    environment shares, so neither is installed; scDeepCluster's code path (a dense autoencoder
    in plain torch) calls neither.
    """

    PACKAGES = ("dgl", "torchvision")

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.PACKAGES:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _Unused(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def scdeepcluster(adata, k, seed, *, quick=False):
    import numpy as np
    import scanpy as sc
    import torch

    if not any(isinstance(f, _UnusedImports) for f in sys.meta_path):
        sys.meta_path.insert(0, _UnusedImports())
    from dance.modules.single_modality.clustering.scdeepcluster import ScDeepCluster
    from dance.utils import set_seed

    if "counts" not in adata.layers:
        raise ValueError("scDeepCluster models counts; this data set has none (layers['counts']).")
    logging.getLogger("dance").setLevel(logging.WARNING)
    set_seed(seed)
    torch.set_num_threads(1)
    from benchmarks.methods._hvg import mark_hvg

    n_genes = mark_hvg(adata, 2000)
    data = sc.AnnData(adata.layers["counts"][:, adata.var["highly_variable"].to_numpy()].copy())
    sc.pp.filter_genes(data, min_counts=1)
    kept_cells = sc.pp.filter_cells(data, min_counts=1, inplace=False)[0]
    data = data[kept_cells].copy()
    raw = data.X.toarray() if hasattr(data.X, "toarray") else np.asarray(data.X)
    n_counts = raw.sum(1)
    sc.pp.normalize_total(data)
    sc.pp.log1p(data)
    sc.pp.scale(data)
    x = np.asarray(data.X, dtype=np.float32)
    model = ScDeepCluster(
        input_dim=x.shape[1], z_dim=32, encodeLayer=[256, 64], decodeLayer=[64, 256], sigma=2.5, gamma=1.0, device="cpu"
    )
    epochs = QUICK_EPOCHS if quick else EPOCHS
    model.fit(
        (x, raw.astype(np.float32), n_counts),
        np.zeros(x.shape[0], dtype=int),  # a constant: DANCE's per-epoch scoring learns nothing from it
        n_clusters=k,
        lr=LR,
        batch_size=256,
        epochs=epochs,
        update_interval=1,
        tol=1e-3,
        pt_batch_size=256,
        pt_lr=PRETRAIN_LR,
        pt_epochs=QUICK_EPOCHS if quick else PRETRAIN_EPOCHS,
    )
    model.eval()
    with torch.no_grad():  # the final epoch's network, not the epoch `fit` kept
        z = model.encodeBatch(torch.tensor(x))
        pred = model.soft_assign(z).argmax(1).cpu().numpy()
    labels = np.full(adata.n_obs, -1)
    labels[kept_cells] = pred
    embedding = np.zeros((adata.n_obs, z.shape[1]), dtype=np.float32)
    embedding[kept_cells] = z.cpu().numpy()
    info = {
        "n_genes": int(x.shape[1]),
        "n_hvg": n_genes,
        "pretrain_epochs": PRETRAIN_EPOCHS,
        "epochs": epochs,
        "cells_dropped": int((~kept_cells).sum()),
    }
    return labels, embedding, info
