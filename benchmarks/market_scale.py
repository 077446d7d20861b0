"""Speed of the compute market's pure core at national scale, and how its policies compare.

Builds the seeded synthetic national market (:mod:`cpn_net.market.synthetic`:
default 7,000 sites, East Data / West Computing supply) and submits a day of
orders (default 100,000) to one market, timing every ``submit`` (validation,
placement, booking, the ledger's SHA-256 chain written to a file). Every
simulated hour the market re-posts its offers and forgets the past, on the
clock too, and the objects alive then are frozen out of the garbage
collector's full passes (``gc.freeze``: the market's state is long-lived, as
in a service). Afterwards (off the clock) the ledger is verified. The wall
clock is the target's measure; CPU time is reported beside it, since a shared
machine's load shows in the first and not the second.

``--compare`` also runs a small instance (``--compare-sites``,
``--compare-orders`` within ``--compare-day-s``, link rates scaled by
``--compare-rate-scale`` so the network binds) under every policy and the
offline MILP optimum, and reports orders placed, refusals by binding
constraint and revenue for each.

Prints one JSON object: orders per second (every order decided, placed or
refused), placement time percentiles (ms), outcomes by binding constraint,
targets and whether they were met, and the run's parameters.

Usage::

    .venv/bin/python benchmarks/market_scale.py [--sites 7000] [--orders 100000] [--policy joint]
        [--seed 1] [--ledger PATH] [--compare]

No root, no network: everything runs on the pure core.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time

import networkx as nx
import numpy as np
import scipy

from cpn_net.market import Ledger, Market, Placement, verify_file
from cpn_net.market.optimum import solve
from cpn_net.market.synthetic import national_graph, national_orders, national_supply

SCHEMA_VERSION = 1
TARGET_ORDERS_PER_S = 2_000
TARGET_P99_MS = 5.0
REFRESH_EVERY_S = 3_600.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=7_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--policy", choices=("joint", "nearest", "cheapest"), default="joint")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ledger", help="ledger file to write (default: a temporary file, removed after)")
    parser.add_argument("--compare", action="store_true", help="also compare all policies and the MILP optimum")
    parser.add_argument("--compare-sites", type=int, default=30)
    parser.add_argument("--compare-orders", type=int, default=150)
    parser.add_argument("--compare-day-s", type=float, default=1800.0)
    parser.add_argument("--compare-rate-scale", type=float, default=0.05,
                        help="link rates of the comparison's graph, as a share of the national graph's")
    parser.add_argument("--milp-time-limit-s", type=float, default=60.0)
    return parser.parse_args(argv)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


def outcomes(results) -> dict:
    placed = sum(isinstance(r, Placement) for r in results)
    refused: dict = {}
    for r in results:
        if not isinstance(r, Placement):
            refused[r.constraint] = refused.get(r.constraint, 0) + 1
    return {"placed": placed, "refused": len(results) - placed, "refused_by_constraint": dict(sorted(refused.items()))}


def run_scale(args: argparse.Namespace) -> dict:
    setup_start = time.perf_counter()
    G = national_graph(args.seed, args.sites)
    supply = national_supply(G, args.seed)
    orders = national_orders(G, supply, args.seed, args.orders)
    setup_s = time.perf_counter() - setup_start
    own_file = args.ledger is None
    path = args.ledger or os.path.join(tempfile.mkdtemp(prefix="cpn-market-"), "ledger.jsonl")
    if os.path.exists(path):
        os.remove(path)
    ledger = Ledger.open(path)
    open_start = time.perf_counter()
    market = Market(G, supply, policy=args.policy, ledger=ledger, cache_sources=2048)
    open_s = time.perf_counter() - open_start
    latencies_ns: list[int] = []
    results = []
    next_refresh = REFRESH_EVERY_S
    gc.collect()
    gc.freeze()
    wall_start = time.perf_counter()
    cpu_start = time.process_time()
    for now, order in orders:
        if now >= next_refresh:
            market.refresh_offers(now)
            gc.freeze()  # the market's state is long-lived: keep full collections off it
            next_refresh += REFRESH_EVERY_S
        started = time.perf_counter_ns()
        results.append(market.submit(order, now))
        latencies_ns.append(time.perf_counter_ns() - started)
    wall_s = time.perf_counter() - wall_start
    cpu_s = time.process_time() - cpu_start
    gc.unfreeze()
    ledger.close()
    verify_start = time.perf_counter()
    verdict = verify_file(path)
    verify_s = time.perf_counter() - verify_start
    size_mb = os.path.getsize(path) / 1e6
    if own_file:
        os.remove(path)
        os.rmdir(os.path.dirname(path))
    latencies_ms = sorted(ns / 1e6 for ns in latencies_ns)
    orders_per_s = len(orders) / wall_s
    p99_ms = percentile(latencies_ms, 0.99)
    placed = [r for r in results if isinstance(r, Placement)]
    return {
        "policy": args.policy,
        "sites": G.number_of_nodes(),
        "links": G.number_of_edges(),
        "sites_selling": int((supply.surplus > 0).sum()),
        "surplus_slots": int(supply.surplus.sum()),
        "orders": len(orders),
        **outcomes(results),
        "orders_per_s": round(orders_per_s, 1),
        "placed_per_s": round(len(placed) / wall_s, 1),
        "wall_s": round(wall_s, 3),
        "cpu_s": round(cpu_s, 3),
        "orders_per_cpu_s": round(len(orders) / cpu_s, 1),
        "placement_ms": {"p50": round(percentile(latencies_ms, 0.50), 3),
                         "p90": round(percentile(latencies_ms, 0.90), 3),
                         "p99": round(p99_ms, 3), "max": round(latencies_ms[-1], 3),
                         "mean": round(sum(latencies_ms) / len(latencies_ms), 3)},
        "targets": {"orders_per_s": TARGET_ORDERS_PER_S, "p99_ms": TARGET_P99_MS,
                    "orders_per_s_met": orders_per_s >= TARGET_ORDERS_PER_S, "p99_ms_met": p99_ms <= TARGET_P99_MS},
        "revenue_cny": round(sum(p.total_cny for p in placed), 2),
        "placed_west_share": round(sum(G.nodes[p.site]["lon"] < 108.0 for p in placed) / max(1, len(placed)), 3),
        "network": {"trees_computed": market.network.trees_computed,
                    "alternates_computed": market.network.alternates_computed},
        "ledger": {"entries": verdict.entries, "verified": verdict.ok, "verify_s": round(verify_s, 3),
                   "size_mb": round(size_mb, 1), "path": None if own_file else path},
        "setup_s": round(setup_s, 3),
        "market_open_s": round(open_s, 3),
    }


def run_compare(args: argparse.Namespace) -> dict:
    G = national_graph(args.seed, args.compare_sites, rate_scale=args.compare_rate_scale)
    supply = national_supply(G, args.seed)
    orders = national_orders(G, supply, args.seed, args.compare_orders, day_s=args.compare_day_s)
    out = {"sites": G.number_of_nodes(), "links": G.number_of_edges(), "orders": len(orders),
           "day_s": args.compare_day_s, "rate_scale": args.compare_rate_scale, "policies": {}}
    for policy in ("nearest", "cheapest", "joint"):
        market = Market(G, national_supply(G, args.seed), policy=policy)
        results = [market.submit(order, now) for now, order in orders]
        placed = [r for r in results if isinstance(r, Placement)]
        out["policies"][policy] = {**outcomes(results), "revenue_cny": round(sum(p.total_cny for p in placed), 3)}
    start = time.perf_counter()
    optimum = solve(G, national_supply(G, args.seed), orders, time_limit_s=args.milp_time_limit_s)
    out["policies"]["optimum"] = {"placed": optimum.admitted, "refused": len(orders) - optimum.admitted,
                                  "proved_optimal": optimum.optimal, "placed_at_most": optimum.bound,
                                  "charge_at_base_cny": round(optimum.charge_cny, 3),
                                  "variables": optimum.variables, "constraints": optimum.constraints,
                                  "solve_s": round(time.perf_counter() - start, 2)}
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "market_scale",
        "seed": args.seed,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "networkx": nx.__version__,
        "machine": platform.machine(),
        "scale": run_scale(args),
    }
    if args.compare:
        report["compare"] = run_compare(args)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
