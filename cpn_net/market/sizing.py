"""Sizing: how many worker slots, what guaranteed rate and which time windows an order needs at a site.

Everything here depends only on the order, the site and the path to it (its
one-way delay and the capacity of its narrowest link), never on what is
booked, so the online policies and the offline optimum size an order alike.

Batch (:func:`batch_times`). The job runs on ``workers`` slots for
``work_worker_s / workers`` seconds. Its input crosses the path on a slice
before the work starts and its result crosses back after, both at one rate
``r``. Reserved windows, with ``d`` the path's one-way delay::

    input   [start, start + 8 input_mb / (r s) + d)        (s: payload share, below)
    compute [input end, input end + work / workers)
    result  [compute end, compute end + 8 result_mb / (r s) + d)

The rate is the **least that meets the deadline**: ``r`` solves "result
delivered at the target", where the target is the deadline less a slack of
``batch_slack_pct`` of ``deadline - start`` (the slack shrinks to what the
path allows when it cannot go faster). Rates are whole kbit/s, rounded up.
If even the path's narrowest link, all of it, cannot deliver by the deadline
the site is too late (:class:`TooLate`, with the fastest finish). At the
source site itself nothing crosses the network.

Payload share: slices are guaranteed on the wire, the data is TCP payload.
A 1,514-byte Ethernet frame carries 1,428 bytes of it (IPv6, TCP with
timestamps), so ``r`` is the payload rate divided by :data:`PAYLOAD_SHARE`.

Stream (:func:`stream_slots`). Requests arrive at ``rate_rps`` and each takes
the site's ``service_time_ms`` on a slot. The slots are the fewest ``n`` for
which the M/M/n (Erlang C) 99th-percentile wait plus the service time fits
in the latency budget ``p99_ms - 2 d`` (the round trip over the path).
Service here is deterministic, whose waits M/M/n overstates, so the bound
holds with room. The slice rate carries the larger of the two directions:
``rate_rps * max(request_kb, response_kb) * 8 / s`` kbit/s.

Examples
--------
>>> t = batch_times(3600.0, 4, 1000.0, 0.0, 0.0, 7200.0, delay_ms=10.0, capacity_mbps=100.0, slack_pct=0.0)
>>> t.rate_kbps, round(t.compute[0], 3), round(t.finish_s, 3)
(1347, 6296.812, 7196.812)
>>> stream_slots(400.0, 10.0, 50.0, 32)
6
>>> stream_rate_kbps(400.0, 2.0, 10.0)
33928
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Share of a full Ethernet frame that is TCP payload over IPv6 (1428 of 1514 bytes).
PAYLOAD_SHARE = 1428 / 1514
#: Windows within this many seconds of the deadline still meet it (float noise).
EPSILON_S = 1e-6
#: The tail the stream model bounds.
P99 = 0.99


@dataclass(frozen=True)
class BatchTimes:
    """A batch job's windows and guaranteed rate at one site.

    ``input`` and ``result`` are None when nothing crosses the network that
    way (no data, or the job runs at its source).
    """

    rate_kbps: int
    input: tuple[float, float] | None
    compute: tuple[float, float]
    result: tuple[float, float] | None
    finish_s: float

    @property
    def rate_mbps(self) -> float:
        return self.rate_kbps / 1000.0


@dataclass(frozen=True)
class TooLate:
    """No booking at this site can meet the deadline: even an idle path finishes at ``fastest_finish_s``.

    ``by_network``: a path with more capacity would meet it (the transfer, not the work, is too slow).
    """

    fastest_finish_s: float
    by_network: bool = False


def ceil_kbps(mbps: float) -> int:
    """A rate in Mbit/s rounded up to whole kbit/s.

    Examples
    --------
    >>> ceil_kbps(1.0001), ceil_kbps(2.0), ceil_kbps(0.0)
    (1001, 2000, 0)
    """
    return max(0, math.ceil(mbps * 1000.0 - 1e-6))


def batch_times(work_worker_s: float, workers: int, input_mb: float, result_mb: float, start_s: float,
                deadline_s: float, *, delay_ms: float, capacity_mbps: float | None, slack_pct: float,
                local: bool = False) -> BatchTimes | TooLate:
    """The windows and least rate for a batch job at one site; see the module docstring.

    Parameters
    ----------
    work_worker_s, workers, input_mb, result_mb, start_s, deadline_s
        From the order (``start_s``: when it may start).
    delay_ms : float
        One-way delay of the path from the source.
    capacity_mbps : float or None
        Capacity of the path's narrowest link; None when no link is shaped.
    slack_pct : float
        Share of ``deadline_s - start_s`` to finish early, when the path allows.
    local : bool
        The site is the source: no transfer.

    Returns
    -------
    BatchTimes or TooLate

    Examples
    --------
    >>> batch_times(60.0, 1, 10.0, 0.0, 0.0, 30.0, delay_ms=1.0, capacity_mbps=None, slack_pct=0.0, local=True)
    TooLate(fastest_finish_s=60.0, by_network=False)
    """
    work_s = work_worker_s / workers
    mbit_in, mbit_out = 8.0 * input_mb, 8.0 * result_mb
    if local or mbit_in + mbit_out == 0.0:
        finish = start_s + work_s
        if finish > deadline_s + EPSILON_S:
            return TooLate(finish)
        return BatchTimes(0, None, (start_s, finish), None, finish)
    delay_s = delay_ms / 1000.0
    legs_s = delay_s * ((mbit_in > 0) + (mbit_out > 0))
    payload_cap = math.inf if capacity_mbps is None else capacity_mbps * PAYLOAD_SHARE
    fastest = start_s + (mbit_in + mbit_out) / payload_cap + legs_s + work_s
    if fastest > deadline_s + EPSILON_S:
        return TooLate(fastest, by_network=start_s + legs_s + work_s < deadline_s)
    target = max(deadline_s - slack_pct / 100.0 * (deadline_s - start_s), fastest)
    transfer_s = target - start_s - work_s - legs_s
    if transfer_s <= EPSILON_S:
        transfer_s = deadline_s - start_s - work_s - legs_s
        if transfer_s <= EPSILON_S:
            return TooLate(fastest)
    rate_kbps = ceil_kbps((mbit_in + mbit_out) / transfer_s / PAYLOAD_SHARE)
    if capacity_mbps is not None:
        rate_kbps = min(rate_kbps, int(capacity_mbps * 1000.0))
    payload_mbps = rate_kbps / 1000.0 * PAYLOAD_SHARE
    t = start_s
    window_in = window_out = None
    if mbit_in > 0:
        window_in = (t, t + mbit_in / payload_mbps + delay_s)
        t = window_in[1]
    compute = (t, t + work_s)
    t = compute[1]
    if mbit_out > 0:
        window_out = (t, t + mbit_out / payload_mbps + delay_s)
        t = window_out[1]
    return BatchTimes(rate_kbps, window_in, compute, window_out, t)


def erlang_c(slots: int, load_erlangs: float) -> float:
    """Probability an arrival waits in an M/M/n queue with ``slots`` servers (Erlang C).

    Raises
    ------
    ValueError
        If the queue is unstable (``load_erlangs >= slots``).

    Examples
    --------
    >>> round(erlang_c(2, 1.0), 4)
    0.3333
    """
    if load_erlangs >= slots:
        raise ValueError(f"load {load_erlangs:g} Erlang on {slots} slots is unstable")
    blocking = 1.0
    for k in range(1, slots + 1):
        blocking = load_erlangs * blocking / (k + load_erlangs * blocking)
    return slots * blocking / (slots - load_erlangs * (1.0 - blocking))


def stream_p99_ms(slots: int, rate_rps: float, service_time_ms: float) -> float:
    """Estimated 99th-percentile response time at the site (wait + service), ms; inf if unstable.

    Examples
    --------
    >>> stream_p99_ms(1, 50.0, 10.0) > stream_p99_ms(2, 50.0, 10.0) > 10.0
    True
    """
    load = rate_rps * service_time_ms / 1000.0
    if load >= slots:
        return math.inf
    return service_time_ms + _wait_p99_ms(slots, load, erlang_c(slots, load), rate_rps, service_time_ms)


def _wait_p99_ms(slots: int, load: float, waiting: float, rate_rps: float, service_time_ms: float) -> float:
    tail = 1.0 - P99
    if waiting <= tail:
        return 0.0
    drain_per_ms = slots / service_time_ms - rate_rps / 1000.0  # n*mu - lambda, per ms
    return math.log(waiting / tail) / drain_per_ms


def stream_slots(rate_rps: float, service_time_ms: float, budget_ms: float, max_slots: int) -> int | None:
    """Fewest slots whose p99 response time fits ``budget_ms``; None if ``max_slots`` do not.

    Examples
    --------
    >>> stream_slots(100.0, 10.0, 5.0, 8) is None
    True
    """
    if budget_ms < service_time_ms:
        return None
    load = rate_rps * service_time_ms / 1000.0
    blocking = 1.0
    for k in range(1, max_slots + 1):
        blocking = load * blocking / (k + load * blocking)
        if k <= load:
            continue
        waiting = k * blocking / (k - load * (1.0 - blocking))
        if service_time_ms + _wait_p99_ms(k, load, waiting, rate_rps, service_time_ms) <= budget_ms:
            return k
    return None


def stream_rate_kbps(rate_rps: float, request_kb: float, response_kb: float) -> int:
    """The slice rate a stream needs: its busier direction on the wire, whole kbit/s.

    Examples
    --------
    >>> stream_rate_kbps(100.0, 1.0, 1.0)
    849
    """
    return ceil_kbps(rate_rps * max(request_kb, response_kb) * 8.0 / 1000.0 / PAYLOAD_SHARE)
