"""Segment lists: minimisation saves SIDs, forces exactly the path, and is minimal."""

import itertools
import random

import networkx as nx
import pytest

from cpn_net.srv6.errors import SegmentError
from cpn_net.srv6.igp import Igp, igp_path
from cpn_net.srv6.paths import best_path
from cpn_net.srv6.segments import (SegmentList, follow_segments, hop_by_hop_segment_list, minimal_segment_list)
from cpn_net.srv6.sids import binding_sid, end_dt6_sid, end_dx6_sid, end_sid, end_x_sid


def line_with_shortcut():
    """a-b-c-d-e-f-g, 1 ms each, plus a 1 ms shortcut c-e the IGP prefers over c-d-e."""
    G = nx.Graph()
    G.add_nodes_from((n, {"id": i}) for i, n in enumerate("abcdefg", start=1))
    for u, v in zip("abcdef", "bcdefg"):
        G.add_edge(u, v, delay_ms=1.0)
    G.add_edge("c", "e", delay_ms=1.0)
    return G


def test_a_six_hop_path_needs_two_sids_instead_of_seven():
    G = line_with_shortcut()
    path = tuple("abcdefg")
    final = end_dx6_sid(7, "compute", 1)
    assert igp_path(G, "a", "g") == tuple("abcefg")  # the IGP would skip d
    minimal = minimal_segment_list(G, path, final_sid=final)
    naive = hop_by_hop_segment_list(G, path, final_sid=final)
    assert [str(s) for s in minimal.sids()] == ["End@4", "End.DX6@7(compute,1)"]
    assert (len(minimal), len(naive)) == (2, 7)
    assert follow_segments(G, "a", minimal) == follow_segments(G, "a", naive) == path


def test_an_adjacency_sid_forces_a_link_the_igp_never_takes():
    G = line_with_shortcut()
    G.add_edge("b", "d", delay_ms=5.0)
    sl = minimal_segment_list(G, tuple("abd"), final_sid=end_dx6_sid(4, "compute", 1))
    assert [str(s) for s in sl.sids()] == ["End.X@2(4)", "End.DX6@4(compute,1)"]
    assert follow_segments(G, "a", sl) == tuple("abd")


def test_the_headends_own_adjacency_sid_forces_its_first_link():
    G = nx.Graph()
    G.add_nodes_from((n, {"id": i}) for i, n in enumerate("abc", start=1))
    G.add_edge("a", "b", delay_ms=3.0)
    G.add_edge("a", "c", delay_ms=1.0)
    G.add_edge("b", "c", delay_ms=1.0)
    sl = minimal_segment_list(G, tuple("abc"), final_sid=end_dt6_sid(3, 100))
    assert [str(s) for s in sl.sids()] == ["End.X@1(2)", "End.DT6@3(100)"]
    assert follow_segments(G, "a", sl) == tuple("abc")


def test_one_site_path_is_just_the_final_sid():
    G = line_with_shortcut()
    sl = minimal_segment_list(G, ["a"], final_sid=end_dx6_sid(1, "compute", 2))
    assert sl == SegmentList.of(end_dx6_sid(1, "compute", 2))
    assert follow_segments(G, "a", sl) == ("a",)


def random_sites(seed, n=8, p=0.35):
    rng = random.Random(seed)
    G = nx.gnp_random_graph(n, p, seed=seed)
    for a, b in zip(range(n), range(1, n)):
        if not nx.has_path(G, a, b):
            G.add_edge(a, b)
    ids = rng.sample(range(1, 60), n)
    H = nx.Graph()
    H.add_nodes_from((f"s{i}", {"id": ids[i]}) for i in range(n))
    H.add_edges_from((f"s{a}", f"s{b}", {"delay_ms": float(rng.randint(1, 4))}) for a, b in G.edges)
    return H, rng


@pytest.mark.parametrize("seed", range(30))
def test_minimal_lists_force_exactly_their_path_and_never_beat_hop_by_hop_by_cheating(seed):
    G, rng = random_sites(seed)
    igp = Igp(G)
    for _ in range(6):
        source, target = rng.sample(sorted(G), 2)
        paths = list(nx.all_simple_paths(G, source, target, cutoff=6))
        path = tuple(rng.choice(paths))
        final = end_dx6_sid(G.nodes[target]["id"], "compute", 1)
        for final_sid in (final, None):
            minimal = minimal_segment_list(G, path, final_sid=final_sid, igp=igp)
            naive = hop_by_hop_segment_list(G, path, final_sid=final_sid)
            assert follow_segments(G, source, minimal, igp=igp) == path
            assert follow_segments(G, source, naive, igp=igp) == path
            assert len(minimal) <= len(naive)
        if path == igp.path(source, target):
            assert minimal_segment_list(G, path, final_sid=final, igp=igp) == SegmentList.of(final)


@pytest.mark.parametrize("seed", range(12))
def test_no_shorter_list_of_any_sids_forces_the_path(seed):
    G, rng = random_sites(seed, n=6, p=0.45)
    igp = Igp(G)
    candidates = [end_sid(G.nodes[n]["id"]) for n in G]
    candidates += [end_x_sid(G.nodes[u]["id"], G.nodes[v]["id"]) for u, v in G.edges]
    candidates += [end_x_sid(G.nodes[v]["id"], G.nodes[u]["id"]) for u, v in G.edges]
    checked = 0
    for source, target in itertools.permutations(sorted(G), 2):
        for path in nx.all_simple_paths(G, source, target):
            final = end_dx6_sid(G.nodes[target]["id"], "compute", 1)
            best = len(minimal_segment_list(G, path, final_sid=final, igp=igp))
            if best > 3:
                continue
            for length in range(best - 1):
                for prefix in itertools.product(candidates, repeat=length):
                    try:
                        walked = follow_segments(G, source, SegmentList(prefix + (final,)), igp=igp)
                    except SegmentError:
                        continue
                    assert walked != tuple(path), (path, prefix)
            checked += 1
    assert checked > 20


def test_a_path_object_is_accepted():
    G = line_with_shortcut()
    path = best_path(G, "a", "g", waypoints=["d"])
    assert follow_segments(G, "a", minimal_segment_list(G, path, final_sid=end_sid(7))) == path.sites


def test_binding_sids_expand_into_their_bound_list():
    G = line_with_shortcut()
    bsid = binding_sid(3, 1)
    bound = SegmentList.of(end_x_sid(3, 4), end_dt6_sid(5, 254))  # c -> d -> e, then decapsulate
    outer = SegmentList.of(bsid, end_dx6_sid(7, "compute", 1))
    assert follow_segments(G, "a", outer, bindings={bsid: bound}) == tuple("abcdefg")


@pytest.mark.parametrize("segments, bindings, message", [
    ([end_dx6_sid(3, "compute", 1), end_sid(5)], None,
     "decapsulates, yet 1 segment(s) follow it"),
    ([binding_sid(3, 1), end_sid(5)], None, "is a binding SID with no bound list; pass bindings="),
    ([end_sid(5), binding_sid(3, 1)], {binding_sid(3, 1): SegmentList.of(end_dt6_sid(5, 254))},
     "binding SID fcbb:bb00:3:5:1:: is last; End.B6.Encaps needs Segments Left > 0"),
    ([binding_sid(3, 1), end_sid(7)], {binding_sid(3, 1): SegmentList.of(end_sid(5))},
     "its bound list must end with End.DT6 so the packet continues; it ends with End@5"),
    ([binding_sid(3, 1), end_sid(7)], {binding_sid(3, 1): SegmentList.of(binding_sid(3, 1), end_dt6_sid(5, 1))},
     "bindings nest deeper than 4"),
    ([end_sid(42)], None, "names site id 42, which is not in the topology"),
    ([end_x_sid(1, 7)], None, "no link a-g in the topology"),
    (["2001:db8::1"], None, "is outside the SID plan"),
])
def test_follow_refuses_lists_the_data_plane_could_not_carry(segments, bindings, message):
    with pytest.raises(SegmentError) as err:
        follow_segments(line_with_shortcut(), "a", segments, bindings=bindings)
    assert message in str(err.value)


@pytest.mark.parametrize("path, final, message", [
    ("abcb", None, "path a->b->c->b visits b twice; only simple paths are forced"),
    ("ac", None, "path a->c: a and c are not linked"),
    ("az", None, "site 'z' is not in the topology"),
    ("", None, "path is empty"),
    ("a", None, "has one site and no final_sid"),
    ("abc", end_dx6_sid(2, "compute", 1), "it must be an End, End.DX6 or End.DT6 SID of the path's last site c (id 3)"),
    ("abc", end_x_sid(3, 2), "final_sid fcbb:bb00:3:2:2:: is End.X@3(2); it must be"),
])
def test_minimisation_refuses_paths_it_cannot_force(path, final, message):
    with pytest.raises(SegmentError) as err:
        minimal_segment_list(line_with_shortcut(), tuple(path), final_sid=final)
    assert message in str(err.value)


def test_segment_list_refuses_empty_and_oversized_lists():
    with pytest.raises(SegmentError, match="segment list has 0 segments; it needs 1..127"):
        SegmentList(())
    with pytest.raises(SegmentError, match="segment list has 128 segments"):
        SegmentList(tuple(end_sid(1) for _ in range(128)))
    with pytest.raises(SegmentError, match="segment list: .*'nope'"):
        SegmentList.of("nope")
