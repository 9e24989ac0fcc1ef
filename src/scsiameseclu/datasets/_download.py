"""Cached downloads for the dataset loaders."""

from __future__ import annotations

import logging
import os
import urllib.request
from pathlib import Path

logger = logging.getLogger("scsiameseclu")

DEFAULT_CACHE_DIR = Path("~/.cache/scsiameseclu")
_CHUNK = 1 << 20


def cache_path(cache_dir: str | os.PathLike | None, subdir: str) -> Path:
    """``cache_dir / subdir`` (default cache: ``~/.cache/scsiameseclu``), created if missing."""
    if cache_dir is not None and not isinstance(cache_dir, str | os.PathLike):
        msg = f"`cache_dir` must be a path, got {type(cache_dir).__name__}: {cache_dir!r}."
        raise TypeError(msg)
    root = Path(DEFAULT_CACHE_DIR if cache_dir is None else cache_dir).expanduser()
    folder = root / subdir
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def download(url: str, dest: Path, *, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` unless it is already there.

    The bytes go to ``dest.part`` first and are renamed when complete, so an interrupted
    download never leaves a truncated file under the final name.
    """
    from tqdm.auto import tqdm

    if dest.exists():
        return dest
    part = dest.with_name(dest.name + ".part")
    logger.info("Downloading %s to %s.", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = response.headers.get("Content-Length")
            with tqdm(
                total=int(total) if total else None, unit="B", unit_scale=True, desc=dest.name, leave=False
            ) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest
