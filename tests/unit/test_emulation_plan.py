"""Tests of the network plan: names, MACs, veth pairs, ports, addresses, MTUs."""

import ipaddress
import json

import pytest

from cpn_net.emulation.plan import (
    LAN_MTU,
    WAN_MTU,
    NetworkPlan,
    build_plan,
    mac_address,
)
from cpn_net.model import addressing, load_topology
from cpn_net.model.yaml_format import parse_yaml_topology

TOPOLOGIES = ("topologies/tiny.yaml", "topologies/east-data-west-compute.yaml")

# Sites listed out of id order and links whose ends are written high id first,
# so the plan's "lower site id" and "link-number order" rules are exercised.
SHUFFLED = """
name: shuffled
sites:
  - {name: west, id: 7, clients: 2, compute: 1}
  - {name: east, id: 3, clients: 0, compute: 2}
  - {name: north, id: 12, clients: 1, compute: 0}
links:
  - {a: west, b: east, delay_ms: 4}
  - {a: north, b: west, delay_ms: 6, jitter_ms: 1, loss_pct: 0.5, rate_mbps: 20}
  - {a: north, b: east, delay_ms: 9}
"""


@pytest.fixture(scope="module", params=TOPOLOGIES + ("shuffled",))
def topo_plan(request):
    if request.param == "shuffled":
        topology = parse_yaml_topology(SHUFFLED, "shuffled.yaml")
    else:
        topology = load_topology(request.param)
    return topology, build_plan(topology)


@pytest.fixture(scope="module")
def shuffled():
    return build_plan(parse_yaml_topology(SHUFFLED, "shuffled.yaml"))


def _all_interfaces(plan):
    return [intf for node in plan.nodes for intf in node.interfaces]


def test_every_topology_node_is_planned_once_with_its_kind(topo_plan):
    topology, plan = topo_plan
    expected = {}
    for site in topology.sites:
        expected[site.router] = ("router", site.name, site.id)
        expected[site.switch] = ("switch", site.name, site.id)
        for host in site.hosts:
            expected[host.name] = (host.kind, site.name, site.id)
    for link in topology.links:
        expected[link.node_name] = ("link", None, None)
    names = [n.name for n in plan.nodes]
    assert len(names) == len(set(names))
    assert {n.name: (n.kind, n.site, n.site_id) for n in plan.nodes} == expected


def test_macs_are_unique_locally_administered_unicast(topo_plan):
    _topology, plan = topo_plan
    macs = [intf.mac for intf in _all_interfaces(plan)]
    assert len(macs) == len(set(macs))
    for mac in macs:
        octets = [int(o, 16) for o in mac.split(":")]
        assert len(octets) == 6 and all(0 <= o <= 0xFF for o in octets), mac
        assert octets[0] & 0b10 and not octets[0] & 0b01, f"{mac} must be local and unicast"


def test_interface_names_are_unique_per_node_and_fit_linux(topo_plan):
    _topology, plan = topo_plan
    for node in plan.nodes:
        names = [intf.name for intf in node.interfaces]
        assert len(names) == len(set(names)), node.name
        for intf in node.interfaces:
            assert intf.node == node.name and intf.name.startswith(f"{node.name}-eth")
            assert len(intf.name) <= 15


def test_every_veth_pair_is_symmetric(topo_plan):
    _topology, plan = topo_plan
    for intf in _all_interfaces(plan):
        peer = plan.node(intf.peer_node).interface(intf.peer_name)
        assert (peer.peer_node, peer.peer_name) == (intf.node, intf.name)
        assert peer.mtu == intf.mtu
    pairs = list(plan.veth_pairs())
    assert 2 * len(pairs) == len(_all_interfaces(plan))
    covered = {(i.node, i.name) for pair in pairs for i in pair}
    assert covered == {(i.node, i.name) for i in _all_interfaces(plan)}


def test_switch_ports_router_first_then_clients_then_compute(topo_plan):
    topology, plan = topo_plan
    for site in topology.sites:
        switch = plan.node(site.switch)
        by_port = {intf.port: intf for intf in switch.interfaces}
        assert sorted(by_port) == list(range(1, 2 + len(site.hosts)))
        for port, intf in by_port.items():
            assert intf.name == f"{site.switch}-eth{port}"
        assert by_port[1].peer_node == site.router and by_port[1].peer_name == f"{site.router}-eth0"
        hosts = [by_port[p].peer_node for p in range(2, 2 + len(site.hosts))]
        assert hosts == [c.name for c in site.clients] + [k.name for k in site.compute]
        # the switch-facing end carries the same OpenFlow port number
        for port, intf in by_port.items():
            assert plan.node(intf.peer_node).interface(intf.peer_name).port == port


def test_lan_addresses_and_mtus_follow_the_addressing_plan(topo_plan):
    topology, plan = topo_plan
    for site in topology.sites:
        router_lan = plan.node(site.router).interface(f"{site.router}-eth0")
        assert router_lan.addresses == (f"{addressing.router_lan_address(site.id)}/64",)
        assert router_lan.mtu == LAN_MTU
        for host in site.hosts:
            (intf,) = plan.node(host.name).interfaces
            assert intf.name == f"{host.name}-eth0"
            assert intf.addresses == (f"{addressing.host_address(site.id, host.kind, host.index)}/64",)
            assert ipaddress.IPv6Interface(intf.addresses[0]).network == addressing.site_lan(site.id)
            assert intf.mtu == LAN_MTU
        assert all(i.addresses == () and i.mtu == LAN_MTU for i in plan.node(site.switch).interfaces)


def test_wan_links_follow_the_addressing_plan(topo_plan):
    topology, plan = topo_plan
    assert [w.number for w in plan.wan_links] == [link.number for link in topology.links]
    for link, wan in zip(topology.links, plan.wan_links):
        low, high = sorted((topology.site(link.a), topology.site(link.b)), key=lambda s: s.id)
        assert (wan.site_a, wan.site_b, wan.router_a, wan.router_b) == (low.name, high.name, low.router, high.router)
        assert wan.element == link.node_name
        assert (wan.element_a, wan.element_b) == (f"{wan.element}-eth0", f"{wan.element}-eth1")
        assert wan.address_a == str(addressing.wan_address(link.number, low.id))
        assert wan.address_b == str(addressing.wan_address(link.number, high.id))
        assert (wan.delay_ms, wan.jitter_ms, wan.loss_pct, wan.rate_mbps) == (
            link.delay_ms, link.jitter_ms, link.loss_pct, link.rate_mbps)
        for router, intf, element_intf, address in ((wan.router_a, wan.intf_a, wan.element_a, wan.address_a),
                                                    (wan.router_b, wan.intf_b, wan.element_b, wan.address_b)):
            end = plan.node(router).interface(intf)
            assert end.addresses == (f"{address}/64",)
            assert (end.peer_node, end.peer_name) == (wan.element, element_intf)
            assert end.mtu == WAN_MTU and end.port is None
        assert all(i.mtu == WAN_MTU and i.addresses == () for i in plan.node(wan.element).interfaces)
        assert wan.ends() == ((wan.site_a, wan.router_a, wan.intf_a), (wan.site_b, wan.router_b, wan.intf_b))


def test_router_wan_interfaces_are_numbered_in_link_number_order(topo_plan):
    _topology, plan = topo_plan
    for router in plan.nodes_of("router"):
        numbers = []
        for intf in router.interfaces[1:]:
            link = next(w for w in plan.wan_links if (router.name, intf.name) in
                        ((w.router_a, w.intf_a), (w.router_b, w.intf_b)))
            numbers.append(link.number)
        assert numbers == sorted(numbers)
        assert [i.name for i in router.interfaces] == [f"{router.name}-eth{k}" for k in range(len(numbers) + 1)]


def test_shuffled_file_order_concrete_wiring(shuffled):
    # link 1 is west(7)-east(3) in the file: element l3x7, eth0 faces east
    first = shuffled.wan_links[0]
    assert (first.element, first.site_a, first.intf_a, first.intf_b) == ("l3x7", "east", "r3-eth1", "r7-eth1")
    assert (first.address_a, first.address_b) == ("fd00:1::3", "fd00:1::7")
    # r12 has links 2 and 3: eth1 for link 2, eth2 for link 3
    assert shuffled.wan_link("north", "west").intf_b == "r12-eth1"
    assert shuffled.wan_link("north", "east").intf_b == "r12-eth2"
    assert [i.peer_node for i in shuffled.node("s7").interfaces] == ["r7", "u7-1", "u7-2", "k7-1"]
    assert shuffled.node("u7-2").interfaces[0].mac == "02:00:00:07:12:00"
    assert shuffled.node("k3-2").interfaces[0].mac == "02:00:00:03:82:00"
    assert shuffled.node("l3x7").interfaces[1].mac == "02:01:00:01:00:01"


def test_mac_address_layout():
    assert mac_address(0x1234, 0x81, 3) == "02:00:12:34:81:03"
    assert mac_address(0x0102, 0, 1, link=True) == "02:01:01:02:00:01"


def test_namespaces(shuffled):
    assert shuffled.node("r3").namespace == "cpn-r3"
    assert shuffled.node("l3x7").namespace == "cpn-l3x7"
    assert shuffled.node("s3").namespace is None


def test_to_dict_from_dict_round_trip_through_json(topo_plan):
    _topology, plan = topo_plan
    data = json.loads(json.dumps(plan.to_dict()))
    again = NetworkPlan.from_dict(data)
    assert again == plan
    assert isinstance(again.nodes[0].interfaces[0].addresses, tuple)
    assert hash(again) == hash(plan)  # all tuples again, so still hashable


@pytest.mark.parametrize("a, b", [("east", "west"), ("west", "east"), ("r3", "r7"), ("r7", "r3")])
def test_wan_link_lookup_by_sites_or_routers_in_either_order(shuffled, a, b):
    assert shuffled.wan_link(a, b) is shuffled.wan_links[0]


@pytest.mark.parametrize("a, b", [("east", "r7"), ("east", "east"), ("east", "nowhere")])
def test_wan_link_lookup_errors(shuffled, a, b):
    with pytest.raises(KeyError) as info:
        shuffled.wan_link(a, b)
    assert info.value.args[0] == f"no WAN link between {a} and {b}"


def test_node_and_interface_lookup_errors(shuffled):
    with pytest.raises(KeyError) as info:
        shuffled.node("r99")
    assert info.value.args[0] == "no node named 'r99' in the plan of shuffled"
    with pytest.raises(KeyError) as info:
        shuffled.node("r3").interface("r3-eth9")
    assert info.value.args[0] == "node r3 has no interface 'r3-eth9'"


def test_nodes_of_kind(shuffled):
    assert [n.name for n in shuffled.nodes_of("router")] == ["r7", "r3", "r12"]
    assert [n.name for n in shuffled.nodes_of("link")] == ["l3x7", "l7x12", "l3x12"]
    assert shuffled.nodes_of("nothing") == ()
