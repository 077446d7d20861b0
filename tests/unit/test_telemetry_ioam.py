"""Unit tests for cpn_net.telemetry.ioam (RFC 9197 trace in an RFC 9486 hop-by-hop option)."""

from __future__ import annotations

import random
import struct

import pytest
from scapy.layers.inet6 import (
    IPv6,
    HBHOptUnknown,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrSegmentRouting,
    PadN,
)
from scapy.packet import Raw

from cpn_net.telemetry.errors import TelemetryDecodeError, TelemetryValueError
from cpn_net.telemetry.ioam import (
    MAX_TRACE_DATA_LEN,
    NEXT_HEADER_NONE,
    OPTION_IOAM,
    TRACE_HOP_LIMIT_NODE_ID,
    TRACE_IF_IDS,
    TRACE_OPAQUE_STATE,
    TRACE_TS_FRACTION,
    TRACE_TS_SECONDS,
    TRACE_TYPE_DELAY,
    UNAVAILABLE_U32,
    DecodeStats,
    IoamNode,
    build_trace_option,
    decode_or_count,
    encode_node,
    node_len_words,
    node_timestamp_ns,
    parse_hop_by_hop,
    parse_ipv6_packet,
    parse_trace,
    record_transit_node,
    trace_bit,
)

SRC, DST = "2001:db8:1::1:1", "fcbb:bb00:4::"

# --- byte-exact encoding (hand-computed from RFC 8200 §4.2-4.3, RFC 9486 §3, RFC 9197 §4.4) ---


def test_build_trace_option_bytes_for_delay_trace_three_hops():
    expected = bytes.fromhex(
        "2b07"  # Next Header 43 (SRH), Hdr Ext Len 7 -> 64 octets
        "0100"  # PadN, 0 data octets: IOAM option starts at offset 4
        "313a0000"  # option 0x31, Opt Data Len 58, Reserved, IOAM Option-Type 0 (pre-allocated)
        "007b200c"  # Namespace-ID 123 | NodeLen 4, Flags 0, RemainingLen 12
        "f0000000"  # IOAM-Trace-Type bits 0-3 | Reserved
    ) + bytes(48)
    assert build_trace_option(123, TRACE_TYPE_DELAY, 3) == expected


def test_build_trace_option_pads_to_eight_octets():
    expected = bytes.fromhex(
        "3b03"  # Next Header 59, 32 octets
        "0100"
        "31160000"  # Opt Data Len 22 = 2 + 8 + 12
        "00010803"  # Namespace-ID 1 | NodeLen 1 | RemainingLen 3
        "80000000"
        "000000000000000000000000"
        "01020000"  # trailing PadN with 2 data octets
    )
    assert build_trace_option(1, TRACE_HOP_LIMIT_NODE_ID, 3, next_header=NEXT_HEADER_NONE) == expected


def test_transit_nodes_fill_from_the_end_like_linux():
    hbh = build_trace_option(1, TRACE_HOP_LIMIT_NODE_ID, 3, next_header=NEXT_HEADER_NONE)
    for hop_limit, node_id in [(64, 1), (63, 2), (62, 3)]:
        hbh = record_transit_node(hbh, IoamNode(hop_limit=hop_limit, node_id=node_id))
    assert hbh == bytes.fromhex(
        "3b03010031160000"
        "00010800"  # RemainingLen 0
        "80000000"
        "3e000003"  # last hop first on the wire
        "3f000002"
        "40000001"
        "01020000"
    )
    overflowed = record_transit_node(hbh, IoamNode(hop_limit=61, node_id=4))
    assert overflowed[10] == 0x0C  # NodeLen 1 << 3 | Overflow flag (0x04)
    assert overflowed[16:28] == hbh[16:28]
    trace = parse_hop_by_hop(overflowed)
    assert trace.overflow and [n.node_id for n in trace.nodes] == [1, 2, 3]
    assert record_transit_node(overflowed, IoamNode(hop_limit=60, node_id=5)) == overflowed


def test_encode_node_all_fixed_fields():
    node = IoamNode(
        hop_limit=0x40, node_id=0x010203, ingress_if=0x0A0B, egress_if=0x0C0D,
        ts_s=0x11223344, ts_frac=100_000, transit_delay=0x7FFFFFFF, namespace_data=0xDEADBEEF,
        queue_depth=0x100, checksum_complement=0x12345678, hop_limit_wide=0x3F,
        node_id_wide=0x01020304050607, ingress_if_wide=0xA1A2A3A4, egress_if_wide=0xB1B2B3B4,
        namespace_data_wide=0x0011223344556677, buffer_occupancy=0x400,
    )
    trace_type = 0xFFF000
    assert node_len_words(trace_type) == 15
    assert encode_node(node, trace_type).hex() == (
        "40010203" "0a0b0c0d" "11223344" "000186a0" "7fffffff" "deadbeef" "00000100" "12345678"
        "3f01020304050607" "a1a2a3a4" "b1b2b3b4" "0011223344556677" "00000400"
    )


def test_encode_node_unset_values_are_all_ones_and_opaque_snapshot_follows():
    node = IoamNode(hop_limit=5, node_id=6, opaque_schema_id=0xABC, opaque_data=b"\x01\x02\x03\x04" * 2)
    encoded = encode_node(node, TRACE_HOP_LIMIT_NODE_ID | TRACE_OPAQUE_STATE)
    assert encoded.hex() == "05000006" "02000abc" "0102030401020304"
    assert encode_node(IoamNode(), TRACE_IF_IDS | TRACE_OPAQUE_STATE).hex() == "ffffffff" "00ffffff"


def test_encode_node_rejects_oversized_values():
    with pytest.raises(TelemetryValueError, match=r"node node_id=16777216 must be an int in 0..16777215"):
        encode_node(IoamNode(hop_limit=1, node_id=1 << 24), TRACE_HOP_LIMIT_NODE_ID)
    with pytest.raises(TelemetryValueError, match=r"opaque_data has 3 octets; must be a multiple of 4"):
        encode_node(IoamNode(opaque_data=b"abc"), TRACE_OPAQUE_STATE)


def test_decode_undefined_bits_written_as_all_ones():
    raw = bytes.fromhex("00011000" "80080000" "40000001" "ffffffff")
    [node] = parse_trace(raw).nodes
    assert (node.hop_limit, node.node_id, node.undefined) == (64, 1, (UNAVAILABLE_U32,))


def test_trace_bits_are_numbered_from_the_most_significant():
    expected = [TRACE_HOP_LIMIT_NODE_ID, TRACE_IF_IDS, TRACE_TS_SECONDS, TRACE_TS_FRACTION]
    assert [trace_bit(n) for n in (0, 1, 2, 3)] == expected
    with pytest.raises(TelemetryValueError, match="trace type bit 24 must be in 0..23"):
        trace_bit(24)


# --- alignment and sizes ------------------------------------------------------


def _ioam_offset(hbh: bytes) -> int:
    pos = 2
    while hbh[pos] != OPTION_IOAM:
        pos += 1 if hbh[pos] == 0 else 2 + hbh[pos + 1]
    return pos


@pytest.mark.parametrize("trace_type", [0x800000, 0xC00000, TRACE_TYPE_DELAY, 0xFFF000, 0x808000, 0x800002])
def test_option_is_four_aligned_and_header_is_eight_octet_multiple(trace_type):
    for n_hops in range(1, 9):
        try:
            hbh = build_trace_option(77, trace_type, n_hops, opaque_words_per_hop=1 if trace_type & 2 else 0)
        except TelemetryValueError:
            continue
        assert len(hbh) % 8 == 0 and len(hbh) == (hbh[1] + 1) * 8
        offset = _ioam_offset(hbh)
        assert offset % 4 == 0 and (offset + 4) % 8 == 0  # trace header 8-octet aligned
        trace = parse_hop_by_hop(hbh)
        per_hop = node_len_words(trace_type) + (2 if trace_type & 2 else 0)
        assert trace.remaining_len == n_hops * per_hop
        assert hbh[offset + 1] == 2 + 8 + 4 * trace.remaining_len
        assert trace.nodes == () and not trace.overflow


def test_largest_trace_fits_one_option():
    hbh = build_trace_option(1, TRACE_HOP_LIMIT_NODE_ID, 61)
    assert parse_hop_by_hop(hbh).data_len == MAX_TRACE_DATA_LEN
    with pytest.raises(TelemetryValueError) as err:
        build_trace_option(1, TRACE_TYPE_DELAY, 16)
    assert "needs 256 octets of node data; at most 244 fit" in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"namespace_id": 70000}, r"namespace_id=70000 must be an int in 0..65535"),
        ({"trace_type": 0}, r"trace_type=0 must be an int in 1..16777215"),
        ({"trace_type": 0x800800}, r"sets undefined bits 12-21 or reserved bit 23"),
        ({"trace_type": 0x800001}, r"reserved bit 23"),
        ({"n_hops": 0}, r"n_hops=0 must be an int in 1..255"),
        ({"opaque_words_per_hop": 2}, r"opaque_words_per_hop=2 needs trace type bit 22"),
        ({"next_header": 256}, r"next_header=256 must be an int in 0..255"),
    ],
)
def test_build_trace_option_argument_errors(kwargs, message):
    args = {"namespace_id": 1, "trace_type": TRACE_HOP_LIMIT_NODE_ID, "n_hops": 2} | kwargs
    with pytest.raises(TelemetryValueError, match=message):
        build_trace_option(**args)


# --- round trips ---------------------------------------------------------------

_FIELD_WIDTHS = {
    "hop_limit": 8, "node_id": 24, "ingress_if": 16, "egress_if": 16, "ts_s": 32, "ts_frac": 32,
    "transit_delay": 32, "namespace_data": 32, "queue_depth": 32, "checksum_complement": 32,
    "hop_limit_wide": 8, "node_id_wide": 56, "ingress_if_wide": 32, "egress_if_wide": 32,
    "namespace_data_wide": 64, "buffer_occupancy": 32,
}
_FIELD_BITS = {
    "hop_limit": 0, "node_id": 0, "ingress_if": 1, "egress_if": 1, "ts_s": 2, "ts_frac": 3,
    "transit_delay": 4, "namespace_data": 5, "queue_depth": 6, "checksum_complement": 7,
    "hop_limit_wide": 8, "node_id_wide": 8, "ingress_if_wide": 9, "egress_if_wide": 9,
    "namespace_data_wide": 10, "buffer_occupancy": 11,
}


def _random_node(rng, trace_type, opaque_words):
    values = {
        name: rng.getrandbits(width)
        for name, width in _FIELD_WIDTHS.items()
        if trace_type & trace_bit(_FIELD_BITS[name])
    }
    if trace_type & TRACE_OPAQUE_STATE:
        values["opaque_schema_id"] = rng.getrandbits(24)
        values["opaque_data"] = rng.randbytes(4 * opaque_words)
    return IoamNode(**values)


def _random_trace_type(rng):
    trace_type = rng.getrandbits(12) << 12 | (TRACE_OPAQUE_STATE if rng.random() < 0.3 else 0)
    return trace_type or TRACE_HOP_LIMIT_NODE_ID


def test_random_round_trips_keep_every_field_and_path_order():
    rng = random.Random(2024)
    done = 0
    while done < 300:
        trace_type = _random_trace_type(rng)
        opaque = rng.randint(0, 2) if trace_type & TRACE_OPAQUE_STATE else 0
        per_hop = node_len_words(trace_type) + ((1 + opaque) if trace_type & TRACE_OPAQUE_STATE else 0)
        max_hops = MAX_TRACE_DATA_LEN // (4 * per_hop)
        if max_hops < 1:
            continue
        n_hops = rng.randint(1, min(max_hops, 8))
        namespace = rng.getrandbits(16)
        hbh = build_trace_option(namespace, trace_type, n_hops, opaque_words_per_hop=opaque)
        filled = rng.randint(0, n_hops)
        nodes = [_random_node(rng, trace_type, opaque) for _ in range(filled)]
        for node in nodes:
            hbh = record_transit_node(hbh, node)
        trace = parse_hop_by_hop(hbh)
        assert trace.nodes == tuple(nodes)
        assert (trace.namespace_id, trace.trace_type) == (namespace, trace_type)
        assert trace.node_len == node_len_words(trace_type)
        assert trace.remaining_len == (n_hops - filled) * per_hop
        assert not trace.overflow
        done += 1


# --- scapy sees the same lengths -----------------------------------------------


def test_scapy_parses_our_hop_by_hop_header_consistently():
    hbh = build_trace_option(123, TRACE_HOP_LIMIT_NODE_ID, 3, next_header=NEXT_HEADER_NONE)
    hbh = record_transit_node(hbh, IoamNode(hop_limit=63, node_id=1))
    parsed = IPv6ExtHdrHopByHop(hbh)
    assert parsed.nh == NEXT_HEADER_NONE and parsed.len == hbh[1]
    kinds = [(type(o).__name__, o.otype, o.optlen) for o in parsed.options]
    assert kinds == [("PadN", 1, 0), ("HBHOptUnknown", 0x31, 22), ("PadN", 1, 2)]
    assert parsed.options[1].optdata == hbh[6:28]
    assert bytes(parsed) == hbh


def test_scapy_built_option_list_gives_the_same_bytes():
    ours = build_trace_option(123, TRACE_HOP_LIMIT_NODE_ID, 3)
    ioam_data = ours[6:28]
    theirs = IPv6ExtHdrHopByHop(
        nh=43, options=[PadN(optdata=b""), HBHOptUnknown(otype=0x31, optdata=ioam_data), PadN(optdata=b"\x00\x00")]
    )
    assert bytes(theirs) == ours


def test_full_probe_with_srh_decodes_in_scapy_and_here():
    hbh = build_trace_option(9, TRACE_TYPE_DELAY, 2)
    hbh = record_transit_node(hbh, IoamNode(hop_limit=63, node_id=1, ingress_if=1, egress_if=2, ts_s=1000, ts_frac=5))
    srh = IPv6ExtHdrSegmentRouting(addresses=["fcbb:bb00:4::", "fcbb:bb00:2::"], segleft=1, nh=59)
    probe = IPv6(src=SRC, dst="fcbb:bb00:2::", nh=0) / Raw(hbh) / srh
    wire = bytes(probe)
    again = IPv6(wire)
    assert again.nh == 0
    assert again[IPv6ExtHdrHopByHop].len == hbh[1]
    assert again[IPv6ExtHdrSegmentRouting].segleft == 1
    assert again[IPv6ExtHdrSegmentRouting].addresses == ["fcbb:bb00:4::", "fcbb:bb00:2::"]
    trace = parse_ipv6_packet(wire)
    assert [(n.node_id, n.ingress_if, n.egress_if, n.ts_s, n.ts_frac) for n in trace.nodes] == [(1, 1, 2, 1000, 5)]


# --- decode errors name what is wrong ------------------------------------------


def _ipv6(payload: bytes, nh: int = 0, version: int = 6) -> bytes:
    return struct.pack(">IHBB", version << 28, len(payload), nh, 64) + bytes(32) + payload


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [
        (b"\x60" * 10, "truncated", "IPv6 packet: 10 octets, the header alone needs 40"),
        (_ipv6(b"", version=4), "not_ipv6", "version=4, expected 6"),
        (_ipv6(b"\x3b\x00" + bytes(6), nh=43), "no_hop_by_hop", "Next Header=43, expected 0"),
        (_ipv6(build_trace_option(1, 0x800000, 2))[:-3], "truncated", "Payload Length=24 but 21 octets follow"),
        (_ipv6(bytes.fromhex("3b00010400000000")), "no_ioam_option", "carries no IOAM option (type 0x31)"),
        (_ipv6(bytes.fromhex("3b0031ff00000000")), "bad_option_length", "option 0x31 at octet 2 runs past"),
        (_ipv6(bytes.fromhex("3b0000000031040000010000" + "00" * 4)), "bad_option_length", "runs past"),
        (_ipv6(bytes.fromhex("3b00003102000000")), "misaligned_option", "IOAM option at octet 3 is not 4n-aligned"),
        (_ipv6(bytes.fromhex("3b00010031020001")), "unsupported_ioam_type", "Option-Type 1 is not a pre-allocated"),
        (_ipv6(bytes.fromhex("3b00010031010000")), "truncated", "Opt Data Len=1, need >= 2"),
    ],
)
def test_decode_errors(data, reason, message):
    with pytest.raises(TelemetryDecodeError) as err:
        parse_ipv6_packet(data)
    assert err.value.reason == reason
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("trace", "reason", "message"),
    [
        (bytes(7), "truncated", "trace: 7 octets, the header alone needs 8"),
        (bytes.fromhex("0001080000000000"), "empty_trace_type", "selects no data field"),
        (bytes.fromhex("0001100080000000"), "node_len_mismatch", "NodeLen=2 but IOAM-Trace-Type 0x800000 needs 1"),
        (bytes.fromhex("000108008000000000"), "bad_length", "node data of 1 octets is not a multiple of 4"),
        (bytes.fromhex("0001080280000000" "00000000"), "bad_remaining_len", "RemainingLen=2 exceeds the 4-octet data"),
        (bytes.fromhex("0001100080080000" "40000001"), "partial_node", "needs 8 octets, 4 left"),
        (bytes.fromhex("0001080080000200" "40000001" "02000001"), "partial_node", "opaque state at octet 4: Length=2"),
        (bytes.fromhex("0001080080000200" "40000001"), "partial_node", "opaque state header at octet 4"),
    ],
)
def test_trace_decode_errors(trace, reason, message):
    with pytest.raises(TelemetryDecodeError) as err:
        parse_trace(trace)
    assert err.value.reason == reason
    assert message in str(err.value)


def test_hop_by_hop_header_shorter_than_its_length_field():
    hbh = build_trace_option(1, TRACE_TYPE_DELAY, 2)
    with pytest.raises(TelemetryDecodeError, match=r"Hdr Ext Len=5 means 48 octets, got 40") as err:
        parse_hop_by_hop(hbh[:40])
    assert err.value.reason == "truncated"


def test_pad1_and_foreign_options_before_ioam_are_skipped():
    # Router Alert (type 5, 2 data octets) then Pad1 x2, IOAM at offset 8.
    trace = bytes.fromhex("00010801" "80000000" "00000000")
    option = bytes([0x31, 2 + len(trace), 0, 0]) + trace
    hbh = bytes([59, 0]) + bytes.fromhex("05020000") + b"\x00\x00" + option
    hbh += bytes((-len(hbh)) % 8)
    hbh = bytes([59, len(hbh) // 8 - 1]) + hbh[2:]
    assert parse_hop_by_hop(hbh).remaining_len == 1


# --- timestamps -----------------------------------------------------------------


def test_node_timestamp_formats():
    assert node_timestamp_ns(IoamNode(ts_s=10, ts_frac=999_999)) == 10_999_999_000
    assert node_timestamp_ns(IoamNode(ts_s=10, ts_frac=1_000_000)) is None  # not a µs fraction
    assert node_timestamp_ns(IoamNode(ts_s=10, ts_frac=5), "ptp") == 10_000_000_005
    assert node_timestamp_ns(IoamNode(ts_s=10, ts_frac=1 << 30), "ntp") == 10_250_000_000
    assert node_timestamp_ns(IoamNode(ts_s=10)) is None
    assert node_timestamp_ns(IoamNode(ts_s=10, ts_frac=UNAVAILABLE_U32), "ntp") is None
    with pytest.raises(TelemetryValueError, match=r"ts_format='tai' must be 'posix' \(Linux\), 'ptp' or 'ntp'"):
        node_timestamp_ns(IoamNode(ts_s=1, ts_frac=1), "tai")


# --- robustness: mutated, truncated and foreign packets -------------------------


def _corpus(rng):
    corpus = []
    for _ in range(40):
        trace_type = _random_trace_type(rng)
        opaque = rng.randint(0, 1) if trace_type & TRACE_OPAQUE_STATE else 0
        per_hop = node_len_words(trace_type) + ((1 + opaque) if trace_type & TRACE_OPAQUE_STATE else 0)
        max_hops = MAX_TRACE_DATA_LEN // (4 * per_hop)
        if max_hops < 1:
            continue
        n_hops = rng.randint(1, min(max_hops, 6))
        hbh = build_trace_option(rng.getrandbits(16), trace_type, n_hops, opaque_words_per_hop=opaque)
        for _ in range(rng.randint(0, n_hops)):
            hbh = record_transit_node(hbh, _random_node(rng, trace_type, opaque))
        corpus.append(_ipv6(hbh + rng.randbytes(rng.choice([0, 8, 40]))))
    return corpus


def _mutate(rng, packet: bytes) -> bytes:
    data = bytearray(packet)
    kind = rng.randrange(8)
    if kind == 0:
        return bytes(data[: rng.randrange(len(data))])
    if kind == 1:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 2:  # lie in a length field
        offset = rng.choice([4, 5, 41, 45, 50, 51, 46, 47])
        if offset < len(data):
            data[offset] = rng.randrange(256)
    elif kind == 3:  # foreign option or IOAM type
        offset = rng.choice([44, 46, 47])
        data[offset] = rng.randrange(256)
    elif kind == 4:
        return rng.randbytes(rng.randrange(120))
    elif kind == 5:
        at = rng.randrange(len(data))
        return bytes(data[:at] + rng.randbytes(rng.randint(1, 9)) + data[at:])
    elif kind == 6:
        at = rng.randrange(len(data))
        return bytes(data[:at] + data[at + rng.randint(1, 9):])
    else:
        start = rng.randrange(len(data))
        data[start : start + 4] = rng.randbytes(4)
    return bytes(data)


def test_decoder_survives_12000_mutated_packets():
    rng = random.Random(9341)
    corpus = _corpus(rng)
    stats = DecodeStats()
    cases = 12_000
    for _ in range(cases):
        # Any exception other than TelemetryDecodeError escapes decode_or_count and fails the test.
        trace = decode_or_count(_mutate(rng, rng.choice(corpus)), stats)
        if trace is not None:
            assert 4 * trace.remaining_len <= trace.data_len
    assert stats.decoded + stats.total_dropped == cases
    assert stats.decoded > 1000  # mutations inside node data still decode
    assert {"truncated", "not_ipv6", "no_ioam_option", "bad_option_length", "partial_node"} <= set(stats.dropped)


def test_every_layer_survives_random_bytes():
    rng = random.Random(8)
    stats = DecodeStats()
    for _ in range(3000):
        data = rng.randbytes(rng.randrange(80))
        for layer in ("ipv6", "hop_by_hop", "trace"):
            decode_or_count(data, stats, layer=layer)
    assert stats.decoded + stats.total_dropped == 9000


def test_decode_or_count_counts_reasons_and_rejects_unknown_layer():
    stats = DecodeStats()
    good = _ipv6(build_trace_option(1, TRACE_HOP_LIMIT_NODE_ID, 1))
    assert decode_or_count(good, stats) is not None
    assert decode_or_count(good[:20], stats) is None
    assert decode_or_count(good[40:], stats, layer="hop_by_hop") is not None
    assert stats.to_dict() == {"decoded": 2, "dropped": {"truncated": 1}}
    with pytest.raises(TelemetryValueError, match=r"layer='udp' must be one of \['hop_by_hop', 'ipv6', 'trace'\]"):
        decode_or_count(good, stats, layer="udp")
