"""Response-time and SLO summaries of load generator records, overall and per time bin.

Definitions (every request sent counts once, whatever happened to it):

* ``count`` = served + rejected + timeouts.
* Response-time statistics (mean, p50, p95, p99) are over *served*
  requests only: a rejection is fast but useless, a timeout has no time.
  Percentiles interpolate linearly between order statistics (Hyndman and
  Fan's type 7, numpy's default).
* An **SLO violation** is a served request slower than ``slo_ms``, a
  rejected request, or a timeout: none of them got an answer in time.
  ``slo_violation_rate`` = violations / count.
* Time bins are by *send* time, ``bin_s`` wide from ``start_ns`` (the
  run's start by default the first send), so a timeline shows what
  happened to the requests sent in each bin.

Pure: no I/O.

Examples
--------
>>> requests = {"send_ns": [0, 10**9, 2 * 10**9], "status": ["served", "rejected", "timeout"],
...             "response_ms": [12.0, 1.0, None], "instance": ["k1-1", "k2-1", None]}
>>> s = summarise(requests, slo_ms=50)
>>> s.count, s.served, s.rejected, s.timeouts, s.mean_ms, s.slo_violation_rate
(3, 1, 1, 1, 12.0, 0.6666666666666666)
>>> s.per_instance
{'k1-1': {'served': 1, 'rejected': 0}, 'k2-1': {'served': 0, 'rejected': 1}}
>>> s.bins.requests, s.bins.timeouts
((1, 1, 1), (0, 0, 1))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from cpn_net.compute.errors import ComputeConfigError, ComputeRecordError

STATUSES = ("served", "rejected", "timeout")
NS_PER_S = 1_000_000_000
RECORD_SCHEMA = 1


@dataclass(frozen=True)
class BinSeries:
    """Per-bin series for timelines; entry ``i`` covers send times ``[t_s[i], t_s[i] + bin_s)``.

    ``mean_ms`` and ``p95_ms`` are None for a bin with nothing served;
    ``slo_violation_rate`` is None for a bin with no request. ``instances``
    maps each instance to its served requests per bin.
    """

    bin_s: float
    start_ns: int
    t_s: tuple[float, ...]
    requests: tuple[int, ...]
    served: tuple[int, ...]
    rejected: tuple[int, ...]
    timeouts: tuple[int, ...]
    mean_ms: tuple[float | None, ...]
    p95_ms: tuple[float | None, ...]
    slo_violation_rate: tuple[float | None, ...]
    instances: Mapping[str, tuple[int, ...]]


@dataclass(frozen=True)
class ResponseSummary:
    """Summary of one run (see the module notes for every definition)."""

    count: int
    served: int
    rejected: int
    timeouts: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    slo_ms: float
    slo_violations: int
    slo_violation_rate: float | None
    per_instance: Mapping[str, Mapping[str, int]]
    bins: BinSeries

    def to_dict(self) -> dict:
        """Plain JSON-ready data (tuples become lists)."""
        return asdict(self)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of ascending values, linear interpolation (type 7).

    Raises
    ------
    ComputeConfigError
        If ``q`` is outside 0..100.

    Examples
    --------
    >>> percentile([1.0, 2.0, 3.0, 4.0], 50), percentile([1.0, 2.0, 3.0, 4.0], 95)
    (2.5, 3.85)
    >>> percentile([], 50) is None
    True
    """
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 <= q <= 100:
        raise ComputeConfigError(f"percentile: q={q!r} must be a number in 0..100")
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def summarise(requests: Mapping[str, Sequence], slo_ms: float, bin_s: float = 1.0,
              start_ns: int | None = None) -> ResponseSummary:
    """Summarise a load generator's columnar ``requests``.

    Parameters
    ----------
    requests : mapping of column name to sequence
        At least ``send_ns``, ``status``, ``response_ms`` and ``instance``,
        all the same length (other columns are ignored).
    slo_ms : float
        Response-time objective, > 0.
    bin_s : float
        Width of the time bins, > 0.
    start_ns : int, optional
        Where bin 0 starts (the record's ``started_ns``); default the
        earliest send.

    Returns
    -------
    ResponseSummary

    Raises
    ------
    ComputeConfigError
        If ``slo_ms``, ``bin_s`` or ``start_ns`` is out of range.
    ComputeRecordError
        If a column is missing, the lengths differ, or a row is inconsistent
        (unknown status, a served request without a time, ...).

    Examples
    --------
    >>> summarise({"send_ns": [], "status": [], "response_ms": [], "instance": []}, 100).count
    0
    """
    for key, value in (("slo_ms", slo_ms), ("bin_s", bin_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value <= 0:
            raise ComputeConfigError(f"summarise: {key}={value!r} must be a finite number > 0")
    send_ns, status, response_ms, instance = _columns(requests)
    if start_ns is None:
        start_ns = min(send_ns, default=0)
    if send_ns and min(send_ns) < start_ns:
        raise ComputeConfigError(f"summarise: start_ns={start_ns} is after the first send "
                                 f"({min(send_ns)}); pass the run's start or leave it out")
    bin_ns = bin_s * NS_PER_S
    bins_total = (int((max(send_ns) - start_ns) // bin_ns) + 1) if send_ns else 0
    per_bin: list[list[int]] = [[] for _ in range(bins_total)]
    for row, sent in enumerate(send_ns):
        per_bin[int((sent - start_ns) // bin_ns)].append(row)

    def stats(rows: Sequence[int]) -> dict:
        times = sorted(response_ms[r] for r in rows if status[r] == "served")
        rejected = sum(status[r] == "rejected" for r in rows)
        timeouts = sum(status[r] == "timeout" for r in rows)
        violations = rejected + timeouts + sum(t > slo_ms for t in times)
        return {"count": len(rows), "served": len(times), "rejected": rejected, "timeouts": timeouts,
                "times": times, "violations": violations,
                "mean_ms": sum(times) / len(times) if times else None,
                "rate": violations / len(rows) if rows else None}

    overall = stats(range(len(send_ns)))
    binned = [stats(rows) for rows in per_bin]
    per_instance: dict[str, dict[str, int]] = {}
    series: dict[str, list[int]] = {}
    for row, name in enumerate(instance):
        if name is None:
            continue
        counts = per_instance.setdefault(name, {"served": 0, "rejected": 0})
        counts[status[row]] += 1
        if status[row] == "served":
            series.setdefault(name, [0] * bins_total)[int((send_ns[row] - start_ns) // bin_ns)] += 1
    bins = BinSeries(
        bin_s=float(bin_s), start_ns=start_ns, t_s=tuple(i * float(bin_s) for i in range(bins_total)),
        requests=tuple(b["count"] for b in binned), served=tuple(b["served"] for b in binned),
        rejected=tuple(b["rejected"] for b in binned), timeouts=tuple(b["timeouts"] for b in binned),
        mean_ms=tuple(b["mean_ms"] for b in binned),
        p95_ms=tuple(percentile(b["times"], 95) for b in binned),
        slo_violation_rate=tuple(b["rate"] for b in binned),
        instances={name: tuple(counts) for name, counts in sorted(series.items())})
    times = overall["times"]
    return ResponseSummary(
        count=overall["count"], served=overall["served"], rejected=overall["rejected"],
        timeouts=overall["timeouts"], mean_ms=overall["mean_ms"], p50_ms=percentile(times, 50),
        p95_ms=percentile(times, 95), p99_ms=percentile(times, 99), slo_ms=float(slo_ms),
        slo_violations=overall["violations"], slo_violation_rate=overall["rate"],
        per_instance=dict(sorted(per_instance.items())), bins=bins)


def summarise_record(record: Mapping, slo_ms: float, bin_s: float = 1.0) -> ResponseSummary:
    """Summarise a whole loadgen record, bins starting at its ``started_ns``.

    Raises
    ------
    ComputeRecordError
        If the record is not a loadgen record of a known schema.

    Examples
    --------
    >>> summarise_record({"schema": 9, "role": "loadgen"}, 100)
    Traceback (most recent call last):
    ...
    cpn_net.compute.errors.ComputeRecordError: record: schema=9 role='loadgen' is not a loadgen record of schema 1; ...
    """
    if record.get("schema") != RECORD_SCHEMA or record.get("role") != "loadgen" \
            or not isinstance(record.get("requests"), Mapping):
        raise ComputeRecordError(f"record: schema={record.get('schema')!r} role={record.get('role')!r} is not "
                                 f"a loadgen record of schema {RECORD_SCHEMA}; upgrade cpn_net or check the file")
    return summarise(record["requests"], slo_ms, bin_s, record.get("started_ns"))


def _columns(requests: Mapping[str, Sequence]) -> tuple[Sequence, Sequence, Sequence, Sequence]:
    keys = ("send_ns", "status", "response_ms", "instance")
    missing = [key for key in keys if key not in requests]
    if missing:
        raise ComputeRecordError(f"requests: missing column {', '.join(missing)}; a loadgen record's "
                                 f"requests have {', '.join(keys)}")
    columns = [requests[key] for key in keys]
    lengths = {key: len(column) for key, column in zip(keys, columns)}
    if len(set(lengths.values())) > 1:
        raise ComputeRecordError(f"requests: columns differ in length {lengths}; each needs one entry "
                                 "per request")
    send_ns, status, response_ms, instance = columns
    for row in range(len(send_ns)):
        if isinstance(send_ns[row], bool) or not isinstance(send_ns[row], int):
            raise ComputeRecordError(f"requests row {row}: send_ns={send_ns[row]!r} must be an integer")
        if status[row] not in STATUSES:
            raise ComputeRecordError(f"requests row {row}: status={status[row]!r} must be one of "
                                     f"{', '.join(STATUSES)}")
        answered = status[row] != "timeout"
        time_ok = isinstance(response_ms[row], (int, float)) and not isinstance(response_ms[row], bool) \
            and math.isfinite(response_ms[row]) and response_ms[row] >= 0
        if answered and not (time_ok and isinstance(instance[row], str)):
            raise ComputeRecordError(f"requests row {row}: a {status[row]} request needs response_ms >= 0 "
                                     f"and an instance, got {response_ms[row]!r} and {instance[row]!r}")
        if not answered and (response_ms[row] is not None or instance[row] is not None):
            raise ComputeRecordError(f"requests row {row}: a timeout must have null response_ms and "
                                     f"instance, got {response_ms[row]!r} and {instance[row]!r}")
    return send_ns, status, response_ms, instance
