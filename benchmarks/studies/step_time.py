"""Milliseconds per training step of the network alone, on a synthetic cell graph.

    python -m benchmarks.studies.step_time [--cells 900 3600 14400] [--steps 25] [--threads 1] [--profile]

One step is what the clustering stage does: two augmented views, every loss term, the clean
view's Sinkhorn targets, backward and an Adam step (``scsiameseclu.module.training_step``). The
graph is the symmetrised 6-NN graph of uniform random positions and the input 50 random
columns, like a PCA of one Visium slice. To compare two versions of the code, run it with each
on ``PYTHONPATH`` (e.g. a ``git worktree`` of the older commit), alternating, on a quiet machine.
``--profile`` prints torch's operator table for the first size instead.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

N_INPUT = 50
N_CLUSTERS = 7
N_NEIGHBOURS = 6
WARMUP = 3


def graph_and_input(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 1, (n, 2))
    x = rng.normal(size=(n, N_INPUT)).astype(np.float32)
    _, idx = NearestNeighbors(n_neighbors=N_NEIGHBOURS + 1).fit(pos).kneighbors(pos)
    pairs = np.stack([np.repeat(np.arange(n), N_NEIGHBOURS), idx[:, 1:].ravel()])
    pairs = np.unique(np.sort(pairs, 0), axis=1)
    return torch.as_tensor(x), torch.as_tensor(pairs)


def step_fn(n: int):
    from scsiameseclu.module import AugmentConfig, NetworkConfig, SiameseNetwork, TrainConfig, training_step

    x, pairs = graph_and_input(n)
    net = SiameseNetwork(N_INPUT, N_CLUSTERS, NetworkConfig())
    augment, train = AugmentConfig(), TrainConfig()
    optimizer = torch.optim.Adam(net.parameters(), lr=train.learning_rate)
    generator = torch.Generator().manual_seed(0)
    sizes = torch.full((N_CLUSTERS,), 1.0 / N_CLUSTERS)

    def step() -> None:
        out = training_step(net, x, pairs, augment, train, generator, cluster=True, cluster_weights=sizes)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()

    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="*", type=int, default=[900, 3600, 14400])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for n in args.cells:
        step = step_fn(n)
        for _ in range(WARMUP):
            step()
        if args.profile:
            from torch.profiler import profile

            with profile() as prof:
                for _ in range(args.steps):
                    step()
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
            return
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        print(f"{n} cells: {(time.perf_counter() - t0) / args.steps * 1000:.1f} ms per step")


if __name__ == "__main__":
    main()
