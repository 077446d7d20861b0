"""Tests of network slices in the topology model: every rule, good and bad, file and runtime."""

import json

import pytest

from cpn_net.model import TopologyError, UnknownNameError, summarize
from cpn_net.model.node_link import parse_node_link
from cpn_net.model.slices import parse_slice, slice_lines
from cpn_net.model.topology import SliceSpec
from cpn_net.model.yaml_format import parse_yaml_topology

FILE = "bad.yaml"
# tiny's triangle; east-centre 50 Mbit/s, centre-west unshaped, east-west 100 Mbit/s; centre has no clients.
BASE = """name: t
sites: [{name: east, id: 1}, {name: centre, id: 2, clients: 0}, {name: west, id: 3}, {name: empty, id: 4, clients: 0,
        compute: 0}]
links:
  - {a: east, b: centre, delay_ms: 5, rate_mbps: 50}
  - {a: centre, b: west, delay_ms: 10}
  - {a: east, b: west, delay_ms: 20, rate_mbps: 100}
  - {a: west, b: empty, delay_ms: 1}
"""
S = "name: s, members: [east, k3-1], rate_mbps: 10"


def slices(*items: str) -> str:
    return BASE + "slices: [" + ", ".join(items) + "]\n"


def one(extra: str) -> str:
    return slices("{" + S + ", " + extra + "}")


def problems(text):
    with pytest.raises(TopologyError) as info:
        parse_yaml_topology(text, FILE)
    return info.value.problems


def one_problem(text, key, message, fix):
    found = problems(text)
    at_key = [p for p in found if p.key == key]
    assert at_key, f"no problem at {key!r}; got:\n" + "\n".join(map(str, found))
    p = at_key[0]
    assert message in p.message, str(p)
    assert fix in p.fix, str(p)
    assert str(p) == f"{FILE}: {key}: {p.message}; {p.fix}"


BAD_CASES = {
    "not a list": (BASE + "slices: gold\n", "slices", "'gold' is a string, expected a list", "write a list"),
    "entry not a mapping": (slices("gold"), "slices[0]", "'gold' is a string, expected a slice mapping",
                            "write the slice as key: value pairs"),
    "name missing": (slices("{members: [east], rate_mbps: 1}"), "slices[0].name", "missing", "name the slice"),
    "name invalid": (slices("{name: Gold, members: [east], rate_mbps: 1}"), "slices[0].name",
                     "'Gold' is not a valid name", "rename it, e.g. 'gold'"),
    "duplicate name": (slices("{" + S + "}", "{name: s, members: [u3-1], rate_mbps: 1}"), "slices[1].name",
                       "'s' is already the name of slices[0]", "give each slice a unique name"),
    "id zero": (one("id: 0"), "slices[0].id", "0 must be in [1, 4095]", "give an id from 1 to 4095"),
    "id too large": (one("id: 4096"), "slices[0].id", "4096 must be in [1, 4095]", "give an id from 1 to 4095"),
    "id float": (one("id: 2.0"), "slices[0].id", "2.0 is a float, expected an int", "write 2 without the decimal"),
    "duplicate id": (slices("{" + S + ", id: 4}", "{name: t, members: [u3-1], rate_mbps: 1, id: 4}"),
                     "slices[1].id", "4 is already the id of slices[0]", "give each slice a unique id"),
    "members missing": (slices("{name: s, rate_mbps: 1}"), "slices[0].members", "missing",
                        "list the member hosts or sites"),
    "members empty": (one("members: []").replace("members: [east, k3-1], ", ""), "slices[0].members",
                      "empty: a slice needs at least one member", "list host names"),
    "members not a list": (slices("{name: s, members: east, rate_mbps: 1}"), "slices[0].members",
                           "'east' is a string, expected a list", "write a list"),
    "member unknown site": (slices("{name: s, members: [esat], rate_mbps: 1}"), "slices[0].members[0]",
                            "no site or host is named 'esat'", "did you mean 'east'?"),
    "member unknown host": (slices("{name: s, members: [k3-2], rate_mbps: 1}"), "slices[0].members[0]",
                            "no site or host is named 'k3-2'", "did you mean"),
    "member not a string": (slices("{name: s, members: [3], rate_mbps: 1}"), "slices[0].members[0]",
                            "3 is an int, expected a host or site name", "write a host name"),
    "member site without hosts": (slices("{name: s, members: [empty], rate_mbps: 1}"), "slices[0].members[0]",
                                  "site 'empty' has no hosts", "give the site clients or compute nodes"),
    "host listed twice via site": (slices("{name: s, members: [east, u1-1], rate_mbps: 1}"), "slices[0].members[1]",
                                   "host u1-1 is already a member through slices[0].members[0] (east)",
                                   "list each host once"),
    "rate missing": (slices("{name: s, members: [east]}"), "slices[0].rate_mbps", "missing",
                     "give the guaranteed rate"),
    "rate zero": (one("rate_mbps: 0").replace("rate_mbps: 10, ", ""), "slices[0].rate_mbps", "0 must be > 0",
                  "above 0 Mbit/s"),
    "rate bool": (slices("{name: s, members: [east], rate_mbps: true}"), "slices[0].rate_mbps",
                  "true is a bool, expected a number", "write a number"),
    "latency negative": (one("max_latency_ms: -1"), "slices[0].max_latency_ms", "-1 must be > 0",
                         "give the latency bound in ms"),
    "loss above 100": (one("max_loss_pct: 101"), "slices[0].max_loss_pct", "101 must be in [0, 100]",
                       "from 0 to 100 %"),
    "kind unknown": (one("kind: bluk"), "slices[0].kind", "'bluk' is not one of latency, bulk",
                     "did you mean 'bulk'?"),
    "meter below rate": (one("meter_mbps: 5"), "slices[0].meter_mbps",
                         "5 Mbit/s is below rate_mbps=10; the meter would drop guaranteed traffic",
                         "give meter_mbps >= 10"),
    "isolation quoted": (one("isolation: 'yes'"), "slices[0].isolation", "'yes' is a string, expected a bool",
                         "write true or false"),
    "unknown key alias": (one("bandwidth: 3"), "slices[0].bandwidth", "unknown key", "did you mean 'rate_mbps'?"),
    "unknown key typo": (one("kinf: bulk"), "slices[0].kinf", "unknown key", "did you mean 'kind'?"),
    "host in two isolated slices": (
        slices("{" + S + "}", "{name: t, members: [k1-1, west], rate_mbps: 1}"), "slices[1].members",
        "host k1-1 is already in the isolated slice s (slices[0]); a host belongs to at most one isolated slice",
        "remove the host from one of the slices, or set isolation: false on one"),
    "no free id": (slices(*(f"{{name: s{i}, members: [u1-1], rate_mbps: 1, isolation: false}}" for i in range(4096))),
                   "slices[4095].id", "no free slice id: ids 1..4095 are all taken", "merge slices"),
}


@pytest.mark.parametrize("text, key, message, fix", list(BAD_CASES.values()), ids=list(BAD_CASES))
def test_bad_slice_names_key_message_and_fix(text, key, message, fix):
    one_problem(text, key, message, fix)


def test_every_problem_of_every_slice_is_reported_at_once():
    text = slices("{name: a, members: [esat], rate_mbps: 0}", "{name: b, members: [u1-1], rate_mbps: 1, kind: x}")
    assert [p.key for p in problems(text)] == ["slices[0].members[0]", "slices[0].rate_mbps", "slices[1].kind"]


def test_a_slice_naming_a_badly_named_site_reports_only_the_site():
    text = ("name: t\nsites: [{name: East}, {name: west}]\nlinks: [{a: East, b: west, delay_ms: 1}]\n"
            "slices: [{name: s, members: [East, west], rate_mbps: 1}]\n")
    assert [p.key for p in problems(text)] == ["sites[0].name"]


def test_defaults_and_site_expansion():
    topo = parse_yaml_topology(one("max_latency_ms: 30"))
    s = topo.slice("s")
    assert s == SliceSpec("s", 1, ("east", "k3-1"), ("u1-1", "k1-1", "k3-1"), ("east", "west"), 10.0,
                          max_latency_ms=30.0)
    assert isinstance(s.rate_mbps, float)


def test_omitted_ids_take_the_lowest_free_after_explicit_ones():
    topo = parse_yaml_topology(slices("{name: a, members: [u1-1], rate_mbps: 1}",
                                      "{name: b, members: [k1-1], rate_mbps: 1, id: 1}",
                                      "{name: c, members: [u3-1], rate_mbps: 1, id: 3}",
                                      "{name: d, members: [k3-1], rate_mbps: 1}"))
    assert [(s.name, s.id) for s in topo.slices] == [("a", 2), ("b", 1), ("c", 3), ("d", 4)]


def test_host_in_an_isolated_and_a_shared_slice_is_allowed():
    topo = parse_yaml_topology(slices("{" + S + "}", "{name: t, members: [k1-1], rate_mbps: 1, isolation: false}"))
    assert [s.isolation for s in topo.slices] == [True, False]


def test_to_dict_and_summary_carry_slices():
    topo = parse_yaml_topology(one("kind: bulk, meter_mbps: 20, max_loss_pct: 0.5"))
    d = topo.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["slices"] == [{"name": "s", "id": 1, "members": ["east", "k3-1"], "hosts": ["u1-1", "k1-1", "k3-1"],
                            "sites": ["east", "west"], "rate_mbps": 10.0, "max_latency_ms": None,
                            "max_loss_pct": 0.5, "kind": "bulk", "meter_mbps": 20.0, "isolation": True}]
    text = summarize(topo)
    assert ", 1 slice\n" in text
    assert "  slice s (id 1): 3 hosts at east, west; 10 Mbit/s, <= 0.5 % loss, bulk, cap 20 Mbit/s, isolated" in text


def test_slice_lookup_suggests_a_close_name():
    topo = parse_yaml_topology(one("id: 2"))
    with pytest.raises(UnknownNameError, match="has no slice 'z'; remove it or use one of the known slices: s"):
        topo.slice("z")


def test_slice_lines_are_limited():
    many = [SliceSpec(f"s{i}", i, ("a",), ("u1-1",), ("a",), 1.0, isolation=False) for i in range(1, 13)]
    lines = slice_lines(many, limit=10)
    assert len(lines) == 11 and lines[-1] == "... 2 more"
    assert lines[0] == "s1 (id 1): 1 host at a; 1 Mbit/s, latency, shared"


def test_node_link_graph_carries_slices():
    doc = {"graph": {"name": "nl", "slices": [{"name": "s", "members": ["a"], "rate_mbps": 2}]},
           "nodes": [{"id": "a"}, {"id": "b"}], "links": [{"source": "a", "target": "b", "delay_ms": 1}]}
    topo = parse_node_link(json.dumps(doc), "nl.json")
    assert topo.slice("s").hosts == ("u1-1", "k1-1")


# runtime requests


@pytest.fixture
def loaded():
    return parse_yaml_topology(one("id: 5"))


def test_parse_slice_accepts_a_good_request(loaded):
    spec = parse_slice({"name": "bulk1", "members": ["u3-1"], "rate_mbps": 2, "kind": "bulk"}, loaded)
    assert (spec.id, spec.hosts, spec.sites, spec.kind) == (1, ("u3-1",), ("west",), "bulk")


@pytest.mark.parametrize("body, message", [
    ("gold", "request: slice: must be a mapping (JSON object), got str; send e.g."),
    ({"name": "s", "members": ["u3-1"], "rate_mbps": 1},
     "request: slice.name: 's' is already the name of an existing slice; give each slice a unique name"),
    ({"name": "t", "members": ["u3-1"], "rate_mbps": 1, "id": 5},
     "request: slice.id: 5 is already the id of slice s; give each slice a unique id"),
    ({"name": "t", "members": ["k1-1"], "rate_mbps": 1},
     "request: slice.members: host k1-1 is already in the isolated slice s; a host belongs to at most one"),
    ({"name": "t", "members": ["wset"], "rate_mbps": 1},
     "request: slice.members[0]: no site or host is named 'wset'; did you mean 'west'?"),
])
def test_parse_slice_refuses_with_the_reason(loaded, body, message):
    with pytest.raises(TopologyError) as info:
        parse_slice(body, loaded)
    assert str(info.value).startswith(message), str(info.value)


def test_parse_slice_takes_the_lowest_id_free_of_existing_slices():
    topo = parse_yaml_topology(one("id: 1"))
    assert parse_slice({"name": "t", "members": ["u3-1"], "rate_mbps": 1}, topo).id == 2
