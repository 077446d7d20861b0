"""From declared SR policies to compiled specs: destinations, paths, bandwidth reservations."""

import ipaddress
import random
from pathlib import Path

import networkx as nx
import pytest

from cpn_net.baseline import interface_plan, site_graph
from cpn_net.emulation.plan import build_plan
from cpn_net.model import load_topology
from cpn_net.model.policies import parse_policy
from cpn_net.model.topology import SRPolicySpec
from cpn_net.model.yaml_format import parse_yaml_topology
from cpn_net.srv6.errors import InfeasiblePath, PolicyError
from cpn_net.srv6.igp import Igp, igp_metric_us
from cpn_net.srv6.paths import path_along
from cpn_net.srv6.planner import (HostInfo, destination_of, hosts_of_plan, plan_policy,
                                  reservations_of)
from cpn_net.srv6.segments import follow_segments
from cpn_net.srv6.sids import end_dt6_sid, end_dx6_sid

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"
K4 = ipaddress.IPv6Address("2001:db8:4::2:1")


class Network:
    def __init__(self, topology):
        self.topology = topology
        self.plan = build_plan(topology)
        self.G = site_graph(self.plan)
        self.interfaces = interface_plan(self.plan)
        self.hosts = hosts_of_plan(self.plan)

    def spec(self, **body):
        return parse_policy(body, self.topology)

    def plan_policy(self, spec, **kw):
        return plan_policy(self.G, spec, self.interfaces, self.hosts, **kw)


@pytest.fixture(scope="module")
def diamond():
    return Network(load_topology(TOPOLOGIES / "diamond.yaml"))


# ------------------------------------------------------------------ destinations
def test_hosts_of_the_plan_carry_site_kind_index_and_address(diamond):
    assert diamond.hosts["k4-1"] == HostInfo("k4-1", "d", 4, "compute", 1, K4)
    assert sorted(diamond.hosts) == sorted(f"{k}{i}-1" for k in "uk" for i in range(1, 5))


def test_a_site_ends_at_its_lan_with_end_dt6_in_the_main_table(diamond):
    dest = destination_of(diamond.spec(name="p", headend="a", to="d"), diamond.G, diamond.hosts)
    assert (dest.site, str(dest.prefix), dest.final_sid) == ("d", "2001:db8:4::/64", end_dt6_sid(4, 254))


def test_a_host_ends_at_its_address_with_end_dx6_towards_it(diamond):
    dest = destination_of(diamond.spec(name="p", headend="a", to="k4-1"), diamond.G, diamond.hosts)
    assert (dest.site, str(dest.prefix), dest.final_sid) == ("d", "2001:db8:4::2:1/128",
                                                             end_dx6_sid(4, "compute", 1))


def test_a_prefix_ends_at_the_site_whose_lan_holds_it(diamond):
    spec = diamond.spec(name="p", headend="a", to="2001:db8:3::2:0/112")
    assert spec.to_kind == "prefix"
    dest = destination_of(spec, diamond.G, diamond.hosts)
    assert (dest.site, str(dest.prefix), dest.final_sid) == ("c", "2001:db8:3::2:0/112", end_dt6_sid(3, 254))


def test_a_prefix_outside_every_lan_is_refused_with_the_fix(diamond):
    spec = diamond.spec(name="svc", headend="a", to="2001:db8:ffff::/64")  # the model accepts service prefixes
    with pytest.raises(PolicyError) as err:
        destination_of(spec, diamond.G, diamond.hosts)
    assert str(err.value) == ("policy 'svc': prefix 2001:db8:ffff::/64 is inside no site's LAN, so no router can "
                              "decapsulate for it; give `to` as a site or a host")


@pytest.mark.parametrize("spec, message", [
    (SRPolicySpec("p", "a", "site", "zz"), "policy 'p': to='zz' is not a site of this network"),
    (SRPolicySpec("p", "a", "host", "k9-1"), "policy 'p': to='k9-1' is not a host of this network"),
])
def test_unknown_destinations_are_named(diamond, spec, message):
    with pytest.raises(PolicyError) as err:
        destination_of(spec, diamond.G, diamond.hosts)
    assert str(err.value) == message


# ------------------------------------------------------------------ planning
def test_a_policy_to_a_host_at_the_headends_own_site_is_refused(diamond):
    with pytest.raises(PolicyError) as err:
        diamond.plan_policy(SRPolicySpec("p", "a", "host", "k1-1"))
    assert str(err.value) == ("policy 'p': headend a is the destination's own site; "
                              "a policy steers traffic between two sites")


def test_a_flow_policy_needs_a_table_and_then_lives_in_it(diamond):
    spec = diamond.spec(name="p", headend="a", to="k4-1", flow={"proto": "udp", "src_port": 9, "dst_port": 53})
    with pytest.raises(PolicyError, match="policy 'p': a flow policy needs its own routing table"):
        diamond.plan_policy(spec)
    planned = diamond.plan_policy(spec, table=1007)
    (route,), (rule,) = planned.compiled.routes, planned.compiled.rules
    assert route["table"] == rule["table"] == 1007 and route["dst"] == "2001:db8:4::2:1/128"
    assert (rule["iifname"], rule["ip_proto"], rule["sport_range"], rule["dport_range"]) == \
        ("r1-eth0", 17, "9:9", "53:53")
    assert planned.to_dict()["flow"] == {"proto": 17, "src": None, "src_port": 9, "dst_port": 53}


def test_waypoints_shape_the_path_and_the_segments_force_it(diamond):
    planned = diamond.plan_policy(diamond.spec(name="p", headend="a", to="k4-1", waypoints=["c"]))
    assert planned.path.sites == ("a", "c", "d") and planned.links() == {("a", "c"), ("c", "d")}
    assert follow_segments(diamond.G, "a", planned.segments) == ("a", "c", "d")
    assert planned.segments.last == end_dx6_sid(4, "compute", 1)
    assert planned.reservation_mbps is None and reservations_of([planned]) == {}
    shown = planned.to_dict()
    assert (shown["path"], shown["path_delay_ms"], shown["waypoints"], shown["router"]) == \
        (["a", "c", "d"], 10.0, ["c"], "r1")


def test_every_planned_path_is_forced_by_its_segments_and_costs_what_it_claims():
    net = Network(load_topology(TOPOLOGIES / "abilene.graphml"))
    igp = Igp(net.G)
    rng = random.Random(7)
    sites = sorted(net.G.nodes)
    checked = 0
    for headend in sites:
        for to in sites:
            if to == headend:
                continue
            others = [s for s in sites if s not in (headend, to)]
            body = {"name": "p", "headend": headend, "to": to, "objective": rng.choice(["min_delay", "min_hops"])}
            if rng.random() < 0.4:
                body["waypoints"] = [rng.choice(others)]
            try:
                planned = net.plan_policy(net.spec(**body), igp=igp)
            except InfeasiblePath as err:
                assert err.constraint == "waypoints" and body.get("waypoints"), err
                continue
            path = planned.path
            assert path.sites[0] == headend and path.sites[-1] == to
            assert len(set(path.sites)) == len(path.sites)
            assert follow_segments(net.G, headend, planned.segments, igp=igp) == path.sites
            assert path == path_along(net.G, path.sites)
            assert set(body.get("waypoints", ())) <= set(path.sites)
            if "waypoints" not in body:
                if body["objective"] == "min_delay":
                    cost = sum(igp_metric_us(net.G.edges[u, v]["delay_ms"]) for u, v in path.links)
                    assert cost == igp.distance_us(headend, to)
                else:
                    assert path.hops == nx.shortest_path_length(net.G, headend, to)
            checked += 1
    assert checked >= 100  # of 110 ordered pairs; the rest ask for waypoints that force a loop


# ------------------------------------------------------------------ bandwidth
TRIANGLE = """
name: triangle
sites: [{name: a, id: 1}, {name: b, id: 2}, {name: c, id: 3}]
links:
  - {a: a, b: b, delay_ms: 1, rate_mbps: 100}
  - {a: b, b: c, delay_ms: 1, rate_mbps: 100}
  - {a: a, b: c, delay_ms: 10, rate_mbps: 30}
"""


@pytest.fixture(scope="module")
def triangle():
    return Network(parse_yaml_topology(TRIANGLE, "triangle.yaml"))


def bandwidth(net, name, mbps, **kw):
    return net.spec(name=name, headend="a", to="c", objective="bandwidth", bandwidth_mbps=mbps, **kw)


def test_a_bandwidth_policy_reserves_its_rate_on_every_link_of_its_path(triangle):
    big = triangle.plan_policy(bandwidth(triangle, "big", 80))
    assert big.path.sites == ("a", "b", "c") and big.reservation_mbps == 80
    assert reservations_of([big]) == {("a", "b"): 80, ("b", "c"): 80}
    small = triangle.plan_policy(bandwidth(triangle, "small", 20), reservations_mbps=reservations_of([big]))
    assert small.path.sites == ("a", "b", "c")  # 20 Mbit/s left fits exactly
    assert reservations_of([big, small]) == {("a", "b"): 100, ("b", "c"): 100}


def test_a_bandwidth_policy_that_no_longer_fits_names_the_bottleneck_link(triangle):
    big = triangle.plan_policy(bandwidth(triangle, "big", 80))
    with pytest.raises(InfeasiblePath) as err:
        triangle.plan_policy(bandwidth(triangle, "second", 50), reservations_mbps=reservations_of([big]))
    assert str(err.value) == "no path a->c with 50 Mbit/s: bottleneck link a-c has 30 Mbit/s residual"
    assert (err.value.constraint, err.value.links) == ("bandwidth_mbps", (("a", "c"),))
    fits = triangle.plan_policy(bandwidth(triangle, "second", 30), reservations_mbps=reservations_of([big]))
    assert fits.path.sites == ("a", "c")  # the slow direct link still has room
