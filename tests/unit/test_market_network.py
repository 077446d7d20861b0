"""The market's view of the site graph: least-delay trees and routes, alternates, capacities."""

import random

import networkx as nx
import pytest

from cpn_net.market.errors import NetworkError
from cpn_net.market.network import SiteNetwork
from cpn_net.market.synthetic import national_graph


def test_routes_are_least_delay_paths_with_their_true_delay():
    G = national_graph(seed=4, sites=200)
    net = SiteNetwork(G)
    rng = random.Random(2)
    for _ in range(60):
        a, b = rng.sample(sorted(G), 2)
        route = net.route(a, b)
        best = nx.shortest_path_length(G, a, b, weight="delay_ms")
        assert route.sites[0] == a and route.sites[-1] == b and len(set(route.sites)) == len(route.sites)
        assert route.delay_ms == pytest.approx(sum(G.edges[u, v]["delay_ms"] for u, v in zip(route.sites,
                                                                                              route.sites[1:])))
        assert route.delay_ms == pytest.approx(best, abs=1e-3 * route.hops)  # metrics are whole µs
        tree = net.tree(net.index[a])
        assert tree.delay_s[net.index[b]] * 1000 == pytest.approx(route.delay_ms, abs=1e-3 * route.hops)
        assert tree.hops[net.index[b]] == route.hops
        assert route.capacity_mbps == min(G.edges[u, v]["rate_mbps"] for u, v in zip(route.sites, route.sites[1:]))


def test_alternate_shares_no_link_and_is_bounded():
    G = nx.cycle_graph(["a", "b", "c", "d"])
    nx.set_node_attributes(G, {"a": 1, "b": 2, "c": 3, "d": 4}, "id")
    nx.set_edge_attributes(G, {("a", "b"): 1.0, ("b", "c"): 1.0, ("c", "d"): 2.0, ("d", "a"): 2.0}, "delay_ms")
    net = SiteNetwork(G)
    primary, alternate = net.routes("a", "c")
    assert primary.sites == ("a", "b", "c") and alternate.sites == ("a", "d", "c")
    assert not set(primary.links) & set(alternate.links)
    G.edges["c", "d"]["delay_ms"] = 50.0  # beyond twice the least delay plus 10 ms
    assert SiteNetwork(G).alternate("a", "c") is None


def test_unreachable_and_same_site():
    G = nx.Graph()
    G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2}), ("c", {"id": 3})])
    G.add_edge("a", "b", delay_ms=1.0, rate_mbps=None)
    net = SiteNetwork(G)
    assert net.route("a", "c") is None and net.routes("a", "c") == ()
    assert net.route("a", "a").sites == ("a",) and net.route("a", "a").hops == 0
    assert net.route("a", "b").capacity_mbps is None and net.widest_out_mbps("a") is None


def test_reserved_rates_reduce_capacity():
    G = nx.Graph()
    G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2})])
    G.add_edge("a", "b", delay_ms=1.0, rate_mbps=100.0)
    net = SiteNetwork(G, reserved_mbps={("b", "a"): 30.0})
    assert net.link_capacity_mbps(0) == 70.0 and net.widest_out_mbps("a") == 70.0
    with pytest.raises(NetworkError, match="reserved_mbps names link a-c"):
        SiteNetwork(G, reserved_mbps={("a", "c"): 1.0})


def test_bad_graphs_are_named():
    G = nx.Graph()
    G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2})])
    G.add_edge("a", "b", delay_ms=-1.0)
    with pytest.raises(NetworkError, match="link a-b: delay_ms=-1.0 must be a finite number >= 0"):
        SiteNetwork(G)
    H = nx.Graph()
    H.add_node("a")
    with pytest.raises(NetworkError, match="int id"):
        SiteNetwork(H)


def test_tree_cache_keeps_the_most_recent_sources():
    G = national_graph(seed=1, sites=50)
    net = SiteNetwork(G, cache_sources=3)
    for source in range(5):
        net.tree(source)
    net.tree(4)
    assert net.trees_computed == 5 and list(net._trees) == [2, 3, 4]
