"""One-way delay and jitter per link and per path from IOAM trace timestamps.

Each IOAM node stamps a probe when it *receives* it (Linux takes the
socket-buffer receive time), so the difference between consecutive
nodes' timestamps in one trace is the one-way delay from node ``a``'s
reception to node ``b``'s: ``a``'s forwarding time plus the link
``a -> b`` (with its link-emulation element). The routers are network
namespaces on one host and share one clock, so these differences need no
clock synchronisation; on a multi-host emulation they would carry the
hosts' clock offset.

Estimates over a sliding window (:func:`estimate_delays`):

* ``delay_ms``: mean one-way delay (``median_ms``, ``min_ms``, ``max_ms``
  also given);
* ``jitter_ms``: mean absolute difference between consecutive samples'
  delays, in sample order. That is the per-packet quantity RFC 3550 §6.4.1
  smooths (``D(i-1, i)``) and the IP delay variation of RFC 3393 between
  consecutive probes; it is reported unsmoothed so that a short window is
  not biased towards 0 by the 1/16 filter starting from 0.
  :func:`rfc3550_jitter_ms` gives the smoothed streaming form;
* ``stdev_ms``: population standard deviation of the delays.

Alternate marking measures delay too (RFC 9341 §3.2):
:func:`mean_delay_ms` is the single-marking mean delay of §3.2.1.1 (valid
only for a block without loss); :func:`double_marking_delays_ms` the
double-marking method of §3.2.2 (one extra-marked packet per block,
timestamped at both points).

IOAM timestamps are wall-clock (``CLOCK_REALTIME``) times, so ``now_s``
must come from the same clock (``time.time()``), passed in by the caller.

Examples
--------
>>> samples = [DelaySample("r1->r4", d, t) for d, t in [(10_000_000, 1.0), (12_000_000, 2.0), (11_000_000, 3.0)]]
>>> e = estimate_delays(samples, now_s=3.5, window_s=10.0)["r1->r4"]
>>> e.delay_ms, e.jitter_ms, e.samples, e.age_s
(11.0, 1.5, 3, 0.5)
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from cpn_net.model.addressing import router_name
from cpn_net.telemetry.errors import TelemetryValueError
from cpn_net.telemetry.ioam import TS_FORMAT_POSIX, IoamNode, IoamTrace, node_timestamp_ns
from cpn_net.telemetry.points import link_id

NodeNames = Mapping[int, str] | Callable[[int], str]


@dataclass(frozen=True)
class DelaySample:
    """One one-way delay measured at ``at_s`` (the downstream timestamp)."""

    subject: str
    delay_ns: int
    at_s: float

    @property
    def delay_ms(self) -> float:
        return self.delay_ns / 1e6


def _name_of(node_id: int, node_names: NodeNames | None) -> str:
    if node_names is None:
        try:
            return router_name(node_id)
        except ValueError as err:
            raise TelemetryValueError(
                f"IOAM node id {node_id} is not a site id (1..9999); pass node_names to name it"
            ) from err
    if callable(node_names):
        return node_names(node_id)
    try:
        return node_names[node_id]
    except KeyError:
        raise TelemetryValueError(
            f"IOAM node id {node_id} is missing from node_names; add it (ioam6_id -> node name)"
        ) from None


def _stamped(trace: IoamTrace, ts_format: str) -> list[tuple[IoamNode, int]]:
    return [
        (node, ts)
        for node in trace.nodes
        if node.node_id is not None and (ts := node_timestamp_ns(node, ts_format)) is not None
    ]


def hop_delay_samples(
    trace: IoamTrace,
    node_names: NodeNames | None = None,
    ts_format: str = TS_FORMAT_POSIX,
    require_adjacent: bool = True,
) -> list[DelaySample]:
    """Per-link delay samples from consecutive hops of one trace.

    Parameters
    ----------
    trace : IoamTrace
        Decoded trace with node ids (bit 0) and timestamps (bits 2 and 3).
    node_names : mapping or callable, optional
        IOAM node id (the router's ``ioam6_id``) to node name. By default
        the id is taken to be the site id and named ``r<site>``
        (:func:`cpn_net.model.addressing.router_name`).
    ts_format : str
        Timestamp format (:func:`cpn_net.telemetry.ioam.node_timestamp_ns`).
    require_adjacent : bool
        Skip pairs whose hop limits differ by more than 1 (a router without
        IOAM in between), whose delay is not one link's.

    Returns
    -------
    list of DelaySample
        Subjects are directed links ``"r1->r4"``, in path order. Nodes
        without a usable timestamp are skipped.

    Raises
    ------
    TelemetryValueError
        If a node id cannot be named.

    Examples
    --------
    >>> from cpn_net.telemetry.ioam import IoamNode, IoamTrace
    >>> nodes = (IoamNode(hop_limit=63, node_id=1, ts_s=100, ts_frac=0),
    ...          IoamNode(hop_limit=62, node_id=4, ts_s=100, ts_frac=10_250))
    >>> trace = IoamTrace(1, 0xB00000, 3, 0, 0, 24, nodes)
    >>> [(s.subject, s.delay_ms) for s in hop_delay_samples(trace)]
    [('r1->r4', 10.25)]
    """
    stamped = _stamped(trace, ts_format)
    samples = []
    for (a, ts_a), (b, ts_b) in zip(stamped, stamped[1:]):
        if require_adjacent and a.hop_limit is not None and b.hop_limit is not None:
            if a.hop_limit - b.hop_limit != 1:
                continue
        subject = link_id(_name_of(a.node_id, node_names), _name_of(b.node_id, node_names))
        samples.append(DelaySample(subject, ts_b - ts_a, ts_b / 1e9))
    return samples


def path_delay_sample(trace: IoamTrace, subject: str, ts_format: str = TS_FORMAT_POSIX) -> DelaySample | None:
    """Delay from the first to the last stamped node of a trace (e.g. one SR policy).

    Parameters
    ----------
    trace : IoamTrace
        Decoded trace with timestamps.
    subject : str
        Name to file the sample under (the policy's name).
    ts_format : str
        Timestamp format.

    Returns
    -------
    DelaySample or None
        None when fewer than two nodes carry timestamps.

    Examples
    --------
    >>> from cpn_net.telemetry.ioam import IoamNode, IoamTrace
    >>> nodes = tuple(IoamNode(node_id=i, ts_s=5, ts_frac=f) for i, f in [(1, 0), (2, 900), (3, 2_000)])
    >>> path_delay_sample(IoamTrace(1, 0xB00000, 3, 0, 0, 36, nodes), "policy-7").delay_ms
    2.0
    """
    stamped = _stamped(trace, ts_format)
    if len(stamped) < 2:
        return None
    return DelaySample(subject, stamped[-1][1] - stamped[0][1], stamped[-1][1] / 1e9)


def rfc3550_jitter_ms(previous_jitter_ms: float, previous_delay_ms: float, delay_ms: float) -> float:
    """One step of the RFC 3550 §6.4.1 interarrival jitter estimator.

    ``J(i) = J(i-1) + (|D(i-1, i)| - J(i-1)) / 16``, with ``D`` the change
    in one-way delay between consecutive packets.

    Parameters
    ----------
    previous_jitter_ms : float
        The estimate so far (0 at the start).
    previous_delay_ms, delay_ms : float
        Delays of the previous and the current packet.

    Returns
    -------
    float
        The updated estimate in ms.

    Examples
    --------
    >>> rfc3550_jitter_ms(0.0, 10.0, 26.0)
    1.0
    """
    return previous_jitter_ms + (abs(delay_ms - previous_delay_ms) - previous_jitter_ms) / 16.0


@dataclass(frozen=True)
class DelayEstimate:
    """Delay and jitter of one link or path over a window of samples.

    ``jitter_ms`` and ``stdev_ms`` are None with fewer than 2 samples.
    ``age_s`` is how old the newest sample was at estimation time
    ``last_sample_s + age_s``.
    """

    subject: str
    delay_ms: float
    jitter_ms: float | None
    samples: int
    window_s: float
    age_s: float
    last_sample_s: float
    median_ms: float
    min_ms: float
    max_ms: float
    stdev_ms: float | None


def _estimate(subject: str, window: list[DelaySample], now_s: float, window_s: float) -> DelayEstimate:
    delays = [s.delay_ns / 1e6 for s in window]
    steps = [abs(b - a) for a, b in zip(delays, delays[1:])]
    last = window[-1].at_s
    return DelayEstimate(
        subject=subject,
        delay_ms=round(statistics.fmean(delays), 6),
        jitter_ms=round(statistics.fmean(steps), 6) if steps else None,
        samples=len(delays),
        window_s=window_s,
        age_s=round(now_s - last, 6),
        last_sample_s=last,
        median_ms=round(statistics.median(delays), 6),
        min_ms=min(delays),
        max_ms=max(delays),
        stdev_ms=round(statistics.pstdev(delays), 6) if len(delays) > 1 else None,
    )


def estimate_delays(samples: Iterable[DelaySample], now_s: float, window_s: float) -> dict[str, DelayEstimate]:
    """Per-subject delay and jitter over the samples taken in ``(now_s - window_s, now_s]``.

    Parameters
    ----------
    samples : iterable of DelaySample
        Samples of any subjects, in any order.
    now_s : float
        The current wall-clock time (same clock as the IOAM timestamps).
    window_s : float
        Window length in seconds (> 0).

    Returns
    -------
    dict of str to DelayEstimate
        Subjects with at least one sample in the window, sorted by name.

    Raises
    ------
    TelemetryValueError
        If ``window_s`` is not a positive finite number.

    Examples
    --------
    >>> old, new = DelaySample("r1->r2", 9_000_000, 1.0), DelaySample("r1->r2", 5_000_000, 9.0)
    >>> e = estimate_delays([new, old], now_s=10.0, window_s=5.0)["r1->r2"]
    >>> e.delay_ms, e.samples, e.jitter_ms
    (5.0, 1, None)
    """
    if not (isinstance(window_s, (int, float)) and math.isfinite(window_s) and window_s > 0):
        raise TelemetryValueError(f"window_s={window_s!r} must be a finite number > 0")
    grouped: dict[str, list[DelaySample]] = defaultdict(list)
    for sample in samples:
        if now_s - window_s < sample.at_s <= now_s:
            grouped[sample.subject].append(sample)
    estimates = {}
    for subject in sorted(grouped):
        window = sorted(grouped[subject], key=lambda s: s.at_s)
        estimates[subject] = _estimate(subject, window, now_s, window_s)
    return estimates


def mean_delay_ms(
    upstream_timestamp_sum_s: float,
    downstream_timestamp_sum_s: float,
    upstream_packets: int,
    downstream_packets: int,
) -> float | None:
    """Single-marking mean delay of one block (RFC 9341 §3.2.1.1).

    Each point sums the timestamps of the block's packets; the mean
    one-way delay is the difference of the sums divided by the count. The
    result is meaningful only when no packet was lost in the block.

    Parameters
    ----------
    upstream_timestamp_sum_s, downstream_timestamp_sum_s : float
        Sums of the packets' timestamps (seconds) at each point.
    upstream_packets, downstream_packets : int
        Packets counted at each point.

    Returns
    -------
    float or None
        Mean delay in ms, or None if the counts differ or are zero.

    Examples
    --------
    >>> mean_delay_ms(1.0 + 2.0, 1.01 + 2.02, 2, 2)
    15.0
    >>> mean_delay_ms(3.0, 2.01, 2, 1) is None
    True
    """
    if upstream_packets != downstream_packets or upstream_packets <= 0:
        return None
    return round(1000.0 * (downstream_timestamp_sum_s - upstream_timestamp_sum_s) / upstream_packets, 9)


def double_marking_delays_ms(
    upstream_timestamps_s: Mapping[int, float], downstream_timestamps_s: Mapping[int, float]
) -> dict[int, float]:
    """Per-block delay of the double-marked packets (RFC 9341 §3.2.2).

    A second flag marks one packet per block; both points timestamp it.

    Parameters
    ----------
    upstream_timestamps_s, downstream_timestamps_s : mapping of int to float
        Block index to the marked packet's timestamp at each point.

    Returns
    -------
    dict of int to float
        Block index to one-way delay in ms, for blocks seen at both points.

    Examples
    --------
    >>> double_marking_delays_ms({1: 10.000, 2: 11.000}, {1: 10.012, 3: 12.0})
    {1: 12.0}
    """
    return {
        index: round(1000.0 * (downstream_timestamps_s[index] - up), 9)
        for index, up in sorted(upstream_timestamps_s.items())
        if index in downstream_timestamps_s
    }
