"""Tests for cpn_net.steering.model: the selector's frozen vocabulary."""

import dataclasses
import ipaddress
import math

import pytest

from cpn_net.model.addressing import host_address, host_name
from cpn_net.steering.errors import MetricsError
from cpn_net.steering.model import LOCAL_PATH, Flow, FlowKey, PathMetrics, ServiceInstance

KEY = FlowKey("2001:db8:1::1:1", "2001:db8:ff::1", 17, 40000, 443)


def test_service_instance_takes_names_and_addresses_from_the_plan():
    instance = ServiceInstance(host_name(12, "compute", 3), "site12", "render",
                               host_address(12, "compute", 3))
    assert instance.name == "k12-3"
    assert instance.address == ipaddress.IPv6Address("2001:db8:12::2:3")


def test_service_instance_converts_a_string_address():
    instance = ServiceInstance("k1-1", "site1", "render", "2001:db8:1::2:1")
    assert isinstance(instance.address, ipaddress.IPv6Address)


def test_service_instance_rejects_ipv4_address_naming_it():
    with pytest.raises(MetricsError,
                       match=r"^instance 'k1-1': address='10.0.0.1' must be an IPv6 address$"):
        ServiceInstance("k1-1", "site1", "render", "10.0.0.1")


def test_service_instance_rejects_empty_site():
    with pytest.raises(MetricsError, match=r"^instance 'k1-1': site='' must be a non-empty"):
        ServiceInstance("k1-1", "", "render", "2001:db8:1::2:1")


def test_data_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LOCAL_PATH.delay_ms = 3.0


@pytest.mark.parametrize("fields, message", [
    ((1.0, 101.0, 1.0), "path: loss_pct=101.0 must be in [0, 100]"),
    ((1.0, 0.0, -5.0), "path: available_mbps=-5.0 must be >= 0"),
    ((math.inf, 0.0, 5.0), "path: delay_ms=inf must be a finite number"),
])
def test_path_metrics_rejects_out_of_range(fields, message):
    with pytest.raises(MetricsError) as caught:
        PathMetrics(*fields)
    assert str(caught.value) == message


def test_path_metrics_allows_unlimited_bandwidth():
    assert PathMetrics(1.0, 0.0, math.inf).available_mbps == math.inf


def test_local_path_adds_nothing():
    assert (LOCAL_PATH.delay_ms, LOCAL_PATH.loss_pct) == (0.0, 0.0)


@pytest.mark.parametrize("fields, message", [
    (("2001:db8::1", "2001:db8::2", 256, 1, 1), "flow: protocol=256 must be an integer in 0..255"),
    (("2001:db8::1", "2001:db8::2", 6, -1, 1), "flow: src_port=-1 must be an integer in 0..65535"),
    (("nonsense", "2001:db8::2", 6, 1, 1), "flow: src='nonsense' must be an IPv6 address"),
])
def test_flow_key_rejects_bad_fields(fields, message):
    with pytest.raises(MetricsError) as caught:
        FlowKey(*fields)
    assert str(caught.value) == message


def test_equal_five_tuples_are_the_same_key():
    again = FlowKey(ipaddress.IPv6Address("2001:db8:1::1:1"), "2001:db8:ff::1", 17, 40000, 443)
    assert again == KEY and hash(again) == hash(KEY)


def test_flow_rejects_negative_budget_naming_the_service():
    with pytest.raises(MetricsError,
                       match=r"^flow to 'render': latency_budget_ms=-1.0 must be >= 0$"):
        Flow(KEY, "site1", "render", latency_budget_ms=-1.0)


def test_flow_defaults_to_no_constraints():
    flow = Flow(KEY, "site1", "render")
    assert (flow.demand_mbps, flow.latency_budget_ms, flow.client_side_ms) == (0.0, None, 0.0)
