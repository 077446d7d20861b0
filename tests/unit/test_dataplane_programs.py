"""The eBPF SRv6 programs (cpn_net/dataplane/bpf/srv6.bpf.c) on real packets, byte by byte, with no network.

Each test builds a frame with scapy, runs ``cpn_sid`` (ingress: End, End.X, End.DX6, End.DT6,
End.B6.Encaps) or ``cpn_encap`` (egress: H.Encaps) on it through ``BPF_PROG_TEST_RUN`` and
compares what the program left with scapy's decoding *and* with the project's own pure model
(:mod:`cpn_net.srv6.packet`, :mod:`cpn_net.srv6.srh`).

The programs are compiled into a temporary build directory, loaded and pinned in a bpffs
mounted under a temporary run directory (:func:`cpn_net.dataplane.attach.load`), and removed
and unmounted at the end. ``cpn_encap`` asks the FIB (``bpf_fib_lookup``), so its tests run in
a scratch namespace ``cpn-bpftest-<pid>`` with a veth pair and routes; ``BPF_PROG_TEST_RUN``
uses the calling thread's namespace, so those runs happen on a thread that joined it.

Needs root, clang and bpftool; skipped without them, except under ``CPN_REQUIRE_INTEGRATION=1``
(CI), where a missing tool fails. ``pytest -s`` shows the per-behaviour cost figures.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import shutil
import statistics
import struct
import subprocess

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import (HBHOptUnknown, IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrSegmentRouting, PadN)
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from controllers.southbound.netns import in_namespace
from cpn_net.dataplane import attach, bpfsys, build
from cpn_net.dataplane.records import (BINDING_KEY_BASE, STAT_NAMES, Action, EncapEntry, SidEntry, address_key,
                                       kernel_metric, prefix_key, u32_key)
from cpn_net.srv6.packet import decode_srv6, encapsulate
from cpn_net.srv6.sids import binding_sid, end_dt6_sid, end_dx6_sid, end_sid, end_x_sid

TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT = 0, 2, 7
MAC_ROUTER, MAC_PEER = "02:00:00:00:01:01", "02:00:00:00:02:02"
CLIENT, COMPUTE = "2001:db8:1::1:1", "2001:db8:3::2:1"
HEADEND = "fcbb:bb00:9::1"  # an upstream router's tunnel source

# The router under test is site 2; its local SIDs:
END = str(end_sid(2))
END_X = str(end_x_sid(2, 3))
END_DX6 = str(end_dx6_sid(2, "compute", 1))
END_DT6 = str(end_dt6_sid(2, 100))
END_B6 = str(binding_sid(2, 1))
MARK_X, MARK_DX6, MARK_DT6 = 0x5C000023, 0x5C000031, 0x5C000064
# ... and segments elsewhere:
FAR_END, FAR_END_X, FAR_DX6 = str(end_sid(4)), str(end_x_sid(4, 5)), str(end_dx6_sid(5, "compute", 1))
BOUND = [str(end_sid(6)), str(end_x_sid(6, 7)), str(end_dt6_sid(7, 100))]
B6_KEY = BINDING_KEY_BASE + 1
B6_SOURCE = "fcbb:bb00:2::1"

NAMESPACE = f"cpn-bpftest-{os.getpid()}"
REQUIRED_TOOLS = ("clang", "bpftool", "ip", "mount", "umount", "sysctl")


def _missing_component() -> str | None:
    if os.geteuid() != 0:
        return "needs root (bpf(2), a bpffs mount, a network namespace)"
    for tool in REQUIRED_TOOLS:
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run scripts/setup.sh)"
    return None


# --- fixtures -----------------------------------------------------------------------------------

class Dataplane:
    """One router's programs and maps, pinned in a scratch bpffs, opened for the tests."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.maps: dict[str, bpfsys.PinnedMap] = {}
        self.progs: dict[str, int] = {}
        for name, key, value in (("cpn_sids", 16, 12), ("cpn_encaps", 4, 312), ("cpn_prefixes", 20, 4),
                                 ("cpn_hosts", 16, 1), ("cpn_config", 4, 4), ("cpn_stats", 4, 8)):
            self.maps[name] = bpfsys.PinnedMap(os.path.join(where, "maps", name), key, value)
        for name in ("cpn_sid", "cpn_encap"):
            self.progs[name] = bpfsys.obj_get(os.path.join(where, "prog", name))
        self.cpus = bpfsys.possible_cpus()

    def reset(self) -> None:
        """Empty every map but the counters; boundary off."""
        for name in ("cpn_sids", "cpn_encaps", "cpn_prefixes", "cpn_hosts"):
            for key in self.maps[name].keys():
                self.maps[name].delete(key)
        self.boundary(False)

    def sid(self, address: str, action: Action, mark: int = 0, encap: int = 0) -> None:
        self.maps["cpn_sids"].update(address_key(address), SidEntry(action, mark, encap).pack())

    def encap(self, key: int, entry: EncapEntry) -> None:
        self.maps["cpn_encaps"].update(u32_key(key), entry.pack())

    def prefix(self, prefix: str) -> None:
        self.maps["cpn_prefixes"].update(prefix_key(prefix), u32_key(1))

    def host(self, address: str) -> None:
        self.maps["cpn_hosts"].update(address_key(address), b"\1")

    def boundary(self, on: bool) -> None:
        self.maps["cpn_config"].update(u32_key(0), struct.pack("<I", int(on)))

    def counters(self) -> dict[str, int]:
        stats = self.maps["cpn_stats"]
        return {name: bpfsys.percpu_sum(stats.lookup(u32_key(i), 8 * self.cpus))
                for i, name in enumerate(STAT_NAMES)}

    def run(self, program: str, frame: bytes, **ctx) -> "Run":
        before = self.counters()
        rc, out, ns, fields = bpfsys.test_run(self.progs[program], frame, **ctx)
        after = self.counters()
        return Run(rc, out, ns, fields["mark"], {k: after[k] - before[k] for k in after if after[k] != before[k]})

    def close(self) -> None:
        for fd in self.progs.values():
            os.close(fd)
        for pinned in self.maps.values():
            pinned.close()


@dataclasses.dataclass
class Run:
    rc: int
    out: bytes
    ns: int
    mark: int
    counted: dict  # counters that moved, by how much

    @property
    def ipv6(self) -> bytes:
        """What follows the Ethernet header."""
        return self.out[14:]


@pytest.fixture(scope="module")
def dataplane(tmp_path_factory):
    reason = _missing_component()
    if reason:
        if os.environ.get("CPN_REQUIRE_INTEGRATION"):
            pytest.fail(f"the eBPF data plane tests must run here but {reason}")
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("bpf")
    run_dir = str(base / "run")
    saved = os.environ.get("CPN_BPF_BUILD_DIR")
    os.environ["CPN_BPF_BUILD_DIR"] = str(base / "build")
    dp = None
    try:
        where = attach.load(run_dir, "t1")  # compiles into the temporary build directory first
        assert os.path.exists(build.object_path("srv6")) and build.object_path("srv6").startswith(str(base))
        dp = Dataplane(where)
        yield dp
    finally:
        if dp is not None:
            dp.close()
        attach.remove(run_dir)
        if saved is None:
            os.environ.pop("CPN_BPF_BUILD_DIR", None)
        else:
            os.environ["CPN_BPF_BUILD_DIR"] = saved
        assert not attach.is_mounted(attach.bpf_root(run_dir)), "the scratch bpffs is still mounted"


@pytest.fixture
def dp(dataplane):
    dataplane.reset()
    yield dataplane
    dataplane.reset()


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise AssertionError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


@dataclasses.dataclass
class Scratch:
    """The scratch namespace for the egress program: routes for bpf_fib_lookup to find."""

    name: str
    lan_ifindex: int  # the "LAN" side (veth1): where forwarded packets come in
    metric: int  # main table route to 2001:db8:3::/64
    marked_metric: int  # table 100's route to it (fwmark 7)
    bare_metric: int  # 2001:db8:4::/64: a route whose metric has no encap entry
    reduced_metric: int  # 2001:db8:7::/64: encap.red onto one segment

    def run(self, dp: Dataplane, frame: bytes, **ctx) -> Run:
        return in_namespace(self.name, lambda: dp.run("cpn_encap", frame, **ctx))


@pytest.fixture(scope="module")
def scratch(dataplane):
    name = NAMESPACE
    _ip("netns", "add", name)
    try:
        n = ("-n", name)
        _ip(*n, "link", "set", "lo", "up")
        _ip(*n, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
        _ip(*n, "link", "set", "veth0", "up")
        _ip(*n, "link", "set", "veth1", "up")
        _ip(*n, "-6", "addr", "add", "2001:db8:ff::1/64", "dev", "veth0", "nodad")
        subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
                       check=True, capture_output=True, timeout=30)
        metric, marked, bare, reduced = (kernel_metric(100, 5), kernel_metric(100, 6), kernel_metric(100, 9),
                                         kernel_metric(100, 11))
        via = ("via", "2001:db8:ff::2", "dev", "veth0", "onlink")
        _ip(*n, "-6", "route", "add", "2001:db8:3::/64", *via, "metric", str(metric))
        _ip(*n, "-6", "route", "add", "2001:db8:5::/64", *via, "metric", str(metric))  # not in cpn_prefixes
        _ip(*n, "-6", "route", "add", "2001:db8:4::/64", *via, "metric", str(bare))
        _ip(*n, "-6", "route", "add", "2001:db8:7::/64", *via, "metric", str(reduced))
        _ip(*n, "-6", "route", "add", "2001:db8:3::/64", *via, "metric", str(marked), "table", "100")
        _ip(*n, "-6", "rule", "add", "fwmark", "7", "lookup", "100")
        lan = json.loads(_ip(*n, "-j", "link", "show", "veth1").stdout)[0]["ifindex"]
        yield Scratch(name, lan, metric, marked, bare, reduced)
    finally:
        _ip("netns", "del", name, check=False)
        assert name not in _ip("netns", "list").stdout, f"scratch namespace {name} left behind"


# --- frames and the model -----------------------------------------------------------------------

def inner_packet(tc: int = 0xB8, fl: int = 0x12345, dst: str = COMPUTE, payload: bytes = b"compute request"):
    return IPv6(src=CLIENT, dst=dst, tc=tc, fl=fl, hlim=63) / UDP(sport=5000, dport=7000) / Raw(payload)


def srv6_frame(dst: str, travel_srh_order: list[str], segleft: int, *, inner=None, nh: int | None = None,
               hbh=None, src: str = HEADEND, tc: int = 0, fl: int = 0) -> bytes:
    """Ether / IPv6 / [hop-by-hop] / SRH(addresses in SRH order) / inner."""
    inner = inner_packet() if inner is None else inner
    srh = IPv6ExtHdrSegmentRouting(addresses=travel_srh_order, segleft=segleft)
    if nh is not None:
        srh.nh = nh
    outer = IPv6(src=src, dst=dst, hlim=60, tc=tc, fl=fl)
    layers = outer / hbh / srh / inner if hbh is not None else outer / srh / inner
    return bytes(Ether(src=MAC_PEER, dst=MAC_ROUTER) / layers)


def ether(ipv6_bytes: bytes) -> bytes:
    return bytes(Ether(src=MAC_PEER, dst=MAC_ROUTER, type=0x86DD)) + ipv6_bytes


def model_end(frame: bytes) -> bytes:
    """The project's model of End's header operation on a frame (RFC 8986 §4.1)."""
    parsed = decode_srv6(frame[14:])
    srh = parsed.srh.advanced()
    outer = dataclasses.replace(parsed.outer, destination=srh.active_segment)
    return frame[:14] + outer.to_bytes() + srh.to_bytes() + parsed.inner


def ioam_like_hop_by_hop() -> IPv6ExtHdrHopByHop:
    """A hop-by-hop header with an IOAM-like option (type 0x31) starting 4-byte aligned: 32 bytes."""
    trace = bytes([0, 0]) + bytes.fromhex("0001" "0c00" "f00000" "00") + bytes(16)  # hdr 8 + room for data
    option = HBHOptUnknown(otype=0x31, optdata=trace)
    hbh = IPv6ExtHdrHopByHop(options=[PadN(optdata=b""), option])
    assert len(bytes(hbh)) % 8 == 0 and bytes(hbh)[4] == 0x31
    return hbh


# --- cpn_sid: End, End.X ------------------------------------------------------------------------

def test_a_packet_to_no_local_sid_and_non_ipv6_frames_pass_untouched(dp):
    dp.sid(END, Action.END)
    for frame in (srv6_frame(FAR_END, [FAR_DX6, FAR_END], 1),
                  bytes(Ether(src=MAC_PEER, dst=MAC_ROUTER) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / Raw(b"v4"))):
        run = dp.run("cpn_sid", frame, mark=0x33)
        assert (run.rc, run.out, run.mark, run.counted) == (TC_ACT_OK, frame, 0x33, {})


def test_end_rewrites_the_destination_decrements_segments_left_and_leaves_the_mark(dp):
    dp.sid(END, Action.END)
    frame = srv6_frame(END, [FAR_DX6, FAR_END_X, END], 2)
    run = dp.run("cpn_sid", frame, mark=0x33)
    assert run.rc == TC_ACT_OK and run.mark == 0x33 and run.counted == {"end": 1}
    assert run.out == model_end(frame)
    out = Ether(run.out)
    srh = out[IPv6ExtHdrSegmentRouting]
    assert (out[IPv6].dst, srh.segleft, srh.lastentry) == (FAR_END_X, 1, 2)
    assert srh.addresses == [FAR_DX6, FAR_END_X, END]
    assert bytes(srh.payload) == bytes(inner_packet())  # payload untouched
    assert out[IPv6].hlim == 60  # the stack decrements it when it forwards


def test_end_x_also_sets_the_entrys_mark(dp):
    dp.sid(END_X, Action.END_X, mark=MARK_X)
    frame = srv6_frame(END_X, [FAR_DX6, END_X], 1)
    run = dp.run("cpn_sid", frame, mark=0x33)
    assert (run.rc, run.mark, run.counted) == (TC_ACT_OK, MARK_X, {"end_x": 1})
    assert run.out == model_end(frame)
    out = Ether(run.out)
    assert (out[IPv6].dst, out[IPv6ExtHdrSegmentRouting].segleft) == (FAR_DX6, 0)


def test_end_x_finds_the_srh_behind_an_ioam_hop_by_hop_option(dp):
    dp.sid(END_X, Action.END_X, mark=MARK_X)
    hbh = ioam_like_hop_by_hop()
    frame = srv6_frame(END_X, [FAR_DX6, FAR_END, END_X], 2, hbh=hbh)
    run = dp.run("cpn_sid", frame)
    assert (run.rc, run.mark, run.counted) == (TC_ACT_OK, MARK_X, {"end_x": 1})
    out = Ether(run.out)
    assert out[IPv6].nh == 0 and out[IPv6ExtHdrHopByHop].nh == 43
    assert bytes(out[IPv6ExtHdrHopByHop])[1:len(bytes(hbh))] == bytes(hbh)[1:]  # the IOAM option untouched
    srh = out[IPv6ExtHdrSegmentRouting]
    assert (out[IPv6].dst, srh.segleft, srh.addresses) == (FAR_END, 1, [FAR_DX6, FAR_END, END_X])
    # exactly two fields changed: the destination and Segments Left
    srh_at = 14 + 40 + len(bytes(hbh))
    expected = bytearray(frame)
    expected[14 + 24:14 + 40] = ipaddress.IPv6Address(FAR_END).packed
    expected[srh_at + 3] = 1
    assert run.out == bytes(expected)
    # from the SRH on, what the model makes of the same packet without the option
    assert run.out[srh_at:] == model_end(srv6_frame(END_X, [FAR_DX6, FAR_END, END_X], 2))[14 + 40:]


def test_end_on_a_reduced_srh_takes_the_last_entry(dp):
    dp.sid(END, Action.END)
    # H.Encaps.Red onto [END, FAR_END, FAR_DX6]: END lives only in the destination
    packet = encapsulate(bytes(inner_packet()), HEADEND, [END, FAR_END, FAR_DX6], reduced=True)
    frame = ether(packet)
    run = dp.run("cpn_sid", frame)
    assert (run.rc, run.counted) == (TC_ACT_OK, {"end": 1})
    assert run.out == model_end(frame)
    srh = Ether(run.out)[IPv6ExtHdrSegmentRouting]
    assert (Ether(run.out)[IPv6].dst, srh.segleft, srh.lastentry) == (FAR_END, 1, 1)


@pytest.mark.parametrize("action", [Action.END, Action.END_X], ids=["End", "End.X"])
def test_end_and_end_x_drop_at_segments_left_zero(dp, action):
    sid = END if action is Action.END else END_X
    dp.sid(sid, action, mark=MARK_X if action is Action.END_X else 0)
    run = dp.run("cpn_sid", srv6_frame(sid, [sid, FAR_END], 0), mark=0x33)
    assert (run.rc, run.counted, run.mark) == (TC_ACT_SHOT, {"drop_segments_left": 1}, 0x33)


def test_end_drops_segments_left_beyond_the_last_entry(dp):
    dp.sid(END, Action.END)
    frame = bytearray(srv6_frame(END, [FAR_DX6, END], 1))
    frame[14 + 40 + 3] = 3  # Segments Left 3, Last Entry 1
    run = dp.run("cpn_sid", bytes(frame))
    assert (run.rc, run.counted) == (TC_ACT_SHOT, {"drop_segments_left": 1})


def test_end_without_an_srh_is_dropped(dp):
    dp.sid(END, Action.END)
    frame = bytes(Ether(src=MAC_PEER, dst=MAC_ROUTER) / IPv6(src=HEADEND, dst=END) / UDP() / Raw(b"x"))
    run = dp.run("cpn_sid", frame)
    assert (run.rc, run.counted) == (TC_ACT_SHOT, {"drop_no_srh": 1})


# --- cpn_sid: End.DX6, End.DT6 ------------------------------------------------------------------

DECAPS = [pytest.param(Action.END_DX6, END_DX6, MARK_DX6, "end_dx6", id="End.DX6"),
          pytest.param(Action.END_DT6, END_DT6, MARK_DT6, "end_dt6", id="End.DT6")]


@pytest.mark.parametrize("action, sid, mark, counter", DECAPS)
def test_decapsulation_pops_the_outer_header_and_srh_and_sets_the_mark(dp, action, sid, mark, counter):
    dp.sid(sid, action, mark=mark)
    inner = bytes(inner_packet())
    frame = ether(encapsulate(inner, HEADEND, [FAR_END, sid]))
    assert decode_srv6(frame[14:]).srh.segments_left == 1
    advanced = model_end(frame)  # as it arrives: the previous endpoint left SL 0 and the destination = sid
    run = dp.run("cpn_sid", advanced, mark=0x33)
    assert (run.rc, run.mark, run.counted) == (TC_ACT_OK, mark, {counter: 1})
    assert run.out[:14] == frame[:14] and run.ipv6 == inner == decode_srv6(advanced[14:]).inner
    assert Ether(run.out)[IPv6].dst == COMPUTE and Ether(run.out)[UDP].dport == 7000


@pytest.mark.parametrize("action, sid, mark, counter", DECAPS)
def test_reduced_encapsulation_without_an_srh_is_decapsulated(dp, action, sid, mark, counter):
    dp.sid(sid, action, mark=mark)
    inner = bytes(inner_packet())
    frame = ether(encapsulate(inner, HEADEND, [sid], reduced=True))
    assert Ether(frame)[IPv6].nh == 41
    run = dp.run("cpn_sid", frame)
    assert (run.rc, run.mark, run.counted) == (TC_ACT_OK, mark, {counter: 1})
    assert run.out == frame[:14] + inner


@pytest.mark.parametrize("action, sid, mark, counter", DECAPS)
def test_decapsulation_drops_with_segments_left_not_zero(dp, action, sid, mark, counter):
    dp.sid(sid, action, mark=mark)
    run = dp.run("cpn_sid", srv6_frame(sid, [FAR_DX6, sid], 1), mark=0x33)
    assert (run.rc, run.mark, run.counted) == (TC_ACT_SHOT, 0x33, {"drop_segments_left": 1})


@pytest.mark.parametrize("action, sid, mark, counter", DECAPS)
def test_decapsulation_drops_what_is_not_ipv6_inside(dp, action, sid, mark, counter):
    dp.sid(sid, action, mark=mark)
    udp_inside = srv6_frame(sid, [sid], 0, inner=UDP(sport=1, dport=2) / Raw(b"not ipv6"), nh=17)
    plain = bytes(Ether(src=MAC_PEER, dst=MAC_ROUTER) / IPv6(src=HEADEND, dst=sid) / UDP() / Raw(b"x"))
    for frame in (udp_inside, plain):
        run = dp.run("cpn_sid", frame)
        assert (run.rc, run.counted) == (TC_ACT_SHOT, {"drop_not_ipv6_inside": 1})


# --- cpn_sid: End.B6.Encaps ---------------------------------------------------------------------

def test_end_b6_encaps_advances_the_inner_srh_then_pushes_the_bound_list(dp):
    dp.encap(B6_KEY, EncapEntry.for_segments(B6_SOURCE, BOUND))
    dp.sid(END_B6, Action.END_B6_ENCAPS, encap=B6_KEY)
    frame = srv6_frame(END_B6, [FAR_DX6, END_B6], 1, tc=0x2E, fl=0xABCDE)
    run = dp.run("cpn_sid", frame, mark=0x33)
    assert (run.rc, run.mark, run.counted) == (TC_ACT_OK, 0x33, {"end_b6_encaps": 1})
    inner_after_end = model_end(frame)[14:]
    expected = encapsulate(inner_after_end, B6_SOURCE, BOUND, flow_label=0xABCDE,  # traffic class copied
                           hop_limit=IPv6(inner_after_end).hlim)  # and the hop limit, as seg6 does
    assert run.out == frame[:14] + expected
    out = Ether(run.out)
    outer, srh = out[IPv6], out[IPv6ExtHdrSegmentRouting]
    assert (outer.src, outer.dst, outer.tc, outer.fl, outer.nh) == (B6_SOURCE, BOUND[0], 0x2E, 0xABCDE, 43)
    assert outer.plen == len(run.ipv6) - 40 == len(inner_after_end) + 8 + 16 * len(BOUND)
    assert (srh.segleft, srh.lastentry, srh.addresses, srh.nh) == (2, 2, list(reversed(BOUND)), 41)
    inner = IPv6(bytes(srh.payload))
    assert (inner.dst, inner[IPv6ExtHdrSegmentRouting].segleft) == (FAR_DX6, 0)


def test_end_b6_encaps_without_its_bound_list_drops(dp):
    dp.sid(END_B6, Action.END_B6_ENCAPS, encap=B6_KEY)
    run = dp.run("cpn_sid", srv6_frame(END_B6, [FAR_DX6, END_B6], 1))
    assert (run.rc, run.counted) == (TC_ACT_SHOT, {"drop_error": 1})


# --- several local SIDs in one run --------------------------------------------------------------

def test_end_then_end_x_of_the_same_router_in_one_run(dp):
    dp.sid(END, Action.END)
    dp.sid(END_X, Action.END_X, mark=MARK_X)
    frame = srv6_frame(END, [FAR_DX6, END_X, END], 2)
    run = dp.run("cpn_sid", frame)
    assert (run.rc, run.mark, run.counted) == (TC_ACT_OK, MARK_X, {"end": 1, "end_x": 1})
    assert run.out == model_end(model_end(frame))
    assert (Ether(run.out)[IPv6].dst, Ether(run.out)[IPv6ExtHdrSegmentRouting].segleft) == (FAR_DX6, 0)


def test_end_then_end_dt6_of_the_same_router_in_one_run(dp):
    dp.sid(END, Action.END)
    dp.sid(END_DT6, Action.END_DT6, mark=MARK_DT6)
    inner = bytes(inner_packet())
    frame = ether(encapsulate(inner, HEADEND, [END, END_DT6]))
    run = dp.run("cpn_sid", frame)
    assert (run.rc, run.mark, run.counted) == (TC_ACT_OK, MARK_DT6, {"end": 1, "end_dt6": 1})
    assert run.out == frame[:14] + inner


def test_at_most_four_local_sids_per_run(dp):
    mine = [str(end_x_sid(2, n)) for n in range(10, 15)]
    for sid in mine:
        dp.sid(sid, Action.END)
    frame = ether(encapsulate(bytes(inner_packet()), HEADEND, mine + [FAR_DX6]))
    run = dp.run("cpn_sid", frame)
    assert (run.rc, run.counted) == (TC_ACT_OK, {"end": 4})
    expected = frame
    for _ in range(4):
        expected = model_end(expected)
    assert run.out == expected and Ether(run.out)[IPv6].dst == mine[4]


# --- the SR domain boundary ---------------------------------------------------------------------

BOUNDARY = [pytest.param(Action.END_DX6, END_DX6, id="End.DX6"), pytest.param(Action.END_DT6, END_DT6, id="End.DT6"),
            pytest.param(Action.END_B6_ENCAPS, END_B6, id="End.B6.Encaps")]


def boundary_frame(sid: str, src: str) -> bytes:
    if sid == END_B6:
        return srv6_frame(sid, [FAR_DX6, sid], 1, src=src)
    return srv6_frame(sid, [sid], 0, src=src)


@pytest.mark.parametrize("action, sid", BOUNDARY)
def test_boundary_drops_hosts_addressing_a_delivering_sid(dp, action, sid):
    dp.encap(B6_KEY, EncapEntry.for_segments(B6_SOURCE, BOUND))
    dp.sid(sid, action, mark=MARK_DX6, encap=B6_KEY)
    dp.host(CLIENT)
    dp.boundary(True)
    frame = boundary_frame(sid, CLIENT)
    run = dp.run("cpn_sid", frame)
    assert (run.rc, run.counted, run.out) == (TC_ACT_SHOT, {"drop_boundary": 1}, frame)
    # a router's packet (source not a host) to the same SID passes the boundary
    run = dp.run("cpn_sid", boundary_frame(sid, HEADEND))
    assert run.rc == TC_ACT_OK and "drop_boundary" not in run.counted
    # and with the boundary off the host's packet is processed
    dp.boundary(False)
    run = dp.run("cpn_sid", frame)
    assert run.rc == TC_ACT_OK and "drop_boundary" not in run.counted and run.out != frame


def test_boundary_lets_hosts_address_end_x(dp):
    dp.sid(END_X, Action.END_X, mark=MARK_X)
    dp.host(CLIENT)
    dp.boundary(True)
    frame = srv6_frame(END_X, [FAR_DX6, END_X], 1, src=CLIENT)
    run = dp.run("cpn_sid", frame)
    assert (run.rc, run.mark, run.counted) == (TC_ACT_OK, MARK_X, {"end_x": 1})
    assert run.out == model_end(frame)


# --- cpn_encap: H.Encaps at egress (in the scratch namespace) -----------------------------------

ENCAP_SOURCE = "fcbb:bb00:1::1"
MAIN_LIST = [str(end_x_sid(1, 2)), str(end_sid(4)), str(end_dx6_sid(3, "compute", 1))]
MARKED_LIST = [str(end_x_sid(1, 5)), str(end_dx6_sid(3, "compute", 1))]


def encap_setup(dp: Dataplane, scratch: Scratch) -> None:
    for prefix in ("2001:db8:3::/64", "2001:db8:4::/64", "2001:db8:6::/64", "2001:db8:7::/64"):
        dp.prefix(prefix)
    dp.encap(scratch.metric, EncapEntry.for_segments(ENCAP_SOURCE, MAIN_LIST))
    dp.encap(scratch.marked_metric, EncapEntry.for_segments(ENCAP_SOURCE, MARKED_LIST))
    dp.encap(scratch.reduced_metric, EncapEntry.for_segments(ENCAP_SOURCE, [FAR_DX6], reduced=True))


def _fib_failure(scratch: Scratch, run: Run, dst: str, mark: int) -> str:
    route = _ip("-n", scratch.name, "-6", "route", "get", dst, "from", CLIENT, "iif", "veth1", "mark", str(mark),
                check=False)
    return (f"cpn_encap left the packet untouched (counted {run.counted}); the FIB has "
            f"`{(route.stdout or route.stderr).strip()}`. If that route is there, bpf_fib_lookup refused the "
            f"call: BPF_FIB_LOOKUP_MARK needs Linux >= 6.10 (this is {os.uname().release})")


def plain_frame(dst: str = COMPUTE, tc: int = 0xB8, fl: int = 0x12345) -> tuple[bytes, bytes]:
    inner = bytes(inner_packet(tc=tc, fl=fl, dst=dst))
    return ether(inner), inner


@pytest.mark.parametrize("ingress", ["lan", "local"])
def test_h_encaps_pushes_the_routes_prebuilt_header(dp, scratch, ingress):
    encap_setup(dp, scratch)
    frame, inner = plain_frame()
    ifindex = scratch.lan_ifindex if ingress == "lan" else 0  # 0: locally sent, looked up as from lo
    run = scratch.run(dp, frame, ingress_ifindex=ifindex)
    assert run.rc == TC_ACT_REDIRECT  # sent through egress again, to be measured with its outer header
    assert run.counted == {"h_encaps": 1}, _fib_failure(scratch, run, COMPUTE, 0)
    expected = encapsulate(inner, ENCAP_SOURCE, MAIN_LIST, flow_label=0x12345,  # traffic class copied by default
                           hop_limit=IPv6(inner).hlim)  # the hop limit too, as seg6 does
    assert run.out == frame[:14] + expected
    out = Ether(run.out)
    outer, srh = out[IPv6], out[IPv6ExtHdrSegmentRouting]
    assert (outer.src, outer.dst, outer.tc, outer.fl, outer.hlim) == (ENCAP_SOURCE, MAIN_LIST[0], 0xB8, 0x12345,
                                                                      IPv6(inner).hlim)
    assert outer.plen == 8 + 16 * 3 + len(inner)
    assert (srh.segleft, srh.lastentry, srh.nh, srh.addresses) == (2, 2, 41, list(reversed(MAIN_LIST)))
    assert bytes(srh.payload) == inner and decode_srv6(run.ipv6).inner == inner
    assert run.mark == 0


def test_h_encaps_red_onto_one_segment_pushes_a_bare_ipv6_header(dp, scratch):
    encap_setup(dp, scratch)
    frame, inner = plain_frame(dst="2001:db8:7::1", tc=0, fl=0)
    run = scratch.run(dp, frame, ingress_ifindex=scratch.lan_ifindex)
    assert run.counted == {"h_encaps": 1}, _fib_failure(scratch, run, "2001:db8:7::1", 0)
    assert run.out == frame[:14] + encapsulate(inner, ENCAP_SOURCE, [FAR_DX6], reduced=True, hop_limit=IPv6(inner).hlim)


def test_h_encaps_follows_the_mark_through_policy_routing(dp, scratch):
    encap_setup(dp, scratch)
    frame, inner = plain_frame()
    run = scratch.run(dp, frame, ingress_ifindex=scratch.lan_ifindex, mark=7)
    assert run.counted == {"h_encaps": 1}, _fib_failure(scratch, run, COMPUTE, 7)
    expected_marked = frame[:14] + encapsulate(inner, ENCAP_SOURCE, MARKED_LIST, flow_label=0x12345,
                                               hop_limit=IPv6(inner).hlim)
    expected_main = frame[:14] + encapsulate(inner, ENCAP_SOURCE, MAIN_LIST, flow_label=0x12345,
                                             hop_limit=IPv6(inner).hlim)
    assert run.out != expected_main, ("the mark did not reach bpf_fib_lookup (BPF_FIB_LOOKUP_MARK ignored): "
                                      "the main table's route was used for a packet marked 7")
    assert run.out == expected_marked and run.mark == 7
    # another mark: no rule, the main table
    run = scratch.run(dp, frame, ingress_ifindex=scratch.lan_ifindex, mark=8)
    assert run.out == expected_main


def test_h_encaps_passes_a_destination_outside_the_policy_prefixes_untouched(dp, scratch):
    encap_setup(dp, scratch)
    frame, _ = plain_frame(dst="2001:db8:5::1")  # its route has the policy's metric, but no prefix entry
    run = scratch.run(dp, frame, ingress_ifindex=scratch.lan_ifindex)
    assert (run.rc, run.out, run.counted) == (TC_ACT_OK, frame, {})


def test_h_encaps_passes_a_route_whose_metric_has_no_entry_untouched(dp, scratch):
    encap_setup(dp, scratch)
    frame, _ = plain_frame(dst="2001:db8:4::1")
    run = scratch.run(dp, frame, ingress_ifindex=scratch.lan_ifindex)
    assert (run.rc, run.out, run.counted) == (TC_ACT_OK, frame, {})


def test_h_encaps_counts_a_fib_miss_and_passes(dp, scratch):
    encap_setup(dp, scratch)
    frame, _ = plain_frame(dst="2001:db8:6::1")  # in cpn_prefixes, no route
    run = scratch.run(dp, frame, ingress_ifindex=scratch.lan_ifindex)
    assert (run.rc, run.out, run.counted) == (TC_ACT_OK, frame, {"fib_miss": 1})


def test_h_encaps_passes_non_ipv6_and_srv6_transit_untouched(dp, scratch):
    encap_setup(dp, scratch)
    v4 = bytes(Ether(src=MAC_PEER, dst=MAC_ROUTER) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / Raw(b"v4"))
    transit = srv6_frame(FAR_END, [FAR_DX6, FAR_END], 1)
    for frame in (v4, transit):
        run = scratch.run(dp, frame, ingress_ifindex=scratch.lan_ifindex)
        assert (run.rc, run.out, run.counted) == (TC_ACT_OK, frame, {})


# --- cost ---------------------------------------------------------------------------------------

REPEAT = 100_000
SINGLE_RUNS = 2_000


def _cost(dp: Dataplane, program: str, frame: bytes, **ctx) -> tuple[int, int, dict, int]:
    """(mean ns per run over REPEAT runs, how many of them did the behaviour, what moved, median of single runs)."""
    before = dp.counters()
    rc, _, ns, _ = bpfsys.test_run(dp.progs[program], frame, repeat=REPEAT, **ctx)
    after = dp.counters()
    moved = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    singles = [bpfsys.test_run(dp.progs[program], frame, **ctx)[2] for _ in range(SINGLE_RUNS)]
    return ns, rc, moved, int(statistics.median(singles))


def test_cost_per_behaviour(dp, scratch, capsys):
    """Not a timing assertion: ns per run, printed for the lead's note (pytest -s).

    BPF_PROG_TEST_RUN with ``repeat`` runs the program again on the *same* skb: a behaviour that
    rewrites the packet does its work once and the other runs see the result (mostly a pass for
    a destination that is no longer a local SID), so the repeat figure is the steady state. The
    "single" column is the median of separate one-run calls on the original frame (each call's own
    timer included): the cost of the behaviour itself. Counters show what the repeat runs did.
    """
    dp.sid(END, Action.END)
    dp.sid(END_X, Action.END_X, mark=MARK_X)
    dp.sid(END_DX6, Action.END_DX6, mark=MARK_DX6)
    dp.sid(END_DT6, Action.END_DT6, mark=MARK_DT6)
    dp.encap(B6_KEY, EncapEntry.for_segments(B6_SOURCE, BOUND))
    dp.sid(END_B6, Action.END_B6_ENCAPS, encap=B6_KEY)
    encap_setup(dp, scratch)
    inner = bytes(inner_packet())
    cases = [
        ("ingress pass (no local SID)", "cpn_sid", srv6_frame(FAR_END, [FAR_DX6, FAR_END], 1), {}),
        ("End", "cpn_sid", srv6_frame(END, [FAR_DX6, FAR_END, END], 2), {}),
        ("End.X", "cpn_sid", srv6_frame(END_X, [FAR_DX6, END_X], 1), {}),
        ("End.X behind IOAM hop-by-hop", "cpn_sid",
         srv6_frame(END_X, [FAR_DX6, END_X], 1, hbh=ioam_like_hop_by_hop()), {}),
        ("End + End.X (two passes)", "cpn_sid", srv6_frame(END, [FAR_DX6, END_X, END], 2), {}),
        ("End.DX6", "cpn_sid", srv6_frame(END_DX6, [END_DX6], 0), {}),
        ("End.DT6", "cpn_sid", srv6_frame(END_DT6, [END_DT6], 0), {}),
        ("End.DT6 reduced (no SRH)", "cpn_sid", ether(encapsulate(inner, HEADEND, [END_DT6], reduced=True)), {}),
        ("End.B6.Encaps (3 segments)", "cpn_sid", srv6_frame(END_B6, [FAR_DX6, END_B6], 1), {}),
        ("drop: SL 0 at End.X", "cpn_sid", srv6_frame(END_X, [END_X], 0), {}),
        ("egress pass (not a policy prefix)", "cpn_encap", plain_frame(dst="2001:db8:5::1")[0],
         {"ingress_ifindex": scratch.lan_ifindex}),
        ("egress pass (metric without entry)", "cpn_encap", plain_frame(dst="2001:db8:4::1")[0],
         {"ingress_ifindex": scratch.lan_ifindex}),
        ("H.Encaps (3 segments)", "cpn_encap", plain_frame()[0], {"ingress_ifindex": scratch.lan_ifindex}),
        ("H.Encaps, marked (2 segments)", "cpn_encap", plain_frame()[0],
         {"ingress_ifindex": scratch.lan_ifindex, "mark": 7}),
    ]
    rows = []
    for name, program, frame, ctx in cases:
        if program == "cpn_encap":
            ns, rc, moved, single = in_namespace(scratch.name, lambda: _cost(dp, program, frame, **ctx))
        else:
            ns, rc, moved, single = _cost(dp, program, frame, **ctx)
        rows.append((name, ns, single, rc, moved))
    with capsys.disabled():
        print(f"\n{'behaviour':38} {'repeat ns':>9} {'single ns':>9}  rc  counters over the {REPEAT} repeat runs")
        for name, ns, single, rc, moved in rows:
            print(f"{name:38} {ns:9d} {single:9d} {rc:3d}  {moved}")
    assert all(single > 0 for _, _, single, _, _ in rows)
