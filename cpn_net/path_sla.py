"""Path SLAs judged from the controller's telemetry: per-hop loss and delay, end to end.

The controller's ``GET /telemetry`` view holds, per directed WAN link
(``r1->r2``), the *latest* alternate-marking block (RFC 9341 §3.1: packets
sent and received in one colour period) and the one-way delay of its IOAM
probes (RFC 9197 trace) over a sliding window. This module turns a series of
such views into an SLA verdict; it does no I/O and reads no clock.

* :class:`LossBlockCollector` keeps every block reading it sees in views
  polled more often than once a period, because a view shows only the last one.
* :func:`measure_path` sums a path's hops over the collected blocks: hop loss
  is ``sum(lost) / sum(sent)``; end-to-end loss composes the hops as
  independent losses, ``1 - prod(1 - hop loss)``. The end-to-end delay p99 is
  the *sum* of hop p99s: an upper bound on the path's p99 (percentiles do not
  add; the sum is what every hop at its worst would give), WAN hops only.
* :func:`evaluate_sla` compares a :class:`PathMeasurement` with a
  :class:`PathSla` and names the offending hops; :meth:`SlaVerdict.report`
  is the measured-versus-bound table a failed test prints.

A hop whose blocks carried no packet counts as 0 % loss and is marked
``no traffic``; a hop without a reading (counters read too late) or without
delay samples makes the corresponding SLA unprovable, which is a violation.

Examples
--------
>>> view = {"period_s": 1.0, "epoch": 100.0, "links": [
...     {"link": "r2->r3", "delay": {"delay_p99_ms": 10.4, "samples": 100, "window_s": 10.0},
...      "loss": {"block": 7, "sent": 500, "received": 490, "lost": 10}}]}
>>> collector = LossBlockCollector(first_block=7)
>>> collector.add(view)
>>> blocks = collector.blocks(1)
>>> m = measure_path("u2-1", "k3-1", ("centre", "west"), ("r2->r3",), blocks, view)
>>> round(m.loss_pct, 6), m.delay_p99_ms_bound
(2.0, 10.4)
>>> verdict = evaluate_sla(m, PathSla(loss_pct_below=0.1))
>>> verdict.ok, verdict.offenders
(False, {'r2->r3': ('loss over bound',)})
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

NO_TRAFFIC = "no traffic"
NO_READING = "no reading"
NO_SAMPLES = "no delay samples"


class SlaError(Exception):
    """Base class of the errors of :mod:`cpn_net.path_sla`."""


class SlaValueError(SlaError, ValueError):
    """An SLA bound or a telemetry view is unusable; the message names the value and the fix."""


# ------------------------------------------------------------------ SLA
@dataclass(frozen=True)
class PathSla:
    """Bounds a path must stay *below*: end-to-end loss (%) and delay p99 (ms).

    Examples
    --------
    >>> PathSla(loss_pct_below=0.1, delay_p99_ms_below=8).describe()
    'loss < 0.1 %, delay p99 < 8 ms'
    >>> PathSla()
    Traceback (most recent call last):
    ...
    cpn_net.path_sla.SlaValueError: SLA: no bound given; pass loss_pct_below=..., delay_p99_ms_below=... or both
    >>> PathSla(loss_pct_below=150)
    Traceback (most recent call last):
    ...
    cpn_net.path_sla.SlaValueError: SLA: loss_pct_below=150 must be a number in (0, 100], e.g. 0.1
    """

    loss_pct_below: float | None = None
    delay_p99_ms_below: float | None = None

    def __post_init__(self) -> None:
        if self.loss_pct_below is None and self.delay_p99_ms_below is None:
            raise SlaValueError("SLA: no bound given; pass loss_pct_below=..., delay_p99_ms_below=... or both")
        for key, value, high, expected in (("loss_pct_below", self.loss_pct_below, 100.0, "in (0, 100], e.g. 0.1"),
                                           ("delay_p99_ms_below", self.delay_p99_ms_below, math.inf, "> 0, e.g. 25")):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) \
                    or not 0 < value <= high:
                raise SlaValueError(f"SLA: {key}={value!r} must be a number {expected}")

    def describe(self) -> str:
        """The bounds in words, e.g. ``loss < 0.1 %, delay p99 < 8 ms``."""
        parts = []
        if self.loss_pct_below is not None:
            parts.append(f"loss < {_num(self.loss_pct_below)} %")
        if self.delay_p99_ms_below is not None:
            parts.append(f"delay p99 < {_num(self.delay_p99_ms_below)} ms")
        return ", ".join(parts)


# ---------------------------------------------------------- loss blocks
@dataclass(frozen=True)
class LossBlocks:
    """Alternate-marking readings of a set of blocks, per directed link.

    ``readings`` maps a link id to its readings (the view's ``loss`` dicts)
    in block order; ``blocks`` are the block indices.
    """

    blocks: tuple[int, ...]
    readings: Mapping[str, tuple[dict, ...]] = field(default_factory=dict)


def first_block_starting_at_or_after(view: Mapping, now: float) -> int | None:
    """Index of the first alternate-marking block that begins at or after ``now``.

    Block ``k`` spans ``[epoch + k*period_s, epoch + (k+1)*period_s)``; its
    counts reflect only what happened after ``now``. None while the
    controller has not started marking (``epoch`` is null).

    Examples
    --------
    >>> first_block_starting_at_or_after({"epoch": 100.0, "period_s": 1.0}, 103.2)
    4
    >>> first_block_starting_at_or_after({"epoch": 100.0, "period_s": 1.0}, 103.0)
    3
    >>> first_block_starting_at_or_after({"epoch": None, "period_s": 1.0}, 103.0) is None
    True
    """
    epoch, period_s = view.get("epoch"), view.get("period_s")
    if epoch is None:
        return None
    if not period_s or period_s <= 0:
        raise SlaValueError(f"telemetry view: period_s={period_s!r} must be > 0")
    return max(0, math.ceil((now - epoch) / period_s))


class LossBlockCollector:
    """Collects block readings from successive telemetry views.

    A view shows only each link's last block, so views must be polled more
    often than once a period; every reading of a block ``>= first_block`` is
    kept (the newest one wins if a block is seen twice).

    Parameters
    ----------
    first_block : int
        Blocks before it are ignored.

    Examples
    --------
    >>> c = LossBlockCollector(first_block=5)
    >>> for block in (4, 5, 6):
    ...     c.add({"links": [{"link": "r1->r2", "loss": {"block": block, "sent": 10, "lost": 0}}]})
    >>> c.count(), c.blocks(2).blocks, c.blocks(2).readings["r1->r2"][1]["block"]
    (2, (5, 6), 6)
    """

    def __init__(self, first_block: int) -> None:
        self.first_block = first_block
        self._by_block: dict[int, dict[str, dict]] = {}

    def add(self, view: Mapping) -> None:
        """Record the block readings of one ``GET /telemetry`` view."""
        for link in view.get("links", ()):
            loss = link.get("loss")
            if loss is None or loss.get("block") is None or loss["block"] < self.first_block:
                continue
            self._by_block.setdefault(loss["block"], {})[link["link"]] = dict(loss)

    def count(self) -> int:
        """How many distinct blocks have been read."""
        return len(self._by_block)

    def latest(self) -> int | None:
        """The newest block index seen, or None."""
        return max(self._by_block, default=None)

    def blocks(self, n: int) -> LossBlocks:
        """The first ``n`` blocks collected (fewer if fewer were read)."""
        chosen = sorted(self._by_block)[:n]
        links = sorted({name for block in chosen for name in self._by_block[block]})
        readings = {name: tuple(self._by_block[b][name] for b in chosen if name in self._by_block[b])
                    for name in links}
        return LossBlocks(tuple(chosen), readings)


# --------------------------------------------------------- measurement
@dataclass(frozen=True)
class HopMeasurement:
    """One directed WAN link of a path, over the chosen blocks.

    ``sent``/``lost`` are None when no block of the hop was read
    (``no reading``); ``delay_p99_ms`` is None without IOAM samples.

    Examples
    --------
    >>> HopMeasurement("r1->r2", sent=0, lost=0, unread_blocks=0, delay_p99_ms=5.1).loss_pct
    0.0
    >>> HopMeasurement("r1->r2", sent=400, lost=2, unread_blocks=0, delay_p99_ms=5.1).loss_pct
    0.5
    """

    link: str
    sent: int | None
    lost: int | None
    unread_blocks: int
    delay_p99_ms: float | None
    delay_samples: int = 0
    delay_window_s: float | None = None
    truth_dropped: int | None = None  # the link element's own drops in the same blocks, when it reported them

    @property
    def loss_pct(self) -> float | None:
        """``100 * lost / sent``; 0 without traffic; None without a reading."""
        if self.sent is None:
            return None
        return 0.0 if self.sent == 0 else 100.0 * self.lost / self.sent

    @property
    def loss_note(self) -> str | None:
        """``no reading``, ``no traffic`` or None."""
        if self.sent is None:
            return NO_READING
        return NO_TRAFFIC if self.sent == 0 else None

    def to_dict(self) -> dict:
        return {"hop": self.link, "delay_p99_ms": self.delay_p99_ms, "delay_samples": self.delay_samples,
                "delay_window_s": self.delay_window_s, "loss_pct": self.loss_pct, "lost": self.lost,
                "sent": self.sent, "unread_blocks": self.unread_blocks, "note": self.loss_note,
                "truth_dropped": self.truth_dropped}


@dataclass(frozen=True)
class PathMeasurement:
    """A path's hops over a set of alternate-marking blocks, and their end-to-end composition."""

    src: str
    dst: str
    sites: tuple[str, ...]
    hops: tuple[HopMeasurement, ...]
    blocks: tuple[int, ...]
    flow: Mapping | None = None  # the probe flow's own report (sent, received, ...), when one ran

    @property
    def loss_pct(self) -> float | None:
        """``100 * (1 - prod(1 - hop loss))``; None if a hop has no reading.

        Examples
        --------
        >>> hops = (HopMeasurement("a", 100, 10, 0, 1.0), HopMeasurement("b", 100, 10, 0, 1.0))
        >>> round(PathMeasurement("x", "y", ("s", "t", "u"), hops, (1,)).loss_pct, 6)
        19.0
        """
        delivered = 1.0
        for hop in self.hops:
            if hop.loss_pct is None:
                return None
            delivered *= 1.0 - hop.loss_pct / 100.0
        return 100.0 * (1.0 - delivered)

    @property
    def delay_p99_ms_bound(self) -> float | None:
        """Sum of hop delay p99s (an upper-bound estimate); None if a hop has no samples."""
        if any(hop.delay_p99_ms is None for hop in self.hops):
            return None
        return sum(hop.delay_p99_ms for hop in self.hops)

    def to_dict(self) -> dict:
        """Plain JSON-ready numbers for reports; missing values are None."""
        return {"src": self.src, "dst": self.dst, "sites": list(self.sites), "blocks": list(self.blocks),
                "hops": [hop.to_dict() for hop in self.hops], "loss_pct": self.loss_pct,
                "delay_p99_ms_bound": self.delay_p99_ms_bound,
                "delay_bound_note": "sum of hop p99s over WAN links: an upper-bound estimate",
                "flow": dict(self.flow) if self.flow is not None else None}


def measure_path(src: str, dst: str, sites: Sequence[str], links: Sequence[str], loss_blocks: LossBlocks,
                 view: Mapping, flow: Mapping | None = None) -> PathMeasurement:
    """Per-hop loss over ``loss_blocks`` and delay p99 from ``view`` for the path's ``links``.

    Parameters
    ----------
    src, dst : str
        Host names, for the report.
    sites : sequence of str
        The sites the path visits, for the report.
    links : sequence of str
        Directed link ids along the path, e.g. ``("r1->r2", "r2->r3")``.
    loss_blocks : LossBlocks
        From :class:`LossBlockCollector`.
    view : mapping
        A ``GET /telemetry`` view; its ``delay`` entries give the hop p99s.
    flow : mapping, optional
        The probe flow's report, carried into the result.

    Returns
    -------
    PathMeasurement

    Raises
    ------
    SlaValueError
        If a link of the path is not in the view.

    Examples
    --------
    >>> view = {"links": [{"link": "r1->r2", "delay": None, "loss": None}]}
    >>> measure_path("u1-1", "k2-1", ("east", "centre"), ("r1->r2",), LossBlocks((3,)), view).hops[0].loss_note
    'no reading'
    >>> measure_path("u1-1", "k3-1", ("east", "west"), ("r1->r3",), LossBlocks((3,)), view)
    Traceback (most recent call last):
    ...
    cpn_net.path_sla.SlaValueError: telemetry has no link 'r1->r3' (it has: r1->r2); is the path from the same
    topology the network runs?
    """
    by_link = {entry["link"]: entry for entry in view.get("links", ())}
    hops = []
    for link in links:
        if link not in by_link:
            raise SlaValueError(f"telemetry has no link {link!r} (it has: {', '.join(sorted(by_link))}); "
                                "is the path from the same topology the network runs?")
        read = [r for r in loss_blocks.readings.get(link, ())
                if r.get("sent") is not None and r.get("lost") is not None]
        unread = len(loss_blocks.blocks) - len(read)
        delay = by_link[link].get("delay") or {}
        truth = [r.get("truth_dropped") for r in read]
        hops.append(HopMeasurement(
            link=link, sent=sum(r["sent"] for r in read) if read else None,
            lost=sum(r["lost"] for r in read) if read else None, unread_blocks=unread,
            delay_p99_ms=delay.get("delay_p99_ms"), delay_samples=delay.get("samples", 0),
            delay_window_s=delay.get("window_s"),
            truth_dropped=sum(truth) if truth and None not in truth else None))
    return PathMeasurement(src, dst, tuple(sites), tuple(hops), loss_blocks.blocks, flow)


# ------------------------------------------------------------- verdict
@dataclass(frozen=True)
class SlaVerdict:
    """The outcome of :func:`evaluate_sla`: problems in words and offending hops with why."""

    sla: PathSla
    measurement: PathMeasurement
    problems: tuple[str, ...]
    offenders: Mapping[str, tuple[str, ...]]

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        """A measured-versus-bound table: one row per hop, then end to end; offenders marked ``<--``."""
        m, sla = self.measurement, self.sla
        blocks = (f"{m.blocks[0]}..{m.blocks[-1]}" if len(m.blocks) > 1 else
                  str(m.blocks[0]) if m.blocks else "none")
        flow = ""
        if m.flow:
            flow = (f"; probe flow {_num(m.flow.get('rate_pps'))} pps: sent {m.flow.get('sent')}, "
                    f"received {m.flow.get('received')}")
        head = (f"SLA {'met' if self.ok else 'VIOLATED'} on {m.src} -> {m.dst} ({sla.describe()}); "
                f"IGP path {' > '.join(m.sites)}; alternate-marking blocks {blocks}{flow}")
        delay_bound = "-" if sla.delay_p99_ms_below is None else f"< {_num(sla.delay_p99_ms_below)}"
        loss_bound = "-" if sla.loss_pct_below is None else f"< {_num(sla.loss_pct_below)}"
        rows = []
        for hop in m.hops:
            marks = self.offenders.get(hop.link, ())
            rows.append([hop.link, _delay_cell(hop.delay_p99_ms), delay_bound, _loss_cell(hop), loss_bound,
                         ("<-- " + "; ".join(marks)) if marks else "ok"])
        e2e_delay, e2e_loss = m.delay_p99_ms_bound, m.loss_pct
        rows.append(["end-to-end", "?" if e2e_delay is None else f"<= {_num(e2e_delay)} *", delay_bound,
                     "?" if e2e_loss is None else _num(e2e_loss), loss_bound,
                     "<-- VIOLATED" if self.problems else "ok"])
        table = _table(["hop", "delay p99 ms", "bound ms", "loss % (lost/sent)", "bound %", "verdict"], rows)
        lines = [head] + [f"  - {p}" for p in self.problems] + [table,
                 "* end-to-end delay p99: sum of hop p99s over WAN links, an upper-bound estimate; hop loss is "
                 "sum(lost)/sum(sent) over the blocks, end-to-end loss 1 - prod(1 - hop loss)"]
        return "\n".join(lines)


def evaluate_sla(measurement: PathMeasurement, sla: PathSla) -> SlaVerdict:
    """Judge a measurement against an SLA and name the offending hops.

    A hop offends when it alone reaches a bound (``loss over bound``,
    ``delay over bound``). When only the composition does, the hops that add
    loss (``loss adds up``) or the hop with the largest p99 (``largest
    delay``) are named. Unknown values (``no reading``, ``no delay samples``)
    violate the SLA they are needed for.

    Parameters
    ----------
    measurement : PathMeasurement
    sla : PathSla

    Returns
    -------
    SlaVerdict

    Examples
    --------
    >>> hops = (HopMeasurement("r1->r2", 600, 0, 0, 5.2), HopMeasurement("r2->r3", 600, 12, 0, 10.3))
    >>> m = PathMeasurement("u1-1", "k3-1", ("east", "centre", "west"), hops, (4, 5, 6))
    >>> v = evaluate_sla(m, PathSla(loss_pct_below=0.1, delay_p99_ms_below=25))
    >>> v.problems
    ('end-to-end loss 2 % is not below 0.1 %',)
    >>> evaluate_sla(m, PathSla(delay_p99_ms_below=12)).offenders
    {'r2->r3': ('largest delay',)}
    """
    problems: list[str] = []
    offenders: dict[str, list[str]] = {}

    def mark(link: str, why: str) -> None:
        offenders.setdefault(link, []).append(why)

    if sla.loss_pct_below is not None:
        bound = sla.loss_pct_below
        unknown = [hop.link for hop in measurement.hops if hop.loss_pct is None]
        if unknown:
            problems.append(f"loss unknown: no alternate-marking reading on {', '.join(unknown)}")
            for link in unknown:
                mark(link, NO_READING)
        elif measurement.loss_pct >= bound:
            problems.append(f"end-to-end loss {_num(measurement.loss_pct)} % is not below {_num(bound)} %")
            over = [hop for hop in measurement.hops if hop.loss_pct >= bound]
            for hop in over:
                mark(hop.link, "loss over bound")
            if not over:
                for hop in measurement.hops:
                    if hop.loss_pct > 0:
                        mark(hop.link, "loss adds up")
    if sla.delay_p99_ms_below is not None:
        bound = sla.delay_p99_ms_below
        unknown = [hop.link for hop in measurement.hops if hop.delay_p99_ms is None]
        if unknown:
            problems.append(f"delay unknown: no IOAM delay samples on {', '.join(unknown)}")
            for link in unknown:
                mark(link, NO_SAMPLES)
        elif measurement.delay_p99_ms_bound >= bound:
            problems.append(f"end-to-end delay p99 bound {_num(measurement.delay_p99_ms_bound)} ms (sum of hop "
                            f"p99s) is not below {_num(bound)} ms")
            over = [hop for hop in measurement.hops if hop.delay_p99_ms >= bound]
            for hop in over:
                mark(hop.link, "delay over bound")
            if not over:
                mark(max(measurement.hops, key=lambda hop: hop.delay_p99_ms).link, "largest delay")
    return SlaVerdict(sla, measurement, tuple(problems), {k: tuple(v) for k, v in offenders.items()})


# ---------------------------------------------------------- formatting
def _num(value) -> str:
    """A number with at most three decimals and no trailing zeros: ``2.146``, ``0``, ``25``."""
    if value is None:
        return "?"
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _delay_cell(delay_ms: float | None) -> str:
    return f"? ({NO_SAMPLES})" if delay_ms is None else _num(delay_ms)


def _loss_cell(hop: HopMeasurement) -> str:
    if hop.sent is None:
        return f"? ({NO_READING})"
    cell = f"{_num(hop.loss_pct)} ({hop.lost}/{hop.sent}"
    if hop.loss_note:
        cell += f", {hop.loss_note}"
    if hop.unread_blocks:
        cell += f", {hop.unread_blocks} block(s) unread"
    return cell + ")"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)
