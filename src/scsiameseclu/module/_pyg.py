"""torch_geometric, imported on first use and without its import-time noise.

Not at the package's import: torch_geometric imports ``torch._dynamo``, about 2 s of every fresh
process, and the training path does not need it (the attention layers are
:class:`~scsiameseclu.module.SparseGATConv`).
"""

import warnings


def pyg_utils():
    """``torch_geometric.utils``."""
    with warnings.catch_warnings():
        # torch_geometric decorates functions with `torch.jit.script` at import, deprecated in
        # recent torch (a DeprecationWarning, shown under `-W default`); nothing for the user to
        # act on. For this import only: the filter is gone once it returns.
        warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated", DeprecationWarning)
        import torch_geometric.utils

    return torch_geometric.utils
