"""Hypothesis fuzzing of configs and saved models: every value is refused up front with an error
that names it, or it works; a damaged save fails at load, never later or with a foreign error."""

import dataclasses
import json
import math
import shutil
import warnings
from numbers import Real

import numpy as np
import pytest
from conftest import make_tissue
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scsiameseclu as ssc
from scsiameseclu.model import SiameseClusterModel
from scsiameseclu.module import AugmentConfig, NetworkConfig, TrainConfig

CONFIGS = {"augment_kwargs": AugmentConfig, "network_kwargs": NetworkConfig, "train_kwargs": TrainConfig}
# Fields the model layer sets from other arguments.
SET_BY_ARGUMENTS = {"graph_weight", "extra_dims"}

ANY_VALUE = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 1),
    st.text(max_size=4),
    st.none(),
    st.booleans(),
    st.lists(st.integers(0, 5), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@st.composite
def config_kwargs(draw):
    """One of the three ``*_kwargs`` with one to three fields, each a valid default or any value."""
    argument = draw(st.sampled_from(sorted(CONFIGS)))
    fields = [f for f in dataclasses.fields(CONFIGS[argument]) if f.name not in SET_BY_ARGUMENTS]
    chosen = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique_by=lambda f: f.name))
    return argument, {f.name: draw(st.one_of(ANY_VALUE, st.just(f.default))) for f in chosen}


@settings(max_examples=300, deadline=None, derandomize=True)
@given(case=config_kwargs())
def test_config_values_are_checked_at_construction(case):
    argument, kwargs = case
    cls = CONFIGS[argument]
    try:
        config = cls(**kwargs)
    except (TypeError, ValueError) as err:
        assert any(f"`{name}" in str(err) for name in kwargs), f"error does not name the field: {err}"
        return
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, Real) and not isinstance(value, bool):
            assert math.isfinite(value), f.name
        if f.name in kwargs and isinstance(f.default, int | float) and kwargs[f.name] is not None:
            assert type(value) is type(f.default), f.name  # ints stay ints, numbers become floats


@pytest.fixture(scope="module")
def small():
    return make_tissue(60)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=config_kwargs(), seed=st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32, 2**64), st.integers(-5, -1)))
def test_accepted_configs_train(small, case, seed):
    # Whatever the configs accept must run; whatever they refuse must be refused before training.
    argument, kwargs = case
    epochs = {
        k: 4 for k in ("n_epochs_pretrain", "n_epochs_cluster") if isinstance(kwargs.get(k), int) and kwargs[k] > 4
    }
    kwargs = {**kwargs, **epochs}  # valid but long schedules, cut short
    schedule = {} if "n_epochs_pretrain" in kwargs or "n_epochs_cluster" in kwargs else {"max_epochs": 4}
    adata = small.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = SiameseClusterModel(adata, 3, **schedule, **{argument: kwargs})
        except (TypeError, ValueError) as err:
            assert any(f"`{k}" in str(err) for k in kwargs), str(err)
            return
        try:
            model.train(random_state=seed, show_progress_bar=False)
        except (TypeError, ValueError) as err:
            assert "random_state" in str(err) or "diverged" in str(err), str(err)
            assert not model.is_trained
            return
        res = model.results()
    assert res.labels.shape == (adata.n_obs,)
    assert np.isfinite(res.embedding).all() and np.isfinite(res.proba).all()


# Saved files -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    adata = make_tissue(120)
    model = ssc.tl.siamese_cluster(adata, 3, use_rep="X", return_model=True, max_epochs=4, show_progress_bar=False)
    path = tmp_path_factory.mktemp("fuzz") / "model"
    model.save(path)
    pca_adata = make_tissue(120)
    pca_model = ssc.tl.siamese_cluster(pca_adata, 3, return_model=True, max_epochs=4, show_progress_bar=False)
    pca_path = path.parent / "pca_model"
    pca_model.save(pca_path)
    return {"genes": (path, adata), "pca": (pca_path, pca_adata)}


def _leaves(node, prefix=()):
    """Paths to every value of a JSON document (containers included)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*prefix, i))


@st.composite
def damage(draw):
    """A change to one saved file: a JSON value replaced or removed, or bytes cut or flipped."""
    kind = draw(st.sampled_from(["json", "json", "json", "drop", "truncate", "flip"]))
    index = draw(st.integers(0, 10**6))
    value = draw(ANY_VALUE)
    file = draw(st.sampled_from(["model.pt", "var_names.csv", "input.npz"]))
    position = draw(st.floats(0, 1, exclude_max=True))
    return kind, index, value, file, position


def _apply(path, kind, index, value, file, position):
    if kind in ("json", "drop"):
        config = json.loads((path / "config.json").read_text())
        paths = [p for p in _leaves(config) if p]
        keys = paths[index % len(paths)]
        node = config
        for key in keys[:-1]:
            node = node[key]
        if kind == "drop":
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
        (path / "config.json").write_text(json.dumps(config))
        return
    target = path / file
    if not target.exists():
        return
    data = bytearray(target.read_bytes())
    cut = int(position * len(data))
    if kind == "truncate":
        target.write_bytes(bytes(data[:cut]))
    else:
        data[cut] ^= 0xFF
        target.write_bytes(bytes(data))


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(which=st.sampled_from(["genes", "pca"]), change=damage())
def test_damaged_saves_fail_at_load(saved, tmp_path_factory, which, change):
    source, adata = saved[which]
    path = tmp_path_factory.mktemp("damaged") / "model"
    shutil.copytree(source, path)
    _apply(path, *change)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "saved with scsiameseclu x.y"
        try:
            model = SiameseClusterModel.load(path)
        except (ValueError, FileNotFoundError) as err:
            assert str(path) in str(err), f"the error does not name the file: {err}"
            return
        # Loaded: the change was harmless or about the data, which only predict can check.
        try:
            proba = model.predict(adata, soft=True)
        except (ValueError, KeyError) as err:
            assert "adata" in str(err) or "obsm" in str(err), f"unclear error at predict: {err}"
            return
    assert np.isfinite(proba).all()
    assert proba.shape[0] == adata.n_obs
