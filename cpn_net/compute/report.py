"""The metrics agent's report: CATS Level 0 compute metrics as one JSON datagram.

Every period each compute service sends one report to the controller's
Unix datagram socket. The fields (schema 1):

=====================  =================================================================
key                    meaning
=====================  =================================================================
schema                 :data:`REPORT_SCHEMA`
instance, service      who reports (``k<site>-<n>``, the service name)
reported_at            ``time.time()`` when sent, seconds
period_s               the reporting period
utilisation            busy worker-time / (workers * period) over the last period,
                       background jobs included, in [0, 1]
queue_len              jobs waiting at report time (requests and background)
capacity_rps           workers * 1000 / service_time_ms
workers                parallel servers
service_time_ms        mean service time
background_load_pct    share of the capacity taken by background load
price_cny_per_hour     or null
carbon_g_per_kwh       or null
served, rejected       client requests, since start or the last reset
background_jobs        background jobs completed, since start or the last reset
arrival_rps            client requests received per second over the last period
=====================  =================================================================

The first eight after ``instance`` are CATS Level 0 metrics
(draft-ietf-cats-metric-definition); :func:`to_compute_metrics` turns a
report into the controller's :class:`~cpn_net.steering.metrics.ComputeMetrics`.

Examples
--------
>>> report = build_report("k3-1", "infer", reported_at=100.0, period_s=1.0, utilisation=0.25,
...                       queue_len=0, workers=4, service_time_ms=10.0, background_load_pct=0.0,
...                       served=90, rejected=0, background_jobs=0, arrival_rps=100.0)
>>> to_compute_metrics(parse_report(encode_report(report))).capacity_rps
400.0
"""

from __future__ import annotations

import json
import math

from cpn_net.compute.errors import ComputeRecordError
from cpn_net.steering.errors import MetricsError
from cpn_net.steering.metrics import ComputeMetrics

REPORT_SCHEMA = 1
_NUMBERS = ("reported_at", "period_s", "utilisation", "capacity_rps", "service_time_ms",
            "background_load_pct", "arrival_rps")
_COUNTS = ("queue_len", "workers", "served", "rejected", "background_jobs")
_OPTIONAL = ("price_cny_per_hour", "carbon_g_per_kwh")
REPORT_KEYS = ("schema", "instance", "service") + _NUMBERS + _COUNTS + _OPTIONAL


def build_report(instance: str, service: str, *, reported_at: float, period_s: float,
                 utilisation: float, queue_len: int, workers: int, service_time_ms: float,
                 background_load_pct: float, served: int, rejected: int, background_jobs: int,
                 arrival_rps: float, price_cny_per_hour: float | None = None,
                 carbon_g_per_kwh: float | None = None) -> dict:
    """One report as a dictionary (keys as in the module table).

    ``utilisation`` is clamped into [0, 1] (rounding of the busy-time
    integral can stray a hair outside) and ``capacity_rps`` derived.

    Returns
    -------
    dict

    Examples
    --------
    >>> r = build_report("k1-1", "infer", reported_at=1.0, period_s=1.0, utilisation=1.0000001,
    ...                  queue_len=3, workers=2, service_time_ms=20.0, background_load_pct=50.0,
    ...                  served=10, rejected=1, background_jobs=50, arrival_rps=11.0)
    >>> r["utilisation"], r["capacity_rps"], r["price_cny_per_hour"]
    (1.0, 100.0, None)
    """
    return {
        "schema": REPORT_SCHEMA, "instance": instance, "service": service,
        "reported_at": reported_at, "period_s": period_s,
        "utilisation": min(1.0, max(0.0, utilisation)), "queue_len": queue_len,
        "capacity_rps": workers * 1000.0 / service_time_ms, "workers": workers,
        "service_time_ms": service_time_ms, "background_load_pct": background_load_pct,
        "price_cny_per_hour": price_cny_per_hour, "carbon_g_per_kwh": carbon_g_per_kwh,
        "served": served, "rejected": rejected, "background_jobs": background_jobs,
        "arrival_rps": arrival_rps,
    }


def encode_report(report: dict) -> bytes:
    """The report as the datagram the agent sends (compact JSON, UTF-8)."""
    return json.dumps(report, separators=(",", ":")).encode("utf-8")


def parse_report(datagram: bytes) -> dict:
    """Decode and check one report datagram.

    Returns
    -------
    dict
        The report, every key of the module table present and typed.

    Raises
    ------
    ComputeRecordError
        On bad JSON, a newer schema, a missing key or a wrongly typed value.

    Examples
    --------
    >>> parse_report(b'{"schema": 2}')
    Traceback (most recent call last):
    ...
    cpn_net.compute.errors.ComputeRecordError: metrics report: schema=2 is not supported (this reader knows 1); ...
    """
    try:
        report = json.loads(datagram)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ComputeRecordError(f"metrics report: not JSON ({err})") from err
    if not isinstance(report, dict):
        raise ComputeRecordError(f"metrics report: {report!r} must be a JSON object")
    if report.get("schema") != REPORT_SCHEMA:
        raise ComputeRecordError(f"metrics report: schema={report.get('schema')!r} is not supported "
                                 f"(this reader knows {REPORT_SCHEMA}); upgrade cpn_net")
    missing = [key for key in REPORT_KEYS if key not in report]
    if missing:
        raise ComputeRecordError(f"metrics report from {report.get('instance')!r}: missing "
                                 f"{', '.join(missing)}")
    for key in ("instance", "service"):
        if not isinstance(report[key], str) or not report[key]:
            raise ComputeRecordError(f"metrics report: {key}={report[key]!r} must be a non-empty string")
    for key in _NUMBERS + _OPTIONAL:
        value = report[key]
        if value is None and key in _OPTIONAL:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ComputeRecordError(f"metrics report from {report['instance']}: {key}={value!r} "
                                     "must be a finite number")
    for key in _COUNTS:
        value = report[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ComputeRecordError(f"metrics report from {report['instance']}: {key}={value!r} "
                                     "must be an integer >= 0")
    return report


def to_compute_metrics(report: dict, reported_at_s: float | None = None) -> ComputeMetrics:
    """The controller's Level 0 record of a (parsed) report.

    Parameters
    ----------
    report : dict
        From :func:`parse_report`.
    reported_at_s : float, optional
        Time to stamp it with, if the controller prefers its own clock
        (e.g. receipt time); default the agent's ``reported_at``.

    Returns
    -------
    ComputeMetrics

    Raises
    ------
    ComputeRecordError
        If a value is out of the range ComputeMetrics accepts.
    """
    try:
        return ComputeMetrics(
            instance=report["instance"],
            reported_at_s=report["reported_at"] if reported_at_s is None else reported_at_s,
            utilisation=report["utilisation"], queue_len=report["queue_len"],
            capacity_rps=report["capacity_rps"], workers=report["workers"],
            service_time_ms=report["service_time_ms"],
            price_cny_per_hour=report["price_cny_per_hour"],
            carbon_g_per_kwh=report["carbon_g_per_kwh"])
    except MetricsError as err:
        raise ComputeRecordError(f"metrics report: {err}") from err
