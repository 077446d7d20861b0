"""The OpenAPI 3.1 document of the controller's REST northbound.

The document is plain Python data assembled from :class:`Section` s, one per
concern (core: index, status, topology, link events; policies; telemetry;
steering; slices; map: the map page, its feed and metrics). The REST
server serves it at ``GET /openapi.json`` and checks request bodies against
its schemas (:mod:`controllers.northbound.schema_check`), so it is the
contract, not a description written after the fact.

Adding a concern later (services, ...) takes two steps:

1. write a ``Section`` with its paths (built with :func:`operation`,
   :func:`json_body`, :func:`response`, :func:`path_parameter`,
   :func:`schema_ref`) and its schemas, and append it to :data:`SECTIONS`;
2. add the matching :class:`~controllers.northbound.rest.Route` s in
   :mod:`controllers.northbound.rest`.

A unit test fails while routes and paths disagree, and another while any
``$ref`` dangles.

Errors share one body, ``{"error": {"status", "message", "details"}}``
(schema ``Error``), published once per status under
``components/responses`` and referenced by every operation.

Examples
--------
>>> doc = openapi_document()
>>> doc["openapi"], sorted(doc["paths"]["/policies"])
('3.1.0', ['get', 'post'])
>>> doc["components"]["schemas"]["PolicyRequest"]["properties"]["mode"]["enum"]
['encap', 'encap.red']
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import cpn_net
from controllers.northbound.errors import SchemaError
from cpn_net.model.schema import (NAME_PATTERN, NAME_RULE, POLICY_OBJECTIVES, PROTOCOL_NUMBERS, SLICE_FIELDS,
                                  SLICE_KINDS, Field)
from cpn_net.northbound_client import DEFAULT_URL
from cpn_net.srv6.policy import MODES

OPENAPI_VERSION = "3.1.0"
#: The error responses, by status: component name and when it is answered.
ERROR_RESPONSES = {
    400: ("BadRequest", "Malformed request: not JSON, not an object, a field of the wrong type or an unknown field."),
    404: ("NotFound", "No such path, or no such object (policy, slice) under it."),
    405: ("MethodNotAllowed", "The path exists but not with this method; the Allow header lists the methods."),
    409: ("Conflict", "An object with this name already exists, or admission control refused a slice "
                      "(details: reason, link, residual_mbps, shortfall_mbps)."),
    411: ("LengthRequired", "The body was sent chunked; send it with a Content-Length."),
    408: ("RequestTimeout", "The request (line, headers and body) did not arrive whole in time (5 s by default): "
                            "a body announced by Content-Length and not sent. Nothing was changed."),
    413: ("PayloadTooLarge", "The body is larger than the server accepts (1 MiB)."),
    415: ("UnsupportedMediaType", "A request body must be sent with Content-Type: application/json."),
    422: ("UnprocessableContent", "Well-formed but invalid or infeasible: unknown node, no path meets the "
                                  "constraints. Nothing was changed."),
    503: ("ServiceUnavailable", "The server holds as many connections as it takes; Retry-After says when to try "
                                "again. Nothing was changed."),
    500: ("InternalError", "The controller failed unexpectedly; whatever was half-installed was rolled back. "
                           "The message names the exception; the controller's log has the traceback."),
}
#: Statuses every operation can answer: a request that came too slowly, a server at its connection limit, a bug.
ALWAYS_ERRORS = (408, 500, 503)
#: Statuses every operation with a JSON request body can answer, besides its own.
BODY_ERRORS = (400, 411, 413, 415)
#: Most policies one ``POST /policy-batches`` takes: bounds the work and the answer of one request.
MAX_BATCH_POLICIES = 1000
#: Items in one page of a list answer: the default and largest ``limit`` (mirrored by the REST server).
MAX_PAGE_ITEMS = 1000
#: Longest string accepted for a site, host or prefix in a request: names are at most 63 characters.
MAX_TEXT_CHARS = 255

_SITE = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS,
         "description": "A site's name in the topology file, e.g. east."}
_PORT = {"type": "integer", "minimum": 0, "maximum": 65535}


@dataclass(frozen=True)
class Section:
    """One concern of the API: its paths, its schemas and the tag grouping them.

    Parameters
    ----------
    tag : str
        Tag name; every operation of the section gets it.
    description : str
        The tag's description.
    paths : mapping
        OpenAPI Path Item objects by path template (``/policies/{name}``).
    schemas : mapping
        Schema objects by component name, referenced with :func:`schema_ref`.

    Examples
    --------
    >>> hello = Section("hello", "Greetings.", {"/hello": {"get": operation(
    ...     "Say hello", "getHello", {"200": response("A greeting.", {"type": "string"})})}})
    >>> doc = openapi_document([hello])
    >>> doc["paths"]["/hello"]["get"]["tags"], sorted(doc["paths"]["/hello"]["get"]["responses"])
    (['hello'], ['200', '408', '500', '503'])
    """

    tag: str
    description: str
    paths: Mapping[str, Mapping[str, Any]]
    schemas: Mapping[str, Any] = field(default_factory=dict)


def schema_ref(name: str) -> dict:
    """A ``$ref`` to ``#/components/schemas/<name>``.

    Examples
    --------
    >>> schema_ref("Policy")
    {'$ref': '#/components/schemas/Policy'}
    """
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: Mapping[str, Any], description: str = "") -> dict:
    """A required ``application/json`` Request Body object (OpenAPI 3.1 §4.8.13).

    Examples
    --------
    >>> json_body(schema_ref("LinkEvent"))["content"]["application/json"]["schema"]
    {'$ref': '#/components/schemas/LinkEvent'}
    """
    body = {"required": True, "content": {"application/json": {"schema": dict(schema)}}}
    if description:
        body["description"] = description
    return body


def response(description: str, schema: Mapping[str, Any], headers: Mapping[str, Any] | None = None) -> dict:
    """An ``application/json`` Response object (OpenAPI 3.1 §4.8.17).

    Examples
    --------
    >>> response("The policies.", {"type": "array"})["content"]["application/json"]["schema"]
    {'type': 'array'}
    """
    answer = {"description": description, "content": {"application/json": {"schema": dict(schema)}}}
    if headers:
        answer["headers"] = dict(headers)
    return answer


def media_response(description: str, media_types: Sequence[str], schema: Mapping[str, Any] | None = None) -> dict:
    """A Response object answered in other media types than JSON (HTML, JavaScript, event streams, text).

    Examples
    --------
    >>> sorted(media_response("The page.", ["text/html"])["content"]["text/html"]["schema"].items())
    [('type', 'string')]
    """
    return {"description": description,
            "content": {media: {"schema": dict(schema or {"type": "string"})} for media in media_types}}


def removal_schema(removed: str) -> dict:
    """What a DELETE answers: ``{"removed": <the removed object>}``, further keys allowed."""
    return {"type": "object", "required": ["removed"], "description": "Further keys may appear.",
            "properties": {"removed": schema_ref(removed)}}


def path_parameter(name: str, description: str, schema: Mapping[str, Any] | None = None) -> dict:
    """A required path Parameter object (OpenAPI 3.1 §4.8.12), a string by default.

    Examples
    --------
    >>> path_parameter("name", "Policy name.")["in"]
    'path'
    """
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": dict(schema or {"type": "string"})}


def query_parameter(name: str, description: str, schema: Mapping[str, Any]) -> dict:
    """An optional query Parameter object (OpenAPI 3.1 §4.8.12).

    Examples
    --------
    >>> query_parameter("limit", "Page size.", {"type": "integer"})["in"]
    'query'
    """
    return {"name": name, "in": "query", "required": False, "description": description, "schema": dict(schema)}


#: The paging parameters of list operations (``GET /policies``, ``GET /slices``).
PAGE_PARAMETERS = (
    query_parameter("limit", f"Most items in the answer, 1..{MAX_PAGE_ITEMS}; default {MAX_PAGE_ITEMS}.",
                    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_ITEMS, "default": MAX_PAGE_ITEMS}),
    query_parameter("offset", "Items to skip from the start of the list; default 0.",
                    {"type": "integer", "minimum": 0, "maximum": 2 ** 31 - 1, "default": 0}),
)
#: The headers of a page of a list answer.
PAGE_HEADERS = {
    "X-Total-Count": {"description": "Items in the whole list.", "schema": {"type": "integer", "minimum": 0}},
    "Link": {"description": 'The next page, <path?limit=L&offset=O>; rel="next", while more items follow.',
             "schema": {"type": "string"}},
}


def operation(summary: str, operation_id: str, responses: Mapping[str, Any], *, description: str = "",
              request_body: Mapping[str, Any] | None = None, parameters: Sequence[Mapping[str, Any]] = (),
              errors: Sequence[int] = ()) -> dict:
    """An Operation object (OpenAPI 3.1 §4.8.10) with the shared error responses.

    Parameters
    ----------
    summary, operation_id : str
        ``operation_id`` must be unique in the document.
    responses : mapping
        Success responses by status string (``"200"``, ``"201"``).
    description : str, optional
    request_body : mapping, optional
        From :func:`json_body`; adds the :data:`BODY_ERRORS` responses.
    parameters : sequence of mapping
        From :func:`path_parameter`.
    errors : sequence of int
        Error statuses the operation answers besides :data:`ALWAYS_ERRORS` (always added),
        each referencing the shared response in :data:`ERROR_RESPONSES`.

    Returns
    -------
    dict

    Raises
    ------
    SchemaError
        If an error status has no shared response.

    Examples
    --------
    >>> op = operation("Delete a policy", "deletePolicy", {"200": response("Removed.", {"type": "object"})},
    ...                errors=[404])
    >>> sorted(op["responses"]), op["responses"]["404"]
    (['200', '404', '408', '500', '503'], {'$ref': '#/components/responses/NotFound'})
    """
    statuses = set(errors) | set(ALWAYS_ERRORS) | (set(BODY_ERRORS) if request_body else set())
    unknown = statuses - set(ERROR_RESPONSES)
    if unknown:
        raise SchemaError(f"operation {operation_id}: error statuses {sorted(unknown)} have no shared response; "
                          f"use {sorted(ERROR_RESPONSES)} or add one to ERROR_RESPONSES")
    op: dict[str, Any] = {"summary": summary, "operationId": operation_id}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = [dict(p) for p in parameters]
    if request_body:
        op["requestBody"] = dict(request_body)
    shared = {str(s): {"$ref": f"#/components/responses/{ERROR_RESPONSES[s][0]}"} for s in sorted(statuses)}
    op["responses"] = {**{str(k): v for k, v in responses.items()}, **shared}
    return op


def _error_schema() -> dict:
    return {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "description": "Every error answer has this body.",
        "properties": {"error": {
            "type": "object", "required": ["status", "message", "details"], "additionalProperties": False,
            "properties": {
                "status": {"type": "integer", "minimum": 400, "maximum": 599, "description": "The HTTP status."},
                "message": {"type": "string", "description": "What is wrong and how to fix it, for people."},
                "details": {"type": "object", "description": "Facts for programs; {} when there are none."},
            }}},
    }


def _error_responses() -> dict:
    answers = {}
    for status, (name, description) in ERROR_RESPONSES.items():
        answers[name] = response(description, schema_ref("Error"))
        if status == 405:
            answers[name]["headers"] = {"Allow": {"description": "The methods the path supports.",
                                                  "schema": {"type": "string"}}}
        if status == 503:
            answers[name]["headers"] = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                                        "schema": {"type": "integer", "minimum": 0}}}
    return answers


def _core_section() -> Section:
    index = {
        "type": "object", "required": ["service", "version", "openapi", "links"],
        "properties": {
            "service": {"type": "string"},
            "version": {"type": "string", "description": "cpn_net version of the controller."},
            "openapi": {"type": "string", "description": "Path of this API's OpenAPI document."},
            "links": {"type": "array", "items": {
                "type": "object", "required": ["path", "methods"],
                "properties": {"path": {"type": "string"}, "methods": {"type": "array", "items": {"type": "string"}},
                               "summary": {"type": "string"}}}},
        },
    }
    status = {
        "type": "object", "description": "The controller's state; further keys may appear.",
        "properties": {
            "topology": {"type": "string", "description": "Name of the running topology."},
            "pid": {"type": "integer"},
            "started_at": {"type": "number", "description": "Unix time the controller started, in seconds."},
            "switches": {"type": "object", "description": "Per datapath id: connected, configured, flows."},
            "routers": {"type": "object", "description": "Per router: routes installed, errors."},
            "errors": {"type": "array", "items": {"type": "string"}},
        },
    }
    topology = {
        "type": "object", "description": "The network as the controller sees it; further keys may appear.",
        "properties": {
            "name": {"type": "string"},
            "sites": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "id": {"type": "integer", "minimum": 1, "maximum": 9999}}}},
            "links": {"type": "array", "items": {"type": "object", "properties": {
                "a": _SITE, "b": _SITE, "delay_ms": {"type": "number", "minimum": 0},
                "rate_mbps": {"type": ["number", "null"], "exclusiveMinimum": 0},
                "loss_pct": {"type": "number", "minimum": 0, "maximum": 100},
                "up": {"type": "boolean", "description": "False while administratively down."}}}},
        },
    }
    link_event = {
        "type": "object", "required": ["a", "b", "up"], "additionalProperties": False,
        "description": "An administrative change of the WAN link between sites a and b (either order).",
        "properties": {"a": _SITE, "b": _SITE,
                       "up": {"type": "boolean", "description": "True: the link came up; false: it went down."}},
    }
    paths = {
        "/": {"get": operation("Index of this API", "getIndex", {"200": response("Links to every path.",
                                                                                   schema_ref("Index"))})},
        "/openapi.json": {"get": operation("This OpenAPI document", "getOpenApi",
                                           {"200": response("The OpenAPI 3.1 document.", {"type": "object"})})},
        "/status": {"get": operation("Controller status", "getStatus",
                                     {"200": response("Switches, routers and errors.", schema_ref("Status"))})},
        "/topology": {"get": operation("The network's sites and links", "getTopology",
                                       {"200": response("Sites and links.", schema_ref("Topology"))})},
        "/events/link": {"post": operation(
            "Report an administrative link change", "postLinkEvent",
            {"200": response("What the controller did about it.", {"type": "object"})},
            description="The emulator tells the controller that a WAN link went down or up, so it can move "
                        "policies off it. A controller may ignore the event (and say so in the answer).",
            request_body=json_body(schema_ref("LinkEvent")), errors=[422])},
    }
    return Section("core", "The API's index and document, controller status, topology and events.", paths,
                   {"Index": index, "Status": status, "Topology": topology, "LinkEvent": link_event})


def _policy_request_properties() -> dict:
    return {
        "name": {"type": "string", "pattern": f"^{NAME_PATTERN.pattern}$",
                 "description": f"Unique policy name: {NAME_RULE}."},
        "headend": {**_SITE, "description": "Site whose router encapsulates (H.Encaps at r<site>)."},
        "to": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS,
               "description": "What is steered: a site (its LAN /64; ends with End.DT6 there), a host such as "
                              "k3-1 (its /128; ends with End.DX6 to it) or an IPv6 prefix inside a site LAN."},
        "flow": {
            "type": ["object", "null"], "additionalProperties": False, "default": None,
            "description": "Steer only this flow (policy routing); null or omitted: all traffic to `to`.",
            "properties": {
                "proto": {"type": ["string", "integer"], "maxLength": MAX_TEXT_CHARS,
                          "description": f"{', '.join(PROTOCOL_NUMBERS)} or a protocol number 2..255; "
                                         "needed with ports."},
                "src": {"type": "string", "maxLength": MAX_TEXT_CHARS,
                        "description": "Source IPv6 address or prefix inside the headend's LAN."},
                "src_port": {**_PORT, "description": "Transport source port."},
                "dst_port": {**_PORT, "description": "Transport destination port."},
            }},
        "objective": {"type": "string", "enum": list(POLICY_OBJECTIVES), "default": POLICY_OBJECTIVES[0],
                      "description": "min_delay: least one-way delay; min_hops: fewest links; bandwidth: least "
                                     "delay among paths whose residual capacity fits bandwidth_mbps (CSPF), "
                                     "which is then reserved."},
        "bandwidth_mbps": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                           "description": "Required with, and only with, objective bandwidth."},
        "waypoints": {"type": "array", "items": _SITE, "default": [],
                      "description": "Sites the path must visit, in order."},
        "mode": {"type": "string", "enum": list(MODES), "default": MODES[0],
                 "description": "Headend behaviour: H.Encaps or H.Encaps.Red (RFC 8986 §5.1, §5.2)."},
        "backup": {"type": "boolean", "default": True,
                   "description": "Protected by the precomputed fast-reroute backups of the routers on its path."},
    }


def _policies_section() -> Section:
    request = {"type": "object", "required": ["name", "headend", "to"], "additionalProperties": False,
               "description": "An SR policy to install: the fields of a topology file's policy.",
               "properties": _policy_request_properties()}
    sites = {"type": "array", "items": _SITE}
    sids = {"type": "array", "items": {"type": "string", "description": "An IPv6 SID."}}
    policy = {
        "type": "object", "required": ["name", "headend", "to", "path", "segments"],
        "description": "An installed policy: the request with defaults applied, and what was computed. "
                       "Further keys may appear.",
        "properties": {
            **_policy_request_properties(),
            "to_kind": {"type": "string", "enum": ["site", "host", "prefix"]},
            "path": {**sites, "description": "Sites from headend to destination."},
            "path_delay_ms": {"type": "number", "minimum": 0,
                              "description": "Configured one-way delay along the path."},
            "segments": {**sids, "description": "Segment list in travel order (the SRH holds it reversed)."},
            "router": {"type": "string", "description": "The headend router, r<site>."},
            "routes": {"type": "array", "items": {"type": "object"},
                       "description": "The netlink route specs installed at the headend."},
            "rules": {"type": "array", "items": {"type": "object"},
                      "description": "The policy-routing rules installed (flow policies)."},
        },
    }
    removal = removal_schema("Policy")
    name = path_parameter("name", "The policy's name.")
    paths = {
        "/policies": {
            "get": operation("List installed policies", "listPolicies",
                             {"200": response("Installed policies, a page at a time (all of them when they fit "
                                              "one page).", {"type": "array", "items": schema_ref("Policy")},
                                              PAGE_HEADERS)},
                             parameters=PAGE_PARAMETERS, errors=[400]),
            "post": operation(
                "Install a policy", "addPolicy",
                {"201": response("Installed; Location names the new policy.", schema_ref("Policy"),
                                 {"Location": {"description": "/policies/{name}", "schema": {"type": "string"}}})},
                description="Computes the path under the objective and constraints, compiles the segment list "
                            "and installs it at the headend. All or nothing: a failure half-way removes what was "
                            "installed, and a 4xx answer changes nothing.",
                request_body=json_body(schema_ref("PolicyRequest")), errors=[409, 422]),
        },
        "/policy-batches": {
            "post": operation(
                "Install many policies", "addPolicies",
                {"200": response("What was installed and what was refused, each with its reason.",
                                 schema_ref("PolicyBatchResult"))},
                description="Bulk provisioning: each policy is handled as POST /policies would (all or nothing "
                            "on its own); one request saves a round trip per policy.",
                request_body=json_body(schema_ref("PolicyBatch"))),
        },
        "/policies/{name}": {
            "get": operation("One installed policy", "getPolicy",
                             {"200": response("The policy.", schema_ref("Policy"))}, parameters=[name], errors=[404]),
            "delete": operation("Remove a policy", "deletePolicy",
                                {"200": response("What was removed.", schema_ref("PolicyRemoval"))},
                                description="Removes the policy's routes and rules from its headend; traffic falls "
                                            "back to the IGP path.",
                                parameters=[name], errors=[404]),
        },
    }
    batch = {"type": "object", "required": ["policies"], "additionalProperties": False,
             "description": "Policies to install, in order.",
             "properties": {"policies": {"type": "array", "items": schema_ref("PolicyRequest"),
                                         "maxItems": MAX_BATCH_POLICIES,
                                         "description": f"Each as the body of POST /policies; at most "
                                                        f"{MAX_BATCH_POLICIES} (send more in further batches)."}}}
    refusal = {"type": "object", "required": ["name", "status", "message"],
               "properties": {"name": {"type": ["string", "null"]}, "status": {"type": "integer"},
                              "message": {"type": "string"}}}
    batch_result = {"type": "object", "required": ["installed", "refused"],
                    "properties": {"installed": {"type": "array", "items": schema_ref("Policy")},
                                   "refused": {"type": "array", "items": refusal}}}
    return Section("policies", "SR policies steering traffic over computed paths.", paths,
                   {"PolicyRequest": request, "Policy": policy, "PolicyRemoval": removal,
                    "PolicyBatch": batch, "PolicyBatchResult": batch_result})


def _telemetry_section() -> Section:
    link = {"type": "object", "required": ["link", "from", "to", "delay", "loss", "ground_truth"],
            "description": "One direction of a WAN link (r<u>->r<v>).",
            "properties": {
                "link": {"type": "string"}, "from": _SITE, "to": _SITE,
                "delay": {"type": ["object", "null"],
                          "description": "From IOAM probes: median, mean and p99 one-way delay (ms), jitter (mean "
                                         "absolute difference of consecutive samples), samples, window, age."},
                "loss": {"type": ["object", "null"],
                         "description": "From alternate marking: the last block read (index, colour, sent, "
                                        "received, lost, loss_pct, age_s) and the link element's own drop count "
                                        "for that block (truth_dropped, matches_truth)."},
                "loss_by_mark": {"type": "object", "additionalProperties": {"type": "object"},
                                 "description": "Per slice mark (\"1\"..\"15\") that crossed this direction in the "
                                                "last block: block, sent, received, lost, loss_pct, age_s. A mark "
                                                "belongs to one slice per link, so this is the slice's own loss."},
                "ground_truth": {"type": "object", "description": "What the emulator was configured with."}}}
    view = {"type": "object", "required": ["period_s", "links"],
            "properties": {"period_s": {"type": "number"}, "epoch": {"type": ["number", "null"]},
                           "now": {"type": "number"}, "links": {"type": "array", "items": schema_ref("LinkTelemetry")},
                           "probes": {"type": "object"}, "accuracy": {"type": "object"}}}
    paths = {"/telemetry": {"get": operation(
        "The live network view", "getTelemetry", {"200": response("Per directed link delay, jitter and loss.",
                                                                 schema_ref("TelemetryView"))},
        errors=[404])}}
    return Section("telemetry", "IFIT-style in-band telemetry: alternate marking and IOAM.", paths,
                   {"TelemetryView": view, "LinkTelemetry": link})


def _steering_section() -> Section:
    view = {"type": "object", "required": ["policy", "preferred", "flips", "instances"],
            "properties": {"policy": {"type": "string"}, "period_s": {"type": "number"},
                           "reports": {"type": "integer"},
                           "preferred": {"type": "array", "items": {"type": "object"},
                                         "description": "Per client site and service, the instance new flows go to."},
                           "flips": {"type": "integer"}, "failovers": {"type": "integer"},
                           "decisions": {"type": "integer"},
                           "instances": {"type": "array", "items": {"type": "object"}},
                           "timeline": {"type": "array", "items": {"type": "object"}}}}
    choice = {"type": "object", "required": ["policy"], "additionalProperties": False,
              "properties": {"policy": {"type": "string",
                                        "enum": ["joint", "nearest", "least-loaded", "round-robin", "random", "oracle"],
                                        "description": "The selector's policy for new flows."}}}
    paths = {"/steering": {
        "get": operation("Compute-aware steering state", "getSteering",
                         {"200": response("Policy, preferred instances, flips.", schema_ref("SteeringView"))},
                         errors=[404]),
        "put": operation("Switch the steering policy", "setSteering",
                         {"200": response("The new state.", schema_ref("SteeringView"))},
                         request_body=json_body(schema_ref("SteeringChoice")), errors=[404, 422])}}
    return Section("steering", "Compute-aware steering of anycast services (CATS-style).", paths,
                   {"SteeringView": view, "SteeringChoice": choice})


#: JSON Schema types of the topology model's field kinds (:class:`cpn_net.model.schema.Field`).
_FIELD_TYPES = {"number": "number", "int": "integer", "bool": "boolean", "name": "string", "text": "string",
                "address": "string", "list": "array", "mapping": "object", "choice": "string"}
_FIELD_BOUNDS = (("at_least", "minimum"), ("above", "exclusiveMinimum"), ("at_most", "maximum"),
                 ("below", "exclusiveMaximum"))


def field_schema(spec: Field, description: str) -> dict:
    """The JSON schema of one topology-model field: its type, bounds, choices and nullability.

    Built from the model's own declaration, so the northbound's 400 checks
    and the topology file's rules cannot drift apart.

    Parameters
    ----------
    spec : cpn_net.model.schema.Field
    description : str

    Returns
    -------
    dict

    Examples
    --------
    >>> field_schema(SLICE_FIELDS["max_loss_pct"], "Loss bound.")
    {'type': ['number', 'null'], 'minimum': 0, 'maximum': 100, 'description': 'Loss bound.'}
    >>> field_schema(SLICE_FIELDS["kind"], "Path kind.")["enum"]
    ['latency', 'bulk']
    """
    kind = _FIELD_TYPES[spec.kind]
    schema: dict[str, Any] = {"type": [kind, "null"] if spec.nullable else kind}
    for attribute, keyword in _FIELD_BOUNDS:
        if getattr(spec, attribute) is not None:
            schema[keyword] = getattr(spec, attribute)
    if spec.choices:
        schema["enum"] = list(spec.choices)
    if spec.kind == "name":
        schema["pattern"] = f"^{NAME_PATTERN.pattern}$"
    schema["description"] = description
    return schema


_SLICE_MAX_ID = SLICE_FIELDS["id"].at_most
#: What each slice key means; the types and ranges come from SLICE_FIELDS.
_SLICE_DESCRIPTIONS = {
    "name": f"Unique slice name: {NAME_RULE}.",
    "id": f"1..{_SLICE_MAX_ID:g}, unique. Omitted: the lowest free id. (The mark in DSCP bits 1..4 is "
          "given at admission: see mark.)",
    "members": "Host names (u1-1, k2-1) or site names meaning all the site's hosts; no host twice.",
    "rate_mbps": "Guaranteed rate between every ordered pair of member sites, Mbit/s.",
    "max_latency_ms": "One-way delay bound on every member-site path, ms; null or omitted: none.",
    "max_loss_pct": "Loss bound on every member-site path, %; null or omitted: none.",
    "kind": "latency: minimum-delay paths; bulk: widest (most residual bandwidth) paths.",
    "meter_mbps": "Cap on the slice's traffic entering each member site switch, Mbit/s, >= rate_mbps; null or "
                  "omitted: no cap.",
    "isolation": "Decapsulate into the slice's own routing table; a host is in at most one isolated slice.",
}
_SLICE_DEFAULTS = {"max_latency_ms": None, "max_loss_pct": None, "kind": SLICE_KINDS[0], "meter_mbps": None,
                   "isolation": True}


def _slice_request_properties() -> dict:
    properties = {}
    for key, spec in SLICE_FIELDS.items():
        schema = field_schema(spec, _SLICE_DESCRIPTIONS[key])
        if key == "members":
            schema.update(items={"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS}, minItems=1)
        if key in _SLICE_DEFAULTS:
            schema["default"] = _SLICE_DEFAULTS[key]
        properties[key] = schema
    return properties


def _slice_properties() -> dict:
    sites = {"type": "array", "items": _SITE}
    return {
        **_slice_request_properties(),
        "hosts": {"type": "array", "items": {"type": "string"},
                  "description": "The member hosts, sites expanded, in topology order."},
        "sites": {**sites, "description": "The sites of the member hosts."},
        "state": {"type": "string", "enum": ["admitted", "refused"],
                  "description": "admitted: in force on the network; refused: a declaration admission refused."},
        "paths": {"type": ["object", "null"], "additionalProperties": sites,
                  "description": "The admitted path per ordered pair of member sites, keyed \"a->b\"."},
        "mark": {"type": ["integer", "null"], "minimum": 1, "maximum": 15,
                 "description": "The slice's mark in DSCP bits 1..4, given at admission: unique among the slices "
                                "sharing a link with it; null when refused."},
        "refusal": {"type": ["string", "null"], "description": "Why admission refused it; null when admitted."},
        "enforced_ms": {"type": ["number", "null"], "minimum": 0,
                        "description": "POST /slices only: ms from the request to the last data-plane change "
                                       "acknowledged."},
    }


def _slices_section() -> Section:
    request = {"type": "object", "required": ["name", "members", "rate_mbps"], "additionalProperties": False,
               "description": "A network slice to admit and realise (RFC 9543): the fields of a topology file's "
                              "slice.",
               "properties": _slice_request_properties()}
    described = {"type": "object", "required": ["name", "state"],
                 "description": "A slice: its intent with defaults applied, state, paths and refusal. Further keys "
                                "may appear.",
                 "properties": _slice_properties()}
    pair = {"type": "object", "required": ["from", "to"],
            "description": "One member-site path measured against the slice's bounds; null: not measured yet.",
            "properties": {"from": _SITE, "to": _SITE,
                           "path": {"type": ["array", "null"], "items": _SITE},
                           "delay_ms": {"type": ["number", "null"], "description": "Measured one-way delay."},
                           "loss_pct": {"type": ["number", "null"], "description": "Measured loss."},
                           "delay_ok": {"type": ["boolean", "null"], "description": "Within max_latency_ms."},
                           "loss_ok": {"type": ["boolean", "null"], "description": "Within max_loss_pct."}}}
    health = {"type": "object", "required": ["name", "state"],
              "description": "A slice (as GET /slices/{name}) with its SLO monitoring.",
              "properties": {**_slice_properties(),
                             "slo": {"type": ["object", "null"], "properties": {
                                 "pairs": {"type": "array", "items": schema_ref("SlicePathHealth")},
                                 "violations": {"type": "array", "description": "This slice's violations."}}}}}
    status = {"type": "object", "required": ["slices", "violations"],
              "properties": {"slices": {"type": "object", "additionalProperties": schema_ref("SliceHealth"),
                                        "description": "By slice name."},
                             "violations": {"type": "array", "description": "Every slice's violations."}}}
    removal = removal_schema("Slice")
    name = path_parameter("name", "The slice's name.")
    paths = {
        "/slices": {
            "get": operation("List slices", "listSlices",
                             {"200": response("Every slice in force, then every refused declaration, a page at a "
                                              "time (all of them when they fit one page).",
                                              {"type": "array", "items": schema_ref("Slice")}, PAGE_HEADERS)},
                             parameters=PAGE_PARAMETERS, errors=[400, 404]),
            "post": operation(
                "Admit and realise a slice", "addSlice",
                {"201": response("In force; Location names the new slice.", schema_ref("Slice"),
                                 {"Location": {"description": "/slices/{name}", "schema": {"type": "string"}}})},
                description="Admission control checks the guarantees against the slices in force (a refusal is "
                            "409 naming the bottleneck link and the shortfall); then the routers' tables, SR "
                            "policies and queues and the switches' marking and meters are installed. All or "
                            "nothing: a failure half-way removes what was installed, and a 4xx answer changes "
                            "nothing.",
                request_body=json_body(schema_ref("SliceRequest")), errors=[404, 409, 422]),
        },
        "/slices/{name}": {
            "get": operation("One slice", "getSlice", {"200": response("The slice.", schema_ref("Slice"))},
                             parameters=[name], errors=[404]),
            "delete": operation("Remove a slice", "deleteSlice",
                                {"200": response("What was removed.", schema_ref("SliceRemoval"))},
                                description="Removes the slice from routers and switches and releases its "
                                            "capacity.",
                                parameters=[name], errors=[404]),
        },
        "/slice-status": {
            "get": operation("Slice SLO monitoring", "getSliceStatus",
                             {"200": response("Per slice, measured delay and loss against its bounds.",
                                              schema_ref("SliceStatus"))},
                             description="Measurements come from the telemetry view; they are null while "
                                         "telemetry is not running or has no sample yet.",
                             errors=[404]),
        },
    }
    return Section("slices", "Network slices (RFC 9543): admission, realisation and SLO monitoring.", paths,
                   {"SliceRequest": request, "Slice": described, "SliceRemoval": removal,
                    "SliceStatus": status, "SliceHealth": health, "SlicePathHealth": pair})


def _map_section() -> Section:
    direction = {"type": "object", "description": "One direction of a link; further keys may appear.",
                 "properties": {"from": _SITE, "to": _SITE,
                                "delay_ms": {"type": ["number", "null"], "description": "IOAM median (ms)."},
                                "loss_pct": {"type": ["number", "null"],
                                             "description": "Alternate-marking loss pooled over the last blocks."},
                                "truth_delay_ms": {"type": ["number", "null"]},
                                "truth_loss_pct": {"type": ["number", "null"]},
                                "throughput_mbps": {"type": ["number", "null"]},
                                "utilisation": {"type": ["number", "null"], "minimum": 0, "maximum": 1}}}
    link = {"type": "object", "required": ["id", "a", "b", "state"],
            "description": "A WAN link as the map draws it; further keys may appear.",
            "properties": {"id": {"type": "string", "description": "a~b, the page's data-link."}, "a": _SITE,
                           "b": _SITE, "state": {"type": "string", "enum": ["ok", "degraded", "down"]},
                           "reasons": {"type": "array", "items": {"type": "string"}},
                           "directions": {"type": "array", "items": schema_ref("MapLinkDirection")}}}
    state = {"type": "object", "required": ["at", "sites", "links", "alarms"],
             "description": "What the map draws at one moment; further keys may appear.",
             "properties": {
                 "at": {"type": "number", "description": "Unix time the state was built."},
                 "telemetry_at": {"type": ["number", "null"],
                                  "description": "Unix time of the telemetry view it was built from."},
                 "sites": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
                     "name": _SITE, "lat": {"type": ["number", "null"]}, "lon": {"type": ["number", "null"]},
                     "load": {"type": ["number", "null"]}, "surplus_rps": {"type": ["number", "null"]},
                     "price_cny_per_hour": {"type": ["number", "null"]}}}},
                 "links": {"type": "array", "items": schema_ref("MapLink")},
                 "steering": {"type": "array", "items": {"type": "object"},
                              "description": "Per client site, service and instance: the share of new flows."},
                 "policies": {"type": "array", "items": {"type": "object"}},
                 "slices": {"type": "array", "items": {"type": "object"}},
                 "alarms": {"type": "array", "items": {"type": "object", "required": ["kind", "severity", "message"],
                                                      "properties": {"kind": {"type": "string"},
                                                                     "severity": {"type": "string"},
                                                                     "message": {"type": "string"}}}}}}
    series = {"type": "array", "items": {"type": "array"}}
    history = {"type": "object", "required": ["link", "directions"],
               "description": "The last 5 minutes of both directions of a link, measured beside the ground truth.",
               "properties": {"link": {"type": "string"}, "window_s": {"type": "number"},
                              "directions": {"type": "array", "items": {"type": "object", "properties": {
                                  "from": _SITE, "to": _SITE,
                                  "delay": {**series, "description": "[unix time, measured ms, ground-truth ms]"},
                                  "loss": {**series, "description": "[unix time, measured %, ground-truth %, "
                                                                    "configured %, cut] per block"}}}}}}
    event = {"type": "object", "required": ["event", "data"],
             "description": "One Server-Sent Event (WHATWG HTML §9.2): its data is a MapState as one line of JSON.",
             "properties": {"event": {"const": "state"}, "id": {"type": "string"}, "retry": {"type": "integer"},
                            "data": {"type": "string", "contentMediaType": "application/json",
                                     "contentSchema": schema_ref("MapState")}}}
    link_parameter = path_parameter("link", "The link as a~b (sites in the topology's order).")
    paths = {
        "/map": {"get": operation("The map page", "getMap", {"200": media_response(
            "A single-page app: sites, links coloured by state, paths, steering, alarms. Works offline.",
            ["text/html"])}, errors=[404],
            description="404 until the page is built (scripts/setup.sh runs npm ci and the build in web/).")},
        "/map/state": {"get": operation("What the map draws now", "getMapState",
                                        {"200": response("The map state.", schema_ref("MapState"))})},
        "/map/history/{link}": {"get": operation(
            "The last 5 minutes of a link", "getMapLinkHistory",
            {"200": response("Delay and loss per direction beside the emulator's ground truth.",
                             schema_ref("MapLinkHistory"))}, parameters=[link_parameter], errors=[404])},
        "/map/{asset}": {"get": operation(
            "A file of the map page", "getMapAsset",
            {"200": media_response("The file.", ["text/javascript", "text/css", "image/svg+xml"])},
            parameters=[path_parameter("asset", "A file name of the built page, e.g. app.js.")], errors=[404])},
        "/events": {"get": operation(
            "The map's live feed (Server-Sent Events)", "getEvents",
            {"200": media_response("event: state messages whose data is a MapState (JSON), one per update "
                                   "(every 0.5 s) while the client listens.", ["text/event-stream"],
                                   schema_ref("MapEvent"))},
            description="With Accept: text/event-stream (EventSource) the stream stays open; otherwise the "
                        "current state is answered as one event and the connection closed. 503 when too many "
                        "streams are open.")},
        "/metrics": {"get": operation(
            "Prometheus metrics", "getMetrics",
            {"200": media_response("The Prometheus text format (version 0.0.4): link delay, loss and state, "
                                   "instance load, slice SLOs, steering shares, decision times.",
                                   ["text/plain"])})},
    }
    return Section("map", "The map page, its live feed and the Prometheus metrics.", paths,
                   {"MapState": state, "MapLink": link, "MapLinkDirection": direction, "MapLinkHistory": history,
                    "MapEvent": event})


#: The API's concerns, in the order the document lists them.
SECTIONS: tuple[Section, ...] = (_core_section(), _policies_section(), _telemetry_section(), _steering_section(),
                                 _slices_section(), _map_section())


def openapi_document(sections: Sequence[Section] = SECTIONS, *, server_url: str = DEFAULT_URL) -> dict:
    """The OpenAPI 3.1 document made of ``sections``.

    Parameters
    ----------
    sections : sequence of Section
        Default :data:`SECTIONS`.
    server_url : str
        The base URL the document advertises (``servers[0].url``).

    Returns
    -------
    dict
        A fresh copy: changing it does not change the sections.

    Raises
    ------
    SchemaError
        If two sections define the same operation, operation id or tag, or
        the same schema name differently.

    Examples
    --------
    >>> doc = openapi_document(server_url="http://127.0.0.1:9000")
    >>> doc["servers"], [tag["name"] for tag in doc["tags"]]
    ([{'url': 'http://127.0.0.1:9000'}], ['core', 'policies', 'telemetry', 'steering', 'slices', 'map'])
    >>> openapi_document([SECTIONS[1], SECTIONS[1]])
    Traceback (most recent call last):
    ...
    controllers.northbound.errors.SchemaError: section 'policies' redefines tag 'policies'; give each section
    its own tag
    """
    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "cpn_net controller northbound", "version": cpn_net.__version__,
                 "description": "Install and inspect SR policies and network slices on a running cpn_net "
                                "network. Every answer is JSON; every error is "
                                "{\"error\": {\"status\", \"message\", \"details\"}}. "
                                "A 4xx answer changes nothing."},
        "servers": [{"url": server_url}],
        "tags": [],
        "paths": {},
        "components": {"schemas": {"Error": _error_schema()}, "responses": _error_responses()},
    }
    operation_ids: dict[str, str] = {}
    for section in sections:
        _merge(doc, section, operation_ids)
    return doc


def _merge(doc: dict, section: Section, operation_ids: dict[str, str]) -> None:
    where = f"section {section.tag!r}"
    if any(tag["name"] == section.tag for tag in doc["tags"]):
        raise SchemaError(f"{where} redefines tag {section.tag!r}; give each section its own tag")
    doc["tags"].append({"name": section.tag, "description": section.description})
    schemas = doc["components"]["schemas"]
    for name, schema in section.schemas.items():
        if name in schemas and schemas[name] != schema:
            raise SchemaError(f"{where} redefines schema {name!r} differently; rename one of them")
        schemas[name] = copy.deepcopy(schema)
    for template, item in section.paths.items():
        target = doc["paths"].setdefault(template, {})
        for method, op in item.items():
            if method in target:
                raise SchemaError(f"{where}: {method.upper()} {template} is already defined by another section")
            previous = operation_ids.setdefault(op["operationId"], f"{method.upper()} {template}")
            if previous != f"{method.upper()} {template}":
                raise SchemaError(f"{where}: operationId {op['operationId']!r} of {method.upper()} {template} is "
                                  f"already used by {previous}; operation ids must be unique")
            target[method] = {**copy.deepcopy(op), "tags": [section.tag]}
