"""Whole packets: byte-exact against scapy, H.Encaps / H.Encaps.Red, parsing and refusals."""

import ipaddress

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrSegmentRouting
from scapy.packet import Raw

from cpn_net.srv6.errors import PacketError
from cpn_net.srv6.packet import (FlowKey, build_ipv6, build_udp, decode_ipv6, decode_srv6, encapsulate, flow_key,
                                 with_hop_limit)
from cpn_net.srv6.sids import end_dx6_sid, end_sid, end_x_sid

CLIENT, COMPUTE, HEADEND = "2001:db8:1::1:1", "2001:db8:3::2:1", "2001:db8:1::1"
SEGMENTS = [str(end_x_sid(1, 2)), str(end_sid(4)), str(end_dx6_sid(3, "compute", 1))]


def inner_packet(**kw):
    return build_udp(CLIENT, COMPUTE, 5000, 7000, b"compute request", **kw)


@pytest.mark.parametrize("payload", [b"", b"x", b"even", b"\xff" * 33])
def test_udp_packet_is_byte_exact_with_scapy_checksum_included(payload):
    ours = build_udp(CLIENT, COMPUTE, 5000, 7000, payload, hop_limit=17, traffic_class=0xB8, flow_label=0x12345)
    theirs = IPv6(src=CLIENT, dst=COMPUTE, hlim=17, tc=0xB8, fl=0x12345) / UDP(sport=5000, dport=7000) / Raw(payload)
    assert ours == bytes(theirs)


def test_encapsulation_is_byte_exact_with_scapy_and_parses_back():
    inner = inner_packet(traffic_class=0xB8)
    ours = encapsulate(inner, HEADEND, SEGMENTS)
    theirs = (IPv6(src=HEADEND, dst=SEGMENTS[0], hlim=64, tc=0xB8)
              / IPv6ExtHdrSegmentRouting(addresses=list(reversed(SEGMENTS)), segleft=2)
              / IPv6(inner))
    assert ours == bytes(theirs)
    parsed = IPv6(ours)
    srh = parsed[IPv6ExtHdrSegmentRouting]
    assert (parsed.nh, srh.nh, srh.segleft, srh.lastentry) == (43, 41, 2, 2)
    assert bytes(srh.payload) == inner
    ours_parsed = decode_srv6(ours)
    assert ours_parsed.outer.traffic_class == 0xB8  # copied from the inner header, as Linux does
    assert ours_parsed.srh.travel_order == tuple(ipaddress.IPv6Address(s) for s in SEGMENTS)
    assert ours_parsed.inner == inner and ours_parsed.inner_next_header == 41


def test_reduced_encapsulation_matches_rfc_8986_section_5_2():
    inner = inner_packet()
    ours = encapsulate(inner, HEADEND, SEGMENTS, reduced=True)
    theirs = (IPv6(src=HEADEND, dst=SEGMENTS[0])
              / IPv6ExtHdrSegmentRouting(addresses=list(reversed(SEGMENTS[1:])), segleft=2) / IPv6(inner))
    assert ours == bytes(theirs)
    assert len(encapsulate(inner, HEADEND, SEGMENTS)) - len(ours) == 16


def test_reduced_encapsulation_of_one_segment_has_no_srh():
    inner = inner_packet()
    ours = encapsulate(inner, HEADEND, SEGMENTS[-1:], reduced=True)
    assert ours == bytes(IPv6(src=HEADEND, dst=SEGMENTS[-1]) / IPv6(inner))
    parsed = decode_srv6(ours)
    assert parsed.srh is None and parsed.inner == inner and parsed.inner_next_header == 41


def test_flow_key_skips_extension_headers():
    pkt = bytes(IPv6(src=CLIENT, dst=COMPUTE) / IPv6ExtHdrHopByHop() / UDP(sport=1, dport=2))
    assert flow_key(pkt) == FlowKey(ipaddress.IPv6Address(CLIENT), ipaddress.IPv6Address(COMPUTE), 17, 1, 2)
    outer = flow_key(encapsulate(inner_packet(), HEADEND, SEGMENTS))
    assert (outer.protocol, outer.src_port, str(outer.destination)) == (41, None, SEGMENTS[0])


def test_with_hop_limit_changes_only_that_octet():
    pkt = inner_packet()
    changed = with_hop_limit(pkt, 9)
    assert decode_ipv6(changed)[0].hop_limit == 9
    assert changed[:7] == pkt[:7] and changed[8:] == pkt[8:]


def test_link_layer_padding_after_the_payload_is_dropped():
    header, payload = decode_ipv6(build_ipv6("::1", "::2", 59, b"abc") + b"\x00\x00")
    assert payload == b"abc"


@pytest.mark.parametrize("data, message", [
    (b"\x60" + bytes(10), "IPv6 packet truncated: 11 octets, the header alone is 40"),
    (b"\x45" + bytes(39), "IP version 4 is not 6"),
    (build_ipv6("::1", "::2", 59, b"abcd")[:42], "IPv6 Payload Length=4 but only 2 octets follow the header"),
])
def test_decode_refuses_malformed_packets(data, message):
    with pytest.raises(PacketError) as err:
        decode_ipv6(data)
    assert message in str(err.value)


def test_decode_srv6_wraps_a_bad_srh_with_the_destination():
    good = encapsulate(inner_packet(), HEADEND, SEGMENTS)
    bad = good[:40] + good[40:41] + b"\x7f" + good[42:]  # Hdr Ext Len far past the packet
    with pytest.raises(PacketError) as err:
        decode_srv6(bad)
    assert f"packet to {SEGMENTS[0]}: SRH Hdr Ext Len=127" in str(err.value)


@pytest.mark.parametrize("build, message", [
    (lambda: build_udp("::1", "::2", 70000, 1), "UDP src_port=70000 must be in 0..65535"),
    (lambda: build_ipv6("::1", "::2", 59, b"", hop_limit=256), "IPv6 header hop_limit=256 must fit in 8 bits"),
    (lambda: build_ipv6("::1", "::2", 59, bytes(70000)), "IPv6 payload of 70000 octets exceeds 65535"),
    (lambda: encapsulate(inner_packet(), HEADEND, []), "encapsulate needs at least one segment"),
    (lambda: with_hop_limit(inner_packet(), -1), "hop_limit=-1 must be in 0..255"),
])
def test_builders_refuse_out_of_range_fields(build, message):
    with pytest.raises(PacketError) as err:
        build()
    assert message in str(err.value)
