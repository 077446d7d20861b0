"""Tests of the open-loop Poisson send schedules."""

import math

import pytest

from cpn_net.compute import ComputeConfigError
from cpn_net.compute.workload import (RateStep, check_schedule, expected_count, parse_schedule,
                                      send_offsets_s)


def within_poisson_bounds(count: int, mean: float, sigmas: float = 4.0) -> bool:
    return abs(count - mean) <= sigmas * math.sqrt(mean)


def test_parse_reads_steps():
    assert parse_schedule(" 0:50, 30:120 ,60:50") == (RateStep(0.0, 50.0), RateStep(30.0, 120.0),
                                                      RateStep(60.0, 50.0))


@pytest.mark.parametrize("text, message", [
    ("", "schedule: '' must be start_s:rate_rps, e.g. 30:120"),
    ("0:50,30", "schedule: '30' must be start_s:rate_rps, e.g. 30:120"),
    ("0:50:1", "schedule: '0:50:1' must be start_s:rate_rps, e.g. 30:120"),
    ("0:fast", "schedule: '0:fast' must be start_s:rate_rps, e.g. 30:120"),
    ("5:50", "schedule: the first step starts at 5 s; it must start at 0 (use rate 0 for an idle start, "
             "e.g. 0:0,10:50)"),
    ("0:50,30:60,20:10", "schedule: step 3 starts at 20 s, not after step 2 (30 s); starts must increase"),
    ("0:-1", "schedule: step 1 rate_rps=-1 must be in 0..1000000"),
    ("0:inf", "schedule: step 1 rate_rps=inf must be a finite number"),
])
def test_bad_schedules_are_named(text, message):
    with pytest.raises(ComputeConfigError) as info:
        parse_schedule(text)
    assert str(info.value) == message


def test_empty_schedule_is_refused():
    with pytest.raises(ComputeConfigError) as info:
        check_schedule([])
    assert str(info.value) == "schedule: no steps; give at least one, e.g. 0:100"


def test_counts_per_step_are_within_poisson_bounds():
    schedule = parse_schedule("0:100,10:300,20:0,25:50")
    for seed in range(5):
        times = send_offsets_s(schedule, 30.0, seed)
        assert times == sorted(times) and all(0 <= t < 30.0 for t in times)
        for start, end, rate in ((0, 10, 100), (10, 20, 300), (25, 30, 50)):
            count = sum(start <= t < end for t in times)
            assert within_poisson_bounds(count, rate * (end - start)), (seed, start, count)
        assert not any(20 <= t < 25 for t in times)


def test_gaps_are_exponential_with_the_steps_mean():
    times = send_offsets_s([RateStep(0, 200)], 50.0, seed=3)
    gaps = [b - a for a, b in zip(times, times[1:])]
    mean = sum(gaps) / len(gaps)
    assert abs(mean - 1 / 200) < 0.05 / 200
    # Exponential: the share of gaps longer than the mean is e^-1.
    assert abs(sum(g > 1 / 200 for g in gaps) / len(gaps) - math.exp(-1)) < 0.02


def test_same_seed_same_schedule_other_seed_other_schedule():
    schedule = parse_schedule("0:50,1:150")
    assert send_offsets_s(schedule, 2.0, 5) == send_offsets_s(schedule, 2.0, 5)
    assert send_offsets_s(schedule, 2.0, 5) != send_offsets_s(schedule, 2.0, 6)


def test_steps_after_the_duration_are_ignored():
    times = send_offsets_s(parse_schedule("0:100,5:1000"), 3.0, 1)
    assert all(t < 3.0 for t in times) and within_poisson_bounds(len(times), 300)
    assert expected_count(parse_schedule("0:100,5:1000"), 3.0) == 300.0


def test_duration_must_be_positive():
    with pytest.raises(ComputeConfigError) as info:
        send_offsets_s([RateStep(0, 1)], 0, 1)
    assert str(info.value) == "workload: duration_s=0 must be a finite number > 0, e.g. 60"
