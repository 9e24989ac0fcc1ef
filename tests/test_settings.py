"""ModelSettings: every default and "auto" rule in one frozen, serialisable object (no training here)."""

import dataclasses
import inspect
import json

import pytest

import scsiameseclu as ssc
from scsiameseclu.model import Limits, ModelSettings, defaults_table
from scsiameseclu.module import AugmentConfig, NetworkConfig, TrainConfig


@pytest.mark.parametrize(
    ("spatial", "graph_weight", "target", "init", "w_pre", "n_cluster", "starts", "weight"),
    [
        (True, None, "domains", "kmeans", 0.5, 100, ("prototypes", "leiden"), 0.8),
        (False, None, "cell types", "leiden", 0.0, 0, ("ward",), 0.5),
        (True, 0.0, "cell types", "leiden", 0.0, 0, ("ward",), 0.0),
        (True, 0.4, "cell types", "leiden", 0.0, 0, ("ward",), 0.4),
        (False, 0.9, "cell types", "leiden", 0.0, 0, ("ward",), 0.9),
    ],
)
def test_auto_rules_resolved_once(spatial, graph_weight, target, init, w_pre, n_cluster, starts, weight):
    s = ModelSettings.resolve(n_clusters=5, spatial_graph=spatial, graph_weight=graph_weight)
    train = s.train
    resolved = (s.target, train.init, train.w_contrastive_pretrain, train.n_epochs_cluster, train.mixture_starts)
    assert (*resolved, s.graph_weight) == (target, init, w_pre, n_cluster, starts, weight)
    assert s.network.graph_weight == s.graph_weight  # one value, stored once per config that needs it


@pytest.mark.parametrize(
    ("spatial", "graph_weight", "tol"), [(True, None, 0.0), (False, None, 0.05), (True, 0.0, 0.05)]
)
def test_pretraining_stop_resolved_by_target(spatial, graph_weight, tol):
    # Cell types stop pre-training at the loss plateau; tissue domains pre-train in full. The
    # clustering stage stops at its plateau for both.
    s = ModelSettings.resolve(n_clusters=5, spatial_graph=spatial, graph_weight=graph_weight)
    assert (s.train.plateau_tol_pretrain, s.train.plateau_tol_cluster) == (tol, 0.05)
    mine = ModelSettings.resolve(n_clusters=5, spatial_graph=spatial, train_kwargs={"plateau_tol_pretrain": 0.2})
    assert mine.train.plateau_tol_pretrain == 0.2


def test_saves_from_before_the_plateau_stop_keep_their_schedule():
    values = ModelSettings.resolve(n_clusters=3, spatial_graph=False).to_dict()
    for key in ("plateau_tol_pretrain", "plateau_tol_cluster", "plateau_window"):
        del values["train"][key]
    train = ModelSettings.from_dict(json.loads(json.dumps(values))).train
    assert (train.plateau_tol_pretrain, train.plateau_tol_cluster) == (0.0, 0.0)
    today = ModelSettings.resolve(n_clusters=3, spatial_graph=False).to_dict()
    assert ModelSettings.from_dict(today).train.plateau_tol_pretrain == 0.05  # a current save keeps its own


def test_explicit_values_win_over_auto_rules():
    s = ModelSettings.resolve(
        n_clusters=3, spatial_graph=True, train_kwargs={"init": "leiden", "w_contrastive_pretrain": 0.1}
    )
    assert s.train.init == "leiden" and s.train.w_contrastive_pretrain == 0.1


def test_max_epochs_bounded():
    with pytest.raises(ValueError, match="max_epochs` must be at most 1,000,000"):
        ModelSettings.resolve(n_clusters=3, spatial_graph=True, max_epochs=10**7)


def test_max_epochs_split():
    s = ModelSettings.resolve(n_clusters=3, spatial_graph=True, max_epochs=10)
    assert (s.train.n_epochs_pretrain, s.train.n_epochs_cluster) == (6, 4)
    # Cell types have no clustering stage: every step is pre-training.
    s = ModelSettings.resolve(n_clusters=3, spatial_graph=False, max_epochs=10)
    assert (s.train.n_epochs_pretrain, s.train.n_epochs_cluster) == (10, 0)
    s = ModelSettings.resolve(n_clusters=3, spatial_graph=False, train_kwargs={"n_epochs_cluster": 7})
    assert s.train.n_epochs_cluster == 7  # an explicit value wins
    with pytest.raises(ValueError, match="either `max_epochs`"):
        ModelSettings.resolve(n_clusters=3, spatial_graph=True, max_epochs=10, train_kwargs={"n_epochs_cluster": 3})


@pytest.mark.parametrize("key", ["graph_weight", "extra_dims"])
def test_network_kwargs_cannot_shadow_arguments(key):
    with pytest.raises(ValueError, match=key):
        ModelSettings.resolve(n_clusters=3, spatial_graph=True, network_kwargs={key: 0.1})


@pytest.mark.parametrize(
    ("kind", "kwargs", "error", "match"),
    [
        ("train_kwargs", {"n_epochs_pretrain": -5}, ValueError, "n_epochs_pretrain"),
        ("train_kwargs", {"learning_rate": "0.1"}, TypeError, "learning_rate"),
        ("train_kwargs", {"learning_rate": float("nan")}, ValueError, "learning_rate"),
        ("train_kwargs", {"tol": 0}, ValueError, "tol"),
        ("train_kwargs", {"check_every": 0}, ValueError, "check_every"),
        ("train_kwargs", {"init": "random"}, ValueError, "init"),
        ("train_kwargs", {"final_assignment": "gmm"}, ValueError, "final_assignment"),
        ("train_kwargs", {"w_contrastive_pretrain": -1}, ValueError, "w_contrastive_pretrain"),
        ("train_kwargs", {"mixture_kmeans_starts": 2.5}, TypeError, "mixture_kmeans_starts"),
        ("train_kwargs", {"mixture_kmeans_starts": 0}, ValueError, "mixture_kmeans_starts"),
        ("train_kwargs", {"mixture_starts": "ward"}, TypeError, "mixture_starts"),
        ("train_kwargs", {"mixture_starts": ["ward", "gmm"]}, ValueError, "mixture_starts"),
        ("train_kwargs", {"mixture_starts": ["ward", "ward"]}, ValueError, "mixture_starts"),
        ("train_kwargs", {"n_epochs_cluster": -1}, ValueError, "n_epochs_cluster"),
        ("train_kwargs", {"plateau_tol_cluster": -0.1}, ValueError, "plateau_tol_cluster"),
        ("train_kwargs", {"plateau_tol_pretrain": 1.5}, ValueError, "plateau_tol_pretrain"),
        ("train_kwargs", {"plateau_tol_pretrain": "0.05"}, TypeError, "plateau_tol_pretrain"),
        ("train_kwargs", {"plateau_window": 0}, ValueError, "plateau_window"),
        ("augment_kwargs", {"edge_add_rate": 1e9}, ValueError, "edge_add_rate"),
        ("augment_kwargs", {"mask_rate": True}, TypeError, "mask_rate"),
        ("network_kwargs", {"n_hidden": 2.5}, TypeError, "n_hidden"),
        ("network_kwargs", {"n_hops": -1}, ValueError, "n_hops"),
        ("train_kwargs", {"nope": 1}, ValueError, "nope"),
        # Bounds on sizes that allocate memory, and shapes the network cannot build.
        ("network_kwargs", {"n_hidden": 10**9}, ValueError, "n_hidden"),
        ("network_kwargs", {"gat_heads": 3}, ValueError, "gat_heads=3` must divide `n_hidden=64"),
        ("network_kwargs", {"n_gat_layers": 100}, ValueError, "n_gat_layers"),
        ("train_kwargs", {"contrastive_max_cells": 10**6}, ValueError, "contrastive_max_cells"),
        ("train_kwargs", {"n_epochs_pretrain": 2**40}, ValueError, "n_epochs_pretrain"),
    ],
)
def test_every_config_field_checked(kind, kwargs, error, match):
    with pytest.raises(error, match=match):
        ModelSettings.resolve(n_clusters=3, spatial_graph=True, **{kind: kwargs})


def test_round_trip_through_json():
    s = ModelSettings.resolve(
        n_clusters=None, spatial_graph=False, extra_dims=(5, 3), train_kwargs={"w_library": 1.0}, max_epochs=20
    )
    back = ModelSettings.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s
    bad = s.to_dict()
    bad["limits"]["full_batch_max_cells"] = 0
    with pytest.raises(ValueError, match="full_batch_max_cells"):
        ModelSettings.from_dict(bad)


def test_minibatch_and_chunking_decided_by_limits():
    s = ModelSettings.resolve(n_clusters=3, spatial_graph=True, limits=Limits(full_batch_max_cells=10))
    assert not s.minibatch(10, None) and s.minibatch(11, None) and s.minibatch(5, 2)
    assert not s.chunked_inference(10) and s.chunked_inference(11)


def test_defaults_table_lists_every_field():
    table = defaults_table()
    for cls in (AugmentConfig, NetworkConfig, TrainConfig, Limits):
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in table, f.name


def test_public_signatures_do_not_shadow_config_defaults():
    for func in (ssc.tl.siamese_cluster, ssc.pp.augment):
        params = inspect.signature(func).parameters
        for name in {f.name for f in dataclasses.fields(AugmentConfig)} & set(params):
            assert params[name].default is None, (func.__name__, name)


def test_seed_range_checked_before_work(tissue):
    from conftest import assert_unchanged, snapshot

    before = snapshot(tissue)
    for seed, error in ((2**32, ValueError), (2**63, ValueError), (-1, ValueError), (1.5, TypeError)):
        with pytest.raises(error, match="random_state"):
            ssc.tl.siamese_cluster(tissue, n_clusters=4, random_state=seed, max_epochs=2, show_progress_bar=False)
    assert_unchanged(tissue, before)
