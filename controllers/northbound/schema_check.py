"""Check a request body against its schema in the OpenAPI document.

The REST server rejects ill-typed bodies (HTTP 400) before the api sees them,
using the very schemas :mod:`controllers.northbound.openapi` publishes, so the
document and the checks cannot drift apart.

Only the part of JSON Schema 2020-12 (the dialect of OpenAPI 3.1, §4.8.24)
that our schemas use is implemented: ``$ref`` (local JSON pointers, RFC 6901),
``type`` (one or a list), ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``minItems``, ``maxItems``,
``uniqueItems``, ``minimum``, ``maximum``, ``exclusiveMinimum``,
``exclusiveMaximum``, ``minLength``, ``maxLength``, ``pattern``. Any other
validation keyword raises :class:`SchemaError` instead of being silently
ignored, so a schema never promises a check that is not made.

Two deliberate strictness choices: ``integer`` accepts only JSON numbers
written without a fraction (``80``, not ``80.0``), and ``true``/``false`` are
never numbers. JSON Schema itself counts ``80.0`` as an integer, so the REST
server first turns such numbers into ints where the schema asks for one
(:func:`integral_numbers_as_integers`); the api always gets an int.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from controllers.northbound.errors import SchemaError

#: Keywords that describe rather than constrain: accepted and skipped.
ANNOTATIONS = frozenset({"title", "description", "default", "examples", "format", "readOnly", "writeOnly",
                         "deprecated", "$comment"})
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_KNOWN = ANNOTATIONS | {"$ref", "type", "enum", "const", "properties", "required", "additionalProperties", "items",
                        "minItems", "maxItems", "uniqueItems", "minimum", "maximum", "exclusiveMinimum",
                        "exclusiveMaximum", "minLength", "maxLength", "pattern"}
_SHOWN_CHARS = 60


@dataclass(frozen=True)
class Problem:
    """One way a value breaks its schema.

    Examples
    --------
    >>> str(Problem("body.flow.src_port", '"80" must be an integer (got string)'))
    'body.flow.src_port: "80" must be an integer (got string)'
    """

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def resolve(schema: Mapping[str, Any], document: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow ``$ref`` (a local JSON pointer, RFC 6901) until a schema without one.

    Parameters
    ----------
    schema : mapping
        A schema object, possibly ``{"$ref": "#/components/schemas/Name"}``.
    document : mapping
        The document pointers are resolved in.

    Returns
    -------
    mapping
        The schema the reference chain ends at.

    Raises
    ------
    SchemaError
        If a reference is not local, points nowhere, or loops.

    Examples
    --------
    >>> doc = {"components": {"schemas": {"Port": {"type": "integer"}}}}
    >>> resolve({"$ref": "#/components/schemas/Port"}, doc)
    {'type': 'integer'}
    >>> resolve({"$ref": "#/components/schemas/Nope"}, doc)
    Traceback (most recent call last):
    ...
    controllers.northbound.errors.SchemaError: $ref '#/components/schemas/Nope': no key 'Nope' at /components/schemas
    """
    seen = []
    while "$ref" in schema:
        pointer = schema["$ref"]
        if pointer in seen:
            raise SchemaError(f"$ref {pointer!r} loops: {' -> '.join(seen + [pointer])}")
        seen.append(pointer)
        schema = _follow_pointer(pointer, document)
    return schema


def check(value: Any, schema: Mapping[str, Any], document: Mapping[str, Any], where: str = "body",
          limit: int | None = None) -> list[Problem]:
    """Every way ``value`` breaks ``schema``, in document order.

    Parameters
    ----------
    value : object
        Decoded JSON.
    schema : mapping
        A schema object of ``document`` (may be a ``$ref``).
    document : mapping
        The OpenAPI document, for ``$ref``.
    where : str
        Name of ``value`` in messages; nested values extend it
        (``body.flow.src_port``, ``body.waypoints[1]``).
    limit : int, optional
        Stop once this many problems are found: a body with 60,000 unknown
        fields costs no more to refuse than one with ``limit``.

    Returns
    -------
    list of Problem
        Empty when the value conforms; at most ``limit`` long.

    Raises
    ------
    SchemaError
        If the schema uses a keyword this checker does not implement.

    Examples
    --------
    >>> schema = {"type": "object", "required": ["name"], "additionalProperties": False,
    ...           "properties": {"name": {"type": "string"}, "rate_mbps": {"type": "number", "exclusiveMinimum": 0}}}
    >>> [str(p) for p in check({"name": "web", "rate_mbps": 5}, schema, {})]
    []
    >>> for problem in check({"rate_mbps": -3, "rate": 1}, schema, {}):
    ...     print(problem)
    body: missing required field 'name'
    body: unknown field 'rate'; did you mean 'rate_mbps'? (allowed: name, rate_mbps)
    body.rate_mbps: -3 must be > 0
    >>> len(check({f"x{i}": 1 for i in range(1000)}, schema, {}, limit=5))
    5
    """
    problems = _Problems(limit)
    try:
        _check(value, schema, document, where, problems)
    except _Enough:
        pass
    return list(problems)


class _Enough(Exception):
    """Raised by :class:`_Problems` once it holds its limit."""


class _Problems(list):
    def __init__(self, limit: int | None):
        super().__init__()
        self.limit = limit

    def append(self, problem: Problem) -> None:
        super().append(problem)
        if self.limit is not None and len(self) >= self.limit:
            raise _Enough


def integral_numbers_as_integers(value: Any, schema: Mapping[str, Any], document: Mapping[str, Any]) -> Any:
    """``value`` with each number of zero fraction turned into an int where ``schema`` asks for an integer.

    JSON Schema counts ``80.0`` as an integer (2020-12 core §4.2.1; a client
    checking with any standard validator sends it), while :func:`check` is
    strict; the REST server calls this first, so ``80.0`` is accepted as ``80``
    and the api gets an int. Numbers under ``number`` fields stay as sent.

    Examples
    --------
    >>> schema = {"type": "object", "properties": {"port": {"type": "integer"}, "rate": {"type": "number"},
    ...                                            "ids": {"type": "array", "items": {"type": ["integer", "null"]}}}}
    >>> integral_numbers_as_integers({"port": 80.0, "rate": 5.0, "ids": [1.0, 2.5, None], "x": 3.0}, schema, {})
    {'port': 80, 'rate': 5.0, 'ids': [1, 2.5, None], 'x': 3.0}
    """
    schema = resolve(schema, document)
    if isinstance(value, float) and value.is_integer():
        types = schema.get("type", ())
        types = [types] if isinstance(types, str) else list(types)
        return int(value) if "integer" in types and "number" not in types else value
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {key: integral_numbers_as_integers(item, properties[key], document) if key in properties else
                integral_numbers_as_integers(item, extra, document) if isinstance(extra, Mapping) else item
                for key, item in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [integral_numbers_as_integers(item, schema["items"], document) for item in value]
    return value


def _check(value, schema, document, where, problems) -> None:
    schema = resolve(schema, document)
    unknown = set(schema) - _KNOWN
    if unknown:
        raise SchemaError(f"schema at {where} uses {sorted(unknown)}, which the northbound schema checker does "
                          "not implement; extend controllers/northbound/schema_check.py or drop the keyword")
    if "type" in schema and not _type_ok(value, schema["type"], where, problems):
        return  # further keywords would only repeat the type problem
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(_show(v) for v in schema["enum"])
        problems.append(Problem(where, f"{_show(value)} must be one of {allowed}"))
    if "const" in schema and value != schema["const"]:
        problems.append(Problem(where, f"{_show(value)} must be {_show(schema['const'])}"))
    if isinstance(value, dict):
        _check_object(value, schema, document, where, problems)
    elif isinstance(value, list):
        _check_array(value, schema, document, where, problems)
    elif isinstance(value, str):
        _check_string(value, schema, where, problems)
    elif _TYPES["number"](value):
        _check_number(value, schema, where, problems)


def _type_ok(value, types, where, problems) -> bool:
    names = [types] if isinstance(types, str) else list(types)
    for name in names:
        if name not in _TYPES:
            raise SchemaError(f"schema at {where}: type {name!r} is not a JSON Schema type ({', '.join(_TYPES)})")
    if any(_TYPES[name](value) for name in names):
        return True
    expected = " or ".join(("an " if name[0] in "aeiou" else "a ") + name for name in names)
    problems.append(Problem(where, f"{_show(value)} must be {expected} (got {json_type(value)})"))
    return False


def _check_object(value, schema, document, where, problems) -> None:
    properties = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            problems.append(Problem(where, f"missing required field {name!r}"))
    extra = schema.get("additionalProperties", True)
    for name in value:
        if name in properties:
            continue
        if extra is False:
            hint = difflib.get_close_matches(name[:_SHOWN_CHARS], list(properties), n=1)
            did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ";"
            problems.append(Problem(where, f"unknown field {_show_name(name)}{did_you_mean} "
                                           f"(allowed: {', '.join(properties)})"))
        elif isinstance(extra, Mapping):
            _check(value[name], extra, document, f"{where}.{_show_name(name)[1:-1]}", problems)
    for name, sub in properties.items():
        if name in value:
            _check(value[name], sub, document, f"{where}.{name}", problems)


def _check_array(value, schema, document, where, problems) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        problems.append(Problem(where, f"has {len(value)} items, needs at least {schema['minItems']}"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        problems.append(Problem(where, f"has {len(value)} items, at most {schema['maxItems']} allowed"))
        return  # the items of an over-long array are not worth checking: the sender must split it first
    if schema.get("uniqueItems"):
        seen = []
        for item in value:
            if item in seen:
                problems.append(Problem(where, f"{_show(item)} appears more than once; items must be unique"))
                break
            seen.append(item)
    if "items" in schema:
        for index, item in enumerate(value):
            _check(item, schema["items"], document, f"{where}[{index}]", problems)


def _check_string(value, schema, where, problems) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        problems.append(Problem(where, f"{_show(value)} is shorter than {schema['minLength']} characters"))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        problems.append(Problem(where, f"{_show(value)} is longer than {schema['maxLength']} characters"))
    if "pattern" in schema and not re.search(_python_pattern(schema["pattern"]), value):
        rule = schema.get("description", f"the pattern {schema['pattern']}")
        problems.append(Problem(where, f"{_show(value)} does not match {schema['pattern']} ({rule})"))


def _check_number(value, schema, where, problems) -> None:
    bounds = (("minimum", ">=", value < schema.get("minimum", value)),
              ("maximum", "<=", value > schema.get("maximum", value)),
              ("exclusiveMinimum", ">", "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]),
              ("exclusiveMaximum", "<", "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]))
    for keyword, relation, broken in bounds:
        if keyword in schema and broken:
            problems.append(Problem(where, f"{_show(value)} must be {relation} {_show(schema[keyword])}"))


def _python_pattern(pattern: str) -> str:
    # JSON Schema patterns are ECMA-262 and unanchored (2020-12 validation §6.3.3): search, not fullmatch.
    # A final "$" there matches only at the very end; Python's also matches before a final newline.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + r"\Z"
    return pattern


def _follow_pointer(pointer: str, document: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(pointer, str) or not pointer.startswith("#"):
        raise SchemaError(f"$ref {pointer!r} is not a local reference; write '#/components/schemas/<Name>'")
    node: Any = document
    at = ""
    for token in pointer[1:].split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or key not in node:
            raise SchemaError(f"$ref {pointer!r}: no key {key!r} at {at or '/'}")
        node = node[key]
        at += "/" + token
    if not isinstance(node, Mapping):
        raise SchemaError(f"$ref {pointer!r} points at a {type(node).__name__}, not a schema object")
    return node


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value.

    Examples
    --------
    >>> json_type(True), json_type(3), json_type(3.5), json_type([]), json_type(None)
    ('boolean', 'integer', 'number', 'array', 'null')
    """
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return name
    return type(value).__name__


def _show_name(name: str) -> str:
    shown = repr(name)
    return shown if len(shown) <= _SHOWN_CHARS else shown[:_SHOWN_CHARS - 4] + "...'"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 3] + "..."
