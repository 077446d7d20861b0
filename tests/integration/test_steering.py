"""Compute-aware steering on the real network: services, metrics, anycast steering, affinity, dead nodes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from cpn_net.model import load_topology

from .conftest import ROOT, TINY, cpn, wait_until

pytestmark = pytest.mark.integration

TOPOLOGY = load_topology(TINY)
SERVICE = TOPOLOGY.services[0]
REQUEST = os.path.join(ROOT, "tests", "integration", "_request.py")


def steering() -> dict:
    manifest = json.load(open("/run/cpn/manifest.json"))
    from cpn_net.northbound_client import NorthboundClient

    return NorthboundClient(manifest["rest_url"]).steering()


def served_by(client: str, count: int) -> dict:
    """Send ``count`` requests from ``client`` to the anycast, each its own flow; who answered."""
    proc = subprocess.run(["ip", "netns", "exec", f"cpn-{client}", sys.executable, REQUEST, str(SERVICE.anycast),
                           str(SERVICE.port), str(count)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def control(instance: str, message: dict) -> dict:
    from cpn_net.emulation import wire

    return wire.request(f"/run/cpn/services/{instance}.{SERVICE.name}.sock", message)


def test_every_instance_reports_metrics_and_answers_from_the_anycast(tiny_network):
    view = wait_until(lambda: (v := steering()) and all(i["healthy"] for i in v["instances"]) and v, 15,
                      "every instance healthy")
    assert {i["instance"] for i in view["instances"]} == set(SERVICE.compute)
    answers = served_by("u1-1", 20)
    assert answers["timeouts"] == 0 and answers["sources"] == {str(SERVICE.anycast): 20}
    assert set(answers["served"]) <= set(SERVICE.compute)


def test_a_busy_local_instance_moves_new_flows_elsewhere_over_srv6(tiny_network):
    local = TOPOLOGY.site("east").compute[0].name
    try:
        control(local, {"op": "set", "background_load_pct": 99})
        wait_until(lambda: all(local not in [s[0] for s in p["split"]] for p in steering()["preferred"]
                               if p["site"] == "east"), 15, f"east's new flows steered away from {local}")
        answers = served_by("u1-1", 30)
        assert local not in answers["served"], answers
        assert sum(answers["served"].values()) + answers["timeouts"] == 30
    finally:
        control(local, {"op": "set", "background_load_pct": 0})


def test_a_silent_instance_is_taken_out_within_two_periods(tiny_network):
    victim = TOPOLOGY.site("east").compute[0].name
    control(victim, {"op": "pause", "seconds": 8})
    # Health is judged when the view is read, the split at each decision (every period): wait for
    # both under the same deadline rather than read the split the instant health flips.
    def taken_out():
        v = steering()
        unhealthy = not next(i for i in v["instances"] if i["instance"] == victim)["healthy"]
        return unhealthy and all(victim not in [s[0] for s in p["split"]] for p in v["preferred"]) and v

    wait_until(taken_out, 2 * 1.0 + 1.5, f"{victim} marked unhealthy and out of every split within two metric "
                                         "periods")


def test_policy_can_be_switched_at_runtime(tiny_network):
    manifest = json.load(open("/run/cpn/manifest.json"))
    from cpn_net.northbound_client import NorthboundClient, NorthboundError

    client = NorthboundClient(manifest["rest_url"])
    assert client.set_steering_policy("nearest")["policy"] == "nearest"
    with pytest.raises(NorthboundError) as err:
        client.set_steering_policy("fastest")
    assert err.value.status in (400, 422) and "fastest" in str(err.value)
    assert client.set_steering_policy("joint")["policy"] == "joint"
