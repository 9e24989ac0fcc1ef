"""ssc's own output follows ``scanpy.settings.verbosity``, as a scanpy user expects.

=========  ==========================  ====================================================
verbosity  ``scsiameseclu`` logger     training progress bar (``show_progress_bar=None``)
=========  ==========================  ====================================================
0 error    errors only                 hidden
1 warning  warnings (scanpy's default) shown
2 info     + info lines                shown
3+ hint    + debug lines               shown
=========  ==========================  ====================================================

An explicit ``show_progress_bar=True``/``False`` wins over the verbosity. Log records go, like
scanpy's own, to ``scanpy.settings.logfile`` (stderr; stdout in IPython) and not on to Python's root
logger; a handler added to ``logging.getLogger("scsiameseclu")`` receives the same records.
"""

from __future__ import annotations

import logging
import sys
import warnings
from contextlib import contextmanager

LOGGER_NAME = "scsiameseclu"
# scanpy.settings.verbosity 0, 1, 2, 3 and above -> the lowest level shown.
_LEVELS = (logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG)


def verbosity() -> int:
    """``scanpy.settings.verbosity`` as an int; scanpy's default (1, warnings) while scanpy is not imported."""
    sc = sys.modules.get("scanpy")
    settings = getattr(sc, "settings", None)
    return 1 if settings is None else int(settings.verbosity)


def log_level() -> int:
    """The lowest level of a record that the ``scsiameseclu`` logger passes at the current verbosity."""
    return _LEVELS[min(max(verbosity(), 0), len(_LEVELS) - 1)]


def show_progress(show_progress_bar: bool | None) -> bool:
    """Whether to draw the training bar: ``show_progress_bar`` when given, else ``verbosity >= 1``."""
    if show_progress_bar is None:
        return verbosity() >= 1
    if not isinstance(show_progress_bar, bool):
        msg = f"`show_progress_bar` must be True, False or None, got {show_progress_bar!r}."
        raise TypeError(msg)
    return show_progress_bar


class _VerbosityFilter(logging.Filter):
    # On the logger, read at every record: the verbosity can change at any time (no level cache).
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= log_level()


class _Formatter(logging.Formatter):
    # scanpy's layout: info lines bare, others prefixed with their level.
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno == logging.INFO:
            return message
        if record.levelno < logging.INFO:
            return f"    {message}"
        return f"{record.levelname}: {message}"


class _LogfileHandler(logging.StreamHandler):
    """Writes to ``scanpy.settings.logfile`` as it is when the record comes."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = _logfile()
        super().emit(record)


def _logfile():
    settings = getattr(sys.modules.get("scanpy"), "settings", None)
    stream = None if settings is None else settings.logfile
    # scanpy's default is the stderr of its import; follow today's (redirections, pytest's capture).
    if stream is None or stream is sys.__stderr__ or getattr(stream, "closed", False):
        return sys.stderr
    return stream


def configure_logger() -> logging.Logger:
    """Set up the ``scsiameseclu`` logger once (idempotent): verbosity filter, scanpy-style handler."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(f, _VerbosityFilter) for f in logger.filters):
        logger.addFilter(_VerbosityFilter())
    if not any(isinstance(h, _LogfileHandler) for h in logger.handlers):
        logger.addHandler(_LogfileHandler())
    logger.setLevel(logging.DEBUG)  # the filter decides, from the verbosity of the moment
    logger.propagate = False  # as scanpy's logger: not printed twice under a configured root logger
    return logger


@contextmanager
def scanpy_quiet():
    """Turn scanpy's info lines off while ssc calls scanpy for its own inner steps; warnings stay.

    ssc's Leiden seeds and private neighbour graphs are not the user's calls: ``running Leiden
    clustering`` at every resolution tried would drown ssc's own lines. The verbosity is restored
    on exit, also on an error. The block holds :data:`~scsiameseclu._device.GLOBAL_STATE_LOCK`:
    the verbosity, and igraph's random number generator that scanpy's Leiden swaps in and out,
    are process-wide, so ssc calls in several threads run these blocks one at a time.
    """
    import scanpy as sc

    from ._device import GLOBAL_STATE_LOCK

    with GLOBAL_STATE_LOCK:
        before = sc.settings.verbosity
        if before > 1:
            sc.settings.verbosity = 1
        try:
            yield
        finally:
            sc.settings.verbosity = before


@contextmanager
def dependency_noise_off():
    """Inside the block, what squidpy and spatialdata print by themselves is dropped; nothing else.

    - docrep's import-time ``SyntaxWarning: 'n_jobs' is not a valid key!`` (and
      ``'show_progress_bar'``) on squidpy's docstrings, and compile-time ``invalid escape sequence``
      warnings of dependencies' sources (``SyntaxWarning`` from Python 3.12);
    - spatialdata's logger, which squidpy's graph builders use: its rich handler prints coloured
      ``INFO Creating graph using `None` transform and `1` libraries.`` at every call.

    Warnings filters and the logger are restored on exit. For ssc's own calls of those
    packages only; warnings that ask the caller to act (deprecations of a call) are not touched.
    """
    # spatialdata's own logger is "spatialdata._logging" (its module's name), with a handler of its
    # own and no propagation; a filter, not a level, since spatialdata sets the level on import.
    loggers = [logging.getLogger(name) for name in ("spatialdata._logging", "spatialdata")]
    below_warning = _BelowWarning()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SyntaxWarning, module="docrep")
        warnings.filterwarnings("ignore", message="invalid escape sequence", category=SyntaxWarning)
        warnings.filterwarnings("ignore", message="invalid escape sequence", category=DeprecationWarning)
        for log in loggers:
            log.addFilter(below_warning)
        try:
            yield
        finally:
            for log in loggers:
                log.removeFilter(below_warning)


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING
