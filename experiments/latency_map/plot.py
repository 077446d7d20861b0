"""Plots for the latency-map experiment, from its result.json (a separate step from the run).

    .venv/bin/python -m experiments.latency_map.plot results/latency_map/<run>/result.json
"""

from __future__ import annotations

import os
import sys

from experiments.common.results import read_result


def plot(result_path: str) -> list[str]:
    """Write the plots next to ``result_path``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_result(result_path)
    rows = [r for r in data["samples"] if r["median_rtt_ms"] is not None]
    directory = os.path.dirname(result_path)
    written = []

    fig, ax = plt.subplots(figsize=(6, 6))
    configured = [r["configured_rtt_ms"] for r in rows]
    measured = [r["median_rtt_ms"] for r in rows]
    ax.scatter(configured, measured, s=12, alpha=0.7, label="client -> compute paths")
    top = max(configured + measured) * 1.05
    ax.plot([0, top], [0, top], color="grey", linewidth=1, label="measured = configured")
    ax.set_xlabel("configured path RTT (ms)")
    ax.set_ylabel("measured median RTT (ms)")
    ax.set_title(f"{data['metadata']['config']['topology']['name']}: measured vs configured "
                 f"({data['metadata']['link_emulation_mode']} link emulation)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    path = os.path.join(directory, "rtt_measured_vs_configured.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(7, 4))
    for site in sorted({r["client_site"] for r in rows}):
        values = sorted(s for r in rows if r["client_site"] == site for s in r["samples"])
        ax.step(values, [(i + 1) / len(values) for i in range(len(values))], where="post", label=site)
    ax.set_xlabel("RTT to compute nodes (ms)")
    ax.set_ylabel("CDF")
    ax.set_title("RTT from each demand city to every compute node")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(directory, "rtt_cdf_by_city.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)
    return written


if __name__ == "__main__":
    for figure in plot(sys.argv[1]):
        print(figure)
