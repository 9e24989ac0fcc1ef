"""torch_geometric, imported once here without its import-time noise (before the modules that use it)."""

import warnings

with warnings.catch_warnings():
    # torch_geometric decorates functions with `torch.jit.script` at import, deprecated in recent
    # torch (a DeprecationWarning, shown under `-W default`); nothing for the user to act on. For
    # this import only: the filter is gone once it returns.
    warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated", DeprecationWarning)
    import torch_geometric.nn  # noqa: E402, F401
