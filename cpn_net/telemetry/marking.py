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
mistaken for either. Bits 0x1e are left for slices. Linux copies the inner
Traffic Class to the outer header on seg6 encapsulation, so transit routers
count SRv6 traffic by the same bits.

- Colouring: the ingress site switch sets the DSCP on every IPv6 packet coming
  from a host port (OpenFlow 1.3 ``set_field ip_dscp``), flipped by the
  controller at every period boundary: :func:`colour_flows`.
- Counting: every router interface counts per colour in each direction with
  nftables (netdev ``ingress`` and ``egress`` hooks, named counters):
  :func:`nft_ruleset`; counter ``<intf>_<in|out>_c<colour>`` is measurement point
  ``<intf>:<in|out>`` (:mod:`cpn_net.telemetry.points`).
- A WAN link direction u->v is the pair of points (u's interface ``:out``,
  v's interface ``:in``): :func:`link_points`.

Examples
--------
>>> dscp_of(0), dscp_of(1), colour_of_dscp(0x21), colour_of_dscp(0x0a)
(32, 33, 1, None)
>>> counter_name("r1-eth2", "out", 1), point_of_counter("r1-eth2_out_c1")
('r1-eth2_out_c1', ('r1-eth2:out', 1))
"""

from __future__ import annotations

from cpn_net.openflow import TABLE_CLASSIFY, TABLE_FORWARD, FlowSpec

MONITORED_BIT = 0x20
COLOUR_BIT = 0x01
NFT_TABLE = "cpn_altmark"
COOKIE_ALTMARK = 0xC0DE0A17
PRIORITY_COLOUR = 50
ETH_TYPE_IPV6 = 0x86DD


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


def counter_name(interface: str, direction: str, colour: int) -> str:
    return f"{interface}_{direction}_c{colour}"


def point_of_counter(name: str) -> tuple[str, int]:
    """``(measurement point, colour)`` of a counter named by :func:`counter_name`."""
    interface, direction, colour = name.rsplit("_", 2)
    return f"{interface}:{direction}", int(colour[1:])


def nft_ruleset(interfaces) -> str:
    """An nftables ruleset counting coloured packets per interface, direction and colour."""
    lines = [f"table netdev {NFT_TABLE} {{"]
    for intf in interfaces:
        for direction in ("in", "out"):
            for colour in (0, 1):
                lines.append(f"  counter {counter_name(intf, direction, colour)} {{}}")
    # Sets of whole DSCP values rather than a bit mask: nft 1.0.6 mistranslates
    # "ip6 dscp & mask == value" (seen here), and sets leave the slice bits free.
    values = {c: "{ " + ", ".join(str(v) for v in range(64) if colour_of_dscp(v) == c) + " }" for c in (0, 1)}
    for intf in interfaces:
        for direction, hook in (("in", "ingress"), ("out", "egress")):
            rules = "; ".join(f'ip6 dscp {values[c]} counter name "{counter_name(intf, direction, c)}"'
                              for c in (0, 1))
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
