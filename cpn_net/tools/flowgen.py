"""A measured constant-rate UDP/IPv6 test flow, run inside emulated nodes.

::

    python -m cpn_net.tools.flowgen recv --bind ADDR --port P --duration-s D --out FILE.json
                                         [--ready-file F] [--flow-id N]
    python -m cpn_net.tools.flowgen send --to ADDR --port P --rate-pps R --duration-s D --out FILE.json
                                         [--size-bytes S] [--flow-id N] [--src-port SP]

Start ``recv`` first and wait for its ready file (written once the socket is
bound and the stop signals are handled; it holds the bound port, so
``--port 0`` picks a free one). ``recv`` stops after ``--duration-s`` or on
SIGTERM/SIGINT, ``send`` after its last packet or on SIGTERM/SIGINT; each
then writes its JSON record (atomically) for :func:`cpn_net.tools.outage.analyse_run`.
Exit status: 0 done, 1 runtime failure (cannot bind, cannot write), 2 bad arguments.

Datagram payload (network byte order, zero padding up to ``--size-bytes``):

======  =======  =====  =====================================================
offset  field    size   meaning
======  =======  =====  =====================================================
0       magic    4      ``b"CPNF"``
4       flow_id  4      which flow (receivers count other ids as ``foreign``)
8       seq      8      0, 1, 2, ... one per send attempt
16      send_ns  8      sender's ``CLOCK_REALTIME`` as it hands the datagram over
======  =======  =====  =====================================================

``--size-bytes`` is the UDP payload; the IPv6 packet is 48 bytes longer (the
RFC 8200 §3 header, 40, and the RFC 768 UDP header, 8).

Pacing. Packet ``k`` is due at ``t0 + k/R`` on the monotonic clock, so
sleep overshoot never accumulates into drift. A sender that wakes late
sends what is due back to back, but never owes more than
:data:`CATCH_UP_PACKETS`: beyond that the schedule slips (recorded as
``slipped_ns``) rather than bursting, so any window of ``w`` seconds holds
at most ``w*R + CATCH_UP_PACKETS + 1`` packets. Sequence numbers stay
consecutive, so a slip is never mistaken for loss. A send refused by the
kernel (no route during a failover) still uses its sequence number: for
the flow it is lost. It is counted by ``errno`` in ``send_errors``.

Receive times are the kernel's socket timestamps (``SO_TIMESTAMPNS``),
free of the receiver's scheduling delay; a missing or implausible one is
replaced by the time ``recvmsg`` returned and counted in
``timestamp_fallbacks``. ``rx_overflow`` is the socket's drop counter
(``SO_RXQ_OVFL``): datagrams lost at the receiver, not in the network.

Examples
--------
>>> header = encode_header(flow_id=7, seq=1, send_ns=2)
>>> header.hex()
'43504e460000000700000000000000010000000000000002'
>>> decode_header(header + bytes(8))
(7, 1, 2)
"""

from __future__ import annotations

import argparse
import collections
import errno
import ipaddress
import json
import math
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from cpn_net.tools import ToolsValueError
from cpn_net.tools.outage import NS_PER_S, RECORD_SCHEMA

MAGIC = b"CPNF"
HEADER = struct.Struct("!4sIQQ")
HEADER_BYTES = HEADER.size
MAX_PAYLOAD_BYTES = 65535 - 8  # the IPv6 payload length field bounds a UDP datagram (no jumbograms)
MAX_FLOW_ID = 2**32 - 1
CATCH_UP_PACKETS = 10
MAX_SLEEP_NS = 50_000_000  # bounds how long a stop signal waits at low rates
RECV_POLL_NS = 100_000_000
DRAIN_NS = 100_000_000
RECV_BUFFER_BYTES = 4 << 20
MAX_KERNEL_TS_AGE_NS = NS_PER_S
TOOL = "cpn_net.tools.flowgen"

# Linux asm-generic/socket.h values; Python's socket module does not name them.
SO_TIMESTAMPNS = 35
SO_RXQ_OVFL = 40
_TIMESPEC = struct.Struct("@ll")  # struct timespec: two C longs
_U32 = struct.Struct("@I")
_ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMESPEC.size) + socket.CMSG_SPACE(_U32.size)


def encode_header(flow_id: int, seq: int, send_ns: int) -> bytes:
    """The 24-byte header every flowgen datagram starts with.

    Parameters
    ----------
    flow_id : int
        0 .. 2**32-1.
    seq : int
        0 .. 2**64-1.
    send_ns : int
        ``CLOCK_REALTIME`` nanoseconds, 0 .. 2**64-1.

    Returns
    -------
    bytes

    Raises
    ------
    ToolsValueError
        If a field does not fit.

    Examples
    --------
    >>> len(encode_header(1, 0, 0)) == HEADER_BYTES == 24
    True
    >>> encode_header(-1, 0, 0)
    Traceback (most recent call last):
    ...
    cpn_net.tools.ToolsValueError: header flow_id=-1 seq=0 send_ns=0 do not fit (u32, u64, u64)
    """
    try:
        return HEADER.pack(MAGIC, flow_id, seq, send_ns)
    except struct.error as err:
        raise ToolsValueError(f"header flow_id={flow_id} seq={seq} send_ns={send_ns} "
                              "do not fit (u32, u64, u64)") from err


def decode_header(datagram: bytes | memoryview) -> tuple[int, int, int] | None:
    """``(flow_id, seq, send_ns)`` of a flowgen datagram, or None for anything else.

    Examples
    --------
    >>> decode_header(encode_header(3, 9, 5) + b"pad")
    (3, 9, 5)
    >>> decode_header(b"CPNF"), decode_header(b"XXXX" + bytes(20))
    (None, None)
    """
    if len(datagram) < HEADER_BYTES:
        return None
    magic, flow_id, seq, send_ns = HEADER.unpack_from(datagram)
    if magic != MAGIC:
        return None
    return flow_id, seq, send_ns


@dataclass(frozen=True)
class SendConfig:
    """A validated ``send`` invocation; ``count = round(rate_pps * duration_s)`` packets.

    Examples
    --------
    >>> SendConfig("::1", 9000, rate_pps=1000, duration_s=2.5).count
    2500
    >>> SendConfig("::1", 9000, rate_pps=0, duration_s=1)
    Traceback (most recent call last):
    ...
    cpn_net.tools.ToolsValueError: send: rate_pps=0 must be a finite number > 0, e.g. 1000
    """

    to: str
    port: int
    rate_pps: float
    duration_s: float
    size_bytes: int = HEADER_BYTES
    flow_id: int = 1
    src_port: int = 0

    def __post_init__(self) -> None:
        _check_address("send", "to", self.to, allow_unspecified=False)
        _check_int("send", "port", self.port, 1, 65535)
        _check_positive("send", "rate_pps", self.rate_pps, "1000")
        _check_positive("send", "duration_s", self.duration_s, "10")
        _check_int("send", "size_bytes", self.size_bytes, HEADER_BYTES, MAX_PAYLOAD_BYTES,
                   " (UDP payload: the flowgen header needs 24 bytes)")
        _check_int("send", "flow_id", self.flow_id, 0, MAX_FLOW_ID)
        _check_int("send", "src_port", self.src_port, 0, 65535, " (0 lets the kernel choose)")
        if self.count < 1:
            raise ToolsValueError(f"send: rate_pps={self.rate_pps} * duration_s={self.duration_s} "
                                  "makes no packet; raise either so that their product is >= 1")

    @property
    def count(self) -> int:
        return round(self.rate_pps * self.duration_s)


@dataclass(frozen=True)
class RecvConfig:
    """A validated ``recv`` invocation (``port=0``: any free port).

    Examples
    --------
    >>> RecvConfig("::", 0, duration_s=5).flow_id
    1
    >>> RecvConfig("10.0.0.1", 9000, duration_s=5)
    Traceback (most recent call last):
    ...
    cpn_net.tools.ToolsValueError: recv: bind='10.0.0.1' must be an IPv6 address (flowgen speaks UDP over IPv6)
    """

    bind: str
    port: int
    duration_s: float
    flow_id: int = 1

    def __post_init__(self) -> None:
        _check_address("recv", "bind", self.bind, allow_unspecified=True)
        _check_int("recv", "port", self.port, 0, 65535, " (0 lets the kernel choose)")
        _check_positive("recv", "duration_s", self.duration_s, "10")
        _check_int("recv", "flow_id", self.flow_id, 0, MAX_FLOW_ID)


@dataclass(frozen=True)
class PacingStats:
    """How a paced run went (times on the pacing clock).

    ``late`` counts packets sent more than one interval after their slot
    (the next one was already due); ``max_late_ns`` is the worst lateness.
    """

    sent: int
    start_ns: int
    late: int
    max_late_ns: int
    slipped_ns: int
    stopped: bool


def run_paced(count: int, rate_pps: float, send: Callable[[int], None], *,
              clock_ns: Callable[[], int] = time.monotonic_ns,
              sleep_ns: Callable[[int], None] | None = None,
              should_stop: Callable[[], bool] = lambda: False,
              catch_up_packets: int = CATCH_UP_PACKETS) -> PacingStats:
    """Call ``send(seq)`` for ``seq = 0 .. count-1`` on an absolute schedule.

    Parameters
    ----------
    count : int
        Packets to send.
    rate_pps : float
        Packet ``k`` is due at ``start + k / rate_pps``.
    send : callable
        Sends one packet; its exceptions propagate.
    clock_ns, sleep_ns : callable
        The pacing clock and a sleep on it (injected so tests need no time).
    should_stop : callable
        Polled before every packet and at least every 50 ms while waiting.
    catch_up_packets : int
        Most packets a late sender may owe; beyond, the schedule slips.

    Returns
    -------
    PacingStats

    Examples
    --------
    >>> now = [0]
    >>> sent_at = []
    >>> def sleep(ns): now[0] += ns
    >>> stats = run_paced(3, 1000, lambda seq: sent_at.append(now[0]), clock_ns=lambda: now[0], sleep_ns=sleep)
    >>> sent_at, stats.sent, stats.late
    ([0, 1000000, 2000000], 3, 0)
    """
    sleep = sleep_ns or _sleep_ns
    interval_ns = NS_PER_S / rate_pps
    backlog_ns = round(catch_up_packets * interval_ns)
    first_slot = start = clock_ns()
    seq = late = max_late = slipped = 0
    stopped = False
    while seq < count:
        if should_stop():
            stopped = True
            break
        now = clock_ns()
        slot = start + round(seq * interval_ns)
        if now < slot:
            sleep(min(slot - now, MAX_SLEEP_NS))
            continue
        lateness = now - slot
        max_late = max(max_late, lateness)
        late += lateness > interval_ns
        if lateness > backlog_ns:
            start += lateness - backlog_ns
            slipped += lateness - backlog_ns
        send(seq)
        seq += 1
    return PacingStats(sent=seq, start_ns=first_slot, late=late, max_late_ns=max_late,
                       slipped_ns=slipped, stopped=stopped)


class FlowCollector:
    """Accumulates one flow's arrivals and counts every other datagram.

    Duplicates are kept in ``received`` (the analysis counts them) and
    counted; ``malformed`` are datagrams without a flowgen header,
    ``foreign`` those of another flow id.

    Examples
    --------
    >>> c = FlowCollector(flow_id=1)
    >>> [c.add(d, 100) for d in (encode_header(1, 0, 50), encode_header(1, 0, 50), b"hi", encode_header(2, 0, 0))]
    ['ok', 'duplicate', 'malformed', 'foreign']
    >>> c.received, c.duplicates, c.malformed, c.foreign
    ([(0, 50, 100), (0, 50, 100)], 1, 1, 1)
    """

    def __init__(self, flow_id: int) -> None:
        self.flow_id = flow_id
        self.received: list[tuple[int, int, int]] = []
        self.duplicates = self.malformed = self.foreign = 0
        self._seen: set[int] = set()

    def add(self, datagram: bytes | memoryview, recv_ns: int) -> str:
        """Classify and record one datagram: ``ok``, ``duplicate``, ``foreign`` or ``malformed``."""
        header = decode_header(datagram)
        if header is None:
            self.malformed += 1
            return "malformed"
        flow_id, seq, send_ns = header
        if flow_id != self.flow_id:
            self.foreign += 1
            return "foreign"
        self.received.append((seq, send_ns, recv_ns))
        if seq in self._seen:
            self.duplicates += 1
            return "duplicate"
        self._seen.add(seq)
        return "ok"


def parse_ancillary(ancdata) -> tuple[int | None, int | None]:
    """``(kernel_receive_ns, socket_drops)`` from ``recvmsg`` ancillary data.

    Examples
    --------
    >>> parse_ancillary([(socket.SOL_SOCKET, SO_TIMESTAMPNS, _TIMESPEC.pack(2, 5)),
    ...                  (socket.SOL_SOCKET, SO_RXQ_OVFL, _U32.pack(3))])
    (2000000005, 3)
    >>> parse_ancillary([])
    (None, None)
    """
    kernel_ns = drops = None
    for level, kind, data in ancdata:
        if level != socket.SOL_SOCKET:
            continue
        if kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            kernel_ns = seconds * NS_PER_S + nanoseconds
        elif kind == SO_RXQ_OVFL and len(data) >= _U32.size:
            drops = _U32.unpack_from(data)[0]
    return kernel_ns, drops


def choose_receive_ns(kernel_ns: int | None, user_ns: int) -> tuple[int, bool]:
    """The receive time to record and whether it is the kernel's.

    The kernel's stamp is trusted only if it is at most
    :data:`MAX_KERNEL_TS_AGE_NS` before ``user_ns`` (read after ``recvmsg``
    returned) and not after it: a stamp on another clock would otherwise
    corrupt every delay.

    Examples
    --------
    >>> choose_receive_ns(990, 1000), choose_receive_ns(1001, 1000), choose_receive_ns(None, 1000)
    ((990, True), (1000, False), (1000, False))
    """
    if kernel_ns is not None and user_ns - MAX_KERNEL_TS_AGE_NS <= kernel_ns <= user_ns:
        return kernel_ns, True
    return user_ns, False


def send_flow(config: SendConfig, should_stop: Callable[[], bool] = lambda: False) -> dict:
    """Send the flow and return the sender's record (see the module notes).

    Raises
    ------
    OSError
        If the socket cannot be created or bound to ``src_port``.
    """
    family, _, _, _, destination = socket.getaddrinfo(config.to, config.port, socket.AF_INET6,
                                                      socket.SOCK_DGRAM)[0]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind(("::", config.src_port))
        transmitter = _Transmitter(sock, destination, config.flow_id, config.size_bytes)
        realtime_offset_ns = time.time_ns() - time.monotonic_ns()
        stats = run_paced(config.count, config.rate_pps, transmitter, should_stop=should_stop)
        src_port = sock.getsockname()[1]
    first_ns, last_ns = transmitter.first_send_ns, transmitter.last_send_ns
    achieved = None
    if stats.sent > 1 and last_ns > first_ns:
        achieved = (stats.sent - 1) * NS_PER_S / (last_ns - first_ns)
    return {
        "schema": RECORD_SCHEMA, "tool": TOOL, "role": "send",
        "to": config.to, "port": config.port, "src_port": src_port, "flow_id": config.flow_id,
        "size_bytes": config.size_bytes, "rate_pps": float(config.rate_pps),
        "duration_s": float(config.duration_s), "planned": config.count, "sent": stats.sent,
        "send_errors": dict(sorted(transmitter.errors.items())),
        "start_ns": stats.start_ns + realtime_offset_ns,
        "first_send_ns": first_ns, "last_send_ns": last_ns, "achieved_rate_pps": achieved,
        "late": stats.late, "max_late_ns": stats.max_late_ns, "slipped_ns": stats.slipped_ns,
        "catch_up_packets": CATCH_UP_PACKETS,
        "stopped_by": "signal" if stats.stopped else "done",
    }


def receive_flow(config: RecvConfig, on_ready: Callable[[int], None] = lambda port: None,
                 should_stop: Callable[[], bool] = lambda: False) -> dict:
    """Receive until the duration ends or ``should_stop()``; return the receiver's record.

    ``on_ready(port)`` is called once the socket is bound. Datagrams already
    queued when the receiver stops are still read and recorded.

    Raises
    ------
    OSError
        If the socket cannot be created or bound.
    """
    family, _, _, _, address = socket.getaddrinfo(config.bind, config.port, socket.AF_INET6,
                                                  socket.SOCK_DGRAM, 0, socket.AI_PASSIVE)[0]
    collector = FlowCollector(config.flow_id)
    fallbacks = 0
    drops = None
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER_BYTES)
        kernel_stamps = _try_enable(sock, SO_TIMESTAMPNS)
        counts_drops = _try_enable(sock, SO_RXQ_OVFL)
        sock.bind(address)
        port = sock.getsockname()[1]
        on_ready(port)
        started_ns = time.time_ns()
        deadline = time.monotonic_ns() + round(config.duration_s * NS_PER_S)
        stopped_by = "duration"

        def record(datagram: memoryview, ancdata) -> None:
            nonlocal fallbacks, drops
            user_ns = time.time_ns()
            kernel_ns, queue_drops = parse_ancillary(ancdata)
            recv_ns, from_kernel = choose_receive_ns(kernel_ns, user_ns)
            if kernel_stamps and not from_kernel:
                fallbacks += 1
            if queue_drops is not None:
                drops = max(drops or 0, queue_drops)
            collector.add(datagram, recv_ns)

        buffer = bytearray(MAX_PAYLOAD_BYTES + 1)
        view = memoryview(buffer)
        while True:
            if should_stop():
                stopped_by = "signal"
                break
            remaining = deadline - time.monotonic_ns()
            if remaining <= 0:
                break
            sock.settimeout(min(remaining, RECV_POLL_NS) / NS_PER_S)
            try:
                size, ancdata, _flags, _peer = sock.recvmsg_into([buffer], _ANCILLARY_BYTES)
            except TimeoutError:
                continue
            record(view[:size], ancdata)
        # what was already queued at the stop arrived before it; a sender still running must not hold us
        sock.setblocking(False)
        drain_deadline = time.monotonic_ns() + DRAIN_NS
        while time.monotonic_ns() < drain_deadline:
            try:
                size, ancdata, _flags, _peer = sock.recvmsg_into([buffer], _ANCILLARY_BYTES)
            except BlockingIOError:
                break
            record(view[:size], ancdata)
        rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return {
        "schema": RECORD_SCHEMA, "tool": TOOL, "role": "recv",
        "bind": config.bind, "port": port, "flow_id": config.flow_id,
        "duration_s": float(config.duration_s), "started_ns": started_ns, "stopped_ns": time.time_ns(),
        "stopped_by": stopped_by, "timestamps": "kernel" if kernel_stamps else "user",
        "timestamp_fallbacks": fallbacks, "rcvbuf_bytes": rcvbuf,
        "rx_overflow": (drops or 0) if counts_drops else None,
        "duplicates": collector.duplicates, "malformed": collector.malformed,
        "foreign": collector.foreign, "received": collector.received,
    }


def write_json_atomic(path: str, data) -> None:
    """Write JSON to ``path`` through a temporary file and a rename, so readers never see half a file."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(data, handle, separators=(",", ":"))
    os.replace(temporary, path)


class StopOnSignal:
    """Context manager: SIGTERM and SIGINT set a flag instead of killing the process.

    Calling the object tells whether a stop was asked; the previous handlers
    come back on exit.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> "StopOnSignal":
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def __call__(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, _frame) -> None:
        self.signum = signum


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module notes)."""
    parser = argparse.ArgumentParser(prog="python -m cpn_net.tools.flowgen",
                                     description="Measured constant-rate UDP/IPv6 test flow.")
    commands = parser.add_subparsers(dest="command", required=True)
    recv = commands.add_parser("recv", help="receive one flow and record every arrival")
    recv.add_argument("--bind", required=True, help="IPv6 address to listen on (:: for any)")
    recv.add_argument("--port", type=int, required=True, help="UDP port (0: any free, see --ready-file)")
    recv.add_argument("--duration-s", type=float, required=True, help="stop after this many seconds")
    recv.add_argument("--out", required=True, help="JSON record to write")
    recv.add_argument("--ready-file", help="written once bound: {pid, bind, port}")
    recv.add_argument("--flow-id", type=int, default=1, help="flow to record (default 1)")
    recv.set_defaults(command_parser=recv)
    send = commands.add_parser("send", help="send one paced flow")
    send.add_argument("--to", required=True, help="receiver's IPv6 address")
    send.add_argument("--port", type=int, required=True, help="receiver's UDP port")
    send.add_argument("--rate-pps", type=float, required=True, help="packets per second")
    send.add_argument("--duration-s", type=float, required=True, help="seconds of traffic")
    send.add_argument("--size-bytes", type=int, default=HEADER_BYTES,
                      help=f"UDP payload bytes, >= {HEADER_BYTES} (default)")
    send.add_argument("--flow-id", type=int, default=1, help="flow id carried in every datagram (default 1)")
    send.add_argument("--src-port", type=int, default=0, help="UDP source port (default: kernel's choice)")
    send.add_argument("--out", required=True, help="JSON summary to write")
    send.set_defaults(command_parser=send)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; bad arguments exit with status 2 (argparse's convention)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "recv":
            config = RecvConfig(args.bind, args.port, args.duration_s, args.flow_id)
        else:
            config = SendConfig(args.to, args.port, args.rate_pps, args.duration_s,
                                args.size_bytes, args.flow_id, args.src_port)
        for option, path in (("--out", args.out), ("--ready-file", getattr(args, "ready_file", None))):
            _check_output_path(args.command, option, path)
    except ToolsValueError as err:
        args.command_parser.error(str(err))
    with StopOnSignal() as stop:
        try:
            if args.command == "recv":
                def ready(port: int) -> None:
                    if args.ready_file:
                        write_json_atomic(args.ready_file, {"pid": os.getpid(), "bind": args.bind,
                                                            "port": port})
                record = receive_flow(config, on_ready=ready, should_stop=stop)
            else:
                record = send_flow(config, should_stop=stop)
            write_json_atomic(args.out, record)
        except OSError as err:
            sys.stderr.write(f"flowgen {args.command}: {err}\n")
            return 1
    return 0


class _Transmitter:
    """Stamps and sends one datagram per call; a refused send is counted by errno name."""

    def __init__(self, sock: socket.socket, destination, flow_id: int, size_bytes: int) -> None:
        self.sock = sock
        self.destination = destination
        self.flow_id = flow_id
        self.buffer = bytearray(size_bytes)
        self.errors: collections.Counter = collections.Counter()
        self.first_send_ns: int | None = None
        self.last_send_ns: int | None = None

    def __call__(self, seq: int) -> None:
        send_ns = time.time_ns()
        HEADER.pack_into(self.buffer, 0, MAGIC, self.flow_id, seq, send_ns)
        try:
            self.sock.sendto(self.buffer, self.destination)
        except OSError as err:
            self.errors[errno.errorcode.get(err.errno, str(err.errno))] += 1
        if self.first_send_ns is None:
            self.first_send_ns = send_ns
        self.last_send_ns = send_ns


def _sleep_ns(ns: int) -> None:
    time.sleep(ns / NS_PER_S)


def _try_enable(sock: socket.socket, option: int) -> bool:
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, 1)
    except OSError:
        return False
    return True


def _check_address(command: str, key: str, value, *, allow_unspecified: bool) -> None:
    try:
        address = ipaddress.IPv6Address(value)
    except (ipaddress.AddressValueError, ValueError, TypeError) as err:
        raise ToolsValueError(f"{command}: {key}={value!r} must be an IPv6 address "
                              "(flowgen speaks UDP over IPv6)") from err
    if address.is_unspecified and not allow_unspecified:
        raise ToolsValueError(f"{command}: {key}={value!r} is the unspecified address; "
                              "give the receiver's address, e.g. ::1")


def _check_int(command: str, key: str, value, low: int, high: int, hint: str = "") -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ToolsValueError(f"{command}: {key}={value!r} must be an integer in {low}..{high}{hint}")


def _check_positive(command: str, key: str, value, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ToolsValueError(f"{command}: {key}={value!r} must be a finite number > 0, e.g. {example}")


def _check_output_path(command: str, option: str, path: str | None) -> None:
    if path is None:
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ToolsValueError(f"{command}: {option} {path}: directory {directory} does not exist; create it first")


if __name__ == "__main__":
    sys.exit(main())
