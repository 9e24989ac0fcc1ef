"""Sphinx configuration.

Build with ``sphinx-build -W -b html docs docs/_build/html``. Nothing here needs a GPU or runs a
notebook: the tutorials are committed with their outputs and copied from ``tutorials/`` into
``docs/tutorials/`` (git-ignored). Before the build, the architecture figure is drawn
(``docs/architecture_figure.py``), the defaults table is read from the configuration classes and
the benchmark page's content is gathered from ``benchmarks/results/*.md``, all into
``docs/generated/`` (git-ignored).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version as _version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GENERATED = HERE / "generated"
REPOSITORY = "https://github.com/scverse/scsiameseclu"
sys.path.insert(0, str(HERE))

project = "scsiameseclu"
author = "scsiameseclu developers"
copyright = "2025, scsiameseclu developers"
release = _version("scsiameseclu")
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx_autodoc_typehints",
]
templates_path = ["_templates"]
# Generated Markdown snippets are only ever included into other pages.
exclude_patterns = ["_build", "**.ipynb_checkpoints", "generated/benchmark_results.md", "generated/defaults.md"]
# .rst first: autosummary writes its stub pages with the first suffix.
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# API reference
autosummary_generate = True
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = True
napoleon_use_param = True
typehints_defaults = "braces"
always_document_param_types = False

# MyST and notebooks: never execute (no GPU, no data on Read the Docs); outputs are committed.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = "scsiameseclu"
html_theme_options = {
    "repository_url": REPOSITORY,
    "use_repository_button": True,
    "path_to_docs": "docs/",
    "navigation_with_keys": False,
}

_INVENTORIES = {
    "anndata": "https://anndata.readthedocs.io/en/stable/",
    "scanpy": "https://scanpy.readthedocs.io/en/stable/",
    "squidpy": "https://squidpy.readthedocs.io/en/stable/",
    "torch": "https://pytorch.org/docs/stable/",
    "torch_geometric": "https://pytorch-geometric.readthedocs.io/en/latest/",
    "numpy": "https://numpy.org/doc/stable/",
    "scipy": "https://docs.scipy.org/doc/scipy/",
    "matplotlib": "https://matplotlib.org/stable/",
    "python": "https://docs.python.org/3/",
}


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "objects.inv", timeout=5) as response:
            return response.status == 200
    except Exception:  # noqa: BLE001 - any failure means "offline" here
        return False


def _intersphinx_mapping() -> dict:
    """Inventories that can be fetched now.

    An unreachable inventory is a warning, which ``-W`` turns into a failed build; offline (or with
    ``SSC_DOCS_OFFLINE=1``) the links to other projects' docs are left out instead, and references
    to them render as plain text.
    """
    if os.environ.get("SSC_DOCS_OFFLINE"):
        return {}
    with ThreadPoolExecutor(len(_INVENTORIES)) as pool:
        ok = dict(zip(_INVENTORIES, pool.map(_reachable, _INVENTORIES.values()), strict=True))
    missing = sorted(k for k, v in ok.items() if not v)
    if missing:
        sys.stderr.write(f"intersphinx: unreachable, links left out: {', '.join(missing)}\n")
    return {k: (url, None) for k, url in _INVENTORIES.items() if ok[k]}


intersphinx_mapping = _intersphinx_mapping()


def _demote_headings(text: str) -> str:
    """One heading level down (outside code fences), so an included file nests under the page."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        out.append("#" + line if not fenced and re.match(r"#{1,5} ", line) else line)
    return "\n".join(out)


def _absolute_links(text: str, folder: str) -> str:
    """Relative Markdown links of a results file point at the file in the repository."""

    def repl(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"[a-z]+:|#|/", target):
            return m.group(0)
        return f"[{m.group(1)}]({REPOSITORY}/blob/main/{folder}/{target})"

    return re.sub(r"\[([^\]]*)\]\(([^)\s]+)\)", repl, text)


def _benchmark_results() -> None:
    """``generated/benchmark_results.md``: every ``benchmarks/results/*.md``, as written by the runs."""
    files = sorted((ROOT / "benchmarks" / "results").glob("*.md"))
    parts = [
        f"<!-- gathered from benchmarks/results/ by docs/conf.py at build time; do not edit -->\n\n"
        f"*{len(files)} result file(s) in `benchmarks/results/`.*\n"
    ]
    for f in files:
        text = _absolute_links(_demote_headings(f.read_text()), "benchmarks/results")
        parts.append(
            f"{text}\n\n<sub>Source: [`benchmarks/results/{f.name}`]({REPOSITORY}/blob/main/benchmarks/results/{f.name})</sub>\n"
        )
    (GENERATED / "benchmark_results.md").write_text("\n".join(parts))


_SYMBOLS = {
    "mask_rate": r"$r_\text{mask}$",
    "edge_drop_rate": r"$r_\text{drop}$",
    "edge_add_rate": r"$r_\text{add}$",
    "n_hidden": "$h$",
    "n_latent": "$d$",
    "graph_weight": "$w$",
    "w_correlation": r"$\lambda_\text{cc}$",
    "w_reconstruction": r"$\lambda_\text{rec}$",
    "w_contrastive": r"$\lambda_\text{nce}$",
    "w_cluster": r"$\lambda_\text{cl}$",
    "w_library": r"$\lambda_\text{lib}$",
    "contrastive_temperature": r"$\tau_\text{nce}$",
    "contrastive_max_cells": r"$n_\text{nce}$",
    "cluster_temperature": r"$\tau$",
    "sinkhorn_epsilon": r"$\varepsilon$",
    "balance": r"$\beta$",
    "size_momentum": "$m$",
}


def _defaults_table() -> None:
    """``generated/defaults.md``: every default and auto rule, from :class:`~scsiameseclu.model.ModelSettings`."""
    from scsiameseclu.model import defaults_table

    (GENERATED / "defaults.md").write_text(defaults_table(_SYMBOLS) + "\n")


def _copy_tutorials() -> None:
    """``docs/tutorials/``: the executed notebooks of ``tutorials/`` (a copy, so that links resolve)."""
    target = HERE / "tutorials"
    target.mkdir(exist_ok=True)
    sources = {p.name: p for p in (ROOT / "tutorials").glob("*.ipynb")}
    for stale in target.glob("*.ipynb"):
        if stale.name not in sources:
            stale.unlink()
    for name, src in sources.items():
        dest = target / name
        if not dest.exists() or dest.read_bytes() != src.read_bytes():
            shutil.copy2(src, dest)


def _architecture_figure() -> None:
    from architecture_figure import draw

    draw(GENERATED / "architecture.svg")


GENERATED.mkdir(exist_ok=True)
_copy_tutorials()
_benchmark_results()
_defaults_table()
_architecture_figure()
