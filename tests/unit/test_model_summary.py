"""Tests of the topology summary."""

from cpn_net.model import load_topology, summarize
from cpn_net.model.yaml_format import parse_yaml_topology


def test_summary_of_tiny():
    assert summarize(load_topology("topologies/tiny.yaml")).splitlines() == [
        "tiny (topologies/tiny.yaml): Three sites in a triangle with one rate-limited and one lossy link",
        "  3 sites, 3 links, 3 clients, 3 compute nodes, 1 service",
        "  link delays: 3 configured, 0 derived, 0 default; 5-20 ms one way",
        "  compute capacity: 1200 req/s (12 workers), 1200 req/s free of background load",
    ]


def test_summary_counts_background_load_and_notes():
    text = summarize(load_topology("topologies/east-data-west-compute.yaml"))
    assert "15 sites, 22 links, 10 clients, 20 compute nodes, 1 service" in text
    assert "link delays: 0 configured, 22 derived, 0 default" in text
    # 20 nodes x 400 req/s; background loads (70,70,60,65,50,45,25,30,20,20 %) x 2 nodes each.
    assert "compute capacity: 8000 req/s (80 workers), 4360 req/s free of background load" in text
    graphml = summarize(load_topology("topologies/abilene.graphml"))
    assert graphml.splitlines()[-1].startswith("  note: no services given")


def test_summary_of_a_single_site_without_links():
    text = summarize(parse_yaml_topology("name: one\nsites: [{name: a, compute: 0, clients: 1}]\n", "one.yaml"))
    assert text.splitlines() == [
        "one (one.yaml)",
        "  1 site, 0 links, 1 client, 0 compute nodes, 0 services",
        "  compute capacity: 0 req/s (0 workers), 0 req/s free of background load",
    ]
