"""The map's live feed: one thread polls the northbound's views, the page gets them over Server-Sent Events.

Every :data:`FEED_PERIOD_S` the feed reads the telemetry view (recording each
direction's new alternate-marking block and IOAM delay samples for the
5-minute fault-tracing history, and the routers' byte counters for
throughput) and, while a page is connected, builds the map state
(:func:`.state.map_state`) and wakes every stream with it. A page is
therefore at most one period plus the time to build and send behind the
telemetry view; the state carries the view's own clock (``telemetry_at``) so
the page measures that lag itself.

``GET /events`` with ``Accept: text/event-stream`` (what ``EventSource``
sends) streams ``event: state`` messages until the client goes away; without
it (a plain HTTP client) it answers the current state as one event and
closes. At most :data:`MAX_STREAMS` streams are open at once (each holds one
of the server's worker threads); the next is answered 503.

Examples
--------
>>> encode_event({"a": 1}, 7)
b'id: 7\\nevent: state\\nretry: 2000\\ndata: {"a":1}\\n\\n'
"""

from __future__ import annotations

import collections
import json
import logging
import math
import threading
import time
from typing import Any, Callable

from controllers.northbound.answers import Stream
from controllers.northbound.errors import ApiError
from controllers.northbound.map import state as map_state_module
from controllers.northbound.map.counters import InterfaceCounters, throughput_mbps

LOG = logging.getLogger("cpn.map")
#: Seconds between two readings of the views; the page's update lag is at most about this.
FEED_PERIOD_S = 0.5
#: Seconds between two readings of the routers' byte counters (one netlink dump per router).
COUNTERS_PERIOD_S = 1.0
#: Seconds of history kept per link direction (the page's fault-tracing chart).
HISTORY_S = 300.0
#: Event streams open at once; each holds one of the REST server's worker threads.
MAX_STREAMS = 6
#: A comment line is sent on a quiet stream this often, so proxies and clients see it alive.
KEEPALIVE_S = 15.0
#: What EventSource waits before reconnecting after the stream ends (ms).
RETRY_MS = 2000


def encode_event(payload: Any, event_id: int, event: str = "state") -> bytes:
    """One Server-Sent Events message (WHATWG HTML §9.2) carrying ``payload`` as one-line JSON."""
    data = json.dumps(_finite(payload), separators=(",", ":"), allow_nan=False, default=str)
    return f"id: {event_id}\nevent: {event}\nretry: {RETRY_MS}\ndata: {data}\n\n".encode("utf-8")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None: JSON (and the page's ``JSON.parse``) has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class MapFeed:
    """Polls ``api`` for the map; one per REST server (see :func:`feed_for`).

    Parameters
    ----------
    api : NorthboundApi
        What the REST server serves; calls it lacks or answers with an error give nothing.
    plan : NetworkPlan, optional
        For the routers' byte counters (throughput); default ``api.core.plan`` when the api has one.
    period_s : float
        Seconds between readings.
    """

    def __init__(self, api: Any, *, plan: Any = None, period_s: float = FEED_PERIOD_S) -> None:
        self.api = api
        self.plan = plan if plan is not None else getattr(getattr(api, "core", None), "plan", None)
        self.period_s = period_s
        self.cond = threading.Condition()
        self.version = 0
        self.message: bytes | None = None
        self.streams = 0
        self.closed = False
        self.lock = threading.Lock()  # guards what the thread records
        self.blocks: dict[str, collections.deque] = {}  # telemetry link name -> recent block readings
        self.delay_history: dict[str, collections.deque] = {}  # name -> (t, mean delay ms, samples, truth ms)
        self.loss_history: dict[str, collections.deque] = {}  # name -> (t, block loss %, truth %, configured %, down)
        self.names: dict[tuple[str, str], str] = {}  # (from site, to site) -> telemetry link name
        self.throughput: dict[str, float] = {}
        self._last_block: dict[str, int] = {}
        self._last_delay_t = 0.0
        self._counters_before: dict = {}
        self._counters_read_at = -math.inf
        self._topology: dict | None = None
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------ thread
    def start(self) -> "MapFeed":
        """Start polling (once); returns the feed."""
        with self.cond:
            if self.thread is None and not self.closed:
                self.thread = threading.Thread(target=self._run, name="cpn-map-feed", daemon=True)
                self.thread.start()
        return self

    def stop(self) -> None:
        """Stop polling and end every stream; safe to call twice."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _run(self) -> None:
        counters = InterfaceCounters(self.plan) if self.plan is not None else None
        try:
            while not self.closed:
                started = time.monotonic()
                try:
                    self.tick(counters)
                except Exception:  # the feed must outlive any bug in a view
                    LOG.exception("map feed")
                with self.cond:
                    self.cond.wait(max(0.0, self.period_s - (time.monotonic() - started)))
        finally:
            if counters is not None:
                counters.close()

    def tick(self, counters: InterfaceCounters | None = None) -> None:
        """One reading: record telemetry and throughput; publish the state while a stream is open."""
        telemetry = self._call("get_telemetry")
        self.record(telemetry, self._delay_samples())
        if counters is not None and time.monotonic() - self._counters_read_at >= COUNTERS_PERIOD_S:
            self._counters_read_at = time.monotonic()
            reading = counters.read()
            rates = throughput_mbps(self._counters_before, reading)
            with self.lock:
                self.throughput = {**{d: r for d, r in self.throughput.items() if d in reading}, **rates}
            self._counters_before = reading
        if self.streams:
            self.publish(self.state(telemetry))

    def publish(self, state: dict) -> None:
        """Hand ``state`` to every open stream."""
        with self.cond:
            self.version += 1
            self.message = encode_event(state, self.version)
            self.cond.notify_all()

    # ------------------------------------------------------------ record
    def _delay_samples(self) -> dict | None:
        service = getattr(self.api, "telemetry", None)
        since = getattr(service, "delay_samples_since", None)
        if since is None:
            return None
        return since(self._last_delay_t)

    def record(self, telemetry: dict | None, samples: dict | None = None, now: float | None = None) -> None:
        """Keep each direction's new loss block and delay samples (``samples``: name -> [(t, ms)])."""
        if not telemetry:
            return
        now = time.time() if now is None else now
        horizon = now - HISTORY_S
        with self.lock:
            for reading in telemetry.get("links") or []:
                name = reading.get("link")
                self.names[(reading.get("from"), reading.get("to"))] = name
                loss = reading.get("loss") or {}
                truth_delay = map_state_module.first_given(loss.get("configured_delay_ms"),
                                                      (reading.get("ground_truth") or {}).get("delay_ms"))
                delays = self.delay_history.setdefault(name, collections.deque())
                fresh = [ms for t, ms in (samples or {}).get(name, ())]
                if fresh:
                    delays.append((now, round(sum(fresh) / len(fresh), 3), len(fresh), truth_delay))
                elif samples is None and reading.get("delay"):
                    delays.append((now, reading["delay"].get("delay_ms"), reading["delay"].get("samples"),
                                   truth_delay))
                block = loss.get("block")
                if block is not None and self._last_block.get(name) != block:
                    self._last_block[name] = block
                    self.blocks.setdefault(name, collections.deque(maxlen=int(HISTORY_S) + 10)).append(loss)
                    sent, dropped = loss.get("sent"), loss.get("truth_dropped")
                    truth_pct = round(100.0 * dropped / sent, 4) if sent and dropped is not None else None
                    self.loss_history.setdefault(name, collections.deque()).append(
                        (loss.get("read_at", now), loss.get("loss_pct"), truth_pct, loss.get("configured_loss_pct"),
                         bool(loss.get("configured_down"))))
                for series in (delays, self.loss_history.get(name, ())):
                    while series and series[0][0] < horizon:
                        series.popleft()
            if samples:
                self._last_delay_t = max((t for series in samples.values() for t, _ in series),
                                         default=self._last_delay_t)

    # ------------------------------------------------------------- views
    def _call(self, method: str, *args: Any) -> Any:
        call: Callable | None = getattr(self.api, method, None)
        if call is None:
            return None
        try:
            return call(*args)
        except ApiError:
            return None  # that part of the controller is not running (no steering, no slices)

    def topology(self) -> dict:
        if self._topology is None:
            self._topology = self._call("topology") or {}
        return self._topology

    def state(self, telemetry: dict | None = None) -> dict:
        """The map state now (``GET /map/state``); ``telemetry`` if already read."""
        telemetry = telemetry if telemetry is not None else self._call("get_telemetry")
        with self.lock:
            blocks = {name: list(series) for name, series in self.blocks.items()}
            throughput = dict(self.throughput)
        return map_state_module.map_state(
            self.topology(), telemetry=telemetry, status=self._call("status"), steering=self._call("get_steering"),
            policies=self._call("list_policies") or [], slice_status=self._call("slice_status"),
            blocks=blocks, throughput=throughput, now=time.time())

    def history(self, link: str) -> dict:
        """``GET /map/history/{link}``: the last :data:`HISTORY_S` of both directions of ``link`` (``a~b``).

        Per direction, ``delay``: ``[unix time, measured ms, ground-truth ms]`` (the mean of the IOAM
        samples of each feed period, and the delay the link element is set to); ``loss``: ``[unix time,
        measured block loss %, ground-truth block loss % (the element's own drops), configured loss %,
        cut]`` per alternate-marking block.

        Raises
        ------
        ApiError
            404 naming the links when ``link`` is none of them.
        """
        links = self.topology().get("links") or []
        found = next((l for l in links if map_state_module.link_id(l["a"], l["b"]) == link), None)
        if found is None:
            known = ", ".join(map_state_module.link_id(l["a"], l["b"]) for l in links[:20])
            raise ApiError(404, f"no link {link[:100]!r}; the links are {known or 'none'} (GET /topology)")
        directions = []
        with self.lock:
            for src, dst in ((found["a"], found["b"]), (found["b"], found["a"])):
                name = self.names.get((src, dst))
                directions.append({
                    "from": src, "to": dst,
                    "delay": [[t, ms, truth] for t, ms, _n, truth in self.delay_history.get(name, ())],
                    "loss": [list(x) for x in self.loss_history.get(name, ())]})
        return {"link": link, "a": found["a"], "b": found["b"], "window_s": HISTORY_S, "now": time.time(),
                "configured": {"delay_ms": found.get("delay_ms"), "loss_pct": found.get("loss_pct")},
                "directions": directions}

    def stream(self) -> "EventStream":
        """``GET /events``."""
        return EventStream(self)


class EventStream(Stream):
    """``GET /events``: the map state as Server-Sent Events."""

    def __init__(self, feed: MapFeed) -> None:
        self.feed = feed

    def serve(self, handler: Any) -> None:
        feed = self.feed
        live = "text/event-stream" in (handler.headers.get("Accept") or "")
        handler.close_connection = True
        if not live or handler.command == "HEAD":
            body = encode_event(feed.state(), feed.version)
            self._head(handler, {"Content-Length": str(len(body))})
            if handler.command != "HEAD":
                handler.wfile.write(body)
            return
        with feed.cond:
            if feed.streams >= MAX_STREAMS:
                raise ApiError(503, f"{MAX_STREAMS} event streams are open already; close one (a map tab) or "
                                    "retry later", {"max_streams": MAX_STREAMS})
            feed.streams += 1
        try:
            feed.start()
            handler.connection.settimeout(handler.server.request_timeout_s)  # a client that stops reading
            self._head(handler, {})
            seen = feed.version
            handler.wfile.write(encode_event(feed.state(), seen))  # at once, not a period later
            while True:
                with feed.cond:
                    feed.cond.wait_for(lambda: feed.version != seen or feed.closed, timeout=KEEPALIVE_S)
                    if feed.closed:
                        return
                    message, fresh = feed.message, feed.version != seen
                    seen = feed.version
                handler.wfile.write(message if fresh and message else b": keep-alive\n\n")
        except OSError:
            return  # the client went away
        finally:
            with feed.cond:
                feed.streams -= 1

    @staticmethod
    def _head(handler: Any, extra: dict) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        for name, value in extra.items():
            handler.send_header(name, value)
        handler.end_headers()


_FEEDS_LOCK = threading.Lock()


def feed_for(server: Any) -> MapFeed:
    """The feed of a REST server, made and started at the first call; stopped with the server."""
    with _FEEDS_LOCK:
        feed = server.extensions.get("map")
        if feed is None:
            feed = server.extensions["map"] = MapFeed(server.api).start()
        return feed
