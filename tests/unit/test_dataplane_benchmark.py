"""Smoke test: the pure helpers of benchmarks/dataplane.py (the benchmark itself needs root and a network)."""

import doctest
import importlib.util
import json
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "dataplane.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("dataplane_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_doctests_of_the_helpers_pass():
    benchmark = load_benchmark()
    failures, tried = doctest.testmod(benchmark, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried >= 10 and failures == 0


def test_iperf_summary_reads_a_real_shaped_report_and_errors():
    benchmark = load_benchmark()
    doc = {"start": {}, "intervals": [],
           "end": {"streams": [{"sender": {"mean_rtt": 20500, "retransmits": 7}}],
                   "sum_sent": {"bits_per_second": 312.5e6, "retransmits": 7},
                   "sum_received": {"bits_per_second": 310e6, "seconds": 10.04}}}
    # Mininet's cmd() can put shell noise before the JSON.
    assert benchmark.iperf_summary("\r\n" + json.dumps(doc)) == {
        "mbps": 310.0, "sender_mbps": 312.5, "retransmits": 7, "seconds": 10.04, "mean_rtt_ms": 20.5}
    assert "error" in benchmark.iperf_summary("iperf3: error - unable to connect to server")
    assert "error" in benchmark.iperf_summary('{"start": {}}')


def test_bpf_counters_accumulate_per_mode_and_give_ns_per_run():
    benchmark = load_benchmark()
    before = {"r1": {"cpn_sid": {"run_time_ns": 1000, "run_cnt": 10}, "cpn_encap": {"run_time_ns": 0, "run_cnt": 0}}}
    after = {"r1": {"cpn_sid": {"run_time_ns": 4000, "run_cnt": 20}, "cpn_encap": {"run_time_ns": 5000, "run_cnt": 25}},
             "r2": {"cpn_sid": {"run_time_ns": 800, "run_cnt": 4}}}
    total = benchmark.add_counters({}, benchmark.counters_delta(before, after))
    total = benchmark.add_counters(total, benchmark.counters_delta(before, after))
    figures = benchmark.ns_per_run(total)
    assert figures["cpn_sid"]["runs"] == 2 * (10 + 4)
    assert figures["cpn_sid"]["ns_per_run"] == round(2 * (3000 + 800) / 28, 1)
    assert figures["cpn_sid"]["per_router"] == {"r1": {"ns_per_run": 300.0, "runs": 20},
                                                "r2": {"ns_per_run": 200.0, "runs": 8}}
    assert figures["cpn_encap"] == {"ns_per_run": 200.0, "runs": 50,
                                    "per_router": {"r1": {"ns_per_run": 200.0, "runs": 50}}}
    # 50 runs on r1: 20 packets encapsulated, 30 passed through at 100 ns each.
    assert benchmark.attributed_ns(total["r1"]["cpn_encap"], 20, 100.0) == round((10000 - 3000) / 20, 1)


def test_interface_deltas():
    benchmark = load_benchmark()
    before = {"r1": {"r1-eth1": {"rx_packets": 1, "tx_packets": 2, "tx_bytes": 100}}}
    after = {"r1": {"r1-eth1": {"rx_packets": 11, "tx_packets": 2, "tx_bytes": 1600},
                    "r1-eth9": {"rx_packets": 3, "tx_packets": 0, "tx_bytes": 0}}}
    assert benchmark.intf_delta(before, after) == {
        "r1": {"r1-eth1": {"rx_packets": 10, "tx_packets": 0, "tx_bytes": 1500},
               "r1-eth9": {"rx_packets": 3, "tx_packets": 0, "tx_bytes": 0}}}


def test_batch_rates_and_ratio():
    benchmark = load_benchmark()
    rates = benchmark.batch_rates([{"installed": 990, "seconds": 0.2}, {"installed": 1000, "seconds": 0.25}])
    assert rates["total_installed"] == 1990 and rates["policies_per_s"] == round(1990 / 0.45, 1)
    assert benchmark.batch_rates([])["policies_per_s"] is None
    assert benchmark.ratio(90, 100) == 0.9 and benchmark.ratio(None, 100) is None
    assert benchmark.median([None, 4, 2]) == 3
