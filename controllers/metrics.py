"""Prometheus metrics of the controller: ``GET /metrics`` in the text exposition format.

The gauges are read from the northbound's own views at each scrape (a custom
collector, the way the Prometheus documentation asks exporters of another
system's state to work), so a scrape and ``GET /telemetry`` taken at the same
moment agree value for value:

==============================  ==================================  ==========================================
metric                          labels                              from
==============================  ==================================  ==========================================
cpn_link_delay_ms               link, direction                     telemetry: IOAM one-way delay, median
cpn_link_delay_p99_ms           link, direction                     telemetry: p99 of the same window
cpn_link_jitter_ms              link, direction                     telemetry
cpn_link_loss_ratio             link, direction                     telemetry: latest alternate-marking block
cpn_link_configured_delay_ms    link, direction                     the link element's setting (ground truth)
cpn_link_configured_loss_ratio  link, direction                     the link element's setting (ground truth)
cpn_link_up                     link, direction                     1, or 0 when the controller saw carrier
                                                                    lost or the element is cut
cpn_link_throughput_mbps        link, direction                     the map feed: upstream router's tx bytes
cpn_instance_load_ratio         instance, site, service             steering: the agent's utilisation
cpn_instance_queue_length       instance, site, service             steering
cpn_instance_healthy            instance, site, service             steering
cpn_slice_slo_ok                slice                               slice status: 1 no violation, 0 violated
                                                                    (absent until measured)
cpn_steering_share              site, service, instance             steering: share of new flows (0..1)
cpn_policies                    (none)                              SR policies installed
cpn_decision_seconds            decision                            histogram, timed in the controller
==============================  ==================================  ==========================================

``link`` is ``a~b`` in the topology's order (the map's ``data-link``), ``direction``
``from->to`` by site names. A value with no measurement yet is left out, not 0.

Examples
--------
>>> from prometheus_client.parser import text_string_to_metric_families
>>> class Api:
...     def get_telemetry(self):
...         return {"links": [{"link": "r1->r2", "from": "a", "to": "b", "delay": {"delay_ms": 5.1},
...                            "loss": {"loss_pct": 2.0, "configured_down": False}, "ground_truth": {}}]}
...     def topology(self):
...         return {"links": [{"a": "a", "b": "b"}]}
>>> text = exposition(Api()).decode()
>>> families = {f.name: f for f in text_string_to_metric_families(text)}
>>> [(sorted(s.labels.items()), s.value) for s in families["cpn_link_loss_ratio"].samples]
[([('direction', 'a->b'), ('link', 'a~b')], 0.02)]
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Iterator, Mapping

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from controllers.northbound.errors import ApiError

#: Seconds: a steering round takes ~1 ms on the tiny network, ~10-50 ms on the flagship.
DECISION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: How long the controller takes to decide, by kind of decision; see :func:`time_decisions`.
DECISION_SECONDS = Histogram("cpn_decision_seconds", "Time the controller took for one decision, by kind "
                             "(steering: one selector round over every client site and service, with the "
                             "data-plane writes of changed choices)", ["decision"], buckets=DECISION_BUCKETS,
                             registry=None)


def time_decisions(service: Any, method: str = "decide_once", decision: str = "steering") -> None:
    """Observe every call of ``service.<method>`` in :data:`DECISION_SECONDS` under ``decision``.

    The instance's method is wrapped (its class is untouched), so the service's
    own loop and the northbound's policy switch are timed alike.

    Examples
    --------
    >>> class Service:
    ...     def decide_once(self):
    ...         return ["changed"]
    >>> service = Service()
    >>> time_decisions(service, decision="doctest")
    >>> service.decide_once()
    ['changed']
    >>> DECISION_SECONDS.labels("doctest")._sum.get() >= 0
    True
    """
    original = getattr(service, method)
    histogram = DECISION_SECONDS.labels(decision)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            histogram.observe(time.perf_counter() - started)

    setattr(service, method, timed)


class NorthboundCollector(Collector):
    """The gauges above, read from a :class:`~controllers.northbound.rest.NorthboundApi` at each scrape.

    Parameters
    ----------
    api : NorthboundApi
    throughput : callable, optional
        ``throughput() -> {"a->b": Mbit/s}`` (the map feed's); none: no throughput gauge.
    """

    def __init__(self, api: Any, throughput: Callable[[], Mapping[str, float]] | None = None) -> None:
        self.api = api
        self.throughput = throughput

    def _call(self, method: str) -> Any:
        call = getattr(self.api, method, None)
        if call is None:
            return None
        try:
            return call()
        except ApiError:
            return None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._links()
        yield from self._steering()
        yield from self._slices()
        policies = self._call("list_policies")
        if policies is not None:
            yield GaugeMetricFamily("cpn_policies", "SR policies installed", value=len(policies))

    def _links(self) -> Iterator[GaugeMetricFamily]:
        labels = ["link", "direction"]
        families = {name: GaugeMetricFamily(name, text, labels=labels) for name, text in (
            ("cpn_link_delay_ms", "One-way delay of a link direction, IOAM, median of the telemetry window (ms)"),
            ("cpn_link_delay_p99_ms", "99th percentile of the same window (ms)"),
            ("cpn_link_jitter_ms", "Mean difference of consecutive one-way delays (ms)"),
            ("cpn_link_loss_ratio", "Loss of the latest alternate-marking block of a link direction (0..1)"),
            ("cpn_link_configured_delay_ms", "Delay the link element is set to: the ground truth (ms)"),
            ("cpn_link_configured_loss_ratio", "Loss the link element is set to: the ground truth (0..1)"),
            ("cpn_link_up", "1 while the link is up; 0 when the controller saw carrier lost or the element is cut"),
            ("cpn_link_throughput_mbps", "Traffic entering a link direction at its upstream router (Mbit/s)"))}
        telemetry = self._call("get_telemetry") or {}
        topology = self._call("topology") or {}
        status = self._call("status") or {}
        down = set(status.get("links_down") or [])
        ids = {}
        for link in topology.get("links") or []:
            ids[frozenset((link["a"], link["b"]))] = f"{link['a']}~{link['b']}"
        throughput = self.throughput() if self.throughput is not None else {}
        for reading in telemetry.get("links") or []:
            src, dst = reading.get("from"), reading.get("to")
            values = [ids.get(frozenset((src, dst)), f"{src}~{dst}"), f"{src}->{dst}"]
            delay = reading.get("delay") or {}
            loss = reading.get("loss") or {}
            truth = reading.get("ground_truth") or {}
            for family, value, scale in (("cpn_link_delay_ms", delay.get("delay_ms"), 1),
                                         ("cpn_link_delay_p99_ms", delay.get("delay_p99_ms"), 1),
                                         ("cpn_link_jitter_ms", delay.get("jitter_ms"), 1),
                                         ("cpn_link_loss_ratio", loss.get("loss_pct"), 0.01),
                                         ("cpn_link_configured_delay_ms",
                                          _given(loss.get("configured_delay_ms"), truth.get("delay_ms")), 1),
                                         ("cpn_link_configured_loss_ratio",
                                          _given(loss.get("configured_loss_pct"), truth.get("loss_pct")), 0.01),
                                         ("cpn_link_throughput_mbps", throughput.get(f"{src}->{dst}"), 1)):
                if value is not None:
                    families[family].add_metric(values, value * scale)
            is_down = "-".join(sorted((src, dst))) in down or bool(loss.get("configured_down"))
            families["cpn_link_up"].add_metric(values, 0.0 if is_down else 1.0)
        yield from families.values()

    def _steering(self) -> Iterator[GaugeMetricFamily]:
        steering = self._call("get_steering")
        if steering is None:
            return
        labels = ["instance", "site", "service"]
        load = GaugeMetricFamily("cpn_instance_load_ratio", "Utilisation a service instance last reported (0..1)",
                                 labels=labels)
        queue = GaugeMetricFamily("cpn_instance_queue_length", "Requests waiting at a service instance",
                                  labels=labels)
        healthy = GaugeMetricFamily("cpn_instance_healthy", "1 while the instance reports in time", labels=labels)
        for instance in steering.get("instances") or []:
            values = [str(instance.get("instance")), str(instance.get("site")), str(instance.get("service"))]
            if instance.get("utilisation") is not None:
                load.add_metric(values, float(instance["utilisation"]))
            if instance.get("queue_len") is not None:
                queue.add_metric(values, float(instance["queue_len"]))
            if instance.get("healthy") is not None:
                healthy.add_metric(values, 1.0 if instance["healthy"] else 0.0)
        share = GaugeMetricFamily("cpn_steering_share", "Share of a client site's new flows of a service sent to "
                                  "an instance (0..1)", labels=["site", "service", "instance"])
        for entry in steering.get("preferred") or []:
            split = entry.get("split") or ([[entry["instance"], 100]] if entry.get("instance") else [])
            for instance, percent in split:
                share.add_metric([str(entry.get("site")), str(entry.get("service")), str(instance)],
                                 float(percent) / 100.0)
        yield from (load, queue, healthy, share)

    def _slices(self) -> Iterator[GaugeMetricFamily]:
        status = self._call("slice_status")
        if status is None:
            return
        family = GaugeMetricFamily("cpn_slice_slo_ok", "1 while an admitted slice meets its latency and loss "
                                   "bounds on every path, 0 while one is violated", labels=["slice"])
        for name, entry in sorted((status.get("slices") or {}).items()):
            slo = entry.get("slo") or {}
            pairs = slo.get("pairs") or []
            measured = any(p.get("delay_ms") is not None or p.get("loss_pct") is not None for p in pairs)
            if entry.get("state", "admitted") == "admitted" and (measured or slo.get("violations")):
                family.add_metric([name], 0.0 if slo.get("violations") else 1.0)
        yield family


def _given(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def registry(api: Any, throughput: Callable[[], Mapping[str, float]] | None = None) -> CollectorRegistry:
    """A registry holding the api's gauges and :data:`DECISION_SECONDS`."""
    found = CollectorRegistry(auto_describe=False)
    found.register(NorthboundCollector(api, throughput))
    found.register(DECISION_SECONDS)
    return found


def exposition(api: Any, throughput: Callable[[], Mapping[str, float]] | None = None) -> bytes:
    """The text format (version 0.0.4) of :func:`registry`; see :data:`CONTENT_TYPE`."""
    return generate_latest(registry(api, throughput))


#: The media type of :func:`exposition`: the classic text format every Prometheus reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def answer(api: Any, feed: Any = None) -> "Raw":
    """``GET /metrics``: :func:`exposition` of ``api``, with the map ``feed``'s throughput when it runs."""
    from controllers.northbound.answers import Raw

    throughput = (lambda: dict(feed.throughput)) if feed is not None else None
    return Raw(exposition(api, throughput), CONTENT_TYPE)
