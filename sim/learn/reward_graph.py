"""The reward graph of a training run, drawn like the DeepRacer console's.

Average reward and average progress (training and evaluation) per iteration as lines with a dot per
iteration (so the first iteration is already a visible point), every training episode as a faint dot, and the
best checkpoint marked. The trainer redraws it after every iteration; the file is replaced atomically so a
viewer never reads half a PNG.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

REWARD_COLOUR = "#2563eb"
PROGRESS_COLOUR = "#16a34a"
EVALUATION_COLOUR = "#dc2626"


def draw_reward_graph(
    path: Path,
    iterations: Sequence[dict[str, Any]],
    episodes: Sequence[dict[str, Any]] = (),
    best_iteration: int | None = None,
    title: str = "Reward graph",
) -> Path:
    """Write the PNG of ``reward_graph_figure`` (atomically)."""
    figure = reward_graph_figure(iterations, episodes, best_iteration, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    figure.savefig(temporary, format="png")
    plt.close(figure)
    os.replace(temporary, path)
    return path


def reward_graph_figure(
    iterations: Sequence[dict[str, Any]],
    episodes: Sequence[dict[str, Any]] = (),
    best_iteration: int | None = None,
    title: str = "Reward graph",
) -> Figure:
    """The graph. ``iterations`` rows need ``iteration``, ``mean_reward``, ``mean_progress`` and optionally
    ``evaluation_mean_progress``; ``episodes`` rows need ``iteration``, ``reward`` and ``progress``."""
    figure, reward_axis = plt.subplots(figsize=(9, 4.8), dpi=100)
    progress_axis = reward_axis.twinx()

    if episodes:
        reward_axis.scatter(
            [e["iteration"] for e in episodes], [e["reward"] for e in episodes],
            s=6, color=REWARD_COLOUR, alpha=0.18, linewidths=0, label="Reward per episode",
        )
    xs = [row["iteration"] for row in iterations]
    dots = {"marker": "o", "markersize": 4 if len(xs) > 1 else 7}
    reward_axis.plot(xs, [row["mean_reward"] for row in iterations], color=REWARD_COLOUR, lw=2,
                     label="Average reward (training)", **dots)
    progress_axis.plot(xs, [row["mean_progress"] for row in iterations], color=PROGRESS_COLOUR, lw=2,
                       label="Average progress (training)", **dots)
    evaluated = [row for row in iterations if row.get("evaluation_mean_progress") is not None]
    if evaluated:
        progress_axis.plot([row["iteration"] for row in evaluated],
                           [row["evaluation_mean_progress"] for row in evaluated],
                           color=EVALUATION_COLOUR, lw=2, ls="--", label="Average progress (evaluation)", **dots)
    if best_iteration is not None:
        reward_axis.axvline(best_iteration, color="#6b7280", lw=1, ls=":")
        # Iteration 0 is the starting weights (a warm start or a clone) that no iteration has beaten yet.
        reward_axis.annotate("best" if best_iteration else "best: the start", (best_iteration, 1.0),
                             xycoords=("data", "axes fraction"), ha="left" if best_iteration == 0 else "center",
                             va="bottom", fontsize=8, color="#374151")

    reward_axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # whole iterations
    if xs:
        shown = xs + ([best_iteration] if best_iteration is not None else [])
        reward_axis.set_xlim(min(shown) - 0.5, max(shown) + 0.5)  # one iteration: a dot in the middle, not an edge
    reward_axis.set_xlabel("Iteration")
    reward_axis.set_ylabel("Reward", color=REWARD_COLOUR)
    progress_axis.set_ylabel("Progress (%)", color=PROGRESS_COLOUR)
    progress_axis.set_ylim(0, 105)
    reward_axis.grid(alpha=0.25)
    reward_axis.set_title(title, pad=14)  # room for the "best" mark above the plot
    handles = reward_axis.get_legend_handles_labels()[0] + progress_axis.get_legend_handles_labels()[0]
    labels = reward_axis.get_legend_handles_labels()[1] + progress_axis.get_legend_handles_labels()[1]
    # Below the plot, not on it: at the top left it hid the first iterations' curves.
    figure.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    return figure
