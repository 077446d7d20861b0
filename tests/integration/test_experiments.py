"""Experiment smoke tests: experiments run end to end in quick mode."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT, TINY, leftovers

pytestmark = pytest.mark.integration


def test_latency_map_quick_writes_a_self_describing_result_and_plots(tmp_path):
    assert leftovers() == []
    env = dict(os.environ, CPN_RESULTS_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "experiments.latency_map.run", "--quick", "--topology", TINY],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "links delivering their configured delay" in proc.stdout
    [path] = glob.glob(str(tmp_path / "latency_map" / "*" / "result.json"))
    with open(path) as handle:
        result = json.load(handle)
    assert result["schema"] == 1
    meta = result["metadata"]
    assert meta["link_emulation_mode"] in ("netem", "userspace")
    assert meta["kernel"] and meta["packages"]["os-ken"] and meta["seed"] == 1
    assert meta["config"]["topology"]["name"] == "tiny"
    # 3 clients x 3 compute nodes, each with raw samples
    assert len(result["samples"]) == 9
    assert all(row["samples"] for row in result["samples"])
    assert result["summary"]["links_checked"] == 3
    for name in ("rtt_measured_vs_configured.png", "rtt_cdf_by_city.png"):
        assert os.path.getsize(os.path.join(os.path.dirname(path), name)) > 1000
    assert leftovers() == []


def test_headline_quick_compares_policies_and_writes_plots(tmp_path):
    assert leftovers() == []
    env = dict(os.environ, CPN_RESULTS_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "experiments.headline.run", "--quick", "--topology", TINY,
                           "--duration-s", "6", "--rate-rps", "20", "--policies", "nearest", "joint",
                           "--surge-site", "east", "--lossy-link", "east", "centre"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [path] = glob.glob(str(tmp_path / "headline" / "*" / "result.json"))
    with open(path) as handle:
        result = json.load(handle)
    assert result["schema"] == 1 and result["metadata"]["link_emulation_mode"] in ("netem", "userspace")
    runs = {run["policy"]: run for run in result["runs"]}
    assert set(runs) == {"nearest", "joint"}
    for run in runs.values():
        statuses = run["samples"]["status"]
        # every request sent is in the results, served or not (no silent drops)
        assert run["summary"]["count"] == len(statuses) > 50
        assert set(statuses) <= {"served", "rejected", "timeout"}
        assert len(run["events"]) == 2
    assert "joint_p95_over_nearest_p95" in result["summary"]["targets"]
    for name in ("response_time_cdf.png", "timeline_p95.png"):
        assert os.path.getsize(os.path.join(os.path.dirname(path), name)) > 1000
    assert leftovers() == []


def test_slices_quick_proves_guarantee_latency_isolation_admission_and_times_enforcement(tmp_path):
    assert leftovers() == []
    env = dict(os.environ, CPN_RESULTS_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "experiments.slices.run", "--quick"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [path] = glob.glob(str(tmp_path / "slices" / "*" / "result.json"))
    with open(path) as handle:
        result = json.load(handle)
    part = result["slices_topology"]
    assert part["guarantee"]["gold_tcp_mbps"] >= 9.5
    # The p99 against the bound is asserted by tests/integration/test_slices.py; the quick run
    # starts measuring a few seconds after boot, and prints its tail rather than judging it.
    gold = part["latency"]["gold"]
    assert gold["one_way"]["median_ms"] <= 10.0 < part["latency"]["bulk"]["rtt_p99_ms"], part["latency"]
    assert gold["one_way"]["p99_ms"] >= gold["one_way"]["median_ms"] > 0, gold
    assert gold["one_way"]["lost"] <= 0.01 * gold["one_way"]["sent"], gold
    control = part["latency"]["no_slice"]["one_way"]  # same path, default class, same window
    assert control["sent"] == gold["one_way"]["sent"] and control["median_ms"] > 0, control
    assert set(part["latency"]["link_element_late_departures"]) == {"late_over_1ms", "late_over_5ms"}
    delivered = {k: v["delivered"] for k, v in part["isolation"].items()}
    assert delivered.pop("control") == 20 and set(delivered.values()) == {0}, delivered
    assert part["admission"]["runtime_status"] == 409 and part["admission"]["data_plane_unchanged_after_refusal"]
    assert part["slo_monitoring"]["summary"]["gold"]["samples"] >= 5
    timing = result["enforcement"]
    assert timing["1_slices"]["all_on_switches_ms"] > 0 and timing["15_slices"]["in_force"] == 15
    # 50 slices in force at once: more than the 15 marks, reused where paths do not share a link
    assert timing["50_slices"]["in_force"] == 50 and timing["50_slices"]["marks_used"] <= 15
    assert timing["10_requests_in_a_row"]["requests"] == 10
    assert leftovers() == []
