"""Loss, outage, reordering and one-way delay of a measured constant-rate flow.

Pure analysis of what :mod:`cpn_net.tools.flowgen` records: the sender's
count of sequence numbers used (``0 .. sent-1``) and the receiver's arrivals
``(seq, send_ns, recv_ns)`` in arrival order. Both timestamps are
``CLOCK_REALTIME`` nanoseconds; emulated nodes share the host's clock, so
``recv_ns - send_ns`` is the one-way delay with no synchronisation error.

Two measures of a failover outage
---------------------------------
``outage_ms`` (the one reported, and compared against targets)
    The longest run of consecutive missing sequence numbers — the longest
    *loss period* of RFC 3357 §4.1 — times the send interval ``1/rate``:
    the classic "loss duration" of failover studies. Its resolution is one
    interval (1 ms at 1,000 packets/s).
``arrival_outage_ms`` (reported alongside, see :func:`outage_ms_from_arrivals`)
    The longest silence at the receiver: the largest gap between arrivals
    minus one interval.

The sequence-based figure is the one reported because it measures only
what the network lost: a sender that stalls for 30 ms makes an arrival
gap but loses nothing; a repair onto a backup path 20 ms longer makes an
arrival gap 20 ms longer than the loss (a delay step, visible in
``delay_ms``), and a shorter one hides part of the loss; and loss at the
start or the end of the flow has no arrival on one side of it, so only
sequence numbers see it. The arrival gap is what an application notices,
so it is kept for the reader, not for verdicts.

Other definitions used here: a packet is *reordered* when its sequence
number is below the next expected one (RFC 4737 §3.3); *duplicates* are
arrivals of a sequence number already received (RFC 5560 counts them the
same way) and are left out of delay, jitter and reordering; *jitter* is
the mean absolute difference between the one-way delays of consecutive
sequence numbers (RFC 3393 IPDV, the per-packet term RFC 3550 §6.4.1
smooths; as in :mod:`cpn_net.telemetry.delay`).

Examples
--------
>>> ms = 1_000_000
>>> arrivals = [(seq, seq * ms, seq * ms + 2 * ms) for seq in (0, 1, 2, 6, 7, 9)]
>>> r = analyse(10, arrivals, rate_pps=1000)
>>> r.lost, r.loss_pct, r.gaps, r.outage_ms, r.outage_start_ns
(4, 40.0, ((3, 3), (8, 1)), 3.0, 3000000)
>>> r.delay_ms.median_ms, r.jitter_ms, r.arrival_outage_ms
(2.0, 0.0, 3.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

from cpn_net.stats import percentile
from cpn_net.tools import ToolsValueError

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
RECORD_SCHEMA = 1
"""Version of the JSON records flowgen writes; readers refuse newer ones."""


@dataclass(frozen=True)
class DelayStats:
    """One-way delay distribution of the first arrival of every sequence number."""

    min_ms: float
    median_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class FlowReport:
    """What happened to one flow.

    Attributes
    ----------
    sent : int
        Sequence numbers the sender used, ``0 .. sent-1``.
    received : int
        Distinct sequence numbers received.
    lost : int
        ``sent - received``.
    loss_pct : float or None
        ``100 * lost / sent``; None when nothing was sent.
    duplicates : int
        Arrivals of a sequence number already received.
    reordered : int
        Arrivals below the next expected sequence number (RFC 4737 §3.3).
    outage_ms : float
        Longest run of consecutive missing sequence numbers over the rate.
    outage_start_ns : int or None
        When the first packet of that run was (due to be) sent, estimated
        from its received neighbour; None without a loss or a reference.
    gaps : tuple of (int, int)
        Every run of missing sequence numbers, ``(first_missing_seq, count)``,
        in sequence order; head and tail loss included.
    delay_ms : DelayStats or None
        One-way delay; None when nothing arrived.
    jitter_ms : float or None
        Mean absolute IPDV of consecutive sequence numbers; None without a pair.
    arrival_outage_ms : float or None
        Longest receiver silence minus one interval; None with < 2 arrivals.
    rate_pps : float
        The send rate the outage is measured against.
    receiver_drops : int or None
        Datagrams the receiving socket's queue dropped (already counted in
        ``lost``, but not lost by the network); None when not known.
    """

    sent: int
    received: int
    lost: int
    loss_pct: float | None
    duplicates: int
    reordered: int
    outage_ms: float
    outage_start_ns: int | None
    gaps: tuple[tuple[int, int], ...]
    delay_ms: DelayStats | None
    jitter_ms: float | None
    arrival_outage_ms: float | None
    rate_pps: float
    receiver_drops: int | None = None

    def to_dict(self) -> dict:
        """Plain JSON-ready form (gaps as lists, missing values as None).

        Examples
        --------
        >>> d = analyse(2, [(0, 0, 5)], rate_pps=100).to_dict()
        >>> d["gaps"], d["outage_ms"], d["delay_ms"]["max_ms"]
        ([[1, 1]], 10.0, 5e-06)
        """
        data = asdict(self)
        data["gaps"] = [list(gap) for gap in self.gaps]
        return data


def loss_gaps(sent: int, seqs: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Runs of sequence numbers in ``0 .. sent-1`` that never arrived (RFC 3357 §4.1).

    Parameters
    ----------
    sent : int
        Sequence numbers used by the sender.
    seqs : iterable of int
        Sequence numbers received, in any order, duplicates allowed.

    Returns
    -------
    tuple of (first_missing_seq, count)
        In sequence order.

    Raises
    ------
    ToolsValueError
        If a sequence number is outside ``0 .. sent-1``.

    Examples
    --------
    >>> loss_gaps(8, [2, 3, 3, 5])
    ((0, 2), (4, 1), (6, 2))
    >>> loss_gaps(3, [0, 1, 2]), loss_gaps(2, [])
    ((), ((0, 2),))
    """
    present = sorted(set(seqs))
    if present and (present[0] < 0 or present[-1] >= sent):
        bad = present[0] if present[0] < 0 else present[-1]
        raise ToolsValueError(
            f"received seq={bad} is outside 0..{sent - 1} (sent={sent}): the receiver's records "
            "do not belong to this sender run, or the sender summary is cut short")
    gaps = []
    expected = 0
    for seq in present:
        if seq > expected:
            gaps.append((expected, seq - expected))
        expected = seq + 1
    if expected < sent:
        gaps.append((expected, sent - expected))
    return tuple(gaps)


def count_reordered(seqs: Iterable[int]) -> int:
    """Arrivals whose sequence number is below the next expected one (RFC 4737 §3.3).

    ``NextExp`` is one past the highest sequence number seen so far; a
    repeated sequence number is a duplicate, not a reordering, and is skipped.

    Parameters
    ----------
    seqs : iterable of int
        Sequence numbers in arrival order.

    Returns
    -------
    int

    Examples
    --------
    >>> count_reordered([0, 1, 3, 2, 4]), count_reordered([0, 3, 1, 2, 2]), count_reordered([])
    (1, 2, 0)
    """
    next_expected = 0
    seen = set()
    reordered = 0
    for seq in seqs:
        if seq in seen:
            continue
        seen.add(seq)
        if seq < next_expected:
            reordered += 1
        else:
            next_expected = seq + 1
    return reordered


def outage_ms_from_arrivals(recv_ns: Iterable[int], rate_pps: float) -> float | None:
    """Longest silence at the receiver: largest inter-arrival gap minus one interval.

    Not the reported outage (see the module notes): it includes sender
    stalls and delay steps, and cannot see loss before the first or after
    the last arrival.

    Parameters
    ----------
    recv_ns : iterable of int
        Arrival times in nanoseconds, any order.
    rate_pps : float
        Send rate; one interval is ``1/rate_pps``.

    Returns
    -------
    float or None
        Milliseconds, never negative; None with fewer than two arrivals.

    Raises
    ------
    ToolsValueError
        If ``rate_pps`` is not a positive number.

    Examples
    --------
    >>> ms = 1_000_000
    >>> outage_ms_from_arrivals([0, 1 * ms, 2 * ms, 50 * ms, 51 * ms], rate_pps=1000)
    47.0
    >>> outage_ms_from_arrivals([0, 1 * ms], 1000), outage_ms_from_arrivals([5], 1000)
    (0.0, None)
    """
    _check_rate(rate_pps)
    times = sorted(recv_ns)
    if len(times) < 2:
        return None
    largest_ns = max(later - earlier for earlier, later in zip(times, times[1:]))
    return max(0.0, largest_ns / NS_PER_MS - 1000.0 / rate_pps)


def analyse(sent: int, received: Iterable[Sequence[int]], rate_pps: float, *,
            start_ns: int | None = None) -> FlowReport:
    """Loss, outage, reordering, duplicates, delay and jitter of one flow.

    Parameters
    ----------
    sent : int
        Sequence numbers the sender used (``0 .. sent-1``), including any
        whose transmission failed locally: from the flow's point of view
        those are lost too.
    received : iterable of (seq, send_ns, recv_ns)
        Every arrival, in arrival order (reordering is judged on that order).
    rate_pps : float
        The sender's rate.
    start_ns : int, optional
        When sequence number 0 was due; only used to date an outage that
        begins with sequence number 0.

    Returns
    -------
    FlowReport
        With nothing received, the outage is the whole flow (``sent / rate``).
        The longest gap is the earliest one among equals.

    Raises
    ------
    ToolsValueError
        If ``sent`` is negative, ``rate_pps`` is not positive, an arrival is
        not three integers, or a sequence number is outside ``0 .. sent-1``.

    Examples
    --------
    >>> r = analyse(4, [(0, 10, 20), (2, 30, 45), (1, 20, 50), (2, 30, 60)], rate_pps=1000)
    >>> r.received, r.lost, r.duplicates, r.reordered, r.gaps, r.outage_ms
    (3, 1, 1, 1, ((3, 1),), 1.0)
    >>> r = analyse(1000, [], rate_pps=1000, start_ns=7)
    >>> r.loss_pct, r.outage_ms, r.outage_start_ns, r.delay_ms
    (100.0, 1000.0, 7, None)
    """
    if not isinstance(sent, int) or isinstance(sent, bool) or sent < 0:
        raise ToolsValueError(f"sent={sent!r} must be an integer >= 0 (sequence numbers used)")
    _check_rate(rate_pps)
    first = {}
    order = []
    duplicates = 0
    for index, arrival in enumerate(received):
        seq, send_ns, recv_ns = _arrival(index, arrival)
        order.append(seq)
        if seq in first:
            duplicates += 1
        else:
            first[seq] = (send_ns, recv_ns)
    gaps = loss_gaps(sent, first)
    interval_ns = NS_PER_S / rate_pps
    longest = max(gaps, key=lambda gap: gap[1], default=None)  # max keeps the earliest of equals
    outage_start_ns = None
    if longest is not None:
        gap_seq, gap_count = longest
        if gap_seq > 0:
            outage_start_ns = first[gap_seq - 1][0] + round(interval_ns)
        elif gap_count < sent:
            outage_start_ns = first[gap_count][0] - round(gap_count * interval_ns)
        else:
            outage_start_ns = start_ns
    return FlowReport(
        sent=sent,
        received=len(first),
        lost=sent - len(first),
        loss_pct=100.0 * (sent - len(first)) / sent if sent else None,
        duplicates=duplicates,
        reordered=count_reordered(order),
        outage_ms=longest[1] * 1000.0 / rate_pps if longest else 0.0,
        outage_start_ns=outage_start_ns,
        gaps=gaps,
        delay_ms=_delay_stats(first),
        jitter_ms=_jitter_ms(first),
        arrival_outage_ms=outage_ms_from_arrivals((recv for _, recv in first.values()), rate_pps),
        rate_pps=float(rate_pps),
    )


def analyse_run(sender: Mapping, receiver: Mapping) -> FlowReport:
    """Analyse the JSON records of one ``flowgen send`` and its ``flowgen recv``.

    Parameters
    ----------
    sender, receiver : mapping
        The parsed ``--out`` files of the two commands.

    Returns
    -------
    FlowReport
        With ``receiver_drops`` from the receiver's socket-queue overflow count.

    Raises
    ------
    ToolsValueError
        If a record is not of the expected role, comes from a newer schema,
        lacks a key, or the two flow ids differ.

    Examples
    --------
    >>> s = {"schema": 1, "role": "send", "flow_id": 3, "sent": 2, "rate_pps": 100.0, "start_ns": 0}
    >>> r = {"schema": 1, "role": "recv", "flow_id": 3, "received": [[1, 10_000_000, 10_000_500]], "rx_overflow": 0}
    >>> report = analyse_run(s, r)
    >>> report.gaps, report.outage_start_ns, report.receiver_drops
    (((0, 1),), 0, 0)
    >>> analyse_run(s, dict(r, flow_id=4))
    Traceback (most recent call last):
    ...
    cpn_net.tools.ToolsValueError: receiver flow_id=4 differs from sender flow_id=3: pair the records of one flow
    """
    _check_record(sender, "send", ("flow_id", "sent", "rate_pps"))
    _check_record(receiver, "recv", ("flow_id", "received"))
    if receiver["flow_id"] != sender["flow_id"]:
        raise ToolsValueError(f"receiver flow_id={receiver['flow_id']} differs from sender "
                              f"flow_id={sender['flow_id']}: pair the records of one flow")
    report = analyse(sender["sent"], receiver["received"], sender["rate_pps"],
                     start_ns=sender.get("start_ns"))
    return replace(report, receiver_drops=receiver.get("rx_overflow"))


def _check_rate(rate_pps) -> None:
    if isinstance(rate_pps, bool) or not isinstance(rate_pps, (int, float)) \
            or not math.isfinite(rate_pps) or rate_pps <= 0:
        raise ToolsValueError(f"rate_pps={rate_pps!r} must be a finite number > 0 (packets per second)")


def _arrival(index: int, arrival) -> tuple[int, int, int]:
    try:
        seq, send_ns, recv_ns = arrival
    except (TypeError, ValueError) as err:
        raise ToolsValueError(f"arrival #{index}={arrival!r} must be (seq, send_ns, recv_ns)") from err
    for value in (seq, send_ns, recv_ns):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ToolsValueError(f"arrival #{index}={arrival!r} must hold three integers "
                                  "(seq, send_ns, recv_ns)")
    return seq, send_ns, recv_ns


def _delay_stats(first: Mapping[int, tuple[int, int]]) -> DelayStats | None:
    if not first:
        return None
    delays = [(recv - send) / NS_PER_MS for send, recv in first.values()]
    return DelayStats(min_ms=min(delays), median_ms=percentile(delays, 50),
                      p99_ms=percentile(delays, 99), max_ms=max(delays))


def _jitter_ms(first: Mapping[int, tuple[int, int]]) -> float | None:
    variations = []
    for seq, (send, recv) in first.items():
        following = first.get(seq + 1)
        if following is not None:
            variations.append(abs((following[1] - following[0]) - (recv - send)))
    if not variations:
        return None
    return sum(variations) / len(variations) / NS_PER_MS


def _check_record(record: Mapping, role: str, keys: tuple[str, ...]) -> None:
    name = "sender" if role == "send" else "receiver"
    if not isinstance(record, Mapping):
        raise ToolsValueError(f"{name} record must be a JSON object, got {type(record).__name__}")
    if record.get("role") != role:
        raise ToolsValueError(f"{name} record has role={record.get('role')!r}, expected {role!r}: "
                              f"pass the --out file of `flowgen {role}`")
    schema = record.get("schema")
    if not isinstance(schema, int) or schema > RECORD_SCHEMA:
        raise ToolsValueError(f"{name} record schema={schema!r} is not readable by this version "
                              f"(reads <= {RECORD_SCHEMA}): upgrade cpn_net")
    for key in keys:
        if key not in record:
            raise ToolsValueError(f"{name} record lacks key {key!r}: pass the --out file of `flowgen {role}`")
