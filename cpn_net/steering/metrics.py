"""Compute metrics in the three CATS levels, and their staleness.

The IETF CATS metric definitions (draft-ietf-cats-metric-definition) grade
metrics in three levels:

* **Level 0** — raw metrics with units, as a node measures them
  (:class:`ComputeMetrics`: utilisation, queue length, capacity, service time,
  price, carbon intensity).
* **Level 1** — one normalised score per category (here ``compute``,
  ``network`` and ``cost``) in ``[0, 1]`` (:func:`level1`).
* **Level 2** — one fully normalised score (:func:`level2`), cheap to
  advertise and compare but lossy.

Direction: every normalised score here is a *goodness*, 1 best and 0 worst.
Unbounded raw values are mapped with the saturating ``r / (r + x)`` (1 at
``x = 0``, 1/2 at the reference ``x = r``), so no global maximum is needed.

The selector itself ranks on Level 0 through the response-time estimate of
:mod:`cpn_net.steering.estimate`; Levels 1 and 2 are what an agent would
advertise to a CATS path selector that cannot afford raw metrics.

Staleness: a node that stops reporting must leave selection within two
metric periods, so a report is *fresh* while ``now - reported_at_s`` is
below ``max_age_periods * period_s`` (default 2). A healthy agent's report is
at most one period (plus jitter) old, which leaves one period for jitter.

Examples
--------
>>> m = ComputeMetrics("k3-1", reported_at_s=10.0, utilisation=0.5, queue_len=2,
...                    capacity_rps=400.0, workers=4, service_time_ms=10.0)
>>> scores = level1(m)
>>> scores.compute
0.3333333333333333
>>> level2(scores)
0.3333333333333333
>>> is_fresh(m, now=11.9, period_s=1.0), is_fresh(m, now=12.0, period_s=1.0)
(True, False)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from cpn_net.steering import _checks
from cpn_net.steering.errors import MetricsError
from cpn_net.steering.model import PathMetrics

MAX_AGE_PERIODS = 2
"""Reports older than this many metric periods mark the instance unavailable."""

REFERENCE_DELAY_MS = 20.0
"""Network delay scoring 1/2 at Level 1 (the AR/VR motion-to-photon class)."""

REFERENCE_PRICE_CNY_PER_HOUR = 100.0
"""Price scoring 1/2 (about one 8×H100 server at 70–75k CNY a month)."""

REFERENCE_CARBON_G_PER_KWH = 500.0
"""Grid carbon intensity scoring 1/2 (roughly a coal-heavy grid's average)."""


@dataclass(frozen=True, slots=True)
class ComputeMetrics:
    """One CATS Level 0 report from a compute node's metrics agent.

    Parameters
    ----------
    instance : str
        Compute node name (``k<site>-<n>``).
    reported_at_s : float
        Measurement time, seconds on the controller's clock.
    utilisation : float
        Busy fraction of the node's workers, ``[0, 1]`` (the M/M/c ρ).
    queue_len : int
        Requests waiting (not in service) at report time.
    capacity_rps : float
        Requests per second the node serves when saturated, ``> 0``.
    workers : int
        Parallel servers (processes, GPUs), ``>= 1``.
    service_time_ms : float
        Mean time to serve one request once started, ``>= 0``.
    price_cny_per_hour : float or None
        Rental price of the node, if it is traded.
    carbon_g_per_kwh : float or None
        Carbon intensity of the node's electricity, if known.

    Raises
    ------
    MetricsError
        If a value is out of range; the message names node, key and range.

    Examples
    --------
    >>> ComputeMetrics("k1-1", 0.0, 1.4, 0, 100.0, 1, 5.0)
    Traceback (most recent call last):
    ...
    cpn_net.steering.errors.MetricsError: metrics k1-1: utilisation=1.4 must be in [0, 1]
    """

    instance: str
    reported_at_s: float
    utilisation: float
    queue_len: int
    capacity_rps: float
    workers: int
    service_time_ms: float
    price_cny_per_hour: float | None = None
    carbon_g_per_kwh: float | None = None

    def __post_init__(self) -> None:
        owner = f"metrics {self.instance}"
        _checks.name("metrics", "instance", self.instance)
        _checks.number(owner, "reported_at_s", self.reported_at_s, low=-math.inf)
        _checks.number(owner, "utilisation", self.utilisation, high=1.0)
        _checks.count(owner, "queue_len", self.queue_len)
        _checks.number(owner, "capacity_rps", self.capacity_rps)
        if self.capacity_rps == 0:
            raise MetricsError(f"{owner}: capacity_rps=0 must be > 0 "
                               "(a node that serves nothing should stop reporting)")
        _checks.count(owner, "workers", self.workers, low=1)
        _checks.number(owner, "service_time_ms", self.service_time_ms)
        if self.price_cny_per_hour is not None:
            _checks.number(owner, "price_cny_per_hour", self.price_cny_per_hour)
        if self.carbon_g_per_kwh is not None:
            _checks.number(owner, "carbon_g_per_kwh", self.carbon_g_per_kwh)


def max_age_s(period_s: float, max_age_periods: float = MAX_AGE_PERIODS) -> float:
    """Age at which a report stops counting, in seconds.

    Parameters
    ----------
    period_s : float
        The agents' reporting period, ``> 0``.
    max_age_periods : float
        How many periods a report stays valid.

    Returns
    -------
    float
        ``period_s * max_age_periods``.

    Raises
    ------
    MetricsError
        If either argument is not positive.

    Examples
    --------
    >>> max_age_s(0.5)
    1.0
    """
    if not period_s > 0 or not max_age_periods > 0:
        raise MetricsError(f"staleness: period_s={period_s!r} and max_age_periods="
                           f"{max_age_periods!r} must both be > 0")
    return period_s * max_age_periods


def is_fresh(metrics: ComputeMetrics, now: float, period_s: float,
             max_age_periods: float = MAX_AGE_PERIODS) -> bool:
    """Whether a report still vouches for its node at time ``now``.

    Parameters
    ----------
    metrics : ComputeMetrics
        The node's latest report.
    now : float
        Current time, seconds (same clock as ``reported_at_s``).
    period_s : float
        Reporting period.
    max_age_periods : float
        Periods a report stays valid (2: one missed report is tolerated).

    Returns
    -------
    bool
        ``now - reported_at_s < period_s * max_age_periods``. A report stamped
        in the future (agent clock ahead) counts as fresh.

    Examples
    --------
    >>> m = ComputeMetrics("k1-1", 100.0, 0.2, 0, 50.0, 1, 20.0)
    >>> [is_fresh(m, t, period_s=1.0) for t in (100.0, 101.5, 102.0)]
    [True, True, False]
    """
    return now - metrics.reported_at_s < max_age_s(period_s, max_age_periods)


@dataclass(frozen=True, slots=True)
class Level1Scores:
    """CATS Level 1: one goodness score per category, each in ``[0, 1]``.

    ``network`` is None without path telemetry; ``cost`` is None when the node
    reports neither price nor carbon.
    """

    compute: float
    network: float | None = None
    cost: float | None = None


def _saturating(value: float, reference: float) -> float:
    return reference / (reference + value)


def level1(metrics: ComputeMetrics, path: PathMetrics | None = None, *,
           reference_delay_ms: float = REFERENCE_DELAY_MS,
           reference_price_cny_per_hour: float = REFERENCE_PRICE_CNY_PER_HOUR,
           reference_carbon_g_per_kwh: float = REFERENCE_CARBON_G_PER_KWH) -> Level1Scores:
    """Normalise a Level 0 report (and its path) into CATS Level 1 scores.

    * compute = ``(1 - utilisation) / (1 + queue_len / workers)``: the idle
      share of the workers, discounted by the backlog each worker faces.
    * network = ``(1 - loss_pct / 100) * r / (r + delay_ms)`` with
      ``r = reference_delay_ms``: delivery probability times a delay score.
    * cost = mean of ``r / (r + x)`` over the price and carbon values present.

    Parameters
    ----------
    metrics : ComputeMetrics
        Level 0 report.
    path : PathMetrics or None
        Path from the client's site, if known.
    reference_delay_ms, reference_price_cny_per_hour, reference_carbon_g_per_kwh : float
        Values that score 1/2 in their category (``> 0``).

    Returns
    -------
    Level1Scores
        Scores in ``[0, 1]``, 1 best.

    Raises
    ------
    MetricsError
        If a reference is not positive.

    Examples
    --------
    >>> m = ComputeMetrics("k1-1", 0.0, 0.0, 0, 100.0, 1, 5.0, price_cny_per_hour=100.0)
    >>> level1(m, PathMetrics(20.0, 50.0, 1.0))
    Level1Scores(compute=1.0, network=0.25, cost=0.5)
    """
    for key, reference in (("reference_delay_ms", reference_delay_ms),
                           ("reference_price_cny_per_hour", reference_price_cny_per_hour),
                           ("reference_carbon_g_per_kwh", reference_carbon_g_per_kwh)):
        if not reference > 0:
            raise MetricsError(f"level 1: {key}={reference!r} must be > 0")
    compute = (1.0 - metrics.utilisation) / (1.0 + metrics.queue_len / metrics.workers)
    network = None
    if path is not None:
        network = (1.0 - path.loss_pct / 100.0) * _saturating(path.delay_ms, reference_delay_ms)
    parts = []
    if metrics.price_cny_per_hour is not None:
        parts.append(_saturating(metrics.price_cny_per_hour, reference_price_cny_per_hour))
    if metrics.carbon_g_per_kwh is not None:
        parts.append(_saturating(metrics.carbon_g_per_kwh, reference_carbon_g_per_kwh))
    cost = sum(parts) / len(parts) if parts else None
    return Level1Scores(compute=compute, network=network, cost=cost)


DEFAULT_LEVEL2_WEIGHTS: Mapping[str, float] = {"compute": 1.0, "network": 1.0, "cost": 1.0}


def level2(scores: Level1Scores, weights: Mapping[str, float] | None = None) -> float:
    """Fold Level 1 scores into the single CATS Level 2 score.

    A weighted mean over the categories present (None categories drop out
    and the remaining weights are renormalised), so the result stays in
    ``[0, 1]`` and a node is not punished for not being traded.

    Parameters
    ----------
    scores : Level1Scores
        Category scores.
    weights : mapping of str to float, optional
        Non-negative weight per category (``compute``, ``network``, ``cost``);
        equal weights by default.

    Returns
    -------
    float
        The Level 2 score, 1 best.

    Raises
    ------
    MetricsError
        On an unknown category, a negative weight, or when the categories
        present all weigh zero.

    Examples
    --------
    >>> level2(Level1Scores(compute=1.0, network=0.5), {"compute": 3, "network": 1})
    0.875
    >>> level2(Level1Scores(compute=1.0), {"gpu": 1.0})
    Traceback (most recent call last):
    ...
    cpn_net.steering.errors.MetricsError: level 2: weight key 'gpu' must be one of ['compute', 'cost', 'network']
    """
    weights = DEFAULT_LEVEL2_WEIGHTS if weights is None else weights
    for key, weight in weights.items():
        if key not in DEFAULT_LEVEL2_WEIGHTS:
            raise MetricsError(f"level 2: weight key {key!r} must be one of "
                               f"{sorted(DEFAULT_LEVEL2_WEIGHTS)}")
        _checks.number("level 2", f"weights[{key!r}]", weight)
    total = weighted = 0.0
    for key in DEFAULT_LEVEL2_WEIGHTS:
        value = getattr(scores, key)
        if value is not None:
            total += weights.get(key, 0.0)
            weighted += weights.get(key, 0.0) * value
    if total == 0:
        raise MetricsError(f"level 2: weights {dict(weights)!r} give zero weight to every "
                           "category present; weight at least one of them")
    return weighted / total
