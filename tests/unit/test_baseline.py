"""Tests of baseline reachability: IGP paths, router routes, site switch flows."""

import ipaddress

import networkx as nx
import pytest

from cpn_net.baseline import IPV6_MULTICAST_MAC, RouteSpec, igp_paths, router_routes, switch_flows
from cpn_net.emulation.plan import build_plan
from cpn_net.model import addressing, load_topology
from cpn_net.model.yaml_format import parse_yaml_topology
from cpn_net.openflow import FakeFlowTable

TOPOLOGIES = ("topologies/tiny.yaml", "topologies/east-data-west-compute.yaml")

# Two equal-delay paths a(1) -> d(4): via b(2) and via c(3). Names are chosen so
# that alphabetical order of names disagrees with site-id order (b is "zeta").
SQUARE_LINKS = [
    "{a: alpha, b: zeta, delay_ms: 5}",
    "{a: zeta, b: delta, delay_ms: 5}",
    "{a: alpha, b: beta, delay_ms: 5}",
    "{a: beta, b: delta, delay_ms: 5}",
]


def _square(links):
    text = ("name: square\n"
            "sites: [{name: alpha, id: 1}, {name: zeta, id: 2}, {name: beta, id: 3}, {name: delta, id: 4}]\n"
            "links:\n" + "".join(f"  - {link}\n" for link in links))
    return build_plan(parse_yaml_topology(text, "square.yaml"))


@pytest.fixture(scope="module", params=TOPOLOGIES)
def plan(request):
    return build_plan(load_topology(request.param))


# ------------------------------------------------------------------ IGP paths
@pytest.mark.parametrize("links", [SQUARE_LINKS, SQUARE_LINKS[::-1], SQUARE_LINKS[2:] + SQUARE_LINKS[:2]])
def test_equal_delay_tie_goes_to_smallest_site_id_sequence_whatever_the_file_order(links):
    plan = _square(links)
    assert igp_paths(plan, "alpha")["delta"] == ("alpha", "zeta", "delta")  # ids 1, 2, 4 < 1, 3, 4
    assert igp_paths(plan, "delta")["alpha"] == ("delta", "zeta", "alpha")  # ids 4, 2, 1 < 4, 3, 1


def test_tie_is_judged_on_the_whole_sequence_not_the_hop_count():
    # 1-2-3-5 (three hops) and 1-4-5 (two hops) both take 3 ms; (1, 2, 3, 5) < (1, 4, 5)
    plan = build_plan(parse_yaml_topology("""
name: hops
sites: [{name: p1, id: 1}, {name: p2, id: 2}, {name: p3, id: 3}, {name: p4, id: 4}, {name: p5, id: 5}]
links:
  - {a: p1, b: p4, delay_ms: 1.5}
  - {a: p4, b: p5, delay_ms: 1.5}
  - {a: p1, b: p2, delay_ms: 1}
  - {a: p2, b: p3, delay_ms: 1}
  - {a: p3, b: p5, delay_ms: 1}
""", "hops.yaml"))
    assert igp_paths(plan, "p1")["p5"] == ("p1", "p2", "p3", "p5")


def test_float_rounding_does_not_break_a_tie():
    # 0.1 + 0.2 != 0.3 in binary floating point; the two paths are equal all the same
    plan = build_plan(parse_yaml_topology("""
name: floats
sites: [{name: a, id: 1}, {name: b, id: 2}, {name: d, id: 4}]
links: [{a: a, b: d, delay_ms: 0.3}, {a: a, b: b, delay_ms: 0.1}, {a: b, b: d, delay_ms: 0.2}]
""", "floats.yaml"))
    assert igp_paths(plan, "a")["d"] == ("a", "b", "d")


def test_a_strictly_shorter_path_beats_a_smaller_id_sequence():
    plan = _square(SQUARE_LINKS[:2] + ["{a: alpha, b: beta, delay_ms: 4.9}", "{a: beta, b: delta, delay_ms: 5}"])
    assert igp_paths(plan, "alpha")["delta"] == ("alpha", "beta", "delta")


def _path_delay(graph, path):
    return sum(graph.edges[u, v]["delay_ms"] for u, v in zip(path, path[1:]))


def test_igp_paths_are_valid_shortest_and_smallest_among_ties(plan):
    graph = nx.Graph()
    site_id = {n.site: n.site_id for n in plan.nodes_of("router")}
    graph.add_nodes_from(site_id)
    for link in plan.wan_links:
        graph.add_edge(link.site_a, link.site_b, delay_ms=link.delay_ms)
    for source in site_id:
        paths = igp_paths(plan, source)
        assert set(paths) == set(site_id)
        assert paths[source] == (source,)
        lengths = nx.single_source_dijkstra_path_length(graph, source, weight="delay_ms")
        for target, path in paths.items():
            assert path[0] == source and path[-1] == target and len(set(path)) == len(path)
            assert all(graph.has_edge(u, v) for u, v in zip(path, path[1:]))
            assert _path_delay(graph, path) == pytest.approx(lengths[target], abs=1e-9)
            ids = tuple(site_id[s] for s in path)
            for other in nx.all_shortest_paths(graph, source, target, weight="delay_ms"):
                assert ids <= tuple(site_id[s] for s in other)


def test_igp_paths_on_tiny_avoid_the_slow_direct_link():
    paths = igp_paths(build_plan(load_topology("topologies/tiny.yaml")), "east")
    assert paths == {"east": ("east",), "centre": ("east", "centre"), "west": ("east", "centre", "west")}


# -------------------------------------------------------------- router routes
def _owner_of_address(plan, address):
    """(router, interface) owning a WAN or LAN address in the plan."""
    for node in plan.nodes_of("router"):
        for intf in node.interfaces:
            if any(ipaddress.IPv6Interface(a).ip == address for a in intf.addresses):
                return node, intf
    raise AssertionError(f"no router owns {address}")


def walk(plan, routes, source_router, destination):
    """Follow RouteSpecs hop by hop from a router; return the sites visited.

    A router delivers locally when the destination is in its own LAN or
    locator; otherwise it takes the longest matching route, whose gateway must
    be on-link on the route's device and sit across the same link element.
    """
    destination = ipaddress.IPv6Address(destination)
    router = plan.node(source_router)
    visited = [router.site]
    while not (destination in addressing.site_lan(router.site_id)
               or destination in addressing.locator(router.site_id)):
        matches = [r for r in routes[router.name] if destination in ipaddress.IPv6Network(r.dst)]
        assert matches, f"{router.name} has no route to {destination}"
        best = max(matches, key=lambda r: ipaddress.IPv6Network(r.dst).prefixlen)
        assert [ipaddress.IPv6Network(r.dst).prefixlen for r in matches].count(
            ipaddress.IPv6Network(best.dst).prefixlen) == 1, f"ambiguous routes on {router.name}"
        dev = router.interface(best.dev)
        gateway = ipaddress.IPv6Address(best.gateway)
        assert gateway in ipaddress.IPv6Interface(dev.addresses[0]).network, f"{best} gateway not on-link"
        next_router, next_intf = _owner_of_address(plan, gateway)
        element = plan.node(dev.peer_node)
        assert element.kind == "link"
        far_end = next(i for i in element.interfaces if i.name != dev.peer_name)
        assert (far_end.peer_node, far_end.peer_name) == (next_router.name, next_intf.name)
        router = next_router
        assert router.site not in visited, f"routing loop: {visited + [router.site]}"
        visited.append(router.site)
    return tuple(visited)


def test_routes_reach_every_other_lan_and_locator_along_igp_paths(plan):
    routes = router_routes(plan)
    routers = plan.nodes_of("router")
    assert set(routes) == {r.name for r in routers}
    for source in routers:
        paths = igp_paths(plan, source.site)
        assert len(routes[source.name]) == 2 * (len(routers) - 1)
        for target in routers:
            if target is source:
                continue
            for address in (addressing.host_address(target.site_id, "compute", 1),
                            addressing.router_lan_address(target.site_id),
                            addressing.locator(target.site_id).network_address + 0x1234):
                assert walk(plan, routes, source.name, address) == paths[target.site]


def test_router_routes_on_tiny_are_exactly_these():
    routes = router_routes(build_plan(load_topology("topologies/tiny.yaml")))
    assert sorted(routes["r1"]) == sorted([
        RouteSpec("2001:db8:2::/64", "fd00:1::2", "r1-eth1"),
        RouteSpec("fcbb:bb00:2::/48", "fd00:1::2", "r1-eth1"),
        RouteSpec("2001:db8:3::/64", "fd00:1::2", "r1-eth1"),
        RouteSpec("fcbb:bb00:3::/48", "fd00:1::2", "r1-eth1"),
    ])


def test_interface_plan_read_off_the_plan_agrees_with_the_srv6_naming_convention():
    """Two descriptions of one convention (plan.py, InterfacePlan.by_link_number) must agree."""
    from cpn_net.baseline import interface_plan, site_graph
    from cpn_net.srv6.interfaces import InterfacePlan

    for path in ("topologies/tiny.yaml", "topologies/east-data-west-compute.yaml"):
        plan = build_plan(load_topology(path))
        assert interface_plan(plan) == InterfacePlan.by_link_number(site_graph(plan))


def test_no_route_points_at_the_router_itself(plan):
    for router, specs in router_routes(plan).items():
        node = plan.node(router)
        own = {ipaddress.IPv6Interface(a).ip for i in node.interfaces for a in i.addresses}
        assert not any(ipaddress.IPv6Address(s.gateway) in own for s in specs)
        assert not any(ipaddress.IPv6Network(s.dst).overlaps(addressing.site_lan(node.site_id)) for s in specs)


# --------------------------------------------------------------- switch flows
def test_switch_flows_keyed_by_datapath_id(plan):
    flows = switch_flows(plan)
    assert sorted(flows) == sorted(n.site_id for n in plan.nodes_of("switch"))


def test_unicast_to_each_local_mac_leaves_on_exactly_its_port(plan):
    flows = switch_flows(plan)
    for switch in plan.nodes_of("switch"):
        ports = tuple(i.port for i in switch.interfaces)
        table = FakeFlowTable(flows[switch.site_id], ports=ports)
        for intf in switch.interfaces:
            mac = plan.node(intf.peer_node).interface(intf.peer_name).mac
            for in_port in ports:
                if in_port != intf.port:
                    assert table.output_ports(in_port=in_port, eth_dst=mac) == [intf.port]


@pytest.mark.parametrize("group", ["33:33:00:00:00:01", "33:33:ff:00:00:01", "33:33:00:01:00:02"])
def test_ipv6_multicast_floods_to_every_other_port(plan, group):
    flows = switch_flows(plan)
    for switch in plan.nodes_of("switch"):
        ports = tuple(i.port for i in switch.interfaces)
        table = FakeFlowTable(flows[switch.site_id], ports=ports)
        for in_port in ports:
            assert sorted(table.output_ports(in_port=in_port, eth_dst=group)) == [p for p in ports if p != in_port]


def test_unknown_unicast_is_dropped(plan):
    flows = switch_flows(plan)
    switches = plan.nodes_of("switch")
    for switch in switches:
        table = FakeFlowTable(flows[switch.site_id], ports=tuple(i.port for i in switch.interfaces))
        local = {plan.node(i.peer_node).interface(i.peer_name).mac for i in switch.interfaces}
        foreign = [i.mac for n in plan.nodes if n.site_id != switch.site_id for i in n.interfaces]
        for mac in [m for m in foreign if m not in local][:20] + ["02:aa:bb:cc:dd:ee", "ff:ff:ff:ff:ff:ff"]:
            assert table.output_ports(in_port=1, eth_dst=mac) == []


def test_multicast_rule_is_the_ipv6_mapping_of_rfc_2464():
    assert IPV6_MULTICAST_MAC == "33:33:00:00:00:00/ff:ff:00:00:00:00"
