"""The Pareto front as a picture: what each extra millisecond of budget buys.

Written with matplotlib's Agg backend (no display needed) to a temporary file renamed
into place, so a reader never sees half a PNG.
"""

from __future__ import annotations

from pathlib import Path

from ofa_fleet.search.specializer import Specialization
from ofa_fleet.storage.durable import open_atomic


def plot_front(result: Specialization, budget_ms: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = result.front
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    axes.plot(
        [c.latency_ms for c in front],
        [c.top1 * 100 for c in front],
        marker="o",
        markersize=4,
        drawstyle="steps-post",
        label="Pareto front (predicted)",
    )
    axes.axvline(budget_ms, color="grey", linestyle="--", label=f"budget {budget_ms:g} ms")
    axes.scatter(
        [result.predicted.latency_ms],
        [result.predicted.top1 * 100],
        marker="*",
        s=220,
        color="crimson",
        zorder=5,
        label=f"chosen: {result.predicted.top1 * 100:.2f}% predicted",
    )
    # The same subnet at its measured top-1: where the two differ, both are on the chart,
    # so its legend never contradicts where the star stands.
    axes.scatter(
        [result.predicted.latency_ms],
        [result.measured_top1 * 100],
        marker="*",
        s=220,
        facecolors="none",
        edgecolors="crimson",
        zorder=6,
        label=f"chosen: {result.measured_top1 * 100:.2f}% measured",
    )
    axes.set_xlabel(f"predicted latency (ms, {result.latency_source})")
    axes.set_ylabel("top-1 (%)")
    axes.set_title(f"{result.profile_name}: supernet {result.supernet_version}")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open_atomic(path) as handle:
            figure.savefig(handle, format="png")
    finally:
        plt.close(figure)
