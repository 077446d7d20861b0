"""Tests of slice demands: every ordered pair of distinct member sites at the slice's rate."""

from itertools import permutations

from cpn_net.model.topology import SliceSpec
from cpn_net.slicing.intents import Demand, demands, site_pairs


def spec(sites, rate=7.0):
    return SliceSpec("s", 1, tuple(sites), tuple(f"u{i}-1" for i, _ in enumerate(sites, 1)), tuple(sites), rate)


def test_demands_are_every_ordered_pair_once_at_the_rate():
    sites = ("a", "b", "c", "d")
    found = demands(spec(sites))
    assert sorted((d.source, d.target) for d in found) == sorted(permutations(sites, 2))
    assert {d.rate_mbps for d in found} == {7.0} and {d.slice for d in found} == {"s"}


def test_each_pair_is_followed_by_its_reverse():
    found = demands(spec(("a", "b", "c")))
    assert [(d.source, d.target) for d in found[:2]] == [("a", "b"), ("b", "a")]
    assert len(found) == 2 * len(site_pairs(spec(("a", "b", "c")))) == 6


def test_one_site_slice_places_no_demand_on_the_wan():
    assert demands(spec(("a",))) == () and site_pairs(spec(("a",))) == ()


def test_demand_is_frozen_data():
    d = Demand("s", "a", "b", 1.0)
    assert d == Demand("s", "a", "b", 1.0) and hash(d) == hash(Demand("s", "a", "b", 1.0))
