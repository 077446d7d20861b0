"""Sizing: a batch job's rate is the least that gets its data in and results out by the deadline."""

import random

import pytest

from cpn_net.market.sizing import (PAYLOAD_SHARE, BatchTimes, TooLate, batch_times, erlang_c, stream_p99_ms,
                                   stream_rate_kbps, stream_slots)


def random_jobs(n, seed=5):
    rng = random.Random(seed)
    for _ in range(n):
        workers = rng.choice((1, 2, 4, 8))
        yield dict(work_worker_s=rng.uniform(60, 20000), workers=workers, input_mb=rng.uniform(1, 20000),
                   result_mb=rng.choice((0.0, rng.uniform(1, 500))), start_s=rng.uniform(0, 1000),
                   deadline_s=0.0, delay_ms=rng.uniform(0.5, 40), capacity_mbps=rng.choice((None, 100.0, 1000.0)),
                   slack_pct=rng.choice((0.0, 5.0, 20.0)))


def test_batch_rate_gets_the_data_in_time_and_is_the_least_that_does():
    checked = 0
    rng = random.Random(11)
    for job in random_jobs(400):
        job["deadline_s"] = job["start_s"] + job["work_worker_s"] / job["workers"] * rng.uniform(1.05, 4) \
            + 8 * (job["input_mb"] + job["result_mb"]) / rng.uniform(5, 500)
        times = batch_times(**job)
        if isinstance(times, TooLate):
            assert times.fastest_finish_s > job["deadline_s"]
            continue
        checked += 1
        work_s = job["work_worker_s"] / job["workers"]
        delay_s = job["delay_ms"] / 1000
        payload = times.rate_mbps * PAYLOAD_SHARE
        # the input is in before the work starts, the work ends before the result leaves
        assert times.input[0] == job["start_s"]
        assert times.input[1] == pytest.approx(job["start_s"] + 8 * job["input_mb"] / payload + delay_s)
        assert times.compute == pytest.approx((times.input[1], times.input[1] + work_s))
        if job["result_mb"]:
            assert times.result[0] == times.compute[1]
            assert times.finish_s == pytest.approx(times.compute[1] + 8 * job["result_mb"] / payload + delay_s)
        else:
            assert times.result is None and times.finish_s == times.compute[1]
        assert times.finish_s <= job["deadline_s"] + 1e-6
        if job["capacity_mbps"] is not None:
            assert times.rate_mbps <= job["capacity_mbps"]
        # one kbit/s less would miss the target (deadline less slack, or the fastest the path allows)
        slower = (times.rate_kbps - 1) / 1000 * PAYLOAD_SHARE
        legs = delay_s * (1 + (job["result_mb"] > 0))
        late = job["start_s"] + 8 * (job["input_mb"] + job["result_mb"]) / slower + legs + work_s
        target = job["deadline_s"] - job["slack_pct"] / 100 * (job["deadline_s"] - job["start_s"])
        assert late > min(target, times.finish_s) - 1e-6
    assert checked > 200


def test_slack_finishes_early_unless_the_path_cannot():
    kw = dict(work_worker_s=600.0, workers=1, input_mb=1000.0, result_mb=0.0, start_s=0.0, deadline_s=2000.0,
              delay_ms=10.0, capacity_mbps=100.0)
    assert batch_times(**kw, slack_pct=10.0).finish_s <= 1800.0 + 1e-6
    tight = batch_times(**{**kw, "deadline_s": 700.0}, slack_pct=10.0)
    assert isinstance(tight, BatchTimes) and tight.rate_kbps == 100_000 and tight.finish_s <= 700.0


def test_too_late_says_whether_the_network_is_why():
    kw = dict(work_worker_s=600.0, workers=1, input_mb=1000.0, result_mb=0.0, start_s=0.0, delay_ms=10.0,
              capacity_mbps=10.0, slack_pct=0.0)
    assert batch_times(**kw, deadline_s=700.0) == TooLate(pytest.approx(600 + 8000 / (10 * PAYLOAD_SHARE) + 0.01),
                                                          by_network=True)
    assert batch_times(**kw, deadline_s=500.0).by_network is False


def test_a_local_job_moves_nothing():
    times = batch_times(600.0, 2, 1000.0, 50.0, 10.0, 400.0, delay_ms=5.0, capacity_mbps=1.0, slack_pct=5.0,
                        local=True)
    assert (times.rate_kbps, times.input, times.result, times.compute) == (0, None, None, (10.0, 310.0))


def test_erlang_c_known_values():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = utilisation
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="unstable"):
        erlang_c(2, 2.0)


def test_stream_slots_are_the_fewest_that_meet_the_bound():
    for rate in (10.0, 100.0, 500.0, 2000.0):
        for budget in (12.0, 20.0, 60.0):
            slots = stream_slots(rate, 10.0, budget, 500)
            assert slots is not None
            assert stream_p99_ms(slots, rate, 10.0) <= budget
            assert slots == 1 or stream_p99_ms(slots - 1, rate, 10.0) > budget
    assert stream_slots(100.0, 10.0, 9.0, 100) is None
    assert stream_slots(1000.0, 10.0, 50.0, 5) is None


def test_stream_rate_carries_the_busier_direction_with_headers():
    assert stream_rate_kbps(100.0, 1.0, 4.0) == stream_rate_kbps(100.0, 4.0, 1.0) == 3393
