"""The baseline IGP: shortest delay, deterministic ties, hop-by-hop consistency."""

import random

import networkx as nx
import pytest

from cpn_net.srv6.errors import PathError
from cpn_net.srv6.igp import Igp, igp_metric_us, igp_next_hops, igp_path


def random_sites(seed, n=9, p=0.35, zero_delay_share=0.0, order=None):
    """A connected graph with few distinct delays (so ties are common) and shuffled ids."""
    rng = random.Random(seed)
    G = nx.gnp_random_graph(n, p, seed=seed)
    for a, b in zip(range(n), range(1, n)):
        if not nx.has_path(G, a, b):
            G.add_edge(a, b)
    ids = rng.sample(range(1, 100), n)
    H = nx.Graph()
    nodes = list(range(n)) if order is None else order
    H.add_nodes_from((f"s{i}", {"id": ids[i]}) for i in nodes)
    for a, b in G.edges:
        delay = 0.0 if rng.random() < zero_delay_share else float(rng.randint(1, 3))
        H.add_edge(f"s{a}", f"s{b}", delay_ms=delay)
    return H


def cost_us(G, path):
    return sum(igp_metric_us(G.edges[u, v]["delay_ms"]) for u, v in zip(path, path[1:]))


@pytest.mark.parametrize("seed", range(25))
def test_paths_are_shortest_consistent_hop_by_hop_and_tie_break_on_smallest_id(seed):
    G = random_sites(seed)
    igp = Igp(G)
    lengths = dict(nx.all_pairs_dijkstra_path_length(G, weight=lambda u, v, d: igp_metric_us(d["delay_ms"])))
    for target in G:
        hops = igp.next_hops(target)
        for source in G:
            path = igp.path(source, target)
            assert path[0] == source and path[-1] == target
            assert all(G.has_edge(u, v) for u, v in zip(path, path[1:]))
            assert cost_us(G, path) == lengths[source][target] == (igp.distance_us(source, target))
            if source != target:
                assert igp.path(hops[source], target) == path[1:]
                on_shortest = [n for n in G.adj[source]
                               if igp_metric_us(G.edges[source, n]["delay_ms"]) + lengths[n][target]
                               == lengths[source][target]]
                assert hops[source] == min(on_shortest, key=lambda n: G.nodes[n]["id"])


@pytest.mark.parametrize("seed", range(10))
def test_answers_do_not_depend_on_the_order_sites_were_added(seed):
    G = random_sites(seed)
    order = list(range(len(G)))
    random.Random(seed).shuffle(order)
    shuffled = random_sites(seed, order=order)
    for target in G:
        assert igp_next_hops(G, target) == igp_next_hops(shuffled, target)


@pytest.mark.parametrize("seed", range(15))
def test_zero_delay_links_never_make_a_forwarding_loop(seed):
    G = random_sites(seed, zero_delay_share=0.6)
    for target in G:
        hops = igp_next_hops(G, target)
        for source in hops:
            seen, node = set(), source
            while node != target:
                assert node not in seen, f"loop towards {target} through {node}"
                seen.add(node)
                node = hops[node]


def test_tie_break_example_smallest_id_wins_even_when_added_last():
    G = nx.Graph()
    G.add_nodes_from([("src", {"id": 1}), ("high", {"id": 9}), ("low", {"id": 2}), ("dst", {"id": 5})])
    G.add_edge("src", "high", delay_ms=1.0)
    G.add_edge("high", "dst", delay_ms=1.0)
    G.add_edge("src", "low", delay_ms=1.5)
    G.add_edge("low", "dst", delay_ms=0.5)
    assert igp_path(G, "src", "dst") == ("src", "low", "dst")
    assert igp_path(G, "dst", "src") == ("dst", "low", "src")


def test_sub_microsecond_float_noise_does_not_break_ties():
    G = nx.Graph()
    G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 3}), ("c", {"id": 2}), ("d", {"id": 4})])
    G.add_edge("a", "b", delay_ms=0.1)
    G.add_edge("b", "d", delay_ms=0.2)
    G.add_edge("a", "c", delay_ms=0.3)  # 0.1 + 0.2 != 0.3 in floats; equal in microseconds
    G.add_edge("c", "d", delay_ms=0.0)
    assert igp_path(G, "a", "d") == ("a", "c", "d")


def test_unreachable_targets_have_no_next_hop():
    G = nx.Graph()
    G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2}), ("c", {"id": 3})])
    G.add_edge("a", "b", delay_ms=1.0)
    igp = Igp(G)
    assert igp.next_hops("c") == {}
    assert igp.next_hop("a", "c") is None and igp.distance_us("a", "c") is None
    with pytest.raises(PathError, match="IGP: no route from 'a' to 'c': the sites are not connected"):
        igp.path("a", "c")


@pytest.mark.parametrize("mutate, message", [
    (lambda G: G.add_edge("a", "b", delay_ms=-3), "link a-b: delay_ms=-3 must be a finite number >= 0"),
    (lambda G: G.add_edge("a", "b", delay_ms=None), "link a-b: delay_ms=None must be a finite number >= 0"),
    (lambda G: G.add_edge("a", "b", delay_ms=float("nan")), "link a-b: delay_ms=nan must be"),
    (lambda G: G.nodes["b"].pop("id"), "site 'b': id=None must be an int; build the graph with Topology.graph()"),
])
def test_bad_attributes_are_named(mutate, message):
    G = nx.Graph()
    G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2})])
    G.add_edge("a", "b", delay_ms=1.0)
    mutate(G)
    with pytest.raises(PathError) as err:
        igp_path(G, "a", "b")
    assert message in str(err.value)


def test_unknown_site_lists_the_known_ones():
    G = nx.Graph()
    G.add_node("beijing", id=1)
    with pytest.raises(PathError, match="site 'shanghai' is not in the topology; known sites: beijing"):
        igp_path(G, "beijing", "shanghai")
