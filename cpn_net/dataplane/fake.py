"""The eBPF data plane as a pure model, checkable against the Linux seg6 reference. No kernel, no root.

:class:`BpfFakeRouter` answers the calls of :class:`~cpn_net.srv6.fake_netlink.FakeRouter`
(``route(command, **spec)``, ``rule(command, **spec)``, ``receive(packet, iif)``,
``set_carrier``), so a :class:`~cpn_net.srv6.fake_netlink.FakeNetwork` can hold it
instead: :class:`BpfFakeNetwork` is that network. Inside each router:

* the real driver, :class:`controllers.southbound.bpf.RouterBpf`, turns the specs into
  map entries (:class:`FakeMap`, :class:`FakeLpmMap` stand in for the pinned maps)
  and plain kernel routes and rules with scaled metrics;
* the kernel's routing is a plain :class:`~cpn_net.srv6.fake_netlink.FakeRouter`
  (``marks=True``: it takes the driver's ``fwmark`` and blackhole rules) behind
  :class:`KernelSession`, shaped like :class:`~controllers.southbound.netlink.RouterNetlink`;
* :meth:`BpfFakeRouter.receive` does, in Python, what ``cpn_net/dataplane/bpf/srv6.bpf.c``
  does: ``cpn_sid`` at ingress (:meth:`BpfFakeRouter.ingress`, up to
  :data:`MAX_PASSES` local SIDs), then the stack's forwarding with the mark the
  program set (rules, tables, hop limit), then ``cpn_encap`` at egress
  (:meth:`BpfFakeRouter.egress`: prefix pre-filter, the FIB lookup with the same
  input interface, addresses, ports and mark, the route's metric as the
  ``cpn_encaps`` key), redirected through egress again as the program does.

Everything the programs read comes from the maps as bytes, so a wrong entry the
driver wrote shows up as a wrong packet.

Examples
--------
>>> import networkx as nx
>>> from cpn_net.srv6.interfaces import InterfacePlan
>>> from cpn_net.srv6.packet import build_udp
>>> G = nx.Graph()
>>> G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2})])
>>> G.add_edge("a", "b", number=1, delay_ms=1.0)
>>> net = BpfFakeNetwork.with_baseline(G, InterfacePlan.by_link_number(G), hosts={"b": [("compute", 1)]})
>>> walk = net.send(build_udp("2001:db8:1::1:1", "2001:db8:2::2:1", 1, 2), "a")
>>> walk.result, walk.sites, str(walk.delivered_to)
('delivered', ('a', 'b'), '2001:db8:2::2:1')
>>> from cpn_net.srv6.policy import SRPolicy, compile_policy
>>> from cpn_net.srv6.segments import SegmentList
>>> from cpn_net.srv6.sids import end_dx6_sid
>>> net.install(compile_policy(G, SRPolicy("p", "a", "2001:db8:2::2:1/128",
...                                        SegmentList.of(end_dx6_sid(2, "compute", 1))), net.plan))
>>> walk = net.send(build_udp("2001:db8:1::1:1", "2001:db8:2::2:1", 1, 2), "a")
>>> walk.hops[0].outcome.steps, walk.hops[1].outcome.steps
(('H.Encaps',), ('End.DX6',))
>>> net.routers["a"].driver.stats()["h_encaps"]
1
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Hashable, Mapping

import networkx as nx

from controllers.southbound.bpf import MAP_SIZES, RouterBpf
from cpn_net.dataplane import records as R
from cpn_net.emulation.plan import LAN_MTU, ROLE_ROUTER, WAN_MTU, Interface, NetworkPlan, Node, WanLink, mac_address
from cpn_net.model import addressing
from cpn_net.srv6.errors import FakeNetlinkError
from cpn_net.srv6.fake_netlink import BLACKHOLE, FakeNetwork, FakeRouter, Outcome
from cpn_net.srv6.igp import site_id
from cpn_net.srv6.interfaces import InterfacePlan
from cpn_net.srv6.packet import PROTO_TCP, PROTO_UDP, FlowKey

MAX_PASSES = 4  # srv6.bpf.c: local SIDs one packet may visit at one router
#: Times ``cpn_encap`` may redirect a packet to its own egress before the stack gives up
#: (the kernel's transmit recursion limit, XMIT_RECURSION_LIMIT).
MAX_REDIRECTS = 8
PROTO_SCTP = 132
NEXT_HEADER_HOP = 0
NEXT_HEADER_ROUTING = 43
NEXT_HEADER_IPV6 = 41
SRH_TYPE = 4
SID_DELIVERING = 1
IPV6_HEADER = 40
_STEP = {R.Action.END: "End", R.Action.END_X: "End.X", R.Action.END_DX6: "End.DX6", R.Action.END_DT6: "End.DT6",
         R.Action.END_B6_ENCAPS: "End.B6.Encaps"}
_STAT = {name: index for index, name in enumerate(R.STAT_NAMES)}


# ---------------------------------------------------------------------------- maps
class FakeMap:
    """A BPF hash (or array) map in memory: bytes keys, bytes values, the calls the driver makes.

    >>> m = FakeMap(); m.update(b"k", b"v"); m.lookup(b"k"), m.delete(b"k"), m.lookup(b"k")
    (b'v', True, None)
    """

    def __init__(self) -> None:
        self.entries: dict[bytes, bytes] = {}

    def update(self, key, value) -> None:
        self.entries[bytes(key)] = bytes(value)

    def delete(self, key, missing_ok: bool = True) -> bool:
        return self.entries.pop(bytes(key), None) is not None

    def lookup(self, key, value_size: int | None = None) -> bytes | None:
        return self.entries.get(bytes(key))

    def items(self) -> list[tuple[bytes, bytes]]:
        return list(self.entries.items())

    def close(self) -> None:
        pass


class FakeLpmMap(FakeMap):
    """A BPF LPM trie: updates and deletes by exact ``struct lpm_key``, lookups by longest prefix.

    >>> m = FakeLpmMap(); m.update(R.prefix_key("2001:db8:3::/64"), R.u32_key(1))
    >>> m.lookup(R.prefix_key("2001:db8:3::9/128")) == R.u32_key(1), m.lookup(R.prefix_key("2001:db8:4::9/128"))
    (True, None)
    """

    def lookup(self, key, value_size: int | None = None) -> bytes | None:
        key = bytes(key)
        (length,) = struct.unpack_from("<I", key)
        address = int.from_bytes(key[4:20], "big")
        best, best_len = None, -1
        for stored, value in self.entries.items():
            (prefix_len,) = struct.unpack_from("<I", stored)
            if best_len < prefix_len <= length:
                shift = 128 - prefix_len
                if address >> shift == int.from_bytes(stored[4:20], "big") >> shift:
                    best, best_len = value, prefix_len
        return best


def fake_maps() -> dict:
    """One router's maps, named as the programs name them (``cpn_prefixes`` is an LPM trie)."""
    return {name: FakeLpmMap() if name == "cpn_prefixes" else FakeMap() for name in MAP_SIZES}


# -------------------------------------------------------------------------- kernel
class KernelSession:
    """The driver's netlink session onto a plain FakeRouter: dict specs in, ``**spec`` out.

    Like :class:`~controllers.southbound.netlink.RouterNetlink`: rules get ``family``
    AF_INET6, and deleting what is absent (ESRCH) is not an error.
    """

    def __init__(self, router: FakeRouter) -> None:
        self.router = router

    def route(self, op: str, spec: dict) -> None:
        self._apply(self.router.route, op, dict(spec))

    def rule(self, op: str, spec: dict) -> None:
        self._apply(self.router.rule, op, dict(spec, family=socket.AF_INET6))

    @staticmethod
    def _apply(call, op: str, spec: dict) -> None:
        try:
            call(op, **spec)
        except FakeNetlinkError as err:
            if op == "del" and "ESRCH" in str(err):
                return
            raise

    def routes(self, table: int | None = None) -> list[dict]:
        """Routes as :meth:`RouterNetlink.routes` lists them (metric = the kernel metric)."""
        tables = {r.table for r in self.router._routes.values()} if table is None else {table}
        return [{"dst": str(r.dst), "gateway": None if r.gateway is None else str(r.gateway), "dev": r.oif,
                 "metric": r.priority, "table": r.table, "encap": None}
                for t in sorted(tables) for r in self.router.routes(t)]

    def carrier(self, name: str) -> bool:
        return name not in self.router.linkdown

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------- plan
def plan_of_graph(G: nx.Graph, interfaces: InterfacePlan, name: str = "graph") -> NetworkPlan:
    """What :class:`RouterBpf` reads from a :class:`NetworkPlan` (routers and WAN links), from a graph.

    Same names and addresses as :func:`cpn_net.emulation.plan.build_plan` gives a topology
    (checked by the tests), for graphs that never were a topology file.

    >>> G = nx.Graph(); G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2})]); G.add_edge("a", "b", number=4)
    >>> plan = plan_of_graph(G, InterfacePlan.by_link_number(G))
    >>> [i.addresses for i in plan.node("r1").interfaces], plan.wan_links[0].address_b
    ([('2001:db8:1::1/64',), ('fd00:4::1/64',)], 'fd00:4::2')
    """
    wan: dict[str, list[Interface]] = {}
    links = []
    for u, v, attrs in sorted(G.edges(data=True), key=lambda e: e[2]["number"]):
        a, b = sorted((u, v), key=lambda s: site_id(G, s))
        number = attrs["number"]
        element = addressing.link_node_name(site_id(G, a), site_id(G, b))
        ends = []
        for side, (site, other) in enumerate(((a, b), (b, a))):
            sid = site_id(G, site)
            ifname = interfaces.wan_ifname(site, other)
            address = addressing.wan_address(number, sid)
            k = len(wan.setdefault(site, [])) + 1  # WAN interfaces in link-number order, as build_plan
            wan[site].append(Interface(
                addressing.router_name(sid), ifname, mac_address(sid, ROLE_ROUTER, k), WAN_MTU,
                (f"{address}/{addressing.wan_prefix(number).prefixlen}",), element, f"{element}-eth{side}"))
            ends.append((site, addressing.router_name(sid), ifname, f"{element}-eth{side}", str(address)))
        (sa, ra, ia, ea, aa), (sb, rb, ib, eb, ab) = ends
        links.append(WanLink(number, element, sa, sb, ra, rb, ia, ib, ea, eb, aa, ab,
                             float(attrs.get("delay_ms", 1.0)), 0.0, 0.0, attrs.get("rate_mbps")))
    nodes = []
    for site in sorted(G.nodes, key=lambda s: site_id(G, s)):
        sid = site_id(G, site)
        router = addressing.router_name(sid)
        lan = Interface(router, interfaces.lan_ifname(site), mac_address(sid, ROLE_ROUTER, 0), LAN_MTU,
                        (f"{addressing.router_lan_address(sid)}/{addressing.site_lan(sid).prefixlen}",),
                        addressing.switch_name(sid), f"{addressing.switch_name(sid)}-eth1", port=1)
        nodes.append(Node(router, "router", site, sid, (lan, *wan.get(site, ()))))
    return NetworkPlan(name, tuple(nodes), tuple(links))


# -------------------------------------------------------------------------- router
@dataclass(frozen=True)
class _Verdict:
    """What ``cpn_sid`` left: the packet and its mark, or a drop (``reason`` = the counter)."""

    packet: bytes
    mark: int
    steps: tuple[str, ...]
    drop: str | None = None


class BpfFakeRouter:
    """One router of the eBPF data plane: the real driver, fake maps, the kernel's routing, the programs in Python.

    Parameters
    ----------
    kernel : FakeRouter
        The kernel's routing state (interfaces, routes, rules); built with ``marks=True``.
    plan : NetworkPlan
        What the driver reads about the router (its interfaces, its WAN neighbours).
    maps : dict, optional
        ``{map name: map}``; fresh :func:`fake_maps` by default.
    """

    def __init__(self, kernel: FakeRouter, plan, *, maps: Mapping | None = None) -> None:
        self.kernel = kernel
        self.name = kernel.name
        self.maps = dict(maps) if maps is not None else fake_maps()
        self.driver = RouterBpf(self.name, plan=plan, run_dir="/nonexistent", kernel=KernelSession(kernel),
                                maps=self.maps)

    @classmethod
    def for_site(cls, G: nx.Graph, site: Hashable, interfaces: InterfacePlan, *,
                 plan: NetworkPlan | None = None) -> "BpfFakeRouter":
        """The router of ``site``; ``plan`` defaults to :func:`plan_of_graph` of ``G``."""
        kernel = FakeRouter.for_site(G, site, interfaces, marks=True)
        return cls(kernel, plan if plan is not None else plan_of_graph(G, interfaces))

    # ----------------------------------------------------------- FakeRouter's calls
    @property
    def ifnames(self) -> set:
        return self.kernel.ifnames

    @property
    def addresses(self) -> set:
        return self.kernel.addresses

    @property
    def linkdown(self) -> set:
        return self.kernel.linkdown

    def set_carrier(self, ifname: str, up: bool) -> None:
        self.kernel.set_carrier(ifname, up)

    def routes(self, table: int = R.MAIN_TABLE):
        """The kernel's routes of one table (kernel metrics)."""
        return self.kernel.routes(table)

    def rules(self):
        return self.kernel.rules()

    def route(self, command: str, **spec) -> None:
        self.driver.route(command, spec)

    def rule(self, command: str, **spec) -> None:
        self.driver.rule(command, spec)

    def receive(self, packet: bytes, iif: str) -> Outcome:
        """``cpn_sid`` at ``iif``'s ingress, the stack's forwarding, ``cpn_encap`` at the egress."""
        if iif not in self.kernel.ifnames:
            raise FakeNetlinkError(f"{self.name}: packet arrives on unknown interface {iif!r}; "
                                   f"interfaces are {', '.join(sorted(self.kernel.ifnames))}")
        verdict = self.ingress(bytes(packet))
        if verdict.drop is not None:
            return Outcome("drop", verdict.packet, reason=f"cpn_sid: {verdict.drop}", steps=verdict.steps)
        outcome, _route = self.kernel.forward(verdict.packet, iif, mark=verdict.mark, steps=verdict.steps)
        if outcome.action != "forward":
            return outcome
        return self.egress(outcome, iif, verdict.mark)

    # ------------------------------------------------------------------- cpn_sid
    def ingress(self, packet: bytes) -> _Verdict:
        """``cpn_sid``: the local SIDs in ``cpn_sids``, at most :data:`MAX_PASSES` of them."""
        mark, steps = 0, []

        def drop(why: str) -> _Verdict:
            self._count(why)
            return _Verdict(packet, mark, tuple(steps), why)

        for _ in range(MAX_PASSES):
            if len(packet) < IPV6_HEADER:
                break
            raw = self.maps["cpn_sids"].lookup(packet[24:40])
            if raw is None:
                break
            action, flags, _pad, sid_mark, encap_key = struct.unpack("<BBHII", raw[:12])
            if flags & SID_DELIVERING:
                config = self.maps["cpn_config"].lookup(R.u32_key(0))
                if config is not None and struct.unpack("<I", config[:4])[0] and \
                        self.maps["cpn_hosts"].lookup(packet[8:24]) is not None:
                    return drop("drop_boundary")
            layout = _parse(packet)
            if layout is None:
                return drop("drop_error")
            if action in (R.Action.END, R.Action.END_X, R.Action.END_B6_ENCAPS):
                packet, why = _advance(packet, layout)
                if why:
                    return drop(why)
                if action == R.Action.END_B6_ENCAPS:
                    entry = self.maps["cpn_encaps"].lookup(R.u32_key(encap_key))
                    if entry is None:
                        return drop("drop_error")
                    pushed = _encapsulate(packet, entry)
                    if pushed is None:
                        return drop("drop_error")
                    packet = pushed
                    self._count("end_b6_encaps")
                else:
                    self._count("end" if action == R.Action.END else "end_x")
                    if sid_mark:
                        mark = sid_mark
            elif action in (R.Action.END_DX6, R.Action.END_DT6):
                if layout.srh is not None and layout.sl != 0:
                    return drop("drop_segments_left")
                if layout.nexthdr != NEXT_HEADER_IPV6:
                    return drop("drop_not_ipv6_inside")
                packet = packet[layout.after:]
                self._count("end_dx6" if action == R.Action.END_DX6 else "end_dt6")
                mark = sid_mark
            else:
                return drop("drop_error")
            steps.append(_STEP[R.Action(action)])
        return _Verdict(packet, mark, tuple(steps))

    # ----------------------------------------------------------------- cpn_encap
    def egress(self, outcome: Outcome, iif: str, mark: int) -> Outcome:
        """``cpn_encap`` on a forwarded packet: H.Encaps when the FIB's route has a prebuilt header.

        An encapsulated packet is redirected to the same interface's egress, so the
        program runs on it again (up to :data:`MAX_REDIRECTS` times).
        """
        packet, steps = outcome.packet, list(outcome.steps)
        for _ in range(MAX_REDIRECTS + 1):
            if len(packet) < IPV6_HEADER or self.maps["cpn_prefixes"].lookup(
                    struct.pack("<I", 128) + packet[24:40]) is None:
                return dataclasses.replace(outcome, packet=packet, steps=tuple(steps))
            nexthdr = packet[6]
            ports = (None, None)
            if nexthdr in (PROTO_TCP, PROTO_UDP, PROTO_SCTP) and len(packet) >= IPV6_HEADER + 4:
                ports = struct.unpack_from("!HH", packet, IPV6_HEADER)
            key = FlowKey(ipaddress.IPv6Address(packet[8:24]), ipaddress.IPv6Address(packet[24:40]), nexthdr, *ports)
            route = None if key.destination in self.kernel.addresses else \
                self.kernel.lookup(key, iif, mark=mark)  # a local route is no FIB success either
            if route is None or route is BLACKHOLE:
                self._count("fib_miss")
                return dataclasses.replace(outcome, packet=packet, steps=tuple(steps))
            entry = self.maps["cpn_encaps"].lookup(R.u32_key(route.priority & 0xFFFFFFFF))
            if entry is None:
                return dataclasses.replace(outcome, packet=packet, steps=tuple(steps))
            pushed = _encapsulate(packet, entry)
            if pushed is None:
                self._count("drop_error")
                return Outcome("drop", packet, reason="cpn_encap: drop_error (a bad cpn_encaps entry)",
                               steps=tuple(steps))
            packet = pushed
            self._count("h_encaps")
            steps.append("H.Encaps")
        return Outcome("drop", packet, reason=f"cpn_encap: more than {MAX_REDIRECTS} redirects through "
                                              f"{outcome.oif}'s egress", steps=tuple(steps))

    def _count(self, name: str) -> None:
        stats = self.maps["cpn_stats"]
        key = R.u32_key(_STAT[name])
        raw = stats.lookup(key)
        stats.update(key, struct.pack("<Q", (0 if raw is None else struct.unpack("<Q", raw[:8])[0]) + 1))


@dataclass(frozen=True)
class _Layout:
    """``struct layout`` of srv6.bpf.c, offsets from the start of the IPv6 header."""

    srh: int | None
    after: int
    nexthdr: int
    sl: int = 0
    last_entry: int = 0


def _parse(packet: bytes) -> _Layout | None:
    """``parse()``: an optional Hop-by-Hop header, then an SRH if the routing header is one."""
    nexthdr, off, srh, sl, last = packet[6], IPV6_HEADER, None, 0, 0
    if nexthdr == NEXT_HEADER_HOP:
        if len(packet) < off + 2:
            return None
        nexthdr, off = packet[off], off + (packet[off + 1] + 1) * 8
    if nexthdr == NEXT_HEADER_ROUTING:
        if len(packet) < off + 8:
            return None
        if packet[off + 2] == SRH_TYPE:
            srh, sl, last = off, packet[off + 3], packet[off + 4]
            nexthdr, off = packet[off], off + (packet[off + 1] + 1) * 8
    return _Layout(srh, off, nexthdr, sl, last)


def _advance(packet: bytes, layout: _Layout) -> tuple[bytes, str | None]:
    """``advance()``: Segments Left - 1 and the new active segment as the destination."""
    if layout.srh is None:
        return packet, "drop_no_srh"
    if layout.sl == 0 or layout.sl - 1 > layout.last_entry:
        return packet, "drop_segments_left"
    sl = layout.sl - 1
    at = layout.srh + 8 + sl * 16
    if len(packet) < at + 16:
        return packet, "drop_error"
    data = bytearray(packet)
    data[layout.srh + 3] = sl
    data[24:40] = packet[at:at + 16]
    return bytes(data), None


def _encapsulate(packet: bytes, raw_entry: bytes) -> bytes | None:
    """``encapsulate()``: push the entry's header; version, class, flow label and hop limit from the inner header.

    The outer Payload Length is the inner packet's payload plus the pushed bytes
    (inner header + SRH). None: the program drops the packet (an entry of impossible length).
    """
    length = struct.unpack_from("<H", raw_entry)[0]
    if not IPV6_HEADER <= length <= R.MAX_HEADER:
        return None
    header = bytearray(raw_entry[8:8 + length])
    header[0:4] = packet[0:4]
    header[4:6] = struct.pack("!H", (struct.unpack_from("!H", packet, 4)[0] + length) & 0xFFFF)
    header[7] = packet[7]
    return bytes(header) + packet


# ------------------------------------------------------------------------- network
@dataclass
class BpfFakeNetwork(FakeNetwork):
    """A :class:`FakeNetwork` of :class:`BpfFakeRouter`: the same specs in, packets walked the same way.

    ``netplan`` is what the drivers read (a topology's :func:`~cpn_net.emulation.plan.build_plan`);
    by default :func:`plan_of_graph` of ``G``.
    """

    netplan: NetworkPlan | None = None

    def __post_init__(self) -> None:
        netplan = self.netplan if self.netplan is not None else plan_of_graph(self.G, self.plan)
        for site in self.G.nodes:
            self.routers.setdefault(site, BpfFakeRouter.for_site(self.G, site, self.plan, plan=netplan))
        super().__post_init__()
