"""Data-parallel training across the processes of a ``torch.distributed`` group (DDP).

When a script is started by ``torchrun`` (or any launcher that calls
``torch.distributed.init_process_group``), every process runs the same ssc call on the same data.
Training then splits the work: each rank draws its own seed cells (a disjoint share of every pass
over the data) and its own augmentations, and :class:`~torch.nn.parallel.DistributedDataParallel`
averages the gradients, so the ranks keep identical weights. What must agree is agreed through
the group: the number of clusters and the seeded prototypes come from rank 0, the running
estimate of the cluster sizes (the Sinkhorn targets) and the loss are averaged over ranks, and
rank 0's stopping decision holds for all. Inference then runs on every rank, with identical results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..module import SiameseNetwork, training_step


class _Step(nn.Module):
    """The training step as a module, so that DDP can wrap it (its forward is one step's losses)."""

    def __init__(self, net: SiameseNetwork):
        super().__init__()
        self.net = net

    def forward(self, *args, **kwargs):
        return training_step(self.net, *args, **kwargs)


@dataclass(frozen=True)
class ProcessGroup:
    """Rank and size of the default ``torch.distributed`` group of this process (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1

    @classmethod
    def current(cls) -> ProcessGroup:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def seed(self, random_state: int) -> int:
        """Seed of the step noise on this rank: ``random_state`` on rank 0, independent streams on the others."""
        if self.rank == 0:
            return random_state
        return int(np.random.SeedSequence(random_state, spawn_key=(self.rank,)).generate_state(1)[0])

    def step(self, net: SiameseNetwork, *, cluster: bool):
        """The training step: :func:`~scsiameseclu.module.training_step`, or its DDP-wrapped module.

        Wrapping broadcasts rank 0's weights (prototypes included), so it is redone whenever the
        parameters change (after the prototypes are seeded). DDP must be told when a phase leaves
        parameters without a gradient: the prototypes before clustering (``cluster=False``), the
        graph branch when its weight is 0.
        """
        if not self.active:
            return lambda *args, **kwargs: training_step(net, *args, **kwargs)
        from torch.nn.parallel import DistributedDataParallel

        device = net.prototypes.device
        return DistributedDataParallel(
            _Step(net),
            device_ids=[device] if device.type == "cuda" else None,
            broadcast_buffers=False,
            find_unused_parameters=not cluster or net.fusion.graph_weight <= 0,
        )

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """Mean of ``value`` over the ranks (a new tensor)."""
        if not self.active:
            return value
        import torch.distributed as dist

        total = value.detach().clone()
        dist.all_reduce(total)
        return total / self.world_size

    def from_rank0(self, value: int, device: torch.device) -> int:
        """Rank 0's ``value`` on every rank (sent as a tensor on ``device``, which NCCL needs to be the rank's GPU)."""
        if not self.active:
            return value
        import torch.distributed as dist

        box = torch.tensor([int(value)], dtype=torch.long, device=device)
        dist.broadcast(box, src=0)
        return int(box.item())
