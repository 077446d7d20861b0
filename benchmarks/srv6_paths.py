"""Benchmark the SRv6 pure core: path computation and policy compilation.

Prints one JSON document: time per path request (mean and p99, microseconds)
for each objective on a seeded random geometric graph, segment-list sizes
(minimal vs one SID per hop), and policies compiled per second.

    python benchmarks/srv6_paths.py --sites 40 --requests 500 --policies 1000 --seed 1

No root, no network: everything runs on the pure core.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import statistics
import sys
import time

import networkx as nx

from cpn_net.model import addressing
from cpn_net.srv6.errors import InfeasiblePath
from cpn_net.srv6.igp import Igp
from cpn_net.srv6.interfaces import InterfacePlan
from cpn_net.srv6.paths import best_path, disjoint_paths, link_key
from cpn_net.srv6.policy import FlowMatch, SRPolicy, compile_policy
from cpn_net.srv6.segments import hop_by_hop_segment_list, minimal_segment_list
from cpn_net.srv6.sids import end_dx6_sid

KM_PER_UNIT = 2000.0  # the unit square spans a large country
MS_PER_KM = 0.005  # one-way propagation in fibre


def geometric_sites(n: int, seed: int) -> nx.Graph:
    """A connected random geometric graph with delays from distance and mixed link rates."""
    rng = random.Random(seed)
    radius = 0.25
    while True:
        base = nx.random_geometric_graph(n, radius, seed=seed)
        if nx.is_connected(base):
            break
        radius += 0.02
    G = nx.Graph(radius=radius)
    G.add_nodes_from((f"site{i + 1}", {"id": i + 1}) for i in base)
    for number, (u, v) in enumerate(sorted(base.edges), start=1):
        distance = math.dist(base.nodes[u]["pos"], base.nodes[v]["pos"])
        G.add_edge(f"site{u + 1}", f"site{v + 1}", number=number,
                   delay_ms=round(0.1 + distance * KM_PER_UNIT * MS_PER_KM, 3),
                   rate_mbps=rng.choice([100.0, 1000.0, 10000.0]))
    return G


def summary_us(samples_ns: list[int]) -> dict:
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {"mean_us": round(statistics.fmean(ordered) / 1000, 1), "p99_us": round(p99 / 1000, 1),
            "requests": len(ordered)}


def time_requests(requests, compute) -> dict:
    samples, infeasible = [], 0
    for request in requests:
        start = time.perf_counter_ns()
        try:
            compute(*request)
        except InfeasiblePath:
            infeasible += 1
        samples.append(time.perf_counter_ns() - start)
    return {**summary_us(samples), "infeasible": infeasible}


def run(sites: int, requests: int, policies: int, seed: int) -> dict:
    G = geometric_sites(sites, seed)
    rng = random.Random(seed)
    names = sorted(G, key=lambda s: G.nodes[s]["id"])
    pairs = [tuple(rng.sample(names, 2)) for _ in range(requests)]
    residual = {link_key(u, v): rate * rng.uniform(0.0, 1.0) for u, v, rate in G.edges(data="rate_mbps")}
    with_waypoints = [(s, t, [w for w in rng.sample(names, 3) if w not in (s, t)][:2]) for s, t in pairs]
    objectives = {
        "min_delay": time_requests(pairs, lambda s, t: best_path(G, s, t)),
        "min_hops": time_requests(pairs, lambda s, t: best_path(G, s, t, objective="min_hops")),
        "cspf_500mbps": time_requests(pairs, lambda s, t: best_path(G, s, t, bandwidth_mbps=500.0,
                                                                       residual_mbps=residual)),
        "waypoints_2": time_requests(with_waypoints, lambda s, t, w: best_path(G, s, t, waypoints=w)),
        "disjoint_k2": time_requests(pairs, lambda s, t: disjoint_paths(G, s, t, 2)),
        "disjoint_k3": time_requests(pairs, lambda s, t: disjoint_paths(G, s, t, 3)),
    }
    igp = Igp(G)
    for target in names:  # warm the IGP trees, as a controller holding one Igp would be
        igp.next_hops(target)
    te_paths = [best_path(G, s, t, objective="min_hops") for s, t in pairs]
    minimise_ns, minimal_sizes, naive_sizes = [], [], []
    for path in te_paths:
        final = end_dx6_sid(G.nodes[path.sites[-1]]["id"], "compute", 1)
        start = time.perf_counter_ns()
        minimal = minimal_segment_list(G, path, final_sid=final, igp=igp)
        minimise_ns.append(time.perf_counter_ns() - start)
        minimal_sizes.append(len(minimal))
        naive_sizes.append(len(hop_by_hop_segment_list(G, path, final_sid=final)))
    plan = InterfacePlan.by_link_number(G)
    batch = []
    for k in range(policies):
        path = te_paths[k % len(te_paths)]
        target_id = G.nodes[path.sites[-1]]["id"]
        segments = minimal_segment_list(G, path, final_sid=end_dx6_sid(target_id, "compute", 1), igp=igp)
        flow = FlowMatch(addressing.host_address(target_id, "compute", 1), protocol="udp", src_port=1024 + k)
        batch.append(SRPolicy(f"p{k}", path.sites[0], flow, segments, table=1000 + k))
    start = time.perf_counter()
    for policy in batch:
        compile_policy(G, policy, plan, igp=igp)
    elapsed_s = time.perf_counter() - start
    return {
        "schema": 1,
        "benchmark": "srv6_paths",
        "metadata": {"seed": seed, "sites": G.number_of_nodes(), "links": G.number_of_edges(),
                     "radius": round(G.graph["radius"], 2), "python": platform.python_version(),
                     "networkx": nx.__version__, "machine": platform.machine()},
        "path_request_time": objectives,
        "segment_lists": {"minimise": summary_us(minimise_ns),
                          "mean_sids_minimal": round(statistics.fmean(minimal_sizes), 2),
                          "mean_sids_hop_by_hop": round(statistics.fmean(naive_sizes), 2),
                          "max_sids_minimal": max(minimal_sizes), "paths": len(te_paths),
                          "path_objective": "min_hops"},
        "policy_compile": {"policies": policies, "seconds": round(elapsed_s, 3),
                           "policies_per_s": round(policies / elapsed_s)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=40)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    json.dump(run(args.sites, args.requests, args.policies, args.seed), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
