"""Headline experiment: compute-aware steering against network-only and compute-only choices.

The flagship "East Data, West Computing" network boots with a real service on
every compute node (capacity from the topology: eastern clusters 60-70 % busy
with background work, western ones 20-30 %, farther away). Clients in the five
eastern demand cities send the same seeded open-loop Poisson workload to the
service's anycast address under each steering policy in turn; mid-run, a load
surge hits one eastern cluster and then one WAN link starts losing packets.
Per policy: mean, p95 and p99 response time, SLO-violation rate (timeouts and
rejections count as violations), per-cluster share of requests, decision flips.

    sudo .venv/bin/python -m experiments.headline.run [--quick] [--policies joint nearest ...]
         [--rate-rps R] [--duration-s D] [--slo-ms S] [--seed S] [--no-plot]

Writes ``results/headline/<utc>_<git>/result.json`` and plots, prints a table.
Targets (issue 5): joint p95 <= 0.7 x nearest p95 and <= 0.8 x least-loaded p95;
joint mean within 10 % of the oracle.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from cpn_net import stats
from cpn_net.emulation import fidelity
from cpn_net.emulation.network import EmulatedNetwork
from cpn_net.model import load_topology
from cpn_net.northbound_client import NorthboundClient
from experiments.common import results
from experiments.common.progress import Progress

FLAGSHIP = os.path.join(results.ROOT, "topologies", "east-data-west-compute.yaml")
POLICIES = ("nearest", "least-loaded", "random", "round-robin", "joint", "oracle")


def run_policy(network, client, topology, policy: str, args, workdir: str, progress) -> dict:
    from cpn_net.compute.results import summarise

    service = topology.services[0]
    client.set_steering_policy(policy)
    for (instance, svc), _ in network.services.items():
        network.service_request(instance, {"op": "reset"}, svc)
    # A clean start: every instance back to its configured background load, links healthy.
    for host in topology.compute_nodes():
        network.service_request(host.name, {"op": "set", "background_load_pct": host.background_load_pct})
    surge_site = topology.site(args.surge_site)
    lossy = network.plan.wan_link(*args.lossy_link)
    _wait_for_fresh_metrics(client)
    procs, outputs = [], []
    for index, host in enumerate(topology.clients()):
        out = os.path.join(workdir, f"{policy}-{host.name}.json")
        outputs.append(out)
        argv = [sys.executable, "-m", "cpn_net.compute.loadgen", "--to", str(service.anycast),
                "--port", str(service.port), "--rate-rps", str(args.rate_rps), "--duration-s", str(args.duration_s),
                "--sessions", "256", "--seed", str(args.seed * 100 + index), "--timeout-ms", str(args.timeout_ms),
                "--out", out]
        procs.append(network.node(host.name).popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    started = time.monotonic()
    events = []

    def at(fraction: float) -> None:
        time.sleep(max(0.0, started + fraction * args.duration_s - time.monotonic()))

    at(0.4)
    for host in surge_site.compute:
        network.service_request(host.name, {"op": "set", "background_load_pct": args.surge_pct})
    events.append({"at_s": round(time.monotonic() - started, 2), "event": f"load surge at {surge_site.name} "
                   f"to {args.surge_pct} % background"})
    at(0.7)
    network.set_link(lossy.site_a, lossy.site_b, loss_pct=args.loss_pct)
    events.append({"at_s": round(time.monotonic() - started, 2),
                   "event": f"{args.loss_pct} % loss on {lossy.site_a}-{lossy.site_b}"})
    for proc in procs:
        _, err = proc.communicate(timeout=args.duration_s + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"loadgen failed: {err.decode()[-400:]}")
    network.set_link(lossy.site_a, lossy.site_b, loss_pct=0.0)
    steering = client.steering()
    requests = {"id": [], "send_ns": [], "status": [], "response_ms": [], "instance": []}
    for out in outputs:
        with open(out) as handle:
            record = json.load(handle)["requests"]
        for key in requests:
            requests[key].extend(record[key])
    summary = summarise(requests, args.slo_ms).to_dict()
    summary.pop("bins", None)
    # Percentiles over every request, a timeout or rejection counting as the timeout: a policy
    # must not look fast by dropping its slowest requests.
    every = sorted(r if status == "served" and r is not None else args.timeout_ms
                   for r, status in zip(requests["response_ms"], requests["status"]))
    for q in (50, 95, 99):
        summary[f"p{q}_all_ms"] = round(stats.percentile(every, q), 3) if every else None
    summary["mean_all_ms"] = round(sum(every) / len(every), 3) if every else None
    cluster_of = {h.name: h.site for h in topology.compute_nodes()}
    shares: dict[str, int] = {}
    for instance in requests["instance"]:
        if instance is not None:
            shares[cluster_of.get(instance, instance)] = shares.get(cluster_of.get(instance, instance), 0) + 1
    progress(f"{policy}: mean {summary['mean_all_ms']} ms, p95 {summary['p95_all_ms']} ms, "
             f"SLO violations {summary['slo_violation_rate']}, flips {steering['flips']}")
    return {"policy": policy, "summary": summary, "requests_by_cluster": shares, "flips": steering["flips"],
            "failovers": steering["failovers"], "events": events, "timeline": steering["timeline"],
            "samples": requests}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default=FLAGSHIP)
    parser.add_argument("--quick", action="store_true", help="shorter runs (smoke test / demo)")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--rate-rps", type=float, default=60.0, help="requests/s per client")
    parser.add_argument("--duration-s", type=float, default=None, help="per policy (default 60, quick 20)")
    parser.add_argument("--slo-ms", type=float, default=50.0)
    parser.add_argument("--timeout-ms", type=float, default=1000.0)
    parser.add_argument("--surge-site", default="zhangjiakou")
    parser.add_argument("--surge-pct", type=float, default=95.0)
    parser.add_argument("--lossy-link", nargs=2, default=["zhangjiakou", "beijing"])
    parser.add_argument("--loss-pct", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("experiments.headline: needs root (it boots a Mininet network); run it with sudo", file=sys.stderr)
        return 2
    args.duration_s = args.duration_s or (20.0 if args.quick else 60.0)
    topology = load_topology(args.topology)
    if not topology.services or not topology.clients():
        print(f"{args.topology}: the headline experiment needs a service and clients", file=sys.stderr)
        return 1
    progress = Progress()

    network = EmulatedNetwork(topology, seed=args.seed, progress=progress)
    runs = []
    try:
        network.start()
        client = NorthboundClient(network.controller_state()["rest"])
        with tempfile.TemporaryDirectory() as workdir, \
                progress.bar("policies", total=len(args.policies) * args.duration_s, unit="s of workload"):
            for number, policy in enumerate(args.policies, 1):
                progress(f"running {policy} for {args.duration_s:.0f} s")
                progress.describe(f"{policy} ({number}/{len(args.policies)})")
                before = network.link_counters()
                with progress.running_for(args.duration_s):
                    runs.append(run_policy(network, client, topology, policy, args, workdir, progress))
                runs[-1]["fidelity"] = fidelity.window(before, network.link_counters())
        mode = network.link_mode
        dataplane = network.dataplane
    except KeyboardInterrupt:
        progress("interrupted: tearing down, no result written")
        return 130
    finally:
        network.stop()
    by_policy = {r["policy"]: r["summary"] for r in runs}
    targets = {}
    if {"joint", "nearest"} <= set(by_policy):
        targets["joint_p95_over_nearest_p95"] = _ratio(by_policy["joint"]["p95_all_ms"],
                                                       by_policy["nearest"]["p95_all_ms"])
    if {"joint", "oracle"} <= set(by_policy):
        targets["joint_mean_over_oracle_mean"] = _ratio(by_policy["joint"]["mean_all_ms"],
                                                        by_policy["oracle"]["mean_all_ms"])
    if {"joint", "least-loaded"} <= set(by_policy):
        targets["joint_p95_over_least_loaded_p95"] = _ratio(by_policy["joint"]["p95_all_ms"],
                                                            by_policy["least-loaded"]["p95_all_ms"])
    config = {key: value for key, value in vars(args).items() if key != "topology"}
    config["topology"] = topology.to_dict()
    path = results.write_result("headline", {
        "metadata": results.metadata(seed=args.seed, link_mode=mode, config=config, dataplane=dataplane),
        "runs": runs, "summary": {"by_policy": by_policy, "targets": targets,
                                  "fidelity": results.fidelity_summary([r["fidelity"] for r in runs]),
                                  "target_limits": {"joint_p95_over_nearest_p95": 0.7,
                                                    "joint_p95_over_least_loaded_p95": 0.8,
                                                    "joint_mean_over_oracle_mean": 1.1}},
    })
    print(f"\n{'policy':14} {'mean ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'SLO viol.':>10} {'timeouts':>9} {'flips':>6}")
    for run in runs:
        s = run["summary"]
        print(f"{run['policy']:14} {_fmt(s['mean_all_ms']):>8} {_fmt(s['p95_all_ms']):>8} {_fmt(s['p99_all_ms']):>8} "
              f"{s['slo_violation_rate']:>10.3f} {s['timeouts']:>9} {run['flips']:>6}")
    for name, value in targets.items():
        print(f"{name}: {value}")
    print(f"\nresult: {path}")
    if not args.no_plot:
        from experiments.headline import plot
        for figure in plot.plot(path):
            print(f"plot:   {figure}")
    return 0


def _wait_for_fresh_metrics(client, timeout_s: float = 15.0) -> None:
    """Every instance healthy and reporting again (after a reset), so each policy starts alike."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        instances = client.steering()["instances"]
        if instances and all(i["healthy"] and i["metrics_age_s"] is not None and i["metrics_age_s"] < 1.0
                             for i in instances):
            return
        time.sleep(0.2)
    raise RuntimeError(f"instances did not all report fresh metrics within {timeout_s} s")


def _ratio(a, b):
    return None if a is None or not b else round(a / b, 3)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit(main())
