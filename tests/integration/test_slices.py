"""Network slices on the real network: admission at boot and the bandwidth guarantee under a flood."""

from __future__ import annotations

import json
import os

import pytest

from .conftest import ROOT, cpn, in_node, leftovers, status, wait_until

pytestmark = pytest.mark.integration

SLICES = os.path.join(ROOT, "topologies", "slices.yaml")


@pytest.fixture(scope="module")
def slices_network():
    assert leftovers() == [], f"a previous run left: {leftovers()}"
    cpn("up", SLICES, "--detach")
    try:
        yield status()
    finally:
        cpn("down")


def test_admission_admits_what_fits_and_names_the_bottleneck_of_what_does_not(slices_network):
    slices = slices_network["controller"]["slices"]
    assert set(slices["admitted"]) == {"gold", "bulk"}
    refusal = slices["refused"]["greedy"]
    assert "a-b" in refusal or "b-a" in refusal, refusal
    assert "7" in refusal, f"the shortfall (15 - 8 = 7 Mbit/s) must be named: {refusal}"
    classes = in_node("r1", "tc class show dev r1-eth1").stdout
    assert "1:11" in classes and "1:12" in classes and "1:13" not in classes, classes


def test_guaranteed_slice_keeps_its_rate_while_the_bulk_slice_floods_the_link(slices_network, tmp_path):
    in_node("k2-1", "iperf3 -s -1 -D -p 5401")
    in_node("k2-2", "iperf3 -s -1 -D -p 5402")
    for node, port in (("k2-1", "5401"), ("k2-2", "5402")):
        wait_until(lambda: port in in_node(node, "ss -ltn").stdout, 10, f"iperf3 on {node}")
    flood = f"iperf3 -c 2001:db8:2::2:2 -p 5402 -u -b 30M -t 8 --json > {tmp_path}/bulk.json"
    in_node("u1-2", f"({flood}) >/dev/null 2>&1 &")
    wait_until(lambda: "dropped 0," not in in_node("r1", "tc -s class show dev r1-eth1 classid 1:12").stdout,
               10, "the bulk flood queueing at its HTB class")
    gold = json.loads(in_node("u1-1", "iperf3 -c 2001:db8:2::2:1 -p 5401 -t 5 --json", timeout=60).stdout)
    mbps = gold["end"]["sum_received"]["bits_per_second"] / 1e6
    print(f"\ngold slice TCP under a 30 Mbit/s bulk flood on a 20 Mbit/s link: {mbps:.2f} Mbit/s (guarantee 10)")
    assert mbps >= 0.95 * 10, f"gold got {mbps:.2f} Mbit/s of its guaranteed 10"
    wait_until(lambda: os.path.exists(tmp_path / "bulk.json") and os.path.getsize(tmp_path / "bulk.json") > 100,
               20, "the bulk flood to finish")
