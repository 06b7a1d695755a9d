"""The PNG plots of a run: the cost-quality curve and the confidence's reliability diagram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval.results import BASELINE, SYSTEM_ORDER


def render_plots(results: dict[str, Any], directory: Path) -> list[Path]:
    """The cost-quality curve: accuracy against large-model share and against FLOPs, with the random router."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = results["summaries"]
    the_sweep = results.get("sweep")
    figure, (share_axis, flops_axis) = plt.subplots(1, 2, figsize=(12, 5))
    base_flops = (summaries.get(BASELINE) or {}).get("flops") or None
    for name in SYSTEM_ORDER:
        summary = summaries.get(name)
        if summary is None or summary["accuracy"] is None:
            continue
        share = summary["large_calls"] / max(1, summary["items"])
        flops = summary["flops"] / base_flops if base_flops else summary["flops"]
        for axis, x in ((share_axis, share), (flops_axis, flops)):
            axis.scatter([x], [summary["accuracy"] * 100], s=50, zorder=3)
            axis.annotate(name, (x, summary["accuracy"] * 100), textcoords="offset points", xytext=(5, 5),
                          fontsize=8)
    if the_sweep:
        points = the_sweep["points"]
        shares = [point["large_share"] for point in points]
        flops = [point["flops"] / base_flops if base_flops else point["flops"] for point in points]
        accuracies = [point["accuracy"] * 100 for point in points]
        share_axis.plot(shares, accuracies, "-", color="tab:blue", label="routed, threshold sweep")
        flops_axis.plot(flops, accuracies, "-", color="tab:blue", label="routed, threshold sweep")
        for axis, xs in ((share_axis, shares), (flops_axis, flops)):
            axis.plot([xs[0], xs[-1]], [accuracies[0], accuracies[-1]], "--", color="gray", label="random router")
    share_axis.set_xlabel("share of turns using the large model")
    flops_axis.set_xlabel("FLOPs (x large-only)" if base_flops else "FLOPs")
    for axis in (share_axis, flops_axis):
        axis.set_ylabel("accuracy (%)")
        axis.grid(True, alpha=0.3)
        axis.legend(loc="lower right", fontsize=8)
    figure.suptitle(f"Cost-quality: suite {results['meta'].get('suite')}, {len(results['items'])} items")
    figure.tight_layout()
    path = directory / "cost_quality.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    paths = [path]
    quality = results.get("confidence")
    if quality and quality["bins"]:
        figure, axis = plt.subplots(figsize=(5, 5))
        axis.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
        bins = quality["bins"]
        axis.plot([row["mean_probability"] for row in bins], [row["observed"] for row in bins], "o-",
                  label=f"FACT confidence (ECE {quality['ece']:.3f}, n = {quality['n']})")
        for row in bins:
            axis.annotate(str(row["n"]), (row["mean_probability"], row["observed"]), textcoords="offset points",
                          xytext=(4, -10), fontsize=7)
        axis.set_xlabel("confidence (mean of the bin)")
        axis.set_ylabel("share of answers right")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.grid(True, alpha=0.3)
        axis.legend(loc="upper left", fontsize=8)
        axis.set_title(f"Reliability: suite {results['meta'].get('suite')}")
        figure.tight_layout()
        paths.append(directory / "reliability.png")
        figure.savefig(paths[-1], dpi=110)
        plt.close(figure)
    return paths
