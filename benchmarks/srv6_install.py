"""Benchmark: SR policies computed and installed into the kernel per second, end to end.

Boots the synthetic 40-site ring (the boot benchmark's), then POSTs 1,000 flow
policies to the controller's REST northbound one after another: each is
validated, its path computed (random objective: min_delay, min_hops, or one
waypoint), its segment list minimised, and its route and rule installed over
netlink at the headend. Then deletes them all. Prints JSON; not a test.

    sudo .venv/bin/python benchmarks/srv6_install.py [--sites 40] [--policies 1000] [--seed 1]

Target (issue 3): 500 policies/s end to end into the kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.boot_scale import synthetic_yaml  # noqa: E402
from cpn_net import stats  # noqa: E402
from cpn_net.emulation.network import EmulatedNetwork  # noqa: E402
from cpn_net.model import load_topology  # noqa: E402
from cpn_net.northbound_client import NorthboundClient  # noqa: E402
from experiments.common import results  # noqa: E402


def policy_bodies(topology, count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    sites = [s.name for s in topology.sites]
    hosts = {s.name: [h.name for h in s.hosts] for s in topology.sites}
    bodies = []
    for i in range(count):
        headend, target = rng.sample(sites, 2)
        body = {"name": f"bench-{i}", "headend": headend, "to": rng.choice(hosts[target]),
                "flow": {"proto": "udp", "dst_port": 10000 + i}}
        kind = rng.choice(["min_delay", "min_hops", "waypoint"])
        if kind == "waypoint":
            body["waypoints"] = [rng.choice([s for s in sites if s not in (headend, target)])]
        else:
            body["objective"] = kind
        bodies.append(body)
    return bodies


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=40)
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=1, help="concurrent REST clients")
    parser.add_argument("--batch", type=int, default=500, help="policies per POST /policy-batches")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        path = os.path.join(workdir, f"ring{args.sites}.yaml")
        with open(path, "w") as handle:
            handle.write(synthetic_yaml(args.sites, args.seed))
        topology = load_topology(path)
        network = EmulatedNetwork(topology, progress=lambda m: print(f"  {m}", file=sys.stderr))
        try:
            network.start()
            client = NorthboundClient(network.controller_state()["rest"])
            bodies = policy_bodies(topology, args.policies, args.seed)
            latencies, refused = [], []

            def add(body):
                t0 = time.monotonic()
                try:
                    client.add_policy(body)
                except Exception as err:  # an infeasible waypoint choice: counted, not fatal
                    refused.append(f"{body['name']}: {err}")
                latencies.append((time.monotonic() - t0) * 1000)

            started = time.monotonic()
            # One request per policy (--clients > 1: several orchestrators at once).
            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                list(pool.map(add, bodies))
            add_s = time.monotonic() - started
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                list(pool.map(client.delete_policy, [b["name"] for b in bodies if b["name"] not in
                                                     {r.split(":", 1)[0] for r in refused}]))
            delete_s = time.monotonic() - started
            # The same policies again, in batches of --batch through POST /policy-batches.
            started = time.monotonic()
            batch_refused = 0
            for start in range(0, len(bodies), args.batch):
                batch_refused += len(client.add_policies(bodies[start:start + args.batch])["refused"])
            batch_s = time.monotonic() - started
            installed = len(client.list_policies())
            rules = network.node("r1").cmd("ip -6 rule | wc -l").strip()

            mode = network.link_mode
        finally:
            network.stop()
    report = {
        "benchmark": "srv6_install", "sites": args.sites, "links": len(topology.links),
        "policies_requested": args.policies, "concurrent_clients": args.clients, "policies_installed": installed, "refused": len(refused),
        "refused_examples": refused[:5],
        "add": {"seconds": round(add_s, 3), "policies_per_s": round(args.policies / add_s, 1),
                "latency_ms": {"mean": round(sum(latencies) / len(latencies), 3),
                               "p50": round(stats.percentile(latencies, 50), 3),
                               "p99": round(stats.percentile(latencies, 99), 3)}},
        "delete": {"seconds": round(delete_s, 3),
                   "policies_per_s": round((args.policies - len(refused)) / delete_s, 1)},
        "batch_add": {"batch": args.batch, "seconds": round(batch_s, 3),
                      "policies_per_s": round(args.policies / batch_s, 1), "refused": batch_refused},
        "rules_on_r1_at_peak": int(rules) if rules.isdigit() else None,
        "target_policies_per_s": 500,
    }
    report["target_met"] = max(report["add"]["policies_per_s"], report["batch_add"]["policies_per_s"]) >= 500
    report["metadata"] = results.metadata(seed=args.seed, link_mode=mode)
    path = results.write_result("benchmarks/srv6_install", report)
    print(json.dumps(report, indent=1))
    print(f"written: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
