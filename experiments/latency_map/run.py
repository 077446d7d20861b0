"""Latency map: the flagship "East Data, West Computing" network, measured.

Boots the flagship topology with defaults, checks that every WAN link delivers
the delay it was configured with, then measures the round-trip time from every
client in the eastern demand cities to every compute node in the hub clusters
and compares it with the configured path delay (the routers' shortest path).
This is the latency map a compute-aware selector works from; the steering
comparison (issue 5) builds on it.

    sudo .venv/bin/python -m experiments.latency_map.run [--quick] [--pings N] [--seed S]
         [--topology FILE] [--no-plot]

Writes ``results/latency_map/<utc>_<git>/result.json`` (see
:mod:`experiments.common.results`) and plots next to it, and prints a table.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

from cpn_net import baseline, stats
from cpn_net.emulation import fidelity
from cpn_net.emulation.network import EmulatedNetwork
from cpn_net.model import TopologyError, load_topology
from cpn_net.model.addressing import router_lan_address
from experiments.common import results
from experiments.common.progress import Progress

ROOT = results.ROOT
FLAGSHIP = os.path.join(ROOT, "topologies", "east-data-west-compute.yaml")
RTT_TOLERANCE = (0.10, 0.5)  # max(10 %, 0.5 ms), as for the foundation's integration tests
PING_BATCH = 4  # concurrent pings: two cores also run every link element and the switches


def parse_rtts(ping_output: str) -> list[float]:
    """RTT samples (ms) from ``ping -n`` output.

    >>> parse_rtts("64 bytes from x: icmp_seq=1 ttl=62 time=11.2 ms\\n... time=9.87 ms")
    [11.2, 9.87]
    """
    return [float(v) for v in re.findall(r"time=([\d.]+) ms", ping_output)]


def ping_many(network, jobs: list[tuple[str, str]], count: int, interval_s: float, progress) -> dict:
    """Run ``ping`` for every (node, address) job, a few at a time; {(node, address): [rtt_ms]}."""
    out = {}
    with progress.bar("paths", total=len(jobs)):
        for start in range(0, len(jobs), PING_BATCH):
            procs = {job: network.node(job[0]).popen(
                ["ping", "-n", "-c", str(count + 1), "-i", str(interval_s), "-W", "2", job[1]],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for job in jobs[start:start + PING_BATCH]}
            for job, proc in procs.items():
                stdout, _ = proc.communicate(timeout=count * interval_s + 30)
                # The first echo of a path pays for neighbour discovery and the switches'
                # flow-cache set-up: a warm-up, not the path's delay.
                out[job] = parse_rtts(stdout)[1:]
            progress.advance(len(procs))
            if (start // PING_BATCH) % 10 == 9 or start + PING_BATCH >= len(jobs):
                progress(f"measured {min(start + PING_BATCH, len(jobs))}/{len(jobs)} paths")
    return out


def check_links(network, count: int, progress) -> list[dict]:
    """Router-to-router RTT over each WAN link against 2 x its configured delay."""
    jobs = [(link.router_a, link.address_b) for link in network.plan.wan_links]
    rtts = ping_many(network, jobs, count, 0.02, progress)
    checks = []
    for link in network.plan.wan_links:
        samples = rtts[(link.router_a, link.address_b)]
        median = stats.percentile(samples, 50) if samples else None
        expected = 2 * link.delay_ms
        checks.append({"link": f"{link.site_a}-{link.site_b}", "configured_rtt_ms": round(expected, 3),
                       "median_rtt_ms": median, "samples": samples,
                       "ok": median is not None and stats.within(median, expected, *RTT_TOLERANCE)})
    return checks


def measure_paths(network, topology, count: int, progress) -> list[dict]:
    clients = [c for c in topology.clients()]
    computes = [k for k in topology.compute_nodes()]
    jobs = [(c.name, str(k.address)) for c in clients for k in computes]
    # Each host to its own router: the site LAN's share (two passes through the site's
    # Open vSwitch) of every path's RTT, measured rather than assumed.
    lan_jobs = [(h.name, str(router_lan_address(h.site_id))) for h in clients + computes]
    rtts = ping_many(network, jobs + lan_jobs, count, 0.02, progress)
    lan = {job[0]: (stats.percentile(rtts[job], 50) if rtts[job] else None) for job in lan_jobs}
    rows = []
    for client in clients:
        paths = baseline.igp_paths(network.plan, client.site)
        for compute in computes:
            path = paths[compute.site]
            configured = 2 * sum(network.plan.wan_link(a, b).delay_ms for a, b in zip(path, path[1:]))
            samples = rtts[(client.name, str(compute.address))]
            median = stats.percentile(samples, 50) if samples else None
            lan_ms = None if None in (lan[client.name], lan[compute.name]) else \
                round(lan[client.name] + lan[compute.name], 3)
            rows.append({"client": client.name, "client_site": client.site, "compute": compute.name,
                         "compute_site": compute.site, "path": list(path),
                         "configured_rtt_ms": round(configured, 3), "median_rtt_ms": median,
                         "lan_rtt_ms": lan_ms,
                         "wan_within_tolerance": None if median is None or lan_ms is None
                         else stats.within(median - lan_ms, configured, *RTT_TOLERANCE),
                         "p95_rtt_ms": stats.percentile(samples, 95) if samples else None,
                         "samples": samples, "sent": count, "received": len(samples),
                         "within_tolerance": median is not None
                         and stats.within(median, configured, *RTT_TOLERANCE)})
    return rows


def summarise(link_checks: list[dict], rows: list[dict]) -> dict:
    errors = [r["median_rtt_ms"] - r["configured_rtt_ms"] for r in rows if r["median_rtt_ms"] is not None]
    by_site = {}
    for row in rows:
        best = by_site.get(row["client_site"])
        if row["median_rtt_ms"] is not None and (best is None or row["median_rtt_ms"] < best["median_rtt_ms"]):
            by_site[row["client_site"]] = {"compute": row["compute"], "compute_site": row["compute_site"],
                                           "median_rtt_ms": row["median_rtt_ms"]}
    return {
        "links_checked": len(link_checks), "links_ok": sum(c["ok"] for c in link_checks),
        "paths": len(rows), "paths_within_tolerance": sum(r["within_tolerance"] for r in rows),
        "paths_within_tolerance_lan_removed": sum(bool(r["wan_within_tolerance"]) for r in rows),
        "lan_rtt_ms_median": stats.percentile([r["lan_rtt_ms"] for r in rows if r["lan_rtt_ms"] is not None], 50)
        if any(r["lan_rtt_ms"] is not None for r in rows) else None,
        "rtt_error_ms": {"median": stats.percentile(errors, 50) if errors else None,
                         "p95": stats.percentile(errors, 95) if errors else None,
                         "max": max(errors) if errors else None},
        "nearest_compute_by_client_site": by_site,
    }


def print_table(rows: list[dict], summary: dict) -> None:
    sites = sorted({r["client_site"] for r in rows})
    clusters = sorted({r["compute_site"] for r in rows})
    cell = {}
    for r in rows:
        if r["client"].endswith("-1") and r["compute"].endswith("-1"):
            cell[(r["client_site"], r["compute_site"])] = r
    width = max(len(c) for c in clusters) + 2
    print("\nmedian RTT ms (configured) from the first client of each demand city to each cluster's first node")
    print("cluster".ljust(width) + "".join(s[:14].rjust(16) for s in sites))
    for cluster in clusters:
        line = cluster.ljust(width)
        for site in sites:
            r = cell.get((site, cluster))
            text = "-" if r is None or r["median_rtt_ms"] is None else \
                f"{r['median_rtt_ms']:.1f} ({r['configured_rtt_ms']:.1f})"
            line += text.rjust(16)
        print(line)
    print(f"\nlinks delivering their configured delay: {summary['links_ok']}/{summary['links_checked']}; "
          f"paths within max(10 %, 0.5 ms): {summary['paths_within_tolerance']}/{summary['paths']}; "
          f"RTT error median {summary['rtt_error_ms']['median']:.2f} ms, p95 {summary['rtt_error_ms']['p95']:.2f} ms")
    print(f"the two site LANs (userspace Open vSwitch) add a median {summary['lan_rtt_ms_median']} ms per path; "
          f"with that measured share removed, {summary['paths_within_tolerance_lan_removed']}/{summary['paths']} "
          "paths match their configured WAN delay")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default=FLAGSHIP, help="topology file (default: the flagship)")
    parser.add_argument("--quick", action="store_true", help="fewer pings per path (smoke test / demo)")
    parser.add_argument("--pings", type=int, default=None, help="pings per path (default 10, quick 5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("experiments.latency_map: needs root (it boots a Mininet network); run it with sudo", file=sys.stderr)
        return 2
    count = args.pings or (5 if args.quick else 10)
    if count < 2:
        print(f"--pings={count} must be >= 2", file=sys.stderr)
        return 2
    try:
        topology = load_topology(args.topology)
    except TopologyError as err:
        print(err, file=sys.stderr)
        return 1
    progress = Progress()

    network = EmulatedNetwork(topology, seed=args.seed, progress=progress)
    try:
        network.start()
        counters = network.link_counters()
        progress("checking that every WAN link delivers its configured delay")
        link_checks = check_links(network, count, progress)
        progress("measuring client -> compute round-trip times")
        rows = measure_paths(network, topology, count, progress)
        window = fidelity.window(counters, network.link_counters())
        mode = network.link_mode
        dataplane = network.dataplane
        boot = dict(network.timings)
    except KeyboardInterrupt:
        progress("interrupted: tearing down, no result written")
        return 130
    finally:
        network.stop()
    summary = summarise(link_checks, rows)
    summary["fidelity"] = window
    config = {"topology": topology.to_dict(), "pings_per_path": count, "quick": args.quick,
              "rtt_tolerance": {"relative": RTT_TOLERANCE[0], "absolute_ms": RTT_TOLERANCE[1]}}
    directory = results.run_directory("latency_map")
    path = results.write_result("latency_map", {
        "metadata": results.metadata(seed=args.seed, link_mode=mode, config=config, dataplane=dataplane),
        "boot_timings_s": boot, "link_checks": link_checks, "samples": rows, "summary": summary,
    }, directory)
    print_table(rows, summary)
    print(f"\nresult: {path}")
    if not args.no_plot:
        from experiments.latency_map import plot
        for figure in plot.plot(path):
            print(f"plot:   {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
