"""Baseline specs: IGP routes follow the IGP, local SIDs carry the right nexthops."""

import ipaddress
import random

import networkx as nx
import pytest

from cpn_net.model import addressing
from cpn_net.srv6.baseline import igp_routes, local_sid_routes, neighbour_address, router_baseline
from cpn_net.srv6.errors import PolicyError
from cpn_net.srv6.igp import Igp
from cpn_net.srv6.interfaces import InterfacePlan
from cpn_net.srv6.sids import parse_sid


def random_sites(seed, n=8):
    rng = random.Random(seed)
    G = nx.connected_watts_strogatz_graph(n, 3, 0.4, seed=seed)
    H = nx.Graph()
    ids = rng.sample(range(1, 200), n)
    H.add_nodes_from((f"s{i}", {"id": ids[i]}) for i in range(n))
    for number, (a, b) in enumerate(G.edges, start=1):
        H.add_edge(f"s{a}", f"s{b}", number=number, delay_ms=float(rng.randint(1, 5)))
    return H


@pytest.mark.parametrize("seed", range(5))
def test_igp_routes_point_each_locator_and_lan_at_the_igp_next_hop(seed):
    G = random_sites(seed)
    plan = InterfacePlan.by_link_number(G)
    igp = Igp(G)
    by_id = {G.nodes[s]["id"]: s for s in G}
    for site in G:
        routes = igp_routes(G, site, plan, igp=igp)
        assert len(routes) == 2 * (len(G) - 1)
        for route in routes:
            dst = ipaddress.IPv6Network(route["dst"])
            target_id = int(format(int(dst.network_address) >> 80 & 0xFFFF, "x"))
            target = by_id[target_id]
            assert dst in (addressing.locator(target_id), addressing.site_lan(target_id))
            hop = igp.next_hop(site, target)
            assert route["oif"] == plan.wan_ifname(site, hop)
            assert route["gateway"] == str(addressing.wan_address(G.edges[site, hop]["number"], G.nodes[hop]["id"]))


def test_local_sid_routes_instantiate_every_behaviour_with_its_nexthop():
    G = random_sites(1)
    plan = InterfacePlan.by_link_number(G)
    site = "s0"
    routes = local_sid_routes(G, site, plan, hosts=[("compute", 1), ("client", 2)], tables=[254, 100])
    behaviours = {}
    for route in routes:
        sid = parse_sid(route["dst"].removesuffix("/128"))
        assert route["dst"].endswith("/128") and sid.site_id == G.nodes[site]["id"]
        behaviours.setdefault(sid.behaviour.value, []).append((sid, route))
        assert route["encap"]["action"] == sid.behaviour.value
    assert len(behaviours["End"]) == 1 and len(behaviours["End.DT6"]) == 2
    assert len(behaviours["End.X"]) == G.degree(site)
    for sid, route in behaviours["End.X"]:
        neighbour = next(n for n in G.adj[site] if G.nodes[n]["id"] == sid.neighbour_id)
        assert route["encap"]["nh6"] == neighbour_address(G, site, neighbour)
        assert route["oif"] == plan.wan_ifname(site, neighbour)
    for sid, route in behaviours["End.DX6"]:
        assert route["encap"]["nh6"] == str(sid.nexthop) and route["oif"] == plan.lan_ifname(site)
    assert sorted(r["encap"]["table"] for _, r in behaviours["End.DT6"]) == [100, 254]


def test_baseline_is_igp_routes_then_local_sids_and_unreachable_sites_are_skipped():
    G = random_sites(2)
    G.add_node("island", id=999)
    plan = InterfacePlan.by_link_number(G)
    routes = router_baseline(G, "s0", plan, tables=[254])
    assert not any("999" in r["dst"] for r in routes)
    kinds = ["encap" in r for r in routes]
    assert kinds == sorted(kinds)  # every plain route comes before every seg6local route


def test_neighbour_address_needs_a_numbered_link():
    G = random_sites(3)
    with pytest.raises(PolicyError, match="sites s0 and island are not linked"):
        G.add_node("island", id=999)
        neighbour_address(G, "s0", "island")
    u, v = next(iter(G.edges))
    del G.edges[u, v]["number"]
    with pytest.raises(PolicyError, match=f"link {u}-{v}: number=None must be an int"):
        neighbour_address(G, u, v)
