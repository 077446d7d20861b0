"""The REST northbound served for real on 127.0.0.1 (ephemeral port) over a fake api."""

import concurrent.futures
import errno
import http.client
import json
import logging
import socket
import threading
import urllib.error
import urllib.request

import pytest

from controllers.northbound import schema_check
from controllers.northbound.errors import ApiError, ListenError
from controllers.northbound.fake_api import FakeNorthboundApi
from controllers.northbound.openapi import openapi_document
from controllers.northbound.rest import MAX_BODY_BYTES, ROUTES, Route, start_rest_server

SITES = {"east": 1, "centre": 2, "west": 3}
LINKS = [("east", "centre"), ("centre", "west"), ("east", "west")]
DOCUMENT = openapi_document()
WEB = {"name": "web", "headend": "east", "to": "west", "flow": {"proto": "tcp", "dst_port": 8080},
       "waypoints": ["centre"], "bandwidth_mbps": 10}


@pytest.fixture
def api():
    return FakeNorthboundApi(SITES, LINKS)


def call(server, method, path, body=None, *, data=None, headers=None):
    """(status, headers, decoded JSON) of one request; error statuses included."""
    if body is not None:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(server.url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, json.loads(err.read())


def answer(server, method, path, body=None):
    """(status, decoded JSON) of one request."""
    status, _, payload = call(server, method, path, body)
    return status, payload


def raw_call(server, method, path, body=b"", headers=()):
    """Like :func:`call` but sends exactly the given headers (http.client adds only Host)."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders(body or None)
        answer = connection.getresponse()
        return answer.status, answer.headers, json.loads(answer.read() or b"null")
    finally:
        connection.close()


def error_of(payload):
    """The ``error`` member of an error body, after checking the body against the published Error schema."""
    assert schema_check.check(payload, {"$ref": "#/components/schemas/Error"}, DOCUMENT) == []
    return payload["error"]


# --- success paths -------------------------------------------------------------------------------------------------

def test_index_links_every_route_with_its_methods(server):
    status, headers, index = call(server, "GET", "/")
    assert status == 200 and headers["Content-Type"] == "application/json"
    methods = {link["path"]: sorted(link["methods"]) for link in index["links"]}
    assert methods["/policies"] == ["GET", "POST"] and methods["/policies/{name}"] == ["DELETE", "GET"]
    assert {(r.method, r.template) for r in ROUTES} == {(m, p) for p, ms in methods.items() for m in ms}
    assert index["openapi"] == "/openapi.json"
    assert all(link["summary"] for link in index["links"])


def test_openapi_document_is_served_with_the_real_server_url(server):
    status, _, doc = call(server, "GET", "/openapi.json")
    assert status == 200 and doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": server.url}]
    assert server.url == f"http://127.0.0.1:{server.server_address[1]}" and server.server_address[1] != 0


def test_status_and_topology_come_from_the_api(server, api):
    assert answer(server, "GET", "/status") == (200, {"topology": "fake", "pid": 0, "policies": 0, "errors": []})
    status, _, topology = call(server, "GET", "/topology")
    assert status == 200 and [s["name"] for s in topology["sites"]] == ["centre", "east", "west"]
    assert api.calls == ["status", "topology"]


def test_add_policy_answers_201_with_location_and_the_installed_policy(server, api):
    status, headers, policy = call(server, "POST", "/policies", WEB)
    assert status == 201 and headers["Location"] == "/policies/web"
    assert policy["path"] == ["east", "centre", "west"] and policy["segments"] == ["fcbb:bb00:2::", "fcbb:bb00:3::"]
    assert policy["mode"] == "encap"  # the api's default came back
    assert api.policies["web"]["flow"] == {"proto": "tcp", "dst_port": 8080}
    assert call(server, "GET", "/policies/web")[2] == policy
    assert call(server, "GET", "/policies")[2] == [policy]
    assert schema_check.check(policy, {"$ref": "#/components/schemas/Policy"}, server.document) == []


def test_a_policy_with_every_default_conforms_to_the_policy_schema(server):
    body = {"name": "all", "headend": "east", "to": "west", "flow": None}
    status, _, policy = call(server, "POST", "/policies", body)
    assert status == 201 and policy["flow"] is None and policy["waypoints"] == []
    assert schema_check.check(policy, {"$ref": "#/components/schemas/Policy"}, server.document) == []


def test_location_and_path_parameters_are_url_encoded(server, api):
    api.policies["a b"] = {"name": "a b"}  # only the api decides names it holds; the path must still round-trip
    assert call(server, "GET", "/policies/a%20b")[2] == {"name": "a b"}
    assert answer(server, "DELETE", "/policies/a%20b/") == (200, {"removed": {"name": "a b"}})


def test_delete_policy_returns_what_was_removed_and_it_is_gone(server, api):
    _, _, policy = call(server, "POST", "/policies", WEB)
    status, _, removed = call(server, "DELETE", "/policies/web")
    assert status == 200 and removed == {"removed": policy}
    assert api.policies == {} and call(server, "GET", "/policies")[2] == []


def test_link_event_reaches_the_api(server, api):
    status, _, answer = call(server, "POST", "/events/link", {"a": "west", "b": "centre", "up": False})
    assert status == 200 and answer == {"link": "centre-west", "up": False, "rerouted": []}
    assert api.links[frozenset(("centre", "west"))] is False


def test_query_strings_are_ignored_and_ipaddress_results_are_written_as_strings(api):
    import ipaddress

    class Api(FakeNorthboundApi):
        def status(self):
            return {"sid": ipaddress.IPv6Address("fcbb:bb00:1::"), "sites": {"west", "east"}}

    server = start_rest_server(Api(SITES), port=0)
    try:
        assert call(server, "GET", "/status?verbose=1")[2] == {"sid": "fcbb:bb00:1::", "sites": ["east", "west"]}
    finally:
        server.shutdown()


# --- errors ----------------------------------------------------------------------------------------------------------

def test_unknown_path_is_404_naming_it(server):
    status, _, payload = call(server, "GET", "/nope")
    assert status == 404
    assert error_of(payload) == {"status": 404, "message": "no such path '/nope'; GET / lists the paths", "details": {}}


def test_unknown_policy_is_404_with_the_api_message(server):
    for method in ("GET", "DELETE"):
        status, _, payload = call(server, method, "/policies/ghost")
        assert status == 404
        assert error_of(payload)["message"] == "no policy named 'ghost'; list them with GET /policies"


@pytest.mark.parametrize("method, path, allow", [("PUT", "/policies", "GET, POST"),
                                                 ("POST", "/policies/web", "DELETE, GET"),
                                                 ("DELETE", "/status", "GET"), ("OPTIONS", "/", "GET")])
def test_wrong_method_is_405_with_allow(server, method, path, allow):
    status, headers, payload = call(server, method, path)
    assert status == 405 and headers["Allow"] == allow
    error = error_of(payload)
    assert error["message"] == f"{method} is not allowed on {path}; use {allow}"
    assert error["details"] == {"allowed": allow.split(", ")}


def test_unsupported_method_gets_a_json_501(server):
    status, _, payload = raw_call(server, "BREW", "/policies")
    assert status == 501 and error_of(payload)["message"].startswith("method BREW is not supported; use GET, POST")


def test_existing_policy_is_409_and_the_first_is_kept(server, api):
    call(server, "POST", "/policies", WEB)
    status, _, payload = call(server, "POST", "/policies", {**WEB, "to": "centre", "waypoints": []})
    assert status == 409
    assert error_of(payload) == {"status": 409, "details": {"name": "web"},
                                 "message": "policy 'web' already exists; delete it first (DELETE /policies/web)"}
    assert api.policies["web"]["to"] == "west"


@pytest.mark.parametrize("change, message", [
    ({"headend": "mars"}, "policy 'web': headend 'mars' is not a site; sites: centre, east, west"),
    ({"waypoints": ["centre", "pluto"]}, "policy 'web': waypoint 'pluto' is not a site; sites: centre, east, west"),
    ({"bandwidth_mbps": 500}, "policy 'web': no path from east to west has bandwidth_mbps=500 free (at most 100); "
                              "ask for less"),
])
def test_invalid_or_infeasible_is_422_with_the_api_message_and_changes_nothing(server, api, change, message):
    status, _, payload = call(server, "POST", "/policies", {**WEB, **change})
    assert status == 422 and error_of(payload)["message"] == message
    assert api.policies == {}


@pytest.mark.parametrize("body, message", [
    ({"headend": "east", "to": "west"}, "body: missing required field 'name'"),
    ({**WEB, "bandwith_mbps": 5}, "body: unknown field 'bandwith_mbps'; did you mean 'bandwidth_mbps'?"),
    ({**WEB, "flow": {"proto": "tcp", "dst_port": "8080"}},
     'body.flow.dst_port: "8080" must be an integer (got string)'),
    ({**WEB, "flow": {"dst_port": 70000}}, "body.flow.dst_port: 70000 must be <= 65535"),
    ({**WEB, "mode": "inline"}, 'body.mode: "inline" must be one of "encap", "encap.red"'),
    ({**WEB, "objective": "cheapest"}, 'body.objective: "cheapest" must be one of "min_delay", "min_hops"'),
    ({**WEB, "bandwidth_mbps": 0}, "body.bandwidth_mbps: 0 must be > 0"),
    ({**WEB, "backup": "yes"}, 'body.backup: "yes" must be a boolean (got string)'),
    ({**WEB, "waypoints": "centre"}, 'body.waypoints: "centre" must be an array (got string)'),
    ({**WEB, "name": "Web Server"}, 'body.name: "Web Server" does not match'),
])
def test_ill_typed_policy_is_400_naming_the_field_and_the_api_is_not_called(server, api, body, message):
    status, _, payload = call(server, "POST", "/policies", body)
    assert status == 400
    error = error_of(payload)
    assert error["message"].startswith(message)
    assert error["message"].endswith("(see PolicyRequest in GET /openapi.json)")
    assert error["details"]["problems"] and "add_policy" not in api.calls


def test_every_problem_of_a_body_is_reported_at_once(server):
    _, _, payload = call(server, "POST", "/policies", {"name": 3, "headend": "east", "extra": 1})
    problems = error_of(payload)["details"]["problems"]
    assert [(p["where"], p["message"].split(" ")[0]) for p in problems] == [
        ("body", "missing"), ("body", "unknown"), ("body.name", "3")]


@pytest.mark.parametrize("data, message", [
    (b"{", "body is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (b"", "POST /policies needs a JSON object body, got an empty body"),
    (b"[1, 2]", "body must be a JSON object, got array"),
    (b'"web"', "body must be a JSON object, got string"),
    (b'{"name": "a", "name": "b"}', "body: key 'name' appears twice in one object; give it once"),
    (b'{"name": "web", "headend": "east", "to": "west", "bandwidth_mbps": NaN}',
     "body: NaN is not JSON; give a finite number or null"),
    (b'{"name": "\xff"}', "body is not UTF-8 (invalid start byte at byte 10); JSON must be UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "body is nested too deeply to parse; flatten it"),
])
def test_malformed_json_is_400(server, api, data, message):
    status, _, payload = call(server, "POST", "/policies", data=data, headers={"Content-Type": "application/json"})
    assert status == 400 and error_of(payload)["message"] == message
    assert api.calls == []


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_body_without_json_content_type_is_415(server, api, content_type):
    headers = [("Content-Length", "2")] + ([("Content-Type", content_type)] if content_type else [])
    status, _, payload = raw_call(server, "POST", "/policies", b"{}", headers)
    assert status == 415
    assert error_of(payload)["message"] == (f"POST /policies needs Content-Type: application/json, got "
                                            f"{content_type!r}; send the body as JSON")
    assert api.calls == []


def test_json_content_type_with_charset_is_accepted(server):
    data = json.dumps(WEB).encode()
    assert call(server, "POST", "/policies", data=data,
                headers={"Content-Type": "application/json; charset=utf-8"})[0] == 201


def test_body_over_one_mib_is_413_and_not_parsed(server, api):
    data = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}'
    status, _, payload = call(server, "POST", "/policies", data=data, headers={"Content-Type": "application/json"})
    assert status == 413
    assert error_of(payload) == {"status": 413, "message": f"body of {len(data)} bytes is over the 1048576 byte "
                                                           "(1 MiB) limit",
                                 "details": {"content_length": len(data), "max_bytes": MAX_BODY_BYTES}}
    assert api.calls == []
    assert call(server, "GET", "/status")[0] == 200  # and the server goes on


def test_body_of_exactly_one_mib_is_accepted(server):
    data = json.dumps(WEB).encode()
    data = data[:-1] + b" " * (MAX_BODY_BYTES - len(data)) + b"}"  # JSON whitespace pads it to the limit
    assert len(data) == MAX_BODY_BYTES
    assert call(server, "POST", "/policies", data=data, headers={"Content-Type": "application/json"})[0] == 201


@pytest.mark.parametrize("headers, status, message", [
    ([("Content-Length", "-1"), ("Content-Type", "application/json")], 400,
     "Content-Length='-1' must be a non-negative integer"),
    ([("Content-Length", "ten"), ("Content-Type", "application/json")], 400,
     "Content-Length='ten' must be a non-negative integer"),
    ([("Transfer-Encoding", "chunked"), ("Content-Type", "application/json")], 411,
     "chunked request bodies are not supported; send the body with a Content-Length"),
])
def test_unusable_body_framing_is_refused(server, headers, status, message):
    body = b"0\r\n\r\n" if status == 411 else b""
    answer_status, _, payload = raw_call(server, "POST", "/policies", body, headers)
    assert answer_status == status and error_of(payload)["message"] == message


def test_malformed_request_line_gets_a_json_400(server):
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /a b HTTP/1.1\r\n\r\n")
        answer = sock.makefile("rb").read()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400") and b"Content-Type: application/json" in head
    assert error_of(json.loads(body))["message"] == "Bad request syntax ('GET /a b HTTP/1.1')"


def test_handler_exception_is_500_logged_and_the_server_survives(server, api, caplog):
    api.fail_with = RuntimeError("netlink socket closed")
    with caplog.at_level(logging.ERROR, logger="controllers.northbound.rest"):
        status, _, payload = call(server, "GET", "/status")
    assert status == 500
    assert error_of(payload) == {"status": 500, "message": "internal error: RuntimeError: netlink socket closed",
                                 "details": {}}
    assert "GET /status failed" in caplog.text and "netlink socket closed" in caplog.text
    assert call(server, "GET", "/status")[0] == 200


def test_failure_during_a_mutation_releases_the_lock(server, api):
    api.fail_with = KeyError("half-way")
    assert call(server, "POST", "/policies", WEB)[0] == 500
    assert not server.mutation_lock.locked()
    assert call(server, "POST", "/policies", WEB)[0] == 201


def test_unserialisable_result_is_500_naming_the_type(api):
    class Api(FakeNorthboundApi):
        def status(self):
            return {"when": object()}

    server = start_rest_server(Api(SITES), port=0)
    try:
        status, _, payload = call(server, "GET", "/status")
        assert status == 500 and error_of(payload)["message"].startswith(
            "internal error: TypeError: object <object object at")
        assert "is not JSON serialisable" in payload["error"]["message"]
    finally:
        server.shutdown()


def test_api_error_with_its_own_status_and_details_passes_through(api):
    class Api(FakeNorthboundApi):
        def topology(self):
            raise ApiError(503, "controller still booting; retry in a second", {"retry_after_s": 1})

    server = start_rest_server(Api(SITES), port=0)
    try:
        status, _, payload = call(server, "GET", "/topology")
        assert status == 503 and error_of(payload) == {"status": 503, "details": {"retry_after_s": 1},
                                                       "message": "controller still booting; retry in a second"}
    finally:
        server.shutdown()


# --- concurrency and lifecycle -------------------------------------------------------------------------------------

def test_twenty_parallel_requests_all_succeed(server, api):
    def one(index):
        status, _, policy = call(server, "POST", "/policies", {**WEB, "name": f"p{index}"})
        assert status == 201 and policy["name"] == f"p{index}"
        return call(server, "GET", f"/policies/p{index}")[0]

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        assert list(pool.map(one, range(20))) == [200] * 20
    assert sorted(api.policies) == sorted(f"p{i}" for i in range(20))


class ObservedLock:
    """A lock that tells the test when a second request starts waiting for it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._attempts = 0
        self.second_waiting = threading.Event()

    def __enter__(self):
        self._attempts += 1  # the first holder is inside long before the second arrives: no race here
        if self._attempts == 2:
            self.second_waiting.set()
        self._lock.acquire()

    def __exit__(self, *exc_info):
        self._lock.release()

    def locked(self):
        return self._lock.locked()


def test_mutations_run_one_at_a_time_while_reads_go_on(api):
    entered, release = threading.Event(), threading.Event()
    inside = []

    class SlowApi(FakeNorthboundApi):
        def add_policy(self, body):
            inside.append(body["name"])
            entered.set()
            assert release.wait(10), "test never released the mutation"
            return super().add_policy(body)

    slow = SlowApi(SITES)
    server = start_rest_server(slow, port=0)
    server.mutation_lock = ObservedLock()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(call, server, "POST", "/policies", WEB)
            assert entered.wait(10)
            second = pool.submit(call, server, "DELETE", "/policies/web")
            assert server.mutation_lock.second_waiting.wait(10)
            assert inside == ["web"] and slow.calls == []  # the delete waits for the add
            assert answer(server, "GET", "/status")[0] == 200  # reads do not wait
            release.set()
            assert first.result(timeout=10)[0] == 201
            assert second.result(timeout=10)[0] == 200  # ran after the add, so the policy was there
        assert slow.calls == ["status", "add_policy", "delete_policy"] and slow.policies == {}
    finally:
        release.set()
        server.shutdown()


def test_shutdown_frees_the_port_and_can_be_called_twice(api):
    server = start_rest_server(api, port=0)
    port = server.server_address[1]
    server.shutdown()
    server.shutdown()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5)
    again = start_rest_server(api, port=port)
    again.shutdown()


def test_port_in_use_is_a_listen_error_naming_the_address(server, api):
    port = server.server_address[1]
    with pytest.raises(ListenError) as err:
        start_rest_server(api, port=port)
    assert str(err.value) == (f"northbound: cannot listen on 127.0.0.1:{port}: Address already in use; stop "
                              "whatever holds the port or choose another one")
    assert err.value.errno == errno.EADDRINUSE and isinstance(err.value, OSError)


def test_ipv6_loopback_is_served(api):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        server = start_rest_server(api, host="::1", port=0)
    except ListenError as err:
        pytest.skip(f"no IPv6 loopback here: {err}")
    try:
        assert server.url.startswith("http://[::1]:") and call(server, "GET", "/status")[0] == 200
    finally:
        server.shutdown()


def test_custom_routes_extend_the_server(api):
    ping = Route("GET", "/ping", lambda server, params, body: {"pong": True})
    server = start_rest_server(api, port=0, routes=(*ROUTES, ping))
    try:
        assert answer(server, "GET", "/ping") == (200, {"pong": True})
        assert any(link["path"] == "/ping" for link in call(server, "GET", "/")[2]["links"])
    finally:
        server.shutdown()


def test_route_match_decodes_parameters_and_rejects_empty_ones():
    route = Route("GET", "/policies/{name}", lambda server, params, body: None)
    assert route.match("/policies/a%2Fb") == {"name": "a/b"}
    assert route.match("/policies/") is None and route.match("/status") is None
