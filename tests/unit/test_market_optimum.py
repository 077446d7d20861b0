"""The offline MILP optimum places at least as many orders as any online policy, on the same terms."""

import networkx as nx
import pytest

from cpn_net.market import BatchOrder, Market, Placement, Supply
from cpn_net.market.optimum import solve
from cpn_net.market.synthetic import national_graph, national_orders, national_supply


def test_optimum_beats_the_greedy_joint_on_a_tiny_instance():
    # a: the data's site, 2 slots, cheap; b: 2 slots behind a 10 Mbit/s link
    G = nx.Graph()
    G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2})])
    G.add_edge("a", "b", delay_ms=1.0, rate_mbps=10.0)
    supply = Supply(["a", "b"], [2, 2], [0.001, 0.002])
    loose = BatchOrder("loose", "a", 600.0, 1000.0, 5000.0, 0.01, workers=2)  # could run at either site
    tight = BatchOrder("tight", "a", 600.0, 1000.0, 400.0, 0.01, workers=2)  # no time to move its data
    submissions = [(0.0, loose), (0.0, tight)]
    market = Market(G, supply)
    outcomes = [market.submit(order, now) for now, order in submissions]
    assert outcomes[0].site == "a" and outcomes[1].constraint == "compute"
    result = solve(G, supply, submissions)
    assert result.optimal and result.admitted == 2 > 1
    assert result.choices == {"loose": ("b", ("a", "b")), "tight": ("a", ("a",))}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_optimum_admits_at_least_what_each_policy_does(seed):
    G = national_graph(seed, sites=24)
    orders = national_orders(G, national_supply(G, seed), seed, 40, day_s=1800.0)
    placed = {}
    for policy in ("nearest", "cheapest", "joint"):
        market = Market(G, national_supply(G, seed), policy=policy)
        placed[policy] = sum(isinstance(market.submit(order, now), Placement) for now, order in orders)
    result = solve(G, national_supply(G, seed), orders, time_limit_s=60.0)
    assert result.optimal
    assert result.admitted >= max(placed.values())
    assert result.variables > 0 and result.orders == 40


def test_optimum_of_nothing():
    G = nx.Graph()
    G.add_nodes_from([("a", {"id": 1})])
    result = solve(G, Supply(["a"], [1], [0.001]), [])
    assert (result.admitted, result.optimal) == (0, True)
