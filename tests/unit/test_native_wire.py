"""The native link element (``cpn_net/emulation/native/wire.c``) between scratch namespaces.

Root tests: each builds the element with gcc and runs it between its own namespaces
(``cpn-lf<pid>-*``, removed at the end), never a cpn network. Without root or gcc they skip,
unless ``CPN_REQUIRE_INTEGRATION`` is set (CI), where that is a failure. The build's own
errors are checked without root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import time

import pytest

from cpn_net.emulation import wire as pywire
from cpn_net.emulation.native import build
from cpn_net.emulation.native import lab as lablib
from cpn_net.stats import binomial_interval

REQUIRED = bool(os.environ.get("CPN_REQUIRE_INTEGRATION"))
TCLASS = {0: 0x20 << 2, 1: 0x21 << 2}  # IPv6 traffic class of alternate-marking colour 0 / 1
UDP_PORT = 6101


def _need_lab() -> None:
    problem = lablib.missing_tool(("ip", "ethtool", "ping", "gcc"))
    if problem:
        if REQUIRED:
            pytest.fail(f"CPN_REQUIRE_INTEGRATION is set, so the native link element must be tested here, "
                        f"but: {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="module")
def binaries():
    _need_lab()
    return {"wire": build.ensure_built("wire"), "udpflood": build.ensure_built("udpflood")}


@pytest.fixture(scope="module")
def lab(binaries):
    with lablib.Lab(plain=False) as lab:
        yield lab


@pytest.fixture
def element(lab):
    element = lab.start_element("native", delay_ms=0, seed=7)
    try:
        yield element
    finally:
        lab.stop_element(element)


def _python_reply(message: dict) -> dict:
    """What the Python element answers (its request handler, no sockets)."""
    wire = object.__new__(pywire.Wire)
    wire.settings = pywire.WireSettings(delay_ms=10, jitter_ms=1, loss_pct=2)
    wire.counters = pywire.new_counters()
    wire.queue = []
    wire.lateness_s = 0.0
    wire.sockets = {}
    return wire.handle_request(json.dumps(message).encode() if isinstance(message, dict) else message)


def _udp(lab, binaries, count: int, pps: float, reference_ms: float, size: int = 64, tclass: int | None = None,
         batch: int = 1) -> tuple[dict, dict]:
    """``count`` datagrams A -> B at ``pps``; (sender's JSON, receiver's JSON)."""
    seconds = count / pps
    receiver = lab.popen(lab.ns_b, [binaries["udpflood"], "recv", str(UDP_PORT),
                                    str(seconds + reference_ms / 1000 + 1.0), str(reference_ms)])
    try:
        assert "listening" in receiver.stdout.readline()
        cmd = [binaries["udpflood"], "send", lablib.ADDR_B, str(UDP_PORT), str(pps), str(seconds), str(size),
               str(batch)]
        if tclass is not None:
            cmd.append(str(tclass))
        sent = json.loads(lab.ns(lab.ns_a, cmd).stdout.strip().splitlines()[-1])
        out, err = receiver.communicate(timeout=seconds + 30)
        got = json.loads(out.strip().splitlines()[-1])
    finally:
        if receiver.poll() is None:
            os.kill(receiver.pid, signal.SIGKILL)
            receiver.wait()
    return sent, got


def _ping(lab, count: int, interval: float = 0.005, size: int | None = None) -> tuple[list[float], str]:
    cmd = ["ping", "-6", "-n", "-c", str(count), "-i", str(interval), "-W", "2"]
    if size is not None:
        cmd += ["-s", str(size), "-M", "do"]
    out = lab.ns(lab.ns_a, cmd + [lablib.ADDR_B], check=False).stdout
    return [float(t) for t in re.findall(r"time=([\d.]+) ms", out)], out


def _settled(element, timeout_s: float = 5.0) -> dict:
    """Stats once nothing is queued (frames in flight have left)."""
    deadline = time.monotonic() + timeout_s
    while True:
        reply = element.stats()
        if reply["queued"] == 0 or time.monotonic() > deadline:
            return reply
        time.sleep(0.05)


# ------------------------------------------------------------------ control protocol
def test_stats_reply_has_every_key_of_the_python_element(element):
    native, python = element.stats(), _python_reply({"op": "stats"})
    assert native["ok"] is True
    assert set(python) <= set(native), f"missing top-level keys: {set(python) - set(native)}"
    assert set(native["settings"]) == set(python["settings"])
    assert native["settings"] == {"delay_ms": 0.0, "jitter_ms": 0.0, "loss_pct": 0.0, "down": False}
    for direction in pywire.DIRECTIONS:
        keys = set(native["counters"][direction])
        assert set(pywire.new_counters()[direction]) <= keys, set(pywire.new_counters()[direction]) - keys
        assert {"early", "late_over_1ms", "late_over_5ms"} <= keys
        assert all(isinstance(v, int) for v in native["counters"][direction].values())
    assert set(native["kernel"]) == {"a", "b"}
    assert all(set(side) == {"packets", "drops"} for side in native["kernel"].values())
    assert isinstance(native["queued"], int) and isinstance(native["wakeup_lateness_us"], float)
    assert pywire.late_totals([native["counters"]]) == {"late_over_1ms": 0, "late_over_5ms": 0}


BAD_REQUESTS = [
    {"op": "explode"},
    {},
    {"op": "set", "delay_ms": -4},
    {"op": "set", "loss_pct": 150},
    {"op": "set", "jitter_ms": "3"},
    {"op": "set", "down": "false"},
    {"op": "set", "down": 1},
    {"op": "set", "loss_pct": True},
    {"op": "set", "delay": 5},
    {"op": "set", "zeta": 1, "alpha": 2},
    b"[1, 2]",
    b"not json",
    b"\xff\xfe",
]


@pytest.mark.parametrize("message", BAD_REQUESTS, ids=lambda m: repr(m)[:40])
def test_bad_requests_answer_the_python_elements_error_and_change_nothing(element, message):
    before = element.stats()["settings"]
    data = message if isinstance(message, bytes) else json.dumps(message).encode()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    reply_path = f"{element.control_path}.t{os.getpid()}"
    try:
        client.bind(reply_path)
        client.settimeout(2)
        client.sendto(data, element.control_path)
        native = json.loads(client.recv(65536))
    finally:
        client.close()
        os.unlink(reply_path)
    python = _python_reply(message)
    assert native["ok"] is False and python["ok"] is False
    if message not in (b"not json", b"\xff\xfe"):  # JSON decoders word their errors differently
        assert native["error"] == python["error"]
    assert element.stats()["settings"] == before


def test_set_changes_only_the_given_settings_and_reset_zeroes_the_counters(element, lab):
    reply = element.request({"op": "set", "delay_ms": 3, "loss_pct": 1.5})
    assert reply["ok"] and reply["settings"] == {"delay_ms": 3.0, "jitter_ms": 0.0, "loss_pct": 1.5, "down": False}
    reply = element.request({"op": "set", "down": True, "delay_ms": None})
    assert reply["settings"] == {"delay_ms": 3.0, "jitter_ms": 0.0, "loss_pct": 1.5, "down": True}
    element.set(down=False, loss_pct=0)
    _ping(lab, 5)
    assert _settled(element)["counters"]["ab"]["received"] >= 5
    counters = element.request({"op": "reset"})["counters"]
    assert all(v == 0 for c in counters.values() for v in c.values())


def test_command_line_errors_name_the_argument(binaries, tmp_path):
    proc = subprocess.run([binaries["wire"], "--a", "x", "--b", "y", "--control", str(tmp_path / "c.sock"),
                           "--loss-pct", "150"], capture_output=True, text=True, timeout=10)
    assert proc.returncode != 0 and "loss_pct=150 must be within 0..100" in proc.stderr
    proc = subprocess.run([binaries["wire"], "--b", "y"], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 2 and "--a" in proc.stderr


def test_sigterm_exits_cleanly_and_removes_the_control_socket(lab):
    element = lab.start_element("native")
    lab.stop_element(element)
    assert element.process.returncode == 0
    assert not os.path.exists(element.control_path)


# ------------------------------------------------------------------ timing
@pytest.mark.parametrize("delay_ms", [2, 5])
def test_delay_ping_median_within_0_3ms_and_nothing_early(element, lab, delay_ms):
    element.set(delay_ms=delay_ms)
    _ping(lab, 3)
    element.request({"op": "reset"})
    rtts, out = _ping(lab, 200)
    assert len(rtts) == 200, out[-300:]
    assert abs(statistics.median(rtts) - 2 * delay_ms) <= 0.3, f"median {statistics.median(rtts)} ms"
    assert min(rtts) >= 2 * delay_ms, f"a round trip of {min(rtts)} ms: a frame left early"
    counters = _settled(element)["counters"]
    assert counters["ab"]["early"] == counters["ba"]["early"] == 0
    assert counters["ab"]["forwarded"] == counters["ab"]["received"] >= 200


def test_set_delay_takes_effect_on_a_running_element(element, lab):
    element.set(delay_ms=1)
    _ping(lab, 3)
    low, _ = _ping(lab, 50)
    element.set(delay_ms=8)
    _ping(lab, 3)
    high, _ = _ping(lab, 50)
    assert abs(statistics.median(low) - 2) <= 0.3 and abs(statistics.median(high) - 16) <= 0.3


def test_jitter_keeps_order_and_stays_in_its_window(element, lab, binaries):
    element.set(delay_ms=5, jitter_ms=4)
    element.request({"op": "reset"})
    # frames 0.2 ms apart, jitter 8 ms wide: without order kept, most would overtake
    sent, got = _udp(lab, binaries, 5000, 5000, reference_ms=1)  # early = below delay - jitter
    assert got["unique"] == sent["sent"] and got["duplicates"] == 0
    assert got["reordered"] == 0, f"{got['reordered']} datagrams overtook an earlier one"
    assert got["early"] == 0 and got["owd_min_us"] >= 1000
    assert got["owd_p99_us"] - got["owd_min_us"] > 2000, f"no jitter seen: {got}"
    assert got["owd_p50_us"] <= 9000 + 1000  # never more than delay + jitter (+ lateness)
    counters = _settled(element)["counters"]
    assert counters["ab"]["early"] == 0


def test_no_frame_leaves_early_at_50k_packets_per_second(element, lab, binaries):
    element.set(delay_ms=1)
    element.request({"op": "reset"})
    sent, got = _udp(lab, binaries, 50000, 50000, reference_ms=1, batch=8)
    assert got["early"] == 0, f"{got['early']} datagrams arrived under 1 ms"
    assert got["unique"] == sent["sent"]
    counters = _settled(element)["counters"]
    assert counters["ab"]["early"] == 0 and counters["ab"]["forwarded"] >= sent["sent"]


# ------------------------------------------------------------------ loss and down
@pytest.mark.parametrize("colour", [0, 1, None])
def test_loss_counts_are_exact_per_colour(element, lab, binaries, colour):
    element.set(loss_pct=20)
    element.request({"op": "reset"})
    sent, got = _udp(lab, binaries, 4000, 4000, reference_ms=0, tclass=TCLASS[colour] if colour is not None else 0)
    lost = sent["sent"] - got["unique"]
    c = _settled(element)["counters"]["ab"]
    stray = c["received"] - sent["sent"]  # frames A's stack sent besides the datagrams (none expected)
    assert 0 <= stray <= 5
    assert c["received"] == c["forwarded"] + c["dropped_loss"] + c["send_errors"]
    assert c["dropped_down"] == 0 and c["send_errors"] == 0
    assert lost <= c["dropped_loss"] <= lost + stray
    if colour is None:
        assert c["dropped_c0"] == c["dropped_c1"] == 0
    else:
        assert c[f"dropped_c{colour}"] == lost, f"sent {sent['sent']}, received {got['unique']}: {c}"
        assert c[f"dropped_c{1 - colour}"] == 0
    low, high = binomial_interval(sent["sent"], 0.20, 0.999)
    assert low <= lost <= high


def test_down_drops_everything_and_counts_it_apart(element, lab, binaries):
    element.set(down=True)
    element.request({"op": "reset"})
    sent, got = _udp(lab, binaries, 1000, 2000, reference_ms=0, tclass=TCLASS[1])
    assert got["unique"] == 0
    c = _settled(element)["counters"]["ab"]
    assert c["dropped_down"] == c["received"] >= sent["sent"]
    assert c["dropped_c1"] == sent["sent"] and c["dropped_loss"] == 0 and c["forwarded"] == 0
    element.set(down=False)
    sent, got = _udp(lab, binaries, 500, 2000, reference_ms=0)
    assert got["unique"] == sent["sent"]


def test_interfaces_down_and_up_again_the_element_keeps_forwarding(element, lab, binaries):
    """As ``cpn link set --down`` does: the element drops, linkem sets both interfaces down, then up."""
    element.set(down=True)
    for intf in ("e0", "e1"):
        lab.ns(lab.ns_e, ["ip", "link", "set", "dev", intf, "down"])
    time.sleep(0.2)
    for intf in ("e0", "e1"):
        lab.ns(lab.ns_e, ["ip", "link", "set", "dev", intf, "up"])
    element.set(down=False)
    time.sleep(0.5)  # veth carrier
    sent, got = _udp(lab, binaries, 500, 2000, reference_ms=0)
    assert got["unique"] == sent["sent"]
    assert element.stats()["ok"]


def test_a_full_queue_drops_are_counted_per_colour(lab, binaries):
    element = lab.start_element("native", delay_ms=200, extra=("--queue-mb", "0.05"))  # ~400 small frames
    try:
        sent, got = _udp(lab, binaries, 2000, 10000, reference_ms=200, tclass=TCLASS[0])
        c = _settled(element)["counters"]["ab"]
        lost = sent["sent"] - got["unique"]
        assert lost > 1000, f"the queue held more than 50 kB: {c}"
        assert c["dropped_queue"] == lost == c["dropped_c0"]
        assert c["received"] == c["forwarded"] + c["dropped_queue"]
    finally:
        lab.stop_element(element)


@pytest.mark.parametrize("extra, policy", [((), "fifo"), (("--rt", "0"), "nice"), (("--spin-us", "50"), "fifo")])
def test_scheduling_options_keep_frames_on_time(lab, extra, policy):
    element = lab.start_element("native", delay_ms=2, extra=extra)
    try:
        assert element.stats()["scheduling"]["policy"] == policy
        rtts, out = _ping(lab, 100)
        assert len(rtts) == 100 and min(rtts) >= 4.0 and abs(statistics.median(rtts) - 4) <= 0.3, out[-300:]
        assert all(c["early"] == 0 for c in _settled(element)["counters"].values())
    finally:
        lab.stop_element(element)


# ------------------------------------------------------------------ frame sizes
def test_9000_byte_frames_pass(element, lab, binaries):
    element.set(delay_ms=1)
    rtts, out = _ping(lab, 20, interval=0.01, size=9000 - 48)  # IPv6 40 + ICMPv6 8: 9000-byte packets
    assert len(rtts) == 20, out[-300:]
    sent, got = _udp(lab, binaries, 2000, 2000, reference_ms=1, size=9000 - 48)  # IPv6 40 + UDP 8
    assert got["unique"] == sent["sent"] and got["early"] == 0
    c = _settled(element)["counters"]
    assert c["ab"]["receive_errors"] == c["ab"]["send_errors"] == 0


# ------------------------------------------------------------------ the build (no root)
def test_missing_gcc_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("CPN_NATIVE_BUILD_DIR", str(tmp_path / "out"))
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    with pytest.raises(build.BuildError, match=r"gcc is not installed.*apt-get install gcc"):
        build.ensure_built("wire")


def test_a_newer_source_is_recompiled_and_a_broken_one_names_the_error(tmp_path, monkeypatch):
    if shutil.which("gcc") is None:
        if REQUIRED:
            pytest.fail("gcc must be installed here")
        pytest.skip("gcc is not installed")
    monkeypatch.setenv("CPN_NATIVE_BUILD_DIR", str(tmp_path / "out"))
    source = tmp_path / "hello.c"
    source.write_text("int main(void) { return 3; }\n")
    binary = build.ensure_built("hello", source_dir=str(tmp_path))
    assert subprocess.run([binary]).returncode == 3
    assert build.ensure_built("hello", source_dir=str(tmp_path)) == binary  # up to date: not rebuilt
    source.write_text("int main(void) { return 4; }\n")
    os.utime(source, (time.time() + 5, time.time() + 5))
    assert subprocess.run([build.ensure_built("hello", source_dir=str(tmp_path))]).returncode == 4
    source.write_text("int main(void) { return undeclared_name; }\n")
    os.utime(source, (time.time() + 10, time.time() + 10))
    with pytest.raises(build.BuildError, match=r"(?s)hello\.c.*undeclared_name"):
        build.ensure_built("hello", source_dir=str(tmp_path))
    assert subprocess.run([binary]).returncode == 4, "a failed build leaves the last good binary"
