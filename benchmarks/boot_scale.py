"""Benchmark: boot time and peak memory for 5-40 sites, and the link element's capacity.

Prints one JSON document (and writes it under ``results/benchmarks/boot_scale/``).
Not a test: timing targets are reported, never asserted. Needs root.

    sudo .venv/bin/python benchmarks/boot_scale.py [--sites 5 10 20 40] [--capacity]

Synthetic topologies: sites on a ring with a chord every fourth site, one client
and one compute node per site, delays drawn from 1-4 ms (seeded). Boot time is
from the start of :meth:`EmulatedNetwork.start` to verified reachability. Peak
memory is the machine's used memory (MemTotal - MemAvailable) above what it was
before the boot, sampled every 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cpn_net.emulation.network import EmulatedNetwork, wait_until  # noqa: E402
from cpn_net.model import load_topology  # noqa: E402
from experiments.common import results  # noqa: E402


def synthetic_yaml(n_sites: int, seed: int, delay_ms=None, rate_mbps=None) -> str:
    rng = random.Random(seed)
    lines = [f"name: ring{n_sites}", "description: synthetic ring with chords (benchmark)", "sites:"]
    lines += [f"  - {{name: site{i}, id: {i}}}" for i in range(1, n_sites + 1)]
    pairs = [(i, i % n_sites + 1) for i in range(1, n_sites + 1)] if n_sites > 2 else [(1, 2)]
    pairs += [(i, (i + n_sites // 2 - 1) % n_sites + 1) for i in range(1, n_sites + 1, 4) if n_sites >= 8]
    seen, links = set(), []
    for a, b in pairs:
        key = frozenset((a, b))
        if a != b and key not in seen:
            seen.add(key)
            delay = delay_ms if delay_ms is not None else round(rng.uniform(1, 4), 2)
            rate = f", rate_mbps: {rate_mbps}" if rate_mbps else ""
            links.append(f"  - {{a: site{a}, b: site{b}, delay_ms: {delay}{rate}}}")
    return "\n".join(lines + ["links:"] + links) + "\n"


def used_memory_mb() -> float:
    info = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            key, value = line.split(":", 1)
            info[key] = int(value.split()[0])
    return (info["MemTotal"] - info["MemAvailable"]) / 1024


class PeakMemory:
    def __init__(self) -> None:
        self.baseline = used_memory_mb()
        self.peak = self.baseline
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, used_memory_mb())
            time.sleep(0.1)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        return round(self.peak - self.baseline, 1)


def boot_once(n_sites: int, seed: int, workdir: str) -> dict:
    path = os.path.join(workdir, f"ring{n_sites}.yaml")
    with open(path, "w") as handle:
        handle.write(synthetic_yaml(n_sites, seed))
    topology = load_topology(path)
    memory = PeakMemory()
    network = EmulatedNetwork(topology, progress=lambda m: print(f"  [{n_sites} sites] {m}", file=sys.stderr))
    t0 = time.monotonic()
    try:
        network.start()
        boot_s = time.monotonic() - t0
        peak_mb = memory.stop()
        verification = network.verification
        timings = dict(network.timings)
    finally:
        t1 = time.monotonic()
        network.stop()
        stop_s = time.monotonic() - t1
        memory.running = False
    return {"sites": n_sites, "links": len(topology.links), "nodes": len(network.plan.nodes),
            "boot_s": round(boot_s, 2), "stop_s": round(stop_s, 2), "peak_memory_mb": peak_mb,
            "reachability": verification, "timings_s": timings, "target_met": boot_s <= 60}


def link_capacity(workdir: str, delay_ms: float = 10.0, payload_bytes: int = 64,
                  rates_pps=(2000, 5000, 10000, 15000, 20000, 30000, 40000), seconds: int = 3) -> dict:
    """Largest UDP packet rate one element carries at its delay without extra loss (< 0.1 %)."""
    path = os.path.join(workdir, "pair.yaml")
    with open(path, "w") as handle:
        handle.write(synthetic_yaml(2, 1, delay_ms=delay_ms))
    network = EmulatedNetwork(load_topology(path), progress=lambda m: None)
    steps = []
    try:
        network.start()
        sender, receiver = network.node("u1-1"), network.node("k2-1")
        for pps in rates_pps:
            bits = pps * payload_bytes * 8  # iperf3 -b counts UDP payload bits
            receiver.cmd("iperf3 -s -1 -D -p 5301")
            wait_until(lambda: ":5301" in receiver.cmd("ss -ltn"), 10, "iperf3 server listening")
            out = sender.cmd(f"iperf3 -c 2001:db8:2::2:1 -p 5301 -u -l {payload_bytes} -b {bits} "
                             f"-t {seconds} --json")
            try:
                total = json.loads(out)["end"]["sum"]
            except (ValueError, KeyError):
                steps.append({"offered_pps": pps, "error": out[-300:]})
                break
            rtt = sender.cmd("ping -n -c 5 -i 0.05 2001:db8:2::2:1 | tail -1").strip()
            received_pps = (total["packets"] - total["lost_packets"]) / seconds
            steps.append({"offered_pps": pps, "sent": total["packets"], "lost": total["lost_packets"],
                          "loss_pct": round(total["lost_percent"], 3), "received_pps": round(received_pps),
                          "ping_after": rtt})
            if total["lost_percent"] >= 0.1:
                break
        counters = network.links["l1x2"].counters()
    finally:
        network.stop()
    clean = [s for s in steps if "loss_pct" in s and s["loss_pct"] < 0.1]
    return {"delay_ms": delay_ms, "payload_bytes": payload_bytes, "steps": steps,
            "max_pps_without_extra_loss": max((s["received_pps"] for s in clean), default=0),
            "element_counters": counters}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, nargs="+", default=[5, 10, 20, 40])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-capacity", action="store_true", help="skip the link capacity sweep")
    args = parser.parse_args(argv)
    report = {"benchmark": "boot_scale", "target": "40 sites booted and reachable within 60 s",
              "boots": [], "link_capacity": None}
    with tempfile.TemporaryDirectory() as workdir:
        for n in args.sites:
            report["boots"].append(boot_once(n, args.seed, workdir))
        if not args.no_capacity:
            report["link_capacity"] = link_capacity(workdir)
    report["metadata"] = results.metadata(seed=args.seed, link_mode=None)
    path = results.write_result("benchmarks/boot_scale", report)
    print(json.dumps(report, indent=1))
    print(f"written: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
