"""Device selection, CPU threads and seeded, global-state-free randomness."""

from __future__ import annotations

import contextlib
import re

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
