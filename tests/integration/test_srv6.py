"""SRv6 on the real kernel: policies on the wire, End.DX6 delivery, removal, REST errors, failover."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest
from scapy.all import IPv6, IPv6ExtHdrSegmentRouting, UDP, rdpcap

from cpn_net.emulation.plan import build_plan
from cpn_net.model import load_topology
from cpn_net.tools.measure import measure_flow, netns_popen

from .conftest import DIAMOND, cpn, in_node, status, wait_until

pytestmark = pytest.mark.integration

TOPOLOGY = load_topology(DIAMOND)
PLAN = build_plan(TOPOLOGY)
CLIENT_A = TOPOLOGY.site("a").clients[0]
COMPUTE_D = TOPOLOGY.site("d").compute[0]
PORT = 5999


class Capture:
    """tcpdump on one router interface, written to a pcap file, stopped by PID."""

    def __init__(self, router: str, intf: str, directory: str) -> None:
        self.path = os.path.join(directory, f"{intf}.pcap")
        self.proc = subprocess.Popen(["ip", "netns", "exec", f"cpn-{router}", "tcpdump", "-i", intf, "-U", "-n",
                                      "-w", self.path, "ip6"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.errors = b""
        wait_until(self._listening, 10, f"tcpdump listening on {router} {intf}")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"tcpdump exited: {self.proc.stderr.read().decode()}")
        line = self.proc.stderr.readline()
        self.errors += line
        return b"listening on" in line

    def packets(self, expected: int = 0):
        """Stop the capture once it holds ``expected`` flow packets (or 5 s passed) and read it."""
        if expected:
            try:
                wait_until(lambda: len(flow_packets(self._read())) >= expected, 5,
                           f"{self.path} to hold {expected} packets")
            except AssertionError:
                pass  # the count is asserted by the caller, with a better message
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        return self._read()

    def _read(self):
        try:
            return list(rdpcap(self.path))
        except (OSError, EOFError):  # not written yet
            return []


def flow_packets(packets):
    """The test flow's packets (UDP to PORT, inside or outside an SRv6 encapsulation)."""
    return [p for p in packets if UDP in p and p[UDP].dport == PORT]


def send_flow(directory: str, count_pps: int = 200, duration_s: float = 1.0) -> dict:
    return measure_flow(netns_popen, CLIENT_A.name, COMPUTE_D.name, str(COMPUTE_D.address), rate_pps=count_pps,
                        duration_s=duration_s, workdir=directory, port=PORT)


def ingress(site: str, from_site: str) -> tuple[str, str]:
    link = PLAN.wan_link(site, from_site)
    return (link.router_a, link.intf_a) if link.site_a == site else (link.router_b, link.intf_b)


def policies() -> dict:
    return {p["name"]: p for p in json.loads(cpn("policy", "list", "--json").stdout)}


def test_policy_forces_the_slow_path_and_is_seen_on_the_wire(diamond, tmp_path):
    out = cpn("policy", "add", "via-c", "--headend", "a", "--to", COMPUTE_D.name, "--waypoint", "c").stdout
    assert "a > c > d" in out
    policy = policies()["via-c"]
    segments = policy["segments"]
    assert policy["path"] == ["a", "c", "d"] and segments[-1].startswith("fcbb:bb00:4:")
    captures = {"c": Capture(*ingress("c", "a"), str(tmp_path)), "d": Capture(*ingress("d", "c"), str(tmp_path)),
                "b-from-a": Capture(*ingress("b", "a"), str(tmp_path)),
                "b-from-d": Capture(*ingress("b", "d"), str(tmp_path))}
    report = send_flow(str(tmp_path))
    seen = {name: flow_packets(c.packets(report["sent"] if name in ("c", "d") else 0))
            for name, c in captures.items()}
    # End.DX6 at d delivered every packet to the compute node.
    assert report["received"] == report["sent"] > 0, report
    for site in ("c", "d"):
        packets = seen[site]
        assert len(packets) == report["sent"], f"{site} saw {len(packets)} of {report['sent']}"
        for packet in packets:
            srh = packet[IPv6ExtHdrSegmentRouting]
            assert list(srh.addresses) == list(reversed(segments)), srh.addresses
            assert packet[IPv6].dst == segments[len(segments) - 1 - srh.segleft]
            assert packet[IPv6][1].dst == str(COMPUTE_D.address)  # the inner packet, untouched
        if site == "d":
            assert {p[IPv6ExtHdrSegmentRouting].segleft for p in packets} == {0}
    assert seen["b-from-a"] == [] and seen["b-from-d"] == [], "router b is off the path and must see none"


def test_removal_restores_the_igp_path(diamond, tmp_path):
    if "via-c" not in policies():
        cpn("policy", "add", "via-c", "--headend", "a", "--to", COMPUTE_D.name, "--waypoint", "c")
    cpn("policy", "del", "via-c")
    assert "via-c" not in policies()
    captures = {"b": Capture(*ingress("b", "a"), str(tmp_path)), "c": Capture(*ingress("c", "a"), str(tmp_path))}
    report = send_flow(str(tmp_path))
    seen = {name: flow_packets(c.packets(report["sent"] if name == "b" else 0)) for name, c in captures.items()}
    assert report["received"] == report["sent"] > 0
    assert len(seen["b"]) == report["sent"] and seen["c"] == []
    assert not any(IPv6ExtHdrSegmentRouting in p for p in seen["b"]), "the IGP path carries plain IPv6"


def _post(url: str, data: bytes, content_type="application/json"):
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def _headend_state() -> str:
    """r1's SIDs, routes, policy routes and rules, whichever data plane holds them."""
    return cpn("dataplane", "show", "r1").stdout


@pytest.mark.parametrize("body, status_code, words", [
    (b'{"name": "x", "headend": "zz", "to": "d"}', 422, ["policy.headend", "zz"]),
    (b'{"name": "x", "headend": "a", "to": "d", "waypoints": ["b", "c"]}', 422, ["no loop-free path"]),
    (b'{"name": "x", "headend": "a"', 400, ["JSON"]),
    (b'{"name": "x", "headend": "a", "to": "d", "colour": 1}', 400, ["colour"]),
])
def test_bad_policy_requests_get_4xx_and_change_nothing(diamond, body, status_code, words):
    url = diamond["controller"]["rest"] + "/policies"
    before = _headend_state()
    code, reply = _post(url, body)
    assert code == status_code, reply
    message = json.dumps(reply["error"])
    assert all(word in message for word in words), message
    assert _headend_state() == before


def test_duplicate_policy_is_a_conflict(diamond):
    cpn("policy", "add", "twice", "--headend", "a", "--to", "d")
    try:
        proc = cpn("policy", "add", "twice", "--headend", "a", "--to", "c", check=False)
        assert proc.returncode == 1 and "exists already" in proc.stderr
    finally:
        cpn("policy", "del", "twice")


def test_routers_programmed_with_local_sids_and_backups(diamond):
    routes = cpn("dataplane", "show", "r2").stdout
    assert "seg6local action End " in routes + " " and "End.DX6" in routes and "End.DT6" in routes
    assert "metric 2048" in routes, "fast-reroute backups are installed ahead"


def test_failover_outage_of_a_1000_pps_flow(diamond, tmp_path):
    """Cut b-d under a 1,000 packets/s flow a->d; the flow must recover. The outage is reported."""
    def cut():
        return cpn("link", "set", "b", "d", "--down").stdout.strip()

    try:
        report = measure_flow(netns_popen, CLIENT_A.name, COMPUTE_D.name, str(COMPUTE_D.address), rate_pps=1000,
                              duration_s=3.0, workdir=str(tmp_path), port=PORT, event=cut, event_at_s=1.0)
    finally:
        cpn("link", "set", "b", "d", "--up")
    print(f"\nfailover b-d at 1000 pps: outage {report['outage_ms']} ms, lost {report['lost']} of "
          f"{report['sent']}, gaps {report['gaps']}")
    assert report["event"]["at_s"] < 2.0
    assert report["lost"] < report["sent"] * 0.10, report
    last_gap_end = max((first + count for first, count in report["gaps"]), default=0)
    assert last_gap_end < report["sent"] - 500, "traffic must flow again well before the end"
    events = status()["controller"]["core"]["events"]
    assert any(e["kind"] == "reconverge" and "b-d down" in e["reason"] for e in events), events


def test_policy_batch_installs_valid_policies_in_one_go_and_refuses_the_rest(diamond):
    url = diamond["controller"]["rest"] + "/policy-batches"
    body = {"policies": [
        {"name": "b1", "headend": "a", "to": COMPUTE_D.name, "flow": {"proto": "udp", "dst_port": 7001}},
        {"name": "b2", "headend": "a", "to": "c", "objective": "min_hops"},
        {"name": "b3", "headend": "zz", "to": "d"},
    ]}
    code, reply = _post(url, json.dumps(body).encode())
    try:
        assert code == 200, reply
        assert [p["name"] for p in reply["installed"]] == ["b1", "b2"]
        assert [(r["name"], r["status"]) for r in reply["refused"]] == [("b3", 422)]
        rules = in_node("r1", "ip -6 rule").stdout
        assert "dport 7001" in rules
        routes = cpn("dataplane", "show", "r1").stdout
        assert "2001:db8:3::/64" in routes and "encap seg6" in routes
        assert {"b1", "b2"} <= set(policies())
    finally:
        for name in ("b1", "b2"):
            cpn("policy", "del", name, check=False)
    assert "dport 7001" not in in_node("r1", "ip -6 rule").stdout


def test_controller_restart_keeps_forwarding_and_takes_over_what_is_installed(diamond, tmp_path):
    """A runtime policy steers a 1,000 packets/s flow; the controller is replaced mid-flow."""
    cpn("policy", "add", "keep", "--headend", "a", "--to", COMPUTE_D.name, "--waypoint", "c")
    before = cpn("dataplane", "show", "r1").stdout
    try:
        report = measure_flow(netns_popen, CLIENT_A.name, COMPUTE_D.name, str(COMPUTE_D.address), rate_pps=1000,
                              duration_s=3.0, workdir=str(tmp_path), port=PORT,
                              event=lambda: cpn("controller", "restart", timeout=120).stdout.strip(),
                              event_at_s=1.0)
        print(f"\ncontroller restart under 1000 pps: {report['event']['result']}; lost {report['lost']} of "
              f"{report['sent']}, gaps {report['gaps']}")
        assert report["lost"] == 0, report
        state = status()["controller"]
        assert state["adopted"] and not state["errors"], state
        assert "keep" in policies(), "the runtime policy was taken over"
        assert cpn("dataplane", "show", "r1").stdout == before, "the restart changed the data plane"
    finally:
        cpn("policy", "del", "keep", check=False)
