"""The userspace link element: delay, jitter, random loss and link-down for one WAN link.

Used where the kernel has no ``sch_netem`` (see FACTS.md). The element runs in
the link's own network namespace (node ``l<a>x<b>``), between two veth ends:

    r<a>-ethN  <──veth──>  l<a>x<b>-eth0 [ this process ] l<a>x<b>-eth1  <──veth──>  r<b>-ethM

It reads every frame with an ``AF_PACKET`` socket on one side, decides its
fate, and writes it out of the other side after the drawn delay. Rate limits
are not done here: an HTB class on each egress interface of the link node
shapes what this process writes (kernel precision, and ``tc`` counts the
tail drops), see :mod:`cpn_net.emulation.linkem`.

Semantics, chosen to match ``netem`` where it matters:

- delay: every frame waits ``delay_ms``; with ``jitter_ms`` > 0 the wait is
  drawn uniformly from ``[delay - jitter, delay + jitter]`` (netem's default
  without a distribution table), clamped at 0.
- order: frames leave in arrival order (a frame never overtakes the one before
  it), like netem with a rate or a pfifo child. Reordering would make TCP
  throughput meaningless to compare across runs.
- loss: each frame is dropped independently with probability ``loss_pct``/100
  (Bernoulli, like netem ``loss random``), from a seeded generator. Drops are
  counted per direction: these counters are the ground truth that telemetry
  estimates are checked against.
- down: every frame is dropped (counted apart) and both interfaces are set
  down by the caller, so the routers see carrier loss as on a fibre cut.

Control: a Unix datagram socket (shared filesystem, reachable from the root
namespace) takes JSON requests ``{"op": "stats"}`` and
``{"op": "set", "delay_ms": .., "jitter_ms": .., "loss_pct": .., "down": ..}``
and answers with the element's settings and counters.

Run as ``python -m cpn_net.emulation.wire --a IF --b IF --control PATH ...``.
Pure decisions (:class:`WireSettings`, :func:`departure_time`) are kept apart
from the socket loop so they can be tested without root.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import heapq
import json
import math
import os
import random
import select
import signal
import socket
import struct
import sys
import time

from cpn_net import unixctl
from cpn_net.telemetry.marking import colour_of_frame

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
PACKET_STATISTICS = 6
FRAME_BUFFER_BYTES = 65536
SO_TIMESTAMPNS = 35  # = SCM_TIMESTAMPNS: kernel receive time of each frame
PR_SET_TIMERSLACK = 29
LATENESS_EWMA_GAIN = 0.05
MAX_LATENESS_S = 0.0005  # never send more than 0.5 ms early, whatever the machine's load
DIRECTIONS = ("ab", "ba")
SETTABLE = ("delay_ms", "jitter_ms", "loss_pct", "down")


@dataclasses.dataclass(frozen=True)
class WireSettings:
    """What the element does to each frame; validated at construction.

    Examples
    --------
    >>> WireSettings(delay_ms=10, jitter_ms=2, loss_pct=1.5)
    WireSettings(delay_ms=10, jitter_ms=2, loss_pct=1.5, down=False)
    >>> WireSettings(delay_ms=-1)
    Traceback (most recent call last):
    ...
    ValueError: delay_ms=-1 must be >= 0
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    down: bool = False

    def __post_init__(self) -> None:
        for name in ("delay_ms", "jitter_ms", "loss_pct"):
            value = getattr(self, name)
            # Control requests are JSON: "5" or true must not slip through, nor
            # Infinity (a frame that never leaves).
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name}={value!r} must be a finite number")
        if not isinstance(self.down, bool):
            raise ValueError(f"down={self.down!r} must be true or false")
        if not self.delay_ms >= 0:
            raise ValueError(f"delay_ms={self.delay_ms} must be >= 0")
        if not self.jitter_ms >= 0:
            raise ValueError(f"jitter_ms={self.jitter_ms} must be >= 0")
        if not 0 <= self.loss_pct <= 100:
            raise ValueError(f"loss_pct={self.loss_pct} must be within 0..100")

    def replace(self, **changes) -> "WireSettings":
        """A copy with the given fields changed (``None`` values ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def departure_time(arrival_s: float, settings: WireSettings, last_departure_s: float,
                   rng: random.Random) -> float:
    """When a frame arriving at ``arrival_s`` leaves the element (FIFO order kept).

    Examples
    --------
    >>> rng = random.Random(1)
    >>> departure_time(1.0, WireSettings(delay_ms=10), 0.0, rng)
    1.01
    >>> departure_time(1.0, WireSettings(delay_ms=10), 1.5, rng)  # never overtakes
    1.5
    """
    delay_s = settings.delay_ms / 1000.0
    if settings.jitter_ms:
        jitter_s = settings.jitter_ms / 1000.0
        delay_s = max(0.0, delay_s + rng.uniform(-jitter_s, jitter_s))
    return max(arrival_s + delay_s, last_departure_s)


def is_lost(settings: WireSettings, rng: random.Random) -> bool:
    """Bernoulli loss decision for one frame."""
    return settings.loss_pct > 0 and rng.random() * 100.0 < settings.loss_pct


#: Departure lateness the element counts (ms): a frame that leaves more than this after its
#: due time carried delay no link was configured with (the element woke up late).
LATE_THRESHOLDS_MS = (1, 5)


_LATE_KEYS = tuple((ms / 1000, f"late_over_{ms}ms") for ms in LATE_THRESHOLDS_MS)  # per frame: built once


def new_counters() -> dict:
    """Per direction: what the element received, forwarded and dropped, and how many frames left late.

    ``late_over_1ms`` / ``late_over_5ms`` are the emulator's own fidelity: a delay tail
    measured across the link is the link's only while these stay still.
    """
    return {d: {"received": 0, "forwarded": 0, "dropped_loss": 0, "dropped_down": 0,
                "send_errors": 0, "receive_errors": 0, "dropped_c0": 0, "dropped_c1": 0,
                **{f"late_over_{ms}ms": 0 for ms in LATE_THRESHOLDS_MS}} for d in DIRECTIONS}


def count_late(counters: dict, late_s: float) -> None:
    """Count a frame that left ``late_s`` seconds after its due time against each threshold.

    >>> counters = new_counters()["ab"]
    >>> for late_s in (-0.0002, 0.0004, 0.0021, 0.0093):
    ...     count_late(counters, late_s)
    >>> counters["late_over_1ms"], counters["late_over_5ms"]
    (2, 1)
    """
    for threshold_s, key in _LATE_KEYS:
        if late_s > threshold_s:
            counters[key] += 1


def late_totals(ground_truths) -> dict[str, int]:
    """Late departures summed over links and directions (``cpn status`` links' ``ground_truth``).

    Links whose element did not answer (or netem links, which count nothing) add nothing.

    >>> truth = {d: dict(new_counters()[d], late_over_1ms=2, late_over_5ms=1) for d in DIRECTIONS}
    >>> late_totals([truth, None, {"error": "element not answering"}])
    {'late_over_1ms': 4, 'late_over_5ms': 2}
    """
    totals = {f"late_over_{ms}ms": 0 for ms in LATE_THRESHOLDS_MS}
    for truth in ground_truths:
        for direction in DIRECTIONS:
            counters = (truth or {}).get(direction) or {}
            for key in totals:
                totals[key] += counters.get(key, 0)
    return totals


class Wire:
    """The socket loop joining two interfaces (needs root, runs in a namespace)."""

    def __init__(self, intf_a: str, intf_b: str, control_path: str,
                 settings: WireSettings, seed: int) -> None:
        self.settings = settings
        self.rng = random.Random(seed)
        self.counters = new_counters()
        self.sockets = {"a": _packet_socket(intf_a), "b": _packet_socket(intf_b)}
        self.intfs = {"a": intf_a, "b": intf_b}
        self.control_path = control_path
        if os.path.exists(control_path):
            os.unlink(control_path)
        self.control = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.control.bind(control_path)
        self.control.setblocking(False)
        # (departure_s, sequence, out_side, frame): sequence keeps the heap FIFO on ties
        self.queue: list = []
        self.sequence = 0
        self.last_departure = {"ab": 0.0, "ba": 0.0}
        self.lateness_s = 0.0  # EWMA of how late select() wakes us up
        self.running = True
        _set_timer_slack_ns(1)

    def run(self) -> None:
        fd_side = {s.fileno(): side for side, s in self.sockets.items()}
        readers = list(self.sockets.values()) + [self.control]
        while self.running:
            timeout = wake_at = None
            if self.queue:
                # Wake up early by the usual lateness of a timer wake-up, so frames leave on time.
                wake_at = self.queue[0][0] - self.lateness_s
                timeout = max(0.0, wake_at - time.time())
            try:
                ready, _, _ = select.select(readers, [], [], timeout)
            except InterruptedError:
                continue
            if not ready and timeout:
                # A pure timer wake-up: learn how late the kernel woke us (only from these,
                # wake-ups by arriving frames say nothing about timer latency).
                wake_latency = min(max(0.0, time.time() - wake_at), MAX_LATENESS_S)
                self.lateness_s += LATENESS_EWMA_GAIN * (wake_latency - self.lateness_s)
            for sock in ready:
                if sock is self.control:
                    self._serve_control()
                else:
                    self._receive(fd_side[sock.fileno()])
            self._transmit_due()

    def _receive(self, side: str) -> None:
        sock = self.sockets[side]
        direction = "ab" if side == "a" else "ba"
        out_side = "b" if side == "a" else "a"
        counters = self.counters[direction]
        # Drain what is queued so one busy direction cannot starve the timer heap.
        for _ in range(64):
            try:
                frame, ancillary, _flags, _address = sock.recvmsg(FRAME_BUFFER_BYTES, 64)
            except BlockingIOError:
                return
            except OSError:
                # ENETDOWN while the link is administratively down: nothing to read.
                counters["receive_errors"] += 1
                return
            now = _arrival_time(ancillary)
            counters["received"] += 1
            if self.settings.down:
                counters["dropped_down"] += 1
                self._count_colour(counters, "dropped", frame)
                continue
            if is_lost(self.settings, self.rng):
                counters["dropped_loss"] += 1
                self._count_colour(counters, "dropped", frame)
                continue
            leave = departure_time(now, self.settings, self.last_departure[direction], self.rng)
            self.last_departure[direction] = leave
            self.sequence += 1
            heapq.heappush(self.queue, (leave, self.sequence, out_side, frame))

    @staticmethod
    def _count_colour(counters: dict, what: str, frame: bytes) -> None:
        """Per alternate-marking colour, the ground truth telemetry is checked against."""
        colour = colour_of_frame(frame)
        if colour is not None:
            counters[f"{what}_c{colour}"] += 1

    def _transmit_due(self) -> None:
        now = time.time()
        while self.queue and self.queue[0][0] <= now + self.lateness_s:
            due, _, out_side, frame = heapq.heappop(self.queue)
            direction = "ab" if out_side == "b" else "ba"
            try:
                self.sockets[out_side].send(frame)
                self.counters[direction]["forwarded"] += 1
                count_late(self.counters[direction], time.time() - due)
            except OSError:
                # ENOBUFS: the egress qdisc (the HTB rate limit) is full: a tail drop.
                self.counters[direction]["send_errors"] += 1

    def _serve_control(self) -> None:
        unixctl.serve_pending(self.control, self.handle_request)

    def handle_request(self, data: bytes) -> dict:
        try:
            request = json.loads(data)
            if not isinstance(request, dict):
                raise ValueError(f"request {request!r} must be a JSON object such as {{\"op\": \"stats\"}}")
            op = request.get("op")
            if op == "set":
                unknown = sorted(set(request) - {"op", *SETTABLE})
                if unknown:
                    raise ValueError(f"set: unknown key {unknown[0]!r}; known keys are {', '.join(SETTABLE)}")
                self.settings = self.settings.replace(
                    delay_ms=request.get("delay_ms"), jitter_ms=request.get("jitter_ms"),
                    loss_pct=request.get("loss_pct"), down=request.get("down"))
            elif op == "reset":
                self.counters = new_counters()
            elif op != "stats":
                raise ValueError(f"op={op!r} must be one of stats, set, reset")
        except (ValueError, TypeError, AttributeError) as err:
            return {"ok": False, "error": str(err)}
        return {"ok": True, "settings": dataclasses.asdict(self.settings),
                "counters": self.counters, "queued": len(self.queue),
                "wakeup_lateness_us": round(self.lateness_s * 1e6, 1),
                "kernel": {side: _socket_stats(s) for side, s in self.sockets.items()}}

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.control.close()
        try:
            os.unlink(self.control_path)
        except FileNotFoundError:
            pass


def _arrival_time(ancillary) -> float:
    """The kernel's receive timestamp (CLOCK_REALTIME) of a frame, else now.

    Timing delay from the kernel's receipt, not from when this process got round
    to reading the frame, keeps the element's own latency out of the link delay.
    """
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds + nanoseconds * 1e-9
    return time.time()


def _set_timer_slack_ns(slack_ns: int) -> None:
    """Ask the kernel to wake us within ``slack_ns`` of a timeout (default slack is 50 µs)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(slack_ns), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _packet_socket(intf: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    # Frames this process sends must not come back to it as "received".
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((intf, ETH_P_ALL))
    sock.setblocking(False)
    return sock


def _socket_stats(sock: socket.socket) -> dict:
    """Kernel counters of an AF_PACKET socket (``tp_drops`` = receive-buffer overruns).

    Reading PACKET_STATISTICS resets them, so the element's replies carry deltas.
    """
    raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
    packets, drops = int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:8], "little")
    return {"packets": packets, "drops": drops}


request = unixctl.request  # the CLI, the emulator and the controller talk to elements through it


#: Scheduling niceness of an element. Its frames leave on a timer; under CPU contention
#: (2 cores shared with userspace OVS, the controller and the traffic) a late wake-up is
#: extra delay no link was configured with. On the 5 ms link of the tiny topology, router
#: to router, 3,000 pings at 100/s: RTT p99 12.9 -> 11.4 ms and p99.9 16.5 -> 13.5 ms with
#: nice -10 (p50 10.1 both). Not real-time: a flooded element must not starve the rest.
ELEMENT_NICE = -10


def _raise_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, 0, ELEMENT_NICE)
    except OSError:
        pass  # not root: run at the default priority


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="interface towards the first router")
    parser.add_argument("--b", required=True, help="interface towards the second router")
    parser.add_argument("--control", required=True, help="Unix datagram socket path")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--loss-pct", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    settings = WireSettings(args.delay_ms, args.jitter_ms, args.loss_pct)
    _raise_priority()
    wire = Wire(args.a, args.b, args.control, settings, args.seed)

    def stop(_signum, _frame):
        # select() would be restarted after a handler that returns (PEP 475): leave it.
        wire.running = False
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    try:
        wire.run()
    finally:
        wire.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
