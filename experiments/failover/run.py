"""Failover experiment: how long a 1,000 packets/s flow is cut when a link on its path fails.

The diamond topology (a-b-d fast, a-c-d slow). A UDP flow from a client at
site a to the compute node at site d follows the IGP through b; two seconds in,
link b-d is cut (both link-element interfaces go down: the routers lose
carrier). Measured per trial: packets lost, the longest run of consecutive
lost packets (the outage, at 1 ms resolution), and the controller's own
reconvergence time. Two modes, side by side in one run:

``controller``
    no precomputed backups: the controller sees the carrier loss over netlink,
    recomputes the IGP and reinstalls routes (``cpn up --no-frr``);
``frr``
    TI-LFA-style backups installed ahead: the kernel skips routes whose link is
    down (``ignore_routes_with_linkdown``) and the backup below takes over at
    once; the controller reconverges afterwards.

    sudo .venv/bin/python -m experiments.failover.run [--quick] [--trials N] [--rate-pps R]

Writes ``results/failover/<utc>_<git>/result.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from cpn_net import stats
from cpn_net.emulation import fidelity
from cpn_net.emulation.network import EmulatedNetwork
from cpn_net.model import load_topology
from cpn_net.tools.measure import measure_flow
from experiments.common import results
from experiments.common.progress import Progress

DIAMOND = os.path.join(results.ROOT, "topologies", "diamond.yaml")
TARGET_MS = 500.0


def run_mode(topology, frr: bool, trials: int, rate_pps: float, duration_s: float, fail_at_s: float,
             seed: int, progress) -> dict:
    network = EmulatedNetwork(topology, frr=frr, seed=seed, progress=lambda m: None)
    rows = []
    try:
        network.start()
        compute = topology.site("d").compute[0]
        client = topology.site("a").clients[0]
        with tempfile.TemporaryDirectory() as workdir:
            for trial in range(trials):
                before = len((network.controller_state() or {}).get("core", {}).get("events", []))
                counters = network.link_counters()
                report = measure_flow(
                    lambda node, argv, **kw: network.node(node).popen(argv, **kw),
                    client.name, compute.name, str(compute.address), rate_pps=rate_pps,
                    duration_s=duration_s, workdir=workdir, flow_id=trial + 1,
                    event=lambda: network.set_link("b", "d", down=True), event_at_s=fail_at_s)
                reconverge = _wait_for_reconvergence(network, before)
                rows.append({"trial": trial, "sent": report["sent"], "lost": report["lost"],
                             "outage_ms": report["outage_ms"], "loss_pct": report["loss_pct"],
                             "gaps": report["gaps"], "controller_reconverge": reconverge,
                             "fault_injected_at_s": report["event"]["at_s"],
                             "fidelity": fidelity.window(counters, network.link_counters())})
                progress(f"{'frr' if frr else 'controller'} trial {trial + 1}/{trials}: "
                         f"outage {report['outage_ms']} ms, {report['lost']} lost")
                progress.advance()
                network.set_link("b", "d", down=False)
                _wait_for_reconvergence(network, before + 1)
        mode = network.link_mode
    finally:
        network.stop()
    outages = [r["outage_ms"] for r in rows]
    return {"frr": frr, "link_emulation_mode": mode, "srv6_dataplane": network.dataplane, "trials": rows,
            "fidelity": results.fidelity_summary([r["fidelity"] for r in rows]),
            "outage_ms": {"mean": sum(outages) / len(outages), "median": stats.percentile(outages, 50),
                          "max": max(outages)},
            "lost_packets": {"mean": sum(r["lost"] for r in rows) / len(rows),
                             "max": max(r["lost"] for r in rows)},
            "target_met": max(outages) < TARGET_MS}


def _wait_for_reconvergence(network, seen_events: int, timeout_s: float = 10.0):
    """The controller's next reconvergence event (it writes them to controller.json)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events = (network.controller_state() or {}).get("core", {}).get("events", [])
        fresh = [e for e in events[seen_events:] if e.get("kind") == "reconverge"]
        if fresh:
            return fresh[0]
        time.sleep(0.05)
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 trials per mode")
    parser.add_argument("--trials", type=int, default=None, help="trials per mode (default 10, quick 3)")
    parser.add_argument("--rate-pps", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("experiments.failover: needs root (it boots a Mininet network); run it with sudo", file=sys.stderr)
        return 2
    trials = args.trials or (3 if args.quick else 10)
    if trials < 1 or args.rate_pps <= 0:
        print(f"--trials={trials} must be >= 1 and --rate-pps={args.rate_pps} > 0", file=sys.stderr)
        return 2
    topology = load_topology(DIAMOND)
    progress = Progress()

    modes = {}
    try:
        with progress.bar("trials", total=2 * trials):
            for frr in (False, True):
                progress.describe(f"{'frr' if frr else 'controller'} trials")
                modes["frr" if frr else "controller"] = run_mode(topology, frr, trials, args.rate_pps, 5.0, 2.0,
                                                                 args.seed, progress)
    except KeyboardInterrupt:
        progress("interrupted: network torn down, no result written")
        return 130
    config = {"topology": topology.to_dict(), "trials": trials, "rate_pps": args.rate_pps,
              "flow_duration_s": 5.0, "fail_at_s": 2.0, "failed_link": "b-d", "target_ms": TARGET_MS}
    path = results.write_result("failover", {
        "metadata": results.metadata(seed=args.seed, link_mode=modes["frr"]["link_emulation_mode"],
                                     config=config, dataplane=modes["frr"]["srv6_dataplane"]),
        "modes": modes,
        "summary": {name: {"outage_ms": m["outage_ms"], "lost_packets": m["lost_packets"],
                           "target_met": m["target_met"]} for name, m in modes.items()},
    })
    print(f"\n{'mode':12} {'outage ms mean':>15} {'median':>8} {'max':>8} {'lost max':>9} {'< 500 ms':>9}")
    for name, m in modes.items():
        o = m["outage_ms"]
        print(f"{name:12} {o['mean']:15.1f} {o['median']:8.1f} {o['max']:8.1f} {m['lost_packets']['max']:9} "
              f"{'yes' if m['target_met'] else 'NO':>9}")
    print(f"\nresult: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
