"""Saving and loading a trained :class:`~scsiameseclu.model.SiameseClusterModel`.

A saved model is a directory with

``model.pt``
    The network's ``state_dict`` only (tensors, read back with ``torch.load(weights_only=True)``).
``config.json``
    Format and package version, the three configs, the fitted number of clusters and everything
    needed to turn a new AnnData into network input the same way (input source, kept feature
    indices, global scale, graph key, ``graph_weight``, seed; the same for each extra modality).
``var_names.csv``
    The training genes, when the input was ``X`` or a layer (absent for an ``obsm`` input).

``config.json`` is written last, so a directory without it is an incomplete save.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger("scsiameseclu")

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
VAR_NAMES_FILE = "var_names.csv"
FORMAT = "scsiameseclu.SiameseClusterModel"
FORMAT_VERSION = 1
REQUIRED_KEYS = {
    "network_config",
    "augment_config",
    "train_config",
    "n_clusters",
    "n_clusters_fitted",
    "n_clusters_by_resolution",
    "graph_weight",
    "use_rep",
    "layer",
    "connectivity_key",
    "input_source",
    "n_features",
    "feature_index",
    "input_scale",
    "random_state",
    "has_var_names",
}


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    msg = f"Cannot store {value!r} ({type(value).__name__}) in {CONFIG_FILE}."
    raise TypeError(msg)


def _write_atomic(path: Path, write) -> None:
    """Write via a temporary file in the same directory, then rename (no half-written file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_path(dir_path) -> Path:
    if not isinstance(dir_path, str | os.PathLike):
        msg = f"`dir_path` must be a str or path, got {dir_path!r}."
        raise TypeError(msg)
    return Path(dir_path)


def model_config(model) -> dict:
    """Everything but the weights, as JSON-serialisable values."""
    from .. import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scsiameseclu_version": __version__,
        "network_config": dataclasses.asdict(model.network_config),
        "augment_config": dataclasses.asdict(model.augment_config),
        "train_config": dataclasses.asdict(model.train_config),
        "n_clusters": model.n_clusters,
        "n_clusters_fitted": int(model.n_clusters_fitted),
        "n_clusters_by_resolution": {str(r): int(k) for r, k in model.n_clusters_by_resolution.items()},
        "graph_weight": model.graph_weight,
        "use_rep": model.use_rep,
        "layer": model.layer,
        "connectivity_key": model.connectivity_key,
        "input_source": model.input_source,
        "n_features": int(model.n_features),
        "feature_index": [int(i) for i in model.feature_index],
        "input_scale": float(model.input_scale),
        "random_state": model.random_state,
        "batch_size": getattr(model, "batch_size", None),
        "cluster_order": model.cluster_order,
        "trained_on_device": str(model.device),
        "n_obs_trained": int(model.n_obs) if model.n_obs is not None else None,
        "has_var_names": model.var_names is not None,
        # Extra modalities (``extra_rep``): obsm keys, column counts, kept columns and scales.
        "extra_rep": list(model.extra_rep),
        "extra_n_features": [int(n) for n in model.extra_n_features],
        "extra_index": [[int(i) for i in index] for index in model.extra_index],
        "extra_scale": [float(v) for v in model.extra_scale],
        "library_key": model.library_key,
    }


def save_model(model, dir_path, *, overwrite: bool = False) -> None:
    """Write ``model`` to the directory ``dir_path`` (see the module docstring for the layout)."""
    import torch

    model._check_trained()
    path = _check_path(dir_path)
    if path.exists() and not path.is_dir():
        msg = f"`dir_path={str(dir_path)!r}` exists and is not a directory."
        raise ValueError(msg)
    if path.exists() and not overwrite:
        msg = f"`dir_path={str(dir_path)!r}` already exists; pass `overwrite=True` or choose another directory."
        raise ValueError(msg)
    config = model_config(model)
    text = json.dumps(config, indent=2, default=_json_default)  # fails before anything is written
    path.mkdir(parents=True, exist_ok=True)
    # An interrupted overwrite must not pair new weights with an old config: drop the marker first.
    (path / CONFIG_FILE).unlink(missing_ok=True)
    state = {k: v.detach().cpu() for k, v in model.network.state_dict().items()}
    _write_atomic(path / MODEL_FILE, lambda p: torch.save(state, p))
    if model.var_names is not None:
        names = pd.DataFrame({"var_names": model.var_names})
        _write_atomic(path / VAR_NAMES_FILE, lambda p: names.to_csv(p, index=False))
    else:
        (path / VAR_NAMES_FILE).unlink(missing_ok=True)  # stale file of an earlier save
    _write_atomic(path / CONFIG_FILE, lambda p: Path(p).write_text(text, encoding="utf-8"))
    logger.info("Saved model to %s.", path)


def _read_config(path: Path) -> dict:
    from .. import __version__

    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        msg = f"`{path / CONFIG_FILE}` is not valid JSON ({err}); the save is corrupt."
        raise ValueError(msg) from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        msg = f"`{path}` does not hold a saved SiameseClusterModel (format {config.get('format') if isinstance(config, dict) else None!r})."
        raise ValueError(msg)
    if config.get("format_version") != FORMAT_VERSION:
        msg = (
            f"`{path}` was saved in format version {config.get('format_version')!r} "
            f"(scsiameseclu {config.get('scsiameseclu_version')}); this scsiameseclu ({__version__}) "
            f"reads format version {FORMAT_VERSION}."
        )
        raise ValueError(msg)
    missing = sorted(REQUIRED_KEYS - set(config))
    if missing:
        msg = f"`{path / CONFIG_FILE}` lacks the key(s) {missing}; the save is corrupt."
        raise ValueError(msg)
    if config.get("scsiameseclu_version") != __version__:
        warnings.warn(
            f"The model was saved with scsiameseclu {config.get('scsiameseclu_version')}, this is {__version__}.",
            UserWarning,
            stacklevel=4,
        )
    return config


def _make(cls, name: str, values: dict):
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - valid
    if unknown:
        msg = f"`{CONFIG_FILE}` has unknown {name} key(s) {sorted(unknown)}; it was written by another version."
        raise ValueError(msg)
    return cls(**values)


def load_model(cls, dir_path, adata=None, *, device="auto"):
    """Rebuild a model saved by :func:`save_model`; see :meth:`SiameseClusterModel.load`."""
    import torch

    from .._device import resolve_device, seeded_torch
    from ..module import AugmentConfig, NetworkConfig, SiameseNetwork, TrainConfig

    path = _check_path(dir_path)
    if not path.is_dir():
        msg = f"`dir_path={str(dir_path)!r}` is not a directory with a saved model."
        raise FileNotFoundError(msg)
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (path / name).is_file():
            msg = f"`{path / name}` is missing; `dir_path` must be a directory written by `SiameseClusterModel.save`."
            raise FileNotFoundError(msg)
    device = resolve_device(device)
    config = _read_config(path)
    var_names = None
    if config["has_var_names"]:
        if not (path / VAR_NAMES_FILE).is_file():
            msg = f"`{path / VAR_NAMES_FILE}` is missing; the save is incomplete."
            raise FileNotFoundError(msg)
        names = pd.read_csv(path / VAR_NAMES_FILE, dtype=str, keep_default_na=False)
        var_names = names["var_names"].tolist()
        if len(var_names) != config["n_features"]:
            msg = f"`{path / VAR_NAMES_FILE}` has {len(var_names)} names, expected {config['n_features']}."
            raise ValueError(msg)

    model = cls.__new__(cls)
    model.network_config = _make(NetworkConfig, "network_config", config["network_config"])
    model.augment_config = _make(AugmentConfig, "augment_config", config["augment_config"])
    model.train_config = _make(TrainConfig, "train_config", config["train_config"])
    for key in ("n_clusters", "n_clusters_fitted", "graph_weight", "use_rep", "layer", "connectivity_key"):
        setattr(model, key, config[key])
    for key in ("input_source", "n_features", "input_scale", "random_state"):
        setattr(model, key, config[key])
    model.n_clusters_by_resolution = {float(r): int(k) for r, k in config["n_clusters_by_resolution"].items()}
    # Saves without extra modalities or library (older ones) lack these keys.
    model.extra_rep = tuple(config.get("extra_rep", ()))
    model.extra_n_features = list(config.get("extra_n_features", []))
    model.extra_index = [np.asarray(index, dtype=np.int64) for index in config.get("extra_index", [])]
    model.extra_scale = list(config.get("extra_scale", []))
    model.library_key, model._library = config.get("library_key"), None
    if [len(index) for index in model.extra_index] != list(model.network_config.extra_dims):
        msg = f"`{path / CONFIG_FILE}` has extra modalities that do not match `network_config['extra_dims']`."
        raise ValueError(msg)
    model.feature_index = np.asarray(config["feature_index"], dtype=np.int64)
    model.var_names = var_names
    model.batch_size = config.get("batch_size")
    model.cluster_order = config.get("cluster_order")
    model.device = device
    model.history = None
    model.network = None
    model._x, model._graph, model.n_obs, model._latent = None, None, None, None

    state = torch.load(path / MODEL_FILE, map_location=device, weights_only=True)
    with seeded_torch(0, device):  # construction draws initial weights; keep the global RNG as it was
        n_input = len(model.feature_index) + sum(model.network_config.extra_dims)
        net = SiameseNetwork(n_input, model.n_clusters_fitted, model.network_config)
    # Buffers (state such as an optional final mixture) keep the shape they had when saved, which
    # need not follow the fitted k (e.g. a mixture never fitted after k was estimated).
    buffers = dict(net.named_buffers())
    for name, value in state.items():
        if name in buffers and buffers[name].shape != value.shape:
            owner, _, attr = name.rpartition(".")
            setattr(net.get_submodule(owner) if owner else net, attr, torch.empty_like(value))
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        msg = f"`{path / MODEL_FILE}` does not match the network described in `{CONFIG_FILE}`: {err}"
        raise ValueError(msg) from err
    model.network = net.to(device).eval()

    if adata is not None:
        model._x, model._graph = model._prepare(adata)
        model.n_obs = adata.n_obs
    logger.info("Loaded model from %s on %s.", path, device)
    return model
