"""The controller's REST northbound: a JSON HTTP server over a :class:`NorthboundApi`.

Standard library only (``http.server.ThreadingHTTPServer``): the controller
runs os-ken on native threads, and the server runs on its own thread with one
thread per request. The server owns HTTP (routing, content types, body size,
JSON, checking bodies against the OpenAPI schemas, status codes, the error
body); the api owns the network (validating names and constraints,
computing, installing, rolling back).

Answers, all ``application/json``:

=====  ===========================================================================
200    GET, DELETE, POST /events/link
201    POST /policies, POST /slices, with ``Location: /policies/{name}``, ``/slices/{name}``
400    not JSON, not UTF-8, not an object, duplicate key, NaN, a field of the wrong
       type or unknown (checked against the OpenAPI schema), or the api says so
404    no such path, or the api's unknown policy or slice
405    path exists, method does not; ``Allow`` lists the methods
409    the api's "already exists", or admission control refused a slice
411    a chunked body (send Content-Length)
413    body over :data:`MAX_BODY_BYTES`
415    a body sent without ``Content-Type: application/json``
422    the api's "invalid or infeasible", its message passed through
500    any other exception: logged with its traceback, answered
       ``internal error: <type>: <message>``; the server keeps serving
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

import ipaddress
import json
import logging
import re
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Protocol, Sequence

import cpn_net
from controllers.northbound import schema_check
from controllers.northbound.errors import ApiError, ListenError
from controllers.northbound.openapi import openapi_document
from cpn_net.northbound_client import DEFAULT_HOST, DEFAULT_PORT

__all__ = ["ApiError", "DEFAULT_HOST", "DEFAULT_PORT", "MAX_BODY_BYTES", "NorthboundApi", "NorthboundServer",
           "ROUTES", "Route", "start_rest_server"]

LOG = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20
# An over-long body is read and dropped up to this size so the client sees the 413
# instead of a reset connection; past it the connection is just closed.
_MAX_DRAIN_BYTES = 16 << 20
_REQUEST_TIMEOUT_S = 30.0  # a silent client must not hold a thread forever
_SHUTDOWN_POLL_S = 0.05  # how often the serving loop looks for shutdown(); socketserver's 0.5 s slows every stop
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


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
    """

    method: str
    template: str
    call: Callable[["NorthboundServer", Mapping[str, str], Any], Any]
    status: int = 200
    mutates: bool = False
    location: Callable[[Mapping[str, str], Any, Any], str] | None = None

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
    Route("GET", "/policies", lambda server, params, body: server.api.list_policies()),
    Route("POST", "/policies", lambda server, params, body: server.api.add_policy(body), status=201, mutates=True,
          location=_policy_location),
    Route("POST", "/policy-batches", lambda server, params, body: server.api.add_policies(body["policies"]),
          mutates=True),
    Route("GET", "/policies/{name}", lambda server, params, body: server.api.get_policy(params["name"])),
    Route("DELETE", "/policies/{name}", lambda server, params, body: server.api.delete_policy(params["name"]),
          mutates=True),
    Route("GET", "/slices", lambda server, params, body: server.api.list_slices()),
    Route("POST", "/slices", lambda server, params, body: server.api.add_slice(body), status=201, mutates=True,
          location=_slice_location),
    Route("GET", "/slices/{name}", lambda server, params, body: server.api.get_slice(params["name"])),
    Route("DELETE", "/slices/{name}", lambda server, params, body: server.api.delete_slice(params["name"]),
          mutates=True),
    Route("GET", "/slice-status", lambda server, params, body: server.api.slice_status()),
)


class NorthboundServer(ThreadingHTTPServer):
    """The HTTP server; made by :func:`start_rest_server`.

    Attributes
    ----------
    api : NorthboundApi
    routes : tuple of Route
    document : dict
        The OpenAPI document served and used to check request bodies.
    url : str
        Base URL, with the real port when bound to port 0.
    """

    daemon_threads = True  # a hung request must not keep the controller process alive
    request_queue_size = 128  # socketserver's 5 resets bursts of parallel clients

    def __init__(self, address: tuple[str, int], api: NorthboundApi, routes: Sequence[Route] = ROUTES):
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

    def shutdown(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        super().shutdown()
        self.server_close()

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


def start_rest_server(api: NorthboundApi, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                      routes: Sequence[Route] = ROUTES) -> NorthboundServer:
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
    server = NorthboundServer((host, port), api, routes)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": _SHUTDOWN_POLL_S},
                              name=f"cpn-northbound-{server.url}", daemon=True)
    thread.start()
    LOG.info("northbound REST serving on %s", server.url)
    return server


class _Handler(BaseHTTPRequestHandler):
    server: NorthboundServer
    server_version = f"cpn-northbound/{cpn_net.__version__}"
    timeout = _REQUEST_TIMEOUT_S

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        try:
            route, params = self._route(path)
            body = self._body(route)
            if route.mutates:
                with self.server.mutation_lock:
                    payload = route.call(self.server, params, body)
            else:
                payload = route.call(self.server, params, body)
            headers = {"Location": route.location(params, body, payload)} if route.location else {}
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
            raise ApiError(404, f"no such path {path!r}; GET / lists the paths")
        if self.command not in allowed:
            methods = ", ".join(sorted(allowed))
            raise _MethodNotAllowed(f"{self.command} is not allowed on {path}; use {methods}",
                                    {"allowed": sorted(allowed)}, methods)
        return allowed[self.command]

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
            raise ApiError(415, f"{where} needs Content-Type: application/json, got {content_type!r}; "
                                "send the body as JSON", {"content_type": content_type})
        if not raw:
            raise ApiError(400, f"{where} needs a JSON object body, got an empty body")
        body = _parse_json(raw)
        if not isinstance(body, dict):
            raise ApiError(400, f"body must be a JSON object, got {schema_check.json_type(body)}",
                           {"got": schema_check.json_type(body)})
        problems = schema_check.check(body, schema, self.server.document)
        if problems:
            name = schema.get("$ref", "").rpartition("/")[2] or "the request schema"
            raise ApiError(400, "; ".join(str(p) for p in problems) + f" (see {name} in GET /openapi.json)",
                           {"problems": [{"where": p.where, "message": p.message} for p in problems]})
        return body

    def _read_body(self) -> bytes:
        text = self.headers.get("Content-Length")
        if text is None:
            return b""
        try:
            length = int(text)
            if length < 0:
                raise ValueError(length)
        except ValueError as err:
            self.close_connection = True
            raise ApiError(400, f"Content-Length={text!r} must be a non-negative integer") from err
        if length > MAX_BODY_BYTES:
            self._drain(length)
            raise ApiError(413, f"body of {length} bytes is over the {MAX_BODY_BYTES} byte (1 MiB) limit",
                           {"content_length": length, "max_bytes": MAX_BODY_BYTES})
        return self.rfile.read(length)

    def _drain(self, length: int) -> None:
        self.close_connection = True
        if length > _MAX_DRAIN_BYTES:
            return
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                return
            left -= len(chunk)

    def _send_error(self, err: ApiError) -> None:
        payload = {"error": {"status": err.status, "message": err.message, "details": err.details}}
        try:
            data = _encode(payload)
        except (TypeError, ValueError):
            payload["error"]["details"] = {"unserialisable_details": repr(err.details)}
            data = _encode(payload)
        headers = {"Allow": err.allow} if isinstance(err, _MethodNotAllowed) else {}
        self._send(err.status, data, headers)

    def _send(self, status: int, data: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
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
            text = f"method {self.command} is not supported; use {', '.join(_METHODS)}"
        self._send_error(ApiError(code if 400 <= code <= 599 else 500, text))

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("northbound %s: " + format, self.address_string(), *args)


class _MethodNotAllowed(ApiError):
    def __init__(self, message: str, details: Mapping[str, Any], allow: str):
        super().__init__(405, message, details)
        self.allow = allow


def _parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ApiError(400, f"body is not UTF-8 ({err.reason} at byte {err.start}); JSON must be UTF-8") from err
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise ApiError(400, f"body is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}",
                       {"line": err.lineno, "column": err.colno}) from err
    except RecursionError as err:
        raise ApiError(400, "body is nested too deeply to parse; flatten it") from err


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ApiError(400, f"body: key {key!r} appears twice in one object; give it once")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ApiError(400, f"body: {name} is not JSON; give a finite number or null")


def _encode(payload: Any) -> bytes:
    return (json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False, default=_json_default)
            + "\n").encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, (ipaddress.IPv6Address, ipaddress.IPv6Network, ipaddress.IPv4Address,
                          ipaddress.IPv4Network)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)  # sorted: answers must not depend on hash order
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON serialisable; return str, numbers, lists, "
                    "dicts (or ipaddress objects, sets)")
