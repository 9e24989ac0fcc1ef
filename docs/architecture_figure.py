"""Draw the architecture figure of the docs (run by ``conf.py``; ``python architecture_figure.py OUT`` by hand)."""

from __future__ import annotations

import sys
from pathlib import Path

STAGE_COLORS = ("#e8f1fb", "#eef7ea", "#fdf1e4")
EDGE = "#3b3b3b"
LOSS = "#b03a2e"


def _box(ax, x, y, w, h, text, *, color="white", size=9.5, weight="normal", style="round,pad=0.02,rounding_size=0.08"):
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=style, fc=color, ec=EDGE, lw=1.0, zorder=2))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight, zorder=3, wrap=True)


def _arrow(ax, start, end, *, color=EDGE, style="-|>", ls="-", rad=0.0):
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=11,
            color=color,
            lw=1.1,
            ls=ls,
            connectionstyle=f"arc3,rad={rad}",
            zorder=1,
            shrinkA=0,
            shrinkB=0,
        )
    )


def _loss(ax, x, y, text):
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5, color=LOSS, style="italic", zorder=3)


def draw(out: Path) -> Path:
    """Write the figure to ``out`` (format from the suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from scsiameseclu.module import AugmentConfig

    aug = AugmentConfig()
    plt.rcParams["svg.hashsalt"] = "scsiameseclu"  # stable ids: the same figure gives the same file
    fig, ax = plt.subplots(figsize=(13.5, 5.6))
    ax.set(xlim=(0, 27), ylim=(0, 11.2))
    ax.axis("off")

    stages = [
        (0.2, 6.0, "1  Dual augmentation"),
        (6.4, 11.0, "2  Siamese fusion (shared weights)"),
        (17.6, 9.2, "3  Optimal-transport clustering"),
    ]
    for (x, w, title), color in zip(stages, STAGE_COLORS, strict=True):
        ax.add_patch(Rectangle((x, 0.2), w, 10.6, fc=color, ec="none", zorder=0))
        ax.text(x + 0.25, 10.35, title, fontsize=11.5, weight="bold", va="center")

    # Stage 1: the input and two stochastic views.
    _box(ax, 0.6, 4.6, 5.2, 2.0, "expression $X$ (PCA)\n+ cell graph $A$ (obsp)", color="#ffffff", weight="bold")
    _box(
        ax,
        0.6,
        7.3,
        5.2,
        2.2,
        "view 1: $\\tilde X_1$, $\\tilde A_1$\n"
        f"mask {aug.mask_rate:.0%} of entries,\ndrop {aug.edge_drop_rate:.0%} / add {aug.edge_add_rate:.0%} edges",
        size=9,
    )
    _box(ax, 0.6, 1.7, 5.2, 2.2, "view 2: $\\tilde X_2$, $\\tilde A_2$\n(fresh draw every step)", size=9)
    _arrow(ax, (3.2, 6.6), (3.2, 7.3))
    _arrow(ax, (3.2, 4.6), (3.2, 3.9))

    # Stage 2: the same encoder on both views.
    for y_mid, k in ((8.4, 1), (2.8, 2)):
        _box(ax, 7.0, y_mid + 0.15, 3.1, 1.15, "MLP\n(expression)", size=9)
        _box(ax, 7.0, y_mid - 1.3, 3.1, 1.15, "GAT\n(graph)", size=9)
        _box(ax, 11.0, y_mid - 0.55, 2.5, 1.1, "gate $g$\n$\\approx$ graph_weight", size=8.5)
        _box(ax, 14.2, y_mid - 0.55, 1.6, 1.1, f"$z_{k}$", size=12, weight="bold")
        _arrow(ax, (5.8, y_mid), (7.0, y_mid + 0.7))
        _arrow(ax, (5.8, y_mid), (7.0, y_mid - 0.7))
        _arrow(ax, (10.1, y_mid + 0.7), (11.0, y_mid + 0.2))
        _arrow(ax, (10.1, y_mid - 0.7), (11.0, y_mid - 0.2))
        _arrow(ax, (13.5, y_mid), (14.2, y_mid))
    ax.text(8.55, 5.6, "weights\nshared", ha="center", va="center", fontsize=8.5, color="#555555")
    _arrow(ax, (8.55, 6.1), (8.55, 7.1), style="<|-|>", ls=":", color="#777777")
    _arrow(ax, (8.55, 5.1), (8.55, 4.05), style="<|-|>", ls=":", color="#777777")
    _box(ax, 14.0, 4.75, 3.3, 1.7, "", color="#fff6f5")
    _loss(ax, 15.65, 6.05, "cross-correlation → I")
    _loss(ax, 15.65, 5.6, "InfoNCE")
    _loss(ax, 15.65, 5.15, "reconstruct $X$ (MSE)")
    _arrow(ax, (15.0, 7.85), (15.0, 6.45), color=LOSS)
    _arrow(ax, (15.0, 3.35), (15.0, 4.75), color=LOSS)

    # Stage 3: prototypes, Sinkhorn self-labels, refinement over the graph.
    _box(
        ax,
        18.1,
        7.6,
        3.8,
        1.6,
        "encoder on clean $X$, $A$\n$\\to z_0$; cosine scores\nto prototypes $c_1..c_k$",
        size=9,
    )
    _box(ax, 22.6, 7.6, 3.9, 1.6, "Sinkhorn OT $\\to Q$\nmarginals: running\ncluster sizes", size=9)
    _arrow(ax, (21.9, 8.4), (22.6, 8.4))
    _box(ax, 18.1, 4.6, 8.4, 1.9, "", color="#fff6f5")
    _loss(ax, 22.3, 5.85, "swapped prediction: each view predicts $Q$")
    _loss(ax, 22.3, 5.2, "$-\\sum_j Q_{ij}\\,\\log\\,\\mathrm{softmax}_j(z_v\\cdot c_j/\\tau)$")
    _arrow(ax, (24.5, 7.6), (24.5, 6.5), color=LOSS)
    _arrow(ax, (15.8, 8.4), (18.1, 6.1), ls="--", rad=-0.15)
    _arrow(ax, (15.8, 2.8), (18.1, 5.0), ls="--", rad=0.15)
    _box(
        ax,
        18.1,
        1.0,
        8.4,
        2.3,
        "after training: softmax of the clean view's scores,\nsmoothed over the graph (propagation with restart)\n→ obs['ssc'], obsm['X_ssc'], obsm['ssc_proba']",
        size=9,
    )
    ax.text(
        13.0,
        0.55,
        "pre-training: stage-2 losses only; prototypes then seeded from the embedding (k-means or Leiden)",
        fontsize=8.5,
        ha="center",
        color="#555555",
    )

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight", metadata={"Date": None} if out.suffix == ".svg" else None)
    plt.close(fig)
    return out


if __name__ == "__main__":
    draw(Path(sys.argv[1] if len(sys.argv) > 1 else "architecture.svg"))
