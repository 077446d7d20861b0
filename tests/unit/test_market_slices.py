"""Market slices become cpn_net slices the slicing service can admit."""

import pytest

from cpn_net.market import BatchOrder, Market, StreamOrder
from cpn_net.market.errors import MarketError
from cpn_net.market.slices import placement_slices, slice_name, slice_spec
from cpn_net.model import load_topology
from cpn_net.slicing.admission import admit


def test_placement_slices_are_admissible_cpn_slices():
    topo = load_topology("topologies/tiny.yaml")
    market = Market.from_topology(topo, {"sites": {"east": 0.01, "centre": 0.01}})
    placed = market.submit(BatchOrder("job-1", "east", 600.0, 2000.0, 1800.0, 0.02, result_mb=100.0), 0.0)
    specs = placement_slices(placed, topo, first_id=7)
    assert [s.name for s in specs] == ["mkt-job-1-input", "mkt-job-1-result"]
    assert [s.id for s in specs] == [7, 8]
    admitted = admit(topo.graph(), {}, specs[0])
    assert admitted.rate_mbps == placed.slices[0].rate_mbps
    # admission picks the market's own least-delay route (east-centre, 50 Mbit/s, then centre-west)
    assert placed.slices[0].path == ("east", "centre", "west")
    assert admitted.path("east", "west").sites == placed.slices[0].path


def test_stream_slices_are_latency_slices():
    topo = load_topology("topologies/tiny.yaml")
    market = Market.from_topology(topo, {"sites": {"east": 0.01}})
    placed = market.submit(StreamOrder("s1", "echo", "east", 100.0, 80.0, 0.0, 600.0, 0.02), 0.0)
    (spec,) = placement_slices(placed, topo, first_id=1)
    assert spec.kind == "latency" and spec.sites == ("east", placed.site) and not spec.isolation


def test_slice_names_and_ids_are_checked():
    assert slice_name("X" * 80, "result").startswith("mkt-x") and len(slice_name("X" * 80, "result")) <= 63
    topo = load_topology("topologies/tiny.yaml")
    market = Market.from_topology(topo, {"sites": {"east": 0.01}})
    placed = market.submit(BatchOrder("j", "east", 60.0, 10.0, 900.0, 0.02), 0.0)
    with pytest.raises(MarketError, match="slice_id=0 must be an int from 1 to 4095"):
        slice_spec(placed.slices[0], "j", topo, slice_id=0)
