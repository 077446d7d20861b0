"""Tests of the test-flow generator: header bytes, validation, pacing on a fake clock, and a real flow over ::1."""

import errno
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

from cpn_net.tools import ToolsValueError
from cpn_net.tools import flowgen
from cpn_net.tools.flowgen import (
    CATCH_UP_PACKETS, MAX_SLEEP_NS, SO_RXQ_OVFL, SO_TIMESTAMPNS, FlowCollector, RecvConfig,
    SendConfig, StopOnSignal, choose_receive_ns, decode_header, encode_header, main,
    parse_ancillary, run_paced, write_json_atomic,
)
from cpn_net.tools.outage import analyse_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MS = 1_000_000


# --- datagram header ----------------------------------------------------------------------------

def test_header_bytes_are_exact_and_parse_back():
    header = encode_header(0x01020304, 0x1122334455667788, 0x0A0B0C0D0E0F1011)
    assert header == b"CPNF" + bytes.fromhex("01020304" "1122334455667788" "0a0b0c0d0e0f1011")
    assert decode_header(header) == (0x01020304, 0x1122334455667788, 0x0A0B0C0D0E0F1011)
    assert decode_header(header + bytes(1000)) == (0x01020304, 0x1122334455667788, 0x0A0B0C0D0E0F1011)


@pytest.mark.parametrize("datagram", [b"", b"CPNF", encode_header(1, 2, 3)[:-1], b"cpnf" + bytes(20)])
def test_not_a_flowgen_datagram(datagram):
    assert decode_header(datagram) is None


def test_header_fields_must_fit():
    with pytest.raises(ToolsValueError) as info:
        encode_header(1, 2**64, 0)
    assert str(info.value) == f"header flow_id=1 seq={2**64} send_ns=0 do not fit (u32, u64, u64)"


def test_collector_counts_what_is_not_its_flow():
    c = FlowCollector(flow_id=7)
    results = [c.add(encode_header(7, 1, 10), 20), c.add(encode_header(7, 0, 5), 21),
               c.add(encode_header(7, 1, 10), 22), c.add(encode_header(8, 2, 0), 23),
               c.add(encode_header(7, 3, 0)[:20], 24), c.add(b"GET / HTTP/1.1", 25)]
    assert results == ["ok", "ok", "duplicate", "foreign", "malformed", "malformed"]
    assert c.received == [(1, 10, 20), (0, 5, 21), (1, 10, 22)]
    assert (c.duplicates, c.foreign, c.malformed) == (1, 1, 2)


# --- validation ---------------------------------------------------------------------------------

GOOD_SEND = dict(to="::1", port=9000, rate_pps=1000, duration_s=1)


@pytest.mark.parametrize("change, message", [
    (dict(rate_pps=0), "send: rate_pps=0 must be a finite number > 0, e.g. 1000"),
    (dict(rate_pps=float("inf")), "send: rate_pps=inf must be a finite number > 0, e.g. 1000"),
    (dict(duration_s=-1), "send: duration_s=-1 must be a finite number > 0, e.g. 10"),
    (dict(port=0), "send: port=0 must be an integer in 1..65535"),
    (dict(port=70000), "send: port=70000 must be an integer in 1..65535"),
    (dict(src_port=-1), "send: src_port=-1 must be an integer in 0..65535 (0 lets the kernel choose)"),
    (dict(size_bytes=23),
     "send: size_bytes=23 must be an integer in 24..65527 (UDP payload: the flowgen header needs 24 bytes)"),
    (dict(size_bytes=65528),
     "send: size_bytes=65528 must be an integer in 24..65527 (UDP payload: the flowgen header needs 24 bytes)"),
    (dict(flow_id=2**32), f"send: flow_id={2**32} must be an integer in 0..{2**32 - 1}"),
    (dict(to="10.0.0.2"), "send: to='10.0.0.2' must be an IPv6 address (flowgen speaks UDP over IPv6)"),
    (dict(to="::"), "send: to='::' is the unspecified address; give the receiver's address, e.g. ::1"),
    (dict(rate_pps=1, duration_s=0.4),
     "send: rate_pps=1 * duration_s=0.4 makes no packet; raise either so that their product is >= 1"),
])
def test_send_config_names_the_bad_value(change, message):
    with pytest.raises(ToolsValueError) as info:
        SendConfig(**dict(GOOD_SEND, **change))
    assert str(info.value) == message


@pytest.mark.parametrize("change, message", [
    (dict(port=65536), "recv: port=65536 must be an integer in 0..65535 (0 lets the kernel choose)"),
    (dict(duration_s=0), "recv: duration_s=0 must be a finite number > 0, e.g. 10"),
    (dict(bind="not-an-address"),
     "recv: bind='not-an-address' must be an IPv6 address (flowgen speaks UDP over IPv6)"),
    (dict(flow_id=-1), f"recv: flow_id=-1 must be an integer in 0..{2**32 - 1}"),
])
def test_recv_config_names_the_bad_value(change, message):
    with pytest.raises(ToolsValueError) as info:
        RecvConfig(**dict(dict(bind="::", port=0, duration_s=1), **change))
    assert str(info.value) == message


def test_valid_configs():
    assert SendConfig(**dict(GOOD_SEND, rate_pps=333.3, duration_s=3)).count == 1000
    assert SendConfig(**dict(GOOD_SEND, to="fe80::1%lo")).to == "fe80::1%lo"
    assert RecvConfig("::", 0, 0.5).port == 0


@pytest.mark.parametrize("argv, message", [
    (["send", "--to", "::1", "--port", "9", "--rate-pps", "0", "--duration-s", "1", "--out", "x.json"],
     "send: rate_pps=0.0 must be a finite number > 0, e.g. 1000"),
    (["send", "--to", "::1", "--port", "9", "--rate-pps", "nan", "--duration-s", "1", "--out", "x.json"],
     "send: rate_pps=nan must be a finite number > 0, e.g. 1000"),
    (["send", "--to", "::1", "--port", "9", "--rate-pps", "abc", "--duration-s", "1", "--out", "x.json"],
     "argument --rate-pps: invalid float value: 'abc'"),
    (["send", "--to", "::1", "--port", "9", "--rate-pps", "10", "--duration-s", "1", "--size-bytes", "8",
      "--out", "x.json"], "send: size_bytes=8 must be an integer in 24..65527"),
    (["recv", "--bind", "::1", "--port", "99999", "--duration-s", "1", "--out", "x.json"],
     "recv: port=99999 must be an integer in 0..65535"),
    (["recv", "--bind", "::1", "--port", "0", "--duration-s", "1", "--out", "/nonexistent-dir/x.json"],
     "recv: --out /nonexistent-dir/x.json: directory /nonexistent-dir does not exist; create it first"),
    (["send", "--to", "::1", "--port", "9"], "the following arguments are required: --rate-pps, --duration-s, --out"),
])
def test_command_line_rejects_bad_input_with_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_bind_failure_is_status_1(tmp_path, capsys):
    # 2001:db8::/32 is documentation space: no interface here owns it
    code = main(["recv", "--bind", "2001:db8::99", "--port", "0", "--duration-s", "1",
                 "--out", str(tmp_path / "r.json")])
    assert code == 1
    assert "flowgen recv: [Errno 99] Cannot assign requested address" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


# --- pacing on a fake clock ---------------------------------------------------------------------

class FakeClock:
    """A pacing clock that only moves when the sender sleeps or a stall is injected."""

    def __init__(self, rng=None, overshoot_ns=0):
        self.now = 1_000_000_000
        self.rng = rng
        self.overshoot_ns = overshoot_ns
        self.sleeps = []
        self.sends = []
        self.stalls = {}

    def clock(self):
        return self.now

    def sleep(self, ns):
        self.sleeps.append(ns)
        self.now += ns + (self.rng.randint(0, self.overshoot_ns) if self.rng else 0)

    def send(self, seq):
        self.sends.append((seq, self.now))
        self.now += self.stalls.get(seq, 0)


def test_on_time_sends_hit_their_slots_exactly():
    fake = FakeClock()
    stats = run_paced(5, 2000, fake.send, clock_ns=fake.clock, sleep_ns=fake.sleep)
    start = 1_000_000_000
    assert fake.sends == [(k, start + k * 500_000) for k in range(5)]
    assert (stats.sent, stats.start_ns, stats.late, stats.max_late_ns, stats.slipped_ns, stats.stopped) == \
        (5, start, 0, 0, 0, False)


def test_short_stall_is_caught_up_without_slipping():
    fake = FakeClock()
    fake.stalls = {2: 3_500_000}  # 3.5 intervals at 1000 pps
    stats = run_paced(10, 1000, fake.send, clock_ns=fake.clock, sleep_ns=fake.sleep)
    times = dict(fake.sends)
    start = 1_000_000_000
    assert [times[k] for k in (3, 4, 5)] == [start + 5_500_000] * 3  # owed packets go back to back
    assert times[6] == start + 6 * MS  # and the schedule resumes untouched
    assert stats.slipped_ns == 0
    assert stats.late == 2  # seq 3 and 4 left more than one interval after their slots
    assert stats.max_late_ns == 2_500_000


def test_long_stall_slips_instead_of_bursting():
    fake = FakeClock()
    fake.stalls = {0: 50 * MS}
    stats = run_paced(80, 1000, fake.send, clock_ns=fake.clock, sleep_ns=fake.sleep)
    times = [t for _, t in fake.sends]
    start = 1_000_000_000
    assert times[1] == start + 50 * MS
    burst = sum(1 for t in times if t == start + 50 * MS)
    assert burst == CATCH_UP_PACKETS + 1
    assert stats.slipped_ns == (49 - CATCH_UP_PACKETS) * MS
    assert times[-1] == start + 79 * MS + stats.slipped_ns
    assert stats.max_late_ns == 49 * MS


@pytest.mark.parametrize("seed", range(10))
def test_pacing_never_runs_early_and_never_bursts_beyond_the_bound(seed):
    rng = random.Random(seed)
    rate = rng.choice([500, 1000, 2000, 333.3])
    interval = 1e9 / rate
    fake = FakeClock(rng, overshoot_ns=int(interval * rng.choice([0.1, 0.5, 2])))
    fake.stalls = {rng.randrange(300): rng.randint(0, int(40 * interval)) for _ in range(8)}
    stats = run_paced(300, rate, fake.send, clock_ns=fake.clock, sleep_ns=fake.sleep)
    assert stats.sent == 300 and [s for s, _ in fake.sends] == list(range(300))
    times = [t for _, t in fake.sends]
    for k, t in enumerate(times):
        assert t >= stats.start_ns + k * interval - 1  # slips only ever delay
    for i in range(len(times)):
        for j in range(i, min(len(times), i + 60)):
            assert j - i + 1 <= (times[j] - times[i] + 2) / interval + CATCH_UP_PACKETS + 1
    assert max(fake.sleeps) <= MAX_SLEEP_NS


def test_stop_is_honoured_and_long_waits_are_chunked():
    fake = FakeClock()
    stats = run_paced(10, 1, fake.send, clock_ns=fake.clock, sleep_ns=fake.sleep,
                      should_stop=lambda: len(fake.sends) == 2)
    assert (stats.sent, stats.stopped) == (2, True)
    assert max(fake.sleeps) == MAX_SLEEP_NS  # a stop waits at most 50 ms even at 1 packet/s


# --- sender and receiver internals --------------------------------------------------------------

def test_refused_sends_use_their_sequence_number_and_are_counted():
    class Refusing:
        def sendto(self, data, destination):
            raise OSError(errno.ENETUNREACH, "Network is unreachable")

    transmitter = flowgen._Transmitter(Refusing(), ("::1", 9), flow_id=1, size_bytes=40)
    transmitter(0)
    transmitter(1)
    assert transmitter.errors == {"ENETUNREACH": 2}
    assert decode_header(bytes(transmitter.buffer))[:2] == (1, 1)
    assert len(transmitter.buffer) == 40


def test_ancillary_data_is_parsed_and_foreign_levels_ignored():
    ancdata = [(socket.IPPROTO_IPV6, SO_TIMESTAMPNS, bytes(16)),
               (socket.SOL_SOCKET, SO_TIMESTAMPNS, struct.pack("@ll", 7, 9)),
               (socket.SOL_SOCKET, SO_RXQ_OVFL, struct.pack("@I", 12)),
               (socket.SOL_SOCKET, SO_RXQ_OVFL, b"\x01")]  # truncated: ignored
    assert parse_ancillary(ancdata) == (7_000_000_009, 12)


@pytest.mark.parametrize("kernel_ns, expected", [
    (10_000_000_000, (10_000_000_000, True)),
    (9_000_000_000, (9_000_000_000, True)),  # exactly 1 s old: still trusted
    (8_999_999_999, (10_000_000_000, False)),
    (10_000_000_001, (10_000_000_000, False)),  # from the future: another clock
    (None, (10_000_000_000, False)),
])
def test_kernel_timestamps_are_sanity_checked(kernel_ns, expected):
    assert choose_receive_ns(kernel_ns, 10_000_000_000) == expected


def test_json_is_written_whole(tmp_path):
    path = tmp_path / "out.json"
    write_json_atomic(str(path), {"received": [(1, 2, 3)]})
    assert json.loads(path.read_text()) == {"received": [[1, 2, 3]]}
    assert os.listdir(tmp_path) == ["out.json"]


def test_signals_set_the_flag_and_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with StopOnSignal() as stop:
        assert not stop()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop() and stop.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


# --- a real flow over IPv6 loopback -------------------------------------------------------------

def _flowgen(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-m", "cpn_net.tools.flowgen", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_file(path, process, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if process.poll() is not None:
            pytest.fail(f"flowgen exited with {process.returncode} before writing {path}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{path} not written within {timeout_s} s")
        time.sleep(0.01)


def test_loopback_flow_arrives_whole_and_on_rate(tmp_path):
    ready, received_path, sent_path = (str(tmp_path / n) for n in ("ready.json", "recv.json", "send.json"))
    receiver = _flowgen("recv", "--bind", "::1", "--port", "0", "--duration-s", "20",
                        "--out", received_path, "--ready-file", ready)
    try:
        _wait_for_file(ready, receiver)
        port = json.loads(open(ready).read())["port"]
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.sendto(b"not a flowgen datagram", ("::1", port))
            probe.sendto(encode_header(99, 0, time.time_ns()), ("::1", port))
            sender = subprocess.run([sys.executable, "-m", "cpn_net.tools.flowgen", "send", "--to", "::1",
                                     "--port", str(port), "--rate-pps", "2000", "--duration-s", "1",
                                     "--size-bytes", "100", "--out", sent_path],
                                    cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                                    text=True, timeout=10)
            assert sender.returncode == 0, sender.stderr
            probe.sendto(encode_header(1, 5, time.time_ns()), ("::1", port))
        receiver.send_signal(signal.SIGTERM)
        assert receiver.wait(timeout=5) == 0, receiver.stderr.read()
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    sent, received = (json.loads(open(p).read()) for p in (sent_path, received_path))

    assert (sent["planned"], sent["sent"], sent["send_errors"], sent["stopped_by"]) == (2000, 2000, {}, "done")
    assert sent["achieved_rate_pps"] == pytest.approx(2000, rel=0.05)
    assert sent["first_send_ns"] >= sent["start_ns"]
    assert (received["malformed"], received["foreign"], received["duplicates"]) == (1, 1, 1)
    assert received["stopped_by"] == "signal" and received["port"] == port
    report = analyse_run(sent, received)
    assert (report.sent, report.received, report.lost, report.duplicates) == (2000, 2000, 0, 1)
    assert report.outage_ms == 0.0 and report.gaps == ()
    assert 0 <= report.delay_ms.min_ms <= report.delay_ms.max_ms < 1000


def test_receiver_stops_on_its_own_and_records_an_empty_flow(tmp_path):
    out = str(tmp_path / "recv.json")
    receiver = _flowgen("recv", "--bind", "::", "--port", "0", "--duration-s", "0.2", "--out", out)
    try:
        assert receiver.wait(timeout=5) == 0, receiver.stderr.read()
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    record = json.loads(open(out).read())
    assert (record["stopped_by"], record["received"], record["malformed"]) == ("duration", [], 0)
    assert 0.2e9 <= record["stopped_ns"] - record["started_ns"] < 2e9
    assert analyse_run({"schema": 1, "role": "send", "flow_id": 1, "sent": 3, "rate_pps": 10.0},
                       record).outage_ms == 300.0
