"""Figure of the similarity-measure benchmark (matplotlib): one matrix per measure over the
synthetic spaces and the Spearman rank correlations between measures."""
from __future__ import annotations

import numpy as np


def benchmark_figure(bench):
    """Matrices of every measure (`vaefrag.synthetic.MeasureBenchmark`) and their rank correlations."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from vaefrag.synthetic import MEASURES

    names = bench.measures
    cols = 4
    rows = int(np.ceil((len(names) + 1) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), squeeze=False)
    ticks = np.arange(len(bench.names))
    for ax, m in zip(axes.ravel(), names):
        label, kind = MEASURES.get(m, (m, "similarity"))
        mat = bench.matrices[m]
        im = ax.imshow(mat, cmap="magma" if kind == "similarity" else "magma_r",
                       vmin=0, vmax=1 if kind == "similarity" else None)
        fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_title(label)
        ax.set_xticks(ticks, bench.names, rotation=90, fontsize=7)
        ax.set_yticks(ticks, bench.names, fontsize=7)
    ax = axes.ravel()[len(names)]
    im = ax.imshow(bench.spearman, cmap="RdBu_r", vmin=-1, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{bench.spearman[i, j]:.2f}", ha="center", va="center", fontsize=6)
    short = [MEASURES.get(m, (m,))[0] for m in names]
    ax.set_xticks(range(len(names)), short, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), short, fontsize=7)
    ax.set_title("Spearman rank correlation")
    fig.colorbar(im, ax=ax, fraction=0.046)
    for ax in axes.ravel()[len(names) + 1:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


__all__ = ["benchmark_figure"]
