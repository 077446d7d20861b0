"""Slices on the REST northbound: the real server and ControllerApi over a fake SliceService.

The fake keeps :class:`controllers.slice_service.SliceService` 's contract
(parse, add, delete, list, get, status and their exceptions) in memory, so
every status the northbound answers for slices is exercised without a network.
"""

import dataclasses
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from controllers.northbound import schema_check
from controllers.northbound.openapi import openapi_document
from controllers.northbound.rest import ROUTES
from controllers.northbound_api import ControllerApi
from controllers.slice_service import SliceConflict, UnknownSlice
from cpn_net.model import load_topology
from cpn_net.model.schema import MAX_SLICE_ID, SLICE_FIELDS
from cpn_net.model.slices import parse_slice
from cpn_net.northbound_client import NorthboundClient, NorthboundError
from cpn_net.slicing.errors import SliceRefused, SlicingError

TINY = Path(__file__).resolve().parents[2] / "topologies" / "tiny.yaml"
DOCUMENT = openapi_document()
GOLD = {"name": "gold", "members": ["east", "k3-1"], "rate_mbps": 20, "max_latency_ms": 30}
NO_SLICES = "no slices: network slicing is not running on this controller"


class FakeSliceService:
    """SliceService's methods over dicts; ``fail_with`` is raised by the next :meth:`add`.

    ``parse`` is the real model check (:func:`cpn_net.model.slices.parse_slice`)
    against ``topologies/tiny.yaml``; paths go straight between member sites.
    """

    def __init__(self):
        self.topology = load_topology(TINY)
        self.slices: dict[str, dict] = {}
        self.fail_with: Exception | None = None
        self.calls: list[tuple] = []

    def parse(self, body):
        self.calls.append(("parse", body))
        return parse_slice(body, self.topology)

    def add(self, spec):
        self.calls.append(("add", spec.name))
        failure, self.fail_with = self.fail_with, None
        if failure is not None:
            raise failure
        if spec.name in self.slices:
            raise SliceConflict(f"slice {spec.name!r} is in force already; delete it first or pick another name")
        record = {**dataclasses.asdict(spec), "state": "admitted", "refusal": None,
                  "paths": {f"{a}->{b}": [a, b] for a in spec.sites for b in spec.sites if a != b}}
        self.slices[spec.name] = record
        return {**record, "enforced_ms": 12.5}

    def delete(self, name):
        self.calls.append(("delete", name))
        return self.slices.pop(self._find(name)["name"])

    def list(self):
        return list(self.slices.values())

    def get(self, name):
        return self._find(name)

    def status(self, telemetry_view=None):
        self.calls.append(("status", telemetry_view))
        measured = telemetry_view is not None
        slices, violations = {}, []
        for name, record in self.slices.items():
            pairs = [{"from": a, "to": b, "path": path, "delay_ms": 40.0 if measured else None,
                      "loss_pct": 0.0 if measured else None,
                      "delay_ok": (40.0 <= record["max_latency_ms"]) if measured else None,
                      "loss_ok": True if measured else None}
                     for a, b, path in ((*pair.split("->"), path) for pair, path in record["paths"].items())]
            mine = [f"{name} {p['from']}->{p['to']}: delay 40 ms > {record['max_latency_ms']:g} ms"
                    for p in pairs if p["delay_ok"] is False]
            slices[name] = {**record, "slo": {"pairs": pairs, "violations": mine}}
            violations += mine
        return {"slices": slices, "violations": violations}

    def _find(self, name):
        try:
            return self.slices[name]
        except KeyError:
            raise UnknownSlice(f"no slice named {name!r}; `cpn slice list` shows them") from None


class FakeTelemetry:
    def view(self):
        return {"period_s": 1.0, "links": []}


@pytest.fixture
def service():
    return FakeSliceService()


@pytest.fixture
def changes():
    return []


@pytest.fixture
def api(service, changes):
    api = ControllerApi(core=None, topology=None, on_change=lambda: changes.append("change"))
    api.slices = service
    return api


def call(server, method, path, body=None):
    """(status, headers, decoded JSON) of one request; error statuses included."""
    data = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    request = urllib.request.Request(server.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, json.loads(err.read())


def error_of(status_and_payload, status):
    """The ``error`` member of an error answer with ``status``, checked against the Error schema."""
    got, _, payload = status_and_payload
    assert got == status, payload
    assert schema_check.check(payload, {"$ref": "#/components/schemas/Error"}, DOCUMENT) == []
    return payload["error"]


def conforms(value, schema_name):
    return schema_check.check(value, {"$ref": f"#/components/schemas/{schema_name}"}, DOCUMENT) == []


# --- success paths -------------------------------------------------------------------------------------------------

def test_slice_routes_are_served_and_documented(server):
    routes = {(r.method, r.template) for r in ROUTES if "slice" in r.template}
    assert routes == {("GET", "/slices"), ("POST", "/slices"), ("GET", "/slices/{name}"),
                      ("DELETE", "/slices/{name}"), ("GET", "/slice-status")}
    links = {link["path"]: sorted(link["methods"]) for link in call(server, "GET", "/")[2]["links"]}
    assert links["/slices"] == ["GET", "POST"] and links["/slices/{name}"] == ["DELETE", "GET"]
    assert links["/slice-status"] == ["GET"]


def test_add_is_201_with_location_and_the_slice_then_get_list_delete(server, service, changes):
    status, headers, added = call(server, "POST", "/slices", GOLD)
    assert status == 201 and headers["Location"] == "/slices/gold"
    assert added["state"] == "admitted" and added["enforced_ms"] == 12.5
    assert added["hosts"] == ["u1-1", "k1-1", "k3-1"] and added["paths"] == {"east->west": ["east", "west"],
                                                                            "west->east": ["west", "east"]}
    assert conforms(added, "Slice") and changes == ["change"]
    slice_ = {k: v for k, v in added.items() if k != "enforced_ms"}
    assert call(server, "GET", "/slices/gold")[:3:2] == (200, slice_)
    assert call(server, "GET", "/slices")[:3:2] == (200, [slice_])
    assert call(server, "DELETE", "/slices/gold")[:3:2] == (200, {"removed": slice_})
    assert conforms({"removed": slice_}, "SliceRemoval")
    assert changes == ["change", "change"] and service.slices == {}
    assert call(server, "GET", "/slices")[:3:2] == (200, [])


def test_status_passes_none_without_telemetry(server, service):
    call(server, "POST", "/slices", GOLD)
    status, _, answer = call(server, "GET", "/slice-status")
    assert status == 200 and service.calls[-1] == ("status", None)
    pair = answer["slices"]["gold"]["slo"]["pairs"][0]
    assert pair["delay_ms"] is None and pair["delay_ok"] is None and answer["violations"] == []
    assert conforms(answer, "SliceStatus")


def test_status_passes_the_telemetry_view(server, api, service):
    api.telemetry = FakeTelemetry()
    call(server, "POST", "/slices", GOLD)
    status, _, answer = call(server, "GET", "/slice-status")
    assert status == 200 and service.calls[-1] == ("status", {"period_s": 1.0, "links": []})
    assert answer["violations"] == ["gold east->west: delay 40 ms > 30 ms", "gold west->east: delay 40 ms > 30 ms"]
    assert answer["slices"]["gold"]["slo"]["pairs"][0]["delay_ok"] is False
    assert conforms(answer, "SliceStatus")


def test_client_round_trip(server):
    client = NorthboundClient(server.url)
    assert client.list_slices() == []
    added = client.add_slice(GOLD)
    assert client.get_slice("gold")["paths"] == added["paths"]
    assert [s["name"] for s in client.list_slices()] == ["gold"]
    assert list(client.slice_status()["slices"]) == ["gold"]
    assert client.delete_slice("gold")["removed"]["name"] == "gold"
    with pytest.raises(NorthboundError) as err:
        client.get_slice("gold")
    assert (err.value.status, str(err.value)) == (404, "no slice named 'gold'; `cpn slice list` shows them")


# --- 404 -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path, body", [
    ("GET", "/slices", None), ("POST", "/slices", GOLD), ("GET", "/slices/gold", None),
    ("DELETE", "/slices/gold", None), ("GET", "/slice-status", None)])
def test_without_a_slice_service_every_slice_call_is_404(server, api, changes, method, path, body):
    api.slices = None
    assert error_of(call(server, method, path, body), 404)["message"] == NO_SLICES
    assert changes == []


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_slice_is_404_with_the_services_message(server, changes, method):
    error = error_of(call(server, method, "/slices/ghost"), 404)
    assert error == {"status": 404, "message": "no slice named 'ghost'; `cpn slice list` shows them", "details": {}}
    assert changes == []


def test_slice_names_in_paths_are_url_decoded(server, service):
    service.slices["a b"] = {"name": "a b", "state": "admitted"}  # only the service decides the names it holds
    assert call(server, "GET", "/slices/a%20b")[:3:2] == (200, {"name": "a b", "state": "admitted"})


# --- 422 / 409 / 500 -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, problem", [
    ({"members": ["esat"]}, "request: slice.members[0]: no site or host is named 'esat'; did you mean 'east'?"),
    ({"meter_mbps": 10}, "request: slice.meter_mbps: 10 Mbit/s is below rate_mbps=20; the meter would drop "
                         "guaranteed traffic; give meter_mbps >= 20, or drop it"),
])
def test_a_body_the_model_refuses_is_422_with_every_problem(server, service, changes, change, problem):
    error = error_of(call(server, "POST", "/slices", {**GOLD, **change}), 422)
    assert error == {"status": 422, "message": problem, "details": {"problems": [problem]}}
    assert [c[0] for c in service.calls] == ["parse"] and changes == [] and service.slices == {}


def test_a_name_in_force_is_409(server, service, changes):
    call(server, "POST", "/slices", GOLD)
    error = error_of(call(server, "POST", "/slices", {**GOLD, "members": ["centre"]}), 409)
    assert error["message"] == "slice 'gold' is in force already; delete it first or pick another name"
    assert service.slices["gold"]["members"] == ("east", "k3-1") and changes == ["change"]


@pytest.mark.parametrize("link, shown", [(("centre", "east"), ["centre", "east"]), (None, None)])
def test_an_admission_refusal_is_409_naming_the_bottleneck(server, service, changes, link, shown):
    message = "slice gold refused: no path east->west with 80 Mbit/s; bottleneck link centre-east has 50 Mbit/s " \
              "residual, 30 Mbit/s short"
    service.fail_with = SliceRefused(message, slice="gold", reason="bandwidth", link=link, residual_mbps=50.0,
                                     shortfall_mbps=30.0, path=("east", "centre", "west"))
    error = error_of(call(server, "POST", "/slices", GOLD), 409)
    assert error == {"status": 409, "message": message, "details": {
        "reason": "bandwidth", "link": shown, "residual_mbps": 50.0, "shortfall_mbps": 30.0}}
    assert service.slices == {} and changes == []


def test_a_slice_the_network_cannot_realise_is_422(server, service, changes):
    service.fail_with = SlicingError("slice gold: 4095 slices are in force, no id left; delete one first")
    error = error_of(call(server, "POST", "/slices", GOLD), 422)
    assert error["message"] == "slice gold: 4095 slices are in force, no id left; delete one first"
    assert error["details"] == {} and service.slices == {} and changes == []


def test_a_failure_half_way_is_500_rolled_back_and_logged(server, service, changes, caplog):
    service.fail_with = RuntimeError("r1: route add refused")
    with caplog.at_level(logging.ERROR, logger="cpn.northbound"):
        error = error_of(call(server, "POST", "/slices", GOLD), 500)
    assert error["message"] == "adding slice 'gold' failed and was rolled back: r1: route add refused"
    assert "adding slice gold" in caplog.text and changes == []
    assert call(server, "POST", "/slices", GOLD)[0] == 201  # the mutation lock was released


# --- 400: the published schema, before the api is called -----------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    ({"name": "gold", "members": ["east"]}, "body: missing required field 'rate_mbps'"),
    ({**GOLD, "members": []}, "body.members: has 0 items, needs at least 1"),
    ({**GOLD, "members": "east"}, 'body.members: "east" must be an array (got string)'),
    ({**GOLD, "rate_mbps": 0}, "body.rate_mbps: 0 must be > 0"),
    ({**GOLD, "rate": 5}, "body: unknown field 'rate'; did you mean 'rate_mbps'?"),
    ({**GOLD, "id": MAX_SLICE_ID + 1}, f"body.id: {MAX_SLICE_ID + 1} must be <= {MAX_SLICE_ID}"),
    ({**GOLD, "id": 0}, "body.id: 0 must be >= 1"),
    ({**GOLD, "id": 2.5}, "body.id: 2.5 must be an integer (got number)"),
    ({**GOLD, "kind": "fast"}, 'body.kind: "fast" must be one of "latency", "bulk"'),
    ({**GOLD, "isolation": "yes"}, 'body.isolation: "yes" must be a boolean (got string)'),
    ({**GOLD, "max_loss_pct": 101}, "body.max_loss_pct: 101 must be <= 100"),
    ({**GOLD, "max_latency_ms": 0}, "body.max_latency_ms: 0 must be > 0"),
    ({**GOLD, "meter_mbps": -1}, "body.meter_mbps: -1 must be > 0"),
    ({**GOLD, "name": "Gold"}, 'body.name: "Gold" does not match'),
])
def test_ill_typed_slice_is_400_and_the_service_is_not_called(server, service, body, message):
    error = error_of(call(server, "POST", "/slices", body), 400)
    assert error["message"].startswith(message)
    assert error["message"].endswith("(see SliceRequest in GET /openapi.json)")
    assert service.calls == []


def test_nullable_bounds_and_every_key_pass_the_schema(server, service):
    body = {**GOLD, "max_latency_ms": None, "max_loss_pct": None, "meter_mbps": None, "kind": "bulk",
            "isolation": False, "id": MAX_SLICE_ID}
    assert set(body) == set(SLICE_FIELDS)
    status, _, added = call(server, "POST", "/slices", body)
    assert status == 201 and added["id"] == MAX_SLICE_ID and added["isolation"] is False


def test_the_request_schema_mirrors_the_models_slice_fields():
    request = DOCUMENT["components"]["schemas"]["SliceRequest"]
    fields = request["properties"]
    assert set(fields) == set(SLICE_FIELDS) and request["additionalProperties"] is False
    assert request["required"] == ["name", "members", "rate_mbps"]
    assert fields["id"]["maximum"] == SLICE_FIELDS["id"].at_most == MAX_SLICE_ID
    assert fields["kind"]["enum"] == list(SLICE_FIELDS["kind"].choices)
    assert all(field.get("description") for field in fields.values())
