"""The benchmark harness: scoring, merging of stored runs, and the --quick run end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import report  # noqa: E402
from benchmarks.metrics import accuracy, scores  # noqa: E402
from benchmarks.run import QUICK_DATASET, store  # noqa: E402


def test_accuracy_uses_best_matching():
    truth = np.array(["a", "a", "a", "b", "b", "c"])
    pred = np.array([2, 2, 0, 0, 0, 1])  # 2→a, 0→b, 1→c: 5 of 6 right
    assert accuracy(truth, pred) == pytest.approx(5 / 6)
    s = scores(truth, truth[::-1])
    assert s["acc"] < 1 and scores(truth, truth) == {"ari": 1.0, "nmi": 1.0, "acc": 1.0}


def _run(method, seed, ari, status="ok"):
    run = {
        "dataset": QUICK_DATASET,
        "method": method,
        "seed": seed,
        "quick": False,
        "status": status,
        "env": "project",
        "git_commit": "abc",
        "versions": {},
    }
    if status == "ok":
        run |= {
            "ari": ari,
            "nmi": ari,
            "acc": ari,
            "seconds": 1.0,
            "peak_rss_mb": 100.0,
            "n_obs": 10,
            "k": 2,
            "loadavg_start": [1.0, 1.0, 1.0],
        }
    else:
        run["reason"] = "install failed: no wheel"
    return run


def test_store_replaces_same_run_and_summary_covers_all(tmp_path):
    store(tmp_path, _run("kmeans", 0, 0.1))
    store(tmp_path, _run("kmeans", 1, 0.3))
    store(tmp_path, _run("banksy", 0, None, status="install_failed"))
    store(tmp_path, _run("ssc", 0, 0.2))
    runs = store(tmp_path, _run("kmeans", 0, 0.5))  # re-run of seed 0 replaces it
    assert len(runs) == 4
    assert sorted(r["ari"] for r in runs if r["method"] == "kmeans") == [0.3, 0.5]
    text = report.write_summary(runs, tmp_path).read_text()
    assert "**0.400 ± 0.141**" in text
    assert "| 0.200 (1) |" in text  # one seed: its count, no spread
    assert "✗ install_failed" in text and "install failed: no wheel" in text


def test_summary_with_no_finished_run(tmp_path):
    run = _run("ssc", 0, None, status="timeout") | {"reason": "no result within 10 s"}
    text = report.write_summary(store(tmp_path, run), tmp_path).read_text()
    assert "✗ timeout" in text and "no result within 10 s" in text and "no run finished" in text
    assert report.write_figures([run], tmp_path) == []


@pytest.mark.slow
def test_quick_run_writes_results_summary_and_figures(tmp_path):
    if not (SHARED_DATA / f"{QUICK_DATASET}.h5ad").exists():
        pytest.skip(f"{SHARED_DATA} not available")
    pytest.importorskip("torch")  # the subprocess imports it
    res = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert sorted(r["method"] for r in runs) == ["kmeans", "ssc"]
    for r in runs:
        assert r["status"] == "ok", r.get("reason")
        assert r["quick"] and r["seed"] == 0 and r["dataset"] == QUICK_DATASET
        assert r["n_clusters_found"] == r["k"] == 7
        assert 0 < r["ari"] <= 1 and 0 < r["acc"] <= 1
        assert r["seconds"] > 0 and r["peak_rss_mb"] > 50 and len(r["loadavg_start"]) == 3
        assert r["git_commit"] and r["host"] and r["versions"]["numpy"]
    summary = (tmp_path / "summary.md").read_text()
    assert "ssc (quick)" in summary and "kmeans (quick)" in summary and QUICK_DATASET in summary
    for png in ("ari.png", "runtime_vs_ari.png"):
        assert (tmp_path / png).stat().st_size > 10_000


def test_each_table_marks_its_own_best(tmp_path):
    runs = store(tmp_path, _run("kmeans", 0, 0.5))
    runs = store(tmp_path, _run("ssc", 0, 0.3) | {"nmi": 0.9, "acc": 0.8})
    text = report.write_summary(runs, tmp_path).read_text()
    ari, nmi, acc = (text.split(f"## {h}")[1].split("##")[0] for h in ("ARI", "NMI", "ACC"))
    assert "**0.500 (1)**" in ari and "**0.900**" in nmi and "**0.800**" in acc
    assert "**0.500**" not in nmi + acc


def test_cell_types_table_marks_best_mean_per_protocol():
    from benchmarks.cell_types import table

    runs = [
        {"dataset": "d", "protocol": p, "method": m, "seed": s, "ari": a}
        for p, m, a in (
            ("standard", "kmeans", 0.9),
            ("standard", "ssc", 0.5),
            ("legacy", "kmeans", 0.4),
            ("legacy", "ssc", 0.6),
        )
        for s in (0, 1)
    ]
    lines = table(runs).splitlines()
    standard = next(line for line in lines if "| standard |" in line)
    legacy = next(line for line in lines if "| legacy |" in line)
    assert "**0.900 ± 0.000 (2)**" in standard and "**" not in standard.split("|")[-2]
    assert "**0.600 ± 0.000 (2)**" in legacy
    # A subsampled run is a row of its own.
    lines = table(
        [*runs, {"dataset": "d", "protocol": "standard", "method": "ssc", "seed": 0, "ari": 0.7, "subsample": 250}]
    )
    small = [line for line in lines.splitlines() if "| d (250 cells) | standard |" in line]
    assert len(small) == 1 and "**0.700 (1)**" in small[0]


@pytest.mark.slow
def test_cell_types_standard_protocol():
    from benchmarks.cell_types import load

    name = "baron_mouse_pancreas1_baron2016"
    if not (SHARED_DATA / f"{name}.h5ad").exists():
        pytest.skip("shared data not available")
    adata, labels = load(name, "standard")
    assert adata.n_vars == 2000 and adata.obsm["X_pca"].shape[1] == 50 and len(labels) == adata.n_obs
    assert abs(float(adata.X.mean())) < 0.05 and float(adata.X.max()) <= 10  # scaled, clipped
    assert "connectivities" in adata.obsp
    small, small_labels = load(name, "standard", subsample=250, seed=1)
    again, _ = load(name, "standard", subsample=250, seed=1)
    assert small.n_obs == 250 == len(small_labels) and (small.obs_names == again.obs_names).all()
    assert set(small.obs_names) <= set(adata.obs_names)


def test_gpu_check_without_cuda_says_so_and_exits_0(tmp_path):
    pytest.importorskip("torch")  # the subprocess imports it
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no CUDA, even on a GPU machine
    res = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--out", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "No CUDA device" in res.stdout
    assert not (tmp_path / "out").exists()


def test_gpu_check_report_renders_every_part():
    from benchmarks.gpu_check import report

    result = {
        "device_name": "GPU X",
        "torch": "2.x",
        "cpus": 16,
        "git_commit": "abc",
        "tissue": "synthetic",
        "tests": {"summary": "4 passed", "returncode": 0},
        "agreement": {
            "ari_gpu_run1_vs_run2": 1.0,
            "ari_gpu_vs_cpu": 0.98,
            "ari_truth_gpu": 0.6,
            "ari_truth_cpu": 0.61,
            "seconds_gpu": [3.0, 2.5],
            "seconds_cpu": 20.0,
            "passed": True,
        },
        "timings": [
            {
                "n_obs": 100_000,
                "deterministic": True,
                "seconds_tile_and_graph": 10.0,
                "seconds_ssc": 12.0,
                "timings": {"train": 8.0, "embed": 1.0, "mixture": 2.0},
                "training": {"mode": "minibatch"},
                "peak_gpu_mb": 900.0,
                "ari": 0.55,
            }
        ],
        "skipped": ["1,000,000 cells (time budget spent)"],
    }
    text = report(result)
    assert "ARI 1.0000 between them (pass" in text
    assert "| 100,000 | True | 10.0 | 12.0 | 8.0 | 1.0 | 2.0 | minibatch | 900 | 0.550 |" in text
    assert "Not run: 1,000,000 cells" in text


def test_step_time_runs(capsys):
    from benchmarks.studies.step_time import main

    main(["--cells", "200", "--steps", "1"])
    assert "200 cells:" in capsys.readouterr().out


def test_memory_stages_wraps_and_restores_every_stage():
    import importlib

    from benchmarks.studies.memory_stages import STAGES, StageMemory, report, staged

    def resolve(module_name, path):
        owner = importlib.import_module(module_name)
        for name in path.split("."):
            owner = getattr(owner, name)
        return owner

    originals = {label: resolve(*where) for label, where in STAGES.items()}
    memory = StageMemory()
    with staged(memory):
        assert all(resolve(*where) is not originals[label] for label, where in STAGES.items())
        with memory, memory.stage("outer"), memory.stage("inner"):
            block = bytearray(32 * 2**20)  # a visible rise inside both stages
            memory.sample(memory.rss())
            del block
    assert all(resolve(*where) is originals[label] for label, where in STAGES.items())
    assert memory.stats["outer"]["peak_mb"] >= memory.stats["inner"]["peak_mb"] >= memory.stats["inner"]["entry_mb"]
    row = {"dataset": "d", "n_obs": 10, "n_edges": 20, "seconds_ssc": 1.0, "ari": 0.5}
    row.update(rss_before_call_mb=100.0, peak_rss_process_mb=200.0, stages=memory.stats, sizes_mb={"input": 1.0})
    assert "| inner | 1 |" in report(row)
