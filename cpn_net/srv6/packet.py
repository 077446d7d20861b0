"""Whole IPv6 / SRv6 packets as bytes: build, encapsulate, parse.

For probes, tests and the fake data plane. The outer header of an SRv6
packet is built the way a headend's H.Encaps does it (RFC 8986 §5.1):
destination = first segment, then the SRH (RFC 8754 §2), then the original
packet (Next Header 41). H.Encaps.Red (RFC 8986 §5.2) leaves the first
segment out of the SRH and, for a one-segment list, the SRH altogether.

Examples
--------
>>> inner = build_udp("2001:db8:1::1:1", "2001:db8:3::2:1", 5000, 7000, b"hi")
>>> pkt = encapsulate(inner, "2001:db8:1::1", ["fcbb:bb00:2:1::", "fcbb:bb00:3:3:2:1::"])
>>> parsed = decode_srv6(pkt)
>>> str(parsed.outer.destination), parsed.srh.segments_left, parsed.inner == inner
('fcbb:bb00:2:1::', 1, True)
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Iterable

from cpn_net.srv6.errors import PacketError, SrhError
from cpn_net.srv6.srh import (NEXT_HEADER_IPV6, NEXT_HEADER_ROUTING, ROUTING_TYPE_SRH, SegmentRoutingHeader, Tlv,
                              decode_srh)

PROTO_TCP = 6
PROTO_UDP = 17
NEXT_HEADER_HOP_BY_HOP = 0
NEXT_HEADER_DEST_OPTS = 60
IPV6_HEADER_OCTETS = 40

_HEADER = struct.Struct("!IHBB16s16s")


@dataclass(frozen=True)
class Ipv6Header:
    """The fixed IPv6 header (RFC 8200 §3).

    Examples
    --------
    >>> h = Ipv6Header(ipaddress.IPv6Address("::1"), ipaddress.IPv6Address("::2"), 59, 0)
    >>> h.to_bytes()[:8].hex()
    '6000000000003b40'
    """

    source: ipaddress.IPv6Address
    destination: ipaddress.IPv6Address
    next_header: int
    payload_length: int
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0

    def __post_init__(self) -> None:
        for name in ("source", "destination"):
            value = getattr(self, name)
            if not isinstance(value, ipaddress.IPv6Address):
                object.__setattr__(self, name, ipaddress.IPv6Address(value))
        for name, bits in (("next_header", 8), ("payload_length", 16), ("hop_limit", 8),
                           ("traffic_class", 8), ("flow_label", 20)):
            value = getattr(self, name)
            if not 0 <= value < (1 << bits):
                raise PacketError(f"IPv6 header {name}={value} must fit in {bits} bits (RFC 8200 §3)")

    def to_bytes(self) -> bytes:
        first = (6 << 28) | (self.traffic_class << 20) | self.flow_label
        return _HEADER.pack(first, self.payload_length, self.next_header, self.hop_limit,
                            self.source.packed, self.destination.packed)


def decode_ipv6(data: bytes) -> tuple[Ipv6Header, bytes]:
    """Split an IPv6 packet into its fixed header and payload (RFC 8200 §3).

    Bytes beyond Payload Length (link-layer padding) are dropped.

    Raises
    ------
    PacketError
        If the packet is shorter than 40 octets, not version 6, or shorter
        than its Payload Length says.

    Examples
    --------
    >>> header, payload = decode_ipv6(build_ipv6("::1", "::2", 59, b"abc"))
    >>> header.payload_length, payload
    (3, b'abc')
    """
    data = bytes(data)
    if len(data) < IPV6_HEADER_OCTETS:
        raise PacketError(f"IPv6 packet truncated: {len(data)} octets, the header alone is 40")
    first, payload_length, next_header, hop_limit, src, dst = _HEADER.unpack_from(data)
    if first >> 28 != 6:
        raise PacketError(f"IP version {first >> 28} is not 6")
    payload = data[IPV6_HEADER_OCTETS:IPV6_HEADER_OCTETS + payload_length]
    if len(payload) < payload_length:
        raise PacketError(f"IPv6 Payload Length={payload_length} but only {len(payload)} octets follow the header")
    header = Ipv6Header(ipaddress.IPv6Address(src), ipaddress.IPv6Address(dst), next_header, payload_length,
                        hop_limit, (first >> 20) & 0xFF, first & 0xFFFFF)
    return header, payload


def build_ipv6(source, destination, next_header: int, payload: bytes, *, hop_limit: int = 64,
               traffic_class: int = 0, flow_label: int = 0) -> bytes:
    """An IPv6 packet: fixed header plus ``payload``.

    Examples
    --------
    >>> len(build_ipv6("::1", "::2", 59, b""))
    40
    """
    if len(payload) > 0xFFFF:
        raise PacketError(f"IPv6 payload of {len(payload)} octets exceeds 65535 (no jumbograms)")
    header = Ipv6Header(source, destination, next_header, len(payload), hop_limit, traffic_class, flow_label)
    return header.to_bytes() + bytes(payload)


def build_udp(source, destination, src_port: int, dst_port: int, payload: bytes = b"", *,
              hop_limit: int = 64, traffic_class: int = 0, flow_label: int = 0) -> bytes:
    """An IPv6/UDP packet with its checksum (RFC 768; pseudo-header RFC 8200 §8.1).

    Examples
    --------
    >>> pkt = build_udp("2001:db8:1::1:1", "2001:db8:3::2:1", 5000, 7000, b"hi")
    >>> len(pkt), pkt[40:44].hex()
    (50, '13881b58')
    """
    for name, port in (("src_port", src_port), ("dst_port", dst_port)):
        if not 0 <= port <= 0xFFFF:
            raise PacketError(f"UDP {name}={port} must be in 0..65535")
    src, dst = ipaddress.IPv6Address(source), ipaddress.IPv6Address(destination)
    length = 8 + len(payload)
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", length, PROTO_UDP)
    segment = struct.pack("!HHHH", src_port, dst_port, length, 0) + bytes(payload)
    checksum = _ones_complement_sum(pseudo + segment) ^ 0xFFFF
    checksum = checksum or 0xFFFF  # RFC 8200 §8.1: a computed zero is sent as all ones
    segment = segment[:6] + struct.pack("!H", checksum) + segment[8:]
    return build_ipv6(src, dst, PROTO_UDP, segment, hop_limit=hop_limit, traffic_class=traffic_class,
                      flow_label=flow_label)


def encapsulate(inner: bytes, source, segments: Iterable, *, reduced: bool = False, hop_limit: int = 64,
                traffic_class: int | None = None, flow_label: int = 0, flags: int = 0, tag: int = 0,
                tlvs: Iterable[Tlv] = ()) -> bytes:
    """H.Encaps / H.Encaps.Red (RFC 8986 §5.1, §5.2): push an outer IPv6 header and SRH.

    Parameters
    ----------
    inner : bytes
        The whole original IPv6 packet.
    source : IPv6Address or str
        The outer source address (the headend's tunnel source).
    segments : iterable of IPv6Address or str
        The segment list in travel order; the first is the outer destination.
    reduced : bool
        H.Encaps.Red: the first segment is not in the SRH; with one segment
        no SRH is pushed at all.
    traffic_class : int, optional
        Outer traffic class; by default copied from the inner header, as
        Linux does.

    Returns
    -------
    bytes

    Examples
    --------
    >>> inner = build_ipv6("::1", "::2", 59, b"")
    >>> len(encapsulate(inner, "::9", ["::a"])), len(encapsulate(inner, "::9", ["::a"], reduced=True))
    (104, 80)
    """
    inner = bytes(inner)
    tlvs = tuple(tlvs)
    travel = [ipaddress.IPv6Address(s) for s in segments]
    if not travel:
        raise PacketError("encapsulate needs at least one segment")
    if traffic_class is None:
        traffic_class = decode_ipv6(inner)[0].traffic_class
    if reduced and len(travel) == 1 and not tlvs and not flags and not tag:
        return build_ipv6(source, travel[0], NEXT_HEADER_IPV6, inner, hop_limit=hop_limit,
                          traffic_class=traffic_class, flow_label=flow_label)
    try:
        srh = SegmentRoutingHeader.for_segments(travel, next_header=NEXT_HEADER_IPV6, reduced=reduced,
                                                flags=flags, tag=tag, tlvs=tlvs)
    except SrhError as err:
        raise PacketError(f"cannot encapsulate: {err}") from err
    return build_ipv6(source, travel[0], NEXT_HEADER_ROUTING, srh.to_bytes() + inner, hop_limit=hop_limit,
                      traffic_class=traffic_class, flow_label=flow_label)


@dataclass(frozen=True)
class Srv6Packet:
    """An IPv6 packet split at its SRH: outer header, SRH (None if absent), the rest."""

    outer: Ipv6Header
    srh: SegmentRoutingHeader | None
    inner: bytes

    @property
    def inner_next_header(self) -> int:
        """Protocol of ``inner``: the SRH's Next Header, else the outer header's."""
        return self.srh.next_header if self.srh is not None else self.outer.next_header


def decode_srv6(data: bytes) -> Srv6Packet:
    """Parse an IPv6 packet whose first extension header may be an SRH.

    Raises
    ------
    PacketError
        If the IPv6 header or the SRH is malformed (the SRH's own
        :class:`~cpn_net.srv6.errors.SrhError` is chained).

    Examples
    --------
    >>> decode_srv6(build_ipv6("::1", "::2", 59, b"")).srh is None
    True
    """
    header, payload = decode_ipv6(data)
    if header.next_header != NEXT_HEADER_ROUTING or len(payload) < 3 or payload[2] != ROUTING_TYPE_SRH:
        return Srv6Packet(header, None, payload)
    try:
        srh, rest = decode_srh(payload)
    except SrhError as err:
        raise PacketError(f"packet to {header.destination}: {err}") from err
    return Srv6Packet(header, srh, rest)


@dataclass(frozen=True)
class FlowKey:
    """The 5-tuple of a packet: addresses, transport protocol and ports (None if portless)."""

    source: ipaddress.IPv6Address
    destination: ipaddress.IPv6Address
    protocol: int
    src_port: int | None = None
    dst_port: int | None = None


def flow_key(data: bytes) -> FlowKey:
    """The 5-tuple of an IPv6 packet, skipping Hop-by-Hop, Destination Options and Routing headers.

    For an SRv6-encapsulated packet this is the outer flow (protocol 41).

    Examples
    --------
    >>> flow_key(build_udp("::1", "::2", 1, 2))
    FlowKey(source=IPv6Address('::1'), destination=IPv6Address('::2'), protocol=17, src_port=1, dst_port=2)
    """
    header, payload = decode_ipv6(data)
    protocol = header.next_header
    while protocol in (NEXT_HEADER_HOP_BY_HOP, NEXT_HEADER_DEST_OPTS, NEXT_HEADER_ROUTING):
        if len(payload) < 2:
            raise PacketError(f"extension header {protocol} truncated in packet to {header.destination}")
        size = 8 + 8 * payload[1]
        if len(payload) < size:
            raise PacketError(f"extension header {protocol} of {size} octets truncated to {len(payload)}")
        protocol, payload = payload[0], payload[size:]
    if protocol in (PROTO_TCP, PROTO_UDP) and len(payload) >= 4:
        src_port, dst_port = struct.unpack_from("!HH", payload)
        return FlowKey(header.source, header.destination, protocol, src_port, dst_port)
    return FlowKey(header.source, header.destination, protocol)


def with_hop_limit(data: bytes, hop_limit: int) -> bytes:
    """The same packet with its Hop Limit replaced (what a forwarding router rewrites).

    Examples
    --------
    >>> decode_ipv6(with_hop_limit(build_ipv6("::1", "::2", 59, b""), 3))[0].hop_limit
    3
    """
    if not 0 <= hop_limit <= 255:
        raise PacketError(f"hop_limit={hop_limit} must be in 0..255")
    data = bytes(data)
    decode_ipv6(data)
    return data[:7] + bytes((hop_limit,)) + data[8:]


def _ones_complement_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total
