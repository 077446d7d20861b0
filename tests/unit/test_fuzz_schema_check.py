"""Differential fuzz: the northbound's hand-written schema checker against jsonschema-rs on our own schemas.

:mod:`controllers.northbound.schema_check` implements the slice of JSON Schema
2020-12 our OpenAPI document uses, to write messages that name the field, the
value and the fix. This test holds it to a well-kept validator: on mutated
request bodies (a valid body with awkward values swapped in, keys dropped or
added), both must agree on valid or not. A body goes through the checker as
the REST server sends it: after :func:`schema_check.integral_numbers_as_integers`
(``8080.0`` is an integer to JSON Schema; the checker alone is stricter).
"""

from __future__ import annotations

import copy
import random

import jsonschema_rs
import pytest

from controllers.northbound import schema_check
from controllers.northbound.openapi import openapi_document

DOCUMENT = openapi_document()
CASES = 4000
VALID = {
    "PolicyRequest": {"name": "web", "headend": "east", "to": "west", "waypoints": ["centre"],
                      "flow": {"proto": "tcp", "src": "2001:db8:1::/64", "dst_port": 8080, "src_port": 1},
                      "objective": "bandwidth", "bandwidth_mbps": 10, "mode": "encap.red", "backup": False},
    "PolicyBatch": {"policies": [{"name": "a", "headend": "east", "to": "west"}]},
    "SliceRequest": {"name": "gold", "id": 7, "members": ["u1-1", "k3-1"], "rate_mbps": 5, "max_latency_ms": 30,
                     "max_loss_pct": 1, "kind": "bulk", "meter_mbps": 8, "isolation": True},
    "LinkEvent": {"a": "east", "b": "west", "up": False},
    "SteeringChoice": {"policy": "joint"},
}
AWKWARD = [0, -1, 1, 1.0, 8080.0, 0.5, -0.0001, 65535, 65536, 4095, 4096, 100, 100.5, 1e308, -1e308, 2 ** 70, True, False, None,
           "", "a", "A", "-a", "a" * 63, "a" * 64, "x" * 300, "\u00e9", "east\n", "tcp", "min_hops", "bandwidth",
           "encap", "latency", [], [""], ["a", "a"], ["a"] * 3, {}, {"proto": "udp"}, {"x": 1}]


def _validator(name):
    return jsonschema_rs.validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                        "$ref": f"#/components/schemas/{name}",
                                        "components": {"schemas": DOCUMENT["components"]["schemas"]}})


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


def _mutate(rng: random.Random, body):
    for _ in range(rng.choice((1, 1, 2, 3))):
        paths = [p for p in _paths(body) if p]
        if not paths:
            return body
        path = rng.choice(paths)
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        kind = rng.randrange(4)
        if kind <= 1:
            parent[path[-1]] = copy.deepcopy(rng.choice(AWKWARD))
        elif kind == 2:
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[rng.choice(["extra", "nam", "flows", "up"])] = copy.deepcopy(rng.choice(AWKWARD))
        else:
            parent.append(copy.deepcopy(rng.choice(AWKWARD)))
    return body


@pytest.mark.parametrize("name", sorted(VALID))
def test_schema_check_agrees_with_jsonschema_rs(name):
    validator, schema = _validator(name), {"$ref": f"#/components/schemas/{name}"}
    rng = random.Random(name)
    assert validator.is_valid(VALID[name]) and schema_check.check(VALID[name], schema, DOCUMENT) == []
    disagreements, invalid = [], 0
    for _ in range(CASES):
        body = _mutate(rng, copy.deepcopy(VALID[name]))
        problems = schema_check.check(schema_check.integral_numbers_as_integers(body, schema, DOCUMENT), schema,
                                      DOCUMENT)
        invalid += bool(problems)
        if validator.is_valid(body) != (not problems):
            disagreements.append((body, [str(p) for p in problems]))
    assert not disagreements, f"{len(disagreements)} bodies judged differently, e.g. {disagreements[:3]}"
    assert invalid > CASES // 4  # the mutations do make invalid bodies
