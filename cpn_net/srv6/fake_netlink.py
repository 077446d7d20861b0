"""A pure fake of the routers' netlink state, to test compiled specs without a kernel.

:class:`FakeRouter` accepts exactly the dicts the compilers emit, through the
same call shape as pyroute2 (``router.route("add", **spec)``,
``router.rule("add", **spec)``), refuses what the kernel would refuse (a
duplicate route, a gateway that is not on-link, an unknown interface), and
answers "this packet arrives on interface X: what happens?" the way Linux's
seg6 / seg6local code does:

* rules in priority order (flow rules, then main at 32766), longest-prefix
  match within a table; a table without a match falls through to the next rule;
  a router built with ``marks=True`` also takes the eBPF driver's rules: a
  ``fwmark`` (under ``fwmask``) matched against the packet's mark, and
  ``action`` blackhole rules that drop what they match;
* seg6 encap pushes the outer header and SRH (H.Encaps / H.Encaps.Red,
  RFC 8986 §5) and looks the new destination up again, so a first segment that
  is a local SID is processed on the same router;
* End / End.X advance Segments Left (RFC 8986 §4.1, §4.2) and drop when it is
  already 0; End.X forwards to its ``nh6``; End.DX6 / End.DT6 (§4.5, §4.8)
  need Segments Left 0, decapsulate, then forward to ``nh6`` or look the inner
  destination up in their table; End.B6.Encaps (§4.13) advances, then pushes
  the bound list;
* forwarding decrements the outermost Hop Limit and drops at 1 (RFC 8200 §3);
* an interface without carrier (:meth:`FakeRouter.set_carrier`) hides the
  routes through it from lookups, as ``ignore_routes_with_linkdown=1`` does,
  so a backup route with a higher metric matches instead.

Packets are real bytes (:mod:`cpn_net.srv6.packet`), so every hop's packet
can also be checked against scapy. :class:`FakeNetwork` wires the routers
along the topology and walks a packet from a site's LAN to a host.

Examples
--------
>>> import networkx as nx
>>> from cpn_net.srv6.interfaces import InterfacePlan
>>> from cpn_net.srv6.packet import build_udp
>>> G = nx.Graph()
>>> G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2})])
>>> G.add_edge("a", "b", number=1, delay_ms=1.0)
>>> net = FakeNetwork.with_baseline(G, InterfacePlan.by_link_number(G), hosts={"b": [("compute", 1)]})
>>> walk = net.send(build_udp("2001:db8:1::1:1", "2001:db8:2::2:1", 1, 2), "a")
>>> walk.result, walk.sites, str(walk.delivered_to)
('delivered', ('a', 'b'), '2001:db8:2::2:1')
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Mapping

import networkx as nx

from cpn_net.model import addressing
from cpn_net.srv6.baseline import router_baseline
from cpn_net.srv6.errors import FakeNetlinkError, PacketError
from cpn_net.srv6.igp import Igp, site_id
from cpn_net.srv6.interfaces import InterfacePlan
from cpn_net.srv6.packet import (FlowKey, Ipv6Header, decode_ipv6, decode_srv6, encapsulate, flow_key,
                                 with_hop_limit)
from cpn_net.srv6.policy import CompiledPolicy
from cpn_net.srv6.srh import NEXT_HEADER_IPV6

MAIN_TABLE = 254
MAIN_RULE_PRIORITY = 32766
MAX_LOCAL_STEPS = 16
MAX_WALK_HOPS = 64
_ROUTE_KEYS = {"dst", "gateway", "oif", "table", "encap", "priority"}
_RULE_KEYS = {"family", "priority", "table", "iifname", "src", "dst", "ip_proto", "sport_range", "dport_range"}
#: What the eBPF driver's kernel rules add (``fwmark M lookup T``, ``fwmark M/MASK blackhole``): FakeRouter(marks=True).
MARK_RULE_KEYS = {"fwmark", "fwmask", "action"}
_BLACKHOLE_ACTIONS = ("FR_ACT_BLACKHOLE", "blackhole")
_SEG6_MODES = ("encap", "encap.red")
_SEG6LOCAL_ARGS = {"End": set(), "End.X": {"nh6"}, "End.DX6": {"nh6"}, "End.DT6": {"table"},
                   "End.B6.Encaps": {"srh"}}


@dataclass(frozen=True)
class Route:
    """One installed route."""

    dst: ipaddress.IPv6Network
    table: int
    oif: str
    gateway: ipaddress.IPv6Address | None = None
    encap: Mapping | None = None
    priority: int = 1024


@dataclass(frozen=True)
class Rule:
    """One installed IPv6 policy-routing rule."""

    priority: int
    table: int
    iifname: str | None = None
    src: ipaddress.IPv6Network | None = None
    dst: ipaddress.IPv6Network | None = None
    ip_proto: int | None = None
    sport_range: tuple[int, int] | None = None
    dport_range: tuple[int, int] | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    blackhole: bool = False  # action blackhole: a match drops the packet


#: What a lookup answers when a blackhole rule matched (the kernel drops the packet).
BLACKHOLE = Route(ipaddress.IPv6Network("::/0"), 0, "blackhole", priority=0)


@dataclass(frozen=True)
class Outcome:
    """What a router did with a packet.

    ``action`` is ``"forward"`` (out of ``oif`` to ``nexthop``), ``"local"``
    (addressed to the router itself) or ``"drop"`` (``reason`` says why);
    ``steps`` lists the behaviours applied, e.g. ``("H.Encaps", "End.X")``.
    """

    action: str
    packet: bytes
    oif: str | None = None
    nexthop: ipaddress.IPv6Address | None = None
    reason: str | None = None
    steps: tuple[str, ...] = ()


class FakeRouter:
    """The netlink-visible forwarding state of one router.

    Parameters
    ----------
    name : str
        Router name (``r<site>``), for messages.
    interfaces : mapping
        ``{ifname: (own address, connected prefix)}``; each becomes a
        connected route in the main table, as the kernel adds on address
        configuration.
    tunnel_source : IPv6Address or str
        Outer source address of encapsulated packets.
    marks : bool
        Also accept rules with ``fwmark`` / ``fwmask`` / ``action`` (the eBPF
        driver's); off by default, as the compilers emit none.
    """

    def __init__(self, name: str, interfaces: Mapping[str, tuple], tunnel_source, *, marks: bool = False):
        self.name = name
        self.rule_keys = _RULE_KEYS | MARK_RULE_KEYS if marks else _RULE_KEYS
        self.tunnel_source = ipaddress.IPv6Address(tunnel_source)
        self.addresses = {ipaddress.IPv6Address(addr) for addr, _ in interfaces.values()}
        self.ifnames = set(interfaces)
        self.linkdown: set[str] = set()
        self._connected = {ifname: ipaddress.IPv6Network(net) for ifname, (_addr, net) in interfaces.items()}
        self._routes: dict[tuple, Route] = {}
        self._rules: list[Rule] = [Rule(MAIN_RULE_PRIORITY, MAIN_TABLE)]
        for ifname, net in self._connected.items():
            self._put(Route(net, MAIN_TABLE, ifname, priority=256))

    @classmethod
    def for_site(cls, G: nx.Graph, site: Hashable, plan: InterfacePlan, *, marks: bool = False) -> "FakeRouter":
        """The router of ``site`` with its LAN and WAN addresses from the addressing plan."""
        sid = site_id(G, site)
        interfaces = {plan.lan_ifname(site): (addressing.router_lan_address(sid), addressing.site_lan(sid))}
        for neighbour in G.adj[site]:
            number = G.edges[site, neighbour]["number"]
            interfaces[plan.wan_ifname(site, neighbour)] = (addressing.wan_address(number, sid),
                                                           addressing.wan_prefix(number))
        return cls(addressing.router_name(sid), interfaces, addressing.router_lan_address(sid), marks=marks)

    def set_carrier(self, ifname: str, up: bool) -> None:
        """Give ``ifname`` carrier or take it away; lookups skip routes out of a linkdown interface.

        Examples
        --------
        >>> r = FakeRouter("r1", {"r1-eth0": ("2001:db8:1::1", "2001:db8:1::/64")}, "2001:db8:1::1")
        >>> r.set_carrier("r1-eth0", False); r.linkdown
        {'r1-eth0'}
        """
        if ifname not in self.ifnames:
            raise FakeNetlinkError(f"{self.name}: no interface {ifname!r} to set carrier on; "
                                   f"interfaces are {', '.join(sorted(self.ifnames))}")
        (self.linkdown.discard if up else self.linkdown.add)(ifname)

    def routes(self, table: int = MAIN_TABLE) -> tuple[Route, ...]:
        """The routes of one table, most specific first."""
        return tuple(sorted((r for r in self._routes.values() if r.table == table),
                            key=lambda r: (-r.dst.prefixlen, r.dst, r.priority)))

    def rules(self) -> tuple[Rule, ...]:
        """The rules in evaluation order."""
        return tuple(sorted(self._rules, key=lambda r: r.priority))

    def route(self, command: str, **spec) -> None:
        """Apply a route spec, as ``IPRoute.route(command, **spec)`` would.

        Raises
        ------
        FakeNetlinkError
            On an unknown key, interface or encap, a gateway that is not
            on-link, a duplicate ``add`` (EEXIST) or a missing ``del`` (ESRCH).
        """
        if command == "del":
            self._delete_route(spec)
            return
        route = self._parse_route(spec)
        key = (route.table, route.dst, route.priority)
        if command == "add":
            if key in self._routes:
                raise FakeNetlinkError(f"{self.name}: route {route.dst} table {route.table} exists "
                                       "(the kernel answers EEXIST); use 'replace' or delete it first")
            self._put(route)
        elif command == "replace":
            self._put(route)
        else:
            raise FakeNetlinkError(f"route command {command!r} must be 'add', 'replace' or 'del'")

    def _delete_route(self, spec: dict) -> None:
        """``del`` matches destination, table and metric, and the interface only when given.

        The kernel deletes a route named by fewer attributes than it was added
        with (``ip -6 route del DST metric 2048``); encap is not matched.
        """
        unknown = set(spec) - _ROUTE_KEYS
        if unknown:
            raise FakeNetlinkError(f"{self.name}: route spec keys {sorted(unknown)} are not ones the compilers "
                                   f"emit; known keys: {sorted(_ROUTE_KEYS)}")
        try:
            dst = ipaddress.IPv6Network(spec["dst"])
        except (KeyError, ValueError) as err:
            raise FakeNetlinkError(f"{self.name}: route spec {spec}: dst must be an IPv6 prefix ({err})") from err
        table = int(spec.get("table", MAIN_TABLE))
        old = self._routes.get((table, dst, int(spec.get("priority", 1024))))
        if old is None or ("oif" in spec and old.oif != spec["oif"]) or \
                ("gateway" in spec and old.gateway != ipaddress.IPv6Address(spec["gateway"])):
            raise FakeNetlinkError(f"{self.name}: no route {dst} table {table} to delete "
                                   "(the kernel answers ESRCH)")
        del self._routes[(old.table, old.dst, old.priority)]

    def rule(self, command: str, **spec) -> None:
        """Apply a rule spec, as ``IPRoute.rule(command, **spec)`` would."""
        rule = self._parse_rule(spec)
        if command == "add":
            if rule in self._rules:
                raise FakeNetlinkError(f"{self.name}: rule {spec} exists (EEXIST)")
            self._rules.append(rule)
        elif command == "del":
            if rule not in self._rules:
                raise FakeNetlinkError(f"{self.name}: no rule {spec} to delete (ESRCH)")
            self._rules.remove(rule)
        else:
            raise FakeNetlinkError(f"rule command {command!r} must be 'add' or 'del'")

    def receive(self, packet: bytes, iif: str) -> Outcome:
        """What the router does with ``packet`` arriving on interface ``iif``.

        Examples
        --------
        >>> r = FakeRouter("r1", {"r1-eth0": ("2001:db8:1::1", "2001:db8:1::/64")}, "2001:db8:1::1")
        >>> from cpn_net.srv6.packet import build_udp
        >>> r.receive(build_udp("2001:db8:1::1:1", "2001:db8:9::1", 1, 2), "r1-eth0").reason
        'no route to 2001:db8:9::1'
        """
        if iif not in self.ifnames:
            raise FakeNetlinkError(f"{self.name}: packet arrives on unknown interface {iif!r}; "
                                   f"interfaces are {', '.join(sorted(self.ifnames))}")
        steps: list[str] = []
        table = None  # End.DT6 forces the next lookup into its table
        for _ in range(MAX_LOCAL_STEPS):
            try:
                header, _payload = decode_ipv6(packet)
            except PacketError as err:
                return Outcome("drop", packet, reason=f"malformed packet: {err}", steps=tuple(steps))
            if header.destination in self.addresses:
                return Outcome("local", packet, steps=tuple(steps))
            route = self._lookup(packet, iif, table)
            table = None
            if route is None:
                return Outcome("drop", packet, reason=f"no route to {header.destination}", steps=tuple(steps))
            if route is BLACKHOLE:
                return Outcome("drop", packet, reason=f"blackhole rule for {header.destination}", steps=tuple(steps))
            if route.encap is None:
                return self._forward(packet, route.oif, route.gateway or header.destination, steps)
            if route.encap["type"] == "seg6":
                packet = self._encap(packet, route.encap["segs"], route.encap["mode"] == "encap.red")
                steps.append("H.Encaps.Red" if route.encap["mode"] == "encap.red" else "H.Encaps")
                continue
            action = route.encap["action"]
            steps.append(action)
            try:
                parsed = decode_srv6(packet)
            except PacketError as err:
                return Outcome("drop", packet, reason=f"{action}: {err}", steps=tuple(steps))
            if action in ("End", "End.X", "End.B6.Encaps"):
                if parsed.srh is None or parsed.srh.segments_left == 0:
                    return Outcome("drop", packet, steps=tuple(steps),
                                   reason=f"{action} {header.destination}: no segment left (the kernel drops it)")
                srh = parsed.srh.advanced()
                outer = Ipv6Header(header.source, srh.active_segment, header.next_header, header.payload_length,
                                   header.hop_limit, header.traffic_class, header.flow_label)
                packet = outer.to_bytes() + srh.to_bytes() + parsed.inner
                if action == "End.X":
                    return self._forward_to(packet, route.encap["nh6"], steps)
                if action == "End.B6.Encaps":
                    packet = self._encap(packet, route.encap["srh"]["segs"], False)
                continue
            # End.DX6 / End.DT6: decapsulate (RFC 8986 §4.5, §4.8).
            if parsed.srh is not None and parsed.srh.segments_left != 0:
                return Outcome("drop", packet, steps=tuple(steps),
                               reason=f"{action} {header.destination}: Segments Left "
                                      f"{parsed.srh.segments_left} != 0 (the kernel drops it)")
            if parsed.inner_next_header != NEXT_HEADER_IPV6:
                return Outcome("drop", packet, steps=tuple(steps),
                               reason=f"{action}: inner protocol {parsed.inner_next_header} is not IPv6")
            packet = parsed.inner
            if action == "End.DX6":
                return self._forward_to(packet, route.encap["nh6"], steps)
            table = int(route.encap["table"])
        return Outcome("drop", packet, reason=f"more than {MAX_LOCAL_STEPS} local steps: a local SID loop?",
                       steps=tuple(steps))

    def _encap(self, packet: bytes, srh_order_segs, reduced: bool) -> bytes:
        inner, _ = decode_ipv6(packet)
        travel = list(reversed(srh_order_segs))  # pyroute2 segs are in SRH order
        # seg6_do_srh_encap: the outer header inherits the inner traffic class, flow label and hop limit
        return encapsulate(packet, self.tunnel_source, travel, reduced=reduced, flow_label=inner.flow_label,
                           hop_limit=inner.hop_limit)

    def _forward_to(self, packet: bytes, nh6, steps) -> Outcome:
        nexthop = ipaddress.IPv6Address(nh6)
        route = self._lpm(MAIN_TABLE, nexthop)
        if route is None:
            return Outcome("drop", packet, reason=f"no route to nexthop {nexthop}", steps=tuple(steps))
        return self._forward(packet, route.oif, route.gateway or nexthop, steps)

    def _forward(self, packet: bytes, oif: str, nexthop, steps) -> Outcome:
        header, _ = decode_ipv6(packet)
        if header.hop_limit <= 1:
            return Outcome("drop", packet, reason=f"hop limit exceeded towards {header.destination}",
                           steps=tuple(steps))
        return Outcome("forward", with_hop_limit(packet, header.hop_limit - 1), oif,
                       ipaddress.IPv6Address(nexthop), steps=tuple(steps))

    def lookup(self, key: FlowKey, iif: str, *, mark: int = 0) -> Route | None:
        """The route the rules and tables give a flow arriving on ``iif`` with ``mark``.

        :data:`BLACKHOLE` when a blackhole rule matches first, None when nothing does.
        """
        for rule in self.rules():
            if _matches(rule, key, iif, mark):
                if rule.blackhole:
                    return BLACKHOLE
                route = self._lpm(rule.table, key.destination)
                if route is not None:
                    return route
        return None

    def forward(self, packet: bytes, iif: str, *, mark: int = 0,
                steps: Iterable[str] = ()) -> tuple[Outcome, Route | None]:
        """Plain IPv6 forwarding of ``packet`` as it stands (no lwtunnel): what the stack does.

        Local delivery, then the rules and tables (with the packet's ``mark``),
        then the hop limit. Returns the outcome and the route used (None unless forwarded).

        Examples
        --------
        >>> r = FakeRouter("r1", {"r1-eth0": ("2001:db8:1::1", "2001:db8:1::/64")}, "2001:db8:1::1")
        >>> from cpn_net.srv6.packet import build_udp
        >>> outcome, route = r.forward(build_udp("2001:db8:9::1", "2001:db8:1::7", 1, 2), "r1-eth0")
        >>> outcome.action, str(outcome.nexthop), route.priority
        ('forward', '2001:db8:1::7', 256)
        """
        steps = list(steps)
        try:
            header, _payload = decode_ipv6(packet)
            key = flow_key(packet)
        except PacketError as err:
            return Outcome("drop", packet, reason=f"malformed packet: {err}", steps=tuple(steps)), None
        if header.destination in self.addresses:
            return Outcome("local", packet, steps=tuple(steps)), None
        route = self.lookup(key, iif, mark=mark)
        if route is None:
            return Outcome("drop", packet, reason=f"no route to {header.destination}", steps=tuple(steps)), None
        if route is BLACKHOLE:
            return Outcome("drop", packet, reason=f"blackhole rule for {header.destination}",
                           steps=tuple(steps)), None
        if route.encap is not None:
            raise FakeNetlinkError(f"{self.name}: forward() models plain forwarding; route {route.dst} has an encap")
        outcome = self._forward(packet, route.oif, route.gateway or header.destination, steps)
        return outcome, route if outcome.action == "forward" else None

    def _lookup(self, packet: bytes, iif: str, table: int | None) -> Route | None:
        key = flow_key(packet)
        if table is not None:
            return self._lpm(table, key.destination)
        return self.lookup(key, iif)

    def _lpm(self, table: int, address: ipaddress.IPv6Address) -> Route | None:
        best = None
        for route in self._routes.values():
            if route.table == table and address in route.dst and route.oif not in self.linkdown:
                if best is None or (route.dst.prefixlen, -route.priority) > (best.dst.prefixlen, -best.priority):
                    best = route
        return best

    def _put(self, route: Route) -> None:
        self._routes[(route.table, route.dst, route.priority)] = route

    def _parse_route(self, spec: dict) -> Route:
        unknown = set(spec) - _ROUTE_KEYS
        if unknown:
            raise FakeNetlinkError(f"{self.name}: route spec keys {sorted(unknown)} are not ones the compilers "
                                   f"emit; known keys: {sorted(_ROUTE_KEYS)}")
        try:
            dst = ipaddress.IPv6Network(spec["dst"])
        except (KeyError, ValueError) as err:
            raise FakeNetlinkError(f"{self.name}: route spec {spec}: dst must be an IPv6 prefix ({err})") from err
        oif = spec.get("oif")
        if oif not in self.ifnames:
            raise FakeNetlinkError(f"{self.name}: route {dst}: oif={oif!r} is not an interface of this router "
                                   f"({', '.join(sorted(self.ifnames))})")
        gateway = spec.get("gateway")
        if gateway is not None:
            gateway = ipaddress.IPv6Address(gateway)
            if gateway not in self._connected.get(oif, ipaddress.IPv6Network("::/128")):
                raise FakeNetlinkError(f"{self.name}: route {dst}: gateway {gateway} is not on-link on {oif} "
                                       f"({self._connected.get(oif)}); the kernel refuses it")
        encap = spec.get("encap")
        if encap is not None:
            encap = self._check_encap(dst, encap)
        return Route(dst, int(spec.get("table", MAIN_TABLE)), oif, gateway, encap, int(spec.get("priority", 1024)))

    def _check_encap(self, dst, encap: Mapping) -> dict:
        where = f"{self.name}: route {dst}"
        kind = encap.get("type")
        if kind == "seg6":
            if set(encap) != {"type", "mode", "segs"} or encap["mode"] not in _SEG6_MODES:
                raise FakeNetlinkError(f"{where}: seg6 encap {encap} needs exactly type, mode "
                                       f"({' or '.join(_SEG6_MODES)}) and segs")
            return {**encap, "segs": _addresses(where, encap["segs"])}
        if kind == "seg6local":
            action = encap.get("action")
            if action not in _SEG6LOCAL_ARGS:
                raise FakeNetlinkError(f"{where}: seg6local action {action!r} must be one of "
                                       f"{', '.join(_SEG6LOCAL_ARGS)}")
            if set(encap) - {"type", "action"} != _SEG6LOCAL_ARGS[action]:
                raise FakeNetlinkError(f"{where}: seg6local {action} takes {sorted(_SEG6LOCAL_ARGS[action])}, "
                                       f"got {sorted(set(encap) - {'type', 'action'})}")
            if action == "End.B6.Encaps":
                return {**encap, "srh": {"segs": _addresses(where, encap["srh"].get("segs", ()))}}
            return dict(encap)
        raise FakeNetlinkError(f"{where}: encap type {kind!r} must be 'seg6' or 'seg6local'")

    def _parse_rule(self, spec: dict) -> Rule:
        unknown = set(spec) - self.rule_keys
        if unknown:
            raise FakeNetlinkError(f"{self.name}: rule spec keys {sorted(unknown)} unknown; "
                                   f"known: {sorted(self.rule_keys)}")
        if spec.get("family") != socket.AF_INET6:
            raise FakeNetlinkError(f"{self.name}: rule {spec}: family must be AF_INET6 ({socket.AF_INET6}); "
                                   "pyroute2 defaults rules to IPv4")
        action = spec.get("action")
        if action is not None and action not in _BLACKHOLE_ACTIONS:
            raise FakeNetlinkError(f"{self.name}: rule {spec}: action {action!r} is not one the fake knows "
                                   f"({' or '.join(_BLACKHOLE_ACTIONS)})")
        if ("table" not in spec and action is None) or "priority" not in spec:
            raise FakeNetlinkError(f"{self.name}: rule {spec} needs a table and a priority")
        try:
            return Rule(int(spec["priority"]), int(spec.get("table", 0)), spec.get("iifname"),
                        _network(spec.get("src")), _network(spec.get("dst")), spec.get("ip_proto"),
                        _port_range(spec.get("sport_range")), _port_range(spec.get("dport_range")),
                        None if spec.get("fwmark") is None else int(spec["fwmark"]),
                        None if spec.get("fwmask") is None else int(spec["fwmask"]),
                        action is not None)
        except ValueError as err:
            raise FakeNetlinkError(f"{self.name}: rule {spec}: {err}") from err


@dataclass(frozen=True)
class Hop:
    """One router's handling of the walking packet."""

    site: Hashable
    iif: str
    outcome: Outcome


@dataclass(frozen=True)
class Walk:
    """A packet's trip through the fake network.

    ``result`` is ``"delivered"`` (to the host ``delivered_to``), ``"local"``,
    ``"drop"`` or ``"loop"``; ``packet`` is the last packet seen.
    """

    hops: tuple[Hop, ...]
    result: str
    packet: bytes
    delivered_to: ipaddress.IPv6Address | None = None
    reason: str | None = None

    @property
    def sites(self) -> tuple:
        """The routers' sites in visiting order."""
        return tuple(h.site for h in self.hops)

    @property
    def wire(self) -> tuple[bytes, ...]:
        """The packet as sent by each router that forwarded it."""
        return tuple(h.outcome.packet for h in self.hops if h.outcome.action == "forward")


@dataclass
class FakeNetwork:
    """Every router of a topology, wired along its links."""

    G: nx.Graph
    plan: InterfacePlan
    routers: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for site in self.G.nodes:
            self.routers.setdefault(site, FakeRouter.for_site(self.G, site, self.plan))
        self._site_by_router = {r.name: site for site, r in self.routers.items()}

    @classmethod
    def with_baseline(cls, G: nx.Graph, plan: InterfacePlan, *, hosts: Mapping | None = None,
                      tables: Iterable[int] = (MAIN_TABLE,), igp: Igp | None = None) -> "FakeNetwork":
        """A network with every router's baseline (IGP routes and local SIDs) installed.

        ``hosts`` maps a site to its ``(kind, index)`` hosts (End.DX6 SIDs).
        """
        net = cls(G, plan)
        igp = igp or Igp(G)
        tables = tuple(tables)
        for site, router in net.routers.items():
            for spec in router_baseline(G, site, plan, hosts=(hosts or {}).get(site, ()), tables=tables, igp=igp):
                router.route("add", **spec)
        return net

    def set_carrier(self, site_a: Hashable, site_b: Hashable, up: bool) -> None:
        """Cut (or restore) the link between two sites at both ends' interfaces, as a carrier loss would."""
        for site, neighbour in ((site_a, site_b), (site_b, site_a)):
            self.routers[site].set_carrier(self.plan.wan_ifname(site, neighbour), up)

    def router(self, name: str) -> FakeRouter:
        try:
            return self.routers[self._site_by_router[name]]
        except KeyError:
            raise FakeNetlinkError(f"no router {name!r}; routers are {', '.join(sorted(self._site_by_router))}") \
                from None

    def install(self, compiled: CompiledPolicy) -> None:
        """Add a compiled policy's routes and rules at its router."""
        router = self.router(compiled.router)
        for spec in compiled.routes:
            router.route("add", **spec)
        for spec in compiled.rules:
            router.rule("add", **spec)

    def remove(self, compiled: CompiledPolicy) -> None:
        """Delete a compiled policy's rules and routes."""
        router = self.router(compiled.router)
        removal = compiled.removal()
        for spec in removal.rules:
            router.rule("del", **spec)
        for spec in removal.routes:
            router.route("del", **spec)

    def send(self, packet: bytes, site: Hashable, iif: str | None = None) -> Walk:
        """Walk ``packet`` from the router of ``site`` (arriving on its LAN by default).

        Examples
        --------
        >>> G = nx.Graph(); G.add_node("a", id=1)
        >>> from cpn_net.srv6.packet import build_udp
        >>> net = FakeNetwork(G, InterfacePlan.by_link_number(G))
        >>> net.send(build_udp("2001:db8:1::1:1", "2001:db8:1::1", 1, 2), "a").result
        'local'
        """
        if site not in self.routers:
            raise FakeNetlinkError(f"no router at site {site!r}; sites are {', '.join(sorted(map(str, self.routers)))}")
        iif = iif or self.plan.lan_ifname(site)
        hops = []
        for _ in range(MAX_WALK_HOPS):
            outcome = self.routers[site].receive(packet, iif)
            hops.append(Hop(site, iif, outcome))
            packet = outcome.packet
            if outcome.action != "forward":
                return Walk(tuple(hops), outcome.action, packet, reason=outcome.reason)
            neighbour = self.plan.neighbour_on(site, outcome.oif)
            if neighbour is None:
                if outcome.nexthop in addressing.site_lan(site_id(self.G, site)):
                    return Walk(tuple(hops), "delivered", packet, delivered_to=outcome.nexthop)
                return Walk(tuple(hops), "drop", packet, reason=f"{site}: nexthop {outcome.nexthop} is not on the LAN")
            expected = addressing.wan_address(self.G.edges[site, neighbour]["number"], site_id(self.G, neighbour))
            if outcome.nexthop != expected:
                return Walk(tuple(hops), "drop", packet,
                            reason=f"{site}: nexthop {outcome.nexthop} on {outcome.oif} is not {neighbour}'s "
                                   f"address {expected}")
            iif = self.plan.wan_ifname(neighbour, site)
            site = neighbour
        return Walk(tuple(hops), "loop", packet, reason=f"more than {MAX_WALK_HOPS} hops")


def _matches(rule: Rule, key, iif: str, mark: int = 0) -> bool:
    if rule.iifname is not None and rule.iifname != iif:
        return False
    if rule.fwmark is not None and (rule.fwmark ^ mark) & (0xFFFFFFFF if rule.fwmask is None else rule.fwmask):
        return False  # as fib_rule_match: (mark ^ fwmark) & fwmask
    if rule.src is not None and key.source not in rule.src:
        return False
    if rule.dst is not None and key.destination not in rule.dst:
        return False
    if rule.ip_proto is not None and rule.ip_proto != key.protocol:
        return False
    for port_range, port in ((rule.sport_range, key.src_port), (rule.dport_range, key.dst_port)):
        if port_range is not None and (port is None or not port_range[0] <= port <= port_range[1]):
            return False
    return True


def _addresses(where: str, segs) -> list[str]:
    if isinstance(segs, str) or not segs:
        raise FakeNetlinkError(f"{where}: segs={segs!r} must be a non-empty list of IPv6 addresses")
    try:
        return [str(ipaddress.IPv6Address(s)) for s in segs]
    except ValueError as err:
        raise FakeNetlinkError(f"{where}: segs: {err}") from err


def _network(value) -> ipaddress.IPv6Network | None:
    return None if value is None else ipaddress.IPv6Network(value)


def _port_range(value) -> tuple[int, int] | None:
    if value is None:
        return None
    low, _, high = str(value).partition(":")
    return int(low), int(high or low)
