"""Smoke test: benchmarks/steering_speed.py runs small and agrees with the oracle."""

import importlib.util
import json
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "steering_speed.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("steering_speed", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_small_run_prints_the_documented_json(capsys):
    benchmark = load_benchmark()
    assert benchmark.main(["--sites", "8", "--nodes-per-site", "3", "--decisions", "600",
                           "--active-flows", "100", "--verify-every", "5", "--seed", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["sites"], result["instances"], result["decisions"]) == (8, 24, 600)
    assert result["metric_updates"] > 0 and result["path_updates"] > 0
    assert result["oracle_checks"]["checked"] > 50
    assert result["oracle_checks"]["mismatches"] == 0
    latency = result["decision_latency_us"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert result["decisions_per_s"] > 0 and result["selector"]["unserved"] == 0


def test_percentile_is_nearest_rank():
    benchmark = load_benchmark()
    values = [float(n) for n in range(1, 101)]
    assert benchmark.percentile(values, 0.99) == 99.0
    assert benchmark.percentile(values, 0.50) == 50.0
    assert benchmark.percentile([7.0], 0.99) == 7.0
