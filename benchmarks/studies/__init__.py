"""One-off measurements (speed, memory, scaling, reuse, DDP, ...): each writes its table to ``benchmarks/results``."""
