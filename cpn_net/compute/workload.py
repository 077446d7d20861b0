"""Seeded open-loop request schedules: Poisson arrivals at piecewise-constant rates.

A schedule is a list of :class:`RateStep` — from ``start_s`` on, requests
arrive at ``rate_rps`` — written on the command line as
``"0:50,30:120,60:50"``. Send times form a non-homogeneous Poisson process
with that step rate function: within each step, exponential gaps of mean
``1 / rate_rps``, started afresh at the step's start (the exponential is
memoryless, so restarting at a boundary leaves the process Poisson). All
send times are computed before the first request leaves, so what is sent
never depends on what comes back (open loop).

Examples
--------
>>> schedule = parse_schedule("0:50,0.5:0")
>>> schedule
(RateStep(start_s=0.0, rate_rps=50.0), RateStep(start_s=0.5, rate_rps=0.0))
>>> times = send_offsets_s(schedule, duration_s=1.0, seed=7)
>>> all(0 <= t < 0.5 for t in times), times == send_offsets_s(schedule, 1.0, seed=7)
(True, True)
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from cpn_net.compute.errors import ComputeConfigError

MAX_RATE_RPS = 1_000_000


@dataclass(frozen=True, slots=True)
class RateStep:
    """From ``start_s`` (seconds after the run starts) on, arrivals at ``rate_rps``."""

    start_s: float
    rate_rps: float


def parse_schedule(text: str) -> tuple[RateStep, ...]:
    """Parse ``"start_s:rate_rps,..."`` into a checked schedule.

    Parameters
    ----------
    text : str
        Comma-separated ``start_s:rate_rps`` pairs; the first start must be
        0 and starts must increase.

    Returns
    -------
    tuple of RateStep

    Raises
    ------
    ComputeConfigError
        If a pair is malformed or the schedule is not valid.

    Examples
    --------
    >>> parse_schedule("0:10,5:20")[1]
    RateStep(start_s=5.0, rate_rps=20.0)
    >>> parse_schedule("0:10,5")
    Traceback (most recent call last):
    ...
    cpn_net.compute.errors.ComputeConfigError: schedule: '5' must be start_s:rate_rps, e.g. 30:120
    """
    steps = []
    for part in str(text).split(","):
        fields = part.strip().split(":")
        try:
            if len(fields) != 2:
                raise ValueError(part)
            steps.append(RateStep(float(fields[0]), float(fields[1])))
        except ValueError as err:
            raise ComputeConfigError(f"schedule: {part.strip()!r} must be start_s:rate_rps, e.g. 30:120") from err
    return check_schedule(steps)


def check_schedule(steps: Sequence[RateStep]) -> tuple[RateStep, ...]:
    """Return ``steps`` as a tuple if they form a valid schedule, else raise.

    Raises
    ------
    ComputeConfigError
        If the schedule is empty, does not start at 0, its starts do not
        increase, or a rate is negative, not finite or above 1e6.

    Examples
    --------
    >>> check_schedule([RateStep(0, 10), RateStep(0, 20)])
    Traceback (most recent call last):
    ...
    cpn_net.compute.errors.ComputeConfigError: schedule: step 2 starts at 0 s, not after step 1 (0 s); ...
    """
    if not steps:
        raise ComputeConfigError("schedule: no steps; give at least one, e.g. 0:100")
    for index, step in enumerate(steps, 1):
        for key in ("start_s", "rate_rps"):
            value = getattr(step, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ComputeConfigError(f"schedule: step {index} {key}={value!r} must be a finite number")
        if not 0 <= step.rate_rps <= MAX_RATE_RPS:
            raise ComputeConfigError(f"schedule: step {index} rate_rps={step.rate_rps:g} must be in "
                                     f"0..{MAX_RATE_RPS}")
    if steps[0].start_s != 0:
        raise ComputeConfigError(f"schedule: the first step starts at {steps[0].start_s:g} s; it must "
                                 "start at 0 (use rate 0 for an idle start, e.g. 0:0,10:50)")
    for index in range(1, len(steps)):
        if steps[index].start_s <= steps[index - 1].start_s:
            raise ComputeConfigError(f"schedule: step {index + 1} starts at {steps[index].start_s:g} s, not "
                                     f"after step {index} ({steps[index - 1].start_s:g} s); starts must increase")
    return tuple(steps)


def send_offsets_s(schedule: Sequence[RateStep], duration_s: float, seed: int) -> list[float]:
    """Poisson send times, seconds from the start, sorted, all in ``[0, duration_s)``.

    Parameters
    ----------
    schedule : sequence of RateStep
        Checked with :func:`check_schedule`; steps at or after
        ``duration_s`` are ignored.
    duration_s : float
        Length of the run, > 0.
    seed : int
        Seeds the generator: the same arguments give the same times.

    Returns
    -------
    list of float

    Raises
    ------
    ComputeConfigError
        On an invalid schedule or duration.

    Examples
    --------
    >>> len(send_offsets_s([RateStep(0, 0)], 10, seed=1))
    0
    >>> times = send_offsets_s([RateStep(0, 1000)], 10, seed=1)
    >>> 9500 < len(times) < 10500, times == sorted(times)
    (True, True)
    """
    schedule = check_schedule(schedule)
    if isinstance(duration_s, bool) or not isinstance(duration_s, (int, float)) \
            or not math.isfinite(duration_s) or duration_s <= 0:
        raise ComputeConfigError(f"workload: duration_s={duration_s!r} must be a finite number > 0, e.g. 60")
    rng = random.Random(seed)
    times: list[float] = []
    for index, step in enumerate(schedule):
        end = schedule[index + 1].start_s if index + 1 < len(schedule) else duration_s
        end = min(end, duration_s)
        if step.rate_rps == 0 or step.start_s >= end:
            continue
        t = step.start_s
        while True:
            t += rng.expovariate(step.rate_rps)
            if t >= end:
                break
            times.append(t)
    return times


def expected_count(schedule: Sequence[RateStep], duration_s: float, start_s: float = 0.0,
                   end_s: float | None = None) -> float:
    """Mean number of send times in ``[start_s, end_s)`` (default the whole run).

    Examples
    --------
    >>> expected_count(parse_schedule("0:50,30:120,60:50"), 90)
    6600.0
    >>> expected_count(parse_schedule("0:50,30:120"), 90, start_s=20, end_s=40)
    1700.0
    """
    schedule = check_schedule(schedule)
    end_s = duration_s if end_s is None else min(end_s, duration_s)
    total = 0.0
    for index, step in enumerate(schedule):
        step_end = schedule[index + 1].start_s if index + 1 < len(schedule) else duration_s
        overlap = min(step_end, end_s) - max(step.start_s, start_s)
        if overlap > 0:
            total += overlap * step.rate_rps
    return total
