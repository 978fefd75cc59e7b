"""The F1-against-no-answer-threshold plot of a SQuAD v2 evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def curve_with_origin(thresholds: list[float], f1s: list[float], no_answer_share: float
                      ) -> tuple[list[float], list[float]]:
    """The curve from threshold 0: below the smallest probability every question is "" ."""
    if thresholds and thresholds[0] <= 0.0:
        return list(thresholds), list(f1s)
    return [0.0, *thresholds], [100.0 * no_answer_share, *f1s]


def plot_threshold_curve(thresholds: list[float], f1s: list[float], f1_as_predicted: float,
                         path: Path, title: str) -> None:
    """F1 against the no-answer probability threshold, with the as-predicted and best points."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = int(np.argmax(f1s)) if f1s else 0
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    xs, ys = list(thresholds), list(f1s)
    if xs and xs[-1] < 1.0:  # above the largest probability every question is answered
        xs, ys = xs + [1.0], ys + [ys[-1]]
    ax.step(xs, ys, where="post", label="F1, abstaining where P(no answer) > threshold")
    ax.axhline(f1_as_predicted, color="grey", linestyle=":",
               label=f"F1 as predicted ({f1_as_predicted:.1f})")
    if f1s:
        ax.plot([thresholds[best]], [f1s[best]], "o", color="tab:red",
                label=f"best F1 {f1s[best]:.1f} at threshold {thresholds[best]:.3f}")
    ax.set_xlabel("no-answer probability threshold")
    ax.set_ylabel("F1 (0-100)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0, 101)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
