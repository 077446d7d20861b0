"""Interface plan: the emulator's naming convention and lookups that explain failures."""

import networkx as nx
import pytest

from cpn_net.srv6.errors import PolicyError
from cpn_net.srv6.interfaces import InterfacePlan


def triangle():
    G = nx.Graph()
    G.add_nodes_from([("x", {"id": 12}), ("y", {"id": 3}), ("z", {"id": 40})])
    G.add_edge("x", "y", number=5)
    G.add_edge("y", "z", number=2)
    G.add_edge("x", "z", number=9)
    return G


def test_wan_interfaces_are_numbered_in_link_number_order_per_router():
    plan = InterfacePlan.by_link_number(triangle())
    assert plan.lan_ifname("x") == "r12-eth0"
    assert (plan.wan_ifname("x", "y"), plan.wan_ifname("x", "z")) == ("r12-eth1", "r12-eth2")
    assert (plan.wan_ifname("y", "z"), plan.wan_ifname("y", "x")) == ("r3-eth1", "r3-eth2")
    assert (plan.wan_ifname("z", "y"), plan.wan_ifname("z", "x")) == ("r40-eth1", "r40-eth2")


def test_every_wan_interface_maps_back_to_its_neighbour_and_lan_to_none():
    G = triangle()
    plan = InterfacePlan.by_link_number(G)
    for site in G:
        for neighbour in G.adj[site]:
            assert plan.neighbour_on(site, plan.wan_ifname(site, neighbour)) == neighbour
        assert plan.neighbour_on(site, plan.lan_ifname(site)) is None


def test_missing_entries_and_duplicates_are_explained():
    plan = InterfacePlan.by_link_number(triangle())
    with pytest.raises(PolicyError, match="interface plan has no interface of site x towards w; is there a link"):
        plan.wan_ifname("x", "w")
    with pytest.raises(PolicyError, match="interface plan has no LAN interface for site w"):
        plan.lan_ifname("w")
    with pytest.raises(PolicyError, match="interface plan: r1-eth1 of site a is named for two links"):
        InterfacePlan({("a", "b"): "r1-eth1", ("a", "c"): "r1-eth1"}, {"a": "r1-eth0"})
    G = triangle()
    del G.edges["x", "y"]["number"]
    with pytest.raises(PolicyError, match="link x-y: number=None must be an int"):
        InterfacePlan.by_link_number(G)
