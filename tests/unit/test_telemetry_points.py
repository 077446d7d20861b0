"""Unit tests for cpn_net.telemetry.points (measurement point and link naming)."""

from __future__ import annotations

import pytest

from cpn_net.model.addressing import host_name, router_name, switch_name
from cpn_net.telemetry.errors import TelemetryValueError
from cpn_net.telemetry.points import MeasurementPoint, link_id, node_of_interface


NODES = [router_name(9999), switch_name(12), host_name(3, "compute", 99), host_name(1, "client", 1), "l3x12"]


@pytest.mark.parametrize("node", NODES)
def test_node_of_interface_follows_the_addressing_plan(node):
    assert node_of_interface(f"{node}-eth0") == node
    assert node_of_interface(f"{node}-eth17") == node


@pytest.mark.parametrize("bad", ["eth0", "r1", "r1-eth", "r1-ethx", "-eth0", "r1-eth0 "])
def test_bad_interface_names_are_rejected_with_the_fix(bad):
    with pytest.raises(TelemetryValueError, match=r"must be named '<node>-eth<N>' \(addressing plan\)"):
        node_of_interface(bad)


def test_point_round_trip_and_errors():
    assert str(MeasurementPoint.parse("r4-eth2:out")) == "r4-eth2:out"
    with pytest.raises(TelemetryValueError, match=r"measurement point 'r4-eth2' must be '<interface>:<in\|out>'"):
        MeasurementPoint.parse("r4-eth2")
    with pytest.raises(TelemetryValueError, match=r"measurement point r4-eth2: direction='both' must be one of"):
        MeasurementPoint.parse("r4-eth2:both")


def test_link_id_is_directed_and_checked():
    assert link_id("r1", "r4") != link_id("r4", "r1")
    with pytest.raises(TelemetryValueError, match=r"link 'r1'->'r1': needs two different"):
        link_id("r1", "r1")
