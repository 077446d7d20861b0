"""The eBPF data plane's map records (cpn_net.dataplane.records): every layout pinned, byte by byte.

Pure: no root, no kernel. The C side of each layout is ``cpn_net/dataplane/bpf/srv6.bpf.c``;
the tests that read it check that both sides still name the same actions, counters and sizes.
"""

import ipaddress
import os
import re
import struct

import pytest
from scapy.layers.inet6 import IPv6, IPv6ExtHdrSegmentRouting

from cpn_net.dataplane import records
from cpn_net.dataplane.records import (BINDING_KEY_BASE, MAX_HEADER, MAX_SEGMENTS, MAX_SLOT, METRIC_SHIFT, STAT_NAMES,
                                       Action, EncapEntry, SidEntry, address_key, kernel_metric, prefix_key,
                                       project_metric, u32_key, unpack_stats)
from cpn_net.srv6.packet import build_udp, decode_srv6, encapsulate
from cpn_net.srv6.sids import end_dt6_sid, end_dx6_sid, end_sid, end_x_sid
from cpn_net.srv6.srh import SegmentRoutingHeader

SOURCE = "fcbb:bb00:1::1"
SEGMENTS = [str(end_x_sid(1, 2)), str(end_sid(4)), str(end_dx6_sid(3, "compute", 1))]
C_SOURCE = os.path.join(os.path.dirname(records.__file__), "bpf", "srv6.bpf.c")


def c_text() -> str:
    with open(C_SOURCE) as handle:
        return handle.read()


def c_enum(name: str) -> list[str]:
    body = re.search(r"enum %s\s*\{([^}]*)\}" % name, c_text()).group(1)
    return [item.split("=")[0].strip() for item in body.split(",") if item.strip()]


# --- struct sid_entry ---------------------------------------------------------------------------

@pytest.mark.parametrize("action, flags", [(Action.END, 0), (Action.END_X, 0), (Action.END_DX6, 1),
                                           (Action.END_DT6, 1), (Action.END_B6_ENCAPS, 1)])
def test_sid_entry_layout_is_action_flags_pad_mark_encap_little_endian(action, flags):
    entry = SidEntry(action, mark=0x5C000102, encap=BINDING_KEY_BASE + 3)
    data = entry.pack()
    assert len(data) == 12
    assert data[0] == int(action) and data[1] == flags and data[2:4] == b"\0\0"
    assert data[4:8] == (0x5C000102).to_bytes(4, "little")
    assert data[8:12] == (BINDING_KEY_BASE + 3).to_bytes(4, "little")
    assert SidEntry.unpack(data) == entry


def test_sid_entry_defaults_and_unpack_ignores_flags():
    assert SidEntry(Action.END).pack() == bytes([1]) + bytes(11)
    assert SidEntry.unpack(bytes([4, 1, 0, 0]) + u32_key(7) + u32_key(0)) == SidEntry(Action.END_DT6, 7, 0)
    with pytest.raises(ValueError):
        SidEntry.unpack(bytes([9]) + bytes(11))  # no such action


def test_actions_named_like_seg6local_and_only_the_delivering_ones_flagged():
    assert [Action.named(a.behaviour) for a in Action] == list(Action)
    assert {a for a in Action if a.delivering} == {Action.END_DX6, Action.END_DT6, Action.END_B6_ENCAPS}
    with pytest.raises(ValueError, match="End.DT4"):
        Action.named("End.DT4")


def test_actions_counters_and_sizes_agree_with_the_c_source():
    text = c_text()
    actions = dict(re.findall(r"(ACT_\w+) = (\d+)", text))
    assert {name: int(value) for name, value in actions.items()} == \
        {f"ACT_{a.name}": int(a) for a in Action}
    assert c_enum("stat") == [f"STAT_{n}" for n in ("END", "END_X", "END_DX6", "END_DT6", "END_B6", "ENCAP",
                                                    "DROP_NO_SRH", "DROP_SL", "DROP_PROTO", "DROP_BOUNDARY",
                                                    "DROP_ERROR", "FIB_MISS", "MAX")]
    assert len(STAT_NAMES) == len(c_enum("stat")) - 1  # STAT_MAX is the count
    assert int(re.search(r"#define MAX_SEGS (\d+)", text).group(1)) == MAX_SEGMENTS
    assert int(re.search(r"#define SID_DELIVERING (\d+)", text).group(1)) == records.SID_DELIVERING


def test_unpack_stats_names_the_counters_in_map_order():
    stats = unpack_stats(range(len(STAT_NAMES)))
    assert list(stats) == list(STAT_NAMES)
    assert stats["end"] == 0 and stats["h_encaps"] == 5 and stats["drop_boundary"] == 9 and stats["fib_miss"] == 11


# --- struct encap_entry -------------------------------------------------------------------------

def scapy_header(entry: EncapEntry):
    outer = IPv6(entry.header)
    return outer, (outer[IPv6ExtHdrSegmentRouting] if outer.nh == 43 else None)


@pytest.mark.parametrize("count", [1, 2, 3, MAX_SEGMENTS])
def test_encap_header_decodes_in_scapy_field_by_field(count):
    travel = [f"fcbb:bb00:{i + 1}::" for i in range(count)]
    entry = EncapEntry.for_segments(SOURCE, travel)
    assert len(entry.header) == 40 + 8 + 16 * count
    outer, srh = scapy_header(entry)
    assert (outer.version, outer.tc, outer.fl, outer.hlim, outer.nh) == (6, 0, 0, 64, 43)
    assert outer.plen == 8 + 16 * count  # the SRH only: the program adds the inner packet's length
    assert (outer.src, outer.dst) == (SOURCE, travel[0])
    assert (srh.nh, srh.type, srh.segleft, srh.lastentry, srh.len) == (41, 4, count - 1, count - 1, 2 * count)
    assert srh.addresses == list(reversed(travel))  # SRH order: the last segment first
    assert entry.destination == travel[0] and entry.segments_left == count - 1
    assert entry.segments == tuple(str(ipaddress.IPv6Address(a)) for a in reversed(travel))


def test_encap_header_is_the_model_encapsulation_minus_the_inner_packet():
    inner = build_udp("2001:db8:1::1:1", "2001:db8:3::2:1", 5000, 7000, b"payload")
    entry = EncapEntry.for_segments(SOURCE, SEGMENTS)
    whole = encapsulate(inner, SOURCE, SEGMENTS)
    header = entry.header
    assert whole[len(header):] == inner
    assert whole[:4] == header[:4] and whole[6:len(header)] == header[6:]
    assert struct.unpack("!H", whole[4:6])[0] == struct.unpack("!H", header[4:6])[0] + len(inner)
    parsed = decode_srv6(whole)
    assert parsed.srh.to_bytes() == header[40:]


def test_reduced_one_segment_is_a_bare_ipv6_header_with_ipv6_inside():
    entry = EncapEntry.for_segments(SOURCE, SEGMENTS[:1], reduced=True)
    assert len(entry.header) == 40
    outer, srh = scapy_header(entry)
    assert srh is None and outer.nh == 41 and outer.plen == 0 and outer.dst == SEGMENTS[0]
    assert entry.segments == () and entry.segments_left is None
    inner = build_udp("2001:db8:1::1:1", "2001:db8:3::2:1", 1, 2)
    assert encapsulate(inner, SOURCE, SEGMENTS[:1], reduced=True)[6:40] == entry.header[6:40]


def test_reduced_three_segments_leave_the_first_out_of_the_srh():
    entry = EncapEntry.for_segments(SOURCE, SEGMENTS, reduced=True)
    outer, srh = scapy_header(entry)
    assert len(entry.header) == 40 + 8 + 16 * 2
    assert outer.dst == SEGMENTS[0] and outer.nh == 43 and outer.plen == 8 + 32
    assert (srh.segleft, srh.lastentry, srh.nh) == (2, 1, 41)  # Segments Left = Last Entry + 1
    assert srh.addresses == [SEGMENTS[2], SEGMENTS[1]]
    inner = build_udp("2001:db8:1::1:1", "2001:db8:3::2:1", 1, 2)
    assert encapsulate(inner, SOURCE, SEGMENTS, reduced=True)[40:len(entry.header)] == entry.header[40:]


def test_advanced_applies_the_headends_own_endpoint_ahead():
    entry = EncapEntry.for_segments(SOURCE, SEGMENTS, advanced=1)
    outer, srh = scapy_header(entry)
    assert outer.dst == SEGMENTS[1] and srh.segleft == 1 and srh.lastentry == 2
    assert srh.addresses == list(reversed(SEGMENTS))  # the list itself is unchanged
    model = SegmentRoutingHeader.for_segments(SEGMENTS).advanced()
    assert entry.header[40:] == model.to_bytes()
    assert str(model.active_segment) == entry.destination
    two = EncapEntry.for_segments(SOURCE, SEGMENTS, advanced=2)
    assert two.destination == SEGMENTS[2] and two.segments_left == 0
    with pytest.raises(ValueError, match="cannot advance 3 of 3"):
        EncapEntry.for_segments(SOURCE, SEGMENTS, advanced=3)
    with pytest.raises(ValueError, match="cannot advance"):
        EncapEntry.for_segments(SOURCE, SEGMENTS, advanced=-1)


def test_encap_entry_pack_is_len_pads_then_header_zero_filled_to_the_c_size():
    entry = EncapEntry.for_segments(SOURCE, SEGMENTS)
    data = entry.pack()
    assert len(data) == 8 + MAX_HEADER == 312
    assert struct.unpack("<HHI", data[:8]) == (len(entry.header), 0, 0)
    assert data[8:8 + len(entry.header)] == entry.header
    assert data[8 + len(entry.header):] == bytes(MAX_HEADER - len(entry.header))
    assert EncapEntry.unpack(data) == entry
    full = EncapEntry.for_segments(SOURCE, [f"fc00::{i + 1}" for i in range(MAX_SEGMENTS)])
    assert len(full.header) == MAX_HEADER and EncapEntry.unpack(full.pack()) == full


def test_more_than_sixteen_segments_are_refused_by_name():
    with pytest.raises(ValueError, match="17 segments: the eBPF data plane carries at most 16"):
        EncapEntry.for_segments(SOURCE, [f"fc00::{i + 1}" for i in range(17)])
    with pytest.raises(ValueError, match="at most 16 segments"):
        EncapEntry(bytes(MAX_HEADER + 8))
    with pytest.raises(ValueError, match="does not fit"):
        EncapEntry(bytes(39))


# --- keys ---------------------------------------------------------------------------------------

def test_prefix_key_is_little_endian_length_then_the_network_address():
    key = prefix_key("2001:db8:3::7/64")  # host bits are masked off
    assert len(key) == 20
    assert key == struct.pack("<I", 64) + ipaddress.IPv6Address("2001:db8:3::").packed
    assert prefix_key("2001:db8:3::1") == struct.pack("<I", 128) + ipaddress.IPv6Address("2001:db8:3::1").packed
    assert prefix_key("::/0") == bytes(20)


def test_address_and_u32_keys():
    assert address_key("fcbb:bb00:1::1") == ipaddress.IPv6Address("fcbb:bb00:1::1").packed
    assert address_key(end_dt6_sid(3, 100)) == end_dt6_sid(3, 100).packed
    assert u32_key(BINDING_KEY_BASE + 1) == bytes.fromhex("0100f0ff")


# --- the route-metric plan ----------------------------------------------------------------------

def test_every_policy_slot_sorts_below_the_igp_and_every_backup_above():
    igp_plain = 1024 << METRIC_SHIFT
    assert kernel_metric(None, 0) == kernel_metric(1024, 0) == igp_plain
    for slot in (0, 1, 2, 1000, MAX_SLOT):
        assert kernel_metric(100, slot) < igp_plain
        assert kernel_metric(2048, slot) > kernel_metric(1024, MAX_SLOT)
    assert kernel_metric(100, MAX_SLOT) < kernel_metric(101, 0)
    assert sorted([kernel_metric(2048, 0), kernel_metric(100, 5), kernel_metric(1024, 0), kernel_metric(100, 0)]) == \
        [kernel_metric(100, 0), kernel_metric(100, 5), kernel_metric(1024, 0), kernel_metric(2048, 0)]


def test_project_metric_inverts_kernel_metric_and_everything_fits_a_u32():
    for priority in (0, 1, 100, 1024, 2048, 4094):
        for slot in (0, 7, MAX_SLOT):
            metric = kernel_metric(priority, slot)
            assert 0 <= metric < 1 << 32
            assert project_metric(metric) == priority and metric & MAX_SLOT == slot


def test_binding_keys_sit_above_every_metric_of_the_projects_bands():
    assert kernel_metric(2048, MAX_SLOT) < BINDING_KEY_BASE
    assert kernel_metric(4094, MAX_SLOT) < BINDING_KEY_BASE


def test_metric_plan_refusals():
    with pytest.raises(ValueError, match="slot"):
        kernel_metric(100, MAX_SLOT + 1)
    with pytest.raises(ValueError, match="slot"):
        kernel_metric(100, -1)
    with pytest.raises(ValueError, match="too large"):
        kernel_metric(1 << (32 - METRIC_SHIFT), 0)
    with pytest.raises(ValueError, match="too large"):
        kernel_metric(-1, 0)
