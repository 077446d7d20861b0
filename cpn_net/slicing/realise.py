"""Realisation of admitted slices: marking, meters, WAN queues and decapsulation tables.

Everything here is a pure builder; the controller's adapters apply the result.

Marking (site switch, OpenFlow 1.3). A slice's mark (1..15, chosen at
admission: unique among the slices sharing a link, reused by slices that do
not, :func:`cpn_net.slicing.admission.free_mark`) travels in DSCP bits 1..4
next to the alternate-marking bits of :mod:`cpn_net.telemetry.marking` (0x20
monitored, 0x01 colour)::

    dscp = (mark << 1) | 0x20 | colour            # mark 3, colour 1 -> 0x27

The slice id (1..:data:`~cpn_net.model.schema.MAX_SLICE_ID`) names
everything else of the slice: flow cookies, meters, HTB classes and filters,
routing tables.

Composition with colouring: colour flows (priority 50, table 0) set
``0x20 | colour`` on everything from a host port. Slice flows sit in the
same table at priority :data:`PRIORITY_SLICE` (60), match the member's port
and addresses more narrowly, and set the whole DSCP, the *current* colour
included, so a slice packet is still counted by the loss counters. At every
period boundary the controller re-emits the slice flows of the new colour
with the colour flows (same match and priority: a flow-mod modify replaces
the action). A slice flow marks traffic from a member host to a member host
at *another* member site (``ipv6_src`` and ``ipv6_dst`` exact): only WAN
traffic needs a queue, and traffic to non-members stays best effort. When
two shared slices claim the same host pair, the lower slice id marks it.

Meters: with ``meter_mbps`` each member site switch gets one OpenFlow meter
(id = slice id, a drop band at ``meter_mbps``) shared by the slice's flows
there, so the slice's aggregate entering at that site is capped. The flows
carry the action ``("meter", id)`` first: the OpenFlow 1.3 meter instruction
goes before the actions (:class:`MeterSpec`).

Queues (router WAN interfaces, Linux HTB). Each WAN interface of a shaped
link gets an HTB root (class 1:1) at the link rate, so the queue forms at the
router, where traffic can be told apart, rather than in the link emulator
behind it. Per slice crossing the interface in that direction, class
``1:(0x10 + id)`` in hex with ``rate`` = the slice's reservations in that direction
and ``ceil`` = the link rate (a slice may borrow idle capacity); best effort
is class 1:2, the default, with the rest of the link (at least 1 kbit, HTB's
minimum). A u32 filter per slice matches the IPv6 traffic class
(``ip6 priority``) on the slice's mark and the monitored bit under mask 0xf8, so both
colours and any ECN match. On seg6 encapsulation Linux copies the inner
traffic class to the outer header, so the filter sees the mark on SRv6
packets too.

Isolation (decapsulation). An isolated slice gets its own routing table
``100 + id`` at each member site, holding only routes to the slice's member
hosts there, and an End.DT6 SID into it (RFC 8986 §4.6,
:func:`cpn_net.srv6.sids.end_dt6_sid`). A slice's SR policies end with that
SID, so decapsulated traffic can only reach the slice's members. Shared
slices decapsulate into the main table (254).

Examples
--------
>>> slice_dscp(3, 1), hex(slice_dscp(3, 1)), slice_of_dscp(0x27), slice_of_dscp(0x21)
(39, '0x27', 3, None)
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import networkx as nx

from cpn_net.model.topology import SliceSpec
from cpn_net.openflow import TABLE_CLASSIFY, TABLE_FORWARD, FlowSpec
from cpn_net.slicing.admission import MAX_MARK, Admission
from cpn_net.slicing.errors import SlicingError
from cpn_net.srv6.sids import end_dt6_sid
from cpn_net.telemetry.marking import ETH_TYPE_IPV6, MONITORED_BIT, PRIORITY_COLOUR, mark_dscp

#: Above the colour flows (:data:`cpn_net.telemetry.marking.PRIORITY_COLOUR`), so slice marking wins.
PRIORITY_SLICE = PRIORITY_COLOUR + 10
#: Cookie of slice flows: this base ORed with the slice id (shown as ``0xc0de51`` and 4 hex digits).
COOKIE_SLICE = 0xC0DE510000
#: Routing table of isolated slice ``n`` is ``SLICE_TABLE_BASE + n``.
SLICE_TABLE_BASE = 100
MAIN_TABLE = 254
#: Traffic-class mask of the slice and monitored DSCP bits (DSCP 0x3e << 2): colour and ECN ignored.
TRAFFIC_CLASS_SLICE_MASK = 0xF8
BEST_EFFORT_CLASS = "1:2"
_MIN_BURST_BYTES = 15000  # at least one 9000-byte WAN frame, as the link shaper
_MIN_QUEUE_PACKETS = 100
_QUEUE_MS = 50
#: The router shapes a little below the link rate, so the queue forms in its HTB (where
#: slices are told apart) and never in the link's own FIFO behind it (which counts bytes a
#: little differently: without this, a saturated link element's queue delays every slice).
SHAPING_FRACTION = 0.97


def slice_dscp(mark: int, colour: int) -> int:
    """The DSCP of a slice's packets in a colour period: ``(mark << 1) | 0x20 | colour``.

    Raises
    ------
    SlicingError
        If ``mark`` is not 1..15.

    Examples
    --------
    >>> slice_dscp(1, 0), slice_dscp(15, 1)
    (34, 63)
    """
    if isinstance(mark, bool) or not isinstance(mark, int) or not 1 <= mark <= MAX_MARK:
        raise SlicingError(f"slice mark {mark!r} must be an int in 1..{MAX_MARK} (DSCP bits 1..4)")
    return mark_dscp(mark, colour)


def slice_of_dscp(dscp: int) -> int | None:
    """The slice mark a DSCP carries; None for unmonitored or unsliced packets."""
    if dscp & MONITORED_BIT == 0:
        return None
    return ((dscp >> 1) & 0x0F) or None


def slice_traffic_class(mark: int) -> int:
    """The IPv6 traffic-class value a u32 filter matches under :data:`TRAFFIC_CLASS_SLICE_MASK`.

    Examples
    --------
    >>> hex(slice_traffic_class(1))
    '0x88'
    """
    return slice_dscp(mark, 0) << 2


@dataclass(frozen=True)
class MeterSpec:
    """An OpenFlow 1.3 meter on a site switch (§7.3.4.4): one drop band.

    ``dpid`` is the switch's datapath id (its site id); ``burst_kbits`` is
    the band's burst size, 50 ms of traffic at the rate.
    """

    dpid: int
    meter_id: int
    rate_kbps: int
    burst_kbits: int
    band: str = "drop"


@dataclass(frozen=True)
class SliceTable:
    """Where a slice's traffic is decapsulated at one member site.

    ``routes`` are the member hosts' /128 prefixes the table holds (every
    member host of the site for an isolated slice; nothing to add for the
    main table of a shared slice).
    """

    slice: str
    site: str
    site_id: int
    table: int
    sid: ipaddress.IPv6Address
    routes: tuple[str, ...]


def _hosts(plan) -> dict:
    """``{host: (dpid, switch port, address)}`` from a :class:`~cpn_net.emulation.plan.NetworkPlan`."""
    found = {}
    for switch in plan.nodes_of("switch"):
        for intf in switch.interfaces:
            peer = plan.node(intf.peer_node)
            if peer.kind in ("client", "compute"):
                address = peer.interface(intf.peer_name).addresses[0].split("/")[0]
                found[peer.name] = (switch.site_id, intf.port, address, peer.site)
    return found


def classification_flows(plan, slices: Sequence[SliceSpec], colour: int,
                         marks: Mapping[str, int]) -> dict[int, list[FlowSpec]]:
    """Slice marking flows per site switch (datapath id), in the given colour period.

    Parameters
    ----------
    plan : cpn_net.emulation.plan.NetworkPlan
        Gives each member host's switch port and address.
    slices : sequence of SliceSpec
        The admitted slices.
    colour : int
        The current alternate-marking colour (0 or 1).
    marks : mapping
        ``{slice name: mark}`` from admission (:attr:`Admission.mark`).

    Returns
    -------
    dict
        ``{dpid: [FlowSpec, ...]}``; table 0, priority :data:`PRIORITY_SLICE`,
        ``goto_table`` 1. Switches without member hosts are absent.

    Raises
    ------
    SlicingError
        If a member host is not in the plan or a slice has no mark.
    """
    hosts = _hosts(plan)
    flows: dict[int, list[FlowSpec]] = {}
    claimed: set = set()
    for spec in sorted(slices, key=lambda s: s.id):
        missing = [h for h in spec.hosts if h not in hosts]
        if missing:
            raise SlicingError(f"slice {spec.name}: host(s) {', '.join(missing)} not in the network plan "
                               f"of {plan.topology}; realise the slice on the topology it was checked against")
        if spec.name not in marks:
            raise SlicingError(f"slice {spec.name}: no mark; admit it first (marks are given to "
                               f"{', '.join(sorted(marks)) or 'no slice'})")
        actions = (("meter", spec.id),) if spec.meter_mbps is not None else ()
        actions += (("set_field", "ip_dscp", slice_dscp(marks[spec.name], colour)),)
        for src in spec.hosts:
            dpid, port, src_address, site = hosts[src]
            for dst in spec.hosts:
                if hosts[dst][3] == site or (src, dst) in claimed:
                    continue
                claimed.add((src, dst))
                match = (("in_port", port), ("eth_type", ETH_TYPE_IPV6), ("ipv6_src", src_address),
                         ("ipv6_dst", hosts[dst][2]))
                flows.setdefault(dpid, []).append(FlowSpec(TABLE_CLASSIFY, PRIORITY_SLICE, match, actions,
                                                           goto_table=TABLE_FORWARD, cookie=COOKIE_SLICE | spec.id))
    return flows


def meter_specs(topology, slices: Sequence[SliceSpec]) -> dict[int, list[MeterSpec]]:
    """One drop meter per metered slice on each of its member site switches.

    Examples
    --------
    >>> from cpn_net.model import load_topology
    >>> topo = load_topology("topologies/tiny.yaml")
    >>> spec = SliceSpec("s", 2, ("east", "west"), ("u1-1", "u3-1"), ("east", "west"), 5.0, meter_mbps=8.0)
    >>> meter_specs(topo, [spec])[3]
    [MeterSpec(dpid=3, meter_id=2, rate_kbps=8000, burst_kbits=400, band='drop')]
    """
    meters: dict[int, list[MeterSpec]] = {}
    for spec in sorted(slices, key=lambda s: s.id):
        if spec.meter_mbps is None:
            continue
        kbps = max(1, round(spec.meter_mbps * 1000))
        for site in spec.sites:
            dpid = topology.site(site).id
            meters.setdefault(dpid, []).append(MeterSpec(dpid, spec.id, kbps, max(1, math.ceil(kbps * _QUEUE_MS
                                                                                           / 1000))))
    return meters


def slice_class(slice_id: int) -> str:
    """HTB class id of a slice: ``1:`` and ``0x10 + id`` in hex (slice 1 ``1:11``, slice 16 ``1:20``)."""
    return f"1:{0x10 + slice_id:x}"


def slice_filter_handle(slice_id: int) -> str:
    """The u32 filter handle of a slice's class on a WAN interface: ``800::<id in hex>``."""
    return f"800::{slice_id:x}"


def _queue_packets(rate_mbps: float) -> int:
    return max(_MIN_QUEUE_PACKETS, math.ceil(rate_mbps * 1e6 * _QUEUE_MS / 1000 / (1500 * 8)))


def wan_queue_commands(intf: str, link_rate_mbps: float, slice_rates_mbps: Mapping[int, float],
                       marks: Mapping[int, int]) -> list[list[str]]:
    """``tc`` commands giving each slice its guaranteed rate on one router WAN interface.

    Parameters
    ----------
    intf : str
        The router's WAN interface (egress direction).
    link_rate_mbps : float
        The link's rate: the HTB root and every class's ``ceil``.
    slice_rates_mbps : mapping
        ``{slice id: Mbit/s}`` reserved in this direction.
    marks : mapping
        ``{slice id: mark}``: the traffic class each slice's filter matches.

    Returns
    -------
    list of list of str

    Raises
    ------
    SlicingError
        If the slices' rates exceed the link rate, or two of them hold one
        mark (admission would allow neither).

    Examples
    --------
    >>> for c in wan_queue_commands("r1-eth1", 50, {1: 20}, {1: 1}): print(" ".join(c))
    tc qdisc replace dev r1-eth1 root handle 1: htb default 2
    tc class replace dev r1-eth1 parent 1: classid 1:1 htb rate 48500kbit ceil 48500kbit burst 15000
    tc class replace dev r1-eth1 parent 1:1 classid 1:2 htb rate 28500kbit ceil 48500kbit burst 15000
    tc qdisc replace dev r1-eth1 parent 1:2 handle 2: pfifo limit 209
    tc class replace dev r1-eth1 parent 1:1 classid 1:11 htb rate 20000kbit ceil 48500kbit burst 15000
    tc qdisc replace dev r1-eth1 parent 1:11 handle 11: pfifo limit 209
    tc filter replace dev r1-eth1 parent 1: protocol ipv6 prio 1 handle 800::1 u32 match ip6 priority 0x88 0xf8 flowid 1:11
    """
    link_kbit = max(1, round(link_rate_mbps * 1000))
    shaped_kbit = max(1, round(link_kbit * SHAPING_FRACTION))
    kbits = {sid: max(1, round(mbps * 1000)) for sid, mbps in sorted(slice_rates_mbps.items())}
    if sum(kbits.values()) > link_kbit:
        shown = ", ".join(f"slice {sid}: {k}kbit" for sid, k in kbits.items())
        raise SlicingError(f"interface {intf}: slice rates ({shown}) add up to more than the link's "
                           f"{link_kbit}kbit; admit slices through admission control")
    holders: dict = {}
    for sid in kbits:
        if sid not in marks:
            raise SlicingError(f"interface {intf}: slice {sid} has no mark; admit it through admission control")
        holders.setdefault(marks[sid], []).append(sid)
    shared = {m: ids for m, ids in holders.items() if len(ids) > 1}
    if shared:
        mark, ids = min(shared.items())
        raise SlicingError(f"interface {intf}: slices {', '.join(map(str, ids))} share mark {mark} on one link; "
                           "admit slices through admission control, which gives them distinct marks")
    burst = str(max(_MIN_BURST_BYTES, math.ceil(link_rate_mbps * 1e6 / 8 / 1000)))
    best_effort_kbit = max(1, shaped_kbit - sum(kbits.values()))
    queue = _queue_packets(link_rate_mbps)  # a class may borrow up to the link rate (its ceil)
    dev = ["dev", intf]
    commands = [
        ["tc", "qdisc", "replace", *dev, "root", "handle", "1:", "htb", "default", "2"],
        ["tc", "class", "replace", *dev, "parent", "1:", "classid", "1:1", "htb",
         "rate", f"{shaped_kbit}kbit", "ceil", f"{shaped_kbit}kbit", "burst", burst],
        ["tc", "class", "replace", *dev, "parent", "1:1", "classid", BEST_EFFORT_CLASS, "htb",
         "rate", f"{best_effort_kbit}kbit", "ceil", f"{shaped_kbit}kbit", "burst", burst],
        ["tc", "qdisc", "replace", *dev, "parent", BEST_EFFORT_CLASS, "handle", "2:", "pfifo",
         "limit", str(queue)],
    ]
    for sid, kbit in kbits.items():
        classid = slice_class(sid)
        commands += [
            ["tc", "class", "replace", *dev, "parent", "1:1", "classid", classid, "htb",
             "rate", f"{kbit}kbit", "ceil", f"{shaped_kbit}kbit", "burst", burst],
            ["tc", "qdisc", "replace", *dev, "parent", classid, "handle", classid.split(":")[1] + ":", "pfifo",
             "limit", str(queue)],
            ["tc", "filter", "replace", *dev, "parent", "1:", "protocol", "ipv6", "prio", "1",
             "handle", slice_filter_handle(sid), "u32", "match", "ip6", "priority",
             hex(slice_traffic_class(marks[sid])),
             hex(TRAFFIC_CLASS_SLICE_MASK), "flowid", classid],
        ]
    return commands


def directed_slice_rates(admissions: Iterable[Admission]) -> dict:
    """``{(u, v): {slice id: Mbit/s}}``: what each slice reserved from ``u`` towards ``v``.

    Examples
    --------
    >>> from cpn_net.srv6.paths import Path
    >>> adm = Admission("s", 4, 5.0, {("a", "b"): Path(("a", "b"), 1.0, 1, None),
    ...                               ("b", "a"): Path(("b", "a"), 1.0, 1, None)})
    >>> directed_slice_rates([adm])
    {('a', 'b'): {4: 5.0}, ('b', 'a'): {4: 5.0}}
    """
    rates: dict = {}
    for admission in admissions:
        for arc, mbps in admission.directed_mbps().items():
            per_slice = rates.setdefault(arc, {})
            per_slice[admission.slice_id] = per_slice.get(admission.slice_id, 0.0) + mbps
    return rates


def queue_commands(G: nx.Graph, interfaces, admissions: Iterable[Admission]) -> dict[tuple[str, str], list]:
    """HTB commands for every router WAN interface of a shaped link.

    Parameters
    ----------
    G : networkx.Graph
        The site graph; links with ``rate_mbps`` None are unshaped and get no queues.
    interfaces : cpn_net.srv6.interfaces.InterfacePlan
        Names the interface of site ``u`` towards ``v``.
    admissions : iterable of Admission

    Returns
    -------
    dict
        ``{(site, ifname): commands}``: run in the router of ``site``.
        Interfaces no slice crosses get the root and best-effort class only.
    """
    admissions = list(admissions)
    rates = directed_slice_rates(admissions)
    marks = {a.slice_id: a.mark for a in admissions}
    out: dict = {}
    for a, b, rate in G.edges(data="rate_mbps"):
        if rate is None:
            continue
        for u, v in sorted(((a, b), (b, a)), key=lambda arc: (G.nodes[arc[0]].get("id", 0), str(arc))):
            ifname = interfaces.wan_ifname(u, v)
            out[(u, ifname)] = wan_queue_commands(ifname, float(rate), rates.get((u, v), {}), marks)
    return out


def slice_table(spec: SliceSpec) -> int:
    """The routing table a slice is decapsulated into: ``100 + id`` if isolated, else main (254).

    Examples
    --------
    >>> slice_table(SliceSpec("s", 7, ("a",), ("u1-1",), ("a",), 1.0)), \\
    ...     slice_table(SliceSpec("t", 7, ("a",), ("u1-1",), ("a",), 1.0, isolation=False))
    (107, 254)
    """
    return SLICE_TABLE_BASE + spec.id if spec.isolation else MAIN_TABLE


def decap_tables(topology, spec: SliceSpec) -> tuple[SliceTable, ...]:
    """Per member site: the slice's table, its End.DT6 SID and the member routes it holds.

    Examples
    --------
    >>> from cpn_net.model import load_topology
    >>> topo = load_topology("topologies/tiny.yaml")
    >>> spec = SliceSpec("s", 2, ("east", "k3-1"), ("u1-1", "k1-1", "k3-1"), ("east", "west"), 5.0)
    >>> for t in decap_tables(topo, spec): print(t.site, t.table, t.sid, t.routes)
    east 102 fcbb:bb00:1:4:102:: ('2001:db8:1::1:1/128', '2001:db8:1::2:1/128')
    west 102 fcbb:bb00:3:4:102:: ('2001:db8:3::2:1/128',)
    """
    table = slice_table(spec)
    out = []
    for name in spec.sites:
        site = topology.site(name)
        routes = tuple(f"{h.address}/128" for h in site.hosts if h.name in spec.hosts) if spec.isolation else ()
        out.append(SliceTable(spec.name, name, site.id, table, end_dt6_sid(site.id, table), routes))
    return tuple(out)
