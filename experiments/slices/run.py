"""Slices experiment: guarantee, latency and isolation under a flood, admission, and time to enforce.

Part 1, topology ``slices`` (sites a and b, one 2 ms 20 Mbit/s link; gold is a
10 Mbit/s latency slice u1-1<->k2-1 bounded to 10 ms, bulk a 2 Mbit/s slice
u1-2<->k2-2, greedy asks 15 Mbit/s and must be refused; u1-3 and k2-3 are in
no slice):

* guarantee: bulk floods the link with 30 Mbit/s UDP; gold's TCP (iperf3) rate;
* latency: pings (50/s) of gold, bulk and the unsliced host during the flood,
  and the one-way delay (100 timestamped packets/s; the bound is one way) of
  gold and of the unsliced host on the same path (the control: when it misses
  the bound too, the machine stalled the emulation; the link elements' late
  departures in that window are recorded beside it);
* SLO monitoring: ``GET /slice-status`` every second during the flood, recorded
  (:class:`cpn_net.slicing.monitor.SloRecorder`);
* isolation: packets from other tenants' hosts to gold's k2-1 with a spoofed
  traffic class, a spoofed source, End.DT6 / End.DX6 SIDs, an SRH, and from
  the same switch; counted at k2-1 (a gold control flow must arrive);
* admission: the declared over-subscription and a runtime one are refused,
  naming the bottleneck; the data plane is compared before and after.

Part 2, the flagship (15 sites, 22 links at 100 Mbit/s, 30 hosts): time from
a slice request (``POST /slices``) to the controller's answer (routes, rules,
HTB classes and tables installed; OpenFlow sent) and to the switches showing
the slice's flows, for 1 isolated slice, for 15 isolated slices requested back
to back (30 hosts make at most 15 disjoint pairs, and a host is in at most one
isolated slice), for 50 shared slices in force at once (random host pairs; the
marks they get are recorded), and for 50 requests in a row (add, enforce,
delete).

    sudo .venv/bin/python -m experiments.slices.run [--quick]

Writes ``results/slices/<utc>_<git>/result.json`` and prints the summary as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from cpn_net.dataplane.show import show
from cpn_net.emulation import fidelity
from cpn_net.emulation.network import EmulatedNetwork
from cpn_net.emulation.wire import late_totals
from cpn_net.model import load_topology
from cpn_net.slicing.monitor import SloRecorder
from cpn_net.slicing.realise import COOKIE_SLICE
from cpn_net.tools.measure import measure_flow
from experiments.common import results
from experiments.common.progress import Progress

SLICES = os.path.join(results.ROOT, "topologies", "slices.yaml")
FLAGSHIP = os.path.join(results.ROOT, "topologies", "east-data-west-compute.yaml")
U1_1, U1_2, U1_3 = "2001:db8:1::1:1", "2001:db8:1::1:2", "2001:db8:1::1:3"
K2_1, K2_2, K2_3 = "2001:db8:2::2:1", "2001:db8:2::2:2", "2001:db8:2::2:3"
GOLD_TC = 0x22 << 2
CONCURRENT = ((1, True), (15, True), (50, False))  # (slices at once, isolated)


def rest(network, method: str, path: str, body=None):
    url = network.controller_state()["rest"] + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def sh(network, node: str, command: str) -> str:
    return network.node(node).cmd(command)


def ping_rtts(network, node: str, address: str, count: int):
    return network.node(node).popen(["ping", "-6", "-n", "-c", str(count), "-i", "0.02", address],
                                    stdout=subprocess.PIPE, text=True)


def rtts_of(proc) -> list[float]:
    out, _ = proc.communicate(timeout=120)
    return [float(line.split("time=")[1].split()[0]) for line in out.splitlines() if "time=" in line]


def late_departures(network) -> dict:
    """Frames the link elements sent late (> 1 ms, > 5 ms) so far, over all links and directions."""
    return late_totals(link["ground_truth"] for link in network.status()["links"])


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else None


def data_plane(network) -> str:
    parts = []
    for router in ("r1", "r2"):
        parts += [show(router, network.dataplane, network.run_dir),  # routes, rules, eBPF maps
                  sh(network, router, f"tc class show dev {router}-eth1")]
    for switch in ("s1", "s2"):
        flows = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", switch],
                               capture_output=True, text=True).stdout
        parts.append("\n".join(sorted(l.split(" actions=")[0] for l in flows.splitlines() if "cookie=0xc0de5" in l)))
    return "\n".join(parts)


def part_slices(flood_s: float, progress) -> dict:
    network = EmulatedNetwork(load_topology(SLICES), progress=lambda m: None)
    try:
        network.start()
        counters = network.link_counters()
        progress("slices: booted; flooding the bulk slice")
        view = rest(network, "GET", "/slices")[1]
        sh(network, "k2-1", "iperf3 -s -1 -D -p 5401")
        sh(network, "k2-2", "iperf3 -s -1 -D -p 5402")
        time.sleep(0.5)
        flood = network.node("u1-2").popen(["iperf3", "-c", K2_2, "-p", "5402", "-u", "-b", "30M", "-t",
                                            str(int(flood_s)), "--json"], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        recorder, snapshots = SloRecorder(), []
        half = (flood_s - 2) / 2

        def monitor(seconds):
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                status = rest(network, "GET", "/slice-status")[1]
                recorder.record(time.time(), {"slices": {n: s["slo"] for n, s in status["slices"].items()},
                                              "violations": status["violations"]})
                snapshots.append(status)
                time.sleep(1.0)

        # First half: latency (pings, and timestamped packets for the one-way bound: gold's own,
        # and a control in no slice on the same path, in the default class; gold carries no bulk
        # traffic of its own meanwhile). When the control misses the bound too, the machine stalled
        # the emulation in this window (the link elements' late departures show how much).
        one_way: dict = {}
        late_before = late_departures(network)

        def popen(node, argv, **kwargs):
            return network.node(node).popen(argv, **kwargs)

        with tempfile.TemporaryDirectory() as workdir:
            flows = [threading.Thread(target=lambda name=name, args=args, port=port: one_way.update({
                name: measure_flow(popen, *args, rate_pps=100, duration_s=max(2.0, half - 2), workdir=workdir,
                                   port=port)}))
                for name, args, port in (("gold", ("u1-1", "k2-1", K2_1), 5998),
                                         ("no_slice", ("u1-3", "k2-3", K2_3), 5997))]
            for flow in flows:
                flow.start()
            monitor(1.0)  # the flows' Python processes start up before the pings begin
            ping_count = int((half - 2) * 50)
            pings = {name: ping_rtts(network, node, address, ping_count)
                     for name, (node, address) in {"gold": ("u1-1", K2_1), "bulk": ("u1-2", K2_2),
                                                   "no_slice": ("u1-3", K2_3)}.items()}
            monitor(half - 1)
            for flow in flows:
                flow.join()
        late_after = late_departures(network)
        rtts = {name: rtts_of(proc) for name, proc in pings.items()}
        # Second half: gold's guarantee (TCP as fast as it can) under the same flood.
        gold_tcp = network.node("u1-1").popen(["iperf3", "-c", K2_1, "-p", "5401", "-t", str(max(3, int(half - 1))),
                                               "--json"], stdout=subprocess.PIPE, text=True)
        monitor(half - 1)
        tcp = json.loads(gold_tcp.communicate(timeout=120)[0])
        flood.communicate(timeout=120)
        latency = {name: {"sent": ping_count, "answered": len(v),
                          "rtt_p50_ms": statistics.median(v) if v else None, "rtt_p99_ms": percentile(v, 99),
                          "rtt_max_ms": max(v) if v else None} for name, v in rtts.items()}
        for name, flow in one_way.items():
            latency[name]["one_way"] = {"sent": flow.get("sent"), "lost": flow.get("lost"),
                                        **(flow.get("delay_ms") or {})}
        progress("slices: isolation attempts")
        isolation = attempt_isolation(network)
        progress("slices: admission")
        before = data_plane(network)
        code, refusal = rest(network, "POST", "/slices", {"name": "huge", "members": ["u1-3", "k2-3"],
                                                         "rate_mbps": 9})
        unchanged = data_plane(network) == before
        return {
            "srv6_dataplane": network.dataplane, "link_emulation_mode": network.link_mode,
            "fidelity": fidelity.window(counters, network.link_counters()),
            "declared": view,
            "guarantee": {"gold_guaranteed_mbps": 10, "bulk_flood_mbps": 30, "link_mbps": 20,
                          "gold_tcp_mbps": round(tcp["end"]["sum_received"]["bits_per_second"] / 1e6, 3)},
            "latency": {"gold_bound_ms_one_way": 10, **latency,
                        "link_element_late_departures": {k: late_after[k] - late_before[k] for k in late_after}},
            "slo_monitoring": {"summary": recorder.summary(), "snapshots": snapshots},
            "isolation": isolation,
            "admission": {"declared_refusals": {s["name"]: s["refusal"] for s in view if s["state"] == "refused"}
                          if isinstance(view, list) else view,
                          "runtime_status": code, "runtime_refusal": refusal,
                          "data_plane_unchanged_after_refusal": unchanged},
        }
    finally:
        network.stop()


def attempt_isolation(network) -> dict:
    listener = network.node("k2-1").popen([sys.executable, "-m", "cpn_net.tools.isolation_probe", "recv", "6000",
                                           "12"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    mac = {n: sh(network, n, f"cat /sys/class/net/{i}/address").strip()
           for n, i in (("r1", "r1-eth0"), ("k2-1", "k2-1-eth0"), ("r2", "r2-eth0"))}
    dt6, dx6, end_x = "fcbb:bb00:2:4:101::", "fcbb:bb00:2:3:2:1::", "fcbb:bb00:1:2:2::"
    attempts = [("control", "u1-1", mac["r1"], "plain", U1_1, K2_1, hex(GOLD_TC)),
                ("spoofed_traffic_class", "u1-2", mac["r1"], "plain", U1_2, K2_1, hex(GOLD_TC)),
                ("spoofed_source", "u1-2", mac["r1"], "plain", U1_1, K2_1, "0"),
                ("spoofed_source_from_no_slice", "u1-3", mac["r1"], "plain", U1_1, K2_1, hex(GOLD_TC)),
                ("sid_end_dt6", "u1-2", mac["r1"], "encap", dt6, U1_2, K2_1),
                ("sid_end_dx6", "u1-2", mac["r1"], "encap", dx6, U1_2, K2_1),
                ("sid_srh_end_x_then_dt6", "u1-2", mac["r1"], "srh", end_x, dt6, U1_2, K2_1),
                ("plain_to_member", "u1-2", mac["r1"], "plain", U1_2, K2_1, "0"),
                ("same_switch", "k2-2", mac["k2-1"], "plain", K2_2, K2_1, "0")]
    sent = {}
    for marker, node, to_mac, kind, *args in attempts:
        sh(network, node, f"{sys.executable} -m cpn_net.tools.isolation_probe send {node}-eth0 {to_mac} {marker} "
                          f"6000 20 {kind} {' '.join(args)}")
        sent[marker] = 20
    counts = json.loads(listener.communicate(timeout=60)[0] or "{}")
    return {name: {"sent": sent[name], "delivered": counts.get(name, 0)} for name in sent}


def part_enforcement(churn: int, progress) -> dict:
    topology = load_topology(FLAGSHIP)
    network = EmulatedNetwork(topology, progress=lambda m: None)
    hosts = [h for site in topology.sites for h in site.hosts]
    rng = random.Random(1)
    try:
        network.start()
        progress("flagship: booted; timing slice requests")

        def pairs(n):
            """``n`` host pairs at different sites, no host twice (isolated slices need that)."""
            pool = hosts[:]
            rng.shuffle(pool)
            chosen = []
            while len(chosen) < n and len(pool) >= 2:
                a = pool.pop()
                b = next((h for h in pool if h.site != a.site), None)
                if b is None:
                    break
                pool.remove(b)
                chosen.append((a.name, b.name))
            return chosen

        def shared_pairs(n):
            """``n`` distinct host pairs at different sites; hosts may recur (shared slices)."""
            every = [(a.name, b.name) for a in hosts for b in hosts if a.site != b.site and a.name < b.name]
            return rng.sample(every, n)

        def add(name, a, b, isolation=True):
            started = time.monotonic()
            code, body = rest(network, "POST", "/slices", {"name": name, "members": [a, b], "rate_mbps": 1,
                                                          "kind": "latency" if len(name) % 2 else "bulk",
                                                          "isolation": isolation})
            answered = time.monotonic()
            if code != 201:
                raise RuntimeError(f"slice {name} was not admitted: {code} {body}")
            return started, answered, body

        def on_switches(ids, started):
            cookies = {f"cookie={COOKIE_SLICE | i:#x}," for i in ids}
            while True:
                seen = set()
                for dpid in range(1, 16):
                    flows = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", f"s{dpid}"],
                                           capture_output=True, text=True).stdout
                    seen |= {c for c in cookies if c in flows}
                if seen == cookies:
                    return time.monotonic() - started
                if time.monotonic() - started > 30:
                    raise RuntimeError(f"switch flows of {sorted(cookies - seen)} never appeared")

        out = {}
        for count, isolation in CONCURRENT:
            chosen = pairs(count) if isolation else shared_pairs(count)
            started = time.monotonic()
            bodies = [add(f"t{count}-{i}", a, b, isolation)[2] for i, (a, b) in enumerate(chosen)]
            answered = time.monotonic() - started
            switches = on_switches([b["id"] for b in bodies], started)
            _code, listed = rest(network, "GET", "/slices")
            in_force = sum(1 for s in listed if s["state"] == "admitted")
            out[f"{count}_slices"] = {"slices": count, "isolated": isolation, "in_force": in_force,
                                      "all_answered_ms": round(answered * 1000, 1),
                                      "all_on_switches_ms": round(switches * 1000, 1),
                                      "marks_used": len({b["mark"] for b in bodies}),
                                      "controller_enforced_ms": [b["enforced_ms"] for b in bodies]}
            for body in bodies:
                rest(network, "DELETE", f"/slices/{body['name']}")
            progress(f"flagship: {count} {'isolated' if isolation else 'shared'} slice(s), {in_force} in force: "
                     f"answered in {answered * 1000:.0f} ms, on the switches in {switches * 1000:.0f} ms, "
                     f"{out[f'{count}_slices']['marks_used']} marks")
        rows = []
        with progress.bar("slice requests in a row", total=churn):
            for i, (a, b) in enumerate(pairs(churn) * (churn // max(1, len(pairs(churn))) + 1)):
                if len(rows) == churn:
                    break
                started, answered, body = add(f"c{i}", a, b)
                switches = on_switches([body["id"]], started)
                rows.append({"answered_ms": round((answered - started) * 1000, 1),
                             "on_switches_ms": round(switches * 1000, 1), "controller_ms": body["enforced_ms"]})
                rest(network, "DELETE", f"/slices/c{i}")
                progress.advance()
        out[f"{churn}_requests_in_a_row"] = {
            "requests": len(rows),
            "answered_ms_p50": statistics.median(r["answered_ms"] for r in rows),
            "answered_ms_p95": percentile([r["answered_ms"] for r in rows], 95),
            "on_switches_ms_p50": statistics.median(r["on_switches_ms"] for r in rows),
            "on_switches_ms_p95": percentile([r["on_switches_ms"] for r in rows], 95),
            "total_s": round(sum(r["on_switches_ms"] for r in rows) / 1000, 2), "rows": rows}
        return out
    finally:
        network.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter flood, 10 requests in a row instead of 50")
    parser.add_argument("--skip-flagship", action="store_true", help="only part 1 (the slices topology)")
    args = parser.parse_args(argv)
    flood_s = 14.0 if args.quick else 30.0
    churn = 10 if args.quick else 50
    progress = Progress(label="slices")
    directory = results.run_directory("slices")
    data = {"metadata": results.metadata(1, None, {"flood_s": flood_s, "churn": churn, "quick": args.quick})}
    data["slices_topology"] = part_slices(flood_s, progress)
    data["metadata"].update(srv6_dataplane=data["slices_topology"].pop("srv6_dataplane"),
                            link_emulation_mode=data["slices_topology"].pop("link_emulation_mode"))
    results.write_result("slices", data, directory)  # part 1 kept even if part 2 fails
    if not args.skip_flagship:
        data["enforcement"] = part_enforcement(churn, progress)
    path = results.write_result("slices", data, directory)
    part1 = data["slices_topology"]
    summary = {"guarantee": part1["guarantee"], "latency": part1["latency"],
               "isolation_delivered": {k: v["delivered"] for k, v in part1["isolation"].items()},
               "admission": {k: part1["admission"][k] for k in ("runtime_status", "data_plane_unchanged_after_refusal")},
               "slo_summary": part1["slo_monitoring"]["summary"],
               "enforcement": {k: {kk: vv for kk, vv in v.items() if kk not in ("rows", "controller_enforced_ms")}
                               for k, v in data.get("enforcement", {}).items()},
               "result": path}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
