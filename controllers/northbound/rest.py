"""The controller's REST northbound: a JSON HTTP server over a :class:`NorthboundApi`.

Standard library only (``http.server``): the controller runs os-ken on native
threads, and the server accepts on its own thread and hands each connection to
a fixed pool of :data:`MAX_WORKERS` worker threads. The server owns HTTP
(routing, content types, body size, JSON, checking bodies against the OpenAPI
schemas, status codes, the error body, paging, resource limits); the api owns
the network (validating names and constraints, computing, installing, rolling
back).

Limits, so that no client can exhaust the controller (each answered with a 4xx
or 503 naming the limit, never a dropped connection or a stored bad value):

- at most :data:`MAX_WORKERS` requests are handled at once and
  :data:`MAX_CONNECTIONS` connections are held (handled or waiting); past that a
  connection is answered 503 with ``Retry-After`` at once, by the accepting
  thread, so 1,000 slow clients make no more threads than a quiet day;
- the request line, headers and body must all arrive within
  :data:`REQUEST_TIMEOUT_S` (408 when a request had started, else the idle
  connection is closed);
- a body is at most :data:`MAX_BODY_BYTES` (413);
- JSON numbers must fit a double: an integer of over 308 digits or a number
  that overflows to infinity (``1e400``) is 400 (where the schema asks for an
  integer, ``80.0`` is the integer 80, as JSON Schema counts it); strings must be Unicode (a
  lone UTF-16 surrogate ``\\ud800`` is 400), so nothing stored can break a later answer;
- a schema error lists at most :data:`MAX_PROBLEMS_LISTED` problems;
- list answers (``GET /policies``, ``GET /slices``) are pages of at most
  :data:`MAX_PAGE_ITEMS` items: ``?limit=&offset=``, with ``X-Total-Count`` and a
  ``Link: <...>; rel="next"`` header while more follow. A list that fits one
  page is answered whole, as before paging existed.

Answers are ``application/json``, except the map page and its files (``GET /map``, ``/map/{asset}``:
HTML, JavaScript, CSS), its live feed (``GET /events``: ``text/event-stream``, see
:mod:`controllers.northbound.map.feed`) and ``GET /metrics`` (Prometheus text, :mod:`controllers.metrics`);
their errors are JSON too:

=====  ===========================================================================
200    GET, DELETE, POST /events/link
201    POST /policies, POST /slices, with ``Location: /policies/{name}``, ``/slices/{name}``
400    not JSON, not UTF-8, not an object, duplicate key, NaN, a number no double holds,
       a lone surrogate, a field of the wrong type or unknown (checked against the OpenAPI
       schema), a bad ``limit``/``offset``, or the api says so
404    no such path, or the api's unknown policy or slice
405    path exists, method does not (any registered HTTP method: TRACE, QUERY, CONNECT, ...);
       ``Allow`` lists the methods
408    the request did not arrive within :data:`REQUEST_TIMEOUT_S` (a body announced, not sent)
409    the api's "already exists", or admission control refused a slice
411    a chunked body (send Content-Length)
413    body over :data:`MAX_BODY_BYTES`
415    a body sent without ``Content-Type: application/json``
422    the api's "invalid or infeasible", its message passed through
500    any other exception: logged with its traceback, answered
       ``internal error: <type>: <message>``; the server keeps serving
501    a method no HTTP registry knows (``BREW``), as RFC 9110 §15.6.2 asks
503    over :data:`MAX_CONNECTIONS` connections at once; ``Retry-After`` says when to retry
=====  ===========================================================================

Every error body is ``{"error": {"status": N, "message": "...", "details": {...}}}``.
Requests that change state (``Route.mutates``) run one at a time, so two
clients adding the same name cannot both pass the api's existence check; reads
run concurrently with them, so the api must still be thread-safe against its
own (os-ken) threads.

Examples
--------
>>> import json, urllib.request
>>> server = start_rest_server(object(), port=0)  # serving the document needs no api
>>> with urllib.request.urlopen(server.url + "/openapi.json") as answer:
...     answer.status, answer.headers["Content-Type"], json.load(answer)["openapi"]
(200, 'application/json', '3.1.0')
>>> server.shutdown()
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import math
import queue
import re
import socket
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Callable, Mapping, Protocol, Sequence

import cpn_net
from controllers import metrics
from controllers.northbound import schema_check
from controllers.northbound.answers import Raw, Stream
from controllers.northbound.errors import ApiError, ListenError
from controllers.northbound.map import assets as map_assets
from controllers.northbound.map.feed import feed_for
from controllers.northbound.openapi import MAX_PAGE_ITEMS, openapi_document
from cpn_net.northbound_client import DEFAULT_HOST, DEFAULT_PORT

__all__ = ["ApiError", "DEFAULT_HOST", "DEFAULT_PORT", "MAX_BODY_BYTES", "MAX_CONNECTIONS", "MAX_PAGE_ITEMS",
           "MAX_PROBLEMS_LISTED", "MAX_WORKERS", "NorthboundApi", "NorthboundServer", "REQUEST_TIMEOUT_S", "ROUTES",
           "Route", "start_rest_server"]

LOG = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20
# An over-long body is read and dropped up to this size so the client sees the 413
# instead of a reset connection; past it the connection is just closed.
_MAX_DRAIN_BYTES = 16 << 20
#: Requests handled at once: the worker threads, started with the server.
MAX_WORKERS = 16
#: Connections held at once, handled or waiting for a worker; past it: 503 at once.
MAX_CONNECTIONS = 64
#: Seconds for a whole request (line, headers, body) to arrive; a silent client must not hold a worker.
REQUEST_TIMEOUT_S = 5.0
#: Problems of one body listed in a 400 (its message and ``details.problems``).
MAX_PROBLEMS_LISTED = 20
_SHUTDOWN_POLL_S = 0.05  # how often the serving loop looks for shutdown(); socketserver's 0.5 s slows every stop
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: Methods of the IANA HTTP method registry (and QUERY, draft-ietf-httpbis-safe-method-w-body): 405 where the
#: path lacks them. Any other token is 501 (RFC 9110 §15.6.2: the server does not recognise the method).
_REGISTERED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
                                 "QUERY", "ACL", "BIND", "CHECKIN", "CHECKOUT", "COPY", "LABEL", "LINK", "LOCK",
                                 "MERGE", "MKACTIVITY", "MKCALENDAR", "MKCOL", "MKREDIRECTREF", "MKWORKSPACE", "MOVE",
                                 "ORDERPATCH", "PRI", "PROPFIND", "PROPPATCH", "REBIND", "REPORT", "SEARCH", "UNBIND",
                                 "UNCHECKOUT", "UNLINK", "UNLOCK", "UPDATE", "UPDATEREDIRECTREF", "VERSION-CONTROL"})
_MAX_INTEGER_DIGITS = 309  # 10**309 is past the largest double (1.8e308)


class NorthboundApi(Protocol):
    """What the controller implements for the REST server.

    Calls arrive on the server's threads, concurrently with each other (except
    that the calls that change state, :meth:`add_policy`, :meth:`add_policies`,
    :meth:`delete_policy`, :meth:`set_steering`, :meth:`add_slice`,
    :meth:`delete_slice` and :meth:`link_event`, run one at a time) and with
    the controller's own threads. Return
    JSON-serialisable data (``ipaddress`` objects are written as strings).
    Raise :class:`ApiError` to answer with an error status; any other
    exception answers 500. A 4xx must change nothing, and a failure half-way
    must roll back what was installed.
    """

    def status(self) -> dict:
        """``GET /status``: the controller's state (schema ``Status``)."""

    def list_policies(self) -> list[dict]:
        """``GET /policies``: every installed policy (schema ``Policy``)."""

    def get_policy(self, name: str) -> dict:
        """``GET /policies/{name}``; ``ApiError(404)`` if there is none."""

    def add_policy(self, body: dict) -> dict:
        """``POST /policies``: install ``body`` (schema ``PolicyRequest``, already checked).

        Returns the installed policy with its ``path`` and ``segments``.
        ``ApiError(409)`` if the name exists, ``ApiError(422)`` for an
        unknown node or infeasible constraint.
        """

    def get_telemetry(self) -> dict:
        """``GET /telemetry``: the network view: per directed link delay, jitter and loss."""

    def get_steering(self) -> dict:
        """``GET /steering``: the selector's policy, preferred instances, flips, instance health."""

    def set_steering(self, body: dict) -> dict:
        """``PUT /steering`` ``{"policy": name}``: switch the selector's policy."""

    def add_policies(self, bodies: list) -> dict:
        """``POST /policy-batches``: install many policies in one request (bulk provisioning).

        Each is all or nothing on its own, as with ``POST /policies``; returns
        ``{"installed": [policy, ...], "refused": [{"name", "status", "message"}, ...]}``.
        """

    def delete_policy(self, name: str) -> dict:
        """``DELETE /policies/{name}``: ``{"removed": <policy>}``; ``ApiError(404)`` if none."""

    def topology(self) -> dict:
        """``GET /topology``: sites and links (schema ``Topology``)."""

    def link_event(self, body: dict) -> dict:
        """``POST /events/link`` with ``{"a", "b", "up"}``; may just acknowledge."""

    def list_slices(self) -> list[dict]:
        """``GET /slices``: every slice in force, then every refused declaration (schema ``Slice``)."""

    def get_slice(self, name: str) -> dict:
        """``GET /slices/{name}``; ``ApiError(404)`` if there is none."""

    def add_slice(self, body: dict) -> dict:
        """``POST /slices``: admit and realise ``body`` (schema ``SliceRequest``, already checked).

        Returns the slice with its paths. ``ApiError(409)`` if the name is in
        force or admission control refuses it (``details`` name the
        bottleneck), ``ApiError(422)`` for an unknown member or a slice the
        network cannot realise.
        """

    def delete_slice(self, name: str) -> dict:
        """``DELETE /slices/{name}``: ``{"removed": <slice>}``; ``ApiError(404)`` if none."""

    def slice_status(self) -> dict:
        """``GET /slice-status``: per slice, measured delay and loss against its bounds, and violations."""


@dataclass(frozen=True)
class Route:
    """One operation: a method on a path template, and what answers it.

    Parameters
    ----------
    method : str
        Upper case, e.g. ``"GET"``.
    template : str
        As in the OpenAPI document: ``/policies/{name}``.
    call : callable
        ``call(server, params, body) -> payload``; ``params`` are the
        template's variables (URL-decoded), ``body`` the checked JSON or None.
    status : int
        Success status.
    mutates : bool
        Changes state: run one such call at a time.
    location : callable, optional
        ``location(params, body, payload) -> path`` for the Location header.
    paged : bool
        The payload is a list answered a page at a time (``?limit=&offset=``).
    """

    method: str
    template: str
    call: Callable[["NorthboundServer", Mapping[str, str], Any], Any]
    status: int = 200
    mutates: bool = False
    location: Callable[[Mapping[str, str], Any, Any], str] | None = None
    paged: bool = False

    def match(self, path: str) -> dict[str, str] | None:
        """The template's variables if ``path`` (unquoted segments) fits it, else None.

        Examples
        --------
        >>> route = Route("GET", "/policies/{name}", lambda server, params, body: None)
        >>> route.match("/policies/web"), route.match("/policies"), route.match("/policies/a/b")
        ({'name': 'web'}, None, None)
        """
        want = _segments(self.template)
        have = _segments(path)
        if len(want) != len(have):
            return None
        params = {}
        for pattern, segment in zip(want, have):
            if re.fullmatch(r"\{\w+\}", pattern):
                if not segment:
                    return None
                params[pattern[1:-1]] = urllib.parse.unquote(segment)
            elif pattern != segment:
                return None
        return params


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/")


def _named_location(collection: str) -> Callable[[Mapping[str, str], Any, Any], str]:
    """A ``location`` for :class:`Route`: ``collection`` + the created object's name (URL-quoted).

    Examples
    --------
    >>> _named_location("/slices")({}, {"name": "gold"}, {"name": "gold", "id": 1})
    '/slices/gold'
    """
    def location(params: Mapping[str, str], body: Any, payload: Any) -> str:
        name = payload.get("name") if isinstance(payload, Mapping) else None
        return f"{collection}/" + urllib.parse.quote(str(name or body["name"]), safe="")

    return location


_policy_location = _named_location("/policies")
_slice_location = _named_location("/slices")


#: Every operation the server answers; each is a path + method of the OpenAPI document.
ROUTES: tuple[Route, ...] = (
    Route("GET", "/", lambda server, params, body: server.index()),
    Route("GET", "/openapi.json", lambda server, params, body: server.document),
    Route("GET", "/status", lambda server, params, body: server.api.status()),
    Route("GET", "/topology", lambda server, params, body: server.api.topology()),
    Route("POST", "/events/link", lambda server, params, body: server.api.link_event(body), mutates=True),
    Route("GET", "/telemetry", lambda server, params, body: server.api.get_telemetry()),
    Route("GET", "/steering", lambda server, params, body: server.api.get_steering()),
    Route("PUT", "/steering", lambda server, params, body: server.api.set_steering(body), mutates=True),
    Route("GET", "/policies", lambda server, params, body: server.api.list_policies(), paged=True),
    Route("POST", "/policies", lambda server, params, body: server.api.add_policy(body), status=201, mutates=True,
          location=_policy_location),
    Route("POST", "/policy-batches", lambda server, params, body: server.api.add_policies(body["policies"]),
          mutates=True),
    Route("GET", "/policies/{name}", lambda server, params, body: server.api.get_policy(params["name"])),
    Route("DELETE", "/policies/{name}", lambda server, params, body: server.api.delete_policy(params["name"]),
          mutates=True),
    Route("GET", "/slices", lambda server, params, body: server.api.list_slices(), paged=True),
    Route("POST", "/slices", lambda server, params, body: server.api.add_slice(body), status=201, mutates=True,
          location=_slice_location),
    Route("GET", "/slices/{name}", lambda server, params, body: server.api.get_slice(params["name"])),
    Route("DELETE", "/slices/{name}", lambda server, params, body: server.api.delete_slice(params["name"]),
          mutates=True),
    Route("GET", "/slice-status", lambda server, params, body: server.api.slice_status()),
    # The map page and its live feed (controllers.northbound.map), the Prometheus metrics (controllers.metrics).
    Route("GET", "/map", lambda server, params, body: map_assets.page()),
    Route("GET", "/map/state", lambda server, params, body: feed_for(server).state()),
    Route("GET", "/map/history/{link}", lambda server, params, body: feed_for(server).history(params["link"])),
    Route("GET", "/map/{asset}", lambda server, params, body: map_assets.asset(params["asset"])),
    Route("GET", "/events", lambda server, params, body: feed_for(server).stream()),
    Route("GET", "/metrics", lambda server, params, body: metrics.answer(server.api, server.extensions.get("map"))),
)


class NorthboundServer(HTTPServer):
    """The HTTP server; made by :func:`start_rest_server`.

    One thread accepts; a fixed pool of ``max_workers`` threads handles
    connections. At most ``max_connections`` connections are held at once; the
    next is answered 503 by the accepting thread and closed.

    Attributes
    ----------
    api : NorthboundApi
    routes : tuple of Route
    document : dict
        The OpenAPI document served and used to check request bodies.
    url : str
        Base URL, with the real port when bound to port 0.
    request_timeout_s : float
        Time a request has to arrive whole (see :data:`REQUEST_TIMEOUT_S`).
    """

    request_queue_size = 128  # socketserver's 5 resets bursts of parallel clients

    def __init__(self, address: tuple[str, int], api: NorthboundApi, routes: Sequence[Route] = ROUTES, *,
                 max_workers: int = MAX_WORKERS, max_connections: int = MAX_CONNECTIONS,
                 request_timeout_s: float = REQUEST_TIMEOUT_S):
        if not 1 <= max_workers <= max_connections:
            raise ValueError(f"max_workers={max_workers} must be in 1..max_connections={max_connections}")
        if not request_timeout_s > 0:
            raise ValueError(f"request_timeout_s={request_timeout_s} must be > 0")
        host, port = address
        if ":" in host:
            self.address_family = socket.AF_INET6
        try:
            super().__init__(address, _Handler)
        except OSError as err:
            failure = ListenError(f"northbound: cannot listen on {host}:{port}: {err.strerror or err}; "
                                  "stop whatever holds the port or choose another one")
            failure.errno = err.errno
            raise failure from err
        self.api = api
        self.routes = tuple(routes)
        bound_port = self.server_address[1]
        shown_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown_host}:{bound_port}"
        self.document = openapi_document(server_url=self.url)
        self.mutation_lock = threading.Lock()
        self.request_timeout_s = float(request_timeout_s)
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._waiting: queue.SimpleQueue = queue.SimpleQueue()
        # Daemon threads: a request stuck in the api must not keep the controller process alive.
        self._workers = [threading.Thread(target=self._work, name=f"cpn-northbound-worker-{i}", daemon=True)
                         for i in range(max_workers)]
        for worker in self._workers:
            worker.start()
        self._closed = False
        #: What other modules keep per server (the map's feed); each one's ``stop()`` runs at shutdown.
        self.extensions: dict[str, Any] = {}

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        # Called by the accepting thread: queue the connection for a worker, or refuse it at once.
        if not self._slots.acquire(blocking=False):
            _refuse_busy(request, self.max_connections)
            self.shutdown_request(request)
            return
        self._waiting.put((request, client_address))

    def _work(self) -> None:
        while True:
            item = self._waiting.get()
            if item is None:
                return
            request, client_address = item
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001 - a broken connection must not end the worker
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
                self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.debug("northbound: connection from %s failed", client_address, exc_info=True)

    def shutdown(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        super().shutdown()
        self.server_close()
        if not self._closed:
            self._closed = True
            for extension in self.extensions.values():
                getattr(extension, "stop", lambda: None)()
            for _ in self._workers:
                self._waiting.put(None)

    def index(self) -> dict:
        """The ``GET /`` answer: every path with its methods and summary."""
        links: dict[str, dict] = {}
        for route in self.routes:
            entry = links.setdefault(route.template, {"path": route.template, "methods": [], "summary": ""})
            entry["methods"].append(route.method)
            op = self.document.get("paths", {}).get(route.template, {}).get(route.method.lower(), {})
            if not entry["summary"] and op.get("summary"):
                entry["summary"] = op["summary"]
        return {"service": "cpn_net controller northbound", "version": cpn_net.__version__,
                "openapi": "/openapi.json", "links": list(links.values())}

    def request_schema(self, route: Route) -> Mapping[str, Any] | None:
        """The JSON schema of ``route`` 's request body, or None if it takes none."""
        op = self.document["paths"].get(route.template, {}).get(route.method.lower(), {})
        body = op.get("requestBody")
        return body["content"]["application/json"]["schema"] if body else None


def _refuse_busy(request: socket.socket, limit: int) -> None:
    """Answer 503 on a connection the server has no room for, without reading its request."""
    payload = {"error": {"status": 503, "message": f"the server holds {limit} connections already; retry in a "
                                                   "second", "details": {"max_connections": limit}}}
    data = _encode(payload)
    head = (f"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(data)}"
            "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode("ascii")
    try:
        request.settimeout(0.2)  # the accepting thread must not wait on a client that does not read
        request.sendall(head + data)
    except OSError:
        pass


def start_rest_server(api: NorthboundApi, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                      routes: Sequence[Route] = ROUTES, **limits: Any) -> NorthboundServer:
    """Serve ``api`` over HTTP on a background thread.

    Parameters
    ----------
    api : NorthboundApi
    host : str
        Address to bind; an IPv6 literal binds IPv6.
    port : int
        0 picks a free port (see ``server.url``).
    routes : sequence of Route
        Default :data:`ROUTES`.
    **limits
        ``max_workers``, ``max_connections``, ``request_timeout_s`` of
        :class:`NorthboundServer` (defaults :data:`MAX_WORKERS`,
        :data:`MAX_CONNECTIONS`, :data:`REQUEST_TIMEOUT_S`).

    Returns
    -------
    NorthboundServer
        Already serving; call ``shutdown()`` to stop it and free the port.

    Raises
    ------
    ListenError
        If the address cannot be bound (port in use, unknown host).

    Examples
    --------
    >>> server = start_rest_server(object(), port=0)
    >>> server.url.startswith("http://127.0.0.1:")
    True
    >>> server.shutdown()
    """
    server = NorthboundServer((host, port), api, routes, **limits)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": _SHUTDOWN_POLL_S},
                              name=f"cpn-northbound-{server.url}", daemon=True)
    thread.start()
    LOG.info("northbound REST serving on %s", server.url)
    return server


class _DeadlineReader(io.RawIOBase):
    """A socket's bytes, refused with TimeoutError once the current request's deadline has passed.

    Each ``recv`` waits at most until the deadline, so a client sending one byte
    a second cannot stretch a request beyond it.
    """

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.deadline = math.inf
        self.received = 0  # bytes of the current request
        self.timed_out = False

    def start_request(self, timeout_s: float) -> None:
        self.deadline = time.monotonic() + timeout_s
        self.received = 0
        self.timed_out = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError("the request's time is up")
            self.sock.settimeout(left)
            count = self.sock.recv_into(buffer)
        except TimeoutError:
            self.timed_out = True
            raise
        self.received += count
        return count


class _Handler(BaseHTTPRequestHandler):
    server: NorthboundServer
    server_version = f"cpn-northbound/{cpn_net.__version__}"
    timeout = None  # the deadline reader times requests, not each recv

    def setup(self) -> None:
        super().setup()
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)
        self._answered = False

    def handle_one_request(self) -> None:
        self._reader.start_request(self.server.request_timeout_s)
        self._answered = False
        self.command, self.requestline = None, ""  # parse_request sets them: not reached if the line is cut
        super().handle_one_request()  # answers what it reads; on a timeout it only closes the connection
        if self._reader.timed_out and self._reader.received and not self._answered:
            # The request line or headers stopped half-way: say so rather than just hang up.
            self.close_connection = True
            self.request_version = "HTTP/1.0"  # with the line cut, http.server would assume 0.9: no status line
            self._send_error(ApiError(408, f"the request did not arrive whole within "
                                           f"{self.server.request_timeout_s:g} s; send it at once"))

    def do_GET(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        try:
            route, params = self._route(path)
            page = _page_params(split.query) if route.paged else None
            body = self._body(route)
            if route.mutates:
                with self.server.mutation_lock:
                    payload = route.call(self.server, params, body)
            else:
                payload = route.call(self.server, params, body)
            if isinstance(payload, Stream):
                self._answered = True
                payload.serve(self)  # writes its own status and headers, then holds the connection
                return
            if isinstance(payload, Raw):
                self._send(route.status, payload.body, payload.headers, payload.content_type)
                return
            headers = {"Location": route.location(params, body, payload)} if route.location else {}
            if page is not None:
                payload, more = _paged(payload, route.template, *page)
                headers.update(more)
            self._send(route.status, _encode(payload), headers)
        except ApiError as err:
            self._send_error(err)
        except Exception as err:  # the server must outlive any bug in the api
            LOG.exception("northbound: %s %s failed", self.command, path)
            self._send_error(ApiError(500, f"internal error: {type(err).__name__}: {err}"))

    def _route(self, path: str) -> tuple[Route, dict[str, str]]:
        if path != "/":
            path = path.rstrip("/")
        allowed: dict[str, tuple[Route, dict[str, str]]] = {}
        for route in self.server.routes:
            params = route.match(path)
            if params is not None:
                allowed.setdefault(route.method, (route, params))
        if not allowed:
            raise ApiError(404, f"no such path {_clip(path)!r}; GET / lists the paths")
        command = "GET" if self.command == "HEAD" else self.command  # HEAD: GET's answer without its body
        if command not in allowed:
            methods = ", ".join(sorted(allowed))
            raise _MethodNotAllowed(f"{self.command} is not allowed on {_clip(path)}; use {methods}",
                                    {"allowed": sorted(allowed)}, methods)
        return allowed[command]

    def _body(self, route: Route) -> Any:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise ApiError(411, "chunked request bodies are not supported; send the body with a Content-Length")
        raw = self._read_body()
        schema = self.server.request_schema(route)
        if schema is None:
            return None
        where = f"{route.method} {route.template}"
        content_type = self.headers.get("Content-Type")
        if content_type is None or self.headers.get_content_type() != "application/json":
            raise ApiError(415, f"{where} needs Content-Type: application/json, got {_clip(content_type)!r}; "
                                "send the body as JSON", {"content_type": _clip(content_type)})
        if not raw:
            raise ApiError(400, f"{where} needs a JSON object body, got an empty body")
        body = _parse_json(raw)
        if not isinstance(body, dict):
            raise ApiError(400, f"body must be a JSON object, got {schema_check.json_type(body)}",
                           {"got": schema_check.json_type(body)})
        body = schema_check.integral_numbers_as_integers(body, schema, self.server.document)
        problems = schema_check.check(body, schema, self.server.document, limit=MAX_PROBLEMS_LISTED + 1)
        if problems:
            name = schema.get("$ref", "").rpartition("/")[2] or "the request schema"
            listed = problems[:MAX_PROBLEMS_LISTED]
            more = (f"; and more: only the first {MAX_PROBLEMS_LISTED} problems are listed"
                    if len(problems) > MAX_PROBLEMS_LISTED else "")
            details: dict[str, Any] = {"problems": [{"where": p.where, "message": p.message} for p in listed]}
            if more:
                details["truncated"] = True
            raise ApiError(400, "; ".join(str(p) for p in listed) + more + f" (see {name} in GET /openapi.json)",
                           details)
        return body

    def _read_body(self) -> bytes:
        text = self.headers.get("Content-Length")
        if text is None:
            return b""
        try:
            length = int(text) if re.fullmatch(r"[0-9]{1,19}", text.strip()) else -1
            if length < 0:
                raise ValueError(text)
        except ValueError as err:
            self.close_connection = True
            raise ApiError(400, f"Content-Length={_clip(text)!r} must be a non-negative integer") from err
        if length > MAX_BODY_BYTES:
            self._drain(length)
            raise ApiError(413, f"body of {length} bytes is over the {MAX_BODY_BYTES} byte (1 MiB) limit",
                           {"content_length": length, "max_bytes": MAX_BODY_BYTES})
        try:
            raw = self.rfile.read(length)
        except TimeoutError as err:
            self.close_connection = True
            raise ApiError(408, f"the body did not arrive within {self.server.request_timeout_s:g} s: "
                                f"Content-Length announced {length} bytes; send the whole body at once",
                           {"content_length": length}) from err
        if len(raw) < length:
            self.close_connection = True
            raise ApiError(400, f"the body ended after {len(raw)} of the {length} bytes Content-Length announced; "
                                "send the whole body", {"content_length": length, "received": len(raw)})
        return raw

    def _drain(self, length: int) -> None:
        self.close_connection = True
        if length > _MAX_DRAIN_BYTES:
            return
        left = length
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    return
                left -= len(chunk)
        except TimeoutError:
            return  # the 413 goes out all the same

    def _send_error(self, err: ApiError) -> None:
        payload = {"error": {"status": err.status, "message": err.message, "details": err.details}}
        try:
            data = _encode(payload)
        except (TypeError, ValueError):
            payload["error"]["details"] = {"unserialisable_details": repr(err.details)}
            data = _encode(payload)
        headers = {"Allow": err.allow} if isinstance(err, _MethodNotAllowed) else {}
        self._send(err.status, data, headers)

    def _send(self, status: int, data: bytes, headers: Mapping[str, str],
              content_type: str = "application/json") -> None:
        self._answered = True
        self.connection.settimeout(self.server.request_timeout_s)  # a client that does not read frees us too
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server answers bad request lines, unknown methods and oversized headers through here: JSON too.
        self.close_connection = True
        text = message or HTTPStatus(code).phrase
        if code == HTTPStatus.NOT_IMPLEMENTED and self.command:
            text = f"method {_clip(self.command)} is not supported; use {', '.join(_METHODS)}"
        self._send_error(ApiError(code if 400 <= code <= 599 else 500, _clip(text, 200)))

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("northbound %s: " + format, self.address_string(), *args)


# Every registered method reaches the router, which answers 405 with Allow where the path lacks it.
for _method in _REGISTERED_METHODS:
    setattr(_Handler, f"do_{_method}", _Handler.do_GET)


class _MethodNotAllowed(ApiError):
    def __init__(self, message: str, details: Mapping[str, Any], allow: str):
        super().__init__(405, message, details)
        self.allow = allow


def _page_params(query: str) -> tuple[int, int]:
    """``(limit, offset)`` of a list request's query; absent ones take their defaults.

    Examples
    --------
    >>> _page_params(""), _page_params("limit=10&offset=20&other=x")
    ((1000, 0), (10, 20))
    >>> _page_params("limit=0")
    Traceback (most recent call last):
    ...
    controllers.northbound.errors.ApiError: query: limit='0' must be an integer in 1..1000; leave it out for ...
    """
    try:
        fields = urllib.parse.parse_qs(query, keep_blank_values=True, max_num_fields=64)
    except ValueError as err:
        raise ApiError(400, f"query: {err}; send fewer query parameters") from err
    values = []
    for name, low, high, default in (("limit", 1, MAX_PAGE_ITEMS, MAX_PAGE_ITEMS), ("offset", 0, _MAX_OFFSET, 0)):
        given = fields.get(name)
        if given is None:
            values.append(default)
            continue
        if len(given) > 1:
            raise ApiError(400, f"query: {name} is given {len(given)} times; give it once", {"parameter": name})
        text = given[0]
        if not re.fullmatch(r"[0-9]{1,10}", text) or not low <= int(text) <= high:
            fix = f"leave it out for {default}" if name == "limit" else "start at 0"
            raise ApiError(400, f"query: {name}={_clip(text)!r} must be an integer in {low}..{high}; {fix}",
                           {"parameter": name, "value": _clip(text)})
        values.append(int(text))
    return values[0], values[1]


_MAX_OFFSET = 2 ** 31 - 1


def _paged(items: Any, template: str, limit: int, offset: int) -> tuple[list, dict[str, str]]:
    """One page of ``items`` and its headers: ``X-Total-Count``, and ``Link`` to the next page if any.

    Examples
    --------
    >>> _paged(list(range(5)), "/policies", 2, 2)
    ([2, 3], {'X-Total-Count': '5', 'Link': '</policies?limit=2&offset=4>; rel="next"'})
    """
    items = list(items)
    headers = {"X-Total-Count": str(len(items))}
    if offset + limit < len(items):
        headers["Link"] = f'<{template}?limit={limit}&offset={offset + limit}>; rel="next"'
    return items[offset:offset + limit], headers


def _parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ApiError(400, f"body is not UTF-8 ({err.reason} at byte {err.start}); JSON must be UTF-8") from err
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant,
                           parse_int=_integer, parse_float=_finite_float)
    except json.JSONDecodeError as err:
        raise ApiError(400, f"body is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}",
                       {"line": err.lineno, "column": err.colno}) from err
    except RecursionError as err:
        raise ApiError(400, "body is nested too deeply to parse; flatten it") from err
    _check_unicode(value)
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ApiError(400, f"body: key {_clip(key)!r} appears twice in one object; give it once")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ApiError(400, f"body: {name} is not JSON; give a finite number or null")


def _integer(text: str) -> int:
    # Python refuses int() of over 4300 digits (a ValueError, once a 500), and no field takes a number a
    # double cannot hold: the cheap length test first, then the exact bound.
    digits = len(text.lstrip("-"))
    value = int(text) if digits <= _MAX_INTEGER_DIGITS else None
    if value is None or abs(value) > sys.float_info.max:
        raise ApiError(400, f"body: the integer {_clip(text, 24)} ({digits} digits) is beyond the largest "
                            "number JSON carries safely (a double, about 1.8e308); give a smaller number",
                       {"digits": digits})
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ApiError(400, f"body: the number {_clip(text, 24)} overflows a double (it would be infinite); "
                            "give a finite number, at most about 1.8e308", {"number": _clip(text, 24)})
    return value


def _check_unicode(value: Any) -> None:
    """Refuse strings (keys too) holding a lone UTF-16 surrogate: they cannot be written back as UTF-8.

    JSON's ``\\ud800`` escape decodes to such a string (RFC 8259 §8.2 leaves the behaviour unpredictable);
    stored, it would make every later answer naming it fail.
    """
    stack = [(value, "body")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            texts = [(item, where)]
        elif isinstance(item, dict):
            texts = [(key, f"{where}: key") for key in item]
            stack.extend((child, f"{where}.{_clip(key, 40)}") for key, child in item.items())
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
            continue
        else:
            continue
        for text, at in texts:
            if text.isascii():
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as err:
                code = ord(text[err.start])
                raise ApiError(400, f"{at}: the string holds a lone UTF-16 surrogate \\u{code:04x} at character "
                                    f"{err.start}; JSON text must be Unicode: pair the surrogates or drop it",
                               {"where": at, "character": err.start}) from None


def _clip(text: Any, limit: int = 100) -> Any:
    """``text`` cut to ``limit`` characters (marked), so an error message stays small whatever was sent."""
    if not isinstance(text, str) or len(text) <= limit:
        return text
    return text[:limit - 3] + "..."


def _encode(payload: Any) -> bytes:
    text = json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False, default=_json_default) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate from the api (the server refuses them in requests): \\u-escaped, the answer still goes out.
        return (json.dumps(payload, indent=2, ensure_ascii=True, allow_nan=False, default=_json_default)
                + "\n").encode("ascii")


def _json_default(value: Any) -> Any:
    if isinstance(value, (ipaddress.IPv6Address, ipaddress.IPv6Network, ipaddress.IPv4Address,
                          ipaddress.IPv4Network)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)  # sorted: answers must not depend on hash order
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON serialisable; return str, numbers, lists, "
                    "dicts (or ipaddress objects, sets)")
