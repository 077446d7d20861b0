"""Placement policies on a small graph: choices, every refusal kind, all or nothing under injected failure."""

import networkx as nx
import pytest

from cpn_net.market import STEPS, BatchOrder, Market, MarketTerms, Placement, Refusal, StreamOrder, Supply
from cpn_net.market.calendar import LINK, SITE
from cpn_net.market.ledger import verify_lines
from cpn_net.market.sizing import PAYLOAD_SHARE


def toy_graph():
    """src holds the data; near is close and dear, far is cheap behind a narrow direct link or a wide detour."""
    G = nx.Graph()
    for name, site_id in (("src", 1), ("near", 2), ("far", 3), ("alt", 4)):
        G.add_node(name, id=site_id)
    G.add_edge("src", "near", delay_ms=2.0, rate_mbps=100.0)
    G.add_edge("src", "far", delay_ms=10.0, rate_mbps=10.0)
    G.add_edge("src", "alt", delay_ms=8.0, rate_mbps=100.0)
    G.add_edge("alt", "far", delay_ms=8.0, rate_mbps=100.0)
    return G


def toy_supply():
    return Supply(["src", "near", "far", "alt"], [0, 2, 8, 0], [0.003, 0.004, 0.001, 0.003],
                  {"web": {"near": (2, 10.0), "far": (8, 10.0)}})


def toy_market(policy="joint", **kwargs):
    return Market(toy_graph(), toy_supply(), policy=policy, **kwargs)


def job(order_id="j1", *, work=600.0, input_mb=100.0, deadline=3600.0, price=0.01, workers=2, result_mb=0.0):
    return BatchOrder(order_id, "src", work, input_mb, deadline, price, result_mb=result_mb, workers=workers)


def placement_is_consistent(market, placed):
    """The booked holds are exactly what the placement says, and the calendars respect every capacity."""
    site = market.supply.index[placed.site]
    assert (SITE, site, placed.compute_start_s, placed.compute_end_s, placed.slots) in placed.holds
    for hold in placed.slices:
        assert hold.path[0] == placed.source and hold.path[-1] == placed.site
        assert hold.start_s < hold.end_s
    for i, calendar in enumerate(market.book.sites):
        assert calendar.peak(-1e9, 1e9) <= market.supply.surplus[i]
    for li, calendar in enumerate(market.book.links):
        cap = market.network.link_capacity_kbps[li]
        assert cap is None or calendar.peak(-1e9, 1e9) <= cap


@pytest.mark.parametrize("policy, site", [("nearest", "near"), ("cheapest", "far"), ("joint", "far")])
def test_each_policy_picks_its_site(policy, site):
    market = toy_market(policy)
    placed = market.submit(job(), now_s=0.0)
    assert isinstance(placed, Placement) and placed.site == site and placed.policy == policy
    placement_is_consistent(market, placed)


def test_joint_weighs_the_network_charge_against_cheaper_compute():
    # near is one link away and dear; far is three links away and cheap
    G = nx.path_graph(["far", "m2", "m1", "src", "near"])
    nx.set_node_attributes(G, {"src": 1, "near": 2, "far": 3, "m1": 4, "m2": 5}, "id")
    nx.set_edge_attributes(G, 2.0, "delay_ms")
    nx.set_edge_attributes(G, 100.0, "rate_mbps")
    supply = Supply(["src", "near", "far", "m1", "m2"], [0, 2, 8, 0, 0], [0.003, 0.004, 0.001, 0.003, 0.003])
    outcomes = {}
    for price in (2e-6, 0.01):
        terms = MarketTerms(network_cny_per_mbps_s=price)
        outcomes[price] = {policy: Market(G, supply, terms, policy=policy).submit(job(), 0.0)
                           for policy in ("nearest", "cheapest", "joint")}
    assert outcomes[2e-6]["joint"].site == "far" and outcomes[0.01]["joint"].site == "near"
    for chosen in outcomes.values():  # joint's is the lower bill of the two sites, whichever it is
        assert chosen["joint"].total_cny == min(chosen["nearest"].total_cny, chosen["cheapest"].total_cny)
    assert outcomes[0.01]["cheapest"].network_cny == pytest.approx(3 * outcomes[0.01]["nearest"].network_cny,
                                                                   rel=1e-3)


def big_transfer(order_id, input_mb):
    """A job whose input alone sets its rate: 60 s of work, deadline at 1000 s."""
    return job(order_id, work=60.0, input_mb=input_mb, deadline=1000.0, workers=1)


def test_cheapest_is_refused_naming_the_link_and_shortfall_while_joint_takes_the_detour():
    cheapest, joint = toy_market("cheapest"), toy_market("joint")
    first_c = cheapest.submit(big_transfer("a", 839.0), 0.0)
    first_j = joint.submit(big_transfer("a", 839.0), 0.0)
    assert first_c.slices[0].path == first_j.slices[0].path == ("src", "far")
    rate = first_c.slices[0].rate_mbps
    assert 7.5 < rate <= 8.0
    refused = cheapest.submit(big_transfer("b", 500.0), 0.0)
    assert isinstance(refused, Refusal) and refused.constraint == "network"
    assert refused.link == "far-src" and refused.site == "far"
    assert refused.residual_mbps == pytest.approx(10.0 - rate)
    need = joint.submit(big_transfer("b", 500.0), 0.0)
    assert isinstance(need, Placement) and need.site == "far" and need.slices[0].path == ("src", "alt", "far")
    assert refused.shortfall_mbps == pytest.approx(need.slices[0].rate_mbps - (10.0 - rate), abs=1e-3)
    assert "link far-src" in refused.message and "Mbit/s short" in refused.message
    placement_is_consistent(joint, need)


def test_compute_refusal_names_the_site_and_window():
    market = toy_market("nearest")
    first = market.submit(job("a", workers=6, work=3600.0), 0.0)
    assert first.site == "far"  # near sells only 2 slots
    refused = market.submit(job("b", workers=4, work=3600.0), 0.0)
    assert refused.constraint == "compute" and refused.site == "far"
    assert (refused.free_slots, refused.needed_slots) == (2, 4)
    start, end = refused.window
    assert start < first.compute_end_s and end > first.compute_start_s
    assert "site far has 2 of 4 worker slots free over" in refused.message


def test_price_refusal_names_the_site_and_its_price():
    refused = toy_market("nearest").submit(job(price=0.003), 0.0)
    assert refused.constraint == "price" and refused.site == "near"
    assert refused.cny_per_worker_s == pytest.approx(0.004) and refused.max_cny_per_worker_s == 0.003
    assert "raise max_cny_per_worker_s to 0.004" in refused.message


def test_prices_rise_as_a_site_sells_and_can_bind():
    market = toy_market("cheapest")
    first = market.submit(job("a", workers=6), 0.0)
    assert first.cny_per_worker_s == pytest.approx(0.001)
    second = market.submit(job("b", workers=1), 0.0)  # 6 of 8 sold: step 7 of 10
    assert second.cny_per_worker_s == pytest.approx(0.001 * 1.7)
    refused = market.submit(job("c", workers=1, price=0.0015), 0.0)
    assert refused.constraint == "price" and refused.site == "far"


def test_deadline_no_placement_can_meet_is_refused_with_the_fastest_finish():
    market = toy_market("joint")
    transfer_s = 8000.0 / (100.0 * PAYLOAD_SHARE)
    bound = transfer_s + 0.002 + 60.0  # what validation accepts: the source's fastest link, its least delay
    via_alt = transfer_s + 0.016 + 60.0  # the best any site can do: far over the wide detour
    order = job(work=240.0, workers=4, input_mb=1000.0, deadline=(bound + via_alt) / 2)
    refused = market.submit(order, 0.0)
    assert refused.constraint == "deadline"
    assert refused.fastest_s == pytest.approx(via_alt) and refused.site == "far"
    assert f"deadline_s={order.deadline_s:g}" in refused.message
    assert market.book.snapshot() == ((), ())


def test_latency_refusal_names_the_best_site_and_its_p99():
    order = StreamOrder("s1", "web", "src", rate_rps=20.0, p99_ms=13.0, start_s=0.0, duration_s=600.0,
                        max_cny_per_worker_s=0.01)
    refused = toy_market("joint").submit(order, 0.0)
    assert refused.constraint == "latency" and refused.site == "near"
    assert 14.0 <= refused.fastest_s < 20.0
    assert "no site meets p99_ms=13" in refused.message


def test_stream_placement_sizes_slots_and_slice():
    order = StreamOrder("s1", "web", "src", rate_rps=300.0, p99_ms=60.0, start_s=100.0, duration_s=600.0,
                        max_cny_per_worker_s=0.01, request_kb=1.0, response_kb=4.0)
    placed = toy_market("joint").submit(order, 0.0)
    assert placed.site == "far" and placed.slots >= 4  # 3 Erlang of load
    assert placed.p99_ms <= 60.0
    (hold,) = placed.slices
    assert (hold.purpose, hold.start_s, hold.end_s) == ("stream", 100.0, 700.0)
    assert hold.rate_mbps == pytest.approx(300 * 4 * 8 / 1000 / PAYLOAD_SHARE, abs=1e-3)
    assert placed.worker_s == placed.slots * 600.0


def test_a_job_at_its_own_source_needs_no_slice():
    supply = Supply(["src", "near", "far", "alt"], [4, 2, 8, 0], [0.0005, 0.004, 0.001, 0.003])
    placed = Market(toy_graph(), supply).submit(job(), 0.0)
    assert placed.site == "src" and placed.slices == () and placed.network_cny == 0.0
    assert placed.compute_start_s == 0.0 and placed.compute_end_s == 300.0


class Injected(RuntimeError):
    pass


def fault_at(step, on_call=1):
    calls = {"n": 0}

    def fault(name):
        if name == step:
            calls["n"] += 1
            if calls["n"] == on_call:
                raise Injected(f"injected at {step}")

    return fault


@pytest.mark.parametrize("step, on_call", [(s, 1) for s in STEPS] + [("reserve_link", 2)])
def test_a_failure_at_any_step_leaves_no_half_reservation(step, on_call):
    market = toy_market("cheapest")
    market.submit(job("earlier", workers=1), 0.0)  # something booked already, to be left as it was
    before, entries, head = market.book.snapshot(), market.ledger.count, market.ledger.head
    order = job("j2", input_mb=300.0, result_mb=30.0)  # input and result: two link holds
    market.fault = fault_at(step, on_call)
    with pytest.raises(Injected):
        market.submit(order, 0.0)
    assert market.book.snapshot() == before
    assert (market.ledger.count, market.ledger.head) == (entries, head)
    assert "j2" not in market.orders
    market.fault = None
    placed = market.submit(order, 0.0)
    assert isinstance(placed, Placement) and len([h for h in placed.holds if h[0] == LINK]) == 2
    assert verify_lines(market.ledger.lines).ok


def test_a_failure_while_recording_a_refusal_records_nothing():
    market = toy_market("nearest", fault=fault_at("record"))
    with pytest.raises(Injected):
        market.submit(job(price=0.003), 0.0)
    assert market.ledger.count == 1 + 2  # the opening entry and two offers only
    assert "j1" not in market.orders


def test_placements_and_refusals_are_recorded_in_the_ledger():
    import json

    market = toy_market("nearest")
    refused = market.submit(job("dear", price=0.003), 0.0)
    placed = market.submit(job("ok"), 0.0)
    entries = [json.loads(line) for line in market.ledger.lines]
    assert [e["kind"] for e in entries[:5]] == ["market", "offer", "offer", "order", "refusal"]
    assert [e["kind"] for e in entries[5:7]] == ["order", "placement"]
    assert entries[4]["data"] == json.loads(json.dumps(refused.to_dict()))
    assert entries[6]["data"]["site"] == placed.site == "near"
    assert entries[4]["data"]["constraint"] == "price"


def test_unknown_policy_is_named_with_the_choices():
    with pytest.raises(ValueError, match="did you mean 'joint'"):
        toy_market("jiont")


def test_east_data_goes_west_on_the_flagship():
    from cpn_net.model import load_topology

    topo = load_topology("topologies/east-data-west-compute.yaml")
    lon = {s.name: s.lon for s in topo.sites}
    order = BatchOrder("j1", "shanghai", 3600.0, 2000.0, 3 * 3600.0, 0.01, workers=2)
    joint = Market.from_topology(topo).submit(order, 0.0)
    nearest = Market.from_topology(topo, policy="nearest").submit(order, 0.0)
    assert nearest.site == "yangtze-delta" and lon[joint.site] < 108.0  # a western cluster
    assert joint.total_cny < nearest.total_cny
