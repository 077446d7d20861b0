"""Smoke test: the synthetic national market is seeded and valid, and benchmarks/market_scale.py runs small."""

import importlib.util
import json
from pathlib import Path

import networkx as nx

from cpn_net.market import Market, Placement, Refusal
from cpn_net.market.synthetic import national_graph, national_orders, national_supply

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "market_scale.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("market_scale_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_market_is_seeded_connected_and_every_order_well_formed():
    G = national_graph(seed=5, sites=400)
    assert nx.is_connected(G) and G.number_of_nodes() == 400
    supply = national_supply(G, seed=5)
    orders = national_orders(G, supply, seed=5, count=300)
    again = national_orders(national_graph(seed=5, sites=400), national_supply(G, seed=5), seed=5, count=300)
    assert orders == again
    market = Market(G, supply)
    outcomes = [market.submit(order, now) for now, order in orders]  # an OrderError would fail the test
    assert all(isinstance(o, (Placement, Refusal)) for o in outcomes)
    assert sum(isinstance(o, Placement) for o in outcomes) > 250


def test_benchmark_runs_small_and_reports(capsys, tmp_path):
    benchmark = load_benchmark()
    ledger = tmp_path / "ledger.jsonl"
    assert benchmark.main(["--sites", "300", "--orders", "400", "--ledger", str(ledger), "--compare",
                           "--compare-sites", "20", "--compare-orders", "30"]) == 0
    report = json.loads(capsys.readouterr().out)
    scale = report["scale"]
    assert scale["orders"] == 400 and scale["placed"] + scale["refused"] == 400
    assert scale["ledger"]["verified"] and ledger.exists()
    assert set(scale["placement_ms"]) == {"p50", "p90", "p99", "max", "mean"}
    policies = report["compare"]["policies"]
    assert policies["optimum"]["placed"] >= max(policies[p]["placed"] for p in ("nearest", "cheapest", "joint"))
