"""Tests of the open-loop load generator: reply matching, timeouts, rates, determinism, command line."""

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

import pytest

from cpn_net.compute import ComputeConfigError
from cpn_net.compute.loadgen import COLUMNS, LoadgenConfig, _Run, main, run_loadgen
from cpn_net.compute.protocol import Response, ResponseStatus, decode_request, encode_response
from cpn_net.compute.results import summarise_record
from cpn_net.compute.service import ComputeService, ServiceConfig
from cpn_net.compute.workload import RateStep, parse_schedule

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MS = 1_000_000


@contextlib.contextmanager
def running(**change):
    config = ServiceConfig(**(dict(instance="k1-1", service="infer", port=0, workers=8, service_time_ms=2.0,
                                   queue_limit=64, seed=1) | change))
    service = ComputeService(config)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.stop()
        thread.join(5)
        service.close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.bind(("::1", 0))
        return sock.getsockname()[1]


def check_complete(record: dict) -> None:
    """Every request sent is in the record exactly once, with a consistent row."""
    requests = record["requests"]
    assert set(requests) == set(COLUMNS)
    assert all(len(column) == record["sent"] for column in requests.values())
    assert requests["id"] == list(range(record["sent"]))
    assert requests["session"] == [i % record["sessions"] for i in range(record["sent"])]
    for status, time_ms, instance in zip(requests["status"], requests["response_ms"], requests["instance"]):
        assert status in ("served", "rejected", "timeout")
        assert (time_ms is None) == (instance is None) == (status == "timeout")
        if time_ms is not None:
            assert 0 <= time_ms <= record["timeout_ms"]


# --- reply matching, without a network -----------------------------------------------------------

def reply(request_id: int, status=ResponseStatus.SERVED) -> bytes:
    return encode_response(Response(request_id, status, 0, 1500, 2500, "k9-9"))


def test_replies_are_matched_by_id_and_everything_else_counted():
    config = LoadgenConfig("::1", 9, (RateStep(0, 1),), duration_s=1, sessions=2, timeout_ms=100)
    run = _Run(config, planned=4)
    here, there = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with here, there:
        for n in range(4):
            run.send(here, due_ns=0, now_ns=n * MS)
        assert [decode_request(there.recv(100)).session for _ in range(4)] == [0, 1, 0, 1]
    run.receive(0, reply(0), [])
    run.receive(0, reply(0), [])                               # duplicate
    run.receive(1, reply(1, ResponseStatus.REJECTED), [])
    run.receive(0, reply(1), [])                               # on the wrong session's socket: stray
    run.receive(0, reply(77), [])                              # never sent: stray
    run.receive(0, b"junk", [])                                # malformed
    run.send_ns[2] -= 500 * MS                                 # request 2 was sent long ago
    run.receive(0, reply(2), [])                               # ... so its reply is too late
    assert run.expire(now_ns := 3 * MS) == 3 * MS + 100 * MS   # request 3 is still open
    assert run.expire(now_ns + 200 * MS) is None
    columns = run.columns()
    assert columns["status"] == ["served", "rejected", "timeout", "timeout"]
    assert columns["instance"] == ["k9-9", "k9-9", None, None]
    assert columns["queue_wait_ms"][:2] == [1.5, 1.5] and columns["service_ms"][:2] == [2.5, 2.5]
    assert (run.duplicates, run.stray, run.malformed, run.late_replies) == (1, 2, 1, 1)
    assert run.late_sends == 2  # sent 0, 1, 2 and 3 ms after being due: more than 1 ms late twice


@pytest.mark.parametrize("change, message", [
    (dict(to="10.0.0.1"),
     "loadgen: to='10.0.0.1' must be an IPv6 address, e.g. the service's anycast 2001:db8:ffff::1"),
    (dict(to="::"), "loadgen: to='::' is the unspecified address; give the service's address"),
    (dict(port=0), "loadgen: port=0 must be an integer in 1..65535"),
    (dict(timeout_ms=0), "loadgen: timeout_ms=0 must be a finite number > 0, e.g. 1000"),
    (dict(size_bytes=24), "loadgen: size_bytes=24 must be an integer in 25..65527"),
    (dict(schedule=(RateStep(1, 5),)), "schedule: the first step starts at 1 s; it must start at 0 "
                                       "(use rate 0 for an idle start, e.g. 0:0,10:50)"),
])
def test_config_errors_name_the_key(change, message):
    with pytest.raises(ComputeConfigError) as info:
        LoadgenConfig(**(dict(to="::1", port=9, schedule=(RateStep(0, 1),), duration_s=1) | change))
    assert str(info.value) == message


# --- real runs on loopback -----------------------------------------------------------------------

def test_schedule_rates_and_planned_send_times_are_kept():
    with running() as service:
        config = LoadgenConfig("::1", service.port, parse_schedule("0:50,0.4:150"), duration_s=0.8,
                               sessions=3, seed=11, timeout_ms=500, size_bytes=200)
        record = run_loadgen(config)
    check_complete(record)
    planned = config.planned_offsets_s()
    assert record["planned"] == record["sent"] == len(planned)
    offsets = [(t - record["started_ns"]) / 1e9 for t in record["requests"]["send_ns"]]
    # the seeded schedule is what went out, give or take scheduling delay
    assert all(-0.001 < sent - due < 0.1 for sent, due in zip(offsets, planned))
    first, second = sum(t < 0.4 for t in offsets), sum(t >= 0.4 for t in offsets)
    assert abs(first - 20) <= 4 * 20 ** 0.5 and abs(second - 60) <= 4 * 60 ** 0.5
    assert record["requests"]["status"].count("served") == record["sent"]
    assert set(record["requests"]["instance"]) == {"k1-1"}
    assert len(set(record["src_ports"])) == 3 and record["timestamps"] == "kernel"


def test_a_paused_service_gives_timeouts_not_missing_requests():
    with running() as service:
        service.handle_control(b'{"op": "pause", "seconds": 0.25}')
        record = run_loadgen(LoadgenConfig("::1", service.port, (RateStep(0, 50),), duration_s=0.6,
                                           sessions=2, seed=5, timeout_ms=200))
        ignored = service.counters["ignored_paused"]
    check_complete(record)
    requests = record["requests"]
    timeouts = [t for t, s in zip(requests["send_ns"], requests["status"]) if s == "timeout"]
    served = [t for t, s in zip(requests["send_ns"], requests["status"]) if s == "served"]
    assert record["sent"] == record["planned"] == len(timeouts) + len(served)
    assert timeouts and served and max(timeouts) < min(served)  # the dead spell came first
    assert len(timeouts) == ignored
    summary = summarise_record(record, slo_ms=100)
    assert summary.timeouts == len(timeouts) and summary.slo_violations >= len(timeouts)


def test_nobody_listening_is_all_timeouts():
    record = run_loadgen(LoadgenConfig("::1", free_udp_port(), (RateStep(0, 100),), duration_s=0.2,
                                       seed=1, timeout_ms=50))
    check_complete(record)
    assert record["sent"] > 0 and set(record["requests"]["status"]) == {"timeout"}
    # ICMP port unreachable on the connected socket makes some sends fail: still recorded
    assert sum(record["send_errors"].values()) <= record["sent"]


def test_same_seed_same_send_schedule():
    a = LoadgenConfig("::1", 9, parse_schedule("0:30,1:90"), duration_s=2, seed=8)
    b = LoadgenConfig("::1", 9, parse_schedule("0:30,1:90"), duration_s=2, seed=8)
    assert a.planned_offsets_s() == b.planned_offsets_s()
    assert a.planned_offsets_s() != dataclasses.replace(a, seed=9).planned_offsets_s()


# --- command line --------------------------------------------------------------------------------

@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="cpnl-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_command_line_writes_the_record_and_ready_file(workdir):
    out, ready = os.path.join(workdir, "run.json"), os.path.join(workdir, "ready.json")
    with running() as service:
        done = subprocess.run(
            [sys.executable, "-m", "cpn_net.compute.loadgen", "--to", "::1", "--port", str(service.port),
             "--schedule", "0:50,0.1:100", "--duration-s", "0.2", "--sessions", "2", "--seed", "4",
             "--timeout-ms", "200", "--size-bytes", "64", "--out", out, "--ready-file", ready],
            cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    with open(out, encoding="utf-8") as handle:
        record = json.load(handle)
    with open(ready, encoding="utf-8") as handle:
        assert json.load(handle)["src_ports"] == record["src_ports"]
    check_complete(record)
    assert (record["schema"], record["role"], record["seed"], record["size_bytes"]) == (1, "loadgen", 4, 64)
    assert record["schedule"] == [{"start_s": 0.0, "rate_rps": 50.0}, {"start_s": 0.1, "rate_rps": 100.0}]
    assert not [name for name in os.listdir(workdir) if name.endswith(".tmp")]


@pytest.mark.parametrize("argv, message", [
    (["--rate-rps", "5", "--schedule", "0:5"], "argument --schedule: not allowed with argument --rate-rps"),
    (["--schedule", "0:5,1"], "schedule: '1' must be start_s:rate_rps, e.g. 30:120"),
    (["--rate-rps", "-5"], "schedule: step 1 rate_rps=-5 must be in 0..1000000"),
    (["--rate-rps", "5", "--sessions", "0"], "loadgen: sessions=0 must be an integer in 1..4096"),
])
def test_command_line_rejects_bad_arguments(argv, message, capsys, workdir):
    with pytest.raises(SystemExit) as info:
        main(["--to", "::1", "--port", "9", "--duration-s", "1", "--out", os.path.join(workdir, "x.json")] + argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
