"""The eBPF data plane's map records and its route-metric plan, as bytes. Pure: no I/O.

The programs in ``bpf/srv6.bpf.c`` read these maps; the driver
(:mod:`controllers.southbound.bpf`) writes them. Everything both sides must agree
on lives here and in the C file's structs, and the unit tests pin each layout.

Route metrics name policies
---------------------------
A policy route (``encap seg6``) becomes a plain kernel route towards the first
segment's neighbour whose *metric* is the key of its prebuilt outer header in
``cpn_encaps``; the egress program asks the FIB which route the stack used
(``bpf_fib_lookup`` returns its metric). Every route the driver installs gets
its metric scaled by :data:`METRIC_SHIFT` so that the order between the
project's metrics (policies 100 < IGP 1024 < backups 2048) is kept, and each
policy route gets a slot of its own below the next band:

>>> kernel_metric(100, 0), kernel_metric(1024, 0), kernel_metric(2048, 7)
(104857600, 1073741824, 2147483655)
>>> project_metric(kernel_metric(2048, 7))
2048

Examples
--------
>>> sid = SidEntry(Action.END_X, mark=0x5c000001)
>>> sid.pack().hex()
'020000000100005c00000000'
>>> len(EncapEntry.for_segments("fcbb:bb00:1::1", ["fcbb:bb00:2:1::", "fcbb:bb00:3:3:2:1::"]).pack())
312
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass
from typing import Iterable, Sequence

from cpn_net.srv6.packet import build_ipv6
from cpn_net.srv6.srh import NEXT_HEADER_IPV6, NEXT_HEADER_ROUTING, SegmentRoutingHeader

MAX_SEGMENTS = 16
MAX_HEADER = 40 + 8 + 16 * MAX_SEGMENTS  # struct encap_entry.hdr
DEFAULT_METRIC = 1024  # a route spec without "priority" gets the kernel's default
METRIC_SHIFT = 20  # project metric << 20: 2048 << 20 still fits the kernel's u32
MAX_SLOT = (1 << METRIC_SHIFT) - 1
#: Marks the ingress program sets (End.X, End.DX6, End.DT6) and the tables and rules
#: they select; apart from the steering marks (small numbers) and the policy tables.
MARK_BASE = 0x5C000000
MARK_MASK = 0xFF000000
TABLE_BASE = 0x5C000000
RULE_PRIORITY = 40  # before every policy, slice and steering rule
FALLBACK_RULE_PRIORITY = 41  # a marked packet whose table has no route is dropped, as seg6local does
BINDING_KEY_BASE = 0xFFF00000  # cpn_encaps keys of binding SIDs: above every route metric
MAIN_TABLE = 254

STAT_NAMES = ("end", "end_x", "end_dx6", "end_dt6", "end_b6_encaps", "h_encaps",
              "drop_no_srh", "drop_segments_left", "drop_not_ipv6_inside", "drop_boundary", "drop_error",
              "fib_miss")


class Action(enum.IntEnum):
    """``enum action`` of the C programs (RFC 8986 behaviours)."""

    END = 1
    END_X = 2
    END_DX6 = 3
    END_DT6 = 4
    END_B6_ENCAPS = 5

    @classmethod
    def named(cls, behaviour: str) -> "Action":
        """The action of a seg6local behaviour name, as ``ip -6 route`` writes it.

        >>> Action.named("End.DT6").name
        'END_DT6'
        """
        try:
            return {"End": cls.END, "End.X": cls.END_X, "End.DX6": cls.END_DX6, "End.DT6": cls.END_DT6,
                    "End.B6.Encaps": cls.END_B6_ENCAPS}[behaviour]
        except KeyError:
            raise ValueError(f"behaviour {behaviour!r} is not one the eBPF data plane implements "
                             "(End, End.X, End.DX6, End.DT6, End.B6.Encaps)") from None

    @property
    def behaviour(self) -> str:
        return {1: "End", 2: "End.X", 3: "End.DX6", 4: "End.DT6", 5: "End.B6.Encaps"}[int(self)]

    @property
    def delivering(self) -> bool:
        """Hosts may not address it once the SR domain boundary is on."""
        return self in (Action.END_DX6, Action.END_DT6, Action.END_B6_ENCAPS)


SID_DELIVERING = 1


@dataclass(frozen=True)
class SidEntry:
    """``struct sid_entry``: what the ingress program does for one local SID."""

    action: Action
    mark: int = 0
    encap: int = 0  # End.B6.Encaps: key of the bound list in cpn_encaps

    def pack(self) -> bytes:
        flags = SID_DELIVERING if self.action.delivering else 0
        return struct.pack("<BBHII", int(self.action), flags, 0, self.mark, self.encap)

    @classmethod
    def unpack(cls, data: bytes) -> "SidEntry":
        action, _flags, _pad, mark, encap = struct.unpack("<BBHII", data[:12])
        return cls(Action(action), mark, encap)


@dataclass(frozen=True)
class EncapEntry:
    """``struct encap_entry``: a prebuilt outer IPv6 header and SRH.

    The outer payload length holds the SRH only; the program adds the inner
    packet's length and copies its traffic class and flow label.
    """

    header: bytes

    def __post_init__(self) -> None:
        if not 40 <= len(self.header) <= MAX_HEADER:
            raise ValueError(f"an outer header of {len(self.header)} bytes does not fit the eBPF data plane's "
                             f"{MAX_HEADER} (at most {MAX_SEGMENTS} segments)")

    @classmethod
    def for_segments(cls, source, travel: Sequence, *, reduced: bool = False, advanced: int = 0) -> "EncapEntry":
        """H.Encaps (or H.Encaps.Red) onto ``travel`` (segments in travel order).

        ``advanced`` endpoint operations are applied ahead (the headend's own End
        or End.X SIDs at the front of the list): Segments Left is that much lower
        and the destination is the segment the packet really leaves for.

        >>> e = EncapEntry.for_segments("::9", ["::a", "::b"], advanced=1)
        >>> e.destination, e.segments_left
        ('::b', 0)
        >>> EncapEntry.for_segments("::9", ["::a"], reduced=True).header[6]  # no SRH: IPv6 inside
        41
        """
        travel = [ipaddress.IPv6Address(s) for s in travel]
        if len(travel) > MAX_SEGMENTS:
            raise ValueError(f"{len(travel)} segments: the eBPF data plane carries at most {MAX_SEGMENTS}")
        if not 0 <= advanced < len(travel):
            raise ValueError(f"cannot advance {advanced} of {len(travel)} segments")
        if reduced and len(travel) == 1:
            return cls(build_ipv6(source, travel[0], NEXT_HEADER_IPV6, b""))
        srh = SegmentRoutingHeader.for_segments(travel, next_header=NEXT_HEADER_IPV6, reduced=reduced)
        for _ in range(advanced):
            srh = srh.advanced()
        return cls(build_ipv6(source, travel[advanced], NEXT_HEADER_ROUTING, srh.to_bytes()))

    @property
    def destination(self) -> str:
        return str(ipaddress.IPv6Address(self.header[24:40]))

    @property
    def segments_left(self) -> int | None:
        return self.header[43] if self.header[6] == NEXT_HEADER_ROUTING else None

    @property
    def segments(self) -> tuple[str, ...]:
        """The SRH's Segment List (SRH order: last segment first); empty without an SRH."""
        if self.header[6] != NEXT_HEADER_ROUTING:
            return ()
        count = self.header[44] + 1
        return tuple(str(ipaddress.IPv6Address(self.header[48 + 16 * i:64 + 16 * i])) for i in range(count))

    def pack(self) -> bytes:
        return struct.pack("<HHI", len(self.header), 0, 0) + self.header.ljust(MAX_HEADER, b"\0")

    @classmethod
    def unpack(cls, data: bytes) -> "EncapEntry":
        (length,) = struct.unpack("<H", data[:2])
        return cls(bytes(data[8:8 + length]))


def address_key(address) -> bytes:
    """A map key holding one IPv6 address (``struct in6_addr``)."""
    return ipaddress.IPv6Address(address).packed


def prefix_key(prefix) -> bytes:
    """An LPM-trie key (``struct lpm_key``) for an IPv6 prefix.

    >>> prefix_key("2001:db8:3::/64").hex()[:8]
    '40000000'
    """
    net = ipaddress.IPv6Network(prefix, strict=False)
    return struct.pack("<I", net.prefixlen) + net.network_address.packed


def u32_key(value: int) -> bytes:
    return struct.pack("<I", value)


def kernel_metric(priority: int | None, slot: int) -> int:
    """The kernel metric of a route with the project's ``priority`` and a policy ``slot`` (0: plain)."""
    priority = DEFAULT_METRIC if priority is None else int(priority)
    if not 0 <= slot <= MAX_SLOT:
        raise ValueError(f"slot {slot} out of 0..{MAX_SLOT}")
    if not 0 <= priority < (BINDING_KEY_BASE >> METRIC_SHIFT):  # binding SIDs' keys sit above
        raise ValueError(f"metric {priority} is too large for the eBPF data plane's metric plan")
    return (priority << METRIC_SHIFT) | slot


def project_metric(metric: int) -> int:
    """The project's metric of a kernel route the driver installed."""
    return int(metric) >> METRIC_SHIFT


def unpack_stats(values: Iterable[int]) -> dict[str, int]:
    """Counter values in ``cpn_stats`` order, by name."""
    return dict(zip(STAT_NAMES, values))
