"""Tests for cpn_net.steering.estimate: the response-time model."""

import math
import random

import pytest

from cpn_net.steering.errors import MetricsError
from cpn_net.steering.estimate import (ResponseModel, compute_delay_ms, erlang_c,
                                       expected_response_ms, loss_penalty_ms, network_delay_ms,
                                       queueing_delay_ms)
from cpn_net.steering.metrics import ComputeMetrics
from cpn_net.steering.model import PathMetrics
from cpn_net.steering.synthetic import random_metrics


def node(utilisation, workers=1, service_time_ms=10.0, queue_len=0):
    return ComputeMetrics("k1-1", 0.0, utilisation, queue_len, 100.0, workers, service_time_ms)


def erlang_c_by_definition(workers, offered):
    """C(c, a) from the textbook sum, for comparison."""
    head = sum(offered ** k / math.factorial(k) for k in range(workers))
    tail = offered ** workers / math.factorial(workers) * workers / (workers - offered)
    return tail / (head + tail)


@pytest.mark.parametrize("rho", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_erlang_c_of_one_server_is_its_utilisation(rho):
    assert erlang_c(1, rho) == pytest.approx(rho)


def test_erlang_c_matches_the_textbook_sum():
    rng = random.Random(5)
    for _ in range(200):
        workers = rng.randint(1, 40)
        offered = rng.uniform(0.0, 0.999) * workers
        assert erlang_c(workers, offered) == pytest.approx(
            erlang_c_by_definition(workers, offered), rel=1e-9, abs=1e-12)


def test_erlang_c_stays_finite_for_many_servers():
    assert 0.0 <= erlang_c(1000, 990.0) < 1.0


def test_erlang_c_refuses_overload():
    with pytest.raises(MetricsError,
                       match=r"^erlang C: offered_erlangs=2.0 must be < workers=2 \(the queue"):
        erlang_c(2, 2.0)


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.8])
def test_single_server_wait_is_the_mm1_formula(rho):
    assert queueing_delay_ms(node(rho)) == pytest.approx(rho * 10.0 / (1.0 - rho))


def test_two_server_wait_is_the_mm2_formula():
    rho = 0.6  # M/M/2: W_q = rho^2 s / (1 - rho^2)
    assert queueing_delay_ms(node(rho, workers=2)) == pytest.approx(rho ** 2 * 10.0 / (1 - rho ** 2))


def test_saturated_node_wait_is_capped_not_infinite():
    capped = queueing_delay_ms(node(1.0))
    assert math.isfinite(capped)
    assert capped == pytest.approx(queueing_delay_ms(node(0.99)))
    assert queueing_delay_ms(node(1.0), ResponseModel(utilisation_cap=0.9)) < capped


def test_observed_backlog_dominates_a_light_model():
    assert queueing_delay_ms(node(0.1, workers=4, queue_len=40)) == pytest.approx(40 * 10.0 / 4)


def test_wait_grows_with_utilisation():
    waits = [queueing_delay_ms(node(rho / 20, workers=4)) for rho in range(20)]
    assert waits == sorted(waits) and waits[-1] > waits[0]


def test_compute_delay_is_wait_plus_service():
    rng = random.Random(2)
    for _ in range(100):
        report = random_metrics(rng, "k1-1", 0.0)
        assert compute_delay_ms(report) == queueing_delay_ms(report) + report.service_time_ms


def test_loss_penalty_values():
    assert loss_penalty_ms(0.0) == 0.0
    assert loss_penalty_ms(50.0) == pytest.approx(2 * 1.0 * 200.0)
    assert loss_penalty_ms(50.0, ResponseModel(retransmit_timeout_ms=1000.0)) == 2000.0
    assert loss_penalty_ms(100.0) == math.inf


def test_network_delay_is_round_trip_plus_loss_penalty():
    path = PathMetrics(7.0, 1.0, 10.0)
    assert network_delay_ms(path) == 14.0 + loss_penalty_ms(1.0)


def test_expected_response_is_the_documented_sum():
    rng = random.Random(3)
    for _ in range(100):
        report = random_metrics(rng, "k1-1", 0.0)
        path = PathMetrics(rng.uniform(0, 50), rng.uniform(0, 2), 100.0)
        client_ms = rng.uniform(0, 10)
        assert expected_response_ms(path, report, client_side_ms=client_ms) == pytest.approx(
            client_ms + 2 * path.delay_ms + loss_penalty_ms(path.loss_pct)
            + queueing_delay_ms(report) + report.service_time_ms)


def test_response_model_rejects_negative_timeout():
    with pytest.raises(MetricsError,
                       match=r"^response model: retransmit_timeout_ms=-1.0 must be >= 0$"):
        ResponseModel(retransmit_timeout_ms=-1.0)
