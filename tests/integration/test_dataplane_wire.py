"""Every SRv6 behaviour of the running data plane (kernel seg6 or cpn's eBPF), proven on the wire.

One diamond network for the module. Each test sends real packets, captures them with tcpdump
on router ingress interfaces (inbound only) or receives them with sockets in the hosts, decodes
them with scapy or cpn's own decoders, and prints what it measured (``pytest -s`` shows it):

* the SRH at every router of a policy and of a 3-SID list (Segments Left and destination match);
* End.X takes its named adjacency, also against the IGP;
* End.B6.Encaps pushes the bound list and advances the inner SRH;
* IOAM traces are filled at every router (telemetry's per-link delays, and a 4-router probe);
* the hop limit drops once per forwarding router, and ICMPv6 Time Exceeded comes from the right one;
* TCP (iperf3) through an SR policy: the WAN MTU carries the outer header.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import time
import urllib.request

import pytest
from scapy.all import UDP, IPv6, IPv6ExtHdrSegmentRouting, TCP, rdpcap

from controllers.southbound.netns import socket_in
from cpn_net.baseline import interface_plan, site_graph
from cpn_net.emulation.manifest import RUN_DIR
from cpn_net.emulation.plan import build_plan
from cpn_net.model import load_topology
from cpn_net.srv6.igp import Igp
from cpn_net.srv6.policy import SRPolicy, compile_policy
from cpn_net.srv6.segments import SegmentList
from cpn_net.srv6.sids import Behaviour, binding_sid, end_dt6_sid, end_sid, end_x_sid, parse_sid
from cpn_net.srv6.srh import SegmentRoutingHeader
from cpn_net.telemetry.ioam import build_trace_option, node_timestamp_ns, parse_hop_by_hop, trace_bit
from cpn_net.tools.measure import measure_flow, netns_popen

from .conftest import DIAMOND, cpn, in_node, status, wait_until

pytestmark = pytest.mark.integration

TOPOLOGY = load_topology(DIAMOND)
PLAN = build_plan(TOPOLOGY)
SITE_ID = {site.name: site.id for site in TOPOLOGY.sites}
ROUTER = {site: f"r{sid}" for site, sid in SITE_ID.items()}
CLIENT_A, CLIENT_B = TOPOLOGY.site("a").clients[0], TOPOLOGY.site("b").clients[0]
COMPUTE_B, COMPUTE_D = TOPOLOGY.site("b").compute[0], TOPOLOGY.site("d").compute[0]
MAIN_TABLE = 254
LOCATORS = ipaddress.IPv6Network("fcbb:bb00::/32")
PORT = 5998  # test_srv6 uses 5999; telemetry probes 9999
IPERF_PORT = 5211

DATAPLANES = ("bpf", "kernel")


def tunnel_hop_limits(dataplane: str, n: int, routers: int) -> dict:
    """What each data plane does to the hop limit of a packet sent with ``n`` over a policy path of
    ``routers`` routers (headend, transit SR nodes, decapsulating router).

    * bpf: the headend routes the plain packet (n - 1) before its tc egress program pushes an
      outer header that inherits that hop limit, as seg6 does (n - 1 on the wire, as with seg6);
      transit routers forward the outer header only; the decapsulating router routes the inner
      packet again (n - 2 at the host, one less than seg6). The one difference a sender sees: with
      1 left the headend drops the plain packet and says so (seg6 encapsulates first and tells itself).
    * kernel seg6: the lwtunnel encapsulates before forwarding and the outer header inherits the
      inner hop limit (``seg6_do_srh_encap``); every router up to End.DX6 forwards the outer
      header; End.DX6 forwards the untouched inner packet (n - 1 at the host). A Time Exceeded
      inside the tunnel goes to the outer source, the headend itself: the sender hears nothing.

    Returns ``{"host", "inner_in_tunnel", "outer_first" (None: the data plane's own), "errors":
    {hop limit: router index on the path or None (no error reaches the sender)}, "reach"}``.
    """
    if dataplane == "bpf":
        return {"host": n - 2, "inner_in_tunnel": n - 1, "outer_first": n - 1,
                "errors": {1: 0, **{t: None for t in range(2, routers)}}, "reach": routers}
    return {"host": n - 1, "inner_in_tunnel": n, "outer_first": n - 1,
            "errors": {t: None for t in range(1, routers)}, "reach": routers}


def router_addresses(router: str) -> set[str]:
    return {a.split("/")[0] for i in PLAN.node(router).interfaces for a in i.addresses}


def host_intf(host: str) -> str:
    return PLAN.node(host).interfaces[0].name


def ingress(site: str, from_site: str) -> tuple[str, str]:
    """(router, interface) where ``site``'s router receives from ``from_site``."""
    link = PLAN.wan_link(site, from_site)
    return (link.router_a, link.intf_a) if link.site_a == site else (link.router_b, link.intf_b)


@pytest.fixture(scope="module")
def dataplane(diamond) -> str:
    mode = diamond.get("dataplane")
    assert mode in DATAPLANES, f"unknown SRv6 data plane {mode!r} in cpn status"
    print(f"\nSRv6 data plane: {mode}")
    return mode


def policies() -> dict:
    return {p["name"]: p for p in json.loads(cpn("policy", "list", "--json").stdout)}


@pytest.fixture(scope="module")
def long_policy(diamond):
    """Policy a -> k2-1 over a > c > d > b, the longest path of the diamond (the IGP goes a > b).

    No diamond path needs more than 2 SIDs from the controller (an End.X SID and the final
    End.DX6 cover any 3 links); 3-SID SRHs are sent by hosts in the tests below.
    """
    cpn("policy", "add", "wire-long", "--headend", "a", "--to", COMPUTE_B.name, "--waypoint", "c",
        "--waypoint", "d")
    try:
        policy = policies()["wire-long"]
        assert policy["path"] == ["a", "c", "d", "b"], policy
        assert len(policy["segments"]) >= 2, policy
        yield policy
    finally:
        cpn("policy", "del", "wire-long", check=False)


def expected_at_ingress(path: list[str], segments: list[str]) -> dict[str, tuple[int, str]]:
    """{site: (Segments Left, destination)} of a packet arriving at each router of ``path`` after the first.

    A router whose own End / End.X SID is active advances the list; any other forwards on the IGP.
    """
    out, active = {}, 0
    for site in path[1:]:
        out[site] = (len(segments) - 1 - active, segments[active])
        sid = parse_sid(segments[active]) if ipaddress.IPv6Address(segments[active]) in LOCATORS else None
        if sid is not None and sid.site_id == SITE_ID[site] and sid.behaviour in (Behaviour.END, Behaviour.END_X):
            active += 1
    return out


# ----------------------------------------------------------------------------------- helpers
class Capture:
    """tcpdump of packets *received* on one interface of a node (``-Q in``), stopped by PID."""

    def __init__(self, node: str, intf: str, directory: str, name: str, *, count: int = 0,
                 snaplen: int = 0, expr: str = "ip6") -> None:
        self.name = name
        self.path = os.path.join(directory, f"{name}.pcap")
        argv = ["ip", "netns", "exec", f"cpn-{node}", "tcpdump", "-i", intf, "-Q", "in", "-U", "-n", "-w", self.path]
        if count:
            argv += ["-c", str(count)]
        if snaplen:
            argv += ["-s", str(snaplen)]
        self.proc = subprocess.Popen(argv + expr.split(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(self._listening, 10, f"tcpdump listening on {node} {intf}")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"tcpdump exited: {self.proc.stderr.read().decode()}")
        return b"listening on" in self.proc.stderr.readline()

    def packets(self, select=None, expected: int = 0) -> list:
        """Stop once ``expected`` selected packets are in (or after 5 s) and return the selected ones."""
        select = select or (lambda packets: packets)
        if expected:
            try:
                wait_until(lambda: len(select(self._read())) >= expected, 5, f"{self.path}: {expected} packets")
            except AssertionError:
                pass  # the caller asserts the count, with a better message
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        return select(self._read())

    def _read(self) -> list:
        try:
            return list(rdpcap(self.path))
        except (OSError, EOFError):  # not written yet
            return []


def udp_to(port: int):
    """Selector of the test's UDP datagrams (inside an SRv6 encapsulation or not)."""
    return lambda packets: [p for p in packets if UDP in p and p[UDP].dport == port]


class Receiver:
    """A UDP socket inside a host that also reads the hop limit and hop-by-hop options."""

    def __init__(self, host: str, port: int) -> None:
        self.address = str(PLAN.node(host).interfaces[0].addresses[0].split("/")[0])
        self.sock = socket_in(f"cpn-{host}", socket.AF_INET6, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPOPTS, 1)
        self.sock.bind((self.address, port))
        self.got: list[dict] = []

    def collect(self, expected: int, timeout_s: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while len(self.got) < expected and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(2048, 1024)
            except socket.timeout:
                break
            item = {"data": data, "hop_limit": None, "hbh": None}
            for level, kind, value in ancillary:
                if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
                    item["hop_limit"] = int.from_bytes(value[:4], "little")
                elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPOPTS:
                    item["hbh"] = bytes(value)
            self.got.append(item)
        return self.got

    def close(self) -> None:
        self.sock.close()


def send_udp(host: str, destination: str, port: int, count: int, *, segments=(), hop_limit: int | None = None,
             hbh: bytes | None = None, interval_s: float = 0.01) -> None:
    """``count`` datagrams from ``host``; ``segments`` go in an SRH the host's kernel inserts (in travel
    order, the destination is the last segment), ``hbh`` is a hop-by-hop header."""
    sock = socket_in(f"cpn-{host}", socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        if hop_limit is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, hop_limit)
        if hbh is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_HOPOPTS, hbh)
        if segments:
            srh = SegmentRoutingHeader.for_segments([*segments, destination], next_header=17)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RTHDR, srh.to_bytes())
        for seq in range(count):
            sock.sendto(b"cpn-wire %d" % seq, (destination, port))
            time.sleep(interval_s)
    finally:
        sock.close()


def srhs(packet) -> list:
    """The packet's SRHs, outermost first."""
    found, layer = [], packet
    while layer is not None and layer.haslayer(IPv6ExtHdrSegmentRouting):
        layer = layer[IPv6ExtHdrSegmentRouting]
        found.append(layer)
        layer = layer.payload
    return found


def ipv6s(packet) -> list:
    """The packet's IPv6 headers, outermost first."""
    found, layer = [], packet
    while layer is not None and layer.haslayer(IPv6):
        layer = layer[IPv6]
        found.append(layer)
        layer = layer.payload
    return found


def send_flow(directory: str, receiver, address: str, *, rate_pps: int = 200, duration_s: float = 1.0) -> dict:
    return measure_flow(netns_popen, CLIENT_A.name, receiver, address, rate_pps=rate_pps, duration_s=duration_s,
                        workdir=directory, port=PORT)


def router_driver(router: str, dataplane: str):
    """A southbound session for ``router``: the driver the controller uses for this data plane."""
    if dataplane == "bpf":
        from controllers.southbound.bpf import RouterBpf
        return RouterBpf(router, plan=PLAN, run_dir=RUN_DIR)
    from controllers.southbound.netlink import RouterNetlink
    return RouterNetlink(router)


def ping(host: str, address: str, hop_limit: int) -> str:
    return in_node(host, f"ping -6 -n -c 1 -W 3 -t {hop_limit} {address}", check=False).stdout


def time_exceeded_from(output: str) -> str | None:
    found = re.search(r"From (\S+) icmp_seq=\d+ Time exceeded", output)
    return found.group(1) if found else None


# ------------------------------------------------------------------------------------- tests
def test_srh_fields_at_every_router_of_a_policy_and_of_a_3_sid_list(diamond, dataplane, long_policy, tmp_path):
    path, segments = long_policy["path"], long_policy["segments"]
    stops = {site: prev for prev, site in zip(path, path[1:])}
    expected = expected_at_ingress(path, segments)
    print(f"\npolicy {' > '.join(path)}: segments {segments}")
    captures = {site: Capture(*ingress(site, prev), str(tmp_path), f"{site}-from-{prev}")
                for site, prev in stops.items()}
    off_path = Capture(*ingress("b", "a"), str(tmp_path), "b-from-a")
    report = send_flow(str(tmp_path), COMPUTE_B.name, str(COMPUTE_B.address))
    seen = {site: c.packets(udp_to(PORT), report["sent"]) for site, c in captures.items()}
    assert report["received"] == report["sent"] > 0, report
    for site, (segleft, destination) in expected.items():
        packets = seen[site]
        assert len(packets) == report["sent"], f"{site} saw {len(packets)} of {report['sent']}"
        for packet in packets:
            srh = srhs(packet)[0]
            assert (srh.segleft, packet[IPv6].dst) == (segleft, destination), f"at {site}"
            assert [str(a) for a in srh.addresses] == list(reversed(segments)), srh.addresses
            assert srh.lastentry == len(segments) - 1
            assert ipv6s(packet)[1].dst == str(COMPUTE_B.address)  # the inner packet, untouched
        print(f"  {site} (from {stops[site]}): {len(packets)} packets, SL {segleft}, dst {destination}")
    assert off_path.packets(udp_to(PORT)) == [], "the IGP's direct link a-b must carry none"
    print(f"  delivered {report['received']}/{report['sent']}; b-from-a saw 0")

    # Three SIDs (End at c, End.X d->b, the host), in an SRH u1-1's kernel inserts.
    segments = [str(end_sid(SITE_ID["c"])), str(end_x_sid(SITE_ID["d"], SITE_ID["b"])), str(COMPUTE_B.address)]
    expected = expected_at_ingress(path, segments)
    assert [sl for sl, _ in expected.values()] == [2, 1, 0]
    captures = {site: Capture(*ingress(site, prev), str(tmp_path), f"3sid-{site}-from-{prev}")
                for site, prev in stops.items()}
    receiver = Receiver(COMPUTE_B.name, PORT)
    count = 30
    try:
        send_udp(CLIENT_A.name, str(COMPUTE_B.address), PORT, count, segments=segments[:-1])
        got = receiver.collect(count)
    finally:
        receiver.close()
    seen = {site: c.packets(udp_to(PORT), count) for site, c in captures.items()}
    print(f"3-SID list {segments}:")
    for site, (segleft, destination) in expected.items():
        assert len(seen[site]) == count, f"{site} saw {len(seen[site])} of {count}"
        for packet in seen[site]:
            srh = srhs(packet)[0]
            assert (srh.segleft, packet[IPv6].dst) == (segleft, destination), f"at {site}"
            assert [str(a) for a in srh.addresses] == list(reversed(segments))
        print(f"  {site} (from {stops[site]}): {len(seen[site])} packets, SL {segleft}, dst {destination}")
    assert len(got) == count, f"{len(got)} of {count} delivered"
    print(f"  delivered {len(got)}/{count}")


def test_end_x_in_a_policy_takes_its_named_adjacency(diamond, dataplane, long_policy, tmp_path):
    """The policy a > c > d > b carries an End.X SID at c towards d; c's IGP towards b goes through a."""
    segments = long_policy["segments"]
    kinds = [parse_sid(s).behaviour for s in segments]
    assert Behaviour.END_X in kinds, f"expected an End.X SID in {segments}"
    end_x = parse_sid(segments[kinds.index(Behaviour.END_X)])
    at = next(site for site, i in SITE_ID.items() if i == end_x.site_id)
    towards = next(site for site, i in SITE_ID.items() if i == end_x.neighbour_id)
    after = parse_sid(segments[kinds.index(Behaviour.END_X) + 1])
    after_site = next(site for site, i in SITE_ID.items() if i == after.site_id)
    igp_hop = Igp(site_graph(PLAN)).next_hop(at, after_site)
    assert igp_hop != towards, f"the IGP at {at} towards {after_site} already goes to {towards}: no proof"
    print(f"\npolicy {' > '.join(long_policy['path'])}: End.X {end_x.address} at {at} towards {towards}; "
          f"{at}'s IGP towards {after_site} goes to {igp_hop}")
    names = {f"{towards}-from-{at}": ingress(towards, at), f"{igp_hop}-from-{at}": ingress(igp_hop, at)}
    captures = {name: Capture(*where, str(tmp_path), name) for name, where in names.items()}
    report = send_flow(str(tmp_path), COMPUTE_B.name, str(COMPUTE_B.address))
    taken, igp_way = (c.packets(udp_to(PORT), report["sent"] if name.startswith(towards) else 0)
                      for name, c in captures.items())
    print(f"  {towards}-from-{at}: {len(taken)}, {igp_hop}-from-{at}: {len(igp_way)}; "
          f"delivered {report['received']}/{report['sent']}")
    assert report["received"] == report["sent"] > 0, report
    assert len(taken) == report["sent"], "End.X must send every packet over its own adjacency"
    assert {p[IPv6].dst for p in taken} == {str(after.address)} and {srhs(p)[0].segleft for p in taken} == {
        len(segments) - 2 - kinds.index(Behaviour.END_X)}
    assert igp_way == [], f"{at}'s IGP next hop {igp_hop} must carry none of the flow"


def test_end_x_overrides_the_igp(diamond, dataplane, tmp_path):
    """u2-1 sends to k4-1 through End.X a->c: a's IGP towards d goes back to b; End.X must not."""
    end_x = str(end_x_sid(SITE_ID["a"], SITE_ID["c"]))
    receiver = Receiver(COMPUTE_D.name, PORT)
    captures = {name: Capture(*where, str(tmp_path), name) for name, where in
                {"a-from-b": ingress("a", "b"), "c-from-a": ingress("c", "a"), "b-from-a": ingress("b", "a"),
                 "d-from-c": ingress("d", "c"), "d-from-b": ingress("d", "b")}.items()}
    count = 30
    try:
        send_udp(CLIENT_B.name, str(COMPUTE_D.address), PORT, count, segments=[end_x])
        got = receiver.collect(count)
    finally:
        receiver.close()
    seen = {name: c.packets(udp_to(PORT), count if name in ("a-from-b", "c-from-a", "d-from-c") else 0)
            for name, c in captures.items()}
    print(f"\nEnd.X {end_x} against the IGP: " + ", ".join(f"{n}: {len(p)}" for n, p in seen.items())
          + f"; delivered {len(got)}/{count}")
    assert len(seen["a-from-b"]) == count and {p[IPv6].dst for p in seen["a-from-b"]} == {end_x}
    assert len(seen["c-from-a"]) == count, "End.X a->c must send every packet over a-c"
    for packet in seen["c-from-a"]:
        assert packet[IPv6].dst == str(COMPUTE_D.address) and srhs(packet)[0].segleft == 0
    assert seen["b-from-a"] == [], "a's IGP route towards d (via b) must not be used"
    assert len(seen["d-from-c"]) == count and seen["d-from-b"] == []
    assert len(got) == count


def test_end_b6_encaps_pushes_the_bound_list(diamond, dataplane, tmp_path):
    """A binding SID at c bound to <End d, End.DT6 b>; u1-1 sends to k2-1 through it."""
    graph, interfaces = site_graph(PLAN), interface_plan(PLAN)
    bsid = binding_sid(SITE_ID["c"], 1)
    bound = [str(end_sid(SITE_ID["d"])), str(end_dt6_sid(SITE_ID["b"], MAIN_TABLE))]
    compiled = compile_policy(graph, SRPolicy("wire-bsid", "c", None, SegmentList.of(*bound), binding_sid=bsid),
                              interfaces)
    (spec,) = [r for r in compiled.routes if r["encap"]["type"] == "seg6local"]
    assert spec["encap"]["action"] == "End.B6.Encaps"
    driver = router_driver(ROUTER["c"], dataplane)
    driver.route("add", spec)
    count = 30
    try:
        receiver = Receiver(COMPUTE_B.name, PORT)
        captures = {name: Capture(*where, str(tmp_path), name) for name, where in
                    {"c-from-a": ingress("c", "a"), "d-from-c": ingress("d", "c"), "b-from-d": ingress("b", "d"),
                     "b-from-a": ingress("b", "a")}.items()}
        try:
            send_udp(CLIENT_A.name, str(COMPUTE_B.address), PORT, count, segments=[str(bsid)])
            got = receiver.collect(count)
        finally:
            receiver.close()
        seen = {name: c.packets(udp_to(PORT), count if name != "b-from-a" else 0) for name, c in captures.items()}
        state = cpn("dataplane", "show", ROUTER["c"]).stdout
    finally:
        driver.route("del", spec)
        driver.close()
    print(f"\nbinding SID {bsid} at c -> {bound}: " + ", ".join(f"{n}: {len(p)}" for n, p in seen.items())
          + f"; delivered {len(got)}/{count}")
    assert str(bsid) in state and "End.B6.Encaps" in state, state
    inner_list = [str(COMPUTE_B.address), str(bsid)]  # SRH order, as the host sent it
    # Before the binding router: the host's own SRH, active segment the binding SID.
    assert len(seen["c-from-a"]) == count
    for packet in seen["c-from-a"]:
        assert len(ipv6s(packet)) == 1 and packet[IPv6].dst == str(bsid)
        assert srhs(packet)[0].segleft == 1 and [str(a) for a in srhs(packet)[0].addresses] == inner_list
    # After it: the pushed outer header carries the bound list; the inner SRH advanced to SL 0.
    for name, segleft in (("d-from-c", 1), ("b-from-d", 0)):
        assert len(seen[name]) == count, f"{name} saw {len(seen[name])} of {count}"
        for packet in seen[name]:
            outer, inner = ipv6s(packet)[:2]
            outer_srh, inner_srh = srhs(packet)[:2]
            assert outer.src in router_addresses(ROUTER["c"]), outer.src
            assert [str(a) for a in outer_srh.addresses] == list(reversed(bound))
            assert outer_srh.segleft == segleft and outer.dst == bound[len(bound) - 1 - segleft]
            assert outer_srh.nh == 41
            assert inner.dst == str(COMPUTE_B.address) and inner.src == str(CLIENT_A.address)
            assert inner_srh.segleft == 0 and [str(a) for a in inner_srh.addresses] == inner_list
    sample = seen["d-from-c"][0]
    print(f"  at d: outer {ipv6s(sample)[0].src} -> {ipv6s(sample)[0].dst} SL {srhs(sample)[0].segleft}, "
          f"inner -> {ipv6s(sample)[1].dst} SL {srhs(sample)[1].segleft}")
    assert seen["b-from-a"] == []
    assert len(got) == count, f"End.DT6 at b delivered {len(got)} of {count}"


def test_ioam_delay_of_every_link_direction(diamond, dataplane):
    """Telemetry probes cross each link through an End.X SID; routers fill their IOAM trace entries."""
    url = diamond["controller"]["rest"] + "/telemetry"

    def view():
        with urllib.request.urlopen(url, timeout=10) as response:
            links = json.load(response)["links"]
        ready = all(link["delay"] and link["delay"]["samples"] >= 20 for link in links)
        return links if ready and len(links) == 2 * len(PLAN.wan_links) else None

    links = wait_until(view, 60, "delay samples on every link direction", interval_s=1.0)
    print()
    for link in links:
        print(f"  {link['from']}->{link['to']}: median {link['delay']['delay_ms']} ms over "
              f"{link['delay']['samples']} probes, configured {link['ground_truth']['delay_ms']} ms")
    for link in links:
        error = abs(link["delay"]["delay_ms"] - link["ground_truth"]["delay_ms"])
        assert error <= 1.5, f"{link['link']}: {link['delay']} vs configured {link['ground_truth']}"


def test_ioam_trace_filled_at_every_router_of_a_segment_path(diamond, dataplane):
    """A probe u1-1 -> k2-1 through End c, End.X d->b: one trace entry per router, in path order."""
    path = ["a", "c", "d", "b"]
    segments = [str(end_sid(SITE_ID["c"])), str(end_x_sid(SITE_ID["d"], SITE_ID["b"]))]
    trace_type = trace_bit(0) | trace_bit(2) | trace_bit(3)  # hop limit + node id, timestamp s + µs
    hbh = build_trace_option(namespace_id=123, trace_type=trace_type, n_hops=len(path), next_header=43)
    receiver = Receiver(COMPUTE_B.name, PORT)
    count = 10
    try:
        send_udp(CLIENT_A.name, str(COMPUTE_B.address), PORT, count, segments=segments, hbh=hbh, hop_limit=64,
                 interval_s=0.05)
        got = receiver.collect(count)
    finally:
        receiver.close()
    assert len(got) == count, f"{len(got)} of {count} probes arrived"
    hops = {i: [] for i in range(len(path) - 1)}
    for item in got:
        assert item["hbh"], "the probe arrived without its hop-by-hop header"
        nodes = parse_hop_by_hop(item["hbh"]).nodes
        assert [n.node_id for n in nodes] == [SITE_ID[s] for s in path], nodes
        assert [n.hop_limit for n in nodes] == [63 - i for i in range(len(path))], nodes
        stamps = [node_timestamp_ns(n) for n in nodes]
        for i in range(len(path) - 1):
            hops[i].append((stamps[i + 1] - stamps[i]) / 1e6)
    print(f"\nIOAM trace over {' > '.join(path)}: node ids {[n.node_id for n in nodes]}, "
          f"hop limits {[n.hop_limit for n in nodes]}")
    for i, samples in hops.items():
        link = PLAN.wan_link(path[i], path[i + 1])
        median = statistics.median(samples)
        print(f"  {path[i]}->{path[i + 1]}: median {median:.3f} ms (configured {link.delay_ms} ms)")
        assert median >= link.delay_ms - 0.5, "timestamps must show at least the link's configured delay"
        assert min(samples) > 0


def test_hop_limit_drops_once_per_forwarding_router(diamond, dataplane, long_policy, tmp_path):
    # The IGP path a > b > d: three routers forward the plain packet.
    n = 20
    receiver = Receiver(COMPUTE_D.name, PORT)
    try:
        send_udp(CLIENT_A.name, str(COMPUTE_D.address), PORT, 5, hop_limit=n)
        got = receiver.collect(5)
    finally:
        receiver.close()
    assert len(got) == 5 and {g["hop_limit"] for g in got} == {n - 3}, got
    print(f"\nIGP path a > b > d: sent hop limit {n}, received {got[0]['hop_limit']}")

    # The policy a > c > d > b: the outer header drops by one per router; the inner packet
    # by one per router that forwards it as plain IPv6 (see tunnel_hop_limits).
    path = long_policy["path"]
    model = tunnel_hop_limits(dataplane, n, len(path))
    stops = {site: prev for prev, site in zip(path, path[1:])}
    captures = {site: Capture(*ingress(site, prev), str(tmp_path), f"hl-{site}") for site, prev in stops.items()}
    receiver = Receiver(COMPUTE_B.name, PORT)
    try:
        send_udp(CLIENT_A.name, str(COMPUTE_B.address), PORT, 5, hop_limit=n)
        got = receiver.collect(5)
    finally:
        receiver.close()
    seen = {site: c.packets(udp_to(PORT), 5) for site, c in captures.items()}
    outer = {site: {ipv6s(p)[0].hlim for p in packets} for site, packets in seen.items()}
    inner = {site: {ipv6s(p)[1].hlim for p in packets} for site, packets in seen.items()}
    print(f"policy {' > '.join(path)}: sent {n}, received {[g['hop_limit'] for g in got]}; hop limit at "
          f"{'/'.join(stops)} ingress: outer {[sorted(outer[s]) for s in stops]}, "
          f"inner {[sorted(inner[s]) for s in stops]}")
    assert len(got) == 5 and {g["hop_limit"] for g in got} == {model["host"]}, got
    assert all(len(seen[s]) == 5 for s in stops), {s: len(p) for s, p in seen.items()}
    assert all(len(v) == 1 for v in outer.values()), outer
    first = model["outer_first"] if model["outer_first"] is not None else next(iter(outer[path[1]]))
    assert [next(iter(outer[s])) for s in stops] == [first - i for i in range(len(stops))], outer
    assert all(v == {model["inner_in_tunnel"]} for v in inner.values()), f"inner hop limit moved in transit: {inner}"

    # ICMPv6 Time Exceeded from the right router: plain IGP path, then the policy path.
    igp_path = ["a", "b", "d"]
    for t, site in enumerate(igp_path, start=1):
        source = time_exceeded_from(ping(CLIENT_A.name, str(COMPUTE_D.address), t))
        print(f"ping k4-1 -t {t}: Time Exceeded from {source} ({ROUTER[site]} expected)")
        assert source in router_addresses(ROUTER[site]), f"-t {t}: Time Exceeded from {source}, not {ROUTER[site]}"
    assert " 0% packet loss" in ping(CLIENT_A.name, str(COMPUTE_D.address), len(igp_path) + 1)
    for t, index in model["errors"].items():
        output = ping(CLIENT_A.name, str(COMPUTE_B.address), t)
        source = time_exceeded_from(output)
        router = ROUTER[path[index]] if index is not None else None
        print(f"ping k2-1 (policy) -t {t}: Time Exceeded from {source} ({router or 'none at the sender'} expected)")
        if router is None:
            assert source is None and " 100% packet loss" in output, output
        else:
            assert source in router_addresses(router), f"-t {t}: Time Exceeded from {source}, not {router}"
    assert " 0% packet loss" in ping(CLIENT_A.name, str(COMPUTE_B.address), model["reach"])


def test_tcp_through_an_sr_policy(diamond, dataplane, long_policy, tmp_path):
    segments = long_policy["segments"]
    mtu = int(in_node(ROUTER["a"], f"cat /sys/class/net/{ingress('a', 'c')[1]}/mtu").stdout)
    host_mtu = int(in_node(CLIENT_A.name, f"cat /sys/class/net/{host_intf(CLIENT_A.name)}/mtu").stdout)
    assert mtu >= host_mtu + 40 + 8 + 16 * len(segments), "the WAN MTU must carry the outer header"
    server = netns_popen(COMPUTE_B.name, ["iperf3", "-s", "-1", "-p", str(IPERF_PORT)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: f":{IPERF_PORT} " in in_node(COMPUTE_B.name, "ss -ltnH").stdout, 10,
                   "iperf3 server listening")
        capture = Capture(*ingress("d", "c"), str(tmp_path), "tcp-d-from-c", count=50, snaplen=256,
                          expr=f"ip6 and not port {PORT}")
        proc = in_node(CLIENT_A.name, f"iperf3 -c {COMPUTE_B.address} -p {IPERF_PORT} -t 3 -J", check=False,
                       timeout=60)
        packets = capture.packets(lambda ps: [p for p in ps if TCP in p and IPERF_PORT in (p[TCP].dport,)], 20)
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(timeout=10)
    result = json.loads(proc.stdout)
    assert "error" not in result, result.get("error")
    received = result["end"]["sum_received"]["bits_per_second"]
    retransmits = result["end"]["sum_sent"].get("retransmits")
    intervals = [i["sum"]["bytes"] for i in result["intervals"]]
    print(f"\niperf3 TCP u1-1 -> k2-1 over a > c > d > b (WAN MTU {mtu}, host MTU {host_mtu}): "
          f"{received / 1e6:.1f} Mbit/s received, {retransmits} retransmits, "
          f"bytes per interval {intervals}; {len(packets)} SRv6 TCP packets captured at d")
    assert received > 5e6
    assert intervals and all(b > 0 for b in intervals), "no interval may stall"
    assert packets, "the TCP flow must ride the policy's SRv6 path"
    for packet in packets:
        assert [str(a) for a in srhs(packet)[0].addresses] == list(reversed(segments))
        assert ipv6s(packet)[1].dst == str(COMPUTE_B.address)
