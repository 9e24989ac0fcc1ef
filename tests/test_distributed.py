"""Data-parallel training with torch.distributed: two CPU processes (gloo) against one."""

import sys

import pytest
import torch

from scsiameseclu.model._batches import _SeedStream
from scsiameseclu.model._distributed import ProcessGroup


def test_seed_stream_gives_each_rank_its_share():
    n, batch, world = 103, 10, 3
    streams = [_SeedStream(n, batch, torch.Generator().manual_seed(5), rank, world) for rank in range(world)]
    single = _SeedStream(n, batch, torch.Generator().manual_seed(5))
    for _ in range(25):  # several passes: each reshuffles the same way on every rank
        seeds = [s.next() for s in streams]
        together = torch.cat(seeds)
        assert together.unique().numel() == together.numel()  # disjoint shares
        # the ranks split what one process draws at that step
        assert torch.equal(torch.sort(together).values, torch.sort(single.next()).values)
        assert max(s.numel() for s in seeds) - min(s.numel() for s in seeds) <= 1
    assert _SeedStream(5, 2, torch.Generator(), 1, 3).batch_size == 3  # at least one seed per rank


def test_without_a_process_group_nothing_is_distributed():
    group = ProcessGroup.current()
    assert (group.rank, group.world_size, group.active) == (0, 1, False)
    assert group.seed(7) == 7 and ProcessGroup(1, 2).seed(7) != 7
    value = torch.tensor([1.0, 2.0])
    assert group.mean(value) is value and group.from_rank0(3, torch.device("cpu")) == 3


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="torchrun's gloo rendezvous on localhost")
def test_two_processes_cluster_like_one():
    """2 ranks (mini-batches, each its share of the seeds) vs 1 process, same seed: ARI within 0.02."""
    from benchmarks.studies.ddp import launch
    from sklearn.metrics import adjusted_rand_score

    one = launch("synthetic:1500", 0, 256, nproc=1, timeout=600)
    two = launch("synthetic:1500", 0, 256, nproc=2, timeout=600)
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert one["mode"] == two["mode"] == "minibatch"
    assert abs(two["ari"] - one["ari"]) <= 0.02, (one["ari"], two["ari"])
    assert adjusted_rand_score(one["labels"], two["labels"]) > 0.9
