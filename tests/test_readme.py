"""The README's example runs as written (with the DLPFC slice read from ``../shared`` instead of downloaded)."""

import re
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "dlpfc_151673_maynard2021_hvg5000.h5ad"


def _use_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.DOTALL).group(1)


def test_readme_short_and_keeps_the_test_command():
    readme = (ROOT / "README.md").read_text()
    words = len(re.sub(r"<!--.*?-->", "", readme, flags=re.DOTALL).split())
    assert words < 800, f"README has {words} words"
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^python3 -m venv .*pytest -q tests$", readme, flags=re.MULTILINE).group(0)
    assert command in ci


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data not present")
def test_readme_example_runs(tmp_path, monkeypatch):
    code = _use_block()
    loader = re.search(r"^adata = ssc\.datasets\.dlpfc\(.*$", code, flags=re.MULTILINE).group(0)
    local = f'adata = sc.read_h5ad({str(SHARED)!r}); adata.obs["layer"] = adata.obs["label"]'
    monkeypatch.chdir(tmp_path)
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict = {}
    exec(compile(code.replace(loader, local), "README.md", "exec"), namespace)
    adata = namespace["adata"]
    assert adata.obs["ssc"].nunique() == 7
    assert (tmp_path / "figures" / "domains.png").stat().st_size > 10_000
