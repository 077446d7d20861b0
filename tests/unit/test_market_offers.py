"""Offers, the surge rule and the market: section: surplus per node and site, prices that rise as surplus sells."""

import json

import networkx as nx
import pytest

from cpn_net.market import BatchOrder, Market, PriceRule, Supply, market_terms, node_offers, surplus_slots
from cpn_net.market.pricing import DEFAULT_BASE_CNY_PER_WORKER_S
from cpn_net.model import load_topology
from cpn_net.model.errors import TopologyError


def test_surplus_is_capacity_minus_background_load_in_whole_slots():
    assert [surplus_slots(4, load) for load in (0.0, 24.9, 25.0, 70.0, 99.9)] == [4, 3, 3, 1, 0]


def test_flagship_offers_follow_its_loads():
    topo = load_topology("topologies/east-data-west-compute.yaml")
    offers = {o.node: o for o in node_offers(topo)}
    assert offers["k1-1"].surplus_slots == 1  # Zhangjiakou, 70 % busy
    west = [o for o in offers.values() if o.background_load_pct <= 30]
    assert west and all(o.surplus_slots == 2 or o.surplus_slots == 3 for o in west)
    supply = Supply.from_topology(topo)
    assert supply.surplus_of("zhangjiakou") == 2
    assert set(supply.services["infer"].sites) == {s.name for s in topo.sites if s.compute}


def test_default_base_price_comes_from_the_nodes_price_per_hour():
    topo = load_topology("topologies/east-data-west-compute.yaml")
    terms = market_terms(topo)
    assert terms.base_cny_per_worker_s["zhangjiakou"] == pytest.approx(103 / 4 / 3600)
    tiny = market_terms(load_topology("topologies/tiny.yaml"))  # no prices: the documented default
    assert set(tiny.base_cny_per_worker_s.values()) == {DEFAULT_BASE_CNY_PER_WORKER_S}


def test_market_section_sets_prices_and_rule():
    topo = load_topology("topologies/tiny.yaml")
    terms = market_terms(topo, {"sites": {"west": 0.0005}, "default_base_cny_per_worker_s": 0.002,
                                "surge_pct": 50, "surge_steps": 5, "network_cny_per_mbps_s": 0.0,
                                "horizon_s": 600, "batch_slack_pct": 0, "currency": "EUR"})
    assert terms.base_cny_per_worker_s == {"east": 0.002, "centre": 0.002, "west": 0.0005}
    assert terms.rule == PriceRule(50.0, 5) and terms.horizon_s == 600.0 and terms.currency == "EUR"


def test_market_section_problems_are_all_listed_with_fixes():
    topo = load_topology("topologies/tiny.yaml")
    with pytest.raises(TopologyError) as caught:
        market_terms(topo, {"surge": 10, "surge_steps": 0, "sites": {"wset": 0.001, "east": -1}}, file="t.yaml")
    lines = str(caught.value).splitlines()
    assert "t.yaml: market.surge: unknown key; did you mean 'surge_pct'?" in lines
    assert "t.yaml: market.surge_steps: 0 must be in [1, 1000]; give 1 to 1000 steps" in lines
    assert "t.yaml: market.sites.wset: unknown site; did you mean 'west'?" in lines
    assert any(line.startswith("t.yaml: market.sites.east: -1 must be > 0") for line in lines)


def test_price_rule_steps_up_with_the_share_sold():
    rule = PriceRule(100.0, 10)
    prices = [rule.price(1.0, sold, 20) for sold in range(21)]
    assert prices == sorted(prices) and prices[0] == 1.0 and prices[-1] == 2.0
    assert prices[1] == 1.0 and prices[2] == pytest.approx(1.1)  # a step per tenth sold


def two_sites():
    G = nx.Graph()
    G.add_nodes_from([("east", {"id": 1}), ("west", {"id": 2})])
    G.add_edge("east", "west", delay_ms=10.0, rate_mbps=100.0)
    return Market(G, Supply(["east", "west"], [0, 10], [0.002, 0.001]))


def test_posted_offers_rise_as_surplus_sells_and_changes_are_recorded():
    market = two_sites()
    (offer,) = market.offers(0.0)
    assert (offer.site, offer.free_slots, offer.cny_per_worker_s, offer.step) == ("west", 10, 0.001, 0)
    market.submit(BatchOrder("j1", "east", 600.0, 10.0, 3600.0, 0.01, workers=5), 0.0)
    (offer,) = market.offers(0.0)
    assert offer.free_slots == 5 and offer.step == 5 and offer.cny_per_worker_s == pytest.approx(0.0015)
    entries = [json.loads(line) for line in market.ledger.lines]
    changes = [e["data"] for e in entries if e["kind"] == "offer"]
    assert [c["step"] for c in changes] == [0, 5]


def test_surplus_updates_are_offer_changes():
    market = two_sites()
    offer = market.update_surplus("west", 4, 10.0)
    assert offer.surplus_slots == 4
    last = json.loads(market.ledger.lines[-1])
    assert last["kind"] == "offer" and last["data"]["surplus_slots"] == 4 and last["time_s"] == 10.0
    with pytest.raises(ValueError, match="surplus_slots=-1 must be an int >= 0"):
        market.update_surplus("west", -1, 11.0)
    assert market.supply.surplus_of("west") == 4


def test_refresh_reposts_offers_once_bookings_end():
    market = two_sites()
    placed = market.submit(BatchOrder("j1", "east", 600.0, 10.0, 3600.0, 0.01, workers=5), 0.0)
    assert market.refresh_offers(10.0) == 0
    assert market.refresh_offers(placed.end_s + 1.0) == 1
    assert market.offers(placed.end_s + 1.0)[0].step == 0
