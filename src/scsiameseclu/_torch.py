"""PyTorch, imported with instructions where it is missing.

``import scsiameseclu`` does not import torch, nor does ``ssc.datasets``.
``ssc.model`` and ``ssc.module`` (so ``ssc.tl.siamese_cluster``) import it through this module first,
which names the install command instead of a bare ``No module named 'torch'``.
"""

try:
    import torch  # noqa: F401
except ModuleNotFoundError as err:
    if err.name != "torch":
        raise
    msg = (
        "scsiameseclu's model needs PyTorch, which is not installed in this environment. Install the build "
        "for your machine: CPU only: "
        "`pip install torch --index-url https://download.pytorch.org/whl/cpu`; NVIDIA GPU: `pip install torch` "
        "(on Linux, PyPI's wheel is the CUDA build). "
        "See https://scsiameseclu.readthedocs.io/en/latest/installation.html"
    )
    raise ModuleNotFoundError(msg, name="torch") from err
