"""The fill-mask evaluation plot: top-k accuracy for k = 1..10, and top-5 accuracy per word kind."""

from __future__ import annotations

from pathlib import Path


def plot_accuracy(curve: dict, per_kind: dict | None, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if per_kind else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.8), squeeze=False)
    ax = axes[0][0]
    ax.plot(curve["k"], [100 * v for v in curve["accuracy_uncased"]], "o-",
            label="any letter case")
    ax.plot(curve["k"], [100 * v for v in curve["accuracy"]], "s--", label="exact case")
    ax.set_xlabel("k (tokens returned per mask)")
    ax.set_ylabel("true word in top k (%)")
    ax.set_xticks(curve["k"])
    ax.set_ylim(0, 100)
    ax.set_title("Top-k accuracy")
    ax.legend(loc="lower right", fontsize=8)
    if per_kind:
        ax = axes[0][1]
        names = list(per_kind)
        ax.bar(names, [100 * per_kind[n]["top5_accuracy_uncased"] for n in names])
        ax.set_ylim(0, 100)
        ax.set_ylabel("top-5 accuracy, any case (%)")
        ax.set_title("By masked word kind")
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
