"""Tests of the compute service on loopback: answers, anycast-style reply source, capacity,
background load, metrics datagrams, control, and the command line."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from cpn_net.compute import ComputeError
from cpn_net.compute.loadgen import LoadgenConfig, run_loadgen
from cpn_net.compute.protocol import Request, ResponseStatus, decode_response, encode_request
from cpn_net.compute.report import REPORT_KEYS, parse_report, to_compute_metrics
from cpn_net.compute.service import ComputeService, ServiceConfig, control_request, main
from cpn_net.compute.station import ServiceStation, StationConfig
from cpn_net.compute.workload import RateStep

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def sockdir():
    # Unix socket paths must stay under 108 bytes: pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="cpnc-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def running(config: ServiceConfig, before_start=lambda service: None):
    service = ComputeService(config)
    before_start(service)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.stop()
        thread.join(5)
        service.close()
    assert not thread.is_alive()


def config(**change) -> ServiceConfig:
    return ServiceConfig(**(dict(instance="k3-1", service="infer", port=0, workers=2, service_time_ms=20.0,
                                 queue_limit=5, seed=1) | change))


def client(family=socket.AF_INET6) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(3.0)
    return sock


def receive_replies(sock: socket.socket, count: int):
    replies = []
    for _ in range(count):
        data, peer = sock.recvfrom(2048)
        replies.append((decode_response(data), peer))
    return replies


def test_answers_with_its_instance_from_the_address_asked():
    with running(config()) as service, client() as sock:
        sock.sendto(encode_request(Request(42, 0, time.time_ns()), 64), ("::1", service.port))
        [(reply, peer)] = receive_replies(sock, 1)
    assert (reply.request_id, reply.status, reply.instance) == (42, ResponseStatus.SERVED, "k3-1")
    assert peer[0] == "::1" and peer[1] == service.port
    assert reply.queue_wait_us == 0 and reply.service_us > 0


def test_reply_source_is_the_destination_not_the_default_source():
    # Without root there is one IPv6 loopback address, but every 127/8 address is local: a
    # request to 127.0.0.5 answered from the default source would come from 127.0.0.1.
    # IPV6_PKTINFO on the dual-stack socket makes it come from the address asked, as an
    # anycast address on lo must.
    with running(config()) as service, client() as sock:
        for n, address in enumerate(("::ffff:127.0.0.5", "::ffff:127.0.0.77")):
            sock.sendto(encode_request(Request(n, 0, 0)), (address, service.port))
            [(reply, peer)] = receive_replies(sock, 1)
            assert (peer[0], reply.request_id, reply.instance) == (address, n, "k3-1")


def test_a_burst_beyond_capacity_queues_then_rejects():
    # 2 workers, 5 queue places: of 30 simultaneous requests 2 start, 5 wait, 23 are rejected.
    # The burst is sent before the loop starts, so the loop reads it in one go whatever the
    # thread scheduling; the seed's first two service times are long enough that no worker
    # frees up meanwhile, as the model shows.
    model = ServiceStation(StationConfig(workers=2, service_time_ms=20.0, queue_limit=5), seed=1)
    model.offer(0), model.offer(0)
    assert model.next_event_ns() > 10_000_000
    with client() as sock:
        with running(config(seed=1), before_start=lambda service: [
                sock.sendto(encode_request(Request(n, 0, 0)), ("::1", service.port)) for n in range(30)]) as service:
            replies = {reply.request_id: reply for reply, _ in receive_replies(sock, 30)}
            stats = control_request_direct(service, {"op": "stats"})
    rejected = sorted(n for n, r in replies.items() if r.status is ResponseStatus.REJECTED)
    served = sorted(n for n, r in replies.items() if r.status is ResponseStatus.SERVED)
    assert (served, rejected) == (list(range(7)), list(range(7, 30)))
    assert [replies[n].queue_wait_us == 0 for n in served] == [True, True] + [False] * 5
    assert all(replies[n].service_us == 0 and replies[n].queue_wait_us == 0 for n in rejected)
    assert (stats["counters"]["served"], stats["counters"]["rejected"]) == (7, 23)


def control_request_direct(service: ComputeService, message: dict) -> dict:
    return service.handle_control(json.dumps(message).encode())


def test_sustained_overload_rejects_and_bounds_the_response_time():
    # 300 requests/s against a capacity of 100/s: about two thirds are turned away, and what is
    # served waited at most for the queue ahead of it.
    with running(config(queue_limit=4)) as service:
        record = run_loadgen(LoadgenConfig("::1", service.port, (RateStep(0, 300),), duration_s=0.3,
                                           sessions=2, seed=2, timeout_ms=1000))
    status = record["requests"]["status"]
    assert status.count("timeout") == 0
    assert 0.4 < status.count("rejected") / len(status) < 0.9
    served_waits = [w for w, s in zip(record["requests"]["queue_wait_ms"], status) if s == "served"]
    assert max(served_waits) > 0


def test_background_load_raises_utilisation_and_response_time(sockdir):
    # Two identical nodes, one with 60 % background load, probed side by side with the same
    # seeded traffic: requests draw the same service times on both, so only queueing differs.
    metrics_path = os.path.join(sockdir, "metrics.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as metrics:
        metrics.bind(metrics_path)
        metrics.settimeout(3.0)
        common = dict(workers=1, service_time_ms=10.0, queue_limit=64, metrics_socket=metrics_path,
                      metrics_period_s=0.25)
        with running(config(instance="calm", **common)) as calm, \
                running(config(instance="busy", background_load_pct=60.0, **common)) as busy:
            records = {}

            def probe(name, port):
                records[name] = run_loadgen(LoadgenConfig("::1", port, (RateStep(0, 20),), duration_s=1.0,
                                                          seed=3, timeout_ms=2000))
            threads = [threading.Thread(target=probe, args=a) for a in (("calm", calm.port), ("busy", busy.port))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
        reports = {"calm": [], "busy": []}
        with contextlib.suppress(BlockingIOError):
            metrics.settimeout(0.0)
            while True:
                report = parse_report(metrics.recv(65536))
                reports[report["instance"]].append(report["utilisation"])
    for name in ("calm", "busy"):
        assert records[name]["requests"]["status"].count("served") == records[name]["sent"] > 5
        assert len(reports[name]) >= 3
    mean = {name: sum(r["requests"]["response_ms"]) / r["sent"] for name, r in records.items()}
    utilisation = {name: sum(u) / len(u) for name, u in reports.items()}
    assert utilisation["busy"] > utilisation["calm"] + 0.3, utilisation
    assert mean["busy"] > 1.5 * mean["calm"], mean


def test_metrics_datagrams_carry_the_level0_fields(sockdir):
    metrics_path = os.path.join(sockdir, "metrics.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as metrics:
        metrics.bind(metrics_path)
        metrics.settimeout(3.0)
        with running(config(metrics_socket=metrics_path, metrics_period_s=0.1, price_cny_per_hour=12.5,
                            carbon_g_per_kwh=300.0)) as service, client() as sock:
            first = parse_report(metrics.recv(65536))
            for n in range(3):
                sock.sendto(encode_request(Request(n, 0, 0)), ("::1", service.port))
            receive_replies(sock, 3)
            later = first
            deadline = time.monotonic() + 3
            while later["served"] < 3 and time.monotonic() < deadline:
                later = parse_report(metrics.recv(65536))
    assert set(first) == set(REPORT_KEYS)
    assert (first["instance"], first["service"], first["workers"], first["capacity_rps"]) == \
        ("k3-1", "infer", 2, 100.0)
    assert (first["price_cny_per_hour"], first["carbon_g_per_kwh"], first["period_s"]) == (12.5, 300.0, 0.1)
    assert abs(first["reported_at"] - time.time()) < 5
    assert later["served"] == 3 and later["rejected"] == 0 and later["queue_len"] == 0
    assert 0.0 <= later["utilisation"] <= 1.0
    assert to_compute_metrics(later).capacity_rps == 100.0


def test_reports_nobody_receives_are_counted_not_fatal(sockdir):
    with running(config(metrics_socket=os.path.join(sockdir, "nobody.sock"), metrics_period_s=0.05)) as service:
        deadline = time.monotonic() + 3
        while service.counters["reports_failed"] < 2:
            assert time.monotonic() < deadline, f"reports were not attempted: {service.counters}"
            time.sleep(0.01)
        with client() as sock:
            sock.sendto(encode_request(Request(1, 0, 0)), ("::1", service.port))
            assert receive_replies(sock, 1)[0][0].instance == "k3-1"
    assert service.counters["reports_failed"] >= 2 and service.counters["reports_sent"] == 0


def test_control_socket_stats_set_pause_reset(sockdir):
    control = os.path.join(sockdir, "k3-1.sock")
    with running(config(control=control)) as service, client() as sock:
        stats = control_request(control, {"op": "stats"})
        assert stats["ok"] and stats["port"] == service.port and stats["instance"] == "k3-1"
        assert stats["settings"]["capacity_rps"] == 100.0 and stats["settings"]["background_load_pct"] == 0.0
        reply = control_request(control, {"op": "set", "background_load_pct": 30})
        assert reply["settings"]["background_load_pct"] == 30
        sock.sendto(encode_request(Request(1, 0, 0)), ("::1", service.port))
        receive_replies(sock, 1)
        assert control_request(control, {"op": "stats"})["counters"]["served"] == 1
        assert control_request(control, {"op": "reset"})["counters"]["served"] == 0
        paused = control_request(control, {"op": "pause", "seconds": 5})
        assert 4 < paused["paused_s"] <= 5
        sock.sendto(encode_request(Request(2, 0, 0)), ("::1", service.port))
        deadline = time.monotonic() + 3
        while control_request(control, {"op": "stats"})["counters"]["ignored_paused"] < 1:
            assert time.monotonic() < deadline, "the paused service never saw the request"
        control_request(control, {"op": "pause", "seconds": 0})
        sock.sendto(encode_request(Request(3, 0, 0)), ("::1", service.port))
        assert receive_replies(sock, 1)[0][0].request_id == 3  # request 2 was never answered
    assert not os.path.exists(control)


@pytest.mark.parametrize("message, error", [
    (b"not json", "Expecting value: line 1 column 1 (char 0)"),
    (b"[]", 'control: request [] must be a JSON object such as {"op": "stats"}'),
    (b'{"op": "restart"}', "control: op='restart' must be one of stats, set, pause, reset"),
    (b'{"op": "set"}', 'control: set needs background_load_pct, e.g. {"op": "set", "background_load_pct": 50}'),
    (b'{"op": "set", "workers": 3}', "control: set: unknown key 'workers'; known keys: background_load_pct"),
    (b'{"op": "set", "background_load_pct": 101}', "station: background_load_pct=101 must be a number in 0..100"),
    (b'{"op": "set", "background_load_pct": "5"}', "station: background_load_pct='5' must be a number in 0..100"),
    (b'{"op": "pause", "seconds": -1}', "control: pause seconds=-1 must be a finite number >= 0 (0 resumes)"),
    (b'{"op": "stats", "verbose": true}', "control: stats: unknown key 'verbose'; known keys: none"),
])
def test_bad_control_requests_are_answered_with_the_reason(message, error):
    service = ComputeService(config())  # the loop need not run: control is handled on its own
    try:
        assert service.handle_control(message) == {"ok": False, "error": error}
        assert service.station.config.background_load_pct == 0.0 and service.paused_until_ns <= service.clock_ns()
    finally:
        service.close()


def test_malformed_requests_are_counted_and_not_answered():
    with running(config()) as service, client() as sock:
        sock.sendto(b"GET / HTTP/1.1\r\n", ("::1", service.port))
        sock.sendto(encode_request(Request(9, 0, 0)), ("::1", service.port))
        [(reply, _)] = receive_replies(sock, 1)
    assert reply.request_id == 9 and service.counters["malformed"] == 1


@pytest.mark.parametrize("change, message", [
    (dict(instance="k" * 33), "response: instance='" + "k" * 33 + "' is 33 bytes of UTF-8; use a name of 1..32 bytes"),
    (dict(workers=0), "service: workers=0 must be an integer in 1..4096"),
    (dict(price_cny_per_hour=-1.0), "service: price_cny_per_hour=-1.0 must be a finite number >= 0, or omitted"),
    (dict(metrics_period_s=0), "service: metrics_period_s=0 must be a finite number > 0, e.g. 1"),
    (dict(service=""), "service: service='' must be a non-empty name, e.g. infer"),
])
def test_config_errors_name_the_key(change, message):
    with pytest.raises(ComputeError) as info:
        config(**change)
    assert str(info.value) == message


def test_command_line_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--instance", "k1-1", "--service", "infer", "--port", "8080", "--workers", "0",
              "--service-time-ms", "10", "--queue-limit", "4"])
    assert info.value.code == 2
    assert "service: workers=0 must be an integer in 1..4096" in capsys.readouterr().err


def test_command_line_serves_until_sigterm(sockdir):
    control = os.path.join(sockdir, "svc.sock")
    process = subprocess.Popen(
        [sys.executable, "-m", "cpn_net.compute.service", "--instance", "k2-1", "--service", "infer",
         "--port", "0", "--workers", "2", "--service-time-ms", "5", "--queue-limit", "8",
         "--background-load-pct", "10", "--seed", "4", "--metrics-socket", os.path.join(sockdir, "m.sock"),
         "--metrics-period-s", "1", "--control", control],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "ready\n"
        assert os.path.exists(control)
        port = control_request(control, {"op": "stats"})["port"]
        with client() as sock:
            sock.sendto(encode_request(Request(5, 1, 0)), ("::1", port))
            assert receive_replies(sock, 1)[0][0].instance == "k2-1"
        process.send_signal(signal.SIGTERM)
        assert process.wait(5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
    assert not os.path.exists(control)

