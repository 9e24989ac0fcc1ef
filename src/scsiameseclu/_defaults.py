"""The numbers behind the per-target defaults, importable without torch.

:class:`~scsiameseclu.model.ModelSettings` applies them (it is the one place that resolves a
default); they live here so that the public docstrings (:mod:`scsiameseclu._docs`) quote the
same numbers in a plain ``import scsiameseclu``, which does not import torch.
"""

#: Pre-training epochs (``TrainConfig.n_epochs_pretrain``), both targets.
N_EPOCHS_PRETRAIN = 150
#: Prior weight of the graph branch on a squidpy spatial graph: tissue domains are spatially
#: smooth, so a cell's neighbours say much about its label.
GRAPH_WEIGHT_SPATIAL = 0.8
#: On an expression kNN graph an even prior, so that the learned gate can lean on expression.
GRAPH_WEIGHT_KNN = 0.5
#: Where the final mixture's EM starts, per target (``mixture_starts``). Tissue domains: the
#: prototypes' labels and Leiden communities, the likelier fit kept. Cell types: Ward's
#: hierarchical partition of the embedding alone, deterministic (mclust starts EM so): the
#: likeliest of random k-means starts was a different partition from seed to seed, often not the
#: one nearest the cell types (benchmarks/results/cell_types_approaches.md).
MIXTURE_STARTS_DOMAINS = ("prototypes", "leiden")
MIXTURE_STARTS_CELL_TYPES = ("ward",)
#: Steps of the clustering stage for tissue domains; cell types skip it (``n_epochs_cluster``).
N_EPOCHS_CLUSTER_DOMAINS = 100
#: Tolerance of the label-free stop of a training stage at its loss plateau (``plateau_tol_cluster``,
#: and ``plateau_tol_pretrain`` for cell types): the stage ends when its loss fell, over the last
#: window, by less than this share of its fall so far.
PLATEAU_TOL = 0.05
#: Pre-training for tissue domains runs its full length (``plateau_tol_pretrain=0``): its loss
#: still falls at 150 steps, so the rule stopped it at 130-150 steps when at all, and lost 0.008
#: ARI on DLPFC 151673 (benchmarks/results/stopping.md).
PLATEAU_TOL_PRETRAIN_DOMAINS = 0.0
#: Share of ``max_epochs`` spent pre-training for tissue domains (the rest is the clustering
#: stage); for cell types every step is pre-training.
PRETRAIN_SHARE = 0.6

#: Leiden resolution whose community count of the pre-trained embedding is k with
#: ``n_clusters=None`` (below scanpy's default 1.0, which splits large populations).
N_CLUSTERS_RESOLUTION = 0.3
