"""Tests of the queueing station on a fake clock: capacity, FIFO order, rejection, background load."""

import random

import pytest

from cpn_net.compute import ComputeConfigError
from cpn_net.compute.station import ServiceStation, StationConfig

MS = 1_000_000
S = 1_000_000_000


def poisson_times_ns(rate_rps: float, duration_s: float, seed: int) -> list[int]:
    rng, t, times = random.Random(seed), 0.0, []
    while True:
        t += rng.expovariate(rate_rps)
        if t >= duration_s:
            return times
        times.append(round(t * S))


def run(station: ServiceStation, arrivals_ns, until_ns: int):
    """Offer one request per arrival; return (outcomes, finished jobs by context)."""
    outcomes, finished = [], {}
    for index, t in enumerate(arrivals_ns):
        finished.update((job.context, job) for job in station.advance(t))
        outcomes.append(station.offer(t, context=index))
    finished.update((job.context, job) for job in station.advance(until_ns))
    return outcomes, finished


@pytest.mark.parametrize("change, message", [
    (dict(workers=0), "station: workers=0 must be an integer in 1..4096"),
    (dict(workers=2.0), "station: workers=2.0 must be an integer in 1..4096"),
    (dict(service_time_ms=float("nan")), "station: service_time_ms=nan must be a finite number > 0, e.g. 10"),
    (dict(queue_limit=-1), f"station: queue_limit=-1 must be an integer in 0..{2**31 - 1}"),
    (dict(background_load_pct=100.5), "station: background_load_pct=100.5 must be a number in 0..100"),
])
def test_config_errors_name_the_key(change, message):
    with pytest.raises(ComputeConfigError) as info:
        StationConfig(**(dict(workers=2, service_time_ms=10.0) | change))
    assert str(info.value) == message


def test_a_burst_fills_the_workers_then_the_queue_then_is_rejected():
    station = ServiceStation(StationConfig(workers=2, service_time_ms=20.0, queue_limit=5), seed=3)
    outcomes, finished = run(station, [0] * 30, until_ns=100 * S)
    assert outcomes == ["started"] * 2 + ["queued"] * 5 + ["rejected"] * 23
    assert sorted(finished) == list(range(7))
    assert (station.counters.arrived, station.counters.served, station.counters.rejected) == (30, 7, 23)
    assert [finished[i].queue_wait_ns for i in (0, 1)] == [0, 0]
    assert all(finished[i].queue_wait_ns > 0 for i in range(2, 7))


def test_queued_jobs_start_in_arrival_order_when_a_worker_frees():
    station = ServiceStation(StationConfig(workers=1, service_time_ms=10.0, queue_limit=10), seed=1)
    _, finished = run(station, [0, 1 * MS, 2 * MS, 3 * MS], until_ns=10 * S)
    jobs = [finished[i] for i in range(4)]
    for before, after in zip(jobs, jobs[1:]):
        assert after.start_ns == max(before.end_ns, after.arrival_ns)  # FIFO, work-conserving
    assert station.busy_area_ns(10 * S) == sum(job.service_ns for job in jobs)


def test_never_more_than_workers_in_service_nor_queue_limit_waiting():
    station = ServiceStation(StationConfig(workers=3, service_time_ms=10.0, queue_limit=4), seed=5)
    for t in poisson_times_ns(600, 2.0, seed=5):
        station.advance(t)
        station.offer(t)
        assert station.in_service <= 3 and station.queue_len <= 4
    counters = station.counters
    assert counters.rejected > 0 and counters.arrived == counters.served + counters.rejected \
        + station.in_service + station.queue_len


def test_queue_limit_zero_rejects_whenever_every_worker_is_busy():
    station = ServiceStation(StationConfig(workers=1, service_time_ms=10.0, queue_limit=0), seed=1)
    assert [station.offer(0), station.offer(0)] == ["started", "rejected"]


def test_mm1_mean_response_time_matches_queueing_theory():
    # M/M/1 at rho = 0.5: mean response 1 / (mu - lambda) = 20 ms.
    station = ServiceStation(StationConfig(workers=1, service_time_ms=10.0, queue_limit=10_000), seed=11)
    _, finished = run(station, poisson_times_ns(50, 200.0, seed=12), until_ns=300 * S)
    mean_ms = sum(job.end_ns - job.arrival_ns for job in finished.values()) / len(finished) / MS
    assert 18.0 < mean_ms < 22.0


@pytest.mark.parametrize("pct", [25.0, 60.0])
def test_background_load_takes_its_share_of_the_capacity(pct):
    station = ServiceStation(StationConfig(workers=4, service_time_ms=10.0, queue_limit=64,
                                           background_load_pct=pct), seed=2)
    station.advance(50 * S)
    utilisation = station.busy_area_ns(50 * S) / (4 * 50 * S)
    assert abs(utilisation - pct / 100) < 0.03
    assert station.counters.background_jobs > 0 and station.counters.served == 0
    assert abs(station.counters.background_arrived - pct / 100 * 400 * 50) < 4 * (pct * 200) ** 0.5


def test_background_load_delays_every_request_compared_with_none():
    # Requests draw their service times from their own stream, so runs differ only by the
    # background jobs, and on one FIFO worker extra jobs can only delay the others.
    arrivals = poisson_times_ns(20, 5.0, seed=4)
    results = {}
    for pct in (0.0, 60.0):
        station = ServiceStation(StationConfig(workers=1, service_time_ms=10.0, queue_limit=1000,
                                               background_load_pct=pct), seed=9)
        _, finished = run(station, arrivals, until_ns=100 * S)
        results[pct] = [finished[i] for i in range(len(arrivals))]
    for calm, busy in zip(results[0.0], results[60.0]):
        assert calm.service_ns == busy.service_ns
        assert busy.end_ns >= calm.end_ns
    mean = {pct: sum(j.end_ns - j.arrival_ns for j in jobs) / len(jobs) for pct, jobs in results.items()}
    assert mean[60.0] > 1.5 * mean[0.0]


def test_setting_the_background_load_changes_it_from_then_on():
    station = ServiceStation(StationConfig(workers=2, service_time_ms=10.0), seed=1)
    assert station.next_event_ns() is None
    station.set_background_load(5 * S, 50.0)
    assert station.config.background_load_pct == 50.0 and station.next_event_ns() > 5 * S
    station.advance(15 * S)
    assert abs(station.busy_area_ns(15 * S) / (2 * 10 * S) - 0.5) < 0.05
    with pytest.raises(ComputeConfigError) as info:
        station.set_background_load(15 * S, -1)
    assert str(info.value) == "station: background_load_pct=-1 must be a number in 0..100"


def test_the_same_seed_gives_the_same_run():
    def one_run():
        station = ServiceStation(StationConfig(workers=2, service_time_ms=10.0, queue_limit=3,
                                               background_load_pct=40.0), seed=7)
        outcomes, finished = run(station, poisson_times_ns(150, 2.0, seed=8), until_ns=10 * S)
        return outcomes, {k: (j.start_ns, j.end_ns) for k, j in finished.items()}, station.counters.as_dict()
    assert one_run() == one_run()


def test_time_must_not_run_backwards():
    station = ServiceStation(StationConfig(workers=1, service_time_ms=10.0), seed=1, now_ns=100)
    with pytest.raises(ComputeConfigError) as info:
        station.offer(99)
    assert str(info.value) == ("station: now_ns=99 is before the station clock 100; "
                               "pass a monotonic clock")


def test_reset_zeroes_counters_but_keeps_the_work():
    station = ServiceStation(StationConfig(workers=1, service_time_ms=10.0, queue_limit=1), seed=1)
    station.offer(0), station.offer(0), station.offer(0)
    station.reset_counters()
    assert station.counters.as_dict() == dict.fromkeys(station.counters.as_dict(), 0)
    assert (station.in_service, station.queue_len) == (1, 1)
    assert len(station.advance(10 * S)) == 2 and station.counters.served == 2
