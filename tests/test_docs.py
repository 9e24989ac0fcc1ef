"""Public docstrings: shared parameter texts filled in, and only defaults and stages the settings have."""

import inspect
import re

import pytest

import scsiameseclu as ssc
from scsiameseclu import _docs

pytest.importorskip("torch")

from scsiameseclu.model import ModelSettings, SiameseClusterModel  # noqa: E402
from scsiameseclu.model._settings import CELL_TYPES, DOMAINS  # noqa: E402

TOP = {
    "tl.siamese_cluster": ssc.tl.siamese_cluster,
    "pp.augment": ssc.pp.augment,
    "pl.embedding": ssc.pl.embedding,
    "pl.n_clusters": ssc.pl.n_clusters,
    "SiameseClusterModel": SiameseClusterModel,
}
OBJECTS = dict(TOP)
OBJECTS.update(
    {
        f"SiameseClusterModel.{name}": member
        for name, member in inspect.getmembers(SiameseClusterModel)
        if not name.startswith("_") and callable(member) and member.__doc__
    }
)
DOCS = {name: inspect.getdoc(obj) for name, obj in OBJECTS.items()}


@pytest.mark.parametrize("name", sorted(DOCS))
def test_no_placeholder_left(name):
    left = re.findall(r"^\s*\{(\w+)\}\s*$", DOCS[name], flags=re.MULTILINE)
    assert not left, f"{name}: unfilled shared parameter(s) {left}"


@pytest.mark.parametrize("name", sorted(TOP))
def test_documented_parameters_exist(name):
    """Every documented parameter is in the signature (names in a docstring drift too)."""
    params = set(inspect.signature(TOP[name]).parameters)
    section = DOCS[name].split("Parameters\n----------\n", 1)[1].split("\n\n", 1)[0]
    named = {n.strip() for line in section.splitlines() if line and not line.startswith(" ") for n in line.split(",")}
    named = {n.lstrip("*") for n in named}
    assert named, f"{name}: no parameters found"
    assert named <= params, f"{name} documents {sorted(named - params)}, not in its signature"


def _resolved(target):
    spatial = target == DOMAINS
    return ModelSettings.resolve(n_clusters=3, spatial_graph=spatial, graph_weight=None)


@pytest.mark.parametrize("name", sorted(DOCS))
def test_quoted_defaults_are_the_settings(name):
    """Epoch counts, graph weights and final-mixture starts quoted in a docstring are the resolved ones."""
    doc = " ".join(DOCS[name].split())
    domains, cells = _resolved(DOMAINS), _resolved(CELL_TYPES)
    pretrain = {domains.train.n_epochs_pretrain, cells.train.n_epochs_pretrain}
    for n in re.findall(r"(\d+) pre-training epochs", doc):
        assert int(n) in pretrain, f"{name} quotes {n} pre-training epochs"
    for n in re.findall(r"up to (\d+) clustering epochs", doc):
        assert int(n) == domains.train.n_epochs_cluster, f"{name} quotes {n} clustering epochs"
    assert cells.train.n_epochs_cluster == 0
    if "no clustering stage" in doc:
        assert "Cell types" in doc or "cell types" in doc
    for weight in re.findall(r"``None``: (\d\.\d+) on a squidpy spatial graph", doc):
        assert float(weight) == domains.network.graph_weight
    for weight in re.findall(r"spatial graph, (\d\.\d+) on an expression kNN", doc):
        assert float(weight) == cells.network.graph_weight
    starts = {"Ward's partition": "ward", "Leiden communities": "leiden", "the prototypes' labels": "prototypes"}
    for words, start in starts.items():
        if f"final mixture started from {words}" in doc:
            assert start in cells.train.mixture_starts or start in domains.train.mixture_starts


@pytest.mark.parametrize("name", sorted(DOCS))
def test_no_retired_description(name):
    """Descriptions of earlier algorithms that once drifted into the docstrings (issue 42)."""
    doc = " ".join(DOCS[name].split())
    retired = [
        "prototypes are then seeded by k-means",  # cell types are seeded otherwise, and skip the stage
        "60% pre-training, 40% clustering",
        "acts in the clustering stage only",
        "the most stable k (Ward",  # measured as a rule and not adopted: the curve informs only
        "10 k-means partitions",
    ]
    for phrase in retired:
        assert phrase not in doc, f"{name} still says {phrase!r}"


def test_fill_refuses_unknown_placeholder():
    with pytest.raises(KeyError, match="no_such_parameter"):
        _docs.fill("Parameters\n----------\n{no_such_parameter}\n")


def test_examples_section():
    assert "Examples\n--------" in DOCS["tl.siamese_cluster"]
