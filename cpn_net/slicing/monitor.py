"""Per-slice SLO monitoring: measured delay and loss of every admitted path against the slice's bounds.

Pure: the inputs are the admitted slices (``{name: Admission}``, see
:mod:`cpn_net.slicing.admission`), their intents (``{name: SliceSpec}``) and
one telemetry view as returned by ``TelemetryService.view()``
(:mod:`controllers.telemetry_service`); nothing here does I/O or reads a
clock, so the same inputs always give the same answer.

The view has one entry per *direction* of each WAN link (``"from"`` ->
``"to"``). A slice's demand ``a -> b`` travels its admitted path
``Admission.paths[(a, b)]``, and each link ``u -> v`` of that path is read
from the entry with ``from == u`` and ``to == v``; the reverse demand uses
the reverse entries, so asymmetric delay or loss shows on the right side.

Per path:

* ``delay_ms`` — the sum of the per-link medians of the IOAM one-way delay
  samples (``delay.delay_ms``). This estimates the path's median delay
  (exact if the per-link delays are constant); it is what ``max_latency_ms``
  is checked against.
* ``delay_p99_ms`` — the sum of the per-link 99th percentiles. The links'
  worst one per cent rarely coincide, so this is an *upper bound* on the
  path's p99, not an estimate of it; reported, never checked.
* ``loss_pct`` — the slice's own loss: ``100 * (1 - prod(1 - l_i / 100))``
  over the path's links, ``l_i`` the loss of the slice's mark
  (``Admission.mark``) on the link direction in its last closed
  alternate-marking block (``loss_by_mark[mark]``: the routers count each
  mark and colour; admission gives a mark to one slice per link, so that is
  the slice's packets). A link where the slice sent nothing in that block
  measured nothing (None).
* ``link_loss_pct`` — the same product over the loss of *all* traffic on
  each link direction (``loss``): what the slice's neighbours on the links see.

  In both, ``l_i`` is ``loss_pct``, else ``100 * lost / sent``; a negative
  reading (more packets counted downstream than upstream, a counting
  artefact) counts as 0 in the product, one above 100 as 100. A block with
  nothing sent measured nothing.

A value is None when any link of the path has no reading of that kind, or a
reading older than ``stale_s`` seconds (its ``age_s``), or one that is not a
finite number; a one-site path has no links and measures 0. Delays are
rounded to the microsecond (3 decimals), losses to 4 decimals, as in the
view, and the rounded values are compared with the bounds. A bound is broken
when the measurement is strictly above it (as in admission); a bound of None,
or a measurement of None, is no check (``ok`` None).

:class:`SloRecorder` accumulates such status snapshots over an experiment and
summarises them per slice for ``results.json``.

Examples
--------
>>> from cpn_net.model.topology import SliceSpec
>>> from cpn_net.slicing.admission import Admission
>>> from cpn_net.srv6.paths import Path
>>> adm = Admission("gold", 1, 10.0, {("a", "c"): Path(("a", "b", "c"), 2.0, 2, None),
...                                   ("c", "a"): Path(("c", "b", "a"), 2.0, 2, None)})
>>> spec = SliceSpec("gold", 1, ("a", "c"), ("u1-1", "u3-1"), ("a", "c"), 10.0, max_latency_ms=3.0)
>>> def entry(u, v, delay, loss, gold_loss):
...     return {"link": f"{u}{v}", "from": u, "to": v,
...             "delay": {"delay_ms": delay, "delay_p99_ms": delay + 0.5, "samples": 100, "age_s": 0.1},
...             "loss": {"sent": 1000, "lost": round(10 * loss), "loss_pct": loss, "age_s": 0.7},
...             "loss_by_mark": {"1": {"sent": 100, "lost": round(gold_loss), "loss_pct": gold_loss, "age_s": 0.7}}}
>>> view = {"period_s": 1.0, "now": 100.0, "links": [
...     entry("a", "b", 1.0, 0.0, 0.0), entry("b", "a", 1.0, 0.0, 0.0),
...     entry("b", "c", 1.5, 10.0, 1.0), entry("c", "b", 2.5, 0.0, 0.0)]}
>>> status = slo_status({"gold": adm}, {"gold": spec}, view)
>>> [(p["from"], p["to"], p["delay_ms"], p["delay_p99_ms"], p["loss_pct"], p["link_loss_pct"], p["delay_ok"])
...  for p in status["slices"]["gold"]["pairs"]]
[('a', 'c', 2.5, 3.5, 1.0, 10.0, True), ('c', 'a', 3.5, 4.5, 0.0, 0.0, False)]
>>> status["violations"]
[{'slice': 'gold', 'from': 'c', 'to': 'a', 'what': 'delay', 'measured': 3.5, 'bound': 3.0}]
>>> rec = SloRecorder()
>>> rec.record(100.0, status)
>>> rec.summary()["gold"]["violations"], rec.summary()["gold"]["within_slo_fraction"]
({'delay': 1, 'loss': 0}, 0.0)
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from cpn_net.slicing.errors import SlicingError

DEFAULT_STALE_S = 5.0
"""Readings older than this (seconds) count as missing: 5 loss blocks of 1 s, 50 IOAM probes."""

KINDS = ("delay", "loss")
_DELAY_DECIMALS = 3
_LOSS_DECIMALS = 4


def link_readings(telemetry_view: Mapping, *, stale_s: float | None = DEFAULT_STALE_S) -> dict:
    """Fresh per-direction readings of a telemetry view.

    Parameters
    ----------
    telemetry_view : mapping
        As returned by ``TelemetryService.view()``: ``{"links": [{"from",
        "to", "delay", "loss", ...}], ...}``. Only ``links`` is read.
    stale_s : float or None, optional
        Readings whose ``age_s`` is above this count as missing; None keeps
        every reading. A reading without ``age_s`` counts as fresh.

    Returns
    -------
    dict
        ``{(from site, to site): {"delay_ms", "delay_p99_ms", "loss_pct",
        "loss_by_mark"}}``, each a float or None (missing, stale or not a
        finite number), ``loss_by_mark`` ``{mark: float or None}`` for the
        fresh marks of the view's ``loss_by_mark``. When a direction appears
        twice, the first entry is used.

    Raises
    ------
    SlicingError
        If ``stale_s`` is negative or not a number, or ``links`` is not a list
        of entries with ``from`` and ``to``.

    Examples
    --------
    >>> view = {"links": [{"from": "a", "to": "b",
    ...                    "delay": {"delay_ms": 1.2, "delay_p99_ms": 1.9, "age_s": 9.0},
    ...                    "loss": {"sent": 200, "lost": 3, "loss_pct": 1.5, "age_s": 0.5},
    ...                    "loss_by_mark": {"2": {"sent": 50, "lost": 1, "loss_pct": 2.0, "age_s": 0.5}}},
    ...                   {"from": "b", "to": "a", "delay": None, "loss": {"sent": 0, "lost": 0, "loss_pct": None}}]}
    >>> link_readings(view)
    {('a', 'b'): {'delay_ms': None, 'delay_p99_ms': None, 'loss_pct': 1.5, 'loss_by_mark': {2: 2.0}},
     ('b', 'a'): {'delay_ms': None, 'delay_p99_ms': None, 'loss_pct': None, 'loss_by_mark': {}}}
    >>> link_readings(view, stale_s=None)[("a", "b")]
    {'delay_ms': 1.2, 'delay_p99_ms': 1.9, 'loss_pct': 1.5, 'loss_by_mark': {2: 2.0}}
    """
    stale_s = _check_stale(stale_s)
    links = telemetry_view.get("links") if isinstance(telemetry_view, Mapping) else None
    if links is None:
        links = []
    if not isinstance(links, (list, tuple)):
        raise SlicingError(f"telemetry view: 'links' must be a list of link entries, not {type(links).__name__}")
    out: dict = {}
    for index, item in enumerate(links):
        if not isinstance(item, Mapping) or "from" not in item or "to" not in item:
            raise SlicingError(f"telemetry view: links[{index}] = {item!r} needs 'from' and 'to' sites")
        key = (item["from"], item["to"])
        if key in out:
            continue
        delay = _fresh(item.get("delay"), stale_s)
        loss = _fresh(item.get("loss"), stale_s)
        by_mark = item.get("loss_by_mark")
        marks = {}
        for mark, reading in (by_mark.items() if isinstance(by_mark, Mapping) else ()):
            reading = _fresh(reading, stale_s)
            if reading is not None and str(mark).isdigit():
                marks[int(mark)] = _block_loss_pct(reading)
        out[key] = {"delay_ms": _number(delay.get("delay_ms")) if delay else None,
                    "delay_p99_ms": _number(delay.get("delay_p99_ms")) if delay else None,
                    "loss_pct": _block_loss_pct(loss) if loss else None,
                    "loss_by_mark": marks}
    return out


def slo_status(admissions: Mapping, specs: Mapping, telemetry_view: Mapping, *,
               stale_s: float | None = DEFAULT_STALE_S) -> dict:
    """Measured delay and loss of every admitted slice path against the slice's bounds.

    Parameters
    ----------
    admissions : mapping
        ``{slice name: Admission}``; every ordered pair of ``Admission.paths``
        is reported, in that mapping's order.
    specs : mapping
        ``{slice name: SliceSpec}`` giving ``max_latency_ms`` and
        ``max_loss_pct``; a slice missing here has no bounds.
    telemetry_view : mapping
        As returned by ``TelemetryService.view()`` (see :func:`link_readings`).
    stale_s : float or None, optional
        Readings older than this many seconds (``age_s``) count as missing;
        None keeps every reading.

    Returns
    -------
    dict
        ``{"slices": {name: {"pairs": [...], "violations": [...]}},
        "violations": [...]}``, slices in name order. Each pair is ``{"from",
        "to", "path"`` (list of sites), ``"delay_ms"`` (sum of per-link
        medians), ``"delay_p99_ms"`` (sum of per-link p99s: an upper bound on
        the path's p99), ``"loss_pct"`` (the slice's own: ``1 - prod(1 -
        l_i)`` in per cent over its mark's loss per link), ``"link_loss_pct"``
        (the same over all traffic on each link),
        ``"max_latency_ms", "max_loss_pct"`` (the bounds), ``"delay_ok",
        "loss_ok"}`` (bool, or None when there is no bound or no
        measurement). Each violation is ``{"slice", "from", "to", "what"``
        (``"delay"`` or ``"loss"``), ``"measured", "bound"}``; the top-level
        list holds all of them in slice, pair, delay-then-loss order.

    Raises
    ------
    SlicingError
        If ``stale_s`` is invalid or the view is malformed (see
        :func:`link_readings`).

    Examples
    --------
    A slice without bounds is measured but never violates:

    >>> from cpn_net.slicing.admission import Admission
    >>> from cpn_net.srv6.paths import Path
    >>> adm = Admission("best", 2, 1.0, {("a", "b"): Path(("a", "b"), 1.0, 1, None),
    ...                                  ("b", "a"): Path(("b", "a"), 1.0, 1, None)})
    >>> view = {"links": [{"from": "a", "to": "b", "delay": {"delay_ms": 1.25, "delay_p99_ms": 2.0, "age_s": 0.1},
    ...                    "loss": None}]}
    >>> out = slo_status({"best": adm}, {}, view)
    >>> out["slices"]["best"]["pairs"][0]
    {'from': 'a', 'to': 'b', 'path': ['a', 'b'], 'delay_ms': 1.25, 'delay_p99_ms': 2.0, 'loss_pct': None,
     'link_loss_pct': None, 'max_latency_ms': None, 'max_loss_pct': None, 'delay_ok': None, 'loss_ok': None}
    >>> out["slices"]["best"]["pairs"][1]["delay_ms"] is None, out["violations"]
    (True, [])
    """
    readings = link_readings(telemetry_view, stale_s=stale_s)
    slices: dict = {}
    every: list = []
    for name in sorted(admissions, key=str):
        admission = admissions[name]
        spec = specs.get(name)
        max_latency = _bound(spec, "max_latency_ms")
        max_loss = _bound(spec, "max_loss_pct")
        pairs, violations = [], []
        for (source, target), path in admission.paths.items():
            sites = list(path.sites)
            found = [readings.get(link) for link in zip(sites, sites[1:])]
            delay = _path_sum([r and r["delay_ms"] for r in found])
            p99 = _path_sum([r and r["delay_p99_ms"] for r in found])
            loss = _path_loss([r and r["loss_by_mark"].get(admission.mark) for r in found])
            link_loss = _path_loss([r and r["loss_pct"] for r in found])
            delay_ok = _within(delay, max_latency)
            loss_ok = _within(loss, max_loss)
            pairs.append({"from": source, "to": target, "path": sites,
                          "delay_ms": delay, "delay_p99_ms": p99, "loss_pct": loss, "link_loss_pct": link_loss,
                          "max_latency_ms": max_latency, "max_loss_pct": max_loss,
                          "delay_ok": delay_ok, "loss_ok": loss_ok})
            for what, ok, measured, bound in (("delay", delay_ok, delay, max_latency),
                                              ("loss", loss_ok, loss, max_loss)):
                if ok is False:
                    violations.append({"slice": name, "from": source, "to": target, "what": what,
                                       "measured": measured, "bound": bound})
        slices[name] = {"pairs": pairs, "violations": violations}
        every.extend(violations)
    return {"slices": slices, "violations": every}


class SloRecorder:
    """Accumulates :func:`slo_status` snapshots and summarises them per slice.

    Each :meth:`record` folds one snapshot into running counts (the snapshot
    itself is not kept, so later changes to it do not matter).

    Attributes
    ----------
    samples : int
        Snapshots recorded.

    Examples
    --------
    >>> def snap(delay, ok):
    ...     pair = {"from": "a", "to": "b", "path": ["a", "b"], "delay_ms": delay, "delay_p99_ms": None,
    ...             "loss_pct": 0.0, "max_latency_ms": 5.0, "max_loss_pct": None,
    ...             "delay_ok": ok, "loss_ok": None}
    ...     bad = [] if ok is not False else [{"slice": "s", "from": "a", "to": "b", "what": "delay",
    ...                                        "measured": delay, "bound": 5.0}]
    ...     return {"slices": {"s": {"pairs": [pair], "violations": bad}}, "violations": bad}
    >>> rec = SloRecorder()
    >>> for now, delay, ok in ((1.0, 4.0, True), (2.0, 6.5, False), (3.0, None, None), (4.0, 4.5, True)):
    ...     rec.record(now, snap(delay, ok))
    >>> rec.summary()["s"]
    {'samples': 4, 'first_at': 1.0, 'last_at': 4.0, 'violations': {'delay': 1, 'loss': 0},
     'violating_samples': 1, 'unknown_samples': 1, 'within_slo_samples': 2, 'within_slo_fraction': 0.5,
     'worst_delay_ms': 6.5, 'worst_delay_p99_ms': None, 'worst_loss_pct': 0.0}
    """

    def __init__(self) -> None:
        self.samples = 0
        self._slices: dict = {}

    def record(self, now: float, status: Mapping) -> None:
        """Fold in one snapshot taken at ``now`` (seconds, any clock).

        A slice's sample is *violating* when it has a violation, *unknown*
        when it has none but a bounded check had no measurement, and
        *within SLO* otherwise (a slice without bounds is always within).

        Parameters
        ----------
        now : float
        status : mapping
            As returned by :func:`slo_status`.

        Raises
        ------
        SlicingError
            If ``now`` is not a finite number or ``status`` has no ``slices`` mapping.
        """
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
            raise SlicingError(f"SLO snapshot time {now!r} must be a finite number of seconds")
        slices = status.get("slices") if isinstance(status, Mapping) else None
        if not isinstance(slices, Mapping):
            raise SlicingError("SLO snapshot needs a 'slices' mapping, as returned by slo_status()")
        now = float(now)
        for name, entry in slices.items():
            acc = self._slices.get(name)
            if acc is None:
                acc = self._slices[name] = {
                    "samples": 0, "first_at": now, "last_at": now,
                    "violations": dict.fromkeys(KINDS, 0), "violating_samples": 0, "unknown_samples": 0,
                    "within_slo_samples": 0, "worst_delay_ms": None, "worst_delay_p99_ms": None,
                    "worst_loss_pct": None}
            acc["samples"] += 1
            acc["first_at"] = min(acc["first_at"], now)
            acc["last_at"] = max(acc["last_at"], now)
            violations = list(entry.get("violations") or ())
            for violation in violations:
                what = violation.get("what")
                acc["violations"][what] = acc["violations"].get(what, 0) + 1
            pairs = list(entry.get("pairs") or ())
            oks = [p.get(f"{what}_ok") for p in pairs for what in KINDS]
            bounded_unknown = any(p.get(f"{what}_ok") is None and p.get(bound) is not None
                                  for p in pairs for what, bound in (("delay", "max_latency_ms"),
                                                                     ("loss", "max_loss_pct")))
            if violations or any(ok is False for ok in oks):
                acc["violating_samples"] += 1
            elif bounded_unknown:
                acc["unknown_samples"] += 1
            else:
                acc["within_slo_samples"] += 1
            for key, worst in (("delay_ms", "worst_delay_ms"), ("delay_p99_ms", "worst_delay_p99_ms"),
                               ("loss_pct", "worst_loss_pct")):
                for pair in pairs:
                    value = _number(pair.get(key))
                    if value is not None and (acc[worst] is None or value > acc[worst]):
                        acc[worst] = value
        self.samples += 1

    def summary(self) -> dict:
        """Per slice, in name order: what the recorded snapshots showed.

        Returns
        -------
        dict
            ``{name: {"samples", "first_at", "last_at", "violations":
            {"delay": n, "loss": n}, "violating_samples", "unknown_samples",
            "within_slo_samples", "within_slo_fraction", "worst_delay_ms",
            "worst_delay_p99_ms", "worst_loss_pct"}}``. ``samples`` counts the
            snapshots that held the slice; ``violations`` counts violation
            records (one per pair and snapshot); ``within_slo_fraction`` is
            ``within_slo_samples / samples``; the worst values are the largest
            measured over all pairs and snapshots, None if never measured.
            Plain JSON types only, ready for ``results.json``.
        """
        out = {}
        for name in sorted(self._slices, key=str):
            acc = self._slices[name]
            out[name] = {"samples": acc["samples"], "first_at": acc["first_at"], "last_at": acc["last_at"],
                         "violations": dict(acc["violations"]),
                         "violating_samples": acc["violating_samples"],
                         "unknown_samples": acc["unknown_samples"],
                         "within_slo_samples": acc["within_slo_samples"],
                         "within_slo_fraction": acc["within_slo_samples"] / acc["samples"],
                         "worst_delay_ms": acc["worst_delay_ms"],
                         "worst_delay_p99_ms": acc["worst_delay_p99_ms"],
                         "worst_loss_pct": acc["worst_loss_pct"]}
        return out


def _check_stale(stale_s: Any) -> float | None:
    if stale_s is None:
        return None
    if isinstance(stale_s, bool) or not isinstance(stale_s, (int, float)) or math.isnan(stale_s) or stale_s < 0:
        raise SlicingError(f"stale_s={stale_s!r} must be a number of seconds >= 0, or None for no limit")
    return float(stale_s)


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a finite real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _fresh(reading: Any, stale_s: float | None) -> Mapping | None:
    """The reading if it is a mapping no older than ``stale_s``; None otherwise."""
    if not isinstance(reading, Mapping):
        return None
    if stale_s is not None and "age_s" in reading and reading["age_s"] is not None:
        age = _number(reading["age_s"])
        if age is None or age > stale_s:
            return None
    return reading


def _block_loss_pct(loss: Mapping) -> float | None:
    """Loss in per cent of one alternate-marking block: ``loss_pct``, else ``100 * lost / sent``."""
    pct = _number(loss.get("loss_pct"))
    if pct is not None:
        return pct
    sent, lost = _number(loss.get("sent")), _number(loss.get("lost"))
    if sent is None or lost is None or sent <= 0:
        return None
    return round(100.0 * lost / sent, _LOSS_DECIMALS)


def _path_sum(values: list) -> float | None:
    if any(v is None for v in values):
        return None
    return round(math.fsum(values), _DELAY_DECIMALS)


def _path_loss(values: list) -> float | None:
    if any(v is None for v in values):
        return None
    delivered = 1.0
    for pct in values:
        delivered *= 1.0 - min(max(pct, 0.0), 100.0) / 100.0
    return round(100.0 * (1.0 - delivered), _LOSS_DECIMALS) + 0.0  # + 0.0: no -0.0


def _bound(spec: Any, name: str) -> float | None:
    value = getattr(spec, name, None) if spec is not None else None
    return None if value is None else float(value)


def _within(measured: float | None, bound: float | None) -> bool | None:
    if measured is None or bound is None:
        return None
    return measured <= bound
