"""Walking real packets through the fake data plane: policies take their path and decapsulate at the host."""

import ipaddress
import random

import networkx as nx
import pytest
from scapy.layers.inet6 import IPv6, IPv6ExtHdrSegmentRouting

from cpn_net.model import addressing
from cpn_net.srv6.errors import FakeNetlinkError
from cpn_net.srv6.fake_netlink import FakeNetwork, FakeRouter
from cpn_net.srv6.igp import Igp
from cpn_net.srv6.interfaces import InterfacePlan
from cpn_net.srv6.packet import build_udp, decode_ipv6, decode_srv6, encapsulate, with_hop_limit
from cpn_net.srv6.paths import best_path
from cpn_net.srv6.policy import FlowMatch, SRPolicy, compile_policy
from cpn_net.srv6.segments import SegmentList, minimal_segment_list
from cpn_net.srv6.sids import binding_sid, end_dt6_sid, end_dx6_sid, end_sid, end_x_sid


def ladder():
    """Two rails a-b-c-d and e-f-g-h with rungs; the IGP prefers the top rail."""
    G = nx.Graph()
    G.add_nodes_from((n, {"id": i}) for i, n in enumerate("abcdefgh", start=1))
    links = [("a", "b", 1), ("b", "c", 1), ("c", "d", 1), ("e", "f", 2), ("f", "g", 2), ("g", "h", 2),
             ("a", "e", 1), ("b", "f", 1), ("c", "g", 1), ("d", "h", 1)]
    for number, (u, v, delay) in enumerate(links, start=1):
        G.add_edge(u, v, number=number, delay_ms=float(delay), rate_mbps=100.0)
    return G


CLIENT = addressing.host_address(1, "client", 1)
COMPUTE = addressing.host_address(4, "compute", 1)
HOSTS = {"a": [("client", 1)], "d": [("compute", 1)]}


def network(G=None, **kw):
    G = G or ladder()
    return G, FakeNetwork.with_baseline(G, InterfacePlan.by_link_number(G), hosts=HOSTS, **kw)


def request(sport=5000, dport=7000, **kw):
    return build_udp(CLIENT, COMPUTE, sport, dport, b"compute request", **kw)


def install(net, G, policy, **kw):
    compiled = compile_policy(G, policy, net.plan, **kw)
    net.install(compiled)
    return compiled


def test_without_policies_packets_follow_the_igp_and_arrive_unchanged_but_for_hop_limit():
    G, net = network()
    walk = net.send(request(), "a")
    assert walk.result == "delivered" and walk.delivered_to == COMPUTE
    assert walk.sites == Igp(G).path("a", "d") == tuple("abcd")
    assert walk.packet == with_hop_limit(request(), 64 - 4)


def test_a_prefix_policy_takes_the_te_path_and_decapsulates_at_the_compute_node():
    G, net = network()
    path = best_path(G, "a", "d", waypoints=["f"])
    assert path.sites == ("a", "b", "f", "g", "c", "d")
    final = end_dx6_sid(4, "compute", 1)
    segments = minimal_segment_list(G, path, final_sid=final)
    install(net, G, SRPolicy("via-f", "a", addressing.site_lan(4), segments))
    walk = net.send(request(), "a")
    assert walk.result == "delivered" and walk.delivered_to == COMPUTE
    assert walk.sites == path.sites
    assert walk.packet == with_hop_limit(request(), 63)  # the inner packet is forwarded once, at End.DX6
    assert walk.hops[0].outcome.steps[0] == "H.Encaps" and walk.hops[-1].outcome.steps == ("End.DX6",)


def test_every_packet_on_the_wire_is_a_genuine_srv6_packet_scapy_reads():
    G, net = network()
    path = ("a", "e", "f", "g", "h", "d")
    segments = minimal_segment_list(G, path, final_sid=end_dx6_sid(4, "compute", 1))
    install(net, G, SRPolicy("bottom", "a", addressing.site_lan(4), segments))
    walk = net.send(request(), "a")
    assert walk.sites == path
    lefts = []
    for wire in walk.wire[:-1]:  # the last hop carries the decapsulated packet
        parsed = IPv6(wire)
        srh = parsed[IPv6ExtHdrSegmentRouting]
        assert [ipaddress.IPv6Address(a) for a in reversed(srh.addresses)] == list(segments)
        assert ipaddress.IPv6Address(parsed.dst) == segments.segments[len(segments) - 1 - srh.segleft]
        assert bytes(srh.payload) == request()
        lefts.append(srh.segleft)
    assert lefts == sorted(lefts, reverse=True) and lefts[-1] == 0
    assert IPv6(walk.wire[-1]).dst == str(COMPUTE)


def test_reduced_encapsulation_takes_the_same_path_with_sixteen_bytes_less():
    G, net = network()
    path = ("a", "e", "f", "g", "h", "d")
    segments = minimal_segment_list(G, path, final_sid=end_dx6_sid(4, "compute", 1))
    install(net, G, SRPolicy("red", "a", addressing.site_lan(4), segments, mode="encap.red"))
    walk = net.send(request(), "a")
    assert walk.sites == path and walk.delivered_to == COMPUTE
    assert len(walk.wire[0]) == len(encapsulate(request(), "::", segments)) - 16
    assert walk.hops[0].outcome.steps[0] == "H.Encaps.Red"


def test_a_flow_policy_steers_only_its_five_tuple():
    G, net = network()
    segments = SegmentList.of(end_x_sid(1, 5), end_dx6_sid(4, "compute", 1))
    flow = FlowMatch(COMPUTE, CLIENT, "udp", 5000, 7000)
    install(net, G, SRPolicy("one-flow", "a", flow, segments, table=1001))
    assert net.send(request(5000, 7000), "a").sites[:2] == ("a", "e")
    assert net.send(request(5001, 7000), "a").sites == tuple("abcd")
    assert net.send(request(5000, 7001), "a").sites == tuple("abcd")


def test_a_flow_rule_applies_only_to_traffic_entering_from_the_lan():
    G, net = network()
    flow = FlowMatch(COMPUTE, protocol="udp", dst_port=7000)
    install(net, G, SRPolicy("lan-only", "b", flow, SegmentList.of(end_x_sid(2, 6), end_dx6_sid(4, "compute", 1)),
                             table=7))
    assert net.send(request(), "a").sites == tuple("abcd")  # enters b from a, not from b's LAN


def test_binding_sid_hands_a_segment_of_the_trip_to_another_headends_policy():
    G, net = network()
    bsid = binding_sid(2, 1)
    bound = SegmentList.of(end_x_sid(2, 6), end_sid(7), end_dt6_sid(7, 254))  # b -> f -> g, decapsulate at g
    install(net, G, SRPolicy("b-detour", "b", None, bound, binding_sid=bsid))
    outer = SegmentList.of(bsid, end_dx6_sid(4, "compute", 1))
    install(net, G, SRPolicy("use-bsid", "a", addressing.site_lan(4), outer), bindings={bsid: bound})
    walk = net.send(request(), "a")
    assert walk.result == "delivered" and walk.delivered_to == COMPUTE
    assert walk.sites == ("a", "b", "f", "g", "c", "d")
    assert "End.B6.Encaps" in walk.hops[1].outcome.steps and "End.DT6" in walk.hops[3].outcome.steps


def test_removing_a_policy_restores_igp_forwarding_and_a_second_removal_fails():
    G, net = network()
    compiled = install(net, G, SRPolicy("f", "a", FlowMatch(COMPUTE, protocol=17), SegmentList.of(
        end_x_sid(1, 5), end_dx6_sid(4, "compute", 1)), table=9))
    assert net.send(request(), "a").sites[1] == "e"
    net.remove(compiled)
    assert net.send(request(), "a").sites == tuple("abcd")
    with pytest.raises(FakeNetlinkError, match="no rule .* to delete \\(ESRCH\\)"):
        net.remove(compiled)


def test_a_prefix_policy_shadows_the_igp_route_to_the_same_prefix_until_removed():
    G, net = network()
    segments = minimal_segment_list(G, "aefghd", final_sid=end_dx6_sid(4, "compute", 1))
    compiled = install(net, G, SRPolicy("lan-d", "a", addressing.site_lan(4), segments))
    assert net.send(request(), "a").sites == ("a", "e", "f", "g", "h", "d")
    net.remove(compiled)
    assert net.send(request(), "a").sites == tuple("abcd")
    assert any(r.dst == addressing.site_lan(4) for r in net.router("r1").routes())  # the IGP route survived


@pytest.mark.parametrize("seed", range(15))
def test_random_te_paths_are_followed_hop_for_hop(seed):
    rng = random.Random(seed)
    base = nx.connected_watts_strogatz_graph(9, 4, 0.5, seed=seed)
    G = nx.Graph()
    G.add_nodes_from((f"n{i}", {"id": i + 1}) for i in range(9))
    for number, (u, v) in enumerate(base.edges, start=1):
        G.add_edge(f"n{u}", f"n{v}", number=number, delay_ms=float(rng.randint(1, 4)),
                   rate_mbps=float(rng.choice([20, 100])))
    hosts = {s: [("client", 1), ("compute", 1)] for s in G}
    net = FakeNetwork.with_baseline(G, InterfacePlan.by_link_number(G), hosts=hosts)
    igp = Igp(G)
    for k in range(4):
        source, target = rng.sample(sorted(G), 2)
        path = rng.choice(list(nx.all_simple_paths(G, source, target, cutoff=6)))
        src_id, dst_id = G.nodes[source]["id"], G.nodes[target]["id"]
        segments = minimal_segment_list(G, path, final_sid=end_dx6_sid(dst_id, "compute", 1), igp=igp)
        flow = FlowMatch(addressing.host_address(dst_id, "compute", 1), protocol="udp", src_port=k + 1)
        install(net, G, SRPolicy(f"p{k}", source, flow, segments, table=100 + k), igp=igp)
        packet = build_udp(addressing.host_address(src_id, "client", 1),
                           addressing.host_address(dst_id, "compute", 1), k + 1, 9)
        walk = net.send(packet, source)
        assert walk.result == "delivered", walk.reason
        assert walk.sites == tuple(path)
        assert walk.delivered_to == addressing.host_address(dst_id, "compute", 1)
        assert walk.packet == with_hop_limit(packet, 63)


def router_a():
    G = ladder()
    return G, FakeRouter.for_site(G, "a", InterfacePlan.by_link_number(G))


@pytest.mark.parametrize("spec, message", [
    ({"dst": "2001:db8:9::/64", "oif": "r1-eth9"}, "oif='r1-eth9' is not an interface of this router"),
    ({"dst": "2001:db8:9::/64", "oif": "r1-eth1", "gateway": "fd00:9::2"},
     "gateway fd00:9::2 is not on-link on r1-eth1 (fd00:1::/64); the kernel refuses it"),
    ({"dst": "2001:db8:9::/64", "oif": "r1-eth0", "via": "x"}, "route spec keys ['via'] are not ones"),
    ({"dst": "nope", "oif": "r1-eth0"}, "dst must be an IPv6 prefix"),
    ({"dst": "2001:db8:9::/64", "oif": "r1-eth0", "encap": {"type": "seg6", "mode": "inline", "segs": ["::1"]}},
     "needs exactly type, mode (encap or encap.red) and segs"),
    ({"dst": "2001:db8:9::/64", "oif": "r1-eth0", "encap": {"type": "seg6", "mode": "encap", "segs": "::1"}},
     "segs='::1' must be a non-empty list"),
    ({"dst": "fcbb:bb00:1:9::/128", "oif": "r1-eth0", "encap": {"type": "seg6local", "action": "End.X"}},
     "seg6local End.X takes ['nh6'], got []"),
    ({"dst": "fcbb:bb00:1:9::/128", "oif": "r1-eth0", "encap": {"type": "seg6local", "action": "End.T"}},
     "seg6local action 'End.T' must be one of"),
    ({"dst": "fcbb:bb00:1:9::/128", "oif": "r1-eth0", "encap": {"type": "mpls"}}, "encap type 'mpls' must be"),
])
def test_the_fake_refuses_specs_the_kernel_or_adapter_would(spec, message):
    _, router = router_a()
    with pytest.raises(FakeNetlinkError) as err:
        router.route("add", **spec)
    assert message in str(err.value)


def test_duplicate_and_missing_routes_fail_like_the_kernel():
    _, router = router_a()
    spec = {"dst": "2001:db8:9::/64", "oif": "r1-eth1", "gateway": "fd00:1::2"}
    router.route("add", **spec)
    with pytest.raises(FakeNetlinkError, match="exists \\(the kernel answers EEXIST\\); use 'replace'"):
        router.route("add", **spec)
    router.route("replace", **spec)
    router.route("del", dst="2001:db8:9::/64", oif="r1-eth1")
    with pytest.raises(FakeNetlinkError, match="no route 2001:db8:9::/64 table 254 to delete"):
        router.route("del", dst="2001:db8:9::/64", oif="r1-eth1")


def test_rules_must_be_ipv6_with_a_table_and_priority():
    _, router = router_a()
    with pytest.raises(FakeNetlinkError, match="family must be AF_INET6"):
        router.rule("add", priority=5, table=5)
    with pytest.raises(FakeNetlinkError, match="needs a table and a priority"):
        router.rule("add", family=10, table=5)
    with pytest.raises(FakeNetlinkError, match="rule spec keys \\['fwmark'\\] unknown"):
        router.rule("add", family=10, table=5, priority=5, fwmark=1)


def test_segment_endpoints_drop_what_the_kernel_drops():
    G, net = network()
    # End with Segments Left 0: the packet names b's End SID as its last segment.
    walk = net.send(encapsulate(request(), CLIENT, [end_sid(2)]), "a")
    assert walk.result == "drop" and "End fcbb:bb00:2:1::: no segment left" in walk.reason
    # End.DX6 while segments remain.
    walk = net.send(encapsulate(request(), CLIENT, [end_dx6_sid(4, "compute", 1), end_sid(2)]), "a")
    assert walk.result == "drop" and "End.DX6 fcbb:bb00:4:3:2:1::: Segments Left 1 != 0" in walk.reason
    # Hop limit runs out on the way.
    walk = net.send(request(hop_limit=2), "a")
    assert walk.result == "drop" and walk.sites == ("a", "b") and "hop limit exceeded" in walk.reason
    # Nowhere to go.
    walk = net.send(build_udp(CLIENT, "2001:db8:77::1", 1, 2), "a")
    assert (walk.result, walk.reason) == ("drop", "no route to 2001:db8:77::1")


def test_packets_to_a_router_address_are_local():
    G, net = network()
    walk = net.send(build_udp(CLIENT, addressing.router_lan_address(3), 1, 2), "a")
    assert walk.result == "local" and walk.sites == ("a", "b", "c")


def test_an_unknown_ingress_interface_or_site_is_refused():
    _, router = router_a()
    with pytest.raises(FakeNetlinkError, match="packet arrives on unknown interface 'eth7'"):
        router.receive(request(), "eth7")
    _, net = network()
    with pytest.raises(FakeNetlinkError, match="no router at site 'z'; sites are a, b, c"):
        net.send(request(), "z")
    with pytest.raises(FakeNetlinkError, match="no router 'r9'; routers are r1, r2"):
        net.router("r9")


def test_end_dt6_looks_the_inner_destination_up_in_its_table():
    G, net = network()
    walk = net.send(encapsulate(request(), CLIENT, [end_dt6_sid(3, 254)]), "a")
    assert walk.result == "delivered" and walk.sites == tuple("abcd")
    assert decode_srv6(walk.packet).srh is None and decode_ipv6(walk.packet)[0].destination == COMPUTE
