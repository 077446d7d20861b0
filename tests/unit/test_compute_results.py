"""Tests of the response-time and SLO summaries."""

import json
import random

import numpy
import pytest

from cpn_net.compute import ComputeConfigError, ComputeRecordError
from cpn_net.compute.results import percentile, summarise, summarise_record

S = 1_000_000_000


def columns(rows):
    """rows of (send_s, status, response_ms, instance) -> columnar requests."""
    return {"send_ns": [round(r[0] * S) for r in rows], "status": [r[1] for r in rows],
            "response_ms": [r[2] for r in rows], "instance": [r[3] for r in rows]}


ROWS = [(0.1, "served", 10.0, "k1-1"), (0.2, "served", 30.0, "k2-1"), (0.9, "served", 250.0, "k1-1"),
        (1.5, "rejected", 0.5, "k2-1"), (3.2, "timeout", None, None), (3.3, "served", 20.0, "k2-1")]


def test_overall_counts_times_and_slo():
    s = summarise(columns(ROWS), slo_ms=100)
    assert (s.count, s.served, s.rejected, s.timeouts) == (6, 4, 1, 1)
    assert s.mean_ms == (10 + 30 + 250 + 20) / 4
    assert s.p50_ms == 25.0  # between 20 and 30
    assert s.p95_ms == pytest.approx(30 + (250 - 30) * 0.85)
    # slow (250 ms), rejected and timeout violate the SLO
    assert (s.slo_violations, s.slo_violation_rate) == (3, 0.5)
    assert s.per_instance == {"k1-1": {"served": 2, "rejected": 0}, "k2-1": {"served": 2, "rejected": 1}}


def test_bins_are_by_send_time_and_include_empty_ones():
    s = summarise(columns(ROWS), slo_ms=100, bin_s=1.0, start_ns=0)
    b = s.bins
    assert b.t_s == (0.0, 1.0, 2.0, 3.0)
    assert (b.requests, b.served, b.rejected, b.timeouts) == ((3, 1, 0, 2), (3, 0, 0, 1), (0, 1, 0, 0),
                                                              (0, 0, 0, 1))
    assert b.mean_ms == (290 / 3, None, None, 20.0)
    assert b.slo_violation_rate == (1 / 3, 1.0, None, 0.5)
    assert b.instances == {"k1-1": (2, 0, 0, 0), "k2-1": (1, 0, 0, 1)}
    assert sum(b.requests) == s.count


def test_every_request_lands_in_exactly_one_bin():
    rng = random.Random(1)
    rows = [(rng.uniform(0, 10), rng.choice(["served", "timeout"]), 5.0, "k1-1") for _ in range(500)]
    rows = [(t, st, ms if st == "served" else None, k if st == "served" else None) for t, st, ms, k in rows]
    for bin_s in (0.3, 1.0, 7.0):
        b = summarise(columns(rows), slo_ms=10, bin_s=bin_s).bins
        assert sum(b.requests) == 500 and sum(b.served) + sum(b.timeouts) == 500


def test_percentile_matches_numpys_linear_method():
    rng = random.Random(3)
    for n in (1, 2, 7, 100):
        values = sorted(rng.expovariate(0.1) for _ in range(n))
        for q in (0, 1, 50, 95, 99, 100):
            assert percentile(values, q) == pytest.approx(float(numpy.percentile(values, q)))


def test_nothing_served_gives_null_times():
    s = summarise(columns([(0, "timeout", None, None)]), slo_ms=10)
    assert (s.mean_ms, s.p99_ms, s.slo_violation_rate) == (None, None, 1.0)
    json.dumps(s.to_dict())


@pytest.mark.parametrize("requests, message", [
    ({"send_ns": [], "status": []}, "requests: missing column response_ms, instance; a loadgen record's "
                                    "requests have send_ns, status, response_ms, instance"),
    ({"send_ns": [0], "status": [], "response_ms": [], "instance": []},
     "requests: columns differ in length {'send_ns': 1, 'status': 0, 'response_ms': 0, 'instance': 0}; "
     "each needs one entry per request"),
    (columns([(0, "lost", None, None)]), "requests row 0: status='lost' must be one of served, rejected, timeout"),
    (columns([(0, "served", None, "k1-1")]),
     "requests row 0: a served request needs response_ms >= 0 and an instance, got None and 'k1-1'"),
    (columns([(0, "timeout", 3.0, None)]),
     "requests row 0: a timeout must have null response_ms and instance, got 3.0 and None"),
    ({"send_ns": [0.5], "status": ["timeout"], "response_ms": [None], "instance": [None]},
     "requests row 0: send_ns=0.5 must be an integer"),
])
def test_inconsistent_requests_are_named(requests, message):
    with pytest.raises(ComputeRecordError) as info:
        summarise(requests, slo_ms=10)
    assert str(info.value) == message


@pytest.mark.parametrize("kwargs, message", [
    (dict(slo_ms=0), "summarise: slo_ms=0 must be a finite number > 0"),
    (dict(slo_ms=10, bin_s=float("inf")), "summarise: bin_s=inf must be a finite number > 0"),
    (dict(slo_ms=10, start_ns=10**12),
     "summarise: start_ns=1000000000000 is after the first send (100000000); pass the run's start or leave it out"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ComputeConfigError) as info:
        summarise(columns(ROWS), **kwargs)
    assert str(info.value) == message


def test_record_bins_start_at_the_runs_start():
    record = {"schema": 1, "role": "loadgen", "started_ns": 0, "requests": columns(ROWS[3:])}
    assert summarise_record(record, slo_ms=100).bins.t_s[0] == 0.0
    assert summarise_record(record, slo_ms=100).bins.requests == (0, 1, 0, 2)
