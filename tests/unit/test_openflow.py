"""Tests of the FakeFlowTable: the OpenFlow 1.3 semantics our flow tests rely on."""

import pytest

from cpn_net.openflow import FLOOD, FakeFlowTable, FlowSpec

HOST = "02:00:00:01:11:00"
PORTS = (1, 2, 3, 4)


def _to(mac, port, table=1, priority=100):
    return FlowSpec(table, priority, (("eth_dst", mac),), (("output", port),))


def test_higher_priority_wins_whatever_the_list_order():
    low = FlowSpec(1, 10, (("eth_dst", HOST),), (("output", 2),))
    high = FlowSpec(1, 200, (("eth_dst", HOST), ("in_port", 1)), (("output", 3),))
    for flows in ([FlowSpec(0, 0, goto_table=1), low, high], [high, low, FlowSpec(0, 0, goto_table=1)]):
        table = FakeFlowTable(flows, PORTS)
        assert table.output_ports(in_port=1, eth_dst=HOST) == [3]
        assert table.output_ports(in_port=4, eth_dst=HOST) == [2]  # high does not match in_port 4


def test_equal_priority_takes_the_first_given():
    flows = [_to(HOST, 2, table=0), _to(HOST, 3, table=0)]
    assert FakeFlowTable(flows, PORTS).output_ports(in_port=1, eth_dst=HOST) == [2]


def test_table_miss_drops_and_pipeline_starts_at_table_0():
    assert FakeFlowTable([_to(HOST, 2, table=1)], PORTS).output_ports(in_port=1, eth_dst=HOST) == []
    assert FakeFlowTable([], PORTS).output_ports(in_port=1, eth_dst=HOST) == []


def test_goto_table_chains_and_keeps_earlier_outputs():
    flows = [FlowSpec(0, 0, (), (("output", 4),), goto_table=2), _to(HOST, 2, table=2),
             _to(HOST, 3, table=1)]  # table 1 is skipped
    assert FakeFlowTable(flows, PORTS).output_ports(in_port=1, eth_dst=HOST) == [4, 2]


@pytest.mark.parametrize("goto", [0, 1])
def test_goto_table_must_move_forward(goto):
    # reproducer: goto_table to the same table used to loop forever
    with pytest.raises(ValueError, match=rf"goto_table={goto} must be > its table 1 \(OpenFlow 1.3 §5.1\)"):
        FakeFlowTable([FlowSpec(1, 0, goto_table=goto)], PORTS)


def test_output_to_the_ingress_port_is_not_sent():
    # reproducer: the fake reported [2] where a real switch sends nothing
    table = FakeFlowTable([_to(HOST, 2, table=0)], PORTS)
    assert table.output_ports(in_port=2, eth_dst=HOST) == []
    assert table.output_ports(in_port=1, eth_dst=HOST) == [2]


@pytest.mark.parametrize("mac, expected", [
    ("33:33:00:00:00:01", [2, 3, 4]),
    ("33:33:ff:12:34:56", [2, 3, 4]),
    ("33:34:00:00:00:01", []),
    ("02:00:00:00:00:01", []),
])
def test_masked_eth_dst(mac, expected):
    flows = [FlowSpec(0, 10, (("eth_dst", "33:33:00:00:00:00/ff:ff:00:00:00:00"),), (("output", FLOOD),))]
    assert FakeFlowTable(flows, PORTS).output_ports(in_port=1, eth_dst=mac) == expected


def test_mac_matching_ignores_case():
    table = FakeFlowTable([_to(HOST.upper(), 2, table=0)], PORTS)
    assert table.output_ports(in_port=1, eth_dst=HOST) == [2]


def test_flood_without_in_port_reaches_every_port():
    table = FakeFlowTable([FlowSpec(0, 0, (), (("output", FLOOD),))], PORTS)
    assert table.output_ports(eth_dst=HOST) == list(PORTS)


def test_a_match_on_a_field_the_packet_lacks_does_not_match():
    flows = [FlowSpec(0, 10, (("ip_dscp", 46),), (("output", 3),)), FlowSpec(0, 0, (), (("output", 2),))]
    table = FakeFlowTable(flows, PORTS)
    assert table.output_ports(in_port=1, eth_dst=HOST) == [2]
    assert table.output_ports(in_port=1, eth_dst=HOST, ip_dscp=46) == [3]
    assert table.output_ports(in_port=1, eth_dst=HOST, ip_dscp=0) == [2]


def test_set_field_is_seen_by_later_tables():
    flows = [FlowSpec(0, 0, (), (("set_field", "ip_dscp", 46),), goto_table=1),
             FlowSpec(1, 10, (("ip_dscp", 46),), (("output", 3),)),
             FlowSpec(1, 0, (), (("output", 2),))]
    assert FakeFlowTable(flows, PORTS).output_ports(in_port=1, ip_dscp=0) == [3]


def test_set_field_eth_dst_redirects():
    flows = [FlowSpec(0, 0, (), (("set_field", "eth_dst", HOST),), goto_table=1), _to(HOST, 4)]
    assert FakeFlowTable(flows, PORTS).output_ports(in_port=1, eth_dst="02:aa:aa:aa:aa:aa") == [4]


def test_lookup_returns_the_winning_entry_and_does_not_change_flows():
    entry = _to(HOST, 2, table=0)
    table = FakeFlowTable([entry], PORTS)
    assert table.lookup(0, eth_dst=HOST) is entry
    assert table.lookup(1, eth_dst=HOST) is None
    assert entry.match_dict() == {"eth_dst": HOST}
