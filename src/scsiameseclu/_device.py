"""Device selection, CPU threads and seeded, global-state-free randomness."""

from __future__ import annotations

import contextlib
import re
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


@contextlib.contextmanager
def seeded_torch(seed: int, device):
    """Seed torch inside the block and restore the caller's global RNG state afterwards."""
    import torch

    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def torch_threads(n_threads: int):
    """Run the block with ``n_threads`` CPU threads of torch; the caller's setting is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    if n_threads != before:
        torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


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
    deterministic, and a caller who enabled the mode already keeps their own setting.
    """
    import torch
    import torch.utils.deterministic

    if not enabled or device.type != "cuda" or torch.are_deterministic_algorithms_enabled():
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
