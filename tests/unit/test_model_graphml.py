"""Tests of the Topology Zoo GraphML importer."""

import pytest

from cpn_net.model import DEFAULT_LINK_DELAY_MS, TopologyError, load_topology
from cpn_net.model.graphml import parse_graphml
from cpn_net.model.schema import DEFAULT_SERVICE_NOTE

FILE = "zoo.graphml"
NS = "http://graphml.graphdrawing.org/xmlns"
KEYS = (
    '<key id="d0" for="node" attr.name="Latitude" attr.type="double"/>'
    '<key id="d1" for="node" attr.name="Longitude" attr.type="double"/>'
    '<key id="d2" for="node" attr.name="label" attr.type="string"/>'
    '<key id="d3" for="graph" attr.name="label" attr.type="string"/>'
    '<key id="d4" for="graph" attr.name="Network" attr.type="string"/>'
    '<key id="d5" for="edge" attr.name="LinkSpeedRaw" attr.type="double"/>'
    '<key id="d6" for="node" attr.name="Internal" attr.type="int"><default>1</default></key>'
)


def node(node_id, label=None, lat=None, lon=None):
    data = "".join(f'<data key="{k}">{v}</data>' for k, v in (("d2", label), ("d0", lat), ("d1", lon)) if v is not None)
    return f'<node id="{node_id}">{data}</node>'


def edge(a, b, bits=None):
    data = f'<data key="d5">{bits}</data>' if bits is not None else ""
    return f'<edge source="{a}" target="{b}">{data}</edge>'


def graphml(*items, graph_data='<data key="d3">Test Net</data>', edgedefault="undirected"):
    body = graph_data + "".join(items)
    graph = f'<graph edgedefault="{edgedefault}">{body}</graph>'
    return f'<?xml version="1.0"?><graphml xmlns="{NS}">{KEYS}{graph}</graphml>'


def problems(data, **options):
    with pytest.raises(TopologyError) as info:
        parse_graphml(data, FILE, **options)
    return info.value.problems


PAIR = graphml(node("a", "A", 0, 0), node("b", "B", 0, 1), edge("a", "b"))

BAD_CASES = {
    "malformed XML": ('<graphml><graph edgedefault="undirected"><node id="a">', {}, "line 1, column 55",
                      "malformed XML: no element found", "fix the XML or export the file again"),
    "not XML at all": ("name: tiny\n", {}, "line 1, column 1", "malformed XML: syntax error", "fix the XML"),
    "not GraphML": ("<html><body/></html>", {}, "(top level)", "the root element is <html>, not <graphml>",
                    "give a GraphML file"),
    "no graph element": (f'<graphml xmlns="{NS}">{KEYS}</graphml>', {}, "(top level)", "no <graph> element",
                         "one <graph> holding nodes and edges"),
    "no nodes": (graphml(), {}, "(graph)", "the graph has no nodes", "at least one node"),
    "duplicate node id": (graphml(node("a"), node("a")), {}, "node 'a'", "declared twice", "unique id"),
    "node without id": (graphml(node("a"), "<node/>"), {}, "node[1]", "has no id attribute", "give every <node> an id"),
    "edge without source": (graphml(node("a"), node("b"), '<edge target="b"/>'), {}, "edge[0].source", "missing",
                            "give every <edge> a source attribute"),
    "edge without target": (graphml(node("a"), node("b"), edge("a", "b"), '<edge source="b"/>'), {},
                            "edge[1].target", "missing", "a target attribute naming a node"),
    "edge to undeclared node": (graphml(node("n1"), node("n2"), edge("n1", "n3")), {}, "edge[0].target",
                                "'n3' is not a declared node", "known node ids: n1, n2"),
    "clients per site too many": (PAIR, {"clients_per_site": 100}, "clients_per_site", "100 must be in [0, 99]",
                                  "give 0 to 99 clients"),
    "compute per site negative": (PAIR, {"compute_per_site": -1}, "compute_per_site", "-1 must be in [0, 99]",
                                  "give 0 to 99 compute nodes"),
    "compute per site bool": (PAIR, {"compute_per_site": True}, "compute_per_site", "true is a bool, expected an int",
                              "whole number"),
    "route factor below 1": (PAIR, {"route_factor": 0.8}, "route_factor", "0.8 must be >= 1",
                             "never shorter than the great circle"),
}


@pytest.mark.parametrize("data, options, key, message, fix", list(BAD_CASES.values()), ids=list(BAD_CASES))
def test_bad_graphml_names_key_message_and_fix(data, options, key, message, fix):
    found = problems(data, **options)
    at_key = [p for p in found if p.key == key]
    assert at_key, "\n".join(map(str, found))
    assert (at_key[0].file, message in at_key[0].message, fix in at_key[0].fix) == (FILE, True, True), str(at_key[0])


def test_empty_graphml_file(tmp_path):
    path = tmp_path / "empty.graphml"
    path.write_bytes(b"")
    with pytest.raises(TopologyError, match=r"empty\.graphml: \(file\): the file is empty"):
        load_topology(path)


def test_graphml_without_namespace_is_read():
    topo = parse_graphml('<graphml><graph><node id="x"/></graph></graphml>', "plain.graphml")
    assert [s.name for s in topo.sites] == ["x"] and topo.name == "plain"


# --- Topology Zoo quirks become notes, not errors ---

QUIRKY = graphml(
    node("0", "Paris", 48.85, 2.35),
    node("1", "Paris", 45.76, 4.84),  # repeated label
    node("2", "Zürich", 47.37, 8.54),  # non-ASCII label
    node("3", "R1"),  # no coordinates, label reads like a router name
    node("4", "Lonely", 1, 1),  # isolated
    node("5", "Bad", "abc", 3),  # latitude not a number
    node("6", "Half", 5),  # latitude only
    node("7", "Island"),
    node("8"),  # no label
    edge("0", "1", 1e9),
    edge("1", "0", 2e9),  # parallel to the first
    edge("1", "2"),
    edge("2", "3", 1e9),
    edge("2", "2"),  # self-loop
    edge("3", "5"),
    edge("5", "6", -5),  # bad speed
    edge("7", "8"),  # a second, smaller component
)


@pytest.fixture(scope="module")
def quirky():
    return parse_graphml(QUIRKY, FILE)


def test_quirky_sites_are_slugged_deduplicated_and_numbered(quirky):
    assert [(s.name, s.id) for s in quirky.sites] == [
        ("paris", 1), ("paris-2", 2), ("zurich", 3), ("r1-site", 4), ("bad", 5), ("half", 6)]
    assert quirky.name == "test-net"


def test_quirky_coordinates_kept_only_when_usable(quirky):
    assert [(s.lat, s.lon) for s in quirky.sites] == [
        (48.85, 2.35), (45.76, 4.84), (47.37, 8.54), (None, None), (None, None), (None, None)]


def test_quirky_links_merged_and_delays_derived_or_defaulted(quirky):
    got = [(link.a, link.b, link.rate_mbps, link.delay_source) for link in quirky.links]
    assert got == [
        ("paris", "paris-2", 3000.0, "derived"),  # 1 + 2 Gbit/s merged
        ("paris-2", "zurich", None, "derived"),
        ("zurich", "r1-site", 1000.0, "default"),
        ("r1-site", "bad", None, "default"),
        ("bad", "half", None, "default"),
    ]
    assert all(link.delay_ms == DEFAULT_LINK_DELAY_MS for link in quirky.links if link.delay_source == "default")
    assert [link.number for link in quirky.links] == [1, 2, 3, 4, 5]


def test_quirky_notes_explain_every_repair(quirky):
    assert quirky.notes == (
        "dropped 1 self-loop(s): Zürich",
        "merged parallel edges into one link each: Paris-Paris (nodes 0-1, x2)",
        "dropped 3 node(s) not connected to the largest group of 6: Lonely, Island, 8",
        "repeated labels got suffixes: 'Paris' (node '1') is paris-2",
        "site bad: Latitude 'abc' is not a number; ignored",
        "site bad: only one of Latitude/Longitude is usable; coordinates ignored",
        "site half: only one of Latitude/Longitude is usable; coordinates ignored",
        "link bad-half: LinkSpeedRaw '-5' is not a positive number; ignored",
        DEFAULT_SERVICE_NOTE,
        "3 link(s) have an end without coordinates and use the default delay 1 ms: zurich-r1-site, r1-site-bad, "
        "bad-half",
    )


def test_quirky_gets_default_hosts_and_service(quirky):
    assert [h.name for h in quirky.site("zurich").hosts] == ["u3-1", "k3-1"]
    (service,) = quirky.services
    assert (service.name, str(service.anycast), service.port) == ("infer", "2001:db8:ffff::1", 8080)
    assert service.compute == tuple(k.name for k in quirky.compute_nodes())


def test_host_counts_and_service_options():
    topo = parse_graphml(PAIR, FILE, clients_per_site=0, compute_per_site=3, default_service=False)
    assert [len(s.clients) for s in topo.sites] == [0, 0]
    assert [k.name for k in topo.site("a").compute] == ["k1-1", "k1-2", "k1-3"]
    assert topo.services == () and DEFAULT_SERVICE_NOTE not in topo.notes


def test_no_default_service_without_compute():
    assert parse_graphml(PAIR, FILE, compute_per_site=0).services == ()


def test_route_factor_option_scales_derived_delay():
    slow = parse_graphml(PAIR, FILE, route_factor=2.0).links[0]
    assert slow.delay_ms == round(slow.distance_km * 2.0 * 4.9 / 1000, 2)


def test_directed_file_becomes_bidirectional_links():
    topo = parse_graphml(graphml(node("a"), node("b"), edge("a", "b"), edge("b", "a"), edgedefault="directed"), FILE)
    assert len(topo.links) == 1
    assert topo.notes[0] == "the file's edges are directed; each pair of nodes became one bidirectional link"


def test_graph_name_falls_back_to_network_then_file_name():
    by_network = parse_graphml(graphml(node("a"), graph_data='<data key="d4">GÉANT 2</data>'), FILE)
    by_file = parse_graphml(graphml(node("a"), graph_data=""), "dir/My Zoo.graphml")
    assert (by_network.name, by_file.name) == ("geant-2", "my-zoo")


def test_size_ties_keep_the_component_met_first():
    topo = parse_graphml(graphml(node("a"), node("b"), node("c"), node("d"), edge("c", "d"), edge("a", "b")), FILE)
    assert [s.name for s in topo.sites] == ["a", "b"]
    assert "dropped 2 node(s) not connected to the largest group of 2: c, d" in topo.notes


def test_shipped_abilene():
    topo = load_topology("topologies/abilene.graphml")
    assert topo.name == "abilene"
    assert [s.name for s in topo.sites] == [
        "seattle", "sunnyvale", "los-angeles", "denver", "kansas-city", "houston", "chicago", "indianapolis",
        "atlanta", "washington-dc", "new-york"]
    assert len(topo.links) == 14 and all(link.delay_source == "derived" for link in topo.links)
    assert all(link.rate_mbps == 9953.28 for link in topo.links)  # OC-192
    assert topo.notes == (DEFAULT_SERVICE_NOTE,)
    degrees = sorted(topo.graph().degree(), key=lambda item: item[0])
    assert dict(degrees)["kansas-city"] == 3 and dict(degrees)["seattle"] == 2
    # New York-Washington is about 330 km: 1.6 ms of fibre on the great circle, x1.3.
    assert topo.link("new-york", "washington-dc").delay_ms == pytest.approx(2.08, abs=0.01)
