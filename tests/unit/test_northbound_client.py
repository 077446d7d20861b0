"""The stdlib northbound client against the real REST server over a fake api."""

import http.server
import socket
import threading

import pytest

from controllers.northbound.fake_api import FakeNorthboundApi
from cpn_net.northbound_client import DEFAULT_URL, NorthboundClient, NorthboundError

WEB = {"name": "web", "headend": "east", "to": "west", "waypoints": ["centre"]}


@pytest.fixture
def api():
    return FakeNorthboundApi({"east": 1, "centre": 2, "west": 3}, [("east", "centre"), ("centre", "west")])


@pytest.fixture
def client(server):
    return NorthboundClient(server.url + "/")


def test_policy_round_trip(client, api):
    assert client.list_policies() == []
    policy = client.add_policy(WEB)
    assert policy["path"] == ["east", "centre", "west"] and api.policies["web"]["to"] == "west"
    assert client.get_policy("web") == policy and client.list_policies() == [policy]
    assert client.delete_policy("web") == {"removed": policy}
    assert client.list_policies() == []


def test_status_topology_and_link_event(client, api):
    assert client.status()["topology"] == "fake"
    assert [link["up"] for link in client.topology()["links"]] == [True, True]
    assert client.link_event("west", "centre", False)["up"] is False
    assert api.links[frozenset(("centre", "west"))] is False


@pytest.mark.parametrize("act, status, message", [
    (lambda c: c.get_policy("ghost"), 404, "no policy named 'ghost'; list them with GET /policies"),
    (lambda c: c.delete_policy("ghost"), 404, "no policy named 'ghost'; list them with GET /policies"),
    (lambda c: c.add_policy({**WEB, "to": "mars"}), 422,
     "policy 'web': to 'mars' is not a site; sites: centre, east, west"),
    (lambda c: c.add_policy({**WEB, "mode": "inline"}), 400,
     'body.mode: "inline" must be one of "encap", "encap.red" (see PolicyRequest in GET /openapi.json)'),
])
def test_errors_carry_the_server_message(client, act, status, message):
    with pytest.raises(NorthboundError) as err:
        act(client)
    assert (err.value.status, str(err.value)) == (status, message)


def test_conflict_carries_details(client):
    client.add_policy(WEB)
    with pytest.raises(NorthboundError) as err:
        client.add_policy(WEB)
    assert err.value.status == 409 and err.value.details == {"name": "web"}


def test_names_are_quoted_into_one_path_segment(client, api):
    api.policies["a/b c"] = {"name": "a/b c"}
    assert client.get_policy("a/b c") == {"name": "a/b c"}


def test_server_failure_is_a_500_with_the_exception_named(client, api):
    api.fail_with = OSError("netlink gone")
    with pytest.raises(NorthboundError) as err:
        client.status()
    assert (err.value.status, err.value.message) == (500, "internal error: OSError: netlink gone")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_nothing_listening_is_status_0_with_the_cpn_up_hint():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NorthboundError) as err:
        NorthboundClient(url).list_policies()
    assert err.value.status == 0
    assert str(err.value) == f"controller not reachable at {url}; is a network running? (`cpn up`)"
    assert "refused" in err.value.details["reason"].lower()


class _Stub(http.server.BaseHTTPRequestHandler):
    """Something that is not the controller: answers plain text, or nothing at all."""

    def do_GET(self):
        if self.path == "/hang":
            self.server.release.wait(10)
            return
        code = 200 if self.path == "/status" else 502
        self.send_response(code)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>bad gateway</html>" if code == 502 else b"<html>hello</html>")

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.daemon_threads = True
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def test_a_non_json_success_is_refused_with_a_hint(stub):
    with pytest.raises(NorthboundError) as err:
        NorthboundClient(stub).status()
    assert err.value.status == 200
    assert str(err.value).startswith("controller answered GET /status with status 200 but the body is not JSON (")
    assert str(err.value).endswith("is something else listening on that port?")


def test_a_non_json_error_keeps_status_and_text(stub):
    with pytest.raises(NorthboundError) as err:
        NorthboundClient(stub).topology()
    assert (err.value.status, str(err.value)) == (502, "HTTP 502 Bad Gateway: <html>bad gateway</html>")


def test_no_answer_in_time_is_status_0_saying_so(stub):
    client = NorthboundClient(stub, timeout_s=0.2)
    with pytest.raises(NorthboundError) as err:
        client.request("GET", "/hang")
    assert err.value.status == 0
    assert str(err.value) == (f"controller at {stub} did not answer GET /hang within 0.2 s; it may be busy or hung "
                              "(see its log)")


def test_default_url_is_the_controller_default():
    assert NorthboundClient().base_url == DEFAULT_URL == "http://127.0.0.1:8181"
