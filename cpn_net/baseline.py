"""Baseline reachability: what the controller installs so every host reaches every host.

Pure decisions from the :class:`~cpn_net.emulation.plan.NetworkPlan`:

- on each router, for every other site, a route to that site's LAN /64 and to its
  SRv6 locator /48, via the next hop on the IGP path (:mod:`cpn_net.srv6.igp`:
  minimum configured delay, ties to the smallest site id, so every run installs
  the same paths);
- on each site switch, L2 forwarding on the plan's static MACs, with IPv6
  multicast (neighbour discovery) flooded.

Examples
--------
>>> RouteSpec("2001:db8:2::/64", "fd00:1::2", "r1-eth1").dst
'2001:db8:2::/64'
"""

from __future__ import annotations

import dataclasses

from cpn_net.emulation.plan import NetworkPlan
from cpn_net.model import addressing
from cpn_net.openflow import FLOOD, TABLE_CLASSIFY, TABLE_FORWARD, FlowSpec
from cpn_net.srv6.baseline import igp_routes, router_baseline
from cpn_net.srv6.igp import Igp
from cpn_net.srv6.interfaces import InterfacePlan

IPV6_MULTICAST_MAC = "33:33:00:00:00:00/ff:ff:00:00:00:00"
PRIORITY_HOST = 100
PRIORITY_MULTICAST = 10
MAIN_TABLE = 254


@dataclasses.dataclass(frozen=True, order=True)
class RouteSpec:
    """An IPv6 route on a router: ``ip -6 route replace DST via GATEWAY dev DEV``."""

    dst: str
    gateway: str
    dev: str


def site_graph(plan: NetworkPlan, down: frozenset = frozenset()):
    """The sites and WAN links of a plan as the graph the IGP and path computation run on.

    ``down`` holds links (``frozenset({site_a, site_b})``) to leave out: links
    that are down are not part of the topology routing sees.
    """
    import networkx as nx

    graph = nx.Graph()
    for router in plan.nodes_of("router"):
        graph.add_node(router.site, id=router.site_id)
    for link in plan.wan_links:
        if frozenset((link.site_a, link.site_b)) not in down:
            graph.add_edge(link.site_a, link.site_b, delay_ms=link.delay_ms, number=link.number,
                           rate_mbps=link.rate_mbps)
    return graph


def interface_plan(plan: NetworkPlan) -> InterfacePlan:
    """Which router interface faces which neighbour, read off the plan."""
    wan, lan = {}, {}
    for router in plan.nodes_of("router"):
        lan[router.site] = router.interfaces[0].name
    for link in plan.wan_links:
        wan[(link.site_a, link.site_b)] = link.intf_a
        wan[(link.site_b, link.site_a)] = link.intf_b
    return InterfacePlan(wan, lan)


def router_specs(plan: NetworkPlan, graph=None, *, igp: Igp | None = None,
                 tables=(MAIN_TABLE,)) -> dict[str, tuple[dict, ...]]:
    """Every router's baseline netlink state as pyroute2 route specs.

    IGP routes to every other site's LAN and locator, then the router's local
    SIDs: End, End.X per neighbour, End.DX6 per host of the site, End.DT6 per
    table (:mod:`cpn_net.srv6.baseline`).
    """
    graph = graph if graph is not None else site_graph(plan)
    igp = igp or Igp(graph)
    interfaces = interface_plan(plan)
    hosts: dict[str, list] = {}
    for node in plan.nodes:
        if node.kind in ("client", "compute"):
            hosts.setdefault(node.site, []).append((node.kind, int(node.name.rsplit("-", 1)[1])))
    return {router.name: router_baseline(graph, router.site, interfaces, hosts=hosts.get(router.site, ()),
                                         tables=tables, igp=igp)
            for router in plan.nodes_of("router")}


def igp_paths(plan: NetworkPlan, source_site: str) -> dict[str, tuple[str, ...]]:
    """The IGP's path (minimum delay, ties to the smallest site id) from one site to all others.

    The one IGP definition is :mod:`cpn_net.srv6.igp`; SRv6 segment-list
    minimisation assumes exactly these paths.
    """
    igp = Igp(site_graph(plan))
    return {router.site: igp.path(source_site, router.site) for router in plan.nodes_of("router")}


def router_routes(plan: NetworkPlan) -> dict[str, list[RouteSpec]]:
    """The IGP routes of :func:`router_specs` as :class:`RouteSpec` (tests, ``cpn status``)."""
    graph = site_graph(plan)
    igp = Igp(graph)
    interfaces = interface_plan(plan)
    return {router.name: [RouteSpec(spec["dst"], spec["gateway"], spec["oif"])
                          for spec in igp_routes(graph, router.site, interfaces, igp=igp)]
            for router in plan.nodes_of("router")}


def switch_flows(plan: NetworkPlan) -> dict[int, list[FlowSpec]]:
    """Baseline flow entries per site switch, keyed by datapath id (= site id)."""
    flows: dict[int, list[FlowSpec]] = {}
    for switch in plan.nodes_of("switch"):
        entries = [FlowSpec(TABLE_CLASSIFY, 0, goto_table=TABLE_FORWARD)]
        for intf in switch.interfaces:
            peer = plan.node(intf.peer_node).interface(intf.peer_name)
            entries.append(FlowSpec(TABLE_FORWARD, PRIORITY_HOST, (("eth_dst", peer.mac),),
                                    (("output", intf.port),)))
        entries.append(FlowSpec(TABLE_FORWARD, PRIORITY_MULTICAST, (("eth_dst", IPV6_MULTICAST_MAC),),
                                (("output", FLOOD),)))
        flows[switch.site_id] = entries
    return flows
