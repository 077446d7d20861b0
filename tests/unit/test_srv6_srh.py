"""SRH codec: byte-exact against scapy, parse back, refusals, and a seeded fuzz."""

import ipaddress
import random

import pytest
from scapy.layers.inet6 import IPv6ExtHdrSegmentRouting, IPv6ExtHdrSegmentRoutingTLV

from cpn_net.srv6.errors import SrhError
from cpn_net.srv6.sids import end_dx6_sid, end_sid, end_x_sid
from cpn_net.srv6.srh import (TLV_PAD1, TLV_PADN, SegmentRoutingHeader, Tlv, decode_srh, padding_tlvs)

SEGMENTS = [end_sid(2), end_x_sid(3, 4), end_sid(5), end_sid(6), end_dx6_sid(7, "compute", 1)]


def scapy_flags(layer):
    return (layer.unused1 << 7 | layer.protected << 6 | layer.oam << 5 | layer.alert << 4 | layer.hmac << 3
            | layer.unused2)


def scapy_srh(srh_travel, segments_left, *, tlvs=(), tag=0, oam=0, nh=41):
    return IPv6ExtHdrSegmentRouting(nh=nh, addresses=[str(s) for s in reversed(srh_travel)], segleft=segments_left,
                                    tag=tag, oam=oam, tlv_objects=list(tlvs))


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_encoding_is_byte_exact_with_scapy_and_parses_back(count):
    travel = SEGMENTS[:count]
    ours = SegmentRoutingHeader.for_segments(travel)
    theirs = scapy_srh(travel, count - 1)
    assert ours.to_bytes() == bytes(theirs)
    parsed = IPv6ExtHdrSegmentRouting(ours.to_bytes())
    assert [ipaddress.IPv6Address(a) for a in parsed.addresses] == list(ours.segment_list)
    assert (parsed.nh, parsed.len, parsed.type, parsed.segleft, parsed.lastentry, parsed.tag) == \
        (41, ours.hdr_ext_len, 4, count - 1, count - 1, 0)
    decoded, rest = decode_srh(bytes(theirs))
    assert decoded == ours and rest == b""
    assert decoded.travel_order == tuple(travel)
    assert decoded.active_segment == travel[0]


def test_flags_tag_and_next_header_survive_both_ways():
    ours = SegmentRoutingHeader.for_segments(SEGMENTS[:2], next_header=59, flags=0x20, tag=0xBEEF)
    theirs = scapy_srh(SEGMENTS[:2], 1, tag=0xBEEF, oam=1, nh=59)
    assert ours.to_bytes() == bytes(theirs)
    parsed = IPv6ExtHdrSegmentRouting(ours.to_bytes())
    assert (scapy_flags(parsed), parsed.tag, parsed.nh) == (0x20, 0xBEEF, 59)


@pytest.mark.parametrize("value_len, expected_pad", [(4, TLV_PADN), (5, TLV_PAD1), (6, None), (2, TLV_PADN)])
def test_tlvs_are_padded_like_scapy_pads_them(value_len, expected_pad):
    tlv = Tlv(7, bytes(range(value_len)))
    ours = SegmentRoutingHeader.for_segments(SEGMENTS[:2], tlvs=[tlv])
    theirs = scapy_srh(SEGMENTS[:2], 1, tlvs=[IPv6ExtHdrSegmentRoutingTLV(type=7, len=value_len,
                                                                           value=bytes(range(value_len)))])
    assert ours.to_bytes() == bytes(theirs)
    assert ours.size % 8 == 0
    assert (ours.tlvs[-1].type if len(ours.tlvs) > 1 else None) == expected_pad
    decoded, _ = decode_srh(bytes(theirs))
    assert decoded.tlvs == ours.tlvs
    parsed = IPv6ExtHdrSegmentRouting(ours.to_bytes())
    assert parsed.tlv_objects[0].type == 7 and bytes(parsed.tlv_objects[0].value) == bytes(range(value_len))


def test_reduced_srh_leaves_the_first_segment_out_and_points_past_the_last_entry():
    ours = SegmentRoutingHeader.for_segments(SEGMENTS[:3], reduced=True)
    theirs = scapy_srh(SEGMENTS[1:3], 2)
    assert ours.to_bytes() == bytes(theirs)
    assert (ours.segments_left, ours.last_entry, ours.active_segment) == (2, 1, None)
    assert ours.advanced().active_segment == SEGMENTS[1]
    assert decode_srh(bytes(theirs))[0] == ours


def test_advancing_walks_the_segments_in_travel_order_then_refuses():
    srh = SegmentRoutingHeader.for_segments(SEGMENTS)
    visited = [srh.active_segment]
    while srh.segments_left:
        srh = srh.advanced()
        visited.append(srh.active_segment)
    assert visited == SEGMENTS
    with pytest.raises(SrhError, match="Segments Left is 0: no segment left to advance to"):
        srh.advanced()


def test_decode_returns_the_bytes_after_the_header():
    data = SegmentRoutingHeader.for_segments(SEGMENTS[:1]).to_bytes() + b"payload"
    assert decode_srh(data)[1] == b"payload"


@pytest.mark.parametrize("data, message", [
    (b"\x29\x02\x04", "SRH truncated: 3 octets, the fixed part alone is 8"),
    (bytes.fromhex("2902030000000000") + bytes(16), "Routing Type=3 is not a Segment Routing Header"),
    (bytes.fromhex("2902040000000000"), "SRH Hdr Ext Len=2 gives 24 octets but the data has 8"),
    (bytes.fromhex("2902040001000000") + bytes(16),
     "SRH Last Entry=1 needs 32 octets of segments but Hdr Ext Len=2 leaves 16"),
    (bytes.fromhex("2902040200000000") + bytes(16), "SRH Segments Left=2 exceeds Last Entry + 1 = 1"),
    (bytes.fromhex("2903040000000000") + bytes(16) + b"\x07\x09" + bytes(6),
     "SRH TLV type 7 at octet 24 has Length=9, overrunning the header by 3 octets"),
    (bytes.fromhex("2903040000000000") + bytes(16) + b"\x00" * 7 + b"\x07",
     "SRH TLV type 7 at octet 31 has no Length octet"),
])
def test_decode_refuses_malformed_headers_with_the_field_at_fault(data, message):
    with pytest.raises(SrhError) as err:
        decode_srh(data)
    assert message in str(err.value)


@pytest.mark.parametrize("build, message", [
    (lambda: SegmentRoutingHeader((), 0), "SRH segment list has 0 entries; it needs 1..127"),
    (lambda: SegmentRoutingHeader(tuple(SEGMENTS[:2]), 3), "Segments Left=3 must be in 0..2"),
    (lambda: SegmentRoutingHeader(tuple(SEGMENTS[:1]), 0, tlvs=(Tlv(7, b"ab"),)),
     "SRH of 28 octets is not a multiple of 8; append padding_tlvs(4)"),
    (lambda: SegmentRoutingHeader(tuple(SEGMENTS[:1]), 0, tag=70000), "SRH tag=70000 must fit in 16 bits"),
    (lambda: SegmentRoutingHeader.for_segments([]), "a segment list needs at least one segment"),
    (lambda: SegmentRoutingHeader.for_segments(SEGMENTS[:1], reduced=True), "omit the SRH (RFC 8986 §5.2)"),
    (lambda: SegmentRoutingHeader.for_segments(["fcbb::"] * 128), "SRH segment list has 128 entries"),
    (lambda: Tlv(TLV_PAD1, b"x"), "Pad1 TLV has no value"),
    (lambda: Tlv(7, bytes(256)), "value of 256 bytes exceeds the 8-bit Length field"),
    (lambda: padding_tlvs(8), "padding of 8 octets must be in 0..7"),
])
def test_encoder_refuses_headers_the_wire_cannot_carry(build, message):
    with pytest.raises(SrhError) as err:
        build()
    assert message in str(err.value)


def test_largest_srh_round_trips():
    srh = SegmentRoutingHeader.for_segments([f"fcbb::{i:x}" for i in range(1, 128)])
    assert srh.hdr_ext_len == 254
    assert decode_srh(srh.to_bytes())[0] == srh


def _valid_samples():
    return [
        SegmentRoutingHeader.for_segments(SEGMENTS[:n], tlvs=tlvs, reduced=reduced).to_bytes()
        for n in (2, 3, 5) for reduced in (False, True)
        for tlvs in ((), (Tlv(5, bytes(38)),), (Tlv(7, b"abc"), Tlv(TLV_PAD1)))
    ]


def test_fuzzed_input_either_decodes_to_an_exact_round_trip_or_raises_srh_error():
    rng = random.Random(8754)
    samples = _valid_samples()
    outcomes = {"decoded": 0, "refused": 0}
    for _ in range(4000):
        data = bytearray(rng.choice(samples))
        mutation = rng.randrange(4)
        if mutation == 0:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif mutation == 1:
            del data[rng.randrange(len(data)):]
        elif mutation == 2:
            data[rng.randrange(8)] = rng.randrange(256)  # the fixed fields are where the rules live
        else:
            data = bytearray(rng.randbytes(rng.randrange(64)))
        try:
            srh, rest = decode_srh(bytes(data))
        except SrhError:
            outcomes["refused"] += 1
            continue
        assert srh.to_bytes() + rest == bytes(data)
        assert srh.segments_left <= srh.last_entry + 1
        outcomes["decoded"] += 1
    assert min(outcomes.values()) > 200, outcomes
