"""Alternate marking (RFC 9341): periods, blocks, per-block counts, per-hop loss.

The method (RFC 9341 §3.1, single marking for loss)
----------------------------------------------------
The ingress site switch colours monitored packets with one traffic-class
bit, flipping the colour every period ``T``: the packets sent during one
period form a *block*. Every measurement point (a counter on one interface,
see :mod:`cpn_net.telemetry.points`) keeps one cumulative counter per colour.
While colour 1 is being sent, the colour-0 counters are still; once they
are still everywhere, the difference between two points' counts for the
same block is the number of packets lost between them.

Timing: choosing ``T`` and deciding when a block is stable (RFC 9341 §5)
------------------------------------------------------------------------
A packet of block ``k`` can reach a downstream point up to ``D`` (its
one-way delay including delay variation) after the block ended; points'
clocks disagree by up to ``A`` (here 0: every node is a namespace on one
host). RFC 9341 §5 asks for ``A + D < T/2``: then every counter of block
``k`` has stopped moving by ``end_k + T/2``, and no packet of block ``k + 2``
(the same colour again) arrives before ``end_k + T``. So:

* a read of a colour-``c`` counter at time ``r`` *closes* block ``k`` of
  colour ``c`` when ``end_k + T/2 <= r < end_k + T``, i.e. during the
  second half of the following block (:func:`closed_block`);
* reads at other times are not used (they may split a block);
* the configuration is checked once with :func:`check_period`, which also
  budgets the collector's read latency (the read must finish inside the
  window).

With the default ``T = 1 s`` the guard is 500 ms, far above the WAN delays
(tens of ms), the jitter of the emulated links (a few ms) and the time
to read OVS flow statistics or nftables counters (tens of ms). A smaller
``T`` reports loss onset sooner: block ``k``'s loss is known at
``end_k + T/2``, so onset is reported within ``1.5 T``; but ``T`` must stay
above ``2 (D + A + read latency)`` or blocks get mixed.

Counters are cumulative; :func:`per_block_counts` turns them into
per-block counts, handles wrap-around, and marks a block invalid rather
than guessing when a point missed its read or its counter was reset.

Delay by alternate marking (RFC 9341 §3.2) lives with the other delay
estimators in :mod:`cpn_net.telemetry.delay`.

Examples
--------
>>> colour_at(0.2, 1.0), colour_at(1.2, 1.0), block_index(2.5, 1.0)
(0, 1, 2)
>>> counts = {"r1-eth1:in": 100, "r1-eth2:out": 100, "r4-eth2:in": 97}
>>> [(h.downstream_point, h.lost_packets) for h in per_hop_loss(list(counts), counts)]
[('r1-eth2:out', 0), ('r4-eth2:in', 3)]
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cpn_net.telemetry.errors import TelemetryValueError
from cpn_net.telemetry.points import MeasurementPoint, link_id

DEFAULT_PERIOD_S = 1.0
COLOURS = (0, 1)
COUNTER_MODULUS_64 = 2**64
COUNTER_MODULUS_32 = 2**32
BOUNDARY_TOLERANCE_S = 1e-6


def _check_period(period_s: float) -> None:
    if not (isinstance(period_s, (int, float)) and math.isfinite(period_s) and period_s > 0):
        raise TelemetryValueError(f"period_s={period_s!r} must be a finite number > 0 (default 1.0)")


def _position(t_s: float, period_s: float, epoch_s: float) -> float:
    """Time in periods since the epoch, snapped to a boundary within BOUNDARY_TOLERANCE_S.

    Wall-clock epochs (~1.7e9 s) carry ~0.2 µs of float error, so
    ``epoch + k * T`` may land a hair before boundary ``k``; snapping keeps
    :func:`block_at` and :func:`block_index` consistent.
    """
    position = (t_s - epoch_s) / period_s
    nearest = round(position)
    if abs(position - nearest) * period_s < BOUNDARY_TOLERANCE_S:
        return float(nearest)
    return position


def block_index(t_s: float, period_s: float = DEFAULT_PERIOD_S, epoch_s: float = 0.0) -> int:
    """Index of the block (marking period) containing time ``t_s``.

    Block ``k`` covers ``[epoch_s + k T, epoch_s + (k + 1) T)``; times
    within ``BOUNDARY_TOLERANCE_S`` (1 µs) of a boundary count as on it.

    Parameters
    ----------
    t_s : float
        Time in seconds (same clock as ``epoch_s``).
    period_s : float
        Marking period ``T`` in seconds.
    epoch_s : float
        Start of block 0.

    Returns
    -------
    int
        The block index (negative before the epoch).

    Raises
    ------
    TelemetryValueError
        If ``period_s`` is not a positive finite number.

    Examples
    --------
    >>> block_index(0.0, 1.0), block_index(0.999, 1.0), block_index(1.0, 1.0)
    (0, 0, 1)
    >>> block_index(10.3, 0.5, epoch_s=10.0)
    0
    """
    _check_period(period_s)
    return math.floor(_position(t_s, period_s, epoch_s))


def colour_at(t_s: float, period_s: float = DEFAULT_PERIOD_S, epoch_s: float = 0.0) -> int:
    """Colour (0 or 1) the ingress gives packets sent at time ``t_s``.

    Even blocks are colour 0, odd blocks colour 1 (RFC 9341 §3.1).

    Parameters
    ----------
    t_s, period_s, epoch_s : float
        As for :func:`block_index`.

    Returns
    -------
    int
        0 or 1.

    Examples
    --------
    >>> [colour_at(t, 1.0) for t in (0.0, 0.5, 1.0, 2.7, 3.1)]
    [0, 0, 1, 0, 1]
    """
    return block_index(t_s, period_s, epoch_s) % 2


@dataclass(frozen=True)
class AltMarkBlock:
    """One marking period: packets sent in ``[start_s, end_s)`` carry ``colour``."""

    index: int
    colour: int
    start_s: float
    end_s: float

    @property
    def period_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def stable_from_s(self) -> float:
        """First time the block's counters may be read (RFC 9341 §5 guard)."""
        return self.end_s + self.period_s / 2

    @property
    def read_until_s(self) -> float:
        """Reads must happen before the same colour is sent again."""
        return self.end_s + self.period_s

    def is_stable(self, now_s: float) -> bool:
        """Whether the block's counters can be read at ``now_s``."""
        return now_s >= self.stable_from_s


def block_at(index: int, period_s: float = DEFAULT_PERIOD_S, epoch_s: float = 0.0) -> AltMarkBlock:
    """The block with the given index.

    Parameters
    ----------
    index : int
        Block index.
    period_s, epoch_s : float
        As for :func:`block_index`.

    Returns
    -------
    AltMarkBlock

    Examples
    --------
    >>> b = block_at(3, 1.0, epoch_s=100.0)
    >>> b.colour, b.start_s, b.end_s, b.stable_from_s, b.read_until_s
    (1, 103.0, 104.0, 104.5, 105.0)
    """
    _check_period(period_s)
    return AltMarkBlock(
        index=index,
        colour=index % 2,
        start_s=epoch_s + index * period_s,
        end_s=epoch_s + (index + 1) * period_s,
    )


def min_period_s(
    max_delay_ms: float,
    max_jitter_ms: float = 0.0,
    read_latency_ms: float = 0.0,
    sync_error_ms: float = 0.0,
) -> float:
    """Smallest marking period satisfying the RFC 9341 §5 guard.

    ``T/2`` must exceed the largest one-way delay (plus its variation), the
    clock error between points and the time a collector needs to read a
    counter, so ``T > 2 (delay + jitter + read latency + sync error)``.

    Parameters
    ----------
    max_delay_ms, max_jitter_ms, read_latency_ms, sync_error_ms : float
        Worst cases along the monitored path, in milliseconds (>= 0).

    Returns
    -------
    float
        The bound in seconds (a period must be strictly larger).

    Raises
    ------
    TelemetryValueError
        If an argument is negative or not finite.

    Examples
    --------
    >>> min_period_s(max_delay_ms=40, max_jitter_ms=5, read_latency_ms=50)
    0.19
    """
    budget = {
        "max_delay_ms": max_delay_ms,
        "max_jitter_ms": max_jitter_ms,
        "read_latency_ms": read_latency_ms,
        "sync_error_ms": sync_error_ms,
    }
    for key, value in budget.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise TelemetryValueError(f"{key}={value!r} must be a finite number >= 0")
    return round(2 * sum(budget.values()) / 1000.0, 9)


def check_period(
    period_s: float,
    max_delay_ms: float,
    max_jitter_ms: float = 0.0,
    read_latency_ms: float = 0.0,
    sync_error_ms: float = 0.0,
) -> None:
    """Raise unless ``period_s`` leaves a safe read window (RFC 9341 §5).

    Parameters
    ----------
    period_s : float
        Proposed marking period in seconds.
    max_delay_ms, max_jitter_ms, read_latency_ms, sync_error_ms : float
        As for :func:`min_period_s`.

    Raises
    ------
    TelemetryValueError
        If ``period_s / 2`` does not exceed the delay budget.

    Examples
    --------
    >>> check_period(1.0, max_delay_ms=40, max_jitter_ms=5)
    >>> check_period(0.05, max_delay_ms=40, max_jitter_ms=5)
    Traceback (most recent call last):
    ...
    cpn_net.telemetry.errors.TelemetryValueError: period_s=0.05 is too short: ...
    """
    _check_period(period_s)
    bound_s = min_period_s(max_delay_ms, max_jitter_ms, read_latency_ms, sync_error_ms)
    if period_s <= bound_s:
        raise TelemetryValueError(
            f"period_s={period_s} is too short: half a period must exceed delay + jitter + "
            f"read latency + sync error = {bound_s * 500:.3f} ms (RFC 9341 §5); "
            f"use period_s > {bound_s}"
        )


def closed_block(read_at_s: float, colour: int, period_s: float, epoch_s: float = 0.0) -> int | None:
    """Index of the colour-``colour`` block a counter read at ``read_at_s`` closes.

    A read closes block ``k`` when it falls in the second half of block
    ``k + 1`` (the other colour's period): block ``k`` is then stable and
    block ``k + 2`` has not started.

    Parameters
    ----------
    read_at_s : float
        When the counter was read (issue time of the read request).
    colour : int
        The counter's colour, 0 or 1.
    period_s, epoch_s : float
        As for :func:`block_index`.

    Returns
    -------
    int or None
        The block index, or None if the read is unusable (during counting,
        or in the unstable first half of the next block).

    Raises
    ------
    TelemetryValueError
        If ``colour`` is not 0 or 1.

    Examples
    --------
    >>> closed_block(1.6, 0, 1.0), closed_block(1.4, 0, 1.0), closed_block(2.6, 0, 1.0)
    (0, None, None)
    >>> closed_block(2.6, 1, 1.0)
    1
    """
    _check_colour(colour)
    _check_period(period_s)
    position = _position(read_at_s, period_s, epoch_s)
    current = math.floor(position)
    if current % 2 == colour or position - current < 0.5:
        return None
    return current - 1


def _check_colour(colour: object) -> None:
    if colour not in COLOURS:
        raise TelemetryValueError(f"colour={colour!r} must be 0 or 1")


@dataclass(frozen=True)
class CounterSample:
    """A cumulative per-colour counter read at one measurement point."""

    point: str
    colour: int
    packets: int
    bytes: int
    read_at_s: float

    def __post_init__(self) -> None:
        if not self.point:
            raise TelemetryValueError("counter sample: point must be a non-empty name, e.g. 'r1-eth2:out'")
        _check_colour(self.colour)
        for key in ("packets", "bytes"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 0:
                raise TelemetryValueError(f"counter sample {self.point}: {key}={value!r} must be an int >= 0")
        if not math.isfinite(self.read_at_s):
            raise TelemetryValueError(f"counter sample {self.point}: read_at_s={self.read_at_s!r} must be finite")


@dataclass(frozen=True)
class BlockCount:
    """Packets and bytes one point counted in one block; None when invalid."""

    point: str
    block: AltMarkBlock
    packets: int | None
    bytes: int | None
    reason: str = ""

    @property
    def valid(self) -> bool:
        return self.packets is not None


def _counter_delta(previous: int, current: int, modulus: int) -> int | None:
    delta = current - previous
    if delta >= 0:
        return delta
    wrapped = delta + modulus
    # A wrap moves the counter a little past the modulus; a big backwards jump is a reset.
    return wrapped if 0 <= wrapped < modulus // 2 else None


def per_block_counts(
    samples: Iterable[CounterSample],
    period_s: float = DEFAULT_PERIOD_S,
    epoch_s: float = 0.0,
    counter_modulus: int = COUNTER_MODULUS_64,
) -> list[BlockCount]:
    """Turn cumulative per-colour counter reads into per-block counts.

    For each point and colour, a usable read (see :func:`closed_block`)
    closes one block; the count of block ``k`` is the difference between
    the reads closing blocks ``k`` and ``k - 2``. The first usable read of
    a series is only a baseline. A block is returned invalid (``packets``
    None, with a reason) rather than guessed when:

    * no usable read closed it (missed read), or the previous read was
      missed so its count cannot be separated from the missed block's;
    * the counter went backwards by more than half the modulus (a reset);
    * two reads in its stable window differ (packets arrived after
      ``end + T/2``: the period is too short for the path's delay).

    Parameters
    ----------
    samples : iterable of CounterSample
        Reads from any number of points, in any order.
    period_s, epoch_s : float
        The marking schedule (see :func:`block_index`).
    counter_modulus : int
        Counters wrap at this value (``2**64`` for OVS and nftables).

    Returns
    -------
    list of BlockCount
        Sorted by block index, then point.

    Raises
    ------
    TelemetryValueError
        If a counter value is not below ``counter_modulus``.

    Examples
    --------
    >>> reads = [CounterSample("r1-eth1:in", 0, n, 100 * n, t) for n, t in [(10, 1.6), (25, 3.6), (31, 5.7)]]
    >>> [(c.block.index, c.packets, c.bytes) for c in per_block_counts(reads, 1.0)]
    [(2, 15, 1500), (4, 6, 600)]
    >>> reads = [CounterSample("r1-eth1:in", 0, n, 0, t) for n, t in [(10, 1.6), (31, 5.7)]]
    >>> [(c.block.index, c.packets, c.reason[:16]) for c in per_block_counts(reads, 1.0)]
    [(2, None, 'no counter read '), (4, None, 'the read closing')]
    """
    _check_period(period_s)
    series: dict[tuple[str, int], list[CounterSample]] = defaultdict(list)
    for sample in samples:
        for key in ("packets", "bytes"):
            if getattr(sample, key) >= counter_modulus:
                raise TelemetryValueError(
                    f"counter sample {sample.point}: {key}={getattr(sample, key)} must be < "
                    f"counter_modulus={counter_modulus}"
                )
        series[(sample.point, sample.colour)].append(sample)
    counts: list[BlockCount] = []
    for (point, _colour), reads in series.items():
        reads.sort(key=lambda s: s.read_at_s)
        counts.extend(_series_counts(point, reads, period_s, epoch_s, counter_modulus))
    counts.sort(key=lambda c: (c.block.index, c.point))
    return counts


def _series_counts(
    point: str, reads: list[CounterSample], period_s: float, epoch_s: float, modulus: int
) -> list[BlockCount]:
    out: dict[int, BlockCount] = {}
    previous: CounterSample | None = None
    previous_block = 0
    for read in reads:
        index = closed_block(read.read_at_s, read.colour, period_s, epoch_s)
        if index is None:
            continue
        block = block_at(index, period_s, epoch_s)
        if previous is None:
            previous, previous_block = read, index
            continue
        if index == previous_block:
            moved = (read.packets, read.bytes) != (previous.packets, previous.bytes)
            if moved and index in out and out[index].valid:
                out[index] = BlockCount(
                    point, block, None, None,
                    f"counter moved from {previous.packets} to {read.packets} packets after "
                    f"{block.stable_from_s:.6f}: delay + jitter exceed period_s/2, use a longer period",
                )
            previous = read
            continue
        for missed in range(previous_block + 2, index, 2):
            gap = block_at(missed, period_s, epoch_s)
            out[missed] = BlockCount(
                point, gap, None, None,
                f"no counter read in the stable window [{gap.stable_from_s:.6f}, {gap.read_until_s:.6f})",
            )
        if index != previous_block + 2:
            out[index] = BlockCount(
                point, block, None, None,
                f"the read closing block {index - 2} is missing, so this block's count "
                f"cannot be separated from it",
            )
        else:
            packets = _counter_delta(previous.packets, read.packets, modulus)
            octets = _counter_delta(previous.bytes, read.bytes, modulus)
            if packets is None or octets is None:
                out[index] = BlockCount(
                    point, block, None, None,
                    f"counter went back from {previous.packets} to {read.packets} packets "
                    f"({previous.bytes} to {read.bytes} bytes): reset, not counted",
                )
            else:
                out[index] = BlockCount(point, block, packets, octets)
        previous, previous_block = read, index
    return list(out.values())


@dataclass(frozen=True)
class HopLoss:
    """Packets lost between two consecutive measurement points in one block.

    ``lost_packets`` is negative when the downstream point counted more
    (a measurement fault, kept visible rather than clipped); it and
    ``loss_pct`` are None when a count is missing or invalid, and
    ``loss_pct`` is None when the upstream point counted no packet.
    """

    upstream_point: str
    downstream_point: str
    lost_packets: int | None
    loss_pct: float | None
    upstream_packets: int | None = None


def hop_loss(upstream: str, downstream: str, sent: int | None, received: int | None) -> HopLoss:
    """The loss between two points from what each counted in one block (see :class:`HopLoss`).

    >>> hop_loss("r1-eth1:out", "r2-eth1:in", 200, 197).loss_pct
    1.5
    """
    if sent is None or received is None:
        return HopLoss(upstream, downstream, None, None, sent)
    lost = sent - received
    pct = 100.0 * lost / sent if sent > 0 else None
    return HopLoss(upstream, downstream, lost, pct, sent)


def _check_path(path_points: Sequence[str]) -> None:
    if len(path_points) < 2:
        raise TelemetryValueError(
            f"path_points={list(path_points)!r} must name at least 2 measurement points"
        )
    if len(set(path_points)) != len(path_points):
        raise TelemetryValueError(f"path_points={list(path_points)!r} must not repeat a point")


def per_hop_loss(path_points: Sequence[str], block_counts: Mapping[str, int | None]) -> list[HopLoss]:
    """Loss between each pair of consecutive points of a path, for one block.

    Parameters
    ----------
    path_points : sequence of str
        Measurement points in the order traffic crosses them.
    block_counts : mapping of str to int or None
        Packets each point counted in the block; None for an invalid count.

    Returns
    -------
    list of HopLoss
        One per consecutive pair, in path order.

    Raises
    ------
    TelemetryValueError
        If the path has fewer than 2 or repeated points, or a point has no entry.

    Examples
    --------
    >>> hops = per_hop_loss(["a-eth0:out", "b-eth0:in"], {"a-eth0:out": 200, "b-eth0:in": 190})
    >>> hops[0].lost_packets, hops[0].loss_pct
    (10, 5.0)
    """
    _check_path(path_points)
    missing = [p for p in path_points if p not in block_counts]
    if missing:
        raise TelemetryValueError(
            f"block_counts has no entry for point(s) {missing}; give None for an invalid count"
        )
    return [
        hop_loss(up, down, block_counts[up], block_counts[down])
        for up, down in zip(path_points, path_points[1:])
    ]


@dataclass(frozen=True)
class BlockLoss:
    """Per-hop loss along a path for one block, with its validity."""

    block: AltMarkBlock
    hops: tuple[HopLoss, ...]
    reasons: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.reasons

    @property
    def end_to_end(self) -> HopLoss:
        """Loss from the first to the last point of the path."""
        first, last = self.hops[0], self.hops[-1]
        received = None
        if last.upstream_packets is not None and last.lost_packets is not None:
            received = last.upstream_packets - last.lost_packets
        return hop_loss(first.upstream_point, last.downstream_point, first.upstream_packets, received)


def block_losses(path_points: Sequence[str], counts: Iterable[BlockCount]) -> list[BlockLoss]:
    """Per-hop loss along a path for every block some of its points counted.

    Counts from points not on the path are ignored. A block is invalid
    (its ``reasons`` say why) when a path point has no count for it or an
    invalid one; hops whose two ends are valid still carry numbers.

    Parameters
    ----------
    path_points : sequence of str
        Measurement points in traffic order.
    counts : iterable of BlockCount
        Typically the output of :func:`per_block_counts`.

    Returns
    -------
    list of BlockLoss
        Sorted by block index.

    Raises
    ------
    TelemetryValueError
        If the path has fewer than 2 or repeated points.

    Examples
    --------
    >>> b = block_at(4, 1.0)
    >>> counts = [BlockCount("r1-eth2:out", b, 50, 5000), BlockCount("r4-eth2:in", b, 48, 4800)]
    >>> [loss] = block_losses(["r1-eth2:out", "r4-eth2:in"], counts)
    >>> loss.valid, loss.end_to_end.lost_packets
    (True, 2)
    """
    _check_path(path_points)
    on_path = set(path_points)
    by_block: dict[int, dict[str, BlockCount]] = defaultdict(dict)
    blocks: dict[int, AltMarkBlock] = {}
    for count in counts:
        if count.point in on_path:
            by_block[count.block.index][count.point] = count
            blocks[count.block.index] = count.block
    losses = []
    for index in sorted(by_block):
        per_point = by_block[index]
        reasons = []
        packets: dict[str, int | None] = {}
        for point in path_points:
            count = per_point.get(point)
            if count is None:
                reasons.append(f"{point}: no count for block {index}")
                packets[point] = None
            else:
                if not count.valid:
                    reasons.append(f"{point}: {count.reason}")
                packets[point] = count.packets
        hops = per_hop_loss(path_points, packets)
        losses.append(BlockLoss(blocks[index], tuple(hops), tuple(reasons)))
    return losses


@dataclass(frozen=True)
class LossAttribution:
    """Where packets were lost: a ``link`` (``r1->r4``) or a ``node`` (``r1``)."""

    kind: str
    element: str
    upstream_point: str
    downstream_point: str
    lost_packets: int
    loss_pct: float | None


def locate_hop(upstream_point: str, downstream_point: str) -> tuple[str, str]:
    """Name the element between two measurement points.

    Two points on the same node (its ingress and egress interfaces)
    enclose the node; points on different nodes enclose the link between
    them (including any link-emulation element in the middle).

    Parameters
    ----------
    upstream_point, downstream_point : str
        Points named ``<node>-eth<N>:<in|out>``.

    Returns
    -------
    tuple of (str, str)
        ``("node", node)`` or ``("link", "<up>-><down>")``.

    Raises
    ------
    TelemetryValueError
        If a point name does not follow the naming plan.

    Examples
    --------
    >>> locate_hop("r1-eth1:in", "r1-eth2:out"), locate_hop("r1-eth2:out", "r4-eth2:in")
    (('node', 'r1'), ('link', 'r1->r4'))
    """
    up = MeasurementPoint.parse(upstream_point).node
    down = MeasurementPoint.parse(downstream_point).node
    if up == down:
        return ("node", up)
    return ("link", link_id(up, down))


def attribute_loss(hops: Iterable[HopLoss], min_lost_packets: int = 1) -> list[LossAttribution]:
    """The links and nodes that lost at least ``min_lost_packets`` packets.

    Parameters
    ----------
    hops : iterable of HopLoss
        Per-hop losses of one block (:func:`per_hop_loss`).
    min_lost_packets : int
        Threshold (>= 1); hops with missing or smaller losses are skipped.

    Returns
    -------
    list of LossAttribution
        In path order.

    Raises
    ------
    TelemetryValueError
        If ``min_lost_packets < 1`` or a point name does not follow the plan.

    Examples
    --------
    >>> counts = {"r1-eth1:in": 100, "r1-eth2:out": 99, "r4-eth2:in": 90}
    >>> [(a.kind, a.element, a.lost_packets) for a in attribute_loss(per_hop_loss(list(counts), counts))]
    [('node', 'r1', 1), ('link', 'r1->r4', 9)]
    """
    if not isinstance(min_lost_packets, int) or min_lost_packets < 1:
        raise TelemetryValueError(f"min_lost_packets={min_lost_packets!r} must be an int >= 1")
    found = []
    for hop in hops:
        if hop.lost_packets is None or hop.lost_packets < min_lost_packets:
            continue
        kind, element = locate_hop(hop.upstream_point, hop.downstream_point)
        found.append(
            LossAttribution(kind, element, hop.upstream_point, hop.downstream_point, hop.lost_packets, hop.loss_pct)
        )
    return found

