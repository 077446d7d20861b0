"""IFIT-style telemetry in the controller: alternate marking for loss, IOAM probes for delay.

Alternate marking (RFC 9341 §3.1). The site switches colour every IPv6 packet
from a host (:mod:`cpn_net.telemetry.marking`); the colour flips at every period
boundary (period T, default 1 s, epoch on whole seconds). Every router interface
counts coloured packets per direction with nftables. Half a period after a
boundary (RFC 9341 §3.1's guard: packets of the closed block have arrived
everywhere as long as delay + jitter < T/2), the service reads every counter
once. A counter of colour c only moves during blocks of colour c, so the block
that just closed counted ``value now - value at the previous read of colour c``
(two periods earlier). Per direction of each WAN link, loss = what the upstream
router sent minus what the downstream router received, for that block; the
emulator's link element counts its own drops per colour, the ground truth each
block is compared with.

Why T = 1 s: the flagship's largest one-way delay is about 8 ms and the
userspace link element adds well under a millisecond of variation, so T/2 =
500 ms is a wide margin; a shorter T gives faster detection (loss onset is
reported at most 1.5 T after it starts) at the cost of more counter reads.

IOAM (RFC 9197 pre-allocated trace, RFC 9486 hop-by-hop option). For every
direction u->v of every WAN link, a host at site u sends probes (10/s) carrying
the trace option and an SRH whose first segment is u's End.X SID towards v, so
the probe crosses exactly that link whatever the IGP prefers; the routers'
kernels fill in node id and receive timestamps. A collector at site v reads the
hop-by-hop header (``IPV6_RECVHOPOPTS``). Routers are namespaces on one host
sharing one clock, so per-link one-way delay is the difference of the two
routers' timestamps.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import math
import os
import select
import socket
import struct
import threading
import time

from controllers.southbound.netns import run_in, socket_in
from cpn_net import stats
from cpn_net.emulation import wire
from cpn_net.srv6.sids import end_x_sid
from cpn_net.srv6.srh import SegmentRoutingHeader
from cpn_net.telemetry.altmark import hop_loss
from cpn_net.telemetry.errors import TelemetryError
from cpn_net.telemetry.ioam import build_trace_option, node_timestamp_ns, parse_hop_by_hop, trace_bit
from cpn_net.telemetry.marking import (MAX_SLICE_MARK, NFT_TABLE, link_points, mark_point, nft_ruleset,
                                      point_of_counter)

LOG = logging.getLogger("cpn.telemetry")
IOAM_NAMESPACE = 123
TRACE_TYPE = trace_bit(0) | trace_bit(2) | trace_bit(3)  # hop limit + node id, timestamp s, timestamp µs
PROBE_PORT = 9999
PROBE = struct.Struct("!4sHQQ")  # magic, link index, sequence, send time (ns)
PROBE_MAGIC = b"CPNP"
DELAY_WINDOW_S = 10.0
HISTORY_BLOCKS = 3600
WARMUP_S = 3.0  # delay samples of the first seconds are dropped (neighbour discovery, boot load)


class TelemetryService:
    def __init__(self, plan, run_dir: str, send_colour, *, period_s: float = 1.0, probe_hz: float = 10.0,
                 avoid_hosts=()) -> None:
        self.plan = plan
        self.run_dir = run_dir
        self.send_colour = send_colour
        self.period_s = period_s
        self.probe_interval_s = 1.0 / probe_hz
        self.running = False
        self.lock = threading.Lock()
        self.epoch = None
        self.colour = 0
        # Hosts of isolated slices neither send nor receive probes: isolation blocks SRv6 from them.
        self.avoid_hosts = frozenset(avoid_hosts)
        self.stable: dict[tuple[str, int], tuple[int, int]] = {}  # (point, colour) -> (block, packets)
        self.truth_stable: dict[tuple[str, int], tuple[int, int]] = {}
        self.loss: dict[str, dict] = {}  # directed link -> latest block reading
        self.mark_loss: dict[str, dict] = {}  # directed link -> {slice mark: latest block reading}
        self.loss_history: collections.deque = collections.deque(maxlen=HISTORY_BLOCKS)
        self.delay_samples: dict[str, collections.deque] = collections.defaultdict(
            lambda: collections.deque(maxlen=2000))
        self.probe_stats = {"sent": 0, "received": 0, "undecodable": 0, "foreign": 0, "warm_up_dropped": 0}
        self.links = {}  # directed link id -> (wan link, upstream point, downstream point, ground-truth direction)
        for link in plan.wan_links:
            points = link_points(link)
            for direction, (name, (up, down)) in zip(("ab", "ba"), points.items()):
                self.links[name] = (link, up, down, direction)
        self.threads = []
        self.warm_until = 0.0

    # ------------------------------------------------------------ set-up
    def configure_routers(self) -> None:
        """nftables colour counters and IOAM (namespace, node and interface ids) on every router."""
        wan = {intf for link in self.plan.wan_links for intf in (link.intf_a, link.intf_b)}
        for router in self.plan.nodes_of("router"):
            names = [i.name for i in router.interfaces]
            run_in(router.name, ["nft", "-f", "-"], stdin=nft_ruleset(names, [n for n in names if n in wan]))
            run_in(router.name, ["ip", "ioam", "namespace", "add", str(IOAM_NAMESPACE)], check=False)
            sysctls = [f"net.ipv6.ioam6_id={router.site_id}"]
            for intf in router.interfaces:
                number = intf.name.rsplit("eth", 1)[1]
                sysctls += [f"net.ipv6.conf.{intf.name}.ioam6_enabled=1", f"net.ipv6.conf.{intf.name}.ioam6_id={number}"]
            run_in(router.name, ["sysctl", "-qw", *sysctls])

    def start(self) -> None:
        self.configure_routers()
        self.warm_until = time.monotonic() + WARMUP_S
        self.running = True
        for target, name in ((self._marking_loop, "cpn-altmark"), (self._probe_loop, "cpn-ioam")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.running = False

    # ------------------------------------------------- alternate marking
    def _marking_loop(self) -> None:
        self.epoch = math.floor(time.time()) + 1.0
        index = 0
        while self.running:
            boundary = self.epoch + index * self.period_s
            _sleep_until(boundary)
            self.colour = index % 2
            try:
                self.send_colour(self.colour)
            except Exception:
                LOG.exception("colour flip to %s", self.colour)
            _sleep_until(boundary + self.period_s / 2)
            if index >= 1:
                try:
                    self._read_block(index - 1)
                except Exception:
                    LOG.exception("reading counters of block %s", index - 1)
            index += 1

    def _read_block(self, index: int) -> None:
        colour = index % 2
        read_at = time.time()
        counters = {}
        for router in self.plan.nodes_of("router"):
            counters.update(read_router_counters(router.name))
        truth = {}
        for link in self.plan.wan_links:
            path = os.path.join(self.run_dir, "links", f"{link.element}.sock")
            try:
                reply = wire.request(path, {"op": "stats"}, timeout_s=0.5)
            except OSError:
                continue
            for direction in ("ab", "ba"):
                c = reply["counters"][direction]
                truth[f"{link.element}:{direction}"] = c.get(f"dropped_c{colour}", 0)
            truth[f"{link.element}:settings"] = reply["settings"]
        block_counts = _block_deltas(self.stable, counters, colour, index)
        truth_counts = _block_deltas(self.truth_stable, {k: {colour: v} for k, v in truth.items()
                                                          if not k.endswith(":settings")}, colour, index)
        with self.lock:
            for name, (link, up, down, direction) in self.links.items():
                sent, received = block_counts.get(up), block_counts.get(down)
                dropped = truth_counts.get(f"{link.element}:{direction}")
                settings = truth.get(f"{link.element}:settings") or {}
                reading = {"block": index, "colour": colour, "read_at": read_at,
                           "upstream_point": up, "downstream_point": down,
                           **_loss_fields(up, down, sent, received),
                           "truth_dropped": dropped,
                           "configured_loss_pct": settings.get("loss_pct"),
                           "configured_delay_ms": settings.get("delay_ms"),
                           "configured_down": settings.get("down")}
                reading["matches_truth"] = (None if reading["lost"] is None or dropped is None
                                            else reading["lost"] == dropped)
                self.loss[name] = reading
                self.loss_history.append({"link": name, **reading})
                self.mark_loss[name] = _mark_readings(block_counts, up, down, index, read_at)

    # ------------------------------------------------------------- IOAM
    def _probe_loop(self) -> None:
        try:
            senders, collectors = self._open_probe_sockets()
        except Exception:
            LOG.exception("opening IOAM probe sockets")
            return
        names = list(self.links)
        seq = 0
        next_send = time.monotonic()
        while self.running:
            now = time.monotonic()
            if now >= next_send:
                for index, (name, sock, destination) in enumerate(senders):
                    payload = PROBE.pack(PROBE_MAGIC, names.index(name), seq, time.time_ns())
                    try:
                        sock.sendto(payload, (destination, PROBE_PORT))
                        with self.lock:
                            self.probe_stats["sent"] += 1
                    except OSError:
                        pass  # link down: no route over it; the missing samples show it
                seq += 1
                next_send += self.probe_interval_s
                if next_send < now:
                    next_send = now + self.probe_interval_s
            ready, _, _ = select.select(collectors, [], [], max(0.0, next_send - time.monotonic()))
            for sock in ready:
                self._collect(sock, names)

    def _open_probe_sockets(self):
        first_host = {}
        for node in self.plan.nodes:
            if node.kind in ("client", "compute") and node.name not in self.avoid_hosts:
                first_host.setdefault(node.site, node)
        senders, collectors = [], []
        for site, host in first_host.items():
            sock = socket_in(host.namespace, socket.AF_INET6, socket.SOCK_DGRAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPOPTS, 1)
            sock.bind(("::", PROBE_PORT))
            sock.setblocking(False)
            collectors.append(sock)
        for name, (link, _up, _down, direction) in self.links.items():
            (site_u, router_u), (site_v, router_v) = ((link.site_a, link.router_a), (link.site_b, link.router_b))
            if direction == "ba":
                (site_u, router_u), (site_v, router_v) = (site_v, router_v), (site_u, router_u)
            if site_u not in first_host or site_v not in first_host:
                continue
            sender, collector = first_host[site_u], first_host[site_v]
            destination = collector.interfaces[0].addresses[0].split("/")[0]
            sock = socket_in(sender.namespace, socket.AF_INET6, socket.SOCK_DGRAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_HOPOPTS,
                            build_trace_option(namespace_id=IOAM_NAMESPACE, trace_type=TRACE_TYPE, n_hops=2,
                                               next_header=43))
            # The kernel pushes this SRH (RFC 8754) with the End.X SID of the link as the first segment.
            first = end_x_sid(_site_id(self.plan, site_u), _site_id(self.plan, site_v))
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RTHDR,
                            SegmentRoutingHeader.for_segments([first, destination], next_header=17).to_bytes())
            sock.setblocking(False)
            senders.append((name, sock, destination))
        return senders, collectors

    def _collect(self, sock, names) -> None:
        while True:
            try:
                data, ancillary, _flags, _addr = sock.recvmsg(512, 1024)
            except (BlockingIOError, InterruptedError):
                return
            if len(data) < PROBE.size or data[:4] != PROBE_MAGIC:
                self.probe_stats["foreign"] += 1
                continue
            _magic, link_index, _seq, _sent_ns = PROBE.unpack_from(data)
            hbh = next((d for level, kind, d in ancillary if kind == socket.IPV6_HOPOPTS), None)
            try:
                nodes = parse_hop_by_hop(hbh).nodes if hbh else ()
            except TelemetryError:
                nodes = ()
            stamps = [node_timestamp_ns(n) for n in nodes]
            if len(stamps) < 2 or None in stamps[:2] or link_index >= len(names):
                self.probe_stats["undecodable"] += 1
                continue
            delay_ms = (stamps[1] - stamps[0]) / 1e6
            with self.lock:
                self.probe_stats["received"] += 1
                if time.monotonic() < self.warm_until:
                    # First probes of a path wait for neighbour discovery: not the link's delay.
                    self.probe_stats["warm_up_dropped"] += 1
                    continue
                self.delay_samples[names[link_index]].append((time.time(), delay_ms))

    # ------------------------------------------------------------- view
    def view(self) -> dict:
        now = time.time()
        links = []
        with self.lock:
            for name, (link, up, down, direction) in self.links.items():
                recorded = list(self.delay_samples.get(name, ()))
                samples = [d for t, d in recorded if now - t <= DELAY_WINDOW_S]
                last_at = max((t for t, _ in recorded), default=None)
                delay = None
                if samples:
                    diffs = [abs(b - a) for a, b in zip(samples, samples[1:])]
                    delay = {"delay_ms": round(stats.percentile(samples, 50), 3),
                             "delay_mean_ms": round(sum(samples) / len(samples), 3),
                             "delay_p99_ms": round(stats.percentile(samples, 99), 3),
                             "jitter_ms": round(sum(diffs) / len(diffs), 3) if diffs else 0.0,
                             "samples": len(samples), "window_s": DELAY_WINDOW_S,
                             "age_s": round(now - last_at, 3)}
                loss = self.loss.get(name)
                if loss is not None:
                    loss = {**loss, "age_s": round(now - loss["read_at"], 3)}
                by_mark = {str(mark): {**reading, "age_s": round(now - reading["read_at"], 3)}
                           for mark, reading in self.mark_loss.get(name, {}).items()}
                links.append({"link": name, "from": link.site_a if direction == "ab" else link.site_b,
                              "to": link.site_b if direction == "ab" else link.site_a,
                              "delay": delay, "loss": loss, "loss_by_mark": by_mark,
                              "ground_truth": {"delay_ms": link.delay_ms, "jitter_ms": link.jitter_ms,
                                               "loss_pct": loss and loss.get("configured_loss_pct")}})
            history = list(self.loss_history)
            probes = dict(self.probe_stats)
        judged = [h for h in history if h.get("matches_truth") is not None]
        return {"period_s": self.period_s, "epoch": self.epoch, "now": now, "links": links,
                "probes": probes,
                "accuracy": {"blocks_judged": len(judged),
                             "blocks_matching_truth": sum(1 for h in judged if h["matches_truth"])}}

    def delay_samples_since(self, since: float) -> dict[str, list[tuple[float, float]]]:
        """Per directed link, the IOAM delay samples ``(unix time, ms)`` taken after ``since`` (the map's history)."""
        with self.lock:
            out = {}
            for name, samples in self.delay_samples.items():
                recent = list(itertools.takewhile(lambda sample: sample[0] > since, reversed(samples)))
                out[name] = recent[::-1]
            return out

    def loss_blocks(self) -> list[dict]:
        with self.lock:
            return list(self.loss_history)


def read_router_counters(router: str) -> dict[str, dict[int, int]]:
    """Every colour counter of one router: ``{point: {colour: packets}}``."""
    proc = run_in(router, ["nft", "-j", "list", "counters", "table", "netdev", NFT_TABLE], timeout_s=5)
    out: dict[str, dict[int, int]] = {}
    for item in json.loads(proc.stdout)["nftables"]:
        counter = item.get("counter")
        if counter:
            point, colour = point_of_counter(counter["name"])
            out.setdefault(point, {})[colour] = counter["packets"]
    return out


def _mark_readings(block_counts: dict, up: str, down: str, index: int, read_at: float) -> dict[int, dict]:
    """Per slice mark that crossed a link direction in block ``index``: what it sent, what arrived, the loss.

    A mark is a slice on this link (admission gives a mark to one slice per
    link), so this is the slice's own loss there; marks with nothing counted
    at either end are left out.
    """
    out = {}
    for mark in range(1, MAX_SLICE_MARK + 1):
        up_mark, down_mark = mark_point(up, mark), mark_point(down, mark)
        sent, received = block_counts.get(up_mark), block_counts.get(down_mark)
        if not sent and not received:
            continue
        out[mark] = {"block": index, "read_at": read_at, **_loss_fields(up_mark, down_mark, sent, received)}
    return out


def _loss_fields(up: str, down: str, sent: int | None, received: int | None) -> dict:
    """``sent``, ``received``, ``lost`` and ``loss_pct`` (4 decimals) of one block on one hop."""
    hop = hop_loss(up, down, sent, received)
    return {"sent": sent, "received": received, "lost": hop.lost_packets,
            "loss_pct": None if hop.loss_pct is None else round(hop.loss_pct, 4)}


def _block_deltas(stable: dict, counters: dict, colour: int, index: int) -> dict[str, int]:
    """Packets each point counted in block ``index`` (of ``colour``); points read too late are left out.

    ``stable`` remembers, per (point, colour), the block a stable value closed and
    the value; block ``index`` is only known when the previous block of the same
    colour (``index - 2``) was read too.
    """
    out = {}
    for point, by_colour in counters.items():
        if colour not in by_colour:
            continue
        value = by_colour[colour]
        previous = stable.get((point, colour))
        stable[(point, colour)] = (index, value)
        if previous is not None and previous[0] == index - 2 and value >= previous[1]:
            out[point] = value - previous[1]
    return out


def _site_id(plan, site: str) -> int:
    for router in plan.nodes_of("router"):
        if router.site == site:
            return router.site_id
    raise KeyError(site)


def _sleep_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)
