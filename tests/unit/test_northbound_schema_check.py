"""The JSON Schema subset the northbound checks request bodies with."""

import pytest

from controllers.northbound.errors import SchemaError
from controllers.northbound.schema_check import check, json_type, resolve


def messages(value, schema, document=None):
    return [str(p) for p in check(value, schema, document or {})]


@pytest.mark.parametrize("schema_type, good, bad", [
    ("integer", [0, -3, 2 ** 70], [1.0, True, "1", None]),
    ("number", [0, 1.5, -2], [True, False, "1.5", None]),
    ("boolean", [True, False], [0, 1, "true", None]),
    ("string", ["", "x"], [1, None, ["x"]]),
    ("array", [[], [1]], [{}, "[]", None]),
    ("object", [{}, {"a": 1}], [[], None, "{}"]),
    ("null", [None], [0, "", False]),
])
def test_types_are_strict(schema_type, good, bad):
    for value in good:
        assert messages(value, {"type": schema_type}) == [], value
    for value in bad:
        assert messages(value, {"type": schema_type}) != [], value


def test_type_message_names_value_expected_and_actual():
    assert messages(True, {"type": "integer"}) == ["body: true must be an integer (got boolean)"]
    assert messages("x", {"type": ["number", "null"]}) == ['body: "x" must be a number or a null (got string)']


def test_a_type_problem_hides_the_keywords_that_would_repeat_it():
    assert messages("7", {"type": "integer", "minimum": 10, "enum": [10, 20]}) == [
        'body: "7" must be an integer (got string)']


@pytest.mark.parametrize("schema, value, expected", [
    ({"minimum": 0}, -1, "body: -1 must be >= 0"),
    ({"maximum": 65535}, 65536, "body: 65536 must be <= 65535"),
    ({"exclusiveMinimum": 0}, 0, "body: 0 must be > 0"),
    ({"exclusiveMaximum": 100}, 100, "body: 100 must be < 100"),
    ({"minLength": 1}, "", 'body: "" is shorter than 1 characters'),
    ({"maxLength": 2}, "abc", 'body: "abc" is longer than 2 characters'),
    ({"enum": ["tcp", "udp"]}, "icmp", 'body: "icmp" must be one of "tcp", "udp"'),
    ({"const": 1}, 2, "body: 2 must be 1"),
    ({"minItems": 1}, [], "body: has 0 items, needs at least 1"),
    ({"maxItems": 1}, [1, 2], "body: has 2 items, at most 1 allowed"),
    ({"uniqueItems": True}, ["a", "b", "a"], 'body: "a" appears more than once; items must be unique'),
    ({"pattern": "^[a-z]+$", "description": "lower-case letters"}, "Web",
     'body: "Web" does not match ^[a-z]+$ (lower-case letters)'),
])
def test_each_keyword_reports_its_bound(schema, value, expected):
    assert messages(value, schema) == [expected]


@pytest.mark.parametrize("schema, value", [
    ({"minimum": 0}, 0), ({"maximum": 5}, 5), ({"exclusiveMinimum": 0}, 0.001), ({"minLength": 1}, "a"),
    ({"enum": [None, 1]}, None), ({"uniqueItems": True}, [1, "1"]), ({"pattern": "b"}, "abc"),
])
def test_values_on_the_bound_or_inside_pass(schema, value):
    assert messages(value, schema) == []


def test_final_dollar_anchors_at_the_very_end_as_in_ecma_262():
    assert messages("web\n", {"pattern": "^[a-z]+$"}) != []
    assert messages("cost$", {"pattern": "t\\$"}) == []


def test_bool_and_numbers_are_not_confused_by_enum():
    assert messages(True, {"enum": [1]}) == []  # Python: True == 1; the type keyword is what rules it out
    assert messages(True, {"type": "integer", "enum": [1]}) == ["body: true must be an integer (got boolean)"]


def test_nested_paths_name_the_field_and_index():
    schema = {"type": "object", "properties": {
        "flow": {"type": "object", "properties": {"src_port": {"type": "integer"}}},
        "waypoints": {"type": "array", "items": {"type": "string"}}}}
    assert messages({"flow": {"src_port": "80"}, "waypoints": ["a", 2]}, schema) == [
        'body.flow.src_port: "80" must be an integer (got string)',
        "body.waypoints[1]: 2 must be a string (got integer)"]


def test_unknown_field_suggests_the_close_name_or_lists_the_allowed():
    schema = {"type": "object", "additionalProperties": False, "properties": {"bandwidth_mbps": {}, "mode": {}}}
    assert messages({"bandwith_mbps": 1}, schema) == [
        "body: unknown field 'bandwith_mbps'; did you mean 'bandwidth_mbps'? (allowed: bandwidth_mbps, mode)"]
    assert messages({"zzz": 1}, schema) == ["body: unknown field 'zzz'; (allowed: bandwidth_mbps, mode)"]


def test_additional_properties_schema_checks_extra_values():
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    assert messages({"a": 1, "b": "x"}, schema) == ['body.b: "x" must be an integer (got string)']


def test_long_values_are_shortened_in_messages():
    [message] = messages("x" * 500, {"maxLength": 3})
    assert len(message) < 120 and message.startswith('body: "xxx') and "..." in message


def test_refs_are_followed_and_broken_refs_named():
    doc = {"components": {"schemas": {"Port": {"type": "integer"}, "Alias": {"$ref": "#/components/schemas/Port"},
                                      "Loop": {"$ref": "#/components/schemas/Loop"}, "a/b": {"type": "string"}}}}
    assert messages("x", {"$ref": "#/components/schemas/Alias"}, doc) == [
        'body: "x" must be an integer (got string)']
    assert resolve({"$ref": "#/components/schemas/a~1b"}, doc) == {"type": "string"}  # RFC 6901 escape
    with pytest.raises(SchemaError, match=r"\$ref '#/components/schemas/Loop' loops"):
        resolve({"$ref": "#/components/schemas/Loop"}, doc)
    with pytest.raises(SchemaError, match=r"\$ref 'other.json#/x' is not a local reference"):
        resolve({"$ref": "other.json#/x"}, doc)
    with pytest.raises(SchemaError, match=r"^\$ref '#/components/schemas/Port/type/x': no key 'x' at "
                                          r"/components/schemas/Port/type$"):
        resolve({"$ref": "#/components/schemas/Port/type/x"}, doc)
    with pytest.raises(SchemaError, match=r"^\$ref '#/components/schemas/Port/type' points at a str, not a schema"):
        resolve({"$ref": "#/components/schemas/Port/type"}, doc)


def test_unimplemented_keyword_is_a_schema_error_not_a_silent_pass():
    with pytest.raises(SchemaError) as err:
        check({}, {"type": "object", "oneOf": [{}]}, {}, where="PolicyRequest")
    assert str(err.value) == ("schema at PolicyRequest uses ['oneOf'], which the northbound schema checker does not "
                              "implement; extend controllers/northbound/schema_check.py or drop the keyword")
    with pytest.raises(SchemaError, match="type 'int' is not a JSON Schema type"):
        check(1, {"type": "int"}, {})


def test_annotations_are_accepted():
    schema = {"type": "string", "description": "d", "default": "x", "examples": ["x"], "format": "ipv6",
              "title": "t", "readOnly": True}
    assert messages("anything", schema) == []


def test_json_type_names():
    assert [json_type(v) for v in (None, False, 1, 1.5, "s", [], {})] == [
        "null", "boolean", "integer", "number", "string", "array", "object"]
