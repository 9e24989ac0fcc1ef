"""The tutorials: committed with outputs, and each one still runs from top to bottom.

A notebook lists the data files it reads in its metadata (``metadata["scsiameseclu"]["data"]``);
it runs with ``SSC_DATA`` pointing at the shared data folder and is skipped when a file is absent,
or when a package named in ``metadata["scsiameseclu"]["requires"]`` (an optional extra such as
spatialdata) is not installed.
"""

import json
import os
from pathlib import Path

import pytest
from conftest import SHARED_DATA

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]


def _data_dir() -> Path:
    return Path(os.environ.get("SSC_DATA", SHARED_DATA)).resolve()


def test_tutorials_exist():
    assert {"spatial_domains", "cell_types"} <= set(IDS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_with_outputs(path):
    """Every code cell was executed, in order, in one run, and the notebook shows results."""
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: execution counts {counts}"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} has no figure"
    assert nb["metadata"]["scsiameseclu"]["data"], "the notebook must list the data files it reads"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_executes(path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("torch")  # the kernel, a subprocess, imports it
    nb = nbformat.read(path, as_version=4)
    for module in nb.metadata["scsiameseclu"].get("requires", []):
        pytest.importorskip(module)
    data = _data_dir()
    missing = [f for f in nb.metadata["scsiameseclu"]["data"] if not (data / f).exists()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not in {data}")
    monkeypatch.setenv("SSC_DATA", str(data))  # the kernel inherits the environment
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(TUTORIALS)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any failure
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)
