"""Tests of slice realisation: switch marking with colours, meters, WAN HTB queues, decap tables."""

import re

import pytest

from cpn_net.baseline import switch_flows
from cpn_net.emulation.plan import build_plan
from cpn_net.model import load_topology
from cpn_net.model.topology import SliceSpec
from cpn_net.openflow import TABLE_CLASSIFY, FakeFlowTable
from cpn_net.slicing.admission import admit
from cpn_net.slicing.errors import SlicingError
from cpn_net.slicing.isolation import COOKIE_GUARD
from cpn_net.slicing.realise import (COOKIE_SLICE, PRIORITY_SLICE, SHAPING_FRACTION, classification_flows, decap_tables,
                                     directed_slice_rates, meter_specs, queue_commands, slice_class, slice_dscp,
                                     slice_filter_handle, slice_of_dscp, slice_traffic_class, wan_queue_commands)
from cpn_net.srv6.interfaces import InterfacePlan
from cpn_net.srv6.sids import end_dt6_sid
from cpn_net.telemetry.marking import PRIORITY_COLOUR, colour_flows, colour_of_dscp

# tiny: east(1) -5ms 50M- centre(2) -10ms unshaped- west(3), east -20ms unshaped- west
TOPO = load_topology("topologies/tiny.yaml")
PLAN = build_plan(TOPO)
GOLD = SliceSpec("gold", 3, ("u1-1", "west"), ("u1-1", "u3-1", "k3-1"), ("east", "west"), 20.0, meter_mbps=30.0)
SILVER = SliceSpec("silver", 5, ("east", "centre"), ("u1-1", "k1-1", "u2-1", "k2-1"), ("east", "centre"), 10.0,
                   isolation=False)
# The marks admission would give (first-fit): not the ids, which name flows, meters and queues.
MARKS = {"gold": 1, "silver": 2}


def address(host):
    return str(TOPO.host(host).address)


def port(host):
    switch = PLAN.node(f"s{TOPO.host(host).site_id}")
    return next(i.port for i in switch.interfaces if i.peer_node == host)


def switch_table(site_id, colour, slices=(GOLD, SILVER), marks=MARKS):
    switch = PLAN.node(f"s{site_id}")
    flows = switch_flows(PLAN)[site_id] + colour_flows(switch, colour)
    flows += classification_flows(PLAN, slices, colour, marks).get(site_id, [])
    return FakeFlowTable(flows, ports=[i.port for i in switch.interfaces])


def packet(src, dst):
    dst_mac = PLAN.node(f"r{TOPO.host(src).site_id}").interfaces[0].mac  # off-site: via the router
    return {"in_port": port(src), "eth_type": 0x86DD, "ipv6_src": address(src), "ipv6_dst": address(dst),
            "eth_dst": dst_mac}


def marked_dscp(table, pkt):
    flow = table.lookup(TABLE_CLASSIFY, **pkt)
    return next((a[2] for a in flow.actions if a[0] == "set_field" and a[1] == "ip_dscp"), None)


@pytest.mark.parametrize("colour", [0, 1])
def test_member_traffic_gets_the_slice_dscp_in_the_current_colour(colour):
    table = switch_table(1, colour)
    dscp = marked_dscp(table, packet("u1-1", "k3-1"))
    assert dscp == slice_dscp(MARKS["gold"], colour) and slice_of_dscp(dscp) == 1 and colour_of_dscp(dscp) == colour
    assert table.output_ports(**packet("u1-1", "k3-1")) == [1]  # still forwarded to the router


@pytest.mark.parametrize("colour", [0, 1])
def test_non_member_traffic_is_only_coloured(colour):
    table = switch_table(1, colour)
    # k1-1 is not in gold, and u2-1 is a silver member but k1-1 -> k3-1 is in no slice
    dscp = marked_dscp(table, packet("k1-1", "k3-1"))
    assert slice_of_dscp(dscp) is None and colour_of_dscp(dscp) == colour
    # a gold member talking to a non-member of gold at a gold site: not marked gold
    assert slice_of_dscp(marked_dscp(switch_table(3, colour), packet("u3-1", "k1-1"))) is None


def test_lower_slice_id_marks_a_pair_two_shared_slices_claim():
    both = SliceSpec("both", 2, ("u1-1", "u2-1"), ("u1-1", "u2-1"), ("east", "centre"), 1.0, isolation=False)
    table = switch_table(1, 0, (SILVER, both), {"silver": 2, "both": 4})
    assert slice_of_dscp(marked_dscp(table, packet("u1-1", "u2-1"))) == 4  # both: id 2 < silver's 5
    assert slice_of_dscp(marked_dscp(table, packet("k1-1", "u2-1"))) == 2


def test_slice_flows_sit_above_colour_flows_and_meter_first():
    flows = classification_flows(PLAN, [GOLD], 1, {"gold": 7})
    assert sorted(flows) == [1, 3] and PRIORITY_SLICE > PRIORITY_COLOUR
    # u1-1 -> u3-1, k3-1 at east; u3-1 and k3-1 -> u1-1 at west; none within a site
    assert len(flows[1]) == 2 and len(flows[3]) == 2
    for flow in flows[1] + flows[3]:
        # the meter and the cookie carry the id (3), the DSCP the mark (7, colour 1: 0x2f)
        assert flow.actions[0] == ("meter", 3) and flow.actions[1] == ("set_field", "ip_dscp", 0x2F)
        assert flow.priority == PRIORITY_SLICE and flow.goto_table == 1 and flow.cookie == COOKIE_SLICE | 3
    assert all(a[0] != "meter" for f in classification_flows(PLAN, [SILVER], 0, MARKS)[1] for a in f.actions)


def test_large_slice_ids_keep_distinct_cookies_and_classes():
    big = SliceSpec("big", 4095, ("u1-1", "u3-1"), ("u1-1", "u3-1"), ("east", "west"), 1.0)
    flows = classification_flows(PLAN, [big], 0, {"big": 1})
    assert {f.cookie for f in flows[1]} == {COOKIE_SLICE | 4095} and COOKIE_SLICE | 4095 != COOKIE_GUARD
    assert slice_class(4095) == "1:100f" and slice_filter_handle(4095) == "800::fff"


def test_host_missing_from_the_plan_is_an_error():
    ghost = SliceSpec("g", 1, ("u9-1",), ("u9-1",), ("nowhere",), 1.0)
    with pytest.raises(SlicingError, match=r"slice g: host\(s\) u9-1 not in the network plan of tiny"):
        classification_flows(PLAN, [ghost], 0, {"g": 1})


def test_a_slice_without_a_mark_is_an_error():
    with pytest.raises(SlicingError, match="slice gold: no mark; admit it first"):
        classification_flows(PLAN, [GOLD], 0, {"silver": 2})


def test_dscp_layout():
    assert [slice_dscp(i, c) for i, c in ((1, 0), (1, 1), (15, 0))] == [0x22, 0x23, 0x3E]
    assert {slice_of_dscp(slice_dscp(i, c)) for i in range(1, 16) for c in (0, 1)} == set(range(1, 16))
    assert slice_of_dscp(0x20) is None and slice_of_dscp(0x02) is None
    assert slice_traffic_class(15) == 0x3E << 2
    for bad in (0, 16, True, 1.0):
        with pytest.raises(SlicingError, match="must be an int in 1..15"):
            slice_dscp(bad, 0)


def test_meters_per_member_site_switch():
    meters = meter_specs(TOPO, [GOLD, SILVER])
    assert sorted(meters) == [1, 3]
    assert [(m.dpid, m.meter_id, m.rate_kbps, m.band) for m in meters[1]] == [(1, 3, 30000, "drop")]


def htb_rates(commands):
    """{classid: (rate kbit, ceil kbit)} of the HTB classes in a command list."""
    out = {}
    for c in commands:
        if c[:2] == ["tc", "class"]:
            text = " ".join(c)
            classid = re.search(r"classid (\S+)", text).group(1)
            rate, ceil = (int(x) for x in re.search(r"rate (\d+)kbit ceil (\d+)kbit", text).groups())
            out[classid] = (rate, ceil)
    return out


@pytest.mark.parametrize("slices", [{}, {1: 10.0}, {1: 10.0, 15: 25.5}, {2: 49.0}, {4: 30.0, 5: 20.0}])
def test_htb_class_rates_add_up_within_the_link_rate(slices):
    shaped = round(50000 * SHAPING_FRACTION)  # the router shapes just below the link rate
    marks = {sid: n + 1 for n, sid in enumerate(sorted(slices))}
    rates = htb_rates(wan_queue_commands("r1-eth1", 50.0, slices, marks))
    assert rates.pop("1:1") == (shaped, shaped)
    best_effort = rates.pop("1:2")
    assert {k: r for k, (r, _) in rates.items()} == {slice_class(i): round(m * 1000) for i, m in slices.items()}
    assert all(ceil == shaped for _, ceil in [*rates.values(), best_effort])
    total = sum(r for r, _ in rates.values())
    assert total <= 50000
    assert best_effort[0] == max(1, shaped - total)


def test_htb_full_booking_leaves_best_effort_htbs_minimum():
    rates = htb_rates(wan_queue_commands("x", 50.0, {1: 50.0}, {1: 1}))
    assert rates["1:2"][0] == 1 and rates["1:11"][0] == 50000


def test_htb_overbooking_is_refused():
    with pytest.raises(SlicingError, match=r"interface x: slice rates \(slice 1: 30000kbit, slice 2: 30000kbit\) "
                                           r"add up to more than the link's 50000kbit"):
        wan_queue_commands("x", 50.0, {1: 30.0, 2: 30.0}, {1: 1, 2: 2})


def test_two_slices_holding_one_mark_on_an_interface_are_refused():
    with pytest.raises(SlicingError, match="interface x: slices 4, 9 share mark 2 on one link"):
        wan_queue_commands("x", 50.0, {4: 1.0, 9: 1.0}, {4: 2, 9: 2})
    with pytest.raises(SlicingError, match="interface x: slice 9 has no mark"):
        wan_queue_commands("x", 50.0, {9: 1.0}, {})


def test_filters_match_the_mark_bits_of_the_traffic_class():
    marks = {3: 3, 300: 12}  # slice id -> mark
    filters = [c for c in wan_queue_commands("x", 50.0, {3: 5.0, 300: 5.0}, marks) if c[1] == "filter"]
    assert [(c[c.index("handle") + 1], c[c.index("priority") + 1], c[c.index("priority") + 2], c[-1])
            for c in filters] == [("800::3", "0x98", "0xf8", "1:13"), ("800::12c", "0xe0", "0xf8", "1:13c")]
    for c, sid in zip(filters, (3, 300)):
        tc_value = int(c[c.index("priority") + 1], 16)
        for colour in (0, 1):
            for ecn in range(4):
                assert ((slice_dscp(marks[sid], colour) << 2 | ecn) & 0xF8) == tc_value


def test_queue_commands_per_router_interface_follow_the_reservations():
    G = TOPO.graph()
    gold = admit(G, {}, GOLD)  # east-west: least delay with 20 Mbit/s: east-centre-west (15 ms)
    silver = admit(G, {"gold": gold}, SILVER)
    assert gold.path("east", "west").sites == ("east", "centre", "west")
    plan = InterfacePlan.by_link_number(G)
    commands = queue_commands(G, plan, [gold, silver])
    # only east-centre is shaped: one interface at each end
    assert sorted(commands) == [("centre", plan.wan_ifname("centre", "east")),
                                ("east", plan.wan_ifname("east", "centre"))]
    east = htb_rates(commands[("east", plan.wan_ifname("east", "centre"))])
    assert east[slice_class(3)][0] == 20000 and east[slice_class(5)][0] == 10000 and east["1:2"][0] == round(50000 * SHAPING_FRACTION) - 30000
    assert directed_slice_rates([gold])[("west", "centre")] == {3: 20.0}
    # both cross east-centre: distinct marks, and each filter matches its slice's mark
    assert (gold.mark, silver.mark) == (1, 2)
    filters = {c[-1]: int(c[c.index("priority") + 1], 16)
               for c in commands[("east", plan.wan_ifname("east", "centre"))] if c[1] == "filter"}
    assert filters == {slice_class(3): slice_traffic_class(1), slice_class(5): slice_traffic_class(2)}


def test_decap_tables_isolate_and_share():
    tables = decap_tables(TOPO, GOLD)
    assert [(t.site, t.table, t.sid) for t in tables] == [
        ("east", 103, end_dt6_sid(1, 103)), ("west", 103, end_dt6_sid(3, 103))]
    assert tables[1].routes == (f"{address('u3-1')}/128", f"{address('k3-1')}/128")
    shared = decap_tables(TOPO, SILVER)
    assert {t.table for t in shared} == {254} and all(t.routes == () for t in shared)
