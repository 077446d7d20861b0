"""The network plan: every node, interface, MAC, address and switch port, decided up front.

Pure: the plan is computed from a :class:`~cpn_net.model.Topology` alone, so the
emulator builds exactly it, the controller programs exactly it (it reads the
plan back from the manifest), and tests check it without root.

Wiring of a site (ids from :mod:`cpn_net.model.addressing`)::

    u<s>-<n>-eth0 ── s<s>-eth<2..>      clients first, then compute nodes
    k<s>-<n>-eth0 ── s<s>-eth<..>
    r<s>-eth0     ── s<s>-eth1          the router is always switch port 1
    r<s>-eth<k>   ── l<a>x<b>-eth0|1    WAN links, k = 1, 2, ... in link-number order;
                                         eth0 of the link node faces the lower site id

MACs are locally administered and readable: ``02:00:<site:16 bits>:<role>:<intf>``
for site nodes (role 01 = router, 10+n = client n, 80+n = compute n) and
``02:01:<link:16 bits>:00:<intf>`` for link nodes.

WAN interfaces get MTU 9000 so that SRv6 encapsulation (40-byte outer header,
8-byte SRH plus 16 bytes per segment) never needs fragmentation of a 1500-byte
host packet.

Examples
--------
>>> from cpn_net.model.addressing import host_address
>>> mac_address(12, 0x01, 0)
'02:00:00:0c:01:00'
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from cpn_net.model import addressing

WAN_MTU = 9000
LAN_MTU = 1500
ROLE_ROUTER = 0x01
ROLE_CLIENT = 0x10
ROLE_COMPUTE = 0x80


@dataclasses.dataclass(frozen=True)
class Interface:
    """One end of a veth pair."""

    node: str
    name: str
    mac: str
    mtu: int
    addresses: tuple[str, ...] = ()  # "addr/prefixlen"
    peer_node: str = ""
    peer_name: str = ""
    port: int | None = None  # OpenFlow port number when the peer is a switch, or the switch's own port


@dataclasses.dataclass(frozen=True)
class Node:
    name: str
    kind: str  # router | switch | client | compute | link
    site: str | None
    site_id: int | None
    interfaces: tuple[Interface, ...] = ()

    @property
    def namespace(self) -> str | None:
        """Named namespace (``ip netns``); switches live in the root namespace."""
        return None if self.kind == "switch" else addressing.namespace(self.name)

    def interface(self, name: str) -> Interface:
        for intf in self.interfaces:
            if intf.name == name:
                return intf
        raise KeyError(f"node {self.name} has no interface {name!r}")


@dataclasses.dataclass(frozen=True)
class WanLink:
    """A WAN link: router interface, link element, router interface."""

    number: int
    element: str  # link node name
    site_a: str  # lower site id side
    site_b: str
    router_a: str
    router_b: str
    intf_a: str  # router a's interface
    intf_b: str
    element_a: str  # link node interface facing router a
    element_b: str
    address_a: str  # router a's WAN address (no prefix length)
    address_b: str
    delay_ms: float
    jitter_ms: float
    loss_pct: float
    rate_mbps: float | None

    def ends(self) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
        """((site, router, intf), ...) for both ends."""
        return ((self.site_a, self.router_a, self.intf_a), (self.site_b, self.router_b, self.intf_b))


@dataclasses.dataclass(frozen=True)
class NetworkPlan:
    topology: str
    nodes: tuple[Node, ...]
    wan_links: tuple[WanLink, ...]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node named {name!r} in the plan of {self.topology}")

    def nodes_of(self, kind: str) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind == kind)

    def veth_pairs(self) -> Iterable[tuple[Interface, Interface]]:
        """Every veth pair once, as (interface, peer interface)."""
        seen = set()
        for node in self.nodes:
            for intf in node.interfaces:
                key = frozenset({(intf.node, intf.name), (intf.peer_node, intf.peer_name)})
                if key in seen:
                    continue
                seen.add(key)
                yield intf, self.node(intf.peer_node).interface(intf.peer_name)

    def wan_link(self, site_or_router_a: str, site_or_router_b: str) -> WanLink:
        wanted = {site_or_router_a, site_or_router_b}
        for link in self.wan_links:
            if wanted in ({link.site_a, link.site_b}, {link.router_a, link.router_b}):
                return link
        raise KeyError(f"no WAN link between {site_or_router_a} and {site_or_router_b}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NetworkPlan":
        nodes = tuple(
            Node(**{**n, "interfaces": tuple(Interface(**{**i, "addresses": tuple(i["addresses"])})
                                             for i in n["interfaces"])})
            for n in data["nodes"])
        return cls(data["topology"], nodes, tuple(WanLink(**w) for w in data["wan_links"]))


def mac_address(site_or_link: int, role: int, intf_index: int, *, link: bool = False) -> str:
    """A readable, locally administered MAC (see the module docstring)."""
    octets = [0x02, 0x01 if link else 0x00, site_or_link >> 8, site_or_link & 0xFF, role, intf_index]
    return ":".join(f"{o:02x}" for o in octets)


def build_plan(topology) -> NetworkPlan:
    """Decide every node, interface, address and port of ``topology``'s network.

    Parameters
    ----------
    topology : cpn_net.model.Topology

    Returns
    -------
    NetworkPlan
    """
    intfs: dict[str, list[Interface]] = {}
    kinds: dict[str, tuple[str, str | None, int | None]] = {}

    def add_pair(a: Interface, b: Interface) -> None:
        intfs.setdefault(a.node, []).append(dataclasses.replace(a, peer_node=b.node, peer_name=b.name))
        intfs.setdefault(b.node, []).append(dataclasses.replace(b, peer_node=a.node, peer_name=a.name))

    for site in topology.sites:
        sid = site.id
        router, switch = addressing.router_name(sid), addressing.switch_name(sid)
        kinds[router] = ("router", site.name, sid)
        kinds[switch] = ("switch", site.name, sid)
        lan_len = addressing.site_lan(sid).prefixlen
        add_pair(
            Interface(router, f"{router}-eth0", mac_address(sid, ROLE_ROUTER, 0), LAN_MTU,
                      (f"{addressing.router_lan_address(sid)}/{lan_len}",), port=1),
            Interface(switch, f"{switch}-eth1", mac_address(sid, 0, 1), LAN_MTU, port=1))
        port = 2
        for host in tuple(site.clients) + tuple(site.compute):
            role = (ROLE_CLIENT if host.kind == "client" else ROLE_COMPUTE) + host.index
            kinds[host.name] = (host.kind, site.name, sid)
            add_pair(
                Interface(host.name, f"{host.name}-eth0", mac_address(sid, role, 0), LAN_MTU,
                          (f"{host.address}/{lan_len}",), port=port),
                Interface(switch, f"{switch}-eth{port}", mac_address(sid, 0, port), LAN_MTU, port=port))
            port += 1

    wan_links = []
    next_wan_intf: dict[str, int] = {}
    for link in sorted(topology.links, key=lambda l: l.number):
        site_a, site_b = sorted((topology.site(link.a), topology.site(link.b)), key=lambda s: s.id)
        element = addressing.link_node_name(site_a.id, site_b.id)
        kinds[element] = ("link", None, None)
        ends = []
        for side, site in enumerate((site_a, site_b)):
            router = addressing.router_name(site.id)
            k = next_wan_intf.get(router, 1)
            next_wan_intf[router] = k + 1
            address = addressing.wan_address(link.number, site.id)
            prefix_len = addressing.wan_prefix(link.number).prefixlen
            add_pair(
                Interface(router, f"{router}-eth{k}", mac_address(site.id, ROLE_ROUTER, k), WAN_MTU,
                          (f"{address}/{prefix_len}",)),
                Interface(element, f"{element}-eth{side}",
                          mac_address(link.number, 0, side, link=True), WAN_MTU))
            ends.append((site, router, f"{router}-eth{k}", f"{element}-eth{side}", str(address)))
        (sa, ra, ia, ea, aa), (sb, rb, ib, eb, ab) = ends
        wan_links.append(WanLink(
            number=link.number, element=element, site_a=sa.name, site_b=sb.name,
            router_a=ra, router_b=rb, intf_a=ia, intf_b=ib, element_a=ea, element_b=eb,
            address_a=aa, address_b=ab, delay_ms=link.delay_ms, jitter_ms=link.jitter_ms,
            loss_pct=link.loss_pct, rate_mbps=link.rate_mbps))

    nodes = tuple(
        Node(name, kind, site, sid, tuple(intfs.get(name, ())))
        for name, (kind, site, sid) in kinds.items())
    return NetworkPlan(topology.name, nodes, tuple(wan_links))
