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
from cpn_net.srv6.igp import Igp

IPV6_MULTICAST_MAC = "33:33:00:00:00:00/ff:ff:00:00:00:00"
PRIORITY_HOST = 100
PRIORITY_MULTICAST = 10


@dataclasses.dataclass(frozen=True)
class RouteSpec:
    """An IPv6 route on a router: ``ip -6 route replace DST via GATEWAY dev DEV``."""

    dst: str
    gateway: str
    dev: str


def site_graph(plan: NetworkPlan):
    """The sites and WAN links of a plan as the graph the IGP runs on."""
    import networkx as nx

    graph = nx.Graph()
    for router in plan.nodes_of("router"):
        graph.add_node(router.site, id=router.site_id)
    for link in plan.wan_links:
        graph.add_edge(link.site_a, link.site_b, delay_ms=link.delay_ms, number=link.number)
    return graph


def igp_paths(plan: NetworkPlan, source_site: str) -> dict[str, tuple[str, ...]]:
    """The IGP's path (minimum delay, ties to the smallest site id) from one site to all others.

    The one IGP definition is :mod:`cpn_net.srv6.igp`; SRv6 segment-list
    minimisation assumes exactly these paths.
    """
    igp = Igp(site_graph(plan))
    return {router.site: igp.path(source_site, router.site) for router in plan.nodes_of("router")}


def router_routes(plan: NetworkPlan) -> dict[str, list[RouteSpec]]:
    """Routes each router needs to reach every other site's LAN and locator."""
    routers = {n.site: n for n in plan.nodes_of("router")}
    routes: dict[str, list[RouteSpec]] = {}
    for site, router in routers.items():
        specs = []
        for target, path in sorted(igp_paths(plan, site).items(), key=lambda kv: routers[kv[0]].site_id):
            if target == site:
                continue
            link = plan.wan_link(path[0], path[1])
            gateway = link.address_b if link.site_a == site else link.address_a
            dev = link.intf_a if link.site_a == site else link.intf_b
            target_id = routers[target].site_id
            for prefix in (addressing.site_lan(target_id), addressing.locator(target_id)):
                specs.append(RouteSpec(str(prefix), gateway, dev))
        routes[router.name] = specs
    return routes


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
