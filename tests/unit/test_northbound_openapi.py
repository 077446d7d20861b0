"""The OpenAPI document: structurally sound, every $ref resolves, and it matches the server's routes.

Neither openapi-spec-validator nor jsonschema is installed, so the checks below
walk the document themselves.
"""

import json

import pytest

from controllers.northbound import schema_check
from controllers.northbound.errors import SchemaError
from controllers.northbound.openapi import (ERROR_RESPONSES, SECTIONS, Section, json_body, openapi_document, operation,
                                            response, schema_ref)
from controllers.northbound.rest import ROUTES
from cpn_net.model.schema import POLICY_OBJECTIVES as OBJECTIVES
from cpn_net.srv6.policy import MODES

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def doc():
    return openapi_document()


def walk(node, at=""):
    """Every (pointer, mapping) in the document."""
    if isinstance(node, dict):
        yield at, node
        for key, value in node.items():
            yield from walk(value, f"{at}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{at}/{index}")


def operations(doc):
    for template, item in doc["paths"].items():
        for method, op in item.items():
            yield template, method, op


def test_top_level_is_an_openapi_3_1_document(doc):
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert set(doc) <= {"openapi", "info", "servers", "tags", "paths", "components", "jsonSchemaDialect"}
    assert json.loads(json.dumps(doc)) == doc  # plain JSON data, nothing Python-only


def test_every_ref_resolves_to_a_schema_or_response(doc):
    refs = [(at, node["$ref"]) for at, node in walk(doc) if "$ref" in node]
    assert len(refs) > 20
    for at, ref in refs:
        target = schema_check.resolve({"$ref": ref}, doc)
        assert isinstance(target, dict), at
        if ref.startswith("#/components/responses/"):
            assert "description" in target and "content" in target, ref


def test_every_component_is_used(doc):
    used = {node["$ref"] for _, node in walk(doc) if "$ref" in node}
    defined = {f"#/components/{kind}/{name}" for kind in ("schemas", "responses") for name in doc["components"][kind]}
    # 405 is answered for methods that are not operations, so no operation can reference it.
    assert defined - used == {"#/components/responses/MethodNotAllowed"}


#: Operations answering other media than JSON on success (the map page, its files and feed, the metrics).
NOT_JSON = {"/map", "/map/{asset}", "/events", "/metrics"}


def test_every_response_of_every_operation_has_a_json_schema(doc):
    for template, method, op in operations(doc):
        assert method in HTTP_METHODS
        assert op["responses"], f"{method} {template}"
        for status, answer in op["responses"].items():
            answer = schema_check.resolve(answer, doc)
            assert answer["description"], f"{method} {template} {status}"
            if template in NOT_JSON and status.startswith("2"):
                assert all(media["schema"] for media in answer["content"].values()), f"{method} {template}"
                continue
            assert answer["content"]["application/json"]["schema"], f"{method} {template} {status}"
        assert "500" in op["responses"]
        assert any(s.startswith("2") for s in op["responses"]), f"{method} {template} has no success answer"


def test_path_parameters_are_declared_and_required(doc):
    for template, method, op in operations(doc):
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        in_template = {part[1:-1] for part in template.split("/") if part.startswith("{")}
        assert declared == in_template, f"{method} {template}"
        assert all(p["required"] is True for p in op.get("parameters", []) if p["in"] == "path")


def test_operation_ids_are_unique_and_every_operation_is_tagged(doc):
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))
    tags = {tag["name"] for tag in doc["tags"]}
    assert all(op["tags"][0] in tags for _, _, op in operations(doc))


def test_bodies_answer_400_411_413_415(doc):
    for template, method, op in operations(doc):
        if "requestBody" in op:
            assert {"400", "411", "413", "415"} <= set(op["responses"]), f"{method} {template}"
            assert op["requestBody"]["required"] is True


def test_routes_and_document_agree(doc):
    routes = {(route.method.lower(), route.template) for route in ROUTES}
    documented = {(method, template) for template, method, _ in operations(doc)}
    assert routes == documented


def test_success_statuses_match_the_routes(doc):
    for route in ROUTES:
        op = doc["paths"][route.template][route.method.lower()]
        assert str(route.status) in op["responses"], f"{route.method} {route.template}"
        if route.location:
            assert "Location" in op["responses"][str(route.status)]["headers"]


def test_every_schema_is_one_the_checker_implements(doc):
    # check() raises SchemaError on a keyword it lacks; run it over every schema once.
    for name, schema in doc["components"]["schemas"].items():
        schema_check.check(None, schema, doc, where=name)
        schema_check.check({}, schema, doc, where=name)


def test_policy_schema_has_types_enums_and_descriptions(doc):
    request = doc["components"]["schemas"]["PolicyRequest"]
    assert request["required"] == ["name", "headend", "to"] and request["additionalProperties"] is False
    fields = request["properties"]
    assert set(fields) == {"name", "headend", "to", "flow", "objective", "bandwidth_mbps", "waypoints", "mode",
                           "backup"}
    assert all(field.get("description") for field in fields.values())
    assert fields["mode"]["enum"] == list(MODES) and fields["objective"]["enum"] == list(OBJECTIVES)
    assert set(fields["flow"]["properties"]) == {"proto", "src", "src_port", "dst_port"}
    assert fields["flow"]["properties"]["proto"]["type"] == ["string", "integer"]  # a name or a number
    assert "icmpv6" in fields["flow"]["properties"]["proto"]["description"]
    installed = doc["components"]["schemas"]["Policy"]
    assert set(fields) < set(installed["properties"]) and {"path", "segments"} <= set(installed["required"])


def test_error_schema_and_responses(doc):
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["properties"]["error"]["required"] == ["status", "message",
                                                                                             "details"]
    responses = doc["components"]["responses"]
    assert {name for name, _ in ERROR_RESPONSES.values()} == set(responses)
    assert "Allow" in responses["MethodNotAllowed"]["headers"]
    good = {"error": {"status": 404, "message": "no policy named 'x'", "details": {}}}
    assert schema_check.check(good, schema_ref("Error"), doc) == []
    assert [str(p) for p in schema_check.check({"error": {"status": 200, "message": "x"}}, schema_ref("Error"), doc)] \
        == ["body.error: missing required field 'details'", "body.error.status: 200 must be >= 400"]


def test_policy_name_pattern_is_anchored(doc):
    name = doc["components"]["schemas"]["PolicyRequest"]["properties"]["name"]
    for good in ("web", "a", "web-2_x"):
        assert schema_check.check(good, name, doc) == []
    for bad in ("", "Web", "-web", "web\n", "a" * 64, "web server"):
        assert schema_check.check(bad, name, doc), bad


def test_a_new_section_adds_paths_schemas_and_tag():
    telemetry = Section("services", "Compute services (a later section).", {
        "/services/instances": {"get": operation("Link measurements", "listLinkTelemetry",
                                              {"200": response("Per link.", {"type": "array",
                                                                             "items": schema_ref("LinkSample")})})}},
        {"LinkSample": {"type": "object", "properties": {"delay_ms": {"type": "number"}}}})
    doc = openapi_document((*SECTIONS, telemetry))
    assert doc["paths"]["/services/instances"]["get"]["tags"] == ["services"]
    assert "LinkSample" in doc["components"]["schemas"] and doc["tags"][-1]["name"] == "services"
    assert "/policies" in doc["paths"]


def test_document_is_a_fresh_copy_each_time():
    first = openapi_document()
    first["components"]["schemas"]["PolicyRequest"]["properties"].clear()
    first["paths"]["/policies"]["post"]["responses"].clear()
    second = openapi_document()
    assert second["components"]["schemas"]["PolicyRequest"]["properties"]
    assert second["paths"]["/policies"]["post"]["responses"]


@pytest.mark.parametrize("sections, message", [
    ((Section("a", "", {"/x": {"get": operation("X", "getX", {"200": response("x", {})})}}),
      Section("b", "", {"/x": {"get": operation("X", "getX2", {"200": response("x", {})})}})),
     "section 'b': GET /x is already defined by another section"),
    ((Section("a", "", {"/x": {"get": operation("X", "same", {"200": response("x", {})})}}),
      Section("b", "", {"/y": {"get": operation("Y", "same", {"200": response("y", {})})}})),
     "section 'b': operationId 'same' of GET /y is already used by GET /x; operation ids must be unique"),
    ((Section("a", "", {}, {"S": {"type": "string"}}), Section("b", "", {}, {"S": {"type": "integer"}})),
     "section 'b' redefines schema 'S' differently; rename one of them"),
])
def test_conflicting_sections_are_refused(sections, message):
    with pytest.raises(SchemaError) as err:
        openapi_document(sections)
    assert str(err.value) == message


def test_identical_shared_schema_in_two_sections_is_fine():
    shared = {"S": {"type": "string"}}
    doc = openapi_document((Section("a", "", {}, shared), Section("b", "", {}, dict(shared))))
    assert doc["components"]["schemas"]["S"] == {"type": "string"}


def test_operation_refuses_an_error_status_without_a_shared_response():
    with pytest.raises(SchemaError, match=r"operation getX: error statuses \[418\] have no shared response; use "):
        operation("X", "getX", {"200": response("x", {})}, errors=[418])


def test_json_body_is_required_json():
    body = json_body({"type": "object"}, "A thing.")
    assert body == {"required": True, "description": "A thing.",
                    "content": {"application/json": {"schema": {"type": "object"}}}}
