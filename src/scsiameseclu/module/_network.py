"""The Siamese network: shared encoders, fusion, decoder and cluster prototypes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ._augment import mask_features, perturb_edges
from ._config import AugmentConfig, NetworkConfig, TrainConfig
from ._encoders import ELU, ExpressionEncoder, GatedFusion, GraphEncoder, SoftmaxFusion
from ._init import block_weight, identity_init, random_init, split_blocks
from ._losses import (
    contrastive_loss,
    count_loss,
    cross_correlation_loss,
    library_centred,
    library_moment_loss,
    reconstruction_loss,
    swapped_assignment_loss,
)
from ._mixture import fit_tied_mixture, mixture_log_likelihood, mixture_posterior
from ._sinkhorn import sinkhorn


class SiameseNetwork(nn.Module):
    """Weight-shared encoder applied to both views, with a decoder and ``n_clusters`` prototypes.

    Holds no per-cell parameters: any cell with the same input features can be embedded.

    Parameters
    ----------
    n_input
        Input columns: expression, then the extra modalities of ``config.extra_dims``.
    n_clusters
        Number of prototypes.
    config
        Network sizes, ``graph_weight`` and ``extra_dims``. Each extra modality (the input's
        last columns) gets an MLP branch of its own; the graph branch sees every column; the
        branches are fused by :class:`~scsiameseclu.module.SoftmaxFusion` and the decoder
        reconstructs every column. Without extra modalities, expression and graph are fused by
        :class:`~scsiameseclu.module.GatedFusion`.
    """

    def __init__(
        self,
        n_input: int,
        n_clusters: int,
        config: NetworkConfig | None = None,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        config = config or NetworkConfig()
        self.config = config
        self.extra_dims = config.extra_dims
        self.n_input = n_input - sum(self.extra_dims)  # expression columns
        if self.n_input < 1:
            msg = f"`n_input={n_input}` leaves no expression column besides `extra_dims={self.extra_dims}`."
            raise ValueError(msg)
        h, d = config.n_hidden, config.n_latent
        # Built without values, then given storage and initialised from `generator`: torch's
        # layers draw their starting weights from the global RNG as they are built, which a call
        # of this package must neither read nor change (two calls in two threads would draw from
        # one stream, and the caller's own draws would move).
        with torch.device("meta"):
            self.expression = ExpressionEncoder(self.n_input, h, d)
            self.graph = GraphEncoder(
                n_input, h, d, n_layers=config.n_gat_layers, heads=config.gat_heads, n_hops=config.n_hops
            )
            if self.extra_dims:
                self.extras = nn.ModuleList(ExpressionEncoder(m, h, d) for m in self.extra_dims)
                self.fusion = SoftmaxFusion(d, 1 + len(self.extra_dims), config.graph_weight)
            else:
                self.fusion = GatedFusion(d, config.graph_weight)
            self.decoder = nn.Sequential(nn.Linear(d, h), ELU(), nn.Linear(h, n_input))
            if config.n_count_genes:
                # Raw counts of the genes: softmax composition (times each cell's total) and one
                # negative-binomial inverse dispersion per gene (`count_loss`).
                self.count_decoder = nn.Sequential(nn.Linear(d, h), ELU(), nn.Linear(h, config.n_count_genes))
                self.count_log_dispersion = nn.Parameter(torch.empty(config.n_count_genes))
            self.prototypes = nn.Parameter(torch.empty(n_clusters, d))
            # Final tied-covariance mixture over the embedding (fitted once after training).
            self.register_buffer("mixture_weights", torch.empty(n_clusters, dtype=torch.float64))
            self.register_buffer("mixture_means", torch.empty(n_clusters, d, dtype=torch.float64))
            self.register_buffer("mixture_cov", torch.empty(d, d, dtype=torch.float64))
        self.to_empty(device="cpu")
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Random starting weights (PyTorch's and PyTorch Geometric's default schemes) drawn from ``generator``.

        ``None`` draws from torch's global RNG, as torch's own layers do. The fusion gate starts
        at zero (its prior), the prototypes as random unit vectors, the final mixture unfitted.
        """
        random_init(self, generator)
        self.fusion.reset_parameters()
        if self.config.n_count_genes:
            self.count_log_dispersion.zero_()
        self.prototypes.copy_(F.normalize(torch.randn(self.prototypes.shape, generator=generator), dim=1))
        self.mixture_weights.zero_()
        self.mixture_means.zero_()
        self.mixture_cov.copy_(torch.eye(self.mixture_cov.shape[0], dtype=torch.float64))

    @property
    def n_clusters(self) -> int:
        return self.prototypes.shape[0]

    @torch.no_grad()
    def identity_init(self, x: torch.Tensor) -> None:
        """Start from a map that keeps the input: no random weights, so a seed moves only the training noise.

        Every encoder starts as the identity of its input (the projection onto the top principal
        axes of ``x`` where the input is wider than ``n_hidden``), graph attention as the plain
        mean over neighbours, the decoder as the inverse map; the fusion gate starts at its prior.
        With extra modalities, the hidden and latent coordinates are split into one block per
        modality (expression first) and every map starts block by block, so that the fused
        embedding starts as the modalities side by side rather than summed on the same
        coordinates. ``x`` is the network input (cells × ``n_input``).
        """
        parts = [self.n_input, *self.extra_dims]
        h, d = self.config.n_hidden, self.config.n_latent
        hidden, latent = split_blocks(h, len(parts)), split_blocks(d, len(parts))
        encoders = [self.expression, *(self.extras if self.extra_dims else [])]
        for encoder, x_part, block in zip(encoders, torch.split(x, parts, dim=1), latent, strict=True):
            identity_init(encoder, x_part)
            last = encoder.net[-1].weight
            last.copy_(block_weight(d, [h], [block]).to(last))
        identity_init(self.graph, x)
        if self.extra_dims:  # the first layer reads each modality into its own block, no neighbour means
            first = self.graph.convs[0].lin.weight  # its input: x, then x's neighbour means (n_hops)
            first.zero_()
            first[:, : x.shape[1]] = block_weight(h, parts, hidden, x).to(first)
        out = self.graph.out.weight
        out.copy_(block_weight(d, [b.stop - b.start for b in hidden], latent).to(out))
        identity_init(self.decoder)
        inner, last = self.decoder[0].weight, self.decoder[-1].weight
        inner.copy_(block_weight(h, [b.stop - b.start for b in latent], hidden).to(inner))
        last.copy_(block_weight(h, parts, hidden, x).T.to(last))  # a wide input decodes onto its principal axes

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused embedding and the graph-branch gate of each cell."""
        graph = self.fusion.graph_weight > 0.0
        if self.extra_dims:
            parts = torch.split(x, [self.n_input, *self.extra_dims], dim=1)
            z_branches = [self.expression(parts[0])] + [enc(p) for enc, p in zip(self.extras, parts[1:], strict=True)]
            return self.fusion(z_branches, self.graph(x, edge_index) if graph else None)
        z_expr = self.expression(x)
        if not graph:
            return self.fusion(z_expr, z_expr)
        z_graph = self.graph(x, edge_index)
        return self.fusion(z_expr, z_graph)

    def cluster_scores(self, z: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each cell to each prototype."""
        return F.normalize(z, dim=1) @ F.normalize(self.prototypes, dim=1).T

    def set_n_clusters(self, k: int) -> nn.Parameter:
        """Replace the prototypes by ``k`` new ones (and reset the mixture); returns the new parameter."""
        d, device = self.prototypes.shape[1], self.prototypes.device
        self.prototypes = nn.Parameter(torch.zeros(k, d, device=device))
        self.mixture_weights = torch.zeros(k, dtype=torch.float64, device=device)
        self.mixture_means = torch.zeros(k, d, dtype=torch.float64, device=device)
        return self.prototypes

    @property
    def mixture_fitted(self) -> bool:
        return bool(self.mixture_weights.sum() > 0) and self.mixture_weights.shape[0] == self.n_clusters

    @torch.no_grad()
    def fit_mixture(self, z: torch.Tensor, starts: Sequence[torch.Tensor] | None = None) -> list[float]:
        """Fit the final mixture on the embedding ``z`` by EM from several starts; keep the most likely fit.

        Each start is responsibilities of ``z``'s cells (cells × ``n_clusters``); ``None`` starts
        from the prototypes' hard labels alone. Returns the mean log-likelihood per cell of each
        start's fit, in order; a tie keeps the earlier start.
        """
        if starts is None:
            starts = [F.one_hot(self.cluster_scores(z).argmax(1), self.n_clusters).to(z.dtype)]
        if not starts:
            raise ValueError("`starts` must hold at least one start.")
        fits, log_liks = [], []
        for resp in starts:
            fits.append(fit_tied_mixture(z, resp))
            log_liks.append(mixture_log_likelihood(z, *fits[-1]))
        self.mixture_weights, self.mixture_means, self.mixture_cov = fits[log_liks.index(max(log_liks))]
        return log_liks

    @torch.no_grad()
    def soft_assign(self, z: torch.Tensor, temperature: float) -> torch.Tensor:
        """Soft cluster assignments: mixture posteriors once fitted, else softmax of prototype scores."""
        if self.mixture_fitted:
            params = (self.mixture_weights, self.mixture_means, self.mixture_cov)
            return mixture_posterior(z, *(p.to(z.device) for p in params))
        return torch.softmax(self.cluster_scores(z) / temperature, dim=1)

    @torch.no_grad()
    def set_prototypes(self, centers: torch.Tensor) -> None:
        """Overwrite the prototypes in place (e.g. with cluster centres of the embedding)."""
        if centers.shape != self.prototypes.shape:
            msg = f"`centers` must have shape {tuple(self.prototypes.shape)}, got {tuple(centers.shape)}."
            raise ValueError(msg)
        self.prototypes.copy_(F.normalize(centers, dim=1))


@dataclass
class StepOutput:
    loss: torch.Tensor
    terms: dict[str, float]
    assignments: torch.Tensor | None


def draw_view(
    x: torch.Tensor, pairs: torch.Tensor, augment: AugmentConfig, generator: torch.Generator, *, graph: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One augmented view: masked/noised features and a perturbed symmetric ``edge_index``.

    With ``graph=False`` (graph branch switched off) no edges are drawn.
    """
    x_aug = mask_features(x, augment.mask_rate, augment.noise_std, generator=generator)
    if not graph:
        return x_aug, None
    edge_index = perturb_edges(
        pairs,
        x.shape[0],
        augment.edge_drop_rate,
        augment.edge_add_rate,
        x=x,
        add_mode=augment.edge_add_mode,
        generator=generator,
    )
    return x_aug, edge_index


def training_step(
    net: SiameseNetwork,
    x: torch.Tensor,
    pairs: torch.Tensor,
    augment: AugmentConfig,
    train: TrainConfig,
    generator: torch.Generator,
    *,
    cluster: bool,
    cluster_weights: torch.Tensor | None = None,
    edge_index: torch.Tensor | None = None,
    library: torch.Tensor | None = None,
    counts: torch.Tensor | None = None,
) -> StepOutput:
    """Losses for two fresh views of ``(x, pairs)``; the clustering term only when ``cluster``.

    The clustering targets are Sinkhorn plans of the clean view (``x`` on the symmetric
    ``edge_index``, built from ``pairs`` when not given); both views learn to predict them.
    ``library`` (integer code of each cell's slice or batch) adds the library term
    (:func:`~scsiameseclu.module.library_moment_loss`, weight ``train.w_library``); ``counts``
    (raw counts, cells × ``config.n_count_genes``) the count term
    (:func:`~scsiameseclu.module.count_loss`, weight ``train.w_counts``).
    """
    graph = net.fusion.graph_weight > 0
    (x1, e1), (x2, e2) = (draw_view(x, pairs, augment, generator, graph=graph) for _ in range(2))
    z1, _ = net.embed(x1, e1)
    z2, _ = net.embed(x2, e2)
    correct = library is not None and train.w_library > 0
    # With the library term, the decoder reconstructs the input without the libraries' mean
    # shifts, so that the embedding need not carry slice identity to reconstruct it.
    target = library_centred(x, library) if correct else x
    terms = {
        "correlation": cross_correlation_loss(z1, z2),
        "reconstruction": 0.5
        * (reconstruction_loss(net.decoder(z1), target) + reconstruction_loss(net.decoder(z2), target)),
        "contrastive": contrastive_loss(
            z1, z2, train.contrastive_temperature, train.contrastive_max_cells, generator=generator
        ),
    }
    weights = {
        "correlation": train.w_correlation,
        "reconstruction": train.w_reconstruction,
        "contrastive": train.w_contrastive,
    }
    if correct:
        terms["library"] = 0.5 * (library_moment_loss(z1, library) + library_moment_loss(z2, library))
        weights["library"] = train.w_library
    if counts is not None and train.w_counts > 0:
        dispersion = net.count_log_dispersion
        terms["counts"] = 0.5 * (
            count_loss(net.count_decoder(z1), dispersion, counts)
            + count_loss(net.count_decoder(z2), dispersion, counts)
        )
        weights["counts"] = train.w_counts
    assignments = None
    if cluster:
        s1, s2 = net.cluster_scores(z1), net.cluster_scores(z2)
        if edge_index is None:
            edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
        with torch.no_grad():
            z0, _ = net.embed(x, edge_index)
        q = sinkhorn(
            net.cluster_scores(z0), cluster_weights, epsilon=train.sinkhorn_epsilon, n_iters=train.sinkhorn_iters
        )
        terms["cluster"] = swapped_assignment_loss(s1, s2, q, q, train.cluster_temperature)
        weights["cluster"] = train.w_cluster
        assignments = q
    loss = sum(weights[k] * v for k, v in terms.items())
    return StepOutput(loss, {k: float(v.detach()) for k, v in terms.items()}, assignments)
