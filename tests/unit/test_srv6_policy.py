"""SR policies: compiled specs, what pyroute2 0.9.7 makes of them, and refusals."""

import copy
import ipaddress
import socket
import struct

import networkx as nx
import pytest
from pyroute2.iproute.linux import get_arguments_processor
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from cpn_net.srv6.errors import PolicyError
from cpn_net.srv6.interfaces import InterfacePlan
from cpn_net.srv6.policy import DEFAULT_RULE_PRIORITY, FlowMatch, SRPolicy, compile_policy
from cpn_net.srv6.segments import SegmentList, minimal_segment_list
from cpn_net.srv6.sids import binding_sid, end_dt6_sid, end_dx6_sid, end_sid, end_x_sid
from cpn_net.srv6.srh import decode_srh

RTA_ENCAP = 22
RTA_PRIORITY = 6
SEG6_IPTUNNEL_SRH = 1
SEG6_LOCAL_SRH = 2
SEG6_MODES = {0: "inline", 1: "encap", 3: "encap.red"}  # linux/seg6_iptunnel.h


def square():
    """a(1) - b(2) - d(4) and a - c(3) - d; the IGP goes a-b-d (ids break the tie)."""
    G = nx.Graph()
    G.add_nodes_from((n, {"id": i}) for i, n in enumerate("abcd", start=1))
    for number, (u, v) in enumerate((("a", "b"), ("b", "d"), ("a", "c"), ("c", "d")), start=1):
        G.add_edge(u, v, number=number, delay_ms=1.0)
    return G


PLAN = InterfacePlan.by_link_number(square())
COMPUTE = "2001:db8:4::2:1"
VIA_C = SegmentList.of(end_x_sid(1, 3), end_dx6_sid(4, "compute", 1))


def netlink_message(msg_class, mode, spec):
    """Encode a spec the way IPRoute.route/rule('add', **spec) does, without a socket."""
    spec = copy.deepcopy(spec)
    if "oif" in spec:
        spec["oif"] = 7  # the adapter resolves names to indexes
    if mode == "route":
        spec.update(proto="static", type="unicast")
    request = get_arguments_processor(mode, "add", spec, {"strict_check": False})
    msg = msg_class()
    msg.reset()
    for name, *_ in msg.fields:
        msg[name] = request.get_value(name, default=0, mode="field")
    for key, value in request.items():
        nla = msg_class.name2nla(key)
        if msg.valid_nla(nla) and value is not None:
            msg["attrs"].append([nla, value])
    msg.encode()
    return msg


def attrs(data, offset=0):
    """{type: value bytes} of a run of netlink attributes."""
    found = {}
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        found[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


def encoded_srh(spec):
    """(mode, SRH) as pyroute2 encodes a seg6 or seg6local spec."""
    msg = netlink_message(rtmsg, "route", spec)
    encap = attrs(attrs(msg.data, 16 + 12)[RTA_ENCAP])
    if SEG6_IPTUNNEL_SRH in encap and spec["encap"]["type"] == "seg6":
        value = encap[SEG6_IPTUNNEL_SRH]
        return SEG6_MODES[struct.unpack_from("=i", value)[0]], decode_srh(value[4:])[0]
    return None, decode_srh(encap[SEG6_LOCAL_SRH])[0]


def test_prefix_policy_compiles_to_one_seg6_route_towards_the_first_segment():
    policy = SRPolicy("via-c", "a", ipaddress.IPv6Network("2001:db8:4::/64"), VIA_C)
    compiled = compile_policy(square(), policy, PLAN)
    assert (compiled.router, compiled.namespace, compiled.rules) == ("r1", "cpn-r1", ())
    assert compiled.routes == ({"dst": "2001:db8:4::/64", "oif": PLAN.wan_ifname("a", "c"), "priority": 100,
                                "encap": {"type": "seg6", "mode": "encap",
                                          "segs": ["fcbb:bb00:4:3:2:1::", "fcbb:bb00:1:2:3::"]}},)


def test_pyroute2_packs_segs_as_given_so_srh_order_yields_the_travel_order():
    policy = SRPolicy("via-c", "a", ipaddress.IPv6Network("2001:db8:4::/64"), VIA_C)
    spec = compile_policy(square(), policy, PLAN).routes[0]
    assert attrs(netlink_message(rtmsg, "route", spec).data, 16 + 12)[RTA_PRIORITY] == struct.pack("=I", 100)
    mode, srh = encoded_srh(spec)
    assert mode == "encap"
    assert srh.travel_order == VIA_C.segments
    assert srh.active_segment == VIA_C.first  # the kernel's first destination: Segment List[Last Entry]


def test_pyroute2_0_9_7_encodes_encap_red_as_plain_encap_so_the_adapter_must_not_pass_it_through():
    policy = SRPolicy("red", "a", ipaddress.IPv6Network("2001:db8:4::/64"), VIA_C, mode="encap.red")
    spec = compile_policy(square(), policy, PLAN).routes[0]
    assert spec["encap"]["mode"] == "encap.red"
    assert encoded_srh(spec)[0] == "encap"  # when this fails, pyroute2 learnt encap.red: drop the workaround


def test_flow_policy_compiles_to_a_rule_and_a_route_in_its_table():
    flow = FlowMatch(COMPUTE, "2001:db8:1::1:1", "udp", 5000, 7000)
    policy = SRPolicy("flow-7", "a", flow, VIA_C, table=1007)
    compiled = compile_policy(square(), policy, PLAN)
    assert compiled.routes[0]["table"] == 1007 and compiled.routes[0]["dst"] == f"{COMPUTE}/128"
    assert compiled.rules == ({"family": socket.AF_INET6, "priority": DEFAULT_RULE_PRIORITY, "table": 1007,
                               "iifname": "r1-eth0", "dst": f"{COMPUTE}/128", "src": "2001:db8:1::1:1/128",
                               "ip_proto": 17, "sport_range": "5000:5000", "dport_range": "7000:7000"},)
    rule = fibmsg(netlink_message(fibmsg, "rule", compiled.rules[0]).data)
    rule.decode()
    assert (rule["family"], rule["dst_len"], rule["src_len"], rule["action"]) == (socket.AF_INET6, 128, 128, 1)
    assert rule.get_attr("FRA_TABLE") == 1007 and rule.get_attr("FRA_IP_PROTO") == 17
    assert (rule.get_attr("FRA_SPORT_RANGE"), rule.get_attr("FRA_DPORT_RANGE")) == ("5000:5000", "7000:7000")
    assert (rule.get_attr("FRA_IIFNAME"), rule.get_attr("FRA_DST")) == ("r1-eth0", COMPUTE)


def test_binding_sid_compiles_to_end_b6_encaps_whose_srh_pyroute2_encodes_in_travel_order():
    bound = SegmentList.of(end_x_sid(1, 3), end_dt6_sid(4, 254))
    policy = SRPolicy("bsid", "a", None, bound, binding_sid=binding_sid(1, 1))
    compiled = compile_policy(square(), policy, PLAN)
    (route,) = compiled.routes
    assert route["dst"] == "fcbb:bb00:1:5:1::/128"
    assert route["encap"] == {"type": "seg6local", "action": "End.B6.Encaps",
                              "srh": {"segs": [str(s) for s in bound.srh_order]}}
    assert encoded_srh(route)[1].travel_order == bound.segments


def test_removal_keeps_what_the_kernel_matches_on():
    flow = FlowMatch(COMPUTE, protocol="tcp", dst_port=443)
    compiled = compile_policy(square(), SRPolicy("f", "a", flow, VIA_C, table=5), PLAN)
    removal = compiled.removal()
    assert removal.routes == ({"dst": f"{COMPUTE}/128", "table": 5, "oif": "r1-eth2", "priority": 100},)
    assert removal.rules == compiled.rules


def test_first_hop_interface_follows_the_igp_towards_a_remote_first_segment():
    sl = SegmentList.of(end_sid(4), end_dx6_sid(4, "compute", 1))
    compiled = compile_policy(square(), SRPolicy("p", "a", "2001:db8:4::/64", sl), PLAN)
    assert compiled.routes[0]["oif"] == PLAN.wan_ifname("a", "b")  # IGP a-b-d


def test_minimal_lists_compile_for_every_path_of_the_square():
    G = square()
    for path in nx.all_simple_paths(G, "a", "d"):
        sl = minimal_segment_list(G, path, final_sid=end_dx6_sid(4, "compute", 1))
        compiled = compile_policy(G, SRPolicy("p", "a", "2001:db8:4::/64", sl), PLAN)
        assert encoded_srh(compiled.routes[0])[1].travel_order == sl.segments


@pytest.mark.parametrize("build, message", [
    (lambda: SRPolicy("", "a", "2001:db8:4::/64", VIA_C), "policy name '' must be a non-empty string"),
    (lambda: SRPolicy("p", "a", "2001:db8:4::/64", VIA_C, mode="inline"),
     "policy 'p': mode='inline' must be one of encap, encap.red"),
    (lambda: SRPolicy("p", "a", "2001:db8:4::/64", SegmentList.of(end_sid(4))),
     "policy 'p': the last segment fcbb:bb00:4:1:: is End@4, which does not decapsulate"),
    (lambda: SRPolicy("p", "a", None, VIA_C), "policy 'p': steers nothing"),
    (lambda: SRPolicy("p", "a", None, VIA_C, binding_sid=binding_sid(1, 1)),
     "policy 'p': a binding SID's list must end with End.DT6"),
    (lambda: SRPolicy("p", "a", FlowMatch(COMPUTE), VIA_C), "policy 'p': a 5-tuple policy needs table=<id>"),
    (lambda: SRPolicy("p", "a", "2001:db8:4::/64", VIA_C, table=255), "table=255 must be an int in 1..4294967295"),
    (lambda: SRPolicy("p", "a", "2001:db8:4::/64", VIA_C, rule_priority=32766),
     "rule_priority=32766 must be in 1..32765"),
    (lambda: SRPolicy("p", "a", "10.0.0.0/8", VIA_C), "policy 'p': destination '10.0.0.0/8'"),
    (lambda: SRPolicy("p", "a", "2001:db8:4::/64", ("fcbb:bb00:4:1::",)), "segments must be a SegmentList"),
    (lambda: SRPolicy("p", "a", None, SegmentList.of(end_dt6_sid(4, 254)), binding_sid="junk"),
     "policy 'p': binding_sid 'junk':"),
    (lambda: FlowMatch(COMPUTE, dst_port=80), "flow match: dst_port=80 needs protocol tcp, udp or sctp"),
    (lambda: FlowMatch(COMPUTE, protocol="quic"), "flow match: protocol='quic' must be 0..255"),
    (lambda: FlowMatch(COMPUTE, protocol=6, src_port=70000), "flow match: src_port=70000 must be an int in 0..65535"),
    (lambda: FlowMatch("not-an-address"), "flow match:"),
])
def test_ill_formed_policies_are_refused_with_the_fix(build, message):
    with pytest.raises(PolicyError) as err:
        build()
    assert message in str(err.value)


@pytest.mark.parametrize("policy, message", [
    (SRPolicy("p", "z", "2001:db8:4::/64", VIA_C), "policy 'p': headend: site 'z' is not in the topology"),
    (SRPolicy("p", "a", "2001:db8:4::/64", SegmentList.of(end_x_sid(1, 4), end_dx6_sid(4, "compute", 1))),
     "policy 'p': segment fcbb:bb00:1:2:4:: (End.X@1(4)): no link a-d in the topology"),
    (SRPolicy("p", "a", "2001:db8:4::/64", SegmentList.of(end_dx6_sid(9, "compute", 1))),
     "names site id 9, which is not in the topology"),
    (SRPolicy("p", "a", None, SegmentList.of(end_dt6_sid(4, 254)), binding_sid=binding_sid(2, 1)),
     "binding_sid fcbb:bb00:2:5:1:: is End.B6.Encaps@2(1); it must be an End.B6.Encaps SID of the headend a"),
    (SRPolicy("p", "a", None, SegmentList.of(end_dt6_sid(4, 254)), binding_sid=end_sid(1)),
     "binding_sid fcbb:bb00:1:1:: is End@1"),
])
def test_policies_that_do_not_fit_the_topology_are_refused_before_install(policy, message):
    with pytest.raises(PolicyError) as err:
        compile_policy(square(), policy, PLAN)
    assert message in str(err.value)
