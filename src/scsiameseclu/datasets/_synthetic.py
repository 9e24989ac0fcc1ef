"""A synthetic layered tissue with known domains and cell types (no download)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse


def synthetic_tissue(
    n_cells: int = 2000,
    *,
    n_domains: int = 5,
    n_cell_types: int = 6,
    n_genes: int = 200,
    domain_signal: float = 0.6,
    random_state: int = 0,
) -> AnnData:
    """Simulate a cortex-like section: wavy layers of mixed cell types, Poisson counts.

    Each layer (domain) mixes the cell types in its own proportions and adds a weak layer
    programme, so layers are only separable by combining expression with space.

    Parameters
    ----------
    n_cells
        Number of cells, placed uniformly in the unit square.
    n_domains
        Number of layers (bands along y with sinusoidal boundaries).
    n_cell_types
        Number of cell types.
    n_genes
        Number of genes.
    domain_signal
        Log-fold change of a layer's own genes (its programme) relative to the rest.
    random_state
        Seed.

    Returns
    -------
    AnnData with integer counts in ``X`` (CSR, float32), coordinates in ``obsm['spatial']`` and
    truth in ``obs['domain']`` and ``obs['cell_type']`` (categorical).
    """
    rng = np.random.default_rng(random_state)
    xy = rng.uniform(0, 1, size=(n_cells, 2))
    depth = xy[:, 1] + 0.06 * np.sin(2 * np.pi * 1.5 * xy[:, 0])
    edges = np.quantile(depth, np.linspace(0, 1, n_domains + 1)[1:-1])
    domain = np.searchsorted(edges, depth)

    mix = rng.dirichlet(np.full(n_cell_types, 0.5), size=n_domains)
    cell_type = np.array([rng.choice(n_cell_types, p=mix[d]) for d in domain])

    base = rng.gamma(1.0, 1.0, size=n_genes)
    type_lfc = rng.normal(0, 1.0, size=(n_cell_types, n_genes)) * (rng.uniform(size=(n_cell_types, n_genes)) < 0.15)
    domain_lfc = np.zeros((n_domains, n_genes))
    per_domain = max(1, n_genes // (4 * n_domains))
    for d in range(n_domains):
        domain_lfc[d, rng.choice(n_genes, per_domain, replace=False)] = domain_signal
    rate = base * np.exp(type_lfc[cell_type] + domain_lfc[domain])
    rate = rate / rate.sum(1, keepdims=True)
    library = rng.lognormal(np.log(1000), 0.3, size=n_cells)
    counts = rng.poisson(rate * library[:, None]).astype(np.float32)

    obs = pd.DataFrame(
        {
            "domain": pd.Categorical([f"L{d + 1}" for d in domain]),
            "cell_type": pd.Categorical([f"type_{t}" for t in cell_type]),
        },
        index=[f"cell_{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"gene_{g}" for g in range(n_genes)])
    return AnnData(X=sparse.csr_matrix(counts), obs=obs, var=var, obsm={"spatial": xy * 1000})
