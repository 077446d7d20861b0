"""The Segment Routing Header (RFC 8754 §2): encode and decode, byte-exact.

Wire format (RFC 8754 §2)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    | Next Header   |  Hdr Ext Len  | Routing Type=4| Segments Left |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Last Entry   |     Flags     |              Tag              |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |            Segment List[0] (128-bit IPv6 address)             |
    |                              ...                              |
    |            Segment List[n] (128-bit IPv6 address)             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    //         Optional Type Length Value objects (variable)       //

The Segment List is stored in **reverse** travel order: Segment List[0] is the
*last* segment, Segment List[Last Entry] the first (RFC 8754 §2). Segments
Left indexes the active segment; it may equal Last Entry + 1 when the first
segment lives only in the destination address (reduced encapsulation, RFC 8986
§5.2; allowed by the check in RFC 8754 §4.3.1.1). Hdr Ext Len counts 8-octet
units after the first 8 octets, so the whole header is a multiple of 8 octets;
TLVs (RFC 8754 §2.1) fill the gap: Pad1 (type 0, one octet) and PadN (type 4,
RFC 8754 §2.1.1). Other TLVs (HMAC, type 5, §2.1.2) are kept as opaque bytes.

:class:`SegmentRoutingHeader` keeps ``segment_list`` in wire order; build one
from a travel-order list with :meth:`SegmentRoutingHeader.for_segments`.

Examples
--------
>>> srh = SegmentRoutingHeader.for_segments(["fcbb:bb00:1:1::", "fcbb:bb00:2:1::"])
>>> [str(s) for s in srh.segment_list], srh.segments_left, srh.last_entry
(['fcbb:bb00:2:1::', 'fcbb:bb00:1:1::'], 1, 1)
>>> data = srh.to_bytes()
>>> data[:8].hex(), len(data)
('2904040101000000', 40)
>>> decode_srh(data)[0] == srh
True
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Iterable

from cpn_net.srv6.errors import SrhError

ROUTING_TYPE_SRH = 4  # RFC 8754 §2 (IANA Routing Types)
NEXT_HEADER_ROUTING = 43  # IPv6 Routing header (RFC 8200 §4.4)
NEXT_HEADER_IPV6 = 41  # encapsulated IPv6
NEXT_HEADER_NONE = 59
TLV_PAD1 = 0  # RFC 8754 §2.1.1.1
TLV_PADN = 4  # RFC 8754 §2.1.1.2
TLV_HMAC = 5  # RFC 8754 §2.1.2
MAX_SEGMENTS = 127  # Hdr Ext Len is 8 bits: (255 * 8) // 16 entries at most

_FIXED = struct.Struct("!BBBBBBH")


@dataclass(frozen=True)
class Tlv:
    """One SRH TLV (RFC 8754 §2.1). Pad1 has no length octet and no value.

    Examples
    --------
    >>> Tlv(TLV_PADN, b"\\x00\\x00").to_bytes().hex()
    '04020000'
    >>> Tlv(TLV_PAD1).to_bytes().hex()
    '00'
    """

    type: int
    value: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 255:
            raise SrhError(f"TLV type {self.type} must be in 0..255")
        if self.type == TLV_PAD1 and self.value:
            raise SrhError(f"Pad1 TLV has no value (RFC 8754 §2.1.1.1), got {len(self.value)} bytes; "
                           "use PadN (type 4) for 2..7 octets of padding")
        if len(self.value) > 255:
            raise SrhError(f"TLV type {self.type}: value of {len(self.value)} bytes exceeds the "
                           "8-bit Length field (255)")

    def to_bytes(self) -> bytes:
        if self.type == TLV_PAD1:
            return b"\x00"
        return bytes((self.type, len(self.value))) + self.value

    @property
    def size(self) -> int:
        """Octets on the wire."""
        return 1 if self.type == TLV_PAD1 else 2 + len(self.value)


def padding_tlvs(octets: int) -> tuple[Tlv, ...]:
    """The padding that fills ``octets`` (0..7) octets: nothing, Pad1, or one PadN.

    Examples
    --------
    >>> padding_tlvs(0), padding_tlvs(1), padding_tlvs(4)
    ((), (Tlv(type=0, value=b''),), (Tlv(type=4, value=b'\\x00\\x00'),))
    """
    if not 0 <= octets <= 7:
        raise SrhError(f"padding of {octets} octets must be in 0..7 (the SRH aligns to 8 octets)")
    if octets == 0:
        return ()
    if octets == 1:
        return (Tlv(TLV_PAD1),)
    return (Tlv(TLV_PADN, bytes(octets - 2)),)


@dataclass(frozen=True)
class SegmentRoutingHeader:
    """An SRH (RFC 8754 §2); ``segment_list`` is in wire (reverse travel) order.

    Parameters
    ----------
    segment_list : tuple of IPv6Address
        Segment List[0..Last Entry]; [0] is the last segment of the path.
    segments_left : int
        Index of the active segment, 0..Last Entry+1.
    next_header : int
        Protocol after the SRH (41 for encapsulated IPv6).
    flags, tag : int
        8-bit flags and 16-bit tag (RFC 8754 §2); 0 unless a use is defined.
    tlvs : tuple of Tlv
        Optional TLVs, padding included; the header must total a multiple of 8.

    Raises
    ------
    SrhError
        If a field is out of range or the length is not a multiple of 8 octets.
    """

    segment_list: tuple[ipaddress.IPv6Address, ...]
    segments_left: int
    next_header: int = NEXT_HEADER_IPV6
    flags: int = 0
    tag: int = 0
    tlvs: tuple[Tlv, ...] = ()

    def __post_init__(self) -> None:
        try:
            segs = tuple(s if isinstance(s, ipaddress.IPv6Address) else ipaddress.IPv6Address(s)
                         for s in self.segment_list)
        except ValueError as err:
            raise SrhError(f"SRH segment list: {err}") from err
        object.__setattr__(self, "segment_list", segs)
        object.__setattr__(self, "tlvs", tuple(self.tlvs))
        if not 1 <= len(segs) <= MAX_SEGMENTS:
            raise SrhError(f"SRH segment list has {len(segs)} entries; it needs 1..{MAX_SEGMENTS}")
        if not 0 <= self.segments_left <= len(segs):
            raise SrhError(f"SRH Segments Left={self.segments_left} must be in 0..{len(segs)} "
                           f"(Last Entry + 1) for {len(segs)} segments (RFC 8754 §4.3.1.1)")
        for name, value, bits in (("next_header", self.next_header, 8), ("flags", self.flags, 8),
                                  ("tag", self.tag, 16)):
            if not 0 <= value < (1 << bits):
                raise SrhError(f"SRH {name}={value} must fit in {bits} bits")
        size = self.size
        if size % 8:
            raise SrhError(f"SRH of {size} octets is not a multiple of 8; append "
                           f"padding_tlvs({-size % 8}) or build it with SegmentRoutingHeader.for_segments")
        if size > 8 * 256:
            raise SrhError(f"SRH of {size} octets exceeds the 2048 that Hdr Ext Len can express")

    @classmethod
    def for_segments(cls, segments: Iterable, *, next_header: int = NEXT_HEADER_IPV6,
                     reduced: bool = False, flags: int = 0, tag: int = 0,
                     tlvs: Iterable[Tlv] = ()) -> "SegmentRoutingHeader":
        """The SRH a headend pushes for ``segments`` in travel order, padded to 8 octets.

        ``reduced=True`` gives the SRH of H.Encaps.Red (RFC 8986 §5.2): the
        first segment is left out (it travels only in the destination
        address) and Segments Left points past the last entry. A reduced SRH
        of a one-segment list would be empty: the caller omits the SRH then.

        Examples
        --------
        >>> srh = SegmentRoutingHeader.for_segments(["::1", "::2", "::3"], reduced=True)
        >>> [str(s) for s in srh.segment_list], srh.segments_left, srh.last_entry
        (['::3', '::2'], 2, 1)
        """
        travel = [ipaddress.IPv6Address(s) for s in segments]
        if not travel:
            raise SrhError("a segment list needs at least one segment")
        segments_left = len(travel) - 1
        if reduced:
            if len(travel) == 1:
                raise SrhError("a reduced SRH of a one-segment list has no entries; "
                               "omit the SRH (RFC 8986 §5.2) instead")
            travel = travel[1:]
        tlvs = tuple(tlvs)
        unpadded = 8 + 16 * len(travel) + sum(t.size for t in tlvs)
        return cls(tuple(reversed(travel)), segments_left, next_header, flags, tag,
                   tlvs + padding_tlvs(-unpadded % 8))

    @property
    def last_entry(self) -> int:
        """Index of the last element of the Segment List (the first segment)."""
        return len(self.segment_list) - 1

    @property
    def size(self) -> int:
        """Octets on the wire."""
        return 8 + 16 * len(self.segment_list) + sum(t.size for t in self.tlvs)

    @property
    def hdr_ext_len(self) -> int:
        """The Hdr Ext Len field: 8-octet units after the first 8 octets."""
        return (self.size - 8) // 8

    @property
    def travel_order(self) -> tuple[ipaddress.IPv6Address, ...]:
        """The segments in the order the packet visits them (a reduced SRH lacks the first)."""
        return tuple(reversed(self.segment_list))

    @property
    def active_segment(self) -> ipaddress.IPv6Address | None:
        """Segment List[Segments Left]; None when it lives only in the destination address."""
        if self.segments_left > self.last_entry:
            return None
        return self.segment_list[self.segments_left]

    def advanced(self) -> "SegmentRoutingHeader":
        """The header after an endpoint processes it: Segments Left minus one (RFC 8986 §4.1).

        The new active segment becomes the packet's destination address.

        Raises
        ------
        SrhError
            If Segments Left is already 0.

        Examples
        --------
        >>> srh = SegmentRoutingHeader.for_segments(["::1", "::2"])
        >>> str(srh.advanced().active_segment)
        '::2'
        """
        if self.segments_left == 0:
            raise SrhError("SRH Segments Left is 0: no segment left to advance to; "
                           "the packet is at its last segment")
        return SegmentRoutingHeader(self.segment_list, self.segments_left - 1, self.next_header,
                                    self.flags, self.tag, self.tlvs)

    def to_bytes(self) -> bytes:
        """The header on the wire (RFC 8754 §2)."""
        fixed = _FIXED.pack(self.next_header, self.hdr_ext_len, ROUTING_TYPE_SRH, self.segments_left,
                            self.last_entry, self.flags, self.tag)
        return fixed + b"".join(s.packed for s in self.segment_list) + b"".join(t.to_bytes() for t in self.tlvs)


def decode_srh(data: bytes) -> tuple[SegmentRoutingHeader, bytes]:
    """Decode the SRH at the start of ``data``; return it and the bytes after it.

    Decoding then encoding gives back the same bytes (TLV values, padding
    included, are kept as they are).

    Parameters
    ----------
    data : bytes
        Starts with the SRH (the Routing header after an IPv6 header whose
        Next Header, or previous extension header, says 43).

    Returns
    -------
    (SegmentRoutingHeader, bytes)

    Raises
    ------
    SrhError
        If the data is truncated, the Routing Type is not 4, Last Entry or
        Segments Left disagree with the length (RFC 8754 §4.3.1.1), or a TLV
        overruns the header. The message gives the offending field and value.

    Examples
    --------
    >>> decode_srh(bytes.fromhex("2902040000000000"))
    Traceback (most recent call last):
    ...
    cpn_net.srv6.errors.SrhError: SRH Hdr Ext Len=2 gives 24 octets but the data has 8
    """
    data = bytes(data)
    if len(data) < 8:
        raise SrhError(f"SRH truncated: {len(data)} octets, the fixed part alone is 8")
    next_header, hdr_ext_len, routing_type, segments_left, last_entry, flags, tag = _FIXED.unpack_from(data)
    if routing_type != ROUTING_TYPE_SRH:
        raise SrhError(f"Routing Type={routing_type} is not a Segment Routing Header "
                       f"(Routing Type {ROUTING_TYPE_SRH}, RFC 8754 §2)")
    size = 8 + 8 * hdr_ext_len
    if len(data) < size:
        raise SrhError(f"SRH Hdr Ext Len={hdr_ext_len} gives {size} octets but the data has {len(data)}")
    max_last_entry = hdr_ext_len // 2 - 1
    if last_entry > max_last_entry:
        raise SrhError(f"SRH Last Entry={last_entry} needs {16 * (last_entry + 1)} octets of segments "
                       f"but Hdr Ext Len={hdr_ext_len} leaves {8 * hdr_ext_len} (RFC 8754 §4.3.1.1)")
    if segments_left > last_entry + 1:
        raise SrhError(f"SRH Segments Left={segments_left} exceeds Last Entry + 1 = {last_entry + 1} "
                       "(RFC 8754 §4.3.1.1)")
    end_of_segments = 8 + 16 * (last_entry + 1)
    segments = tuple(ipaddress.IPv6Address(data[off:off + 16]) for off in range(8, end_of_segments, 16))
    tlvs = _decode_tlvs(data[end_of_segments:size], end_of_segments)
    return SegmentRoutingHeader(segments, segments_left, next_header, flags, tag, tlvs), data[size:]


def _decode_tlvs(region: bytes, offset: int) -> tuple[Tlv, ...]:
    tlvs = []
    pos = 0
    while pos < len(region):
        tlv_type = region[pos]
        if tlv_type == TLV_PAD1:
            tlvs.append(Tlv(TLV_PAD1))
            pos += 1
            continue
        if pos + 2 > len(region):
            raise SrhError(f"SRH TLV type {tlv_type} at octet {offset + pos} has no Length octet "
                           "before the end of the header")
        length = region[pos + 1]
        if pos + 2 + length > len(region):
            raise SrhError(f"SRH TLV type {tlv_type} at octet {offset + pos} has Length={length}, "
                           f"overrunning the header by {pos + 2 + length - len(region)} octets")
        tlvs.append(Tlv(tlv_type, region[pos + 2:pos + 2 + length]))
        pos += 2 + length
    return tuple(tlvs)
