"""Where the alternate-marking colour lives, who sets it, and who counts it (pure).

Colour bit (RFC 9341 §3.1, single marking): the IPv6 Traffic Class's DSCP field.
Two DSCP bits are ours:

=========  ==================================================================
DSCP bit   meaning
=========  ==================================================================
0x20       *monitored*: the packet entered at a site switch and was coloured
0x01       the colour of the packet's block (0 or 1)
=========  ==================================================================

so coloured traffic carries DSCP ``0x20`` (colour 0) or ``0x21`` (colour 1), and
traffic the routers make themselves (neighbour discovery, ...) is never
mistaken for either. Bits 0x1e carry a slice's mark (1..:data:`MAX_SLICE_MARK`,
:mod:`cpn_net.slicing.realise`; 0 is no slice). Linux copies the inner
Traffic Class to the outer header on seg6 encapsulation, so transit routers
count SRv6 traffic by the same bits.

- Colouring: the ingress site switch sets the DSCP on every IPv6 packet coming
  from a host port (OpenFlow 1.3 ``set_field ip_dscp``), flipped by the
  controller at every period boundary: :func:`colour_flows`.
- Counting: every router interface counts per colour in each direction with
  nftables (netdev ``ingress`` and ``egress`` hooks, named counters):
  :func:`nft_ruleset`; counter ``<intf>_<in|out>_c<colour>`` is measurement point
  ``<intf>:<in|out>`` (:mod:`cpn_net.telemetry.points`). WAN interfaces also
  count per slice mark: counter ``<intf>_<in|out>_m<mark>_c<colour>`` is point
  ``<intf>:<in|out>/m<mark>``. Admission gives a mark to at most one slice per
  link, so a link's per-mark loss is that slice's own loss.
- A WAN link direction u->v is the pair of points (u's interface ``:out``,
  v's interface ``:in``): :func:`link_points`.

Examples
--------
>>> dscp_of(0), dscp_of(1), colour_of_dscp(0x21), colour_of_dscp(0x0a)
(32, 33, 1, None)
>>> counter_name("r1-eth2", "out", 1), point_of_counter("r1-eth2_out_c1")
('r1-eth2_out_c1', ('r1-eth2:out', 1))
>>> counter_name("r1-eth2", "in", 0, mark=3), point_of_counter("r1-eth2_in_m3_c0")
('r1-eth2_in_m3_c0', ('r1-eth2:in/m3', 0))
"""

from __future__ import annotations

from cpn_net.openflow import TABLE_CLASSIFY, TABLE_FORWARD, FlowSpec

MONITORED_BIT = 0x20
COLOUR_BIT = 0x01
NFT_TABLE = "cpn_altmark"
COOKIE_ALTMARK = 0xC0DE0A17
PRIORITY_COLOUR = 50
ETH_TYPE_IPV6 = 0x86DD
#: Slice marks live in DSCP bits 1..4: marks 1..15.
MAX_SLICE_MARK = 15


def dscp_of(colour: int) -> int:
    return MONITORED_BIT | (COLOUR_BIT if colour else 0)


def colour_of_dscp(dscp: int) -> int | None:
    """The colour a DSCP value carries, None when the packet is not monitored."""
    if dscp & MONITORED_BIT == 0:
        return None
    return dscp & COLOUR_BIT


def colour_of_frame(frame: bytes) -> int | None:
    """Colour of an Ethernet frame carrying IPv6 (None: not IPv6 or not monitored).

    >>> frame = bytes(12) + b"\\x86\\xdd" + bytes([0x60 | (0x84 >> 4), (0x84 & 0x0f) << 4]) + bytes(38)
    >>> colour_of_frame(frame)  # traffic class 0x84 = DSCP 0x21
    1
    """
    if len(frame) < 16 or frame[12:14] != b"\x86\xdd":
        return None
    traffic_class = ((frame[14] & 0x0F) << 4) | (frame[15] >> 4)
    return colour_of_dscp(traffic_class >> 2)


def counter_name(interface: str, direction: str, colour: int, mark: int | None = None) -> str:
    if mark is None:
        return f"{interface}_{direction}_c{colour}"
    return f"{interface}_{direction}_m{mark}_c{colour}"


def mark_point(point: str, mark: int) -> str:
    """The measurement point counting slice mark ``mark`` at ``point``: ``r1-eth1:out/m3``."""
    return f"{point}/m{mark}"


def point_of_counter(name: str) -> tuple[str, int]:
    """``(measurement point, colour)`` of a counter named by :func:`counter_name`."""
    head, colour = name.rsplit("_", 1)
    rest, last = head.rsplit("_", 1)
    if last.startswith("m") and last[1:].isdigit():  # <intf>_<dir>_m<mark>_c<colour>
        interface, direction = rest.rsplit("_", 1)
        return mark_point(f"{interface}:{direction}", int(last[1:])), int(colour[1:])
    return f"{rest}:{last}", int(colour[1:])


def mark_dscp(mark: int, colour: int) -> int:
    """The DSCP of slice mark ``mark``'s packets in ``colour``: ``(mark << 1) | 0x20 | colour``."""
    return (mark << 1) | dscp_of(colour)


def slice_dscp_values(mark: int) -> dict[int, int]:
    """``{colour: DSCP}`` of a slice mark's packets.

    >>> slice_dscp_values(3)
    {0: 38, 1: 39}
    """
    return {colour: mark_dscp(mark, colour) for colour in (0, 1)}


def nft_ruleset(interfaces, mark_interfaces=()) -> str:
    """An nftables ruleset counting coloured packets per interface, direction and colour.

    ``mark_interfaces`` (the WAN interfaces) also count per slice mark: a verdict
    map on the DSCP jumps to one chain per mark and colour holding its counter
    (nft 1.0.6 mistranslates a counter map keyed on ``ip6 dscp``, seen here).
    """
    lines = [f"table netdev {NFT_TABLE} {{"]
    for intf in interfaces:
        for direction in ("in", "out"):
            for colour in (0, 1):
                lines.append(f"  counter {counter_name(intf, direction, colour)} {{}}")
    mark_chains = {}
    for intf in mark_interfaces:
        for direction in ("in", "out"):
            entries = []
            for mark in range(1, MAX_SLICE_MARK + 1):
                for colour, dscp in slice_dscp_values(mark).items():
                    name = counter_name(intf, direction, colour, mark)
                    lines.append(f"  counter {name} {{}}")
                    chain = name.replace("-", "_")
                    lines.append(f'  chain {chain} {{ counter name "{name}"; }}')
                    entries.append(f"{dscp} : jump {chain}")
            mark_chains[(intf, direction)] = "ip6 dscp vmap { " + ", ".join(entries) + " }"
    # Sets of whole DSCP values rather than a bit mask: nft 1.0.6 mistranslates
    # "ip6 dscp & mask == value" (seen here), and sets leave the slice bits free.
    values = {c: "{ " + ", ".join(str(v) for v in range(64) if colour_of_dscp(v) == c) + " }" for c in (0, 1)}
    for intf in interfaces:
        for direction, hook in (("in", "ingress"), ("out", "egress")):
            rules = "; ".join([f'ip6 dscp {values[c]} counter name "{counter_name(intf, direction, c)}"'
                               for c in (0, 1)] + ([mark_chains[(intf, direction)]]
                                                   if (intf, direction) in mark_chains else []))
            chain = f"{intf.replace('-', '_')}_{direction}"
            lines.append(f'  chain {chain} {{ type filter hook {hook} device "{intf}" priority 0; {rules}; }}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def colour_flows(switch_node, colour: int) -> list[FlowSpec]:
    """Flows of a site switch colouring IPv6 packets from its host ports (not from the router)."""
    flows = []
    for intf in switch_node.interfaces:
        if intf.port == 1:  # the router's port: traffic from the WAN keeps its colour
            continue
        flows.append(FlowSpec(TABLE_CLASSIFY, PRIORITY_COLOUR,
                              (("in_port", intf.port), ("eth_type", ETH_TYPE_IPV6)),
                              (("set_field", "ip_dscp", dscp_of(colour)),),
                              goto_table=TABLE_FORWARD, cookie=COOKIE_ALTMARK))
    return flows


def link_points(wan_link) -> dict[str, tuple[str, str]]:
    """Both directions of a WAN link as ``{"a->b": (upstream point, downstream point)}``."""
    return {
        f"{wan_link.router_a}->{wan_link.router_b}": (f"{wan_link.intf_a}:out", f"{wan_link.intf_b}:in"),
        f"{wan_link.router_b}->{wan_link.router_a}": (f"{wan_link.intf_b}:out", f"{wan_link.intf_a}:in"),
    }
