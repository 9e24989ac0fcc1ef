"""Saving and loading a trained :class:`~scsiameseclu.model.SiameseClusterModel`.

A saved model (format version 2) is a directory with

``model.pt``
    The network's ``state_dict`` only (tensors, read back with ``torch.load(weights_only=True)``).
``config.json``
    Format and package version and the model's three parts: ``settings``
    (:class:`~scsiameseclu.model.ModelSettings`), ``input``
    (:class:`~scsiameseclu.model.InputSpec`) and ``fit`` (seed, fitted k, cluster numbering).
``var_names.csv``
    The training genes, when the input was ``X`` or a layer.
``input.npz``
    The training genes' means (they stand in for genes new cells lack); for an ``obsm['X_pca']``
    input also the PCA's genes and loadings and (when verified) its centring.

A save is written into a new directory that then takes the place of ``dir_path``, so a save
that fails or is interrupted leaves an earlier one as it was. ``config.json`` is written last, so
a directory without it is an incomplete save; it holds the SHA-256 of every other file
(``sha256``), so that a damaged or altered file is found at load rather than as wrong predictions
(saves without the field, from earlier versions, load without the check). Loading reads every file with a parser that cannot run code and validates every
value; a problem is a ``ValueError`` (or ``FileNotFoundError``) that names the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger("scsiameseclu")

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
VAR_NAMES_FILE = "var_names.csv"
ARRAYS_FILE = "input.npz"
FORMAT = "scsiameseclu.SiameseClusterModel"
FORMAT_VERSION = 2
_MODEL_FILES = frozenset({MODEL_FILE, CONFIG_FILE, VAR_NAMES_FILE, ARRAYS_FILE})


def _check_path(dir_path) -> Path:
    if not isinstance(dir_path, str | os.PathLike):
        msg = f"`dir_path` must be a str or path, got {dir_path!r}."
        raise TypeError(msg)
    return Path(dir_path)


def model_config(model) -> dict:
    """Everything but the weights and the arrays, as JSON-serialisable values."""
    from .. import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scsiameseclu_version": __version__,
        "settings": model.settings.to_dict(),
        "input": model.spec.to_dict(),
        "fit": model.fit.to_dict(),
    }


def save_model(model, dir_path, *, overwrite: bool = False) -> None:
    """Write ``model`` to the directory ``dir_path`` (see the module docstring for the layout).

    All or nothing: the files are written into a new hidden directory beside ``dir_path``, which
    then takes its place (:func:`_swap_in`). A save that fails or is interrupted leaves
    ``dir_path`` as it was, so with ``overwrite=True`` the previous save stays loadable.
    """
    import torch

    path = _check_path(dir_path)
    if path.exists() and not path.is_dir():
        msg = f"`dir_path={str(dir_path)!r}` exists and is not a directory."
        raise ValueError(msg)
    if path.exists() and not overwrite:
        msg = f"`dir_path={str(dir_path)!r}` already exists; pass `overwrite=True` or choose another directory."
        raise ValueError(msg)
    config = model_config(model)
    json.dumps(config, allow_nan=False)  # a value JSON cannot hold fails here, before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    # Beside `dir_path` (one file system, so renames move it); made like any new directory (the
    # user's umask), or with the permissions of the directory it replaces.
    new = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.saving"
    new.mkdir()
    try:
        if path.exists():
            shutil.copymode(path, new)
        state = {k: v.detach().cpu() for k, v in model.network.state_dict().items()}
        torch.save(state, new / MODEL_FILE)
        if model.spec.var_names is not None:
            pd.DataFrame({"var_names": list(model.spec.var_names)}).to_csv(new / VAR_NAMES_FILE, index=False)
        arrays = model.spec.arrays()
        if arrays:
            _write_npz(new / ARRAYS_FILE, arrays)
        names = [MODEL_FILE] + [name for name in (VAR_NAMES_FILE, ARRAYS_FILE) if (new / name).is_file()]
        config["sha256"] = {name: _sha256(new / name) for name in names}
        (new / CONFIG_FILE).write_text(json.dumps(config, indent=2, allow_nan=False), encoding="utf-8")
        _swap_in(new, path)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    logger.info("Saved model to %s.", path)


def _swap_in(new: Path, path: Path) -> None:
    """Put the complete save ``new`` at ``path``; an earlier directory there is replaced, its other files kept.

    Renames only (``new`` is beside ``path``, on the same file system): the earlier directory
    moves aside, the files in it that are not a model's move into ``new``, ``new`` takes its
    name, and the earlier one is deleted. Should any step fail, every move is undone.
    """
    if not path.exists():
        os.rename(new, path)
        return
    old = new.with_name(new.name[: -len(".saving")] + ".replaced")
    os.rename(path, old)
    carried: list[str] = []
    try:
        for entry in sorted(old.iterdir()):
            if entry.name not in _MODEL_FILES:  # the user's own files stay in the directory
                os.rename(entry, new / entry.name)
                carried.append(entry.name)
        os.rename(new, path)
    except BaseException:
        for name in carried:
            os.rename(new / name, old / name)
        if not path.exists():
            os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_files(path: Path, config: dict) -> None:
    """Compare each file listed in ``config['sha256']`` with its checksum."""
    if "sha256" not in config:  # saved before checksums were written
        return
    sums = config["sha256"]
    if (
        not isinstance(sums, dict)
        or MODEL_FILE not in sums
        or not set(sums) <= {MODEL_FILE, VAR_NAMES_FILE, ARRAYS_FILE}
    ):
        msg = (
            f"`{path / CONFIG_FILE}`, field 'sha256': must map {MODEL_FILE!r} (and the other saved files) to checksums."
        )
        raise ValueError(msg)
    for name, expected in sums.items():
        file = path / name
        if not file.is_file():
            msg = f"`{file}` is missing; the save is incomplete."
            raise FileNotFoundError(msg)
        if _sha256(file) != expected:
            msg = (
                f"`{file}` does not match its checksum in {CONFIG_FILE}: the file was damaged or changed after saving."
            )
            raise ValueError(msg)


def _write_npz(file: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(file, "wb") as handle:  # a handle: given a path, numpy would append ".npz" to the name
        np.savez(handle, **arrays)


def _read_config(path: Path) -> dict:
    from .. import __version__

    file = path / CONFIG_FILE
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        msg = f"`{file}` is not valid JSON ({err}); the save is corrupt."
        raise ValueError(msg) from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        msg = f"`{file}` does not describe a saved SiameseClusterModel (field 'format' is {found!r})."
        raise ValueError(msg)
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        msg = (
            f"`{path}` was saved in format version {version!r} (scsiameseclu {config.get('scsiameseclu_version')}); "
            f"this scsiameseclu ({__version__}) reads format version {FORMAT_VERSION} only. Load it with the "
            "version that saved it, or train the model again and save it with this one."
        )
        raise ValueError(msg)
    missing = sorted({"settings", "input", "fit"} - set(config))
    unknown = sorted(
        set(config) - {"format", "format_version", "scsiameseclu_version", "settings", "input", "fit", "sha256"}
    )
    if unknown:
        msg = f"`{file}` has unknown field(s) {unknown}."
        raise ValueError(msg)
    if missing:
        msg = f"`{file}` lacks the field(s) {missing}; the save is corrupt."
        raise ValueError(msg)
    if config.get("scsiameseclu_version") != __version__:
        warnings.warn(
            f"The model was saved with scsiameseclu {config.get('scsiameseclu_version')}, this is {__version__}.",
            UserWarning,
            stacklevel=4,
        )
    return config


def _read_var_names(path: Path) -> list[str]:
    file = path / VAR_NAMES_FILE
    if not file.is_file():
        msg = f"`{file}` is missing; the save is incomplete."
        raise FileNotFoundError(msg)
    try:
        names = pd.read_csv(file, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        msg = f"`{file}` cannot be read as CSV ({err})."
        raise ValueError(msg) from err
    if list(names.columns) != ["var_names"]:
        msg = f"`{file}` must have the single column 'var_names'."
        raise ValueError(msg)
    return names["var_names"].tolist()


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    file = path / ARRAYS_FILE
    if not file.is_file():
        msg = f"`{file}` is missing; the save is incomplete."
        raise FileNotFoundError(msg)
    try:
        with np.load(file, allow_pickle=False) as arrays:
            return {k: arrays[k] for k in arrays.files}
    except Exception as err:  # a damaged archive fails in many ways inside zipfile and numpy
        msg = f"`{file}` cannot be read ({type(err).__name__}: {err})."
        raise ValueError(msg) from err


def _read_state(path: Path, device) -> dict:
    import torch

    file = path / MODEL_FILE
    try:
        state = torch.load(file, map_location=device, weights_only=True)
    except Exception as err:  # a damaged file fails in many ways inside torch's weights-only unpickler
        msg = f"`{file}` cannot be read as saved weights ({type(err).__name__}: {err})."
        raise ValueError(msg) from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        msg = f"`{file}` does not hold a state_dict of tensors."
        raise ValueError(msg)
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        msg = f"`{file}` has non-finite values in {bad}; the save is corrupt."
        raise ValueError(msg)
    return state


def load_model(cls, dir_path, adata=None, *, device="auto"):
    """Rebuild a model saved by :func:`save_model` through ``cls.from_parts``; see :meth:`SiameseClusterModel.load`."""
    from .._device import resolve_device
    from ._input import InputSpec
    from ._model import FitState
    from ._settings import ModelSettings

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
    _check_files(path, config)
    where = f"`{path / CONFIG_FILE}`"
    part = "settings"
    try:
        settings = ModelSettings.from_dict(config["settings"])
        part = "input"
        values = config["input"]
        has_names = isinstance(values, dict) and values.get("has_var_names") is True
        has_arrays = isinstance(values, dict) and (values.get("projection") is not None or values.get("has_gene_means"))
        var_names = _read_var_names(path) if has_names else None
        arrays = _read_arrays(path) if has_arrays else {}
        spec = InputSpec.from_dict(values, var_names=var_names, arrays=arrays)
        part = "fit"
        fit = FitState.from_dict(config["fit"])
    except (TypeError, ValueError, KeyError) as err:
        msg = f"{where}, field '{part}': {err}"
        raise ValueError(msg) from err
    if settings.network.extra_dims != spec.extra_dims:
        msg = f"{where}: `settings.network.extra_dims` {settings.network.extra_dims} do not match the input's {spec.extra_dims}."
        raise ValueError(msg)
    state = _read_state(path, device)
    try:
        model = cls.from_parts(settings, spec, state=state, fit=fit, adata=adata, device=device)
    except RuntimeError as err:  # load_state_dict: missing, unexpected or mis-shaped tensors
        msg = f"`{path / MODEL_FILE}` does not match the network described in {where}: {err}"
        raise ValueError(msg) from err
    logger.info("Loaded model from %s on %s.", path, device)
    return model
