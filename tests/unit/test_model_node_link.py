"""Tests of the networkx node-link JSON importer."""

import json

import networkx as nx
import pytest

from cpn_net.model import TopologyError, load_topology
from cpn_net.model.node_link import parse_node_link
from cpn_net.model.schema import DEFAULT_SERVICE_NOTE

FILE = "graph.json"


def doc(nodes=None, links=None, **top):
    body = {"nodes": [{"id": "a"}, {"id": "b"}] if nodes is None else nodes,
            "links": [{"source": "a", "target": "b", "delay_ms": 1}] if links is None else links}
    body.update(top)
    return json.dumps(body)


def problems(text):
    with pytest.raises(TopologyError) as info:
        parse_node_link(text, FILE)
    return info.value.problems


BAD_CASES = {
    "JSON syntax error": ('{"nodes": [}', "line 1, column 12", "JSON syntax error: Expecting value",
                          "fix the JSON"),
    "top level not object": ("[1, 2]", "(top level)", "the document is a list, expected a node-link object",
                             '{"nodes": [...], "links": [...]}'),
    "unknown top key": (doc(nodez=[]), "nodez", "unknown key", "did you mean 'nodes'?"),
    "directed": (doc(directed=True), "directed", "true is not supported", "G.to_undirected()"),
    "multigraph": (doc(multigraph=True), "multigraph", "true is not supported", "merge parallel links"),
    "links and edges": (doc(edges=[]), "edges", "given together with links", "under one key"),
    "nodes missing": (json.dumps({"links": []}), "nodes", "missing", 'list the sites: "nodes"'),
    "nodes not a list": (json.dumps({"nodes": {}}), "nodes", "{} is a mapping, expected a list", "JSON array"),
    "no nodes": (doc(nodes=[], links=[]), "nodes", "the topology has no sites", "add at least one site"),
    "node not object": (doc(nodes=[{"id": "a"}, 3], links=[]), "nodes[1]", "3 is an int, expected a site mapping",
                        "key: value pairs"),
    "node id missing": (doc(nodes=[{"id": "a"}, {"lat": 1}], links=[]), "nodes[1].id",
                        "missing, expected a site name or an int site id", 'e.g. "id": "beijing"'),
    "node id bool": (doc(nodes=[{"id": True}], links=[]), "nodes[0].id", "true is a bool", "give every node an id"),
    "node id float": (doc(nodes=[{"id": 1.5}], links=[]), "nodes[0].id", "1.5 is a float", "give every node an id"),
    "int id zero": (json.dumps(nx.node_link_data(nx.path_graph(2), edges="links")), "nodes[0].id",
                    "0 is not a site id (1..9999)", "first_label=1"),
    "invalid site name": (doc(nodes=[{"id": "Beijing"}], links=[]), "nodes[0].id", "'Beijing' is not a valid name",
                          "e.g. 'beijing'"),
    "name with string id": (doc(nodes=[{"id": "a", "name": "x"}, {"id": "b"}]), "nodes[0].name",
                            "given together with a string id", "drop name"),
    "site_id with int id": (doc(nodes=[{"id": 1, "site_id": 2}], links=[]), "nodes[0].site_id",
                            "given together with an int id", "drop site_id"),
    "site_id out of range": (doc(nodes=[{"id": "a", "site_id": 0}], links=[]), "nodes[0].site_id",
                             "0 must be in [1, 9999]", "give an id from 1 to 9999"),
    "lat and Latitude": (doc(nodes=[{"id": "a", "lat": 1, "Latitude": 1, "lon": 2}], links=[]),
                         "nodes[0].Latitude", "given together with lat", "keep one of lat and Latitude"),
    "Latitude out of range": (doc(nodes=[{"id": "a", "Latitude": 95, "Longitude": 2}], links=[]),
                              "nodes[0].Latitude", "95 must be in [-90, 90]", "latitude in degrees"),
    "Longitude without Latitude": (doc(nodes=[{"id": "a", "Longitude": 2}], links=[]), "nodes[0].Latitude",
                                   "missing while Longitude is given", "give both lat and lon"),
    "unknown node attribute": (doc(nodes=[{"id": "a", "colour": "red"}], links=[]), "nodes[0].colour",
                               "unknown key", "known keys: id, site_id, lat, lon, clients, compute"),
    "too many clients": (doc(nodes=[{"id": "a", "clients": 120}], links=[]), "nodes[0].clients",
                         "120 must be in [0, 99]", "give 0 to 99 clients"),
    "link without source": (doc(links=[{"target": "b", "delay_ms": 1}]), "links[0].source", "missing",
                             "give both ends of the link: source and target"),
    "link to unknown node": (doc(links=[{"source": "a", "target": "bb", "delay_ms": 1}]), "links[0].target",
                             "no node has id 'bb'", "did you mean 'b'?"),
    "link end of wrong type": (doc(links=[{"source": "a", "target": [1], "delay_ms": 1}]), "links[0].target",
                               "no node has id [1]", "known node ids: a, b"),
    "negative delay attribute": (doc(links=[{"source": "a", "target": "b", "delay_ms": -2}]), "links[0].delay_ms",
                                 "-2 must be >= 0", "0 or more"),
    "unknown link attribute": (doc(links=[{"source": "a", "target": "b", "delay_ms": 1, "weight": 3}]),
                               "links[0].weight", "unknown key", "known keys: source, target, delay_ms"),
    "self-loop": (doc(links=[{"source": "a", "target": "a", "delay_ms": 1}]), "links[0].target",
                  "cannot join a site to itself", "two different sites"),
    "duplicate link": (doc(links=[{"source": "a", "target": "b", "delay_ms": 1},
                                  {"source": "b", "target": "a", "delay_ms": 1}]), "links[1]",
                       "b-a is already linked by links[0]", "one link per pair"),
    "delay without coordinates": (doc(links=[{"source": "a", "target": "b"}]), "links[0].delay_ms",
                                  "sites 'a' and 'b' have no coordinates", "give delay_ms, or lat/lon"),
    "disconnected under edges": (json.dumps({"nodes": [{"id": "a"}, {"id": "b"}], "edges": []}), "edges",
                                 "2 disconnected groups: {a}; {b}", "add links joining the groups"),
    "graph not object": (doc(graph=[]), "graph", "[] is a list, expected a mapping", "graph attributes"),
    "unknown graph key": (doc(graph={"nmae": "x"}), "graph.nmae", "unknown key", "did you mean 'name'?"),
    "graph bad route factor": (doc(graph={"route_factor": -1}), "graph.route_factor", "-1 must be >= 1",
                               "factor of 1 or more"),
    "graph service bad anycast": (doc(graph={"services": [{"name": "s", "anycast": "fd00::9", "port": 1}]}),
                                  "graph.services[0].anycast", "the WAN link range fd00::/16",
                                  "pick an anycast address outside"),
}


@pytest.mark.parametrize("text, key, message, fix", list(BAD_CASES.values()), ids=list(BAD_CASES))
def test_bad_node_link_names_key_message_and_fix(text, key, message, fix):
    found = problems(text)
    at_key = [p for p in found if p.key == key]
    assert at_key, "\n".join(map(str, found))
    p = at_key[0]
    assert p.file == FILE and message in p.message and fix in p.fix, str(p)


def test_networkx_multidigraph_reports_both_flags():
    keys = [p.key for p in problems(json.dumps(nx.node_link_data(nx.MultiDiGraph([(1, 2)]), edges="links")))]
    assert keys[:2] == ["directed", "multigraph"]


# --- good input ---


def make_graph():
    g = nx.Graph(name="pair", route_factor=1.5)
    g.add_node("beijing", lat=39.9, lon=116.4, clients=2, compute=0)
    g.add_node("guian", Latitude=26.4, Longitude=106.4, compute=[{"workers": 8}])
    g.add_edge("beijing", "guian", rate_mbps=100)
    return g


@pytest.mark.parametrize("edges_key", ["links", "edges"])
def test_networkx_written_graph_loads(edges_key):
    topo = parse_node_link(json.dumps(nx.node_link_data(make_graph(), edges=edges_key)), FILE)
    assert (topo.name, topo.route_factor) == ("pair", 1.5)
    assert [(s.name, s.id, len(s.clients), len(s.compute)) for s in topo.sites] == [
        ("beijing", 1, 2, 0), ("guian", 2, 1, 1)]
    assert topo.site("guian").lat == 26.4 and topo.compute_nodes()[0].workers == 8
    link = topo.link("beijing", "guian")
    assert (link.rate_mbps, link.delay_source) == (100.0, "derived")
    assert link.delay_ms == round(link.distance_km * 1.5 * 4.9 / 1000, 2)
    assert topo.notes == (DEFAULT_SERVICE_NOTE,) and topo.services[0].compute == ("k2-1",)


def test_int_ids_are_site_ids_and_names_default():
    g = nx.Graph()
    g.add_node(7, name="guian")
    g.add_node(3)
    g.add_edge(7, 3, delay_ms=2)
    topo = parse_node_link(json.dumps(nx.node_link_data(g, edges="links")), FILE)
    assert [(s.name, s.id) for s in topo.sites] == [("guian", 7), ("site3", 3)]
    assert topo.link("guian", "site3").node_name == "l3x7"


def test_string_ids_with_site_id():
    topo = parse_node_link(doc(nodes=[{"id": "a", "site_id": 40}, {"id": "b"}]), FILE)
    assert [(s.name, s.id) for s in topo.sites] == [("a", 40), ("b", 1)]


def test_graph_services_replace_the_default():
    services = [{"name": "echo", "anycast": "2001:db8:ffff::7", "port": 7, "compute": ["b"]}]
    topo = parse_node_link(doc(graph={"services": services, "description": "d"}), FILE)
    assert [(s.name, s.compute) for s in topo.services] == [("echo", ("k2-1",))]
    assert topo.notes == () and topo.description == "d"


def test_default_service_can_be_turned_off(tmp_path):
    path = tmp_path / "pair.json"
    path.write_text(doc())
    topo = load_topology(path, default_service=False)
    assert topo.services == () and topo.name == "pair" and topo.source == str(path)


def test_no_default_service_without_compute():
    topo = parse_node_link(doc(nodes=[{"id": "a", "compute": 0}, {"id": "b", "compute": []}]), FILE)
    assert topo.services == () and topo.notes == ()
