"""Tests for cpn_net.steering.metrics: CATS levels and staleness."""

import math
import random
import re

import pytest

from cpn_net.steering.errors import MetricsError
from cpn_net.steering.metrics import (ComputeMetrics, Level1Scores, is_fresh, level1, level2,
                                      max_age_s)
from cpn_net.steering.model import PathMetrics
from cpn_net.steering.synthetic import random_metrics


def metrics(**changes):
    fields = dict(instance="k1-1", reported_at_s=0.0, utilisation=0.5, queue_len=0,
                  capacity_rps=100.0, workers=2, service_time_ms=10.0)
    fields.update(changes)
    return ComputeMetrics(**fields)


@pytest.mark.parametrize("changes, message", [
    ({"utilisation": 1.5}, "metrics k1-1: utilisation=1.5 must be in [0, 1]"),
    ({"utilisation": -0.1}, "metrics k1-1: utilisation=-0.1 must be in [0, 1]"),
    ({"queue_len": -1}, "metrics k1-1: queue_len=-1 must be an integer >= 0"),
    ({"queue_len": 1.5}, "metrics k1-1: queue_len=1.5 must be an integer >= 0"),
    ({"workers": 0}, "metrics k1-1: workers=0 must be an integer >= 1"),
    ({"capacity_rps": 0.0}, "metrics k1-1: capacity_rps=0 must be > 0"),
    ({"service_time_ms": float("nan")}, "metrics k1-1: service_time_ms=nan must be a finite"),
    ({"price_cny_per_hour": -2.0}, "metrics k1-1: price_cny_per_hour=-2.0 must be >= 0"),
    ({"carbon_g_per_kwh": "lots"}, "metrics k1-1: carbon_g_per_kwh='lots' must be a number"),
    ({"instance": ""}, "metrics: instance='' must be a non-empty string"),
    ({"utilisation": True}, "metrics k1-1: utilisation=True must be a number"),
])
def test_compute_metrics_rejects_out_of_range_values_naming_them(changes, message):
    with pytest.raises(MetricsError, match="^" + re.escape(message)):
        metrics(**changes)


def test_report_is_fresh_until_exactly_two_periods_old():
    report = metrics(reported_at_s=100.0)
    assert is_fresh(report, now=100.0, period_s=0.5)
    assert is_fresh(report, now=100.999, period_s=0.5)
    assert not is_fresh(report, now=101.0, period_s=0.5)
    assert not is_fresh(report, now=1000.0, period_s=0.5)


def test_report_from_the_future_counts_as_fresh():
    assert is_fresh(metrics(reported_at_s=10.0), now=9.0, period_s=1.0)


def test_max_age_periods_is_configurable():
    report = metrics(reported_at_s=0.0)
    assert is_fresh(report, now=2.5, period_s=1.0, max_age_periods=3)
    assert not is_fresh(report, now=3.0, period_s=1.0, max_age_periods=3)


def test_max_age_rejects_non_positive_period():
    with pytest.raises(MetricsError, match=r"period_s=0 and max_age_periods=2 must both be > 0"):
        max_age_s(0)


def test_level1_scores_stay_in_unit_interval_for_random_reports():
    rng = random.Random(11)
    for _ in range(500):
        report = random_metrics(rng, "k1-1", 0.0)
        path = PathMetrics(rng.uniform(0, 200), rng.uniform(0, 100), rng.uniform(0, 1e4))
        scores = level1(report, path)
        for value in (scores.compute, scores.network, scores.cost):
            assert 0.0 <= value <= 1.0
        assert 0.0 <= level2(scores) <= 1.0


def test_level1_compute_falls_with_utilisation_and_backlog():
    idle, busy = level1(metrics(utilisation=0.1)), level1(metrics(utilisation=0.9))
    queued = level1(metrics(utilisation=0.1, queue_len=4))
    assert idle.compute > busy.compute
    assert idle.compute > queued.compute
    assert level1(metrics(utilisation=1.0)).compute == 0.0


def test_level1_network_falls_with_delay_and_loss_and_is_half_at_reference():
    report = metrics()
    assert level1(report, PathMetrics(20.0, 0.0, 1.0)).network == 0.5
    assert level1(report, PathMetrics(5.0, 0.0, 1.0)).network > 0.5
    assert level1(report, PathMetrics(5.0, 10.0, 1.0)).network < level1(
        report, PathMetrics(5.0, 0.0, 1.0)).network
    assert level1(report, PathMetrics(5.0, 100.0, 1.0)).network == 0.0


def test_level1_categories_absent_without_path_or_price():
    scores = level1(metrics())
    assert scores.network is None and scores.cost is None


def test_level1_cost_averages_price_and_carbon():
    scores = level1(metrics(price_cny_per_hour=100.0, carbon_g_per_kwh=0.0))
    assert scores.cost == pytest.approx((0.5 + 1.0) / 2)


def test_level1_rejects_non_positive_reference():
    with pytest.raises(MetricsError, match="level 1: reference_delay_ms=0 must be > 0"):
        level1(metrics(), reference_delay_ms=0)


def test_level2_renormalises_weights_over_present_categories():
    scores = Level1Scores(compute=0.2, network=None, cost=0.8)
    assert level2(scores, {"compute": 1.0, "network": 5.0, "cost": 3.0}) == pytest.approx(
        (0.2 * 1 + 0.8 * 3) / 4)


def test_level2_rejects_weights_that_weigh_nothing_present():
    with pytest.raises(MetricsError, match="give zero weight to every category present"):
        level2(Level1Scores(compute=0.5), {"network": 1.0})


def test_level2_rejects_negative_weight():
    with pytest.raises(MetricsError, match=r"level 2: weights\['cost'\]=-1 must be >= 0"):
        level2(Level1Scores(compute=0.5), {"cost": -1})


def test_level2_of_extreme_scores_is_extreme():
    assert level2(Level1Scores(compute=0.0, network=0.0, cost=0.0)) == 0.0
    assert level2(Level1Scores(compute=1.0, network=1.0, cost=1.0)) == 1.0
    assert not math.isnan(level2(Level1Scores(compute=1.0)))
