"""The REST server's limits over its test double: every malformed or abusive request gets a 4xx, nothing stored.

One test per failure found by hand-made requests (issue 13): huge integers, lone
surrogates, 1e400, a body announced and never sent, TRACE and QUERY, 1,000 slow
clients, an 18,000-policy batch, 60,000 unknown fields. Each checks the status,
the message and that the api's state (policies, slices, links) is what it was.
"""

import copy
import http.client
import json
import socket
import threading
import time

import pytest

from controllers.northbound import schema_check
from controllers.northbound.fake_api import FakeNorthboundApi
from controllers.northbound.openapi import MAX_BATCH_POLICIES, openapi_document
from controllers.northbound.rest import (MAX_CONNECTIONS, MAX_PAGE_ITEMS, MAX_PROBLEMS_LISTED, REQUEST_TIMEOUT_S,
                                         start_rest_server)

SITES = {"east": 1, "centre": 2, "west": 3}
LINKS = [("east", "centre"), ("centre", "west"), ("east", "west")]
DOCUMENT = openapi_document()
WEB = {"name": "web", "headend": "east", "to": "west"}
GOLD = {"name": "gold", "members": ["east", "west"], "rate_mbps": 5}
TIMEOUT_S = 0.5  # the test servers' request deadline: short, so the timeout tests are quick


@pytest.fixture
def api():
    fake = FakeNorthboundApi(SITES, LINKS)
    fake.add_policy({"name": "kept", "headend": "east", "to": "centre"})  # something to keep unchanged
    fake.add_slice({"name": "silver", "members": ["east", "centre"], "rate_mbps": 1})
    return fake


@pytest.fixture
def server(api):
    server = start_rest_server(api, port=0, request_timeout_s=TIMEOUT_S)
    try:
        yield server
    finally:
        server.shutdown()


def state(api):
    """Everything the api holds: equal before and after a refused request."""
    return copy.deepcopy((api.policies, api.slices, api.links))


def send(server, method, path, body=b"", headers=(("Content-Type", "application/json"),), read_timeout_s=10):
    """(status, headers, decoded JSON or None) of one request sent as is; Content-Length added for a body."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=read_timeout_s)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if body:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        answer = connection.getresponse()
        data = answer.read()
        return answer.status, answer.headers, json.loads(data) if data else None
    finally:
        connection.close()


def error_of(payload):
    assert schema_check.check(payload, {"$ref": "#/components/schemas/Error"}, DOCUMENT) == []
    return payload["error"]


def refused(server, api, method, path, body, status):
    """Send ``body``; check the status, the Error body, that nothing changed and that later reads work."""
    before = state(api)
    answer_status, _, payload = send(server, method, path, body)
    assert answer_status == status, payload
    error = error_of(payload)
    assert state(api) == before
    for read in ("/policies", "/slices", "/policies/kept", "/slices/silver", "/status"):
        assert send(server, "GET", read)[0] == 200, read
    return error


# --- numbers -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("digits", [310, 4301, 20_000])
def test_integer_beyond_a_double_is_400_and_not_stored(server, api, digits):
    body = b'{"name": "big", "headend": "east", "to": "west", "bandwidth_mbps": ' + b"9" * digits + b"}"
    error = refused(server, api, "POST", "/policies", body, 400)
    assert error["message"] == (f"body: the integer 999999999999999999999... ({digits} digits) is beyond the "
                                "largest number JSON carries safely (a double, about 1.8e308); give a smaller number")


@pytest.mark.parametrize("path, body", [
    ("/policies", b'{"name": "inf", "headend": "east", "to": "west", "bandwidth_mbps": 1e400}'),
    ("/slices", b'{"name": "inf", "members": ["east", "west"], "rate_mbps": 1, "max_latency_ms": 1e400}'),
    ("/slices", b'{"name": "inf", "members": ["east", "west"], "rate_mbps": 1, "meter_mbps": -1E+999}'),
])
def test_a_number_that_overflows_to_infinity_is_400_and_not_stored(server, api, path, body):
    error = refused(server, api, "POST", path, body, 400)
    assert error["message"].startswith("body: the number ") and "overflows a double (it would be infinite)" in \
        error["message"]


def test_a_number_with_a_zero_fraction_is_the_integer(server, api):
    body = json.dumps({**WEB, "flow": {"proto": "tcp", "dst_port": 8080.0}}).encode()
    status, _, policy = send(server, "POST", "/policies", body)
    assert status == 201 and policy["flow"]["dst_port"] == 8080 and isinstance(api.policies["web"]["flow"]
                                                                              ["dst_port"], int)


# --- strings -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, body, where", [
    ("/policies", rb'{"name": "s", "headend": "east", "to": "west", "flow": {"src": "2001:db8::\ud800"}}',
     "body.flow.src"),
    ("/slices", rb'{"name": "s", "members": ["east", "west\udfff"], "rate_mbps": 1}', "body.members[1]"),
    ("/policies", rb'{"name": "s", "headend": "east", "to": "west", "\ud800": 1}', "body: key"),
    ("/events/link", rb'{"a": "east", "b": "\udc00west", "up": false}', "body.b"),
])
def test_a_lone_surrogate_is_400_and_not_stored(server, api, path, body, where):
    error = refused(server, api, "POST", path, body, 400)
    assert error["message"].startswith(f"{where}: the string holds a lone UTF-16 surrogate \\u")
    assert error["message"].endswith("JSON text must be Unicode: pair the surrogates or drop it")


def test_a_surrogate_pair_is_one_character_and_accepted(server, api):
    body = rb'{"name": "pair", "headend": "east", "to": "west", "flow": {"src": "\ud83d\ude00"}}'
    status, _, policy = send(server, "POST", "/policies", body)
    assert status == 201 and policy["flow"]["src"] == "\U0001f600"
    assert send(server, "GET", "/policies/pair")[2]["flow"]["src"] == "\U0001f600"


def test_an_api_answer_with_a_lone_surrogate_still_goes_out(api):
    class Api(FakeNorthboundApi):
        def status(self):
            return {"topology": "bad\ud800name"}

    server = start_rest_server(Api(SITES), port=0)
    try:
        status, _, payload = send(server, "GET", "/status")
        assert status == 200 and payload == {"topology": "bad\ud800name"}  # \u-escaped on the wire
    finally:
        server.shutdown()


# --- bodies that do not arrive -------------------------------------------------------------------------------------

def test_a_body_announced_and_never_sent_is_408_quickly(server, api):
    before = state(api)
    host, port = server.server_address[:2]
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"POST /policies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n" + b'{"name": "sl')
        answer = sock.makefile("rb").read()
    elapsed = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 408") and TIMEOUT_S <= elapsed < TIMEOUT_S + 2
    assert error_of(json.loads(body))["message"] == (f"the body did not arrive within {TIMEOUT_S:g} s: "
                                                     "Content-Length announced 100 bytes; send the whole body at once")
    assert state(api) == before


@pytest.mark.parametrize("sent", [b"GET /status HTTP/1.1\r\nHost: x\r\n", b"GET /sta"])
def test_a_request_that_stops_half_way_is_408(server, sent):
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(sent)
        answer = sock.makefile("rb").read()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 408")
    assert error_of(json.loads(body))["message"] == f"the request did not arrive whole within {TIMEOUT_S:g} s; " \
                                                    "send it at once"


def test_a_connection_that_sends_nothing_is_closed_after_the_deadline(server):
    host, port = server.server_address[:2]
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as sock:
        assert sock.makefile("rb").read() == b""
    assert time.monotonic() - started < TIMEOUT_S + 2


def test_a_body_cut_short_is_400_and_not_stored(server, api):
    before = state(api)
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"POST /policies HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{}")
        sock.shutdown(socket.SHUT_WR)
        answer = sock.makefile("rb").read()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400") and state(api) == before
    assert error_of(json.loads(body))["message"] == ("the body ended after 2 of the 50 bytes Content-Length "
                                                     "announced; send the whole body")


def test_the_default_deadline_is_seconds_not_half_a_minute():
    assert 1 <= REQUEST_TIMEOUT_S <= 10


# --- methods -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path, allow", [
    ("TRACE", "/policies", "GET, POST"), ("QUERY", "/policies", "GET, POST"), ("TRACE", "/", "GET"),
    ("CONNECT", "/status", "GET"), ("PROPFIND", "/slices/silver", "DELETE, GET"),
    ("QUERY", "/policy-batches", "POST"),
])
def test_registered_methods_a_path_lacks_are_405_with_allow(server, api, method, path, allow):
    before = state(api)
    status, headers, payload = send(server, method, path, b'{"name": "x"}')
    assert status == 405 and headers["Allow"] == allow and state(api) == before
    assert error_of(payload)["message"] == f"{method} is not allowed on {path}; use {allow}"


def test_head_answers_like_get_without_a_body(server):
    status, headers, payload = send(server, "HEAD", "/policies")
    get_status, get_headers, _ = send(server, "GET", "/policies")
    assert (status, payload) == (200, None) and headers["Content-Length"] == get_headers["Content-Length"]
    assert send(server, "HEAD", "/policy-batches")[0] == 405


# --- connections ---------------------------------------------------------------------------------------------------

def test_a_thousand_slow_clients_do_not_make_a_thousand_threads(server):
    host, port = server.server_address[:2]
    threads_before = threading.active_count()
    clients, most_threads = [], 0
    try:
        for _ in range(1000):
            sock = socket.create_connection((host, port), timeout=10)
            sock.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            clients.append(sock)
            most_threads = max(most_threads, threading.active_count())
        for _ in range(5):
            most_threads = max(most_threads, threading.active_count())
            time.sleep(0.05)
        answers = [sock.makefile("rb").readline() for sock in clients]
    finally:
        for sock in clients:
            sock.close()
    assert most_threads <= threads_before  # the workers exist from the start; no thread per connection
    statuses = [line.split()[1] if line else b"closed" for line in answers]
    busy, slow = statuses.count(b"503"), statuses.count(b"408")
    # Every client got an answer: 408 once its time was up, or 503 at once while the slots were full (slots
    # free up while the test is still connecting, so how many of each depends on the machine's speed).
    assert busy + slow == 1000 and busy >= 1000 - 20 * MAX_CONNECTIONS and slow >= MAX_CONNECTIONS
    assert send(server, "GET", "/status")[0] == 200  # and the server serves again once they are gone


def test_busy_answer_is_a_json_503_with_retry_after(api):
    server = start_rest_server(api, port=0, max_workers=1, max_connections=1, request_timeout_s=2)
    host, port = server.server_address[:2]
    try:
        with socket.create_connection((host, port), timeout=10) as holder:
            holder.sendall(b"GET /status HTTP/1.1\r\n")
            time.sleep(0.2)  # the holder has the one slot
            status, headers, payload = send(server, "GET", "/status")
        assert status == 503 and headers["Retry-After"] == "1"
        assert error_of(payload) == {"status": 503, "message": "the server holds 1 connections already; retry in a "
                                                               "second", "details": {"max_connections": 1}}
    finally:
        server.shutdown()


def test_limits_are_checked():
    with pytest.raises(ValueError, match="max_workers=0 must be in 1..max_connections=64"):
        start_rest_server(object(), port=0, max_workers=0)
    with pytest.raises(ValueError, match="request_timeout_s=0 must be > 0"):
        start_rest_server(object(), port=0, request_timeout_s=0)


# --- answer size ---------------------------------------------------------------------------------------------------

def test_a_batch_of_18000_policies_is_400_with_a_short_answer(server, api):
    policies = [{"name": f"p{i}", "headend": "east", "to": "west"} for i in range(18_000)]
    body = json.dumps({"policies": policies}).encode()
    host, port = server.server_address[:2]
    before = state(api)
    status, _, payload = send(server, "POST", "/policy-batches", body)
    assert status == 400 and state(api) == before
    assert error_of(payload)["message"] == (f"body.policies: has 18000 items, at most {MAX_BATCH_POLICIES} allowed "
                                            "(see PolicyBatch in GET /openapi.json)")
    assert len(json.dumps(payload)) < 1000


def test_a_full_batch_answers_a_bounded_document(server, api):
    policies = [{"name": f"p{i}", "headend": "east", "to": "west"} for i in range(MAX_BATCH_POLICIES)]
    status, _, payload = send(server, "POST", "/policy-batches", json.dumps({"policies": policies}).encode())
    assert status == 200 and len(payload["installed"]) == MAX_BATCH_POLICIES
    assert len(json.dumps(payload)) < 1_000 * MAX_BATCH_POLICIES


def test_60000_unknown_fields_list_the_first_problems_only(server, api):
    body = json.dumps({**WEB, **{f"f{i}": 0 for i in range(60_000)}}).encode()
    started = time.monotonic()
    error = refused(server, api, "POST", "/policies", body, 400)
    assert time.monotonic() - started < 5
    problems = error["details"]["problems"]
    assert len(problems) == MAX_PROBLEMS_LISTED and error["details"]["truncated"] is True
    assert problems[0] == {"where": "body", "message": "unknown field 'f0'; (allowed: name, headend, to, flow, "
                                                       "objective, bandwidth_mbps, waypoints, mode, backup)"}
    assert error["message"].endswith(f"; and more: only the first {MAX_PROBLEMS_LISTED} problems are listed "
                                     "(see PolicyRequest in GET /openapi.json)")
    assert len(json.dumps(error)) < 10_000


def test_a_huge_unknown_field_name_is_clipped_in_the_answer(server, api):
    body = json.dumps({**WEB, "x" * 500_000: 1}).encode()
    error = refused(server, api, "POST", "/policies", body, 400)
    assert len(error["message"]) < 500 and "unknown field 'xxxx" in error["message"]


def test_a_long_site_name_is_400_not_echoed_back(server, api):
    error = refused(server, api, "POST", "/policies", json.dumps({**WEB, "headend": "e" * 100_000}).encode(), 400)
    assert len(error["message"]) < 500 and "is longer than 255 characters" in error["message"]


# --- paging --------------------------------------------------------------------------------------------------------

def test_small_lists_come_whole_as_before(server, api):
    status, headers, policies = send(server, "GET", "/policies")
    assert status == 200 and [p["name"] for p in policies] == ["kept"]
    assert headers["X-Total-Count"] == "1" and "Link" not in headers


def test_lists_are_paged_with_limit_offset_total_and_next_link(server, api):
    for i in range(5):
        api.add_policy({"name": f"p{i}", "headend": "east", "to": "west"})
    names, path = [], "/policies?limit=2"
    while path:
        status, headers, page = send(server, "GET", path)
        assert status == 200 and len(page) <= 2 and headers["X-Total-Count"] == "6"
        names += [p["name"] for p in page]
        path = headers.get("Link", "").partition(">")[0][1:]
    assert names == ["kept", "p0", "p1", "p2", "p3", "p4"]
    assert send(server, "GET", "/policies?offset=6")[2] == []
    assert [s["name"] for s in send(server, "GET", "/slices?limit=1&offset=0")[2]] == ["silver"]


def test_the_default_page_holds_the_largest_limit(server, api):
    for i in range(MAX_PAGE_ITEMS + 1):
        api.policies[f"q{i:04}"] = {"name": f"q{i:04}"}
    status, headers, page = send(server, "GET", "/policies")
    assert status == 200 and len(page) == MAX_PAGE_ITEMS and headers["X-Total-Count"] == str(MAX_PAGE_ITEMS + 2)
    assert headers["Link"] == f'</policies?limit={MAX_PAGE_ITEMS}&offset={MAX_PAGE_ITEMS}>; rel="next"'


@pytest.mark.parametrize("query, message", [
    ("limit=0", "query: limit='0' must be an integer in 1..1000; leave it out for 1000"),
    ("limit=1001", "query: limit='1001' must be an integer in 1..1000; leave it out for 1000"),
    ("limit=-1", "query: limit='-1' must be an integer in 1..1000; leave it out for 1000"),
    ("limit=ten", "query: limit='ten' must be an integer in 1..1000; leave it out for 1000"),
    ("limit=", "query: limit='' must be an integer in 1..1000; leave it out for 1000"),
    ("offset=1.5", "query: offset='1.5' must be an integer in 0..2147483647; start at 0"),
    ("offset=99999999999", "query: offset='99999999999' must be an integer in 0..2147483647; start at 0"),
    ("limit=1&limit=2", "query: limit is given 2 times; give it once"),
])
def test_bad_paging_parameters_are_400(server, api, query, message):
    for path in ("/policies", "/slices"):
        status, _, payload = send(server, "GET", f"{path}?{query}")
        assert status == 400 and error_of(payload)["message"] == message
