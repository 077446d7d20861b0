"""Plots for the headline experiment, from its result.json (a separate step from the run).

    .venv/bin/python -m experiments.headline.plot results/headline/<run>/result.json
"""

from __future__ import annotations

import os
import sys

from experiments.common.results import read_result


def plot(result_path: str) -> list[str]:
    """Response-time CDF per policy and a timeline around the events; returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_result(result_path)
    directory = os.path.dirname(result_path)
    written = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in data["runs"]:
        served = sorted(r for r, status in zip(run["samples"]["response_ms"], run["samples"]["status"])
                        if status == "served" and r is not None)
        if served:
            total = len(run["samples"]["status"])  # timeouts and rejections never reach 1.0
            ax.step(served, [(i + 1) / total for i in range(len(served))], where="post", label=run["policy"])
    ax.axvline(data["metadata"]["config"]["slo_ms"], color="grey", linestyle=":", label="SLO")
    ax.set_xscale("log")
    ax.set_xlabel("response time (ms, log scale)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("Response time per steering policy (same seeded workload)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(directory, "response_time_cdf.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for run in data["runs"]:
        samples = run["samples"]
        t0 = min(samples["send_ns"])
        bins: dict[int, list] = {}
        for sent, status, response in zip(samples["send_ns"], samples["status"], samples["response_ms"]):
            value = response if status == "served" and response is not None else data["metadata"]["config"]["timeout_ms"]
            bins.setdefault(int((sent - t0) / 1e9), []).append(value)
        xs = sorted(bins)
        ys = [sorted(bins[x])[max(0, int(0.95 * len(bins[x])) - 1)] for x in xs]
        ax.plot(xs, ys, label=run["policy"])
    for event in data["runs"][0]["events"]:
        ax.axvline(event["at_s"], color="red", linestyle="--", linewidth=0.8)
        ax.text(event["at_s"], ax.get_ylim()[1] * 0.9, event["event"], fontsize=7, rotation=90, va="top")
    ax.set_yscale("log")
    ax.set_xlabel("time into the run (s)")
    ax.set_ylabel("p95 response time per second (ms)")
    ax.set_title("Timeline around the events")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(directory, "timeline_p95.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)
    return written


if __name__ == "__main__":
    for figure in plot(sys.argv[1]):
        print(figure)
