"""Tests of the Topology data classes and their lookups."""

import ipaddress
import json

import networkx as nx
import pytest

from cpn_net.model import ComputeNode, Topology, UnknownNameError, load_topology
from cpn_net.model.topology import TOPOLOGY_DICT_VERSION


@pytest.fixture(scope="module")
def tiny() -> Topology:
    return load_topology("topologies/tiny.yaml")


def test_site_lookup_by_name_and_id(tiny):
    assert tiny.site("centre") is tiny.site(2)
    east = tiny.site("east")
    assert (east.router, east.switch, str(east.lan), str(east.locator)) == (
        "r1", "s1", "2001:db8:1::/64", "fcbb:bb00:1::/48")


@pytest.mark.parametrize("key, message", [
    ("esat", "topology tiny has no site 'esat'; did you mean 'east'?"),
    ("nowhere", "topology tiny has no site 'nowhere'; remove it or use one of the known sites: east, centre, west"),
    (9, "topology tiny has no site with id 9; ids are 1, 2, 3"),
])
def test_site_lookup_errors(tiny, key, message):
    with pytest.raises(KeyError) as info:
        tiny.site(key)
    assert str(info.value) == message


def test_link_lookup_either_order_and_by_id(tiny):
    link = tiny.link("west", "centre")
    assert link is tiny.link("centre", "west") is tiny.link(2, 3)
    assert (link.a, link.b, link.a_id, link.b_id) == ("centre", "west", 2, 3)  # file order kept
    assert (link.node_name, str(link.wan_prefix), link.ends) == ("l2x3", "fd00:2::/64", ("centre", "west"))


def test_link_lookup_error():
    topo = load_topology("topologies/east-data-west-compute.yaml")
    with pytest.raises(UnknownNameError, match="no link between beijing and guian"):
        topo.link("beijing", "guian")


def test_hosts_in_site_order_clients_first(tiny):
    assert [h.name for h in tiny.hosts()] == ["u1-1", "k1-1", "u2-1", "k2-1", "u3-1", "k3-1"]
    assert [h.kind for h in tiny.hosts()] == ["client", "compute"] * 3
    assert [c.name for c in tiny.clients()] == ["u1-1", "u2-1", "u3-1"]
    assert [k.name for k in tiny.compute_nodes()] == ["k1-1", "k2-1", "k3-1"]


def test_every_host_address_is_in_its_site_lan_and_unique(tiny):
    addresses = [h.address for h in tiny.hosts()]
    assert len(set(addresses)) == len(addresses)
    for host in tiny.hosts():
        assert host.address in tiny.site(host.site).lan and tiny.site(host.site_id).name == host.site


def test_host_and_service_lookup(tiny):
    assert tiny.host("k2-1").site == "centre"
    assert tiny.service("echo").compute == ("k1-1", "k2-1", "k3-1")
    with pytest.raises(UnknownNameError, match="has no host 'k9-1'; did you mean 'k1-1'"):
        tiny.host("k9-1")
    with pytest.raises(UnknownNameError, match="has no service 'ecko'; did you mean 'echo'"):
        tiny.service("ecko")


def test_capacity():
    node = ComputeNode("k1-1", "a", 1, 1, ipaddress.IPv6Address("2001:db8:1::2:1"), workers=3, service_time_ms=4.0)
    assert node.capacity_rps == 750.0


def test_graph_carries_link_parameters(tiny):
    g = tiny.graph()
    assert sorted(g.nodes) == ["centre", "east", "west"]
    assert g.nodes["east"] == {"id": 1, "lat": None, "lon": None}
    assert g.edges["east", "centre"] == {
        "number": 1, "delay_ms": 5.0, "jitter_ms": 0.0, "loss_pct": 0.0, "rate_mbps": 50.0,
        "distance_km": None, "delay_source": "configured"}
    assert g.edges["west", "centre"]["loss_pct"] == 2.0
    g.remove_node("east")  # a fresh copy each call
    assert tiny.graph().number_of_nodes() == 3


def test_graph_shortest_path_cost_is_the_sum_of_its_links(tiny):
    g = tiny.graph()
    path = nx.shortest_path(g, "east", "west", weight="delay_ms")
    cost = sum(tiny.link(a, b).delay_ms for a, b in zip(path, path[1:]))
    assert cost == nx.shortest_path_length(g, "east", "west", weight="delay_ms") == 15.0


def test_to_dict_is_json_and_complete(tiny):
    d = tiny.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["version"] == TOPOLOGY_DICT_VERSION and d["name"] == "tiny"
    assert d["source"] == "topologies/tiny.yaml" and d["route_factor"] == 1.3
    site = d["sites"][0]
    assert {k: site[k] for k in ("name", "id", "router", "switch", "lan", "locator")} == {
        "name": "east", "id": 1, "router": "r1", "switch": "s1", "lan": "2001:db8:1::/64",
        "locator": "fcbb:bb00:1::/48"}
    assert site["clients"] == [{"name": "u1-1", "index": 1, "address": "2001:db8:1::1:1"}]
    assert site["compute"][0]["capacity_rps"] == 400.0 and site["compute"][0]["price_cny_per_hour"] is None
    assert d["links"][1] == {
        "number": 2, "a": "centre", "b": "west", "a_id": 2, "b_id": 3, "node_name": "l2x3",
        "wan_prefix": "fd00:2::/64", "delay_ms": 10.0, "jitter_ms": 0.0, "loss_pct": 2.0, "rate_mbps": None,
        "delay_source": "configured", "distance_km": None}
    assert d["services"] == [{"name": "echo", "anycast": "2001:db8:ffff::1", "port": 8080,
                              "compute": ["k1-1", "k2-1", "k3-1"]}]
    assert d["notes"] == []


def test_topologies_are_frozen_and_comparable(tiny):
    with pytest.raises(AttributeError):
        tiny.name = "other"
    assert load_topology("topologies/tiny.yaml") == tiny
    assert hash(tiny.sites[0]) == hash(load_topology("topologies/tiny.yaml").sites[0])
