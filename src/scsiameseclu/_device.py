"""Device selection, CPU threads, and the process-wide settings that concurrent calls share."""

from __future__ import annotations

import contextlib
import re
import threading
import warnings

import numpy as np


def resolve_device(device):
    """``"auto"`` → CUDA when available else CPU; also ``"cpu"``, ``"cuda"``, ``"cuda:N"``, :class:`torch.device`."""
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        msg = f"`device` must be a string such as 'auto', 'cpu' or 'cuda:0', got {device!r}."
        raise TypeError(msg)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if match is None:
        msg = f"`device` must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}."
        raise ValueError(msg)
    if not torch.cuda.is_available():
        msg = f"`device={device!r}` was requested but CUDA is not available; use device='cpu' or 'auto'."
        raise ValueError(msg)
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        msg = f"`device={device!r}` does not exist: {torch.cuda.device_count()} CUDA device(s) visible."
        raise ValueError(msg)
    return torch.device("cuda", index)


def resolve_seed(random_state) -> int:
    """An int seed from ``random_state`` (``None`` draws one from the OS, to be recorded)."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    from ._validation import check_seed

    return check_seed("random_state", random_state)


#: Held while ssc changes process-wide state for a moment (scanpy's verbosity and igraph's RNG
#: around its inner Leiden runs, warning filters): calls of ssc in several threads take turns
#: there, so that each puts back what it found and none runs under another's setting.
GLOBAL_STATE_LOCK = threading.RLock()


class _SharedSetting:
    """A process-wide setting that concurrent ssc calls (threads of one process) hold together.

    The first holder saves the caller's value and sets its own; later holders that want the same
    value join it, others wait until the setting is free; the last one out restores the saved
    value. So every call runs under the value it asked for, and the caller's value comes back.
    """

    def __init__(self, get, set_):
        self._get, self._set = get, set_
        self._cond = threading.Condition()
        self._holders = 0
        self._value = self._saved = None

    @contextlib.contextmanager
    def hold(self, value):
        with self._cond:
            self._cond.wait_for(lambda: self._holders == 0 or self._value == value)
            if self._holders == 0:
                self._saved, self._value = self._get(), value
                if value != self._saved:
                    self._set(value)
            self._holders += 1
        try:
            yield
        finally:
            with self._cond:
                self._holders -= 1
                if self._holders == 0:
                    if self._get() != self._saved:
                        self._set(self._saved)
                    self._cond.notify_all()


def _get_torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _set_torch_threads(n_threads: int) -> None:
    import torch

    torch.set_num_threads(n_threads)


_TORCH_THREADS = _SharedSetting(_get_torch_threads, _set_torch_threads)


@contextlib.contextmanager
def torch_threads(n_threads: int):
    """Run the block with ``n_threads`` CPU threads of torch; the caller's setting is restored afterwards.

    torch's thread count is one setting for the whole process: concurrent calls that want the
    same count share it, a call that wants another waits for them (:class:`_SharedSetting`), so
    that each result is that of its sequential run (floating-point sums depend on the count).
    """
    with _TORCH_THREADS.hold(n_threads):
        yield


@contextlib.contextmanager
def deterministic_algorithms(device, enabled: bool = True):
    """On CUDA, run the block with torch's deterministic algorithms; the caller's settings are restored.

    PyTorch Geometric's message passing sums with ``scatter_add_``, which uses atomic additions
    on CUDA: their order, and so the last bits of every sum, change from run to run, and over a
    few hundred steps two runs with one seed can end a few cells apart. The deterministic variant
    sorts instead (slower, and it holds the sorted index: more GPU memory). ``warn_only`` keeps an
    operation without a deterministic variant running; its notice, and cuBLAS's about
    ``CUBLAS_WORKSPACE_CONFIG`` (cuBLAS is reproducible on the single stream used here), are not
    the user's to act on. Filling new tensors with NaN (torch's debugging aid in this mode) is
    left off: ssc never reads memory it did not write. On the CPU these kernels are already
    deterministic, and a caller who enabled the mode already keeps their own setting. The mode
    and the warning filters are process-wide: the block holds :data:`GLOBAL_STATE_LOCK`, so
    concurrent GPU runs of ssc take turns rather than switch the mode off under each other.
    """
    import torch
    import torch.utils.deterministic

    if not enabled or device.type != "cuda":
        yield
        return
    with GLOBAL_STATE_LOCK:
        if torch.are_deterministic_algorithms_enabled():
            yield
            return
        fill = torch.utils.deterministic.fill_uninitialized_memory
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = False
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*does not have a deterministic implementation.*")
                warnings.filterwarnings("ignore", message=".*CUBLAS_WORKSPACE_CONFIG.*")
                yield
        finally:
            torch.use_deterministic_algorithms(False)
            torch.utils.deterministic.fill_uninitialized_memory = fill
