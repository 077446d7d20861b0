"""Tests of the metrics agent's report: fields, parsing, and the controller's Level 0 record."""

import json

import pytest

from cpn_net.compute import ComputeRecordError
from cpn_net.compute.report import (REPORT_KEYS, build_report, encode_report, parse_report,
                                    to_compute_metrics)
from cpn_net.steering.metrics import ComputeMetrics


def report(**change):
    fields = dict(reported_at=1000.5, period_s=1.0, utilisation=0.75, queue_len=3, workers=4,
                  service_time_ms=10.0, background_load_pct=20.0, served=120, rejected=2,
                  background_jobs=80, arrival_rps=125.0, price_cny_per_hour=12.5,
                  carbon_g_per_kwh=300.0) | change
    return build_report("k3-1", "infer", **fields)


def test_report_has_every_field_and_round_trips():
    r = report()
    assert set(r) == set(REPORT_KEYS)
    assert r["capacity_rps"] == 400.0 and r["schema"] == 1
    assert parse_report(encode_report(r)) == r


def test_report_becomes_the_controllers_level0_metrics():
    metrics = to_compute_metrics(parse_report(encode_report(report())))
    assert metrics == ComputeMetrics("k3-1", 1000.5, 0.75, 3, 400.0, 4, 10.0, 12.5, 300.0)
    assert to_compute_metrics(report(), reported_at_s=7.0).reported_at_s == 7.0
    assert to_compute_metrics(report(price_cny_per_hour=None)).price_cny_per_hour is None


def test_utilisation_is_clamped_into_unit_range():
    assert report(utilisation=-1e-12)["utilisation"] == 0.0
    assert report(utilisation=1 + 1e-9)["utilisation"] == 1.0


def test_out_of_range_metrics_are_refused_with_the_steering_message():
    bad = report() | {"utilisation": 1.4}
    with pytest.raises(ComputeRecordError) as info:
        to_compute_metrics(bad)
    assert str(info.value) == "metrics report: metrics k3-1: utilisation=1.4 must be in [0, 1]"


@pytest.mark.parametrize("datagram, message", [
    (b"{", "metrics report: not JSON (Expecting property name enclosed in double quotes: "
           "line 1 column 2 (char 1))"),
    (b"[1]", "metrics report: [1] must be a JSON object"),
    (json.dumps({k: v for k, v in report().items() if k not in ("workers", "served")}).encode(),
     "metrics report from 'k3-1': missing workers, served"),
    (encode_report(report() | {"queue_len": 1.5}),
     "metrics report from k3-1: queue_len=1.5 must be an integer >= 0"),
    (encode_report(report() | {"utilisation": "high"}),
     "metrics report from k3-1: utilisation='high' must be a finite number"),
    (encode_report(report() | {"carbon_g_per_kwh": True}),
     "metrics report from k3-1: carbon_g_per_kwh=True must be a finite number"),
    (encode_report(report() | {"instance": ""}), "metrics report: instance='' must be a non-empty string"),
])
def test_malformed_reports_are_named(datagram, message):
    with pytest.raises(ComputeRecordError) as info:
        parse_report(datagram)
    assert str(info.value) == message
