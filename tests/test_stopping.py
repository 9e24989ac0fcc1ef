"""The label-free stop of the training stages at their loss plateau (``loss_plateau``)."""

import numpy as np
import pytest

import scsiameseclu as ssc
from scsiameseclu.model._schedule import loss_plateau


def test_plateau_reads_the_stage_progress_not_the_loss_scale():
    falling = list(np.linspace(10.0, 1.0, 60))  # still falling steadily: no plateau
    assert not loss_plateau(falling, 20, 0.05)
    flat_end = list(np.linspace(10.0, 1.0, 40)) + [1.0] * 40  # fell, then flat for two windows
    assert loss_plateau(flat_end, 20, 0.05)
    # The same shapes at another scale decide the same way.
    assert loss_plateau([1e-3 * v for v in flat_end], 20, 0.05)
    assert not loss_plateau([1e3 * v for v in falling], 20, 0.05)


def test_plateau_stops_a_loss_that_never_fell_and_needs_three_windows():
    noisy_flat = [2.0 + 0.01 * (-1) ** i for i in range(60)]  # step-to-step noise around a level
    rising = list(np.linspace(1.0, 2.0, 60))
    assert loss_plateau(rising, 20, 0.05)  # no progress at all
    assert loss_plateau(noisy_flat, 20, 0.05)
    assert not loss_plateau(rising[:59], 20, 0.05)  # fewer than three windows: too early to tell
    assert not loss_plateau(rising, 20, 0.0)  # tolerance 0: never stops


def test_stage_lengths_recorded_and_the_stop_shortens_training(tissue, monkeypatch):
    kwargs = {"n_clusters": 4, "random_state": 0, "show_progress_bar": False, "max_epochs": 120}
    full = tissue.copy()
    ssc.tl.siamese_cluster(full, train_kwargs={}, **kwargs)
    u = full.uns["ssc"]
    # Tissue domains: pre-training runs its full length by default; the clustering stage may stop.
    assert u["epochs"]["pretrain"] == 72 and u["epochs"]["pretrain"] + u["epochs"]["cluster"] == len(u["loss"])
    early = tissue.copy()
    ssc.tl.siamese_cluster(early, **{**kwargs, "max_epochs": None}, train_kwargs={"plateau_tol_pretrain": 1.0})
    e = early.uns["ssc"]["epochs"]
    # A tolerance of 1 calls any slowing a plateau: the first check with three windows stops.
    assert e["pretrain"] == 60 and early.uns["ssc"]["params"]["plateau_tol_pretrain"] == 1.0
    # The clustering stage: with its labels never called settled, only the plateau can stop it.
    from scsiameseclu.model import _schedule

    monkeypatch.setattr(_schedule, "labels_settled", lambda *args: False)
    quick = {"plateau_window": 5, "check_every": 5}
    runs = {}
    for tol in (1.0, 0.0):
        run = tissue.copy()
        ssc.tl.siamese_cluster(run, **kwargs, train_kwargs={**quick, "plateau_tol_cluster": tol})
        runs[tol] = run.uns["ssc"]
    assert runs[0.0]["epochs"] == {"pretrain": 72, "cluster": 48} and runs[0.0]["stopped_epoch"] == -1
    n_cluster = runs[1.0]["epochs"]["cluster"]
    assert 15 <= n_cluster < 48 and runs[1.0]["stopped_epoch"] == 72 + n_cluster


@pytest.mark.parametrize("tol", [0.05, 0.0])
def test_plateau_decision_is_a_pure_function_of_the_losses(tol):
    losses = list(np.linspace(5, 1, 30)) + [1.0] * 30
    assert loss_plateau(losses, 20, tol) == loss_plateau(list(losses), 20, tol)
