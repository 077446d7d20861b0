"""Network slices on the real network: admission, guarantee and latency under a flood, isolation, runtime changes.

Topology ``slices``: sites a (u1-1 gold, u1-2 bulk, u1-3 no slice) and b (k2-1
gold, k2-2 bulk, k2-3 no slice) joined by one 2 ms, 20 Mbit/s link.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from cpn_net.emulation.wire import late_totals
from cpn_net.tools.measure import measure_flow, netns_popen

from .conftest import ROOT, cpn, in_node, leftovers, status, wait_until

pytestmark = pytest.mark.integration

SLICES = os.path.join(ROOT, "topologies", "slices.yaml")


@pytest.fixture(scope="module")
def slices_network():
    assert leftovers() == [], f"a previous run left: {leftovers()}"
    cpn("up", SLICES, "--detach")
    try:
        yield status()
    finally:
        cpn("down")


def test_admission_admits_what_fits_and_names_the_bottleneck_of_what_does_not(slices_network):
    slices = slices_network["controller"]["slices"]
    assert set(slices["admitted"]) == {"gold", "bulk"}
    refusal = slices["refused"]["greedy"]
    assert "a-b" in refusal or "b-a" in refusal, refusal
    assert "7" in refusal, f"the shortfall (15 - 8 = 7 Mbit/s) must be named: {refusal}"
    classes = in_node("r1", "tc class show dev r1-eth1").stdout
    assert "1:11" in classes and "1:12" in classes and "1:13" not in classes, classes


def test_guaranteed_slice_keeps_its_rate_while_the_bulk_slice_floods_the_link(slices_network, tmp_path):
    in_node("k2-1", "iperf3 -s -1 -D -p 5401")
    in_node("k2-2", "iperf3 -s -1 -D -p 5402")
    for node, port in (("k2-1", "5401"), ("k2-2", "5402")):
        wait_until(lambda: port in in_node(node, "ss -ltn").stdout, 10, f"iperf3 on {node}")
    flood = f"iperf3 -c 2001:db8:2::2:2 -p 5402 -u -b 30M -t 8 --json > {tmp_path}/bulk.json"
    in_node("u1-2", f"({flood}) >/dev/null 2>&1 &")
    wait_until(lambda: "dropped 0," not in in_node("r1", "tc -s class show dev r1-eth1 classid 1:12").stdout,
               10, "the bulk flood queueing at its HTB class")
    gold = json.loads(in_node("u1-1", "iperf3 -c 2001:db8:2::2:1 -p 5401 -t 5 --json", timeout=60).stdout)
    mbps = gold["end"]["sum_received"]["bits_per_second"] / 1e6
    print(f"\ngold slice TCP under a 30 Mbit/s bulk flood on a 20 Mbit/s link: {mbps:.2f} Mbit/s (guarantee 10)")
    assert mbps >= 0.95 * 10, f"gold got {mbps:.2f} Mbit/s of its guaranteed 10"
    wait_until(lambda: os.path.exists(tmp_path / "bulk.json") and os.path.getsize(tmp_path / "bulk.json") > 100,
               20, "the bulk flood to finish")


PROBE = "-m cpn_net.tools.isolation_probe"
U1_1, U1_2, U1_3 = "2001:db8:1::1:1", "2001:db8:1::1:2", "2001:db8:1::1:3"
K2_1, K2_2, K2_3 = "2001:db8:2::2:1", "2001:db8:2::2:2", "2001:db8:2::2:3"
GOLD_TC = 0x22 << 2  # gold's DSCP (0x22: mark 1, the first admitted, and the monitored bit) as a traffic class


def _mac(node: str, ifname: str) -> str:
    return in_node(node, f"cat /sys/class/net/{ifname}/address").stdout.strip()


def _send(node: str, marker: str, kind: str, *args: str, to_mac: str | None = None, count: int = 20) -> None:
    mac = to_mac or _mac(f"r{node[1]}", f"r{node[1]}-eth0")
    in_node(node, f"{sys.executable} {PROBE} send {node}-eth0 {mac} {marker} 6000 {count} {kind} {' '.join(args)}",
            timeout=60)


def test_tenants_cannot_reach_another_slice_with_spoofed_marks_addresses_or_sids(slices_network):
    """Every attempt from a tenant's host (and from a host in no slice) delivers 0 packets to gold's k2-1."""
    listener = subprocess.Popen(["ip", "netns", "exec", "cpn-k2-1", sys.executable, "-m", "cpn_net.tools.isolation_probe", "recv", "6000", "12"],
                                stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # the listener binds before the first packet; its 12 s window bounds the test
        dt6 = "fcbb:bb00:2:4:101::"     # End.DT6 into gold's table at b
        dx6 = "fcbb:bb00:2:3:2:1::"     # End.DX6 to k2-1
        end_x = "fcbb:bb00:1:2:2::"     # End.X a->b
        _send("u1-1", "control", "plain", U1_1, K2_1, hex(GOLD_TC))  # gold to gold: must arrive
        _send("u1-2", "spoofed-tc", "plain", U1_2, K2_1, hex(GOLD_TC))
        _send("u1-2", "spoofed-src", "plain", U1_1, K2_1, "0")
        _send("u1-3", "spoofed-src-unsliced", "plain", U1_1, K2_1, hex(GOLD_TC))
        _send("u1-2", "sid-dt6", "encap", dt6, U1_2, K2_1)
        _send("u1-2", "sid-dx6", "encap", dx6, U1_2, K2_1)
        _send("u1-2", "sid-srh", "srh", end_x, dt6, U1_2, K2_1)
        _send("u1-3", "unsliced-sid-srh", "srh", end_x, dt6, U1_3, K2_1)
        _send("u1-2", "plain-to-member", "plain", U1_2, K2_1, "0")
        _send("k2-2", "same-site", "plain", K2_2, K2_1, "0", to_mac=_mac("k2-1", "k2-1-eth0"))
        out, _ = listener.communicate(timeout=30)
    finally:
        if listener.poll() is None:
            listener.kill()
    counts = json.loads(out)
    print(f"\npackets delivered to gold's k2-1 by marker: {counts}")
    assert counts.get("control") == 20, f"the gold control flow must arrive in full: {counts}"
    leaked = {marker: n for marker, n in counts.items() if marker != "control"}
    assert leaked == {}, f"isolation leaked packets to another slice's host: {leaked}"
    flows = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "s1"], capture_output=True, text=True).stdout
    dropped = sum(int(line.split("n_packets=")[1].split(",")[0]) for line in flows.splitlines()
                  if "priority=52" in line)
    assert dropped >= 40, f"the switch's anti-spoofing should have dropped the 40 spoofed packets:\n{flows}"


GOLD_BOUND_MS = 10.0  # gold's latency SLO (topologies/slices.yaml), one way
WINDOWS = 5  # a noisy spell on this VM (every packet slower, p50 +50 %) has lasted up to ~40 s


def _bulk_dropped() -> int:
    text = in_node("r1", "tc -s class show dev r1-eth1 classid 1:12").stdout
    return int(re.search(r"dropped (\d+)", text).group(1))


def _late_departures() -> dict:
    return late_totals(link["ground_truth"] for link in status()["links"])


def _flooded_window(tmp_path, attempt: int) -> dict:
    """Bulk floods the link; meanwhile gold and a host in no slice send timestamped packets on the same path.

    The host in no slice is the control: it crosses the same switches, routers and link
    element as gold, in the default class instead of gold's. When it too misses the bound,
    the window shows the machine (late timers under CPU contention), not the slice.
    """
    port = 5412 + attempt
    in_node("k2-2", f"iperf3 -s -1 -D -p {port}")
    wait_until(lambda: str(port) in in_node("k2-2", "ss -ltn").stdout, 10, "iperf3 on k2-2")
    dropped = _bulk_dropped()
    flood = f"iperf3 -c {K2_2} -p {port} -u -b 30M -t 14 --json > {tmp_path}/bulk{attempt}.json"
    in_node("u1-2", f"({flood}) >/dev/null 2>&1 &")
    wait_until(lambda: _bulk_dropped() > dropped, 10, "the bulk flood queueing at its HTB class")
    late_before = _late_departures()
    bulk_ping = _ping("u1-2", K2_2)  # bulk's own delay: its queue must be loaded for the test to prove anything
    workdir = str(tmp_path / f"window{attempt}")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        flows = {name: pool.submit(measure_flow, netns_popen, sender, receiver, address, rate_pps=100,
                                   duration_s=3.5, workdir=workdir, port=port_)
                 for name, (sender, receiver, address, port_) in
                 {"gold": ("u1-1", "k2-1", K2_1, 5998), "none": ("u1-3", "k2-3", K2_3, 5997)}.items()}
        one_way = {name: flow.result() for name, flow in flows.items()}
    bulk_rtts = _rtts(bulk_ping)
    late_after = _late_departures()
    window = {"attempt": attempt, "flood": tmp_path / f"bulk{attempt}.json", "one_way": one_way,
              "bulk_rtt_p50": statistics.median(bulk_rtts) if bulk_rtts else None,
              "late_departures": {key: late_after[key] - late_before[key] for key in late_after}}
    print(f"\nwindow {attempt + 1}, under a 30 Mbit/s bulk flood on the 20 Mbit/s link: bulk RTT p50 "
          f"{window['bulk_rtt_p50']} ms ({len(bulk_rtts)}/200 answered); one way (gold's bound: 10 ms): " + "; ".join(
              f"{name} p50 {f['delay_ms']['median_ms']:.2f} p99 {f['delay_ms']['p99_ms']:.2f} "
              f"max {f['delay_ms']['max_ms']:.2f} ms ({f['received']}/{f['sent']} arrived)"
              for name, f in one_way.items())
          + f"; link element departures late by > 1 / 5 ms: {window['late_departures']['late_over_1ms']} / "
          f"{window['late_departures']['late_over_5ms']}")
    return window


def _flood_finished(window) -> bool:
    path = window["flood"]
    return os.path.exists(path) and os.path.getsize(path) > 100


def test_latency_slice_keeps_its_delay_bound_while_bulk_saturates_the_link(slices_network, tmp_path):
    """Gold's one-way p99 stays within its 10 ms bound while bulk floods the shared link.

    A window counts when the control (a host in no slice, same path) kept within the bound;
    on a window where it did not, the machine stalled the emulation, and the test measures
    again, up to WINDOWS times. It fails when no window counts.
    """
    windows = []
    for attempt in range(WINDOWS):
        if windows:
            wait_until(lambda: _flood_finished(windows[-1]), 30, "the previous bulk flood to finish")
        windows.append(_flooded_window(tmp_path, attempt))
        if windows[-1]["one_way"]["none"]["delay_ms"]["p99_ms"] <= GOLD_BOUND_MS:
            break
    window = windows[-1]
    control, gold = window["one_way"]["none"], window["one_way"]["gold"]
    assert control["delay_ms"]["p99_ms"] <= GOLD_BOUND_MS, (
        f"in all {WINDOWS} windows the host in no slice (same path, default class) also missed {GOLD_BOUND_MS} ms "
        f"one way: either the flood reached the default class or the emulator could not keep time on this machine "
        f"(late departures per window: {[w['late_departures'] for w in windows]}); gold's bound was not tested")
    assert gold["lost"] <= 0.01 * gold["sent"], f"gold lost packets under the flood: {gold}"
    assert gold["delay_ms"]["p99_ms"] <= GOLD_BOUND_MS, (
        f"gold one-way delay p99 {gold['delay_ms']['p99_ms']} ms exceeds the slice's {GOLD_BOUND_MS} ms bound "
        f"while traffic in no slice on the same path kept {control['delay_ms']['p99_ms']} ms")
    assert (window["bulk_rtt_p50"] or 0.0) > 2 * GOLD_BOUND_MS, \
        f"the flood did not load the bulk slice's queue (its RTT p50 {window['bulk_rtt_p50']} ms): nothing was proven"
    # SLO monitoring counts each slice's own packets (its mark): the flood's loss is bulk's, not gold's
    gold_ping = _ping("u1-1", K2_1)  # gold's packets in the blocks read next (the flood runs on)
    try:
        seen: list = []
        try:
            flooded = wait_until(lambda: _a_to_b_loss(("gold", "bulk"), seen), 5,
                                 "a block with gold's pings and the flood")
        except AssertionError as err:
            raise AssertionError(f"{err}; the last a->b readings: {seen[-3:]}") from None
    finally:
        gold_ping.kill()
        gold_ping.wait()
    print(f"a->b loss in the last block: {flooded}")
    assert flooded["gold"]["link_loss_pct"] >= 10, f"the flood should overflow the link: {flooded}"
    assert flooded["gold"]["loss_pct"] <= 1.0, f"gold is charged with loss it did not have: {flooded}"
    assert flooded["bulk"]["loss_pct"] >= 10, f"bulk's own loss should show the flood: {flooded}"
    wait_until(lambda: _flood_finished(window), 30, "the bulk flood to finish")


def _a_to_b_loss(names, seen: list) -> dict | None:
    """``{slice: a->b pair of GET /slice-status}`` once every slice's own a->b loss is measured.

    Each reading is appended to ``seen`` (the failure message shows them).
    """
    _code, body = _rest("GET", "/slice-status")
    found = {name: next(p for p in body["slices"][name]["slo"]["pairs"] if (p["from"], p["to"]) == ("a", "b"))
             for name in names}
    seen.append(found)
    if any(p["loss_pct"] is None or p["link_loss_pct"] is None for p in found.values()):
        return None
    return {name: {k: p[k] for k in ("loss_pct", "link_loss_pct")} for name, p in found.items()}


def _ping(node: str, address: str) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", f"cpn-{node}", "ping", "-6", "-n", "-c", "200", "-i", "0.02",
                             address], stdout=subprocess.PIPE, text=True)


def _rtts(proc: subprocess.Popen) -> list[float]:
    out, _ = proc.communicate(timeout=60)
    return [float(line.split("time=")[1].split()[0]) for line in out.splitlines() if "time=" in line]


def _rest(method: str, path: str, body=None):
    rest = status()["controller"]["rest"]
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(rest + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def _data_plane() -> str:
    """Everything slices install: routes and rules of both routers, HTB classes, switch flows."""
    parts = []
    for router in ("r1", "r2"):
        parts.append(cpn("dataplane", "show", router).stdout)  # routes, rules and (eBPF) SID/encap maps
        parts.append(in_node(router, f"tc class show dev {router}-eth1").stdout)
    for switch in ("s1", "s2"):
        flows = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", switch],
                               capture_output=True, text=True).stdout
        # Matches only: the actions carry the alternate-marking colour, which flips every period.
        parts.append("\n".join(sorted(line.split(" actions=")[0] for line in flows.splitlines()
                                       if "cookie=0xc0de5" in line)))
    return "\n".join(parts)


def test_runtime_slice_add_refusal_and_delete_leave_nothing_partial(slices_network):
    before = _data_plane()
    code, body = _rest("POST", "/slices", {"name": "huge", "members": ["u1-3", "k2-3"], "rate_mbps": 9})
    assert code == 409, body
    assert "a-b" in body["error"] or "a-b" in json.dumps(body), body
    assert _data_plane() == before, "a refused slice left something installed"
    # id 300: ids name the slice's queue (1:13c) and table (400); the mark on the wire is the
    # smallest one no slice on link a-b holds (gold 1, bulk 2: silver gets 3)
    code, body = _rest("POST", "/slices", {"name": "silver", "members": ["u1-3", "k2-3"], "rate_mbps": 5,
                                           "kind": "bulk", "id": 300})
    assert code == 201, body
    assert body["mark"] == 3 and body["id"] == 300, body
    added = _data_plane()
    assert "1:13c" in added and "table 400" in added, added
    print(f"\nruntime slice silver enforced in {body['enforced_ms']} ms (controller side)")
    ping = in_node("u1-3", "ping -n -c 20 -i 0.02 -W 2 2001:db8:2::2:3", check=False)
    assert " 0% packet loss" in ping.stdout, ping.stdout
    shown = in_node("r1", "tc -s class show dev r1-eth1 classid 1:13c").stdout
    sent = int(re.search(r"Sent \d+ bytes (\d+) pkt", shown).group(1))
    assert sent >= 20, f"silver's echo requests should be in its class (marked 3 at the switch): {shown}"
    code, _ = _rest("DELETE", "/slices/silver")
    assert code == 200
    assert _data_plane() == before, "deleting a slice left something behind"
