"""Tests of the control socket: ControlServer.handle with a fake network, and call()."""

import json
import os
import socket
import stat

import pytest

from cpn_net.emulation import daemon
from cpn_net.emulation.daemon import ControlError, ControlServer, call
from cpn_net.emulation.linkem import LinkEmulationError


class FakeNetwork:
    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail

    def status(self):
        if self.fail:
            raise self.fail
        return {"topology": "tiny", "links": []}

    def set_link(self, a, b, **changes):
        self.calls.append((a, b, changes))
        if self.fail:
            raise self.fail
        return {"delay_ms": changes.get("delay_ms", 5.0), "down": changes.get("down", False)}


@pytest.fixture
def server(tmp_path):
    made = []

    def make(network=None):
        made.append(ControlServer(network or FakeNetwork(), str(tmp_path)))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_socket_is_private_and_replaces_a_stale_one(tmp_path, server):
    (tmp_path / "control.sock").write_text("stale")
    srv = server()
    mode = os.stat(srv.path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    srv.close()
    assert not os.path.exists(srv.path)


def test_status(server):
    assert server().handle({"op": "status"}) == {"ok": True, "status": {"topology": "tiny", "links": []}}


def test_link_set_passes_only_the_given_changes(server):
    network = FakeNetwork()
    reply = server(network).handle({"op": "link_set", "a": "east", "b": "r2", "delay_ms": 9, "loss_pct": None,
                                    "down": False, "unshaped": None, "extra": 1})
    assert reply == {"ok": True, "settings": {"delay_ms": 9, "down": False}}
    assert network.calls == [("east", "r2", {"delay_ms": 9, "down": False})]


def test_down_requests_a_stop(server):
    srv = server()
    assert not srv.stop_requested.is_set()
    assert srv.handle({"op": "down"}) == {"ok": True}
    assert srv.stop_requested.is_set()


@pytest.mark.parametrize("request_, error", [
    ({"op": "reboot"}, "op='reboot' must be one of status, link_set, restart_controller, down"),
    ({}, "op=None must be one of status, link_set, restart_controller, down"),
    ({"op": "link_set", "b": "west"}, "link_set needs key 'a': the site or router at each end of the link"),
    ({"op": "link_set", "a": "east"}, "link_set needs key 'b': the site or router at each end of the link"),
    # reproducer: a non-object request raised AttributeError and killed the serving thread
    ([], 'request [] must be a JSON object such as {"op": "status"}'),
    ("status", 'request \'status\' must be a JSON object such as {"op": "status"}'),
])
def test_bad_requests(server, request_, error):
    network = FakeNetwork()
    assert server(network).handle(request_) == {"ok": False, "error": error}
    assert network.calls == []


@pytest.mark.parametrize("failure, error", [
    (LinkEmulationError("link east-centre: jitter_ms=6 must be <= delay_ms=5"),
     "link east-centre: jitter_ms=6 must be <= delay_ms=5"),
    # reproducer: a KeyError from the network was reported as "missing key 'no WAN link ...'"
    (KeyError("no WAN link between east and mars"), "no WAN link between east and mars"),
    (RuntimeError("boom"), "boom"),
])
def test_network_errors_come_back_as_messages(server, failure, error):
    srv = server(FakeNetwork(fail=failure))
    assert srv.handle({"op": "link_set", "a": "east", "b": "mars", "delay_ms": 1}) == {"ok": False, "error": error}
    assert srv.handle({"op": "status"}) == {"ok": False, "error": error}
    assert not srv.lock.locked()


def test_round_trip_through_call(tmp_path, server):
    network = FakeNetwork()
    srv = server(network)
    srv.start()
    assert call(str(tmp_path), {"op": "status"}, timeout_s=5)["status"]["topology"] == "tiny"
    reply = call(str(tmp_path), {"op": "link_set", "a": "east", "b": "centre", "down": True}, timeout_s=5)
    assert reply["settings"] == {"delay_ms": 5.0, "down": True}
    with pytest.raises(ControlError, match=r"^op='nope' must be one of status, link_set, restart_controller, down$"):
        call(str(tmp_path), {"op": "nope"}, timeout_s=5)
    # the thread survives a malformed line and a non-object request
    for raw in (b"{not json\n", b"[1]\n"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(srv.path)
            client.sendall(raw)
            answer = json.loads(daemon._read_line(client))
        assert answer["ok"] is False and answer["error"]
    assert call(str(tmp_path), {"op": "down"}, timeout_s=5) == {"ok": True}
    srv.thread.join(timeout=5)
    assert not srv.thread.is_alive()


def test_call_without_a_network(tmp_path):
    with pytest.raises(ControlError) as info:
        call(str(tmp_path), {"op": "status"})
    assert str(info.value) == (f"no cpn network is running (no answer on {tmp_path}/control.sock); "
                               "start one with `cpn up FILE`")


def test_call_on_a_dead_socket_file(tmp_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as orphan:
        orphan.bind(str(tmp_path / "control.sock"))  # bound, never listening: refused
    with pytest.raises(ControlError, match="no cpn network is running"):
        call(str(tmp_path), {"op": "status"})


def test_call_permission_denied_says_to_use_sudo(tmp_path, monkeypatch):
    # reproducer: a non-root user got a PermissionError traceback from `cpn status`
    class DeniedSocket(socket.socket):
        def connect(self, address):
            raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(daemon.socket, "socket", DeniedSocket)
    with pytest.raises(ControlError) as info:
        call(str(tmp_path), {"op": "status"})
    assert str(info.value) == (f"permission denied on {tmp_path}/control.sock: the running network belongs "
                               "to root; run the command with sudo")


def test_call_that_times_out_raises_control_error(tmp_path):
    # a listener that never accepts: the request is queued, the reply never comes
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(str(tmp_path / "control.sock"))
        mute.listen(1)
        with pytest.raises(ControlError, match=r"did not answer on .*control.sock within 0.05 s"):
            call(str(tmp_path), {"op": "status"}, timeout_s=0.05)
