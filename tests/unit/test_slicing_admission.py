"""Tests of slice admission control: paths, reservations, refusals with the bottleneck named."""

import random

import networkx as nx
import pytest

from cpn_net.model.topology import SliceSpec
from cpn_net.slicing.admission import (MAX_MARK, Admission, admit, free_mark, path_loss_pct, release, reserved_mbps,
                                      widest_path)
from cpn_net.slicing.errors import SliceRefused, SlicingError
from cpn_net.srv6.paths import link_key, path_along


def graph():
    """a-b 1 ms 50 Mbit/s, b-c 1 ms 100, a-c 5 ms 100, c-d 2 ms unshaped, b-d 10 ms 30 with 5 % loss."""
    G = nx.Graph()
    G.add_nodes_from([(s, {"id": i}) for i, s in enumerate("abcd", 1)])
    G.add_edge("a", "b", delay_ms=1.0, rate_mbps=50.0)
    G.add_edge("b", "c", delay_ms=1.0, rate_mbps=100.0)
    G.add_edge("a", "c", delay_ms=5.0, rate_mbps=100.0)
    G.add_edge("c", "d", delay_ms=2.0, rate_mbps=None)
    G.add_edge("b", "d", delay_ms=10.0, rate_mbps=30.0, loss_pct=5.0)
    return G


def sl(name, sid, sites, rate, **kw):
    return SliceSpec(name, sid, tuple(sites), tuple(f"u{ord(s) - 96}-1" for s in sites), tuple(sites), rate, **kw)


def test_latency_slice_takes_the_least_delay_path_with_room():
    adm = admit(graph(), {}, sl("gold", 1, "ac", 40.0))
    assert adm.path("a", "c").sites == ("a", "b", "c")
    assert adm.path("c", "a").sites == ("c", "b", "a")
    assert adm.reservations == {("a", "b"): 40.0, ("b", "c"): 40.0}
    # 60 Mbit/s no longer fits a-b: the next-fastest path with room
    assert admit(graph(), {}, sl("gold", 1, "ac", 60.0)).path("a", "c").sites == ("a", "c")


def test_bulk_slice_takes_the_widest_path():
    adm = admit(graph(), {}, sl("bulk", 2, "ab", 10.0, kind="bulk"))
    # a-b direct has 50; a-c-b has min(100, 100) = 100
    assert adm.path("a", "b").sites == ("a", "c", "b")
    assert adm.path("a", "b").bottleneck_mbps == 100.0


def test_bulk_slice_falls_back_to_a_fast_path_when_the_widest_breaks_the_latency_bound():
    adm = admit(graph(), {}, sl("bulk", 2, "ab", 10.0, kind="bulk", max_latency_ms=3.0))
    assert adm.path("a", "b").sites == ("a", "b")


def test_refusal_names_the_bottleneck_and_the_exact_shortfall():
    existing = {"gold": admit(graph(), {}, sl("gold", 1, "ac", 40.0))}
    with pytest.raises(SliceRefused) as info:
        admit(graph(), existing, sl("silver", 2, "ab", 120.0))
    err = info.value
    # residuals: a-b 10, b-c 60, a-c 100: the widest a->b is a-c-b with 60
    assert (err.reason, err.link, err.residual_mbps, err.shortfall_mbps) == ("bandwidth", ("b", "c"), 60.0, 60.0)
    assert str(err) == ("slice silver refused: no path a->b with 120 Mbit/s; bottleneck link b-c has 60 Mbit/s "
                        "residual, 60 Mbit/s short; lower rate_mbps, raise the link's rate_mbps "
                        "or release another slice")


def test_all_or_nothing_a_refusal_reserves_nothing():
    G = graph()
    existing = {"gold": admit(G, {}, sl("gold", 1, "ac", 40.0))}
    before = reserved_mbps(existing.values())
    # a-b fits (widest a-c-b 60 >= 55) but then a-d cannot: b-d has 30 only... and c-d is free, a-c has 45 left
    with pytest.raises(SliceRefused) as info:
        admit(G, existing, sl("big", 2, "abd", 55.0))
    assert info.value.shortfall_mbps == pytest.approx(55.0 - 45.0)
    assert reserved_mbps(existing.values()) == before and list(existing) == ["gold"]
    # the capacity the refused slice would have taken is still there
    assert admit(G, existing, sl("small", 2, "ab", 45.0, kind="bulk")).path("a", "b").bottleneck_mbps == 60.0


def test_pairs_of_one_slice_share_the_capacity():
    # a, b, c each 30: a-b on a-b (50 -> 20), a-c on a-b-c? needs 30 on a-b (20 left) -> a-c direct
    adm = admit(graph(), {}, sl("tri", 1, "abc", 30.0))
    used = reserved_mbps([adm])
    for (u, v), mbps in used.items():
        rate = graph().edges[u, v]["rate_mbps"]
        assert rate is None or mbps <= rate
    assert adm.path("a", "c").sites == ("a", "c")


def test_latency_bound_refusal_names_the_path():
    with pytest.raises(SliceRefused) as info:
        admit(graph(), {}, sl("fast", 1, "ad", 5.0, max_latency_ms=3.5))
    err = info.value
    assert err.reason == "latency" and err.path == ("a", "b", "c", "d")
    assert "the fastest path with 5 Mbit/s, a->b->c->d, takes 4 ms one way, above max_latency_ms=3.5" in str(err)


def test_loss_bound_refusal_names_the_path():
    G = graph()
    G.remove_edge("c", "d")
    with pytest.raises(SliceRefused) as info:
        admit(G, {}, sl("clean", 1, "bd", 5.0, max_loss_pct=1.0))
    assert info.value.reason == "loss" and info.value.path == ("b", "d")
    assert "path b->d loses 5 %, above max_loss_pct=1" in str(info.value)


def test_disconnected_sites_are_refused():
    G = graph()
    G.add_node("e", id=5)
    with pytest.raises(SliceRefused, match="sites a and e are not connected") as info:
        admit(G, {}, sl("x", 1, "ae", 1.0))
    assert info.value.reason == "connectivity"


def test_unconstrained_links_hold_any_rate():
    adm = admit(graph(), {}, sl("d", 1, "cd", 10_000.0))
    assert adm.path("c", "d").sites == ("c", "d") and adm.reservations == {("c", "d"): 10_000.0}


def test_single_site_slice_reserves_nothing():
    assert admit(graph(), {}, sl("local", 1, "a", 500.0)).reservations == {}


def test_release_frees_the_reservations():
    G = graph()
    existing = {"gold": admit(G, {}, sl("gold", 1, "ab", 50.0))}
    with pytest.raises(SliceRefused):
        admit(G, existing, sl("more", 2, "ab", 60.0, kind="bulk", max_latency_ms=1.0))
    freed = release(existing, "gold")
    assert freed == {} and "gold" in existing
    assert admit(G, freed, sl("more", 2, "ab", 50.0)).path("a", "b").sites == ("a", "b")
    with pytest.raises(SlicingError, match="slice 'x' is not admitted; admitted: gold"):
        release(existing, "x")


def test_same_name_or_id_is_refused():
    existing = {"gold": admit(graph(), {}, sl("gold", 1, "ab", 1.0))}
    with pytest.raises(SlicingError, match="slice gold is already admitted; release it first"):
        admit(graph(), existing, sl("gold", 2, "ab", 1.0))
    with pytest.raises(SlicingError, match="slice t: id 1 is already used by admitted slice gold"):
        admit(graph(), existing, sl("t", 1, "ab", 1.0))


def test_unknown_site_is_a_slicing_error():
    with pytest.raises(SlicingError, match="slice x: .*z"):
        admit(graph(), {}, sl("x", 1, "az", 1.0))


def test_unknown_pair_lookup_names_the_pairs():
    adm = admit(graph(), {}, sl("gold", 1, "ab", 1.0))
    with pytest.raises(SlicingError, match="no demand a->c; pairs are a->b, b->a"):
        adm.path("a", "c")


def test_path_loss_compounds():
    G = graph()
    assert path_loss_pct(G, path_along(G, ["a", "b", "d"])) == pytest.approx(5.0)
    assert path_loss_pct(G, path_along(G, ["a", "b"])) == 0.0


def test_random_admissions_never_overbook_and_paths_are_valid():
    rng = random.Random(7)
    G = nx.gnm_random_graph(9, 18, seed=3)
    G = nx.relabel_nodes(G, {i: f"s{i}" for i in G})
    nx.set_node_attributes(G, {f"s{i}": i + 1 for i in range(9)}, "id")
    for u, v in G.edges:
        G.edges[u, v].update(delay_ms=float(rng.randint(1, 9)), rate_mbps=float(rng.choice([20, 50, 100])))
    G = G.subgraph(max(nx.connected_components(G), key=len)).copy()
    sites = sorted(G)
    existing: dict[str, Admission] = {}
    refused = 0
    for i in range(1, 16):
        members = tuple(sorted(rng.sample(sites, 3), key=sites.index))
        intent = SliceSpec(f"t{i}", i, members, (), members, float(rng.choice([5, 10, 20])),
                           kind=rng.choice(["latency", "bulk"]))
        try:
            adm = admit(G, existing, intent)
        except SliceRefused as err:
            refused += 1
            assert err.reason == "bandwidth" and err.shortfall_mbps > 0 and G.has_edge(*err.link)
            assert err.shortfall_mbps == pytest.approx(intent.rate_mbps - err.residual_mbps)
            continue
        assert len(adm.paths) == 6
        for (a, b), path in adm.paths.items():
            assert path.sites[0] == a and path.sites[-1] == b and len(set(path.sites)) == len(path.sites)
            assert path.delay_ms == pytest.approx(path_along(G, path.sites).delay_ms)
            assert adm.paths[(b, a)].sites == tuple(reversed(path.sites))
        existing[intent.name] = adm
        for key, mbps in reserved_mbps(existing.values()).items():
            assert mbps <= G.edges[key]["rate_mbps"] + 1e-9, key
    assert 0 < refused < 15


def test_slices_sharing_a_link_get_distinct_marks_and_disjoint_ones_reuse_them():
    G = graph()
    existing = {"gold": admit(G, {}, sl("gold", 1, "ab", 1.0))}  # a-b
    existing["silver"] = admit(G, existing, sl("silver", 2, "ab", 1.0))  # a-b again
    existing["far"] = admit(G, existing, sl("far", 3, "cd", 1.0))  # c-d only: shares nothing
    assert [existing[n].mark for n in ("gold", "silver", "far")] == [1, 2, 1]
    assert existing["far"].links == {("c", "d")}
    # a single-site slice crosses no link: mark 1 whatever holds marks elsewhere
    assert admit(G, existing, sl("local", 4, "a", 1.0)).mark == 1
    # releasing gold frees mark 1 on a-b
    assert admit(G, release(existing, "gold"), sl("next", 5, "ab", 1.0)).mark == 1


def test_marks_run_out_only_where_fifteen_slices_share_links():
    G = graph()
    existing: dict[str, Admission] = {}
    for i in range(1, MAX_MARK + 1):
        existing[f"s{i}"] = admit(G, existing, sl(f"s{i}", i, "ab", 1.0))
    assert sorted(a.mark for a in existing.values()) == list(range(1, MAX_MARK + 1))
    with pytest.raises(SliceRefused) as refused:
        admit(G, existing, sl("one-more", 99, "ab", 1.0))
    err = refused.value
    assert err.reason == "marks" and err.link == ("a", "b") and err.slice == "one-more"
    assert str(err).startswith("slice one-more refused: all 15 slice marks are held by slices sharing its links; "
                               "link a-b alone carries 15 (s1, s10, s11,")
    # elsewhere the 15 marks are all free again
    assert admit(G, existing, sl("elsewhere", 100, "cd", 1.0)).mark == 1


def test_free_mark_is_first_fit_over_the_slices_on_any_of_its_links():
    ab, bc = path_along(graph(), ["a", "b"]), path_along(graph(), ["b", "c"])
    abc = path_along(graph(), ["a", "b", "c"])
    held = [Admission("x", 1, 1.0, {("a", "b"): ab}, mark=1), Admission("y", 2, 1.0, {("b", "c"): bc}, mark=3)]
    assert free_mark(held, Admission("z", 3, 1.0, {("a", "c"): abc})) == 2
    assert free_mark(held, Admission("z", 3, 1.0, {("b", "c"): bc})) == 1


def test_fifty_random_slices_on_a_ring_with_chords_never_share_a_mark_on_a_link():
    rng = random.Random(11)
    G = nx.cycle_graph(15)
    G.add_edges_from([(0, 7), (3, 11), (5, 12), (1, 9), (2, 13), (4, 10), (6, 14)])
    G = nx.relabel_nodes(G, {i: f"s{i}" for i in G})
    nx.set_node_attributes(G, {f"s{i}": i + 1 for i in range(15)}, "id")
    nx.set_edge_attributes(G, 5.0, "delay_ms")
    nx.set_edge_attributes(G, 100.0, "rate_mbps")
    existing: dict[str, Admission] = {}
    for i in range(1, 51):
        members = tuple(rng.sample(sorted(G), 2))
        existing[f"t{i}"] = admit(G, existing, SliceSpec(f"t{i}", i, members, (), members, 1.0))
    for a in existing.values():
        for b in existing.values():
            if a is not b and a.links & b.links:
                assert a.mark != b.mark, (a.slice, b.slice)
    assert max(a.mark for a in existing.values()) <= MAX_MARK


def test_widest_path_is_widest_then_fastest():
    G = graph()
    for a, b in [("a", "b"), ("a", "d"), ("b", "c"), ("d", "a")]:
        path = widest_path(G, a, b)
        best = max((min((G.edges[u, v]["rate_mbps"] or float("inf")) for u, v in zip(p, p[1:])), -len(p))
                   for p in nx.all_simple_paths(G, a, b))[0]
        got = min((G.edges[u, v]["rate_mbps"] or float("inf")) for u, v in path.links)
        assert got == best
        assert path.delay_ms == path_along(G, path.sites).delay_ms


def test_widest_path_honours_given_residuals():
    G = graph()
    assert widest_path(G, "a", "b", {link_key("a", "c"): 10.0}).sites == ("a", "b")
