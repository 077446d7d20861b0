"""A compute node's request/response service with finite capacity, and its metrics agent.

::

    python -m cpn_net.compute.service --instance k3-1 --service infer --port 8080 \\
        --workers 4 --service-time-ms 10 --queue-limit 64 --background-load-pct 0 \\
        [--price-cny-per-hour X] [--carbon-g-per-kwh Y] --seed 1 \\
        --metrics-socket PATH --metrics-period-s 1 --control PATH [--bind ::]

Serving. A UDP socket bound to ``[--bind]:port`` (``::`` by default,
dual-stack) takes :mod:`~cpn_net.compute.protocol` requests sent to *any*
of the node's addresses, the service's anycast address on ``lo``
included. The destination of each request is read with
``IPV6_RECVPKTINFO`` and the reply is sent with ``IPV6_PKTINFO`` set to it
(RFC 3542 §6), so the reply's source is the address the client asked — as
a client of an anycast service expects — and the serving instance shows
only in the payload.

Capacity. The requests enter a :class:`~cpn_net.compute.station.ServiceStation`:
``--workers`` parallel servers, a FIFO queue of ``--queue-limit`` (a
request finding it full is answered at once with status *rejected*), and
exponential service times of mean ``--service-time-ms`` from a seeded
generator. The work is a wait, not computation: the service emulates
remote accelerators, and a 2-core machine hosting a whole network could
not burn real CPU per request. For the same reason the workers are not
threads but slots of one event loop, which finishes each job at its exact
model time (no GIL, no locks, no per-thread wake-up jitter); to a client
this is indistinguishable from ``workers`` threads sleeping. Background
load (``--background-load-pct`` of the capacity) is a Poisson stream of
synthetic jobs occupying the same workers, never answered.

Metrics agent. Every ``--metrics-period-s`` the service sends one JSON
datagram (:mod:`~cpn_net.compute.report`) to the Unix datagram socket
``--metrics-socket``; if nobody listens the report is dropped and counted.

Control. A Unix datagram socket ``--control`` takes JSON requests and
answers the sender's bound address (as :func:`control_request` does):

* ``{"op": "stats"}`` — settings and counters;
* ``{"op": "set", "background_load_pct": X}`` — change the background load;
* ``{"op": "pause", "seconds": s}`` — a dead node for ``s`` seconds (0
  resumes): requests are read and ignored, replies of jobs finishing meanwhile
  are not sent, and no metrics are reported, so the controller sees the
  reports go stale;
* ``{"op": "reset"}`` — zero the counters.

Every reply is ``{"ok": true, ...stats}`` or ``{"ok": false, "error": message}``.
"ready" is printed on stdout once both sockets are bound (the control socket
last, so its existence also means the service is up). SIGTERM and SIGINT
stop it cleanly. Exit status: 0 stopped, 1 runtime failure, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import NamedTuple

from cpn_net import unixctl
from cpn_net.compute.errors import ComputeConfigError, ComputeProtocolError
from cpn_net.compute.protocol import (MAX_DATAGRAM_BYTES, Response, ResponseStatus,
                                      decode_request, encode_response, instance_bytes,
                                      saturate_u32)
from cpn_net.compute.report import build_report, encode_report
from cpn_net.compute.station import (MAX_WORKERS, NS_PER_S, ServiceStation, StationConfig,
                                     check_int, check_percent, check_positive)
from cpn_net.tools.flowgen import StopOnSignal

MAX_WAIT_S = 0.1  # bounds how long a stop request waits for the loop
RECEIVE_BATCH = 256  # datagrams read per wake-up before timers get a turn
RECV_BUFFER_BYTES = 4 << 20
_PKTINFO = struct.Struct("=16sI")  # struct in6_pktinfo (RFC 3542 §6)
_ANCILLARY_BYTES = socket.CMSG_SPACE(_PKTINFO.size)
_NS_PER_US = 1000


@dataclass(frozen=True)
class ServiceConfig:
    """A validated service invocation (see the module notes for each option).

    Examples
    --------
    >>> ServiceConfig("k3-1", "infer", 8080, workers=4, service_time_ms=10.0).station.capacity_rps
    400.0
    >>> ServiceConfig("k3-1", "infer", 8080, workers=4, service_time_ms=10.0, bind="10.0.0.1")
    Traceback (most recent call last):
    ...
    cpn_net.compute.errors.ComputeConfigError: service: bind='10.0.0.1' must be an IPv6 address, e.g. ::
    """

    instance: str
    service: str
    port: int
    workers: int
    service_time_ms: float
    queue_limit: int = 64
    background_load_pct: float = 0.0
    price_cny_per_hour: float | None = None
    carbon_g_per_kwh: float | None = None
    seed: int = 1
    metrics_socket: str | None = None
    metrics_period_s: float = 1.0
    control: str | None = None
    bind: str = "::"

    def __post_init__(self) -> None:
        instance_bytes(self.instance)  # it must fit the response
        if not isinstance(self.service, str) or not self.service:
            raise ComputeConfigError(f"service: service={self.service!r} must be a non-empty name, e.g. infer")
        check_int("service", "port", self.port, 0, 65535)
        check_int("service", "workers", self.workers, 1, MAX_WORKERS)
        check_positive("service", "service_time_ms", self.service_time_ms, "10")
        check_int("service", "queue_limit", self.queue_limit, 0, 2**31 - 1)
        check_percent("service", "background_load_pct", self.background_load_pct)
        for key in ("price_cny_per_hour", "carbon_g_per_kwh"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value < 0):
                raise ComputeConfigError(f"service: {key}={value!r} must be a finite number >= 0, or omitted")
        check_int("service", "seed", self.seed, 0, 2**63 - 1)
        check_positive("service", "metrics_period_s", self.metrics_period_s, "1")
        try:
            ipaddress.IPv6Address(self.bind)
        except (ipaddress.AddressValueError, ValueError, TypeError) as err:
            raise ComputeConfigError(f"service: bind={self.bind!r} must be an IPv6 address, e.g. ::") from err

    @property
    def station(self) -> StationConfig:
        return StationConfig(self.workers, self.service_time_ms, self.queue_limit, self.background_load_pct)


class _Pending(NamedTuple):
    """What the service needs to answer a request once it finishes."""

    request_id: int
    peer: tuple
    pktinfo: bytes | None
    server_recv_ns: int


class ComputeService:
    """The sockets and event loop of one service instance (see the module notes).

    Parameters
    ----------
    config : ServiceConfig
    clock_ns : callable
        The monotonic clock driving the station and the timers.

    Raises
    ------
    OSError
        If a socket cannot be created or bound.
    """

    def __init__(self, config: ServiceConfig, clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.config = config
        self.clock_ns = clock_ns
        now = clock_ns()
        self.station = ServiceStation(config.station, config.seed, now)
        self.counters = _new_counters()
        self.paused_until_ns = now
        self.udp = _udp_socket(config.bind, config.port)
        self.port = self.udp.getsockname()[1]
        self.metrics = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.metrics.setblocking(False)
        self.control = None
        if config.control:
            if os.path.exists(config.control):
                os.unlink(config.control)
            self.control = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.control.bind(config.control)
            self.control.setblocking(False)
        # stop() writes here to end a select() at once (another thread may call it).
        self._wake_read, self._wake_write = socket.socketpair()
        self._stopping = False
        self.period_ns = round(config.metrics_period_s * NS_PER_S)
        self.next_report_ns = now + self.period_ns
        self.last_report = (now, self.station.busy_area_ns(now), 0)  # (time, busy area, arrivals)

    # --- the loop -------------------------------------------------------------------------------

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Serve until ``should_stop()`` (polled at least every 0.1 s) or :meth:`stop`."""
        readers = [self.udp, self._wake_read] + ([self.control] if self.control else [])
        while not self._stopping and not should_stop():
            now = self.clock_ns()
            due = [self.next_report_ns, now + round(MAX_WAIT_S * NS_PER_S)]
            station_due = self.station.next_event_ns()
            if station_due is not None:
                due.append(station_due)
            if self.paused_until_ns > now:
                due.append(self.paused_until_ns)
            ready, _, _ = select.select(readers, [], [], max(0, min(due) - now) / NS_PER_S)
            self._answer(self.station.advance(self.clock_ns()))
            if self.udp in ready:
                self._receive()
            if self.control is not None and self.control in ready:
                self._serve_control()
            now = self.clock_ns()
            if now >= self.next_report_ns:
                self._report(now)

    def _receive(self) -> None:
        for _ in range(RECEIVE_BATCH):
            try:
                datagram, ancillary, _flags, peer = self.udp.recvmsg(MAX_DATAGRAM_BYTES + 1, _ANCILLARY_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.counters["receive_errors"] += 1
                continue
            now = self.clock_ns()
            try:
                request = decode_request(datagram)
            except ComputeProtocolError:
                self.counters["malformed"] += 1
                continue
            if self.paused_until_ns > now:
                self.counters["ignored_paused"] += 1
                continue
            pending = _Pending(request.request_id, peer, reply_pktinfo(ancillary), time.time_ns())
            self._answer(self.station.advance(now))
            if self.station.offer(now, pending) == "rejected":
                self._send(pending, ResponseStatus.REJECTED, 0, 0)

    def _answer(self, finished) -> None:
        for job in finished:
            self._send(job.context, ResponseStatus.SERVED, job.queue_wait_ns // _NS_PER_US,
                       job.service_ns // _NS_PER_US)

    def _send(self, pending: _Pending, status: ResponseStatus, queue_wait_us: int, service_us: int) -> None:
        if self.paused_until_ns > self.clock_ns():
            self.counters["unanswered_paused"] += 1
            return
        reply = encode_response(Response(pending.request_id, status, pending.server_recv_ns,
                                         saturate_u32(queue_wait_us), saturate_u32(service_us),
                                         self.config.instance))
        ancillary = [] if pending.pktinfo is None else [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO,
                                                         pending.pktinfo)]
        try:
            self.udp.sendmsg([reply], ancillary, 0, pending.peer)
        except OSError:
            # ENOBUFS or no route back: the client will record a timeout.
            self.counters["send_errors"] += 1

    # --- metrics agent --------------------------------------------------------------------------

    def _report(self, now: int) -> None:
        last_ns, last_area, last_arrived = self.last_report
        area = self.station.busy_area_ns(now)
        arrived = self.station.counters.arrived
        elapsed = max(1, now - last_ns)
        # Counters may have been reset since the last report: never a negative rate.
        arrivals = arrived - last_arrived if arrived >= last_arrived else arrived
        self.last_report = (now, area, arrived)
        self.next_report_ns = max(self.next_report_ns + self.period_ns, now + 1)
        if self.paused_until_ns > now:
            return
        config, counters = self.station.config, self.station.counters
        report = build_report(
            self.config.instance, self.config.service, reported_at=time.time(),
            period_s=self.config.metrics_period_s,
            utilisation=(area - last_area) / (config.workers * elapsed),
            queue_len=self.station.queue_len, workers=config.workers,
            service_time_ms=config.service_time_ms, background_load_pct=config.background_load_pct,
            served=counters.served, rejected=counters.rejected,
            background_jobs=counters.background_jobs, arrival_rps=arrivals * NS_PER_S / elapsed,
            price_cny_per_hour=self.config.price_cny_per_hour,
            carbon_g_per_kwh=self.config.carbon_g_per_kwh)
        if self.config.metrics_socket is None:
            return
        try:
            self.metrics.sendto(encode_report(report), self.config.metrics_socket)
            self.counters["reports_sent"] += 1
        except OSError:
            # Nobody listening (yet): the controller will see the node as stale, which is the truth.
            self.counters["reports_failed"] += 1

    # --- control --------------------------------------------------------------------------------

    def _serve_control(self) -> None:
        unixctl.serve_pending(self.control, self.handle_control)

    def handle_control(self, data: bytes) -> dict:
        """Apply one control request (module notes) and return the reply."""
        now = self.clock_ns()
        try:
            request = json.loads(data)
            if not isinstance(request, dict):
                raise ComputeConfigError(f"control: request {request!r} must be a JSON object such as "
                                         '{"op": "stats"}')
            op = request.get("op")
            if op == "set":
                _only_keys("set", request, "background_load_pct")
                if "background_load_pct" not in request:
                    raise ComputeConfigError('control: set needs background_load_pct, e.g. '
                                             '{"op": "set", "background_load_pct": 50}')
                self._answer(self.station.advance(now))
                self.station.set_background_load(now, request["background_load_pct"])
            elif op == "pause":
                _only_keys("pause", request, "seconds")
                seconds = request.get("seconds")
                if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
                        or not math.isfinite(seconds) or seconds < 0:
                    raise ComputeConfigError(f"control: pause seconds={seconds!r} must be a finite number "
                                             ">= 0 (0 resumes)")
                self.paused_until_ns = now + round(seconds * NS_PER_S)
            elif op == "reset":
                _only_keys("reset", request)
                self.station.reset_counters()
                self.counters = _new_counters()
            elif op == "stats":
                _only_keys("stats", request)
            else:
                raise ComputeConfigError(f"control: op={op!r} must be one of stats, set, pause, reset")
        except (ValueError, TypeError) as err:  # ComputeConfigError and JSON errors
            return {"ok": False, "error": str(err)}
        return {"ok": True, **self.stats(now)}

    def stats(self, now: int) -> dict:
        """Settings and counters, as the control socket reports them."""
        station = self.station
        return {
            "instance": self.config.instance, "service": self.config.service, "port": self.port,
            "settings": {**asdict(station.config), "capacity_rps": station.config.capacity_rps,
                         "price_cny_per_hour": self.config.price_cny_per_hour,
                         "carbon_g_per_kwh": self.config.carbon_g_per_kwh,
                         "metrics_period_s": self.config.metrics_period_s},
            "counters": {**station.counters.as_dict(), **self.counters},
            "queue_len": station.queue_len, "in_service": station.in_service,
            "paused_s": max(0, self.paused_until_ns - now) / NS_PER_S,
        }

    def stop(self) -> None:
        """Make :meth:`run` return now (safe from another thread)."""
        self._stopping = True
        try:
            self._wake_write.send(b"x")
        except OSError:
            pass  # already closed, or the wake-up is already pending

    def close(self) -> None:
        """Close the sockets and remove the control socket's path."""
        self._wake_read.close()
        self._wake_write.close()
        self.udp.close()
        self.metrics.close()
        if self.control is not None:
            self.control.close()
            try:
                os.unlink(self.config.control)
            except FileNotFoundError:
                pass


def reply_pktinfo(ancillary) -> bytes | None:
    """The ``IPV6_PKTINFO`` to send a reply with: the request's destination, no interface.

    The interface index is kept only for link-local destinations, which
    need it; otherwise routing picks the way back (an anycast address lives
    on ``lo`` while requests arrive on the LAN interface).

    Examples
    --------
    >>> anycast = ipaddress.IPv6Address("2001:db8:ffff::1").packed
    >>> reply_pktinfo([(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, _PKTINFO.pack(anycast, 3))]) \\
    ...     == _PKTINFO.pack(anycast, 0)
    True
    >>> reply_pktinfo([]) is None
    True
    """
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= _PKTINFO.size:
            address, ifindex = _PKTINFO.unpack_from(data)
            if not ipaddress.IPv6Address(address).is_link_local:
                ifindex = 0
            return _PKTINFO.pack(address, ifindex)
    return None


control_request = unixctl.request


def _new_counters() -> dict[str, int]:
    return {"malformed": 0, "ignored_paused": 0, "unanswered_paused": 0, "send_errors": 0,
            "receive_errors": 0, "reports_sent": 0, "reports_failed": 0}


def _only_keys(op: str, request: dict, *allowed: str) -> None:
    unknown = sorted(set(request) - {"op", *allowed})
    if unknown:
        known = ", ".join(allowed) if allowed else "none"
        raise ComputeConfigError(f"control: {op}: unknown key {unknown[0]!r}; known keys: {known}")


def _udp_socket(bind: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        if ipaddress.IPv6Address(bind).is_unspecified:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4-mapped clients too
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER_BYTES)
        sock.bind((bind, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module notes)."""
    parser = argparse.ArgumentParser(prog="python -m cpn_net.compute.service",
                                     description="A compute node's request/response service.")
    parser.add_argument("--instance", required=True, help="this node's name, e.g. k3-1 (<= 32 bytes)")
    parser.add_argument("--service", required=True, help="service name, e.g. infer")
    parser.add_argument("--port", type=int, required=True, help="UDP port (0: any free; see stats)")
    parser.add_argument("--workers", type=int, required=True, help="parallel servers")
    parser.add_argument("--service-time-ms", type=float, required=True, help="mean service time")
    parser.add_argument("--queue-limit", type=int, required=True, help="requests that may wait")
    parser.add_argument("--background-load-pct", type=float, default=0.0,
                        help="share of the capacity taken by background jobs (default 0)")
    parser.add_argument("--price-cny-per-hour", type=float, help="price, reported as a metric")
    parser.add_argument("--carbon-g-per-kwh", type=float, help="carbon intensity, reported as a metric")
    parser.add_argument("--seed", type=int, default=1, help="seeds service times and background load")
    parser.add_argument("--metrics-socket", help="Unix datagram socket to send metrics reports to")
    parser.add_argument("--metrics-period-s", type=float, default=1.0, help="reporting period (default 1)")
    parser.add_argument("--control", help="Unix datagram socket path to bind for control requests")
    parser.add_argument("--bind", default="::", help="address to listen on (default ::, every address)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the service until SIGTERM/SIGINT."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = ServiceConfig(
            args.instance, args.service, args.port, args.workers, args.service_time_ms,
            args.queue_limit, args.background_load_pct, args.price_cny_per_hour,
            args.carbon_g_per_kwh, args.seed, args.metrics_socket, args.metrics_period_s,
            args.control, args.bind)
    except ComputeConfigError as err:
        parser.error(str(err))
    with StopOnSignal() as stop:
        try:
            service = ComputeService(config)
        except OSError as err:
            sys.stderr.write(f"service {args.instance}: cannot bind: {err}\n")
            return 1
        try:
            print("ready", flush=True)
            service.run(should_stop=stop)
        finally:
            service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
