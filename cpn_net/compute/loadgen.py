"""Open-loop request traffic to a compute service, with every request's outcome recorded.

::

    python -m cpn_net.compute.loadgen --to ADDR --port P (--rate-rps R | --schedule "0:50,30:120,60:50")
        --duration-s D --sessions N --seed S --timeout-ms T --size-bytes B --out FILE.json
        [--ready-file F]

Sending. The send times are a seeded Poisson process following the rate
schedule (:mod:`~cpn_net.compute.workload`), all computed before the first
request. Request ``k`` (ids 0, 1, 2, ...) goes out on session ``k mod N``:
one UDP socket per session, bound to its own source port and connected to
``ADDR:P``, so each session is its own flow (5-tuple) for the steering and
the sessions keep sending in turn. The sender never waits for replies: a
request due while the sender was busy leaves at once (``late_sends``
counts those more than 1 ms late), so the offered load does not bend to
the service (open loop). Sockets are connected, so only replies *from*
``ADDR`` count — as for a real anycast client.

Recording. A reply is matched to its request by id. Its response time is
the kernel's receive timestamp (``SO_TIMESTAMPNS``; user time if missing)
minus the request's ``send_ns``, both ``CLOCK_REALTIME``. A request without
a reply within ``--timeout-ms`` is recorded as ``timeout`` (a reply
arriving later is counted in ``late_replies`` and does not change that),
as is a request the kernel refused to send (counted by errno in
``send_errors``): no request sent is missing from the record. The run ends
``--timeout-ms`` after the last send, or as soon as every request is
answered. SIGTERM/SIGINT stop the sending; requests already sent are still
waited for, requests never sent are left out (``planned`` vs ``sent``).

Record (JSON, written atomically to ``--out``), schema 1::

    {"schema": 1, "tool", "role": "loadgen", "to", "port", "seed", "sessions",
     "schedule": [{"start_s", "rate_rps"}, ...], "duration_s", "timeout_ms", "size_bytes",
     "src_ports", "started_ns", "planned", "sent", "stopped_by", "late_sends", "max_late_ms",
     "send_errors", "late_replies", "duplicates", "stray", "malformed", "timestamps",
     "timestamp_fallbacks", "requests": {"id", "session", "send_ns", "status", "response_ms", "instance",
                  "queue_wait_ms", "service_ms"}}

``requests`` is columnar: one list per field, one entry per request sent,
in id order; ``status`` is ``served``, ``rejected`` or ``timeout``, and a
timeout has null ``response_ms``, ``instance``, ``queue_wait_ms`` and
``service_ms``. ``--ready-file`` is written (JSON: pid, src_ports) once the
sockets are bound, just before the first send. Exit status: 0 done, 1
runtime failure, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import collections
import errno
import ipaddress
import os
import select
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from cpn_net.compute.errors import ComputeConfigError, ComputeProtocolError
from cpn_net.compute.protocol import (MAX_DATAGRAM_BYTES, REQUEST_HEADER_BYTES, Request,
                                      ResponseStatus, decode_response, encode_request)
from cpn_net.compute.station import NS_PER_MS, NS_PER_S, check_int, check_positive
from cpn_net.compute.workload import RateStep, check_schedule, parse_schedule, send_offsets_s
from cpn_net.tools.flowgen import (SO_TIMESTAMPNS, StopOnSignal, choose_receive_ns,
                                   parse_ancillary, write_json_atomic)

RECORD_SCHEMA = 1
TOOL = "cpn_net.compute.loadgen"
LATE_SEND_NS = NS_PER_MS
MAX_SESSIONS = 4096
MAX_WAIT_NS = 50 * NS_PER_MS  # bounds how long a stop signal waits
RECV_BUFFER_BYTES = 1 << 20
_ANCILLARY_BYTES = socket.CMSG_SPACE(16)
STATUS_NAMES = {ResponseStatus.SERVED: "served", ResponseStatus.REJECTED: "rejected"}
COLUMNS = ("id", "session", "send_ns", "status", "response_ms", "instance", "queue_wait_ms", "service_ms")


@dataclass(frozen=True)
class LoadgenConfig:
    """A validated load generator invocation.

    Examples
    --------
    >>> config = LoadgenConfig("2001:db8:ffff::1", 8080, (RateStep(0, 50),), duration_s=10, seed=3)
    >>> offsets = config.planned_offsets_s()
    >>> 400 < len(offsets) < 600, offsets == config.planned_offsets_s()
    (True, True)
    >>> LoadgenConfig("2001:db8:ffff::1", 8080, (RateStep(0, 50),), duration_s=10, sessions=0)
    Traceback (most recent call last):
    ...
    cpn_net.compute.errors.ComputeConfigError: loadgen: sessions=0 must be an integer in 1..4096
    """

    to: str
    port: int
    schedule: tuple[RateStep, ...]
    duration_s: float
    sessions: int = 1
    seed: int = 1
    timeout_ms: float = 1000.0
    size_bytes: int = REQUEST_HEADER_BYTES

    def __post_init__(self) -> None:
        try:
            address = ipaddress.IPv6Address(self.to)
        except (ipaddress.AddressValueError, ValueError, TypeError) as err:
            raise ComputeConfigError(f"loadgen: to={self.to!r} must be an IPv6 address, e.g. the "
                                     "service's anycast 2001:db8:ffff::1") from err
        if address.is_unspecified:
            raise ComputeConfigError(f"loadgen: to={self.to!r} is the unspecified address; give the "
                                     "service's address")
        check_int("loadgen", "port", self.port, 1, 65535)
        check_schedule(self.schedule)
        check_positive("loadgen", "duration_s", self.duration_s, "60")
        check_int("loadgen", "sessions", self.sessions, 1, MAX_SESSIONS)
        check_int("loadgen", "seed", self.seed, 0, 2**63 - 1)
        check_positive("loadgen", "timeout_ms", self.timeout_ms, "1000")
        check_int("loadgen", "size_bytes", self.size_bytes, REQUEST_HEADER_BYTES, MAX_DATAGRAM_BYTES)

    def planned_offsets_s(self) -> list[float]:
        """The send schedule, seconds from the start (same seed, same list)."""
        return send_offsets_s(self.schedule, self.duration_s, self.seed)


class _Run:
    """The columns and counters of one run, filled in as requests go and replies come."""

    def __init__(self, config: LoadgenConfig, planned: int) -> None:
        self.config = config
        self.timeout_ns = round(config.timeout_ms * NS_PER_MS)
        self.send_ns: list[int] = []
        self.send_mono: list[int] = []
        self.status: list[str | None] = []
        self.response_ms: list[float | None] = []
        self.instance: list[str | None] = []
        self.queue_wait_ms: list[float | None] = []
        self.service_ms: list[float | None] = []
        self.settled: list[bool] = []  # answered, refused by the kernel, or answered too late
        self.oldest = 0  # no request before this index is open
        self.send_errors: collections.Counter = collections.Counter()
        self.late_sends = self.max_late_ns = 0
        self.late_replies = self.duplicates = self.stray = self.malformed = 0
        self.user_timestamps = 0
        self.planned = planned

    def send(self, sock: socket.socket, due_ns: int, now_ns: int) -> None:
        request_id = len(self.send_ns)
        send_ns = time.time_ns()
        datagram = encode_request(Request(request_id, request_id % self.config.sessions, send_ns),
                                  self.config.size_bytes)
        lateness = now_ns - due_ns
        self.late_sends += lateness > LATE_SEND_NS
        self.max_late_ns = max(self.max_late_ns, lateness)
        for column in (self.status, self.response_ms, self.instance, self.queue_wait_ms, self.service_ms):
            column.append(None)
        self.send_ns.append(send_ns)
        self.send_mono.append(now_ns)
        try:
            sock.send(datagram)
        except OSError as err:
            # e.g. ECONNREFUSED after an ICMP port unreachable, ENETUNREACH during a failover.
            self.send_errors[errno.errorcode.get(err.errno, str(err.errno))] += 1
            self.settled.append(True)
            return
        self.settled.append(False)

    def receive(self, session: int, datagram: bytes, ancillary) -> None:
        kernel_ns, _drops = parse_ancillary(ancillary)
        recv_ns, from_kernel = choose_receive_ns(kernel_ns, time.time_ns())
        self.user_timestamps += not from_kernel
        try:
            response = decode_response(datagram)
        except ComputeProtocolError:
            self.malformed += 1
            return
        request_id = response.request_id
        if request_id >= len(self.send_ns) or request_id % self.config.sessions != session:
            self.stray += 1
            return
        if self.status[request_id] is not None or self.settled[request_id]:
            self.duplicates += self.status[request_id] is not None
            self.late_replies += self.status[request_id] is None
            return
        self.settled[request_id] = True
        elapsed_ns = recv_ns - self.send_ns[request_id]
        if elapsed_ns > self.timeout_ns:
            self.late_replies += 1
            return
        self.status[request_id] = STATUS_NAMES[response.status]
        self.response_ms[request_id] = round(max(0, elapsed_ns) / NS_PER_MS, 6)
        self.instance[request_id] = response.instance
        self.queue_wait_ms[request_id] = response.queue_wait_us / 1000
        self.service_ms[request_id] = response.service_us / 1000

    def expire(self, now_mono: int) -> int | None:
        """Settle as timeouts the requests whose reply can no longer count.

        Returns when the oldest request still open expires (None if none is).
        Requests are sent in id order, so one pointer walks past them.
        """
        while self.oldest < len(self.send_mono):
            if not self.settled[self.oldest]:
                expires = self.send_mono[self.oldest] + self.timeout_ns
                if now_mono <= expires:
                    return expires
                self.settled[self.oldest] = True
            self.oldest += 1
        return None

    def columns(self) -> dict:
        count = len(self.send_ns)
        return {
            "id": list(range(count)),
            "session": [i % self.config.sessions for i in range(count)],
            "send_ns": self.send_ns,
            "status": [s if s is not None else "timeout" for s in self.status],
            "response_ms": self.response_ms, "instance": self.instance,
            "queue_wait_ms": self.queue_wait_ms, "service_ms": self.service_ms,
        }


def run_loadgen(config: LoadgenConfig, should_stop: Callable[[], bool] = lambda: False,
                on_ready: Callable[[list[int]], None] = lambda src_ports: None) -> dict:
    """Send the schedule, collect the replies and return the record (module notes).

    Parameters
    ----------
    config : LoadgenConfig
    should_stop : callable
        Polled at least every 50 ms; once true no more requests are sent.
    on_ready : callable
        Called with the sessions' source ports once the sockets are bound.

    Raises
    ------
    OSError
        If a socket cannot be created, bound or connected.
    """
    offsets = config.planned_offsets_s()
    run = _Run(config, len(offsets))
    sockets = _session_sockets(config)
    try:
        src_ports = [sock.getsockname()[1] for sock in sockets]
        on_ready(src_ports)
        kernel_stamps = all(_enable_timestamps(sock) for sock in sockets)
        start_mono, started_ns = time.monotonic_ns(), time.time_ns()
        due = [start_mono + round(offset * NS_PER_S) for offset in offsets]
        session_of = {sock.fileno(): index for index, sock in enumerate(sockets)}
        stopped_by = "done"
        last = len(due)
        while True:
            now = time.monotonic_ns()
            sent = len(run.send_ns)
            if sent < last and should_stop():
                stopped_by, last = "signal", sent
            while sent < last and due[sent] <= now:
                run.send(sockets[sent % config.sessions], due[sent], now)
                sent += 1
                now = time.monotonic_ns()
            if sent >= last:
                wake = run.expire(now)
                if wake is None:
                    break
            else:
                wake = due[sent]
            wait_ns = min(max(0, wake - now), MAX_WAIT_NS)
            ready, _, _ = select.select(sockets, [], [], wait_ns / NS_PER_S)
            for sock in ready:
                _drain(sock, session_of[sock.fileno()], run)
        for index, sock in enumerate(sockets):
            _drain(sock, index, run)
    finally:
        for sock in sockets:
            sock.close()
    return {
        "schema": RECORD_SCHEMA, "tool": TOOL, "role": "loadgen", "to": config.to, "port": config.port,
        "seed": config.seed, "sessions": config.sessions,
        "schedule": [{"start_s": step.start_s, "rate_rps": step.rate_rps} for step in config.schedule],
        "duration_s": config.duration_s, "timeout_ms": config.timeout_ms, "size_bytes": config.size_bytes,
        "src_ports": src_ports, "started_ns": started_ns, "planned": run.planned,
        "sent": len(run.send_ns), "stopped_by": stopped_by, "late_sends": run.late_sends,
        "max_late_ms": run.max_late_ns / NS_PER_MS, "send_errors": dict(sorted(run.send_errors.items())),
        "late_replies": run.late_replies, "duplicates": run.duplicates, "stray": run.stray,
        "malformed": run.malformed, "timestamps": "kernel" if kernel_stamps else "user",
        "timestamp_fallbacks": run.user_timestamps, "requests": run.columns(),
    }


def _drain(sock: socket.socket, session: int, run: _Run) -> None:
    while True:
        try:
            datagram, ancillary, _flags, _peer = sock.recvmsg(MAX_DATAGRAM_BYTES + 1, _ANCILLARY_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # ECONNREFUSED from an ICMP error on the connected socket: its requests time out.
            continue
        run.receive(session, datagram, ancillary)


def _session_sockets(config: LoadgenConfig) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    try:
        for _ in range(config.sessions):
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER_BYTES)
            sock.bind(("::", 0))
            sock.connect((config.to, config.port))
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _enable_timestamps(sock: socket.socket) -> bool:
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module notes)."""
    parser = argparse.ArgumentParser(prog="python -m cpn_net.compute.loadgen",
                                     description="Open-loop Poisson requests to a compute service.")
    parser.add_argument("--to", required=True, help="service address (its anycast), IPv6")
    parser.add_argument("--port", type=int, required=True, help="service UDP port")
    rate = parser.add_mutually_exclusive_group(required=True)
    rate.add_argument("--rate-rps", type=float, help="constant mean request rate")
    rate.add_argument("--schedule", help='piecewise-constant rates "start_s:rate_rps,...", e.g. "0:50,30:120"')
    parser.add_argument("--duration-s", type=float, required=True, help="seconds of sending")
    parser.add_argument("--sessions", type=int, default=1, help="flows (UDP source ports), round robin")
    parser.add_argument("--seed", type=int, default=1, help="seeds the send times")
    parser.add_argument("--timeout-ms", type=float, default=1000.0, help="a request unanswered this long "
                        "is a timeout (default 1000)")
    parser.add_argument("--size-bytes", type=int, default=REQUEST_HEADER_BYTES,
                        help=f"UDP payload per request, >= {REQUEST_HEADER_BYTES} (default)")
    parser.add_argument("--out", required=True, help="JSON record to write")
    parser.add_argument("--ready-file", help="written once the sockets are bound: {pid, src_ports}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; bad arguments exit with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        schedule = parse_schedule(args.schedule) if args.schedule is not None \
            else check_schedule([RateStep(0.0, args.rate_rps)])
        config = LoadgenConfig(args.to, args.port, schedule, args.duration_s, args.sessions,
                               args.seed, args.timeout_ms, args.size_bytes)
        for option, path in (("--out", args.out), ("--ready-file", args.ready_file)):
            if path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
                raise ComputeConfigError(f"loadgen: {option} {path}: its directory does not exist; create it first")
    except ComputeConfigError as err:
        parser.error(str(err))

    def ready(src_ports: list[int]) -> None:
        if args.ready_file:
            write_json_atomic(args.ready_file, {"pid": os.getpid(), "src_ports": src_ports})

    with StopOnSignal() as stop:
        try:
            record = run_loadgen(config, should_stop=stop, on_ready=ready)
            write_json_atomic(args.out, record)
        except OSError as err:
            sys.stderr.write(f"loadgen: {err}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
