"""Speed of the compute-aware selector's pure core under live metric updates.

Builds a seeded synthetic network (default 200 sites × 10 compute nodes, one
service on all, paths between every pair of sites from a random geometric
WAN), then runs a stream of new flows through ``Selector.decide`` while
metric reports (default 1 per 10 decisions) and path updates (1 per 100)
arrive in between. The simulated clock advances so that every node reports
once per metrics period; 1 % of the agents go silent half a period in, so
staleness expiry is exercised too. A sample of the selector's fresh choices
is checked against the exhaustive oracle after each measured decision (off
the clock).

Prints one JSON object: throughput (decisions per second of wall time,
updates included), decision latency percentiles (µs, each ``decide`` call
timed alone) and the run's parameters.

Usage::

    .venv/bin/python benchmarks/steering_speed.py [--sites 200] [--nodes-per-site 10]
        [--decisions 50000] [--policy joint] [--seed 1]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time

from cpn_net.steering import (ComputeMetrics, Flow, FlowKey, Joint, LeastLoaded, Nearest,
                              Oracle, PathMetrics, RandomChoice, RoundRobin, Selector)
from cpn_net.steering.synthetic import SERVICE, site_name, synthetic_state

SCHEMA_VERSION = 1
TARGET_DECISIONS_PER_S = 10_000
TARGET_P99_US = 1_000.0
POLICIES = {"joint": Joint, "nearest": Nearest, "least-loaded": LeastLoaded,
            "random": lambda: RandomChoice(seed=0), "round-robin": RoundRobin}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--nodes-per-site", type=int, default=10)
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--metric-updates-per-decision", type=float, default=0.1)
    parser.add_argument("--path-updates-per-decision", type=float, default=0.01)
    parser.add_argument("--silent-share", type=float, default=0.01,
                        help="share of agents that stop reporting half a period in")
    parser.add_argument("--active-flows", type=int, default=10_000,
                        help="flows kept pinned; older ones are released")
    parser.add_argument("--verify-every", type=int, default=250,
                        help="check every n-th fresh choice against the oracle (0: never)")
    parser.add_argument("--period-s", type=float, default=1.0)
    parser.add_argument("--policy", choices=sorted(POLICIES), default="joint")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def drifted(rng: random.Random, report: ComputeMetrics, now: float) -> ComputeMetrics:
    """The node's next report: utilisation and queue drift a little."""
    utilisation = min(1.0, max(0.0, report.utilisation + rng.gauss(0.0, 0.05)))
    queue_len = max(0, report.queue_len + rng.choice((-1, 0, 0, 1)))
    return ComputeMetrics(report.instance, now, utilisation, queue_len, report.capacity_rps,
                          report.workers, report.service_time_ms, report.price_cny_per_hour,
                          report.carbon_g_per_kwh)


def flow_key(n: int) -> FlowKey:
    return FlowKey("2001:db8:1::1:1", "2001:db8:ff::1", 6, n % 65536, 1 + n // 65536 % 65535)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


def run(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    state = synthetic_state(seed=args.seed, sites=args.sites,
                            nodes_per_site=args.nodes_per_site, period_s=args.period_s)
    nodes = [instance.name for instance in state.instances_of(SERVICE)]
    # Every node reports once per period, so the clock runs at this pace.
    decisions_per_period = len(nodes) / args.metric_updates_per_decision
    step_s = args.period_s / decisions_per_period
    silent = set(rng.sample(nodes, round(args.silent_share * len(nodes))))
    flows = [Flow(flow_key(n), site_name(rng.randint(1, args.sites)), SERVICE,
                  demand_mbps=rng.choice((0.0, 0.0, 0.0, 100.0)),
                  latency_budget_ms=rng.choice((None, 30.0, 60.0)))
             for n in range(args.decisions)]
    sites = state.sites_of(SERVICE)

    policy = POLICIES[args.policy]()
    selector = Selector(policy)
    oracle = Oracle()
    latencies_ns: list[int] = []
    verified = mismatches = metric_updates = path_updates = 0
    next_node = 0
    update_credit = path_credit = 0.0
    gc.collect()
    gc.freeze()  # the state built above is long-lived: keep it out of GC scans
    wall_start = time.perf_counter()
    for n, flow in enumerate(flows):
        now = n * step_s
        update_credit += args.metric_updates_per_decision
        while update_credit >= 1.0:
            update_credit -= 1.0
            node = nodes[next_node]
            next_node = (next_node + 1) % len(nodes)
            if not (node in silent and now > args.period_s / 2):
                state.report(drifted(rng, state.metrics_of(node), now))
                metric_updates += 1
        path_credit += args.path_updates_per_decision
        while path_credit >= 1.0:
            path_credit -= 1.0
            ingress, site = rng.choice(sites), rng.choice(sites)
            old = state.network.path(ingress, site)
            state.network.set_path(ingress, site, PathMetrics(
                max(0.0, old.delay_ms + rng.gauss(0.0, 0.1)), old.loss_pct, old.available_mbps))
            path_updates += 1
        started = time.perf_counter_ns()
        decision = selector.decide(now, state, [flow])[0]
        latencies_ns.append(time.perf_counter_ns() - started)
        if n >= args.active_flows:
            selector.release(flows[n - args.active_flows].key)
        if (args.verify_every and n % args.verify_every == 0 and args.policy == "joint"
                and decision.instance is not None):
            verify_start = time.perf_counter()
            fresh = policy.choose(now, flow, state)
            verified += 1
            mismatches += fresh.cost != oracle.choose(now, flow, state).cost
            wall_start += time.perf_counter() - verify_start  # off the clock
    wall_s = time.perf_counter() - wall_start
    gc.unfreeze()

    latencies_us = sorted(value / 1000.0 for value in latencies_ns)
    decisions_per_s = len(flows) / wall_s
    p99_us = percentile(latencies_us, 0.99)
    stats = selector.stats()
    return {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "steering_speed",
        "policy": args.policy,
        "sites": args.sites,
        "instances": len(nodes),
        "decisions": len(flows),
        "metric_updates": metric_updates,
        "path_updates": path_updates,
        "silent_instances": len(silent),
        "simulated_s": len(flows) * step_s,
        "wall_s": wall_s,
        "decisions_per_s": decisions_per_s,
        "decision_latency_us": {
            "mean": statistics.fmean(latencies_us),
            "p50": percentile(latencies_us, 0.50),
            "p90": percentile(latencies_us, 0.90),
            "p99": p99_us,
            "p999": percentile(latencies_us, 0.999),
            "max": latencies_us[-1],
        },
        "selector": {"new_flows": stats.new_flows, "flips": stats.flips,
                     "failovers": stats.failovers, "unserved": stats.unserved},
        "oracle_checks": {"checked": verified, "mismatches": mismatches},
        "target": {"decisions_per_s": TARGET_DECISIONS_PER_S, "p99_us": TARGET_P99_US},
        "meets_target": decisions_per_s >= TARGET_DECISIONS_PER_S and p99_us <= TARGET_P99_US,
        "seed": args.seed,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    result = run(parse_args(argv))
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
