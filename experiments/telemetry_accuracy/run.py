"""Telemetry accuracy: does the network view match the emulator's ground truth?

On the flagship topology (or ``--topology``), with the controller's telemetry at
its defaults except the probe rate (``--probe-hz``):

- **loss localisation**: per trial, random loss (``--loss-pct``) is injected on one
  random WAN link; after ``--blocks`` alternate-marking blocks the link with the
  most lost packets is named; a trial succeeds when that is the injected link;
- **loss onset**: time from injection to the first block that reports loss on
  that link (target: within 2 periods);
- **per-block accuracy**: share of all blocks whose measured loss equals the link
  element's own drop count for that block (target: at least 99 %);
- **delay**: per link direction, the IOAM median one-way delay against the
  configured delay (target: within max(5 %, 0.3 ms));
- **overhead**: probe traffic per link against the link's capacity (target: < 1 %).

    sudo .venv/bin/python -m experiments.telemetry_accuracy.run [--quick] [--trials N] [--seed S]

Writes ``results/telemetry_accuracy/<utc>_<git>/result.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

from cpn_net import stats
from cpn_net.emulation import fidelity
from cpn_net.emulation.network import EmulatedNetwork
from cpn_net.model import load_topology
from cpn_net.northbound_client import NorthboundClient
from experiments.common import results
from experiments.common.progress import Progress

FLAGSHIP = os.path.join(results.ROOT, "topologies", "east-data-west-compute.yaml")
# IPv6 40 + hop-by-hop with the IOAM trace for 2 hops 48 + SRH with 2 segments 40 + UDP 8 + payload 22
PROBE_IP_BYTES = 158


def wait_for_block(client, after_block: int, timeout_s: float = 10.0) -> dict:
    """The telemetry view once a block newer than ``after_block`` has been read everywhere."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = client.telemetry()
        blocks = [l["loss"]["block"] for l in view["links"] if l.get("loss")]
        if blocks and min(blocks) > after_block:
            return view
        time.sleep(0.1)
    raise TimeoutError(f"no alternate-marking block after {after_block} within {timeout_s} s")


def latest_block(view: dict) -> int:
    return min((l["loss"]["block"] for l in view["links"] if l.get("loss")), default=-1)


def run(args, progress) -> dict:
    os.environ["CPN_IOAM_PROBE_HZ"] = str(args.probe_hz)
    topology = load_topology(args.topology)
    network = EmulatedNetwork(topology, seed=args.seed, progress=lambda m: None)
    rng = random.Random(args.seed)
    trials = []
    try:
        network.start()
        counters = network.link_counters()
        client = NorthboundClient(network.controller_state()["rest"])
        view = wait_for_block(client, 1, timeout_s=20)  # a clean block first
        for trial in range(args.trials):
            link = rng.choice(network.plan.wan_links)
            before = latest_block(view)
            injected_at = time.time()
            network.set_link(link.site_a, link.site_b, loss_pct=args.loss_pct)
            onset = None
            lost_by_link: dict[str, int] = {}
            last = before
            for _ in range(args.blocks + 1):
                view = wait_for_block(client, last)
                last = latest_block(view)
                for entry in view["links"]:
                    loss = entry.get("loss") or {}
                    if loss.get("lost"):
                        lost_by_link[entry["link"]] = lost_by_link.get(entry["link"], 0) + loss["lost"]
                        if onset is None and {entry["from"], entry["to"]} == {link.site_a, link.site_b}:
                            onset = loss["read_at"] - injected_at
            network.set_link(link.site_a, link.site_b, loss_pct=0.0)
            named = max(lost_by_link, key=lost_by_link.get) if lost_by_link else None
            injected = {f"{link.router_a}->{link.router_b}", f"{link.router_b}->{link.router_a}"}
            trials.append({"trial": trial, "injected_link": f"{link.site_a}-{link.site_b}",
                           "named_link": named, "correct": named in injected, "lost_by_link": lost_by_link,
                           "onset_s": None if onset is None else round(onset, 3)})
            progress(f"trial {trial + 1}/{args.trials}: loss on {link.site_a}-{link.site_b}, named {named}, "
                     f"onset {trials[-1]['onset_s']} s")
            progress.advance()
            view = wait_for_block(client, last)  # let a clean block pass
        final = client.telemetry()
        blocks = final["accuracy"]
        window = fidelity.window(counters, network.link_counters())
        mode = network.link_mode
    finally:
        network.stop()
    delays = []
    for entry in final["links"]:
        delay = entry.get("delay") or {}
        configured = entry["ground_truth"]["delay_ms"]
        measured = delay.get("delay_ms")
        delays.append({"link": entry["link"], "configured_ms": configured, "measured_ms": measured,
                       "p99_ms": delay.get("delay_p99_ms"), "jitter_ms": delay.get("jitter_ms"),
                       "samples": delay.get("samples"),
                       "within": measured is not None and stats.within(measured, configured, 0.05, 0.3)})
    rates = [l.rate_mbps for l in topology.links if l.rate_mbps]
    overhead_pct = (100.0 * args.probe_hz * PROBE_IP_BYTES * 8 / (min(rates) * 1e6)) if rates else None
    onsets = [t["onset_s"] for t in trials if t["onset_s"] is not None]
    return {
        "trials": trials, "delays": delays, "block_accuracy": blocks, "link_mode": mode, "dataplane": network.dataplane,
        "fidelity": window,
        "summary": {
            "loss_links_named_correctly": f"{sum(t['correct'] for t in trials)}/{len(trials)}",
            "onset_s": {"max": max(onsets) if onsets else None,
                        "median": stats.percentile(onsets, 50) if onsets else None,
                        "within_2_periods": sum(o <= 2.0 for o in onsets)},
            "blocks_matching_truth_pct": round(100.0 * blocks["blocks_matching_truth"] /
                                               max(1, blocks["blocks_judged"]), 3),
            "blocks_judged": blocks["blocks_judged"],
            "delay_within_tolerance": f"{sum(d['within'] for d in delays)}/{len(delays)}",
            "delay_error_ms_max": max(abs(d["measured_ms"] - d["configured_ms"]) for d in delays
                                      if d["measured_ms"] is not None),
            "probe_overhead_pct_of_slowest_link": None if overhead_pct is None else round(overhead_pct, 4),
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default=FLAGSHIP)
    parser.add_argument("--quick", action="store_true", help="5 trials")
    parser.add_argument("--trials", type=int, default=None, help="default 20, quick 5")
    parser.add_argument("--loss-pct", type=float, default=5.0)
    parser.add_argument("--blocks", type=int, default=3, help="blocks observed per trial")
    parser.add_argument("--probe-hz", type=float, default=50.0, help="IOAM probes per second per link direction")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("experiments.telemetry_accuracy: needs root; run it with sudo", file=sys.stderr)
        return 2
    args.trials = args.trials or (5 if args.quick else 20)
    progress = Progress()

    try:
        with progress.bar("trials", total=args.trials):
            outcome = run(args, progress)
    except KeyboardInterrupt:
        progress("interrupted: network torn down, no result written")
        return 130
    config = {"topology": load_topology(args.topology).to_dict(), "trials": args.trials,
              "loss_pct": args.loss_pct, "blocks": args.blocks, "probe_hz": args.probe_hz, "period_s": 1.0}
    path = results.write_result("telemetry_accuracy", {
        "metadata": results.metadata(seed=args.seed, link_mode=outcome.pop("link_mode"), config=config,
                                     dataplane=outcome.pop("dataplane")),
        **outcome})
    for key, value in outcome["summary"].items():
        print(f"{key:40} {value}")
    print(f"\nresult: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
