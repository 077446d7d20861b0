"""Fast-reroute backups: each one avoids the primary link it protects and reaches its destination."""

from pathlib import Path

import networkx as nx
import pytest

from cpn_net.baseline import interface_plan, site_graph
from cpn_net.emulation.plan import build_plan
from cpn_net.model import addressing, load_topology
from cpn_net.model.yaml_format import parse_yaml_topology
from cpn_net.srv6.frr import BACKUP_METRIC, backup_routes, post_convergence_path
from cpn_net.srv6.igp import Igp
from cpn_net.srv6.segments import follow_segments
from cpn_net.srv6.sids import end_dt6_sid

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def network(topology):
    plan = build_plan(topology)
    return site_graph(plan), interface_plan(plan)


def backups_by_target(G, site, interfaces, igp):
    """``{target site: backup spec}``, checking each target gets its locator and LAN with one spec."""
    by_prefix = {spec["dst"]: spec for spec in backup_routes(G, site, interfaces, igp=igp)}
    out = {}
    for target in G.nodes:
        sid = G.nodes[target]["id"]
        locator, lan = str(addressing.locator(sid)), str(addressing.site_lan(sid))
        assert (locator in by_prefix) == (lan in by_prefix)
        if locator in by_prefix:
            assert {k: v for k, v in by_prefix[locator].items() if k != "dst"} == \
                {k: v for k, v in by_prefix[lan].items() if k != "dst"}
            out[target] = by_prefix[locator]
    assert len(by_prefix) == 2 * len(out)
    return out


def backup_path(G, site, target, spec, interfaces, igp):
    """The sites a packet takes on the backup while the other routers still use the pre-failure IGP."""
    if "gateway" in spec:
        neighbour = interfaces.neighbour_on(site, spec["oif"])
        assert spec["gateway"] == str(addressing.wan_address(G.edges[site, neighbour]["number"],
                                                              G.nodes[neighbour]["id"]))
        return (site,) + igp.path(neighbour, target)
    encap = spec["encap"]
    assert (encap["type"], encap["mode"]) == ("seg6", "encap")
    travel = list(reversed(encap["segs"]))  # specs hold SRH order
    assert travel[-1] == str(end_dt6_sid(G.nodes[target]["id"], 254))
    return follow_segments(G, site, travel, igp=igp)


@pytest.mark.parametrize("source", ["diamond.yaml", "tiny.yaml", "east-data-west-compute.yaml",
                                    "abilene.graphml"])
def test_every_backup_avoids_its_primary_link_and_reaches_its_destination(source):
    G, interfaces = network(load_topology(TOPOLOGIES / source))
    igp = Igp(G)
    kinds = set()
    for site in G.nodes:
        backups = backups_by_target(G, site, interfaces, igp)
        for target in G.nodes:
            if target == site:
                continue
            primary = (site, igp.next_hop(site, target))
            reduced = G.copy()
            reduced.remove_edge(*primary)
            if not nx.has_path(reduced, site, target):
                assert target not in backups, (site, target)
                continue
            spec = backups[target]
            assert spec["priority"] == BACKUP_METRIC > 1024
            path = backup_path(G, site, target, spec, interfaces, igp)
            assert path[0] == site and path[-1] == target, path
            assert frozenset(primary) not in {frozenset(p) for p in zip(path, path[1:])}, (site, target, path)
            assert path == post_convergence_path(G, site, target, primary)
            assert interfaces.wan_ifname(site, path[1]) == spec["oif"]
            kinds.add("gateway" if "gateway" in spec else "encap")
    if source != "tiny.yaml":
        assert kinds == {"gateway", "encap"}  # both kinds are exercised


def test_the_diamond_backup_at_b_for_d_is_an_encapsulation_around_the_cut():
    G, interfaces = network(load_topology(TOPOLOGIES / "diamond.yaml"))
    igp = Igp(G)
    spec = backups_by_target(G, "b", interfaces, igp)["d"]
    # a still sends d's traffic back through b: a plain route to a would loop.
    assert igp.path("a", "d") == ("a", "b", "d") and "encap" in spec
    assert backup_path(G, "b", "d", spec, interfaces, igp) == ("b", "a", "c", "d")


TREE = """
name: tree
sites: [{name: a, id: 1}, {name: b, id: 2}, {name: c, id: 3}, {name: d, id: 4}]
links: [{a: a, b: b, delay_ms: 1}, {a: b, b: c, delay_ms: 1}, {a: b, b: d, delay_ms: 1}]
"""

LOLLIPOP = """
name: lollipop
sites: [{name: a, id: 1}, {name: b, id: 2}, {name: c, id: 3}, {name: d, id: 4}]
links: [{a: a, b: b, delay_ms: 1}, {a: b, b: c, delay_ms: 1}, {a: a, b: c, delay_ms: 1}, {a: c, b: d, delay_ms: 1}]
"""


def test_a_tree_has_no_backups_because_every_failure_cuts_it():
    G, interfaces = network(parse_yaml_topology(TREE, "tree.yaml"))
    assert all(backup_routes(G, site, interfaces) == [] for site in G.nodes)


def test_only_destinations_a_failure_leaves_reachable_get_backups():
    G, interfaces = network(parse_yaml_topology(LOLLIPOP, "lollipop.yaml"))
    igp = Igp(G)
    assert sorted(backups_by_target(G, "a", interfaces, igp)) == ["b", "c", "d"]
    assert sorted(backups_by_target(G, "c", interfaces, igp)) == ["a", "b"]  # c-d is d's only link
    assert backup_routes(G, "d", interfaces) == []
    assert post_convergence_path(G, "c", "d", ("c", "d")) is None
