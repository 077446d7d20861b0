"""Tests of SR policies in the topology model: every rule, good and bad, in YAML and node-link JSON."""

import ipaddress
import json
import random
import socket

import networkx as nx
import pytest
import yaml

from cpn_net.model import TopologyError, UnknownNameError, load_topology, summarize
from cpn_net.model.node_link import parse_node_link
from cpn_net.model.schema import POLICY_MODES, POLICY_OBJECTIVES, PROTOCOL_NUMBERS
from cpn_net.model.topology import TOPOLOGY_DICT_VERSION, PolicyFlow, SRPolicySpec
from cpn_net.model.yaml_format import parse_yaml_topology

FILE = "bad.yaml"
# tiny's triangle; east's links are rate-limited (50, 100), centre-west is unshaped.
BASE = """name: t
sites: [{name: east, id: 1}, {name: centre, id: 2}, {name: west, id: 3}]
links:
  - {a: east, b: centre, delay_ms: 5, rate_mbps: 50}
  - {a: centre, b: west, delay_ms: 10}
  - {a: east, b: west, delay_ms: 20, rate_mbps: 100}
"""
P = "name: p, headend: east, to: west"


def policies(*items: str) -> str:
    """The base topology with these flow-style policy mappings (or raw YAML values)."""
    return BASE + "policies: [" + ", ".join(items) + "]\n"


def policy(extra: str) -> str:
    return policies("{" + P + ", " + extra + "}")


def problems(text):
    with pytest.raises(TopologyError) as info:
        parse_yaml_topology(text, FILE)
    return info.value.problems


def one_problem(text, key, message, fix):
    """The problem at ``key`` exists and its message and fix say what we expect."""
    found = problems(text)
    at_key = [p for p in found if p.key == key]
    assert at_key, f"no problem at {key!r}; got:\n" + "\n".join(map(str, found))
    p = at_key[0]
    assert p.file == FILE
    assert message in p.message, str(p)
    assert fix in p.fix, str(p)
    assert str(p) == f"{FILE}: {key}: {p.message}; {p.fix}"


def load(text: str):
    return parse_yaml_topology(text, "good.yaml")


BAD_CASES = {
    # the list and its entries
    "policies not a list": (BASE + "policies: {p: 1}\n", "policies", "is a mapping, expected a list",
                            "write a list"),
    "policy not a mapping": (policies("east"), "policies[0]", "'east' is a string, expected a policy mapping",
                             "write the policy as key: value pairs"),
    "unknown key": (policy("objetive: min_hops"), "policies[0].objetive", "unknown key",
                    "did you mean 'objective'?"),
    "alias via": (policy("via: [centre]"), "policies[0].via", "unknown key", "did you mean 'waypoints'?"),
    # name
    "name missing": (policies("{headend: east, to: west}"), "policies[0].name", "missing", "name the policy"),
    "name invalid": (policies("{name: East West, headend: east, to: west}"), "policies[0].name",
                     "'East West' is not a valid name", "rename it, e.g. 'east-west'"),
    "name duplicate": (policies("{" + P + "}", "{name: p, headend: west, to: east}"), "policies[1].name",
                       "'p' is already the name of policies[0]", "give each policy a unique name"),
    # headend
    "headend missing": (policies("{name: p, to: west}"), "policies[0].headend", "missing",
                        "give the site whose router steers the traffic (east, centre, west)"),
    "headend unknown": (policies("{name: p, headend: esat, to: west}"), "policies[0].headend",
                        "no site is named 'esat'", "did you mean 'east'?"),
    "headend is a host": (policies("{name: p, headend: u1-1, to: west}"), "policies[0].headend",
                          "'u1-1' is a host; the headend is a site", "use its site: headend: east"),
    "headend an int": (policies("{name: p, headend: 1, to: west}"), "policies[0].headend",
                       "1 is an int, expected a name", "use 1-63 lower-case letters"),
    # to
    "to missing": (policies("{name: p, headend: east}"), "policies[0].to", "missing",
                   "give a site name, a host name or a quoted IPv6 prefix"),
    "to unknown site": (policies("{name: p, headend: east, to: wset}"), "policies[0].to",
                        "no site or host is named 'wset'", "did you mean 'west'?"),
    "to unknown host": (policies("{name: p, headend: east, to: k3-9}"), "policies[0].to",
                        "no site or host is named 'k3-9'", "did you mean 'k3-1'?"),
    "to unknown far off": (policies("{name: p, headend: east, to: zzzzzz}"), "policies[0].to",
                           "no site or host is named 'zzzzzz'",
                           "use a site (east, centre, west), a host (u1-1, k1-1, u2-1, ...) or a quoted IPv6 prefix"),
    "to is the headend": (policies("{name: p, headend: east, to: east}"), "policies[0].to",
                          "'east' is also the headend; the headend delivers its own LAN without a policy",
                          "steer to another site"),
    "to a host at the headend": (policies("{name: p, headend: east, to: k1-1}"), "policies[0].to",
                                 "'k1-1' is at the headend's own site east", "a host at another site"),
    "to a site id": (policies("{name: p, headend: east, to: 3}"), "policies[0].to",
                     "3 is an int, expected a site name, a host name or an IPv6 prefix",
                     "write the site's name: to: west"),
    "to a bool": (policies("{name: p, headend: east, to: yes}"), "policies[0].to",
                  "true is a bool, expected a site name", "quoted IPv6 prefix such as '2001:db8:ffff::/64'"),
    "to prefix malformed": (policies("{name: p, headend: east, to: '2001:db8::zz/64'}"), "policies[0].to",
                            "'2001:db8::zz/64' is not an IPv6 address or prefix", "quoted, e.g. '2001:db8:ffff::/64'"),
    "to IPv4 prefix": (policies("{name: p, headend: east, to: 10.0.0.0/8}"), "policies[0].to",
                       "'10.0.0.0/8' is not an IPv6 address or prefix", "write an IPv6 address or prefix"),
    "to prefix with host bits": (policies("{name: p, headend: east, to: '2001:db8:ffff::1/64'}"), "policies[0].to",
                                 "'2001:db8:ffff::1/64' has bits set after the /64 prefix length",
                                 "write the network address: '2001:db8:ffff::/64'"),
    "to multicast": (policies("{name: p, headend: east, to: 'ff02::1'}"), "policies[0].to",
                     "'ff02::1' is multicast, which is never routed", "steer a routable unicast prefix"),
    "to link-local": (policies("{name: p, headend: east, to: 'fe80::/64'}"), "policies[0].to",
                      "'fe80::/64' is link-local", "steer a routable unicast prefix"),
    "to a locator": (policies("{name: p, headend: east, to: 'fcbb:bb00:3::/48'}"), "policies[0].to",
                     "lies in the SRv6 locator area fcbb:bb00::/32; SIDs are reached through the IGP",
                     "steer a site (to: east, centre, west), a host, or a service prefix"),
    "to a WAN link": (policies("{name: p, headend: east, to: 'fd00:2::/64'}"), "policies[0].to",
                      "lies in the WAN link range fd00::/16", "a service prefix"),
    "to inside the headend LAN": (policies("{name: p, headend: east, to: '2001:db8:1::2:1'}"), "policies[0].to",
                                  "lies in the LAN of the headend east (2001:db8:1::/64)",
                                  "steer a prefix outside 2001:db8:1::/64, or choose another headend"),
    "to a LAN of a missing site": (policies("{name: p, headend: east, to: '2001:db8:9::/64'}"), "policies[0].to",
                                   "lies in the LAN of site 9 (2001:db8:9::/64), which no site of this topology has",
                                   "steer an existing site by name"),
    # flow
    "flow not a mapping": (policy("flow: udp"), "policies[0].flow", "'udp' is a string, expected a mapping",
                           "write key: value pairs"),
    "flow empty": (policy("flow: {}"), "policies[0].flow", "empty: it narrows nothing",
                   "give proto, src, src_port or dst_port, or drop flow"),
    "flow unknown key": (policy("flow: {proto: udp, dport: 53}"), "policies[0].flow.dport", "unknown key",
                         "did you mean 'dst_port'?"),
    "flow dst": (policy("flow: {proto: udp, dst: '2001:db8:3::2:1'}"), "policies[0].flow.dst",
                 "the destination of a policy is its to", "drop flow.dst and set the policy's to"),
    "proto upper case": (policy("flow: {proto: UDP}"), "policies[0].flow.proto", "'UDP' is not a known protocol name",
                         "did you mean 'udp'?"),
    "proto icmp": (policy("flow: {proto: icmp}"), "policies[0].flow.proto", "'icmp' is not a known protocol name",
                   "did you mean 'icmpv6'?"),
    "proto quoted number": (policy("flow: {proto: '17'}"), "policies[0].flow.proto",
                            "'17' is not a known protocol name", "write 17 without quotes"),
    "proto 0": (policy("flow: {proto: 0}"), "policies[0].flow.proto", "0 means any protocol to Linux policy routing",
                "omit proto to match every protocol"),
    "proto 1": (policy("flow: {proto: 1}"), "policies[0].flow.proto", "1 is ICMP for IPv4", "write proto: icmpv6"),
    "proto 256": (policy("flow: {proto: 256}"), "policies[0].flow.proto", "256 must be in [1, 255]",
                  "use tcp, udp, sctp, icmpv6 or a protocol number 1..255"),
    "proto bool": (policy("flow: {proto: true}"), "policies[0].flow.proto",
                   "true is a bool, expected a protocol name or number", "use tcp, udp"),
    "port without proto": (policy("flow: {dst_port: 5001}"), "policies[0].flow.dst_port",
                           "5001 needs proto tcp, udp or sctp, but no proto is given",
                           "add proto: udp (or tcp, sctp), or drop dst_port"),
    "port with icmpv6": (policy("flow: {proto: icmpv6, src_port: 4000}"), "policies[0].flow.src_port",
                         "4000 needs a protocol with ports, but proto is icmpv6",
                         "use proto tcp, udp or sctp, or drop src_port"),
    "port with a numbered portless proto": (policy("flow: {proto: 47, dst_port: 1}"), "policies[0].flow.dst_port",
                                            "needs a protocol with ports, but proto is 47", "drop dst_port"),
    "port 0": (policy("flow: {proto: tcp, dst_port: 0}"), "policies[0].flow.dst_port", "0 must be in [1, 65535]",
               "give a port from 1 to 65535"),
    "port too big": (policy("flow: {proto: tcp, src_port: 70000}"), "policies[0].flow.src_port",
                     "70000 must be in [1, 65535]", "give a port from 1 to 65535"),
    "port bool": (policy("flow: {proto: tcp, dst_port: true}"), "policies[0].flow.dst_port",
                  "true is a bool, expected an int", "whole number"),
    "src outside the headend LAN": (policy("flow: {src: '2001:db8:3::1:1'}"), "policies[0].flow.src",
                                    "'2001:db8:3::1:1' is outside the LAN of the headend east (2001:db8:1::/64)",
                                    "give an address or prefix inside 2001:db8:1::/64, e.g. '2001:db8:1::1:1'"),
    "src a host name": (policy("flow: {src: u1-1}"), "policies[0].flow.src",
                        "'u1-1' is a host name, expected an IPv6 address or prefix",
                        "write its address: src: '2001:db8:1::1:1'"),
    "src with host bits": (policy("flow: {src: '2001:db8:1::1:1/112'}"), "policies[0].flow.src",
                           "has bits set after the /112 prefix length",
                           "write the network address: '2001:db8:1::1:0/112'"),
    "src not a string": (policy("flow: {src: 5}"), "policies[0].flow.src",
                         "5 is an int, expected an IPv6 address or prefix", "write it quoted"),
    "src multicast": (policy("flow: {src: 'ff02::1'}"), "policies[0].flow.src", "is multicast",
                      "match a routable unicast prefix"),
    # objective and bandwidth
    "objective unknown": (policy("objective: fastest"), "policies[0].objective",
                          "'fastest' is not one of min_delay, min_hops, bandwidth",
                          "use min_delay, min_hops or bandwidth"),
    "objective typo": (policy("objective: min_hop"), "policies[0].objective", "is not one of",
                       "did you mean 'min_hops'?"),
    "objective not text": (policy("objective: 3"), "policies[0].objective",
                           "3 is an int, expected one of min_delay, min_hops, bandwidth", "use min_delay"),
    "bandwidth missing": (policy("objective: bandwidth"), "policies[0].bandwidth_mbps",
                          "missing while objective is bandwidth", "e.g. bandwidth_mbps: 20"),
    "bandwidth with default objective": (policy("bandwidth_mbps: 20"), "policies[0].bandwidth_mbps",
                                         "given while objective is min_delay (the default)",
                                         "set objective: bandwidth, or drop bandwidth_mbps"),
    "bandwidth with min_hops": (policy("objective: min_hops, bandwidth_mbps: 20"), "policies[0].bandwidth_mbps",
                                "given while objective is min_hops; only objective bandwidth reserves bandwidth",
                                "set objective: bandwidth"),
    "bandwidth 0": (policy("objective: bandwidth, bandwidth_mbps: 0"), "policies[0].bandwidth_mbps",
                    "0 must be > 0", "above 0 Mbit/s"),
    "bandwidth bool": (policy("objective: bandwidth, bandwidth_mbps: true"), "policies[0].bandwidth_mbps",
                       "true is a bool, expected a number", "bools, not numbers"),
    "bandwidth above every headend link": (policy("objective: bandwidth, bandwidth_mbps: 200"),
                                           "policies[0].bandwidth_mbps",
                                           "200 Mbit/s exceeds every link of site east (50, 100 Mbit/s)",
                                           "ask for at most 100 Mbit/s, or raise the links' rate_mbps"),
    # waypoints
    "waypoints not a list": (policy("waypoints: centre"), "policies[0].waypoints",
                             "'centre' is a string, expected a list", "write a list"),
    "waypoint unknown": (policy("waypoints: [cnetre]"), "policies[0].waypoints[0]", "no site is named 'cnetre'",
                         "did you mean 'centre'?"),
    "waypoint a host": (policy("waypoints: [k2-1]"), "policies[0].waypoints[0]",
                        "'k2-1' is a host; waypoints are sites",
                        "use its site: centre"),
    "waypoint the headend": (policy("waypoints: [east]"), "policies[0].waypoints[0]", "'east' is the headend",
                             "drop it: the path starts there"),
    "waypoint the destination": (policy("waypoints: [centre, west]"), "policies[0].waypoints[1]",
                                 "'west' is the destination site", "drop it: the path ends there"),
    "waypoint the host's site": (policies("{name: p, headend: east, to: k3-1, waypoints: [west]}"),
                                 "policies[0].waypoints[0]", "'west' is the destination site", "drop it"),
    "waypoint the prefix's site": (policies("{name: p, headend: east, to: '2001:db8:3::2:0/112', waypoints: [west]}"),
                                   "policies[0].waypoints[0]", "'west' is the destination site", "drop it"),
    "waypoint repeated": (policies("{name: p, headend: west, to: east, waypoints: [centre, centre]}"),
                          "policies[0].waypoints[1]", "'centre' is already policies[0].waypoints[0]",
                          "list each site once"),
    "waypoint an int": (policy("waypoints: [2]"), "policies[0].waypoints[0]", "2 is an int, expected a name",
                        "lower-case letters"),
    # mode and backup
    "mode inline": (policy("mode: inline"), "policies[0].mode", "'inline' is not one of encap, encap.red",
                    "use encap (H.Encaps) or encap.red (H.Encaps.Red)"),
    "mode typo": (policy("mode: encap-red"), "policies[0].mode", "is not one of encap, encap.red",
                  "did you mean 'encap.red'?"),
    "backup quoted": (policy("backup: 'yes'"), "policies[0].backup", "'yes' is a string, expected a bool",
                      "write true or false, without quotes"),
    "backup int": (policy("backup: 1"), "policies[0].backup", "1 is an int, expected a bool", "write true or false"),
    # policies that clash
    "same traffic twice": (policies("{" + P + "}", "{name: q, headend: east, to: west, objective: min_hops}"),
                           "policies[1]", "steers the same traffic as policies[0] (east -> 2001:db8:3::/64)",
                           "merge the two policies, or narrow one of them with a different flow"),
    "same traffic by name and prefix": (
        policies("{name: q, headend: east, to: '2001:db8:3::/64', flow: {proto: udp}}",
                 "{name: p, headend: east, to: west, flow: {proto: udp}}"),
        "policies[1]", "steers the same traffic as policies[0] (east -> 2001:db8:3::/64 (udp))", "merge"),
    # the rest of the file stays checked
    "scenario still reserved": (BASE + "scenario: {}\n", "scenario", "not supported by this version", "remove it"),
}


@pytest.mark.parametrize("text, key, message, fix", list(BAD_CASES.values()), ids=list(BAD_CASES))
def test_bad_policy_names_key_message_and_fix(text, key, message, fix):
    one_problem(text, key, message, fix)


def test_every_problem_of_every_policy_is_reported_at_once():
    text = policies("{name: p, headend: esat, to: wset, objective: fast, mode: inline, backup: 2}",
                    "{name: q, headend: west, to: east, flow: {proto: icmpv6, dst_port: 1}, waypoints: [west]}")
    assert [p.key for p in problems(text)] == [
        "policies[0].headend", "policies[0].to", "policies[0].objective", "policies[0].mode",
        "policies[0].backup", "policies[1].flow.dst_port", "policies[1].waypoints[0]"]


def test_a_policy_naming_a_badly_named_site_reports_only_the_site():
    text = ("name: t\nsites: [{name: East}, {name: west}]\nlinks: [{a: East, b: west, delay_ms: 1}]\n"
            "policies: [{name: p, headend: East, to: west}, {name: q, headend: west, to: East, waypoints: [East]}]\n")
    assert [p.key for p in problems(text)] == ["sites[0].name"]


def test_policies_key_is_accepted_empty_or_null():
    assert load(BASE + "policies: []\n").policies == ()
    assert load(BASE + "policies:\n").policies == ()


# --- good input ---


def test_tiny_policies_example_loads_as_documented():
    topo = load_topology("topologies/tiny-policies.yaml")
    assert topo.policies == (
        SRPolicySpec("east-west-direct", "east", "site", "west", objective="min_hops"),
        SRPolicySpec("echo-udp-to-k3-1", "east", "host", "k3-1", flow=PolicyFlow(proto=17, dst_port=5001),
                     waypoints=("centre",), mode="encap.red"),
    )
    tiny = load_topology("topologies/tiny.yaml")
    assert (topo.sites, topo.links, topo.services) == (tiny.sites, tiny.links, tiny.services)
    assert tiny.policies == ()


def test_tiny_policies_example_overrides_the_igp_as_its_comment_says():
    from cpn_net.srv6.paths import best_path

    topo = load_topology("topologies/tiny-policies.yaml")
    g = topo.graph()
    direct = topo.policy("east-west-direct")
    assert nx.shortest_path(g, "east", "west", weight="delay_ms") == ["east", "centre", "west"]  # the IGP's way
    chosen = best_path(g, direct.headend, topo.destination_site(direct), objective=direct.objective)
    assert chosen.sites == ("east", "west") and chosen.delay_ms == topo.link("east", "west").delay_ms


def test_omitted_keys_get_the_documented_defaults():
    (p,) = load(policies("{" + P + "}")).policies
    assert p == SRPolicySpec("p", "east", "site", "west", flow=None, objective="min_delay", bandwidth_mbps=None,
                             waypoints=(), mode="encap", backup=True)
    (q,) = load(policy("flow: null, waypoints: null, backup: false")).policies
    assert (q.flow, q.waypoints, q.backup) == (None, (), False)


def test_every_flow_field_is_read_and_protocols_become_numbers():
    (p,) = load(policy("flow: {proto: udp, src_port: 4000, dst_port: 5001, src: '2001:db8:1::1:1'}")).policies
    assert p.flow == PolicyFlow(proto=17, src="2001:db8:1::1:1/128", src_port=4000, dst_port=5001)
    assert p.flow.describe() == "udp from 2001:db8:1::1:1/128 sport 4000 dport 5001"
    for proto, number in [("tcp", 6), ("sctp", 132), ("icmpv6", 58), (47, 47), (255, 255)]:
        (q,) = load(policy(f"flow: {{proto: {proto}}}")).policies
        assert q.flow.proto == number
    (r,) = load(policy("flow: {src: '2001:db8:1::1:0/112'}")).policies
    assert r.flow == PolicyFlow(src="2001:db8:1::1:0/112") and r.flow.proto_name is None


def test_protocol_numbers_are_the_iana_ones():
    assert PROTOCOL_NUMBERS == {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": socket.IPPROTO_SCTP,
                                "icmpv6": socket.IPPROTO_ICMPV6}


@pytest.mark.parametrize("to, kind, stored, steered, destination", [
    ("west", "site", "west", "2001:db8:3::/64", "west"),
    ("k3-1", "host", "k3-1", "2001:db8:3::2:1/128", "west"),
    ("u2-1", "host", "u2-1", "2001:db8:2::1:1/128", "centre"),
    ("'2001:db8:ffff::1'", "prefix", "2001:db8:ffff::1/128", "2001:db8:ffff::1/128", None),
    ("'2001:DB8:3::2:0/112'", "prefix", "2001:db8:3::2:0/112", "2001:db8:3::2:0/112", "west"),
    ("'2001:db8:3::/64'", "prefix", "2001:db8:3::/64", "2001:db8:3::/64", "west"),
    ("'::/0'", "prefix", "::/0", "::/0", None),
])
def test_to_names_a_site_a_host_or_a_normalised_prefix(to, kind, stored, steered, destination):
    topo = load(policies(f"{{name: p, headend: east, to: {to}}}"))
    (p,) = topo.policies
    assert (p.to_kind, p.to) == (kind, stored)
    assert str(topo.steered_prefix(p)) == str(topo.steered_prefix("p")) == steered
    assert topo.destination_site(p) == destination


def test_bandwidth_objective_keeps_the_demand_and_fits_a_link():
    (p,) = load(policy("objective: bandwidth, bandwidth_mbps: 100")).policies
    assert (p.objective, p.bandwidth_mbps) == ("bandwidth", 100.0)
    # west has an unshaped link: only east's links limit this policy.
    (q,) = load(policies("{name: q, headend: west, to: centre, objective: bandwidth, bandwidth_mbps: 5000}")).policies
    assert q.bandwidth_mbps == 5000.0


def test_different_flows_or_headends_to_one_destination_do_not_clash():
    topo = load(policies("{name: a, headend: east, to: west}", "{name: b, headend: east, to: west, flow: {proto: udp}}",
                         "{name: c, headend: east, to: west, flow: {proto: tcp}}",
                         "{name: d, headend: centre, to: west}",
                         "{name: e, headend: east, to: k3-1}"))
    assert [p.name for p in topo.policies] == ["a", "b", "c", "d", "e"]


def test_policy_lookup_and_its_error():
    topo = load_topology("topologies/tiny-policies.yaml")
    assert topo.policy("east-west-direct").to == "west"
    with pytest.raises(UnknownNameError) as info:
        topo.policy("east-west-dirct")
    assert str(info.value) == ("topology tiny-policies has no policy 'east-west-dirct'; "
                               "did you mean 'east-west-direct'?")
    with pytest.raises(KeyError):
        load_topology("topologies/tiny.yaml").policy("east-west-direct")


def test_policies_are_frozen():
    p = load_topology("topologies/tiny-policies.yaml").policies[1]
    with pytest.raises(AttributeError):
        p.headend = "west"
    with pytest.raises(AttributeError):
        p.flow.dst_port = 1


def test_to_dict_records_each_policy_resolved():
    d = load_topology("topologies/tiny-policies.yaml").to_dict()
    assert d["version"] == TOPOLOGY_DICT_VERSION == 3
    assert json.loads(json.dumps(d)) == d
    assert d["policies"][1] == {
        "name": "echo-udp-to-k3-1", "headend": "east", "headend_router": "r1", "to_kind": "host", "to": "k3-1",
        "steered_prefix": "2001:db8:3::2:1/128", "destination_site": "west",
        "flow": {"proto": 17, "proto_name": "udp", "src": None, "src_port": None, "dst_port": 5001},
        "objective": "min_delay", "bandwidth_mbps": None, "waypoints": ["centre"], "mode": "encap.red",
        "backup": True}
    assert d["policies"][0]["flow"] is None and d["policies"][0]["steered_prefix"] == "2001:db8:3::/64"
    assert load_topology("topologies/tiny.yaml").to_dict()["policies"] == []


def test_summary_lists_policies():
    lines = summarize(load_topology("topologies/tiny-policies.yaml")).splitlines()
    assert lines[1] == "  3 sites, 3 links, 3 clients, 3 compute nodes, 1 service, 2 SR policies"
    assert lines[-2:] == [
        "  policy east-west-direct: east -> west, min_hops, encap, with backup",
        "  policy echo-udp-to-k3-1: east -> k3-1 [udp dport 5001], min_delay via centre, encap.red, with backup"]
    one = summarize(load(policy("objective: bandwidth, bandwidth_mbps: 20, backup: false"))).splitlines()
    assert one[1].endswith(", 1 SR policy")
    assert one[-1] == "  policy p: east -> west, bandwidth 20 Mbit/s, encap, no backup"


def test_summary_caps_long_policy_lists():
    items = [f"{{name: p{i}, headend: east, to: west, flow: {{proto: tcp, dst_port: {i + 1}}}}}" for i in range(12)]
    lines = summarize(load(policies(*items))).splitlines()
    assert sum(line.startswith("  policy ") for line in lines) == 11
    assert lines[-1] == "  policy ... 2 more"


def test_model_vocabulary_matches_the_srv6_layer():
    from cpn_net.srv6.paths import OBJECTIVES
    from cpn_net.srv6.policy import MODES

    assert POLICY_MODES == MODES
    assert set(OBJECTIVES) | {"bandwidth"} == set(POLICY_OBJECTIVES)


def test_random_valid_policies_keep_the_model_invariants_and_fit_the_srv6_flow_match():
    from cpn_net.srv6.policy import FlowMatch

    rng = random.Random(7)
    topo = load_topology("topologies/tiny-policies.yaml")
    sites = [s.name for s in topo.sites]
    hosts = [h.name for h in topo.hosts()]
    items = []
    for i in range(30):
        headend = rng.choice(sites)
        to = rng.choice([s for s in sites + hosts if s != headend and not s.startswith(("k", "u"))
                         or (s[0] in "ku" and topo.host(s).site != headend)])
        destination = topo.host(to).site if to in hosts else to
        others = [s for s in sites if s not in (headend, destination)]
        flow = {"proto": "udp", "dst_port": i + 1}
        if rng.random() < 0.5:
            flow["src"] = str(topo.site(headend).hosts[0].address)
        items.append({"name": f"p{i}", "headend": headend, "to": to, "flow": flow,
                      "waypoints": rng.sample(others, k=rng.randint(0, len(others))),
                      "objective": rng.choice(["min_delay", "min_hops"]), "mode": rng.choice(POLICY_MODES)})
    text = BASE + yaml.safe_dump({"policies": items})
    loaded = load(text)
    assert len(loaded.policies) == 30
    for p in loaded.policies:
        steered = loaded.steered_prefix(p)
        destination = loaded.destination_site(p)
        assert not steered.subnet_of(loaded.site(p.headend).lan)
        assert steered.subnet_of(loaded.site(destination).lan)
        assert p.headend not in p.waypoints and destination not in p.waypoints
        assert len(set(p.waypoints)) == len(p.waypoints)
        if p.flow.src is not None:
            assert ipaddress.IPv6Network(p.flow.src).subnet_of(loaded.site(p.headend).lan)
        match = FlowMatch(steered, p.flow.src, p.flow.proto, p.flow.src_port, p.flow.dst_port)
        assert (match.protocol, match.dst_port) == (17, p.flow.dst_port)


# --- node-link JSON carries policies under graph; GraphML has none ---


def node_link(policy_list):
    return json.dumps({"graph": {"name": "pair", "policies": policy_list},
                       "nodes": [{"id": "a"}, {"id": "b"}],
                       "links": [{"source": "a", "target": "b", "delay_ms": 1}]})


def test_node_link_graph_policies_load():
    topo = parse_node_link(node_link([{"name": "p", "headend": "a", "to": "k2-1", "flow": {"proto": "tcp"}}]), "g.json")
    assert topo.policies == (SRPolicySpec("p", "a", "host", "k2-1", flow=PolicyFlow(proto=6)),)


def test_node_link_graph_policies_are_checked_like_yaml():
    with pytest.raises(TopologyError) as info:
        parse_node_link(node_link([{"name": "p", "headend": "a", "to": "c"}, "x"]), "g.json")
    assert [str(p) for p in info.value.problems] == [
        "g.json: graph.policies[1]: 'x' is a string, expected a policy mapping; write the policy as key: value pairs",
        "g.json: graph.policies[0].to: no site or host is named 'c'; use a site (a, b), a host (u1-1, k1-1, u2-1, ...) "
        "or a quoted IPv6 prefix such as '2001:db8:ffff::/64'",
    ]


def test_graphml_imports_have_no_policies():
    assert load_topology("topologies/abilene.graphml").policies == ()


def test_a_bad_objective_is_reported_once_not_again_under_bandwidth():
    found = problems(policy("objective: fastest, bandwidth_mbps: 20"))
    assert [p.key for p in found] == ["policies[0].objective"]
