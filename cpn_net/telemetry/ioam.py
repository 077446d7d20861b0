"""IOAM pre-allocated trace in an IPv6 hop-by-hop header: encoder and decoder.

Wire format, outermost first::

    IPv6 header (40 octets, Next Header = 0)                     RFC 8200 §3
    Hop-by-Hop Options header: Next Header, Hdr Ext Len           RFC 8200 §4.3
      PadN (2 octets) so that the IOAM option starts at 4n        RFC 8200 §4.2
      IOAM option: Option Type 0x31, Opt Data Len,                RFC 9486 §3
                   Reserved (8 bits), IOAM Option-Type = 0 (pre-allocated trace)
        trace header (8 octets)                                   RFC 9197 §4.4.1
          Namespace-ID (16) | NodeLen (5) | Flags (4) | RemainingLen (7)
          IOAM-Trace-Type (24)                       | Reserved (8)
        node data list (RemainingLen + filled nodes, 4n octets)   RFC 9197 §4.4.2
      PadN (4 octets) when needed to end on an 8-octet boundary

Transit nodes write their data at the *end* of the still-free space and
subtract their size from RemainingLen, so the first hop's data is last in
the packet (RFC 9197 §4.4; Linux ``net/ipv6/ioam6.c`` computes the write
position as ``data + RemainingLen*4 - NodeLen*4``). :func:`parse_trace`
returns nodes in path order: first hop first.

Linux specifics (read from ``net/ipv6/ioam6.c`` and ``net/ipv6/exthdrs.c``):

* the option type octet must sit at a 4n offset in the header, else the
  packet is dropped (counted in Ip6InHdrErrors); the encoder emits a
  2-octet PadN first, so the trace header is 8-octet aligned;
* the timestamp fraction is in **microseconds** (POSIX format, RFC 9197
  §5.3), taken when the packet is received;
* fields a node cannot fill (transit delay, checksum complement, buffer
  occupancy, undefined bits 12-21, ...) are written as all ones;
* the opaque state snapshot (bit 22) is not counted in NodeLen: its 4-octet
  header (Length in 4-octet units, Schema ID) follows the fixed fields,
  then Length * 4 octets of data;
* at most 244 octets of node data fit (the option's 255-octet limit).

Examples
--------
>>> hbh = build_trace_option(namespace_id=123, trace_type=TRACE_HOP_LIMIT_NODE_ID, n_hops=2)
>>> hbh.hex()
'2b02010031120000007b0802800000000000000000000000'
>>> hbh = record_transit_node(hbh, IoamNode(hop_limit=63, node_id=1))
>>> hbh = record_transit_node(hbh, IoamNode(hop_limit=62, node_id=4))
>>> [(n.hop_limit, n.node_id) for n in parse_hop_by_hop(hbh).nodes]
[(63, 1), (62, 4)]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from cpn_net.telemetry.errors import TelemetryDecodeError, TelemetryValueError

IPV6_HEADER_LEN = 40
NEXT_HEADER_HOP_BY_HOP = 0
NEXT_HEADER_ROUTING = 43
NEXT_HEADER_NONE = 59

OPTION_PAD1 = 0x00
OPTION_PADN = 0x01
OPTION_IOAM = 0x31  # "00 1 10001": skip if unknown, data changes en route (RFC 9486 §3)

IOAM_PREALLOCATED_TRACE = 0  # IOAM Option-Type registry, RFC 9197 §7.1
IOAM_INCREMENTAL_TRACE = 1

TRACE_HEADER_LEN = 8
MAX_TRACE_DATA_LEN = 244  # 255 (Opt Data Len) - 2 - 8, rounded down to 4n
MAX_NAMESPACE_ID = 0xFFFF
UNAVAILABLE_U32 = 0xFFFFFFFF


def trace_bit(n: int) -> int:
    """The IOAM-Trace-Type mask of bit ``n`` (bit 0 is the most significant).

    Examples
    --------
    >>> hex(trace_bit(0)), hex(trace_bit(23))
    ('0x800000', '0x1')
    """
    if not 0 <= n <= 23:
        raise TelemetryValueError(f"trace type bit {n} must be in 0..23")
    return 1 << (23 - n)


# IOAM-Trace-Type bits, RFC 9197 §4.4.1.
TRACE_HOP_LIMIT_NODE_ID = trace_bit(0)
TRACE_IF_IDS = trace_bit(1)
TRACE_TS_SECONDS = trace_bit(2)
TRACE_TS_FRACTION = trace_bit(3)
TRACE_TRANSIT_DELAY = trace_bit(4)
TRACE_NAMESPACE_DATA = trace_bit(5)
TRACE_QUEUE_DEPTH = trace_bit(6)
TRACE_CHECKSUM_COMPLEMENT = trace_bit(7)
TRACE_HOP_LIMIT_NODE_ID_WIDE = trace_bit(8)
TRACE_IF_IDS_WIDE = trace_bit(9)
TRACE_NAMESPACE_DATA_WIDE = trace_bit(10)
TRACE_BUFFER_OCCUPANCY = trace_bit(11)
TRACE_UNDEFINED_MASK = sum(trace_bit(n) for n in range(12, 22))
TRACE_OPAQUE_STATE = trace_bit(22)
TRACE_RESERVED = trace_bit(23)

#: What the delay estimator needs: node id, interface ids, timestamp (s + fraction).
TRACE_TYPE_DELAY = TRACE_HOP_LIMIT_NODE_ID | TRACE_IF_IDS | TRACE_TS_SECONDS | TRACE_TS_FRACTION

# Node data fields per trace-type bit, in wire order (RFC 9197 §4.4.2.1-12): (name, width in bits).
_LAYOUT: tuple[tuple[int, tuple[tuple[str, int], ...]], ...] = (
    (0, (("hop_limit", 8), ("node_id", 24))),
    (1, (("ingress_if", 16), ("egress_if", 16))),
    (2, (("ts_s", 32),)),
    (3, (("ts_frac", 32),)),
    (4, (("transit_delay", 32),)),
    (5, (("namespace_data", 32),)),
    (6, (("queue_depth", 32),)),
    (7, (("checksum_complement", 32),)),
    (8, (("hop_limit_wide", 8), ("node_id_wide", 56))),
    (9, (("ingress_if_wide", 32), ("egress_if_wide", 32))),
    (10, (("namespace_data_wide", 64),)),
    (11, (("buffer_occupancy", 32),)),
)
_UNDEFINED_BITS = tuple(range(12, 22))

TS_FORMAT_POSIX = "posix"  # seconds + microseconds (RFC 9197 §5.3); what Linux writes
TS_FORMAT_PTP = "ptp"  # seconds + nanoseconds (RFC 9197 §5.1)
TS_FORMAT_NTP = "ntp"  # seconds + 2**-32 fractions (RFC 9197 §5.2)
_FRACTION_NS = {TS_FORMAT_POSIX: (1_000_000, 1_000), TS_FORMAT_PTP: (1_000_000_000, 1)}


@dataclass(frozen=True)
class IoamNode:
    """One node's data in a trace (RFC 9197 §4.4.2); None where its bit is unset.

    ``undefined`` holds one 32-bit word per undefined bit 12-21 that is set;
    ``opaque_schema_id`` and ``opaque_data`` the opaque state snapshot (bit 22).
    """

    hop_limit: int | None = None
    node_id: int | None = None
    ingress_if: int | None = None
    egress_if: int | None = None
    ts_s: int | None = None
    ts_frac: int | None = None
    transit_delay: int | None = None
    namespace_data: int | None = None
    queue_depth: int | None = None
    checksum_complement: int | None = None
    hop_limit_wide: int | None = None
    node_id_wide: int | None = None
    ingress_if_wide: int | None = None
    egress_if_wide: int | None = None
    namespace_data_wide: int | None = None
    buffer_occupancy: int | None = None
    undefined: tuple[int, ...] = ()
    opaque_schema_id: int | None = None
    opaque_data: bytes | None = None


@dataclass(frozen=True)
class IoamTrace:
    """A decoded pre-allocated trace option; ``nodes`` in path order (first hop first)."""

    namespace_id: int
    trace_type: int
    node_len: int
    flags: int
    remaining_len: int
    data_len: int
    nodes: tuple[IoamNode, ...] = field(default=())

    @property
    def overflow(self) -> bool:
        """A node found no room for its data (O-bit, RFC 9197 §4.4.1)."""
        return bool(self.flags & 0b1000)


def node_len_words(trace_type: int) -> int:
    """NodeLen for a trace type: 4-octet words per node, opaque snapshot excluded.

    Parameters
    ----------
    trace_type : int
        24-bit IOAM-Trace-Type.

    Returns
    -------
    int

    Examples
    --------
    >>> node_len_words(TRACE_TYPE_DELAY), node_len_words(TRACE_HOP_LIMIT_NODE_ID_WIDE | TRACE_OPAQUE_STATE)
    (4, 2)
    """
    words = sum(sum(w for _n, w in fields) // 32 for bit, fields in _LAYOUT if trace_type & trace_bit(bit))
    return words + sum(1 for bit in _UNDEFINED_BITS if trace_type & trace_bit(bit))


def build_trace_option(
    namespace_id: int,
    trace_type: int,
    n_hops: int,
    *,
    next_header: int = NEXT_HEADER_ROUTING,
    opaque_words_per_hop: int = 0,
) -> bytes:
    """A hop-by-hop header carrying an empty pre-allocated trace for ``n_hops`` nodes.

    RemainingLen is set to the space of ``n_hops`` nodes and the data is
    zeroed. The IOAM option starts at offset 4 (after a 2-octet PadN), as
    Linux requires, and a 4-octet PadN closes the header when needed
    (RFC 8200 §4.2-4.3, RFC 9486 §3, RFC 9197 §4.4).

    Parameters
    ----------
    namespace_id : int
        IOAM-Namespace (0..65535); transit nodes fill only namespaces they know.
    trace_type : int
        24-bit IOAM-Trace-Type (see the ``TRACE_*`` constants); undefined
        bits 12-21 and reserved bit 23 must be 0.
    n_hops : int
        Nodes to make room for (>= 1).
    next_header : int
        Protocol after the hop-by-hop header (43, the SRH, by default:
        probes carry their segment list next).
    opaque_words_per_hop : int
        Opaque state data per node in 4-octet words, when bit 22 is set
        (the 4-octet snapshot header is always reserved for it).

    Returns
    -------
    bytes
        The whole hop-by-hop header, a multiple of 8 octets.

    Raises
    ------
    TelemetryValueError
        If an argument is out of range or the trace does not fit 244 octets.

    Examples
    --------
    >>> hbh = build_trace_option(0x7B, TRACE_TYPE_DELAY, 3)
    >>> len(hbh), hbh[:16].hex(), set(hbh[16:])
    (64, '2b070100313a0000007b200cf0000000', {0})
    """
    _check_int("namespace_id", namespace_id, 0, MAX_NAMESPACE_ID)
    _check_int("trace_type", trace_type, 1, 0xFFFFFF)
    if trace_type & (TRACE_UNDEFINED_MASK | TRACE_RESERVED):
        raise TelemetryValueError(
            f"trace_type={trace_type:#08x} sets undefined bits 12-21 or reserved bit 23; "
            f"an encapsulating node must leave them 0 (RFC 9197 §4.4.1)"
        )
    _check_int("n_hops", n_hops, 1, 255)
    _check_int("next_header", next_header, 0, 255)
    _check_int("opaque_words_per_hop", opaque_words_per_hop, 0, 255)
    has_opaque = bool(trace_type & TRACE_OPAQUE_STATE)
    if opaque_words_per_hop and not has_opaque:
        raise TelemetryValueError(
            f"opaque_words_per_hop={opaque_words_per_hop} needs trace type bit 22 (TRACE_OPAQUE_STATE)"
        )
    node_len = node_len_words(trace_type)
    words = n_hops * (node_len + (1 + opaque_words_per_hop if has_opaque else 0))
    if words * 4 > MAX_TRACE_DATA_LEN:
        raise TelemetryValueError(
            f"n_hops={n_hops} with trace_type={trace_type:#08x} needs {words * 4} octets of node data; "
            f"at most {MAX_TRACE_DATA_LEN} fit in one option: use fewer hops or fields"
        )
    trace = _trace_header(namespace_id, node_len, 0, words, trace_type) + bytes(4 * words)
    option = bytes([OPTION_IOAM, 2 + len(trace), 0, IOAM_PREALLOCATED_TRACE]) + trace
    body = bytes([OPTION_PADN, 0]) + option
    tail = (-(2 + len(body))) % 8
    if tail:
        body += _padding(tail)
    return bytes([next_header, (2 + len(body)) // 8 - 1]) + body


def _padding(length: int) -> bytes:
    return b"\x00" if length == 1 else bytes([OPTION_PADN, length - 2]) + bytes(length - 2)


def _trace_header(namespace_id: int, node_len: int, flags: int, remaining_len: int, trace_type: int) -> bytes:
    first = (namespace_id << 16) | (node_len << 11) | (flags << 7) | remaining_len
    return struct.pack(">II", first, trace_type << 8)


def _check_int(key: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise TelemetryValueError(f"{key}={value!r} must be an int in {low}..{high}")


def encode_node(node: IoamNode, trace_type: int) -> bytes:
    """The octets a transit node writes for ``trace_type`` (RFC 9197 §4.4.2).

    Fields left None are written as all ones ("unavailable", as Linux does).

    Parameters
    ----------
    node : IoamNode
        The node's values.
    trace_type : int
        24-bit IOAM-Trace-Type of the trace.

    Returns
    -------
    bytes
        NodeLen * 4 octets, plus the opaque snapshot when bit 22 is set.

    Raises
    ------
    TelemetryValueError
        If a value does not fit its field.

    Examples
    --------
    >>> encode_node(IoamNode(hop_limit=64, node_id=7, ingress_if=1), TRACE_HOP_LIMIT_NODE_ID | TRACE_IF_IDS).hex()
    '400000070001ffff'
    """
    out = bytearray()
    for bit, fields in _LAYOUT:
        if not trace_type & trace_bit(bit):
            continue
        word = 0
        for name, width in fields:
            value = getattr(node, name)
            if value is None:
                value = (1 << width) - 1
            _check_int(f"node {name}", value, 0, (1 << width) - 1)
            word = (word << width) | value
        total = sum(width for _name, width in fields)
        out += word.to_bytes(total // 8, "big")
    undefined = [b for b in _UNDEFINED_BITS if trace_type & trace_bit(b)]
    values = list(node.undefined) + [UNAVAILABLE_U32] * (len(undefined) - len(node.undefined))
    for value in values[: len(undefined)]:
        _check_int("node undefined word", value, 0, UNAVAILABLE_U32)
        out += value.to_bytes(4, "big")
    if trace_type & TRACE_OPAQUE_STATE:
        data = node.opaque_data or b""
        if len(data) % 4 or len(data) > 255 * 4:
            raise TelemetryValueError(
                f"node opaque_data has {len(data)} octets; must be a multiple of 4, at most 1020"
            )
        schema = 0xFFFFFF if node.opaque_schema_id is None else node.opaque_schema_id
        _check_int("node opaque_schema_id", schema, 0, 0xFFFFFF)
        out += struct.pack(">I", (len(data) // 4) << 24 | schema) + data
    return bytes(out)


def _decode_node(data: bytes, pos: int, trace_type: int, node_len: int) -> tuple[IoamNode, int]:
    end = pos + 4 * node_len
    if end > len(data):
        raise TelemetryDecodeError(
            "partial_node", f"node data at octet {pos}: needs {4 * node_len} octets, {len(data) - pos} left"
        )
    values: dict[str, Any] = {}
    for bit, fields in _LAYOUT:
        if not trace_type & trace_bit(bit):
            continue
        total = sum(width for _name, width in fields)
        word = int.from_bytes(data[pos : pos + total // 8], "big")
        pos += total // 8
        shift = total
        for name, width in fields:
            shift -= width
            values[name] = (word >> shift) & ((1 << width) - 1)
    undefined = []
    for bit in _UNDEFINED_BITS:
        if trace_type & trace_bit(bit):
            undefined.append(int.from_bytes(data[pos : pos + 4], "big"))
            pos += 4
    if undefined:
        values["undefined"] = tuple(undefined)
    if trace_type & TRACE_OPAQUE_STATE:
        if pos + 4 > len(data):
            raise TelemetryDecodeError(
                "partial_node", f"opaque state header at octet {pos}: needs 4 octets, {len(data) - pos} left"
            )
        header = int.from_bytes(data[pos : pos + 4], "big")
        length = 4 * (header >> 24)
        if pos + 4 + length > len(data):
            raise TelemetryDecodeError(
                "partial_node",
                f"opaque state at octet {pos}: Length={header >> 24} needs {length} octets, "
                f"{len(data) - pos - 4} left",
            )
        values["opaque_schema_id"] = header & 0xFFFFFF
        values["opaque_data"] = bytes(data[pos + 4 : pos + 4 + length])
        pos += 4 + length
    return IoamNode(**values), pos


def parse_trace(data: bytes) -> IoamTrace:
    """Decode a pre-allocated trace: 8-octet header then node data (RFC 9197 §4.4).

    This is also what Linux hands to user space in an ``IOAM6_EVENT_TRACE``.

    Parameters
    ----------
    data : bytes
        Trace header and node data list, nothing after.

    Returns
    -------
    IoamTrace
        Nodes in path order (the first hop's data is last on the wire).

    Raises
    ------
    TelemetryDecodeError
        If the trace is truncated or its lengths are inconsistent.

    Examples
    --------
    >>> raw = bytes.fromhex("007b0801800000004000000a3f000014")
    >>> t = parse_trace(raw)
    >>> t.namespace_id, t.remaining_len, [(n.hop_limit, n.node_id) for n in t.nodes]
    (123, 1, [(63, 20)])
    """
    if len(data) < TRACE_HEADER_LEN:
        raise TelemetryDecodeError("truncated", f"trace: {len(data)} octets, the header alone needs 8")
    first, second = struct.unpack_from(">II", data)
    namespace_id = first >> 16
    node_len = (first >> 11) & 0x1F
    flags = (first >> 7) & 0xF
    remaining_len = first & 0x7F
    trace_type = second >> 8
    if trace_type & ~TRACE_RESERVED == 0:
        raise TelemetryDecodeError("empty_trace_type", "trace: IOAM-Trace-Type selects no data field")
    expected = node_len_words(trace_type)
    if node_len != expected:
        raise TelemetryDecodeError(
            "node_len_mismatch",
            f"trace: NodeLen={node_len} but IOAM-Trace-Type {trace_type:#08x} needs {expected}",
        )
    body = memoryview(data)[TRACE_HEADER_LEN:]
    if len(body) % 4:
        raise TelemetryDecodeError("bad_length", f"trace: node data of {len(body)} octets is not a multiple of 4")
    if 4 * remaining_len > len(body):
        raise TelemetryDecodeError(
            "bad_remaining_len", f"trace: RemainingLen={remaining_len} exceeds the {len(body)}-octet data"
        )
    nodes = []
    pos = 4 * remaining_len
    while pos < len(body):
        node, end = _decode_node(body, pos, trace_type, node_len)
        if end == pos:
            raise TelemetryDecodeError("partial_node", f"trace: {len(body) - pos} octets hold no whole node")
        nodes.append(node)
        pos = end
    nodes.reverse()
    return IoamTrace(namespace_id, trace_type, node_len, flags, remaining_len, len(body), tuple(nodes))


def _locate_trace(hbh: bytes) -> tuple[int, int]:
    """Start and end offsets of the pre-allocated trace inside a hop-by-hop header."""
    if len(hbh) < 2:
        raise TelemetryDecodeError("truncated", f"hop-by-hop header: {len(hbh)} octets, need >= 8")
    total = (hbh[1] + 1) * 8
    if len(hbh) < total:
        raise TelemetryDecodeError(
            "truncated", f"hop-by-hop header: Hdr Ext Len={hbh[1]} means {total} octets, got {len(hbh)}"
        )
    pos = 2
    unsupported = None
    while pos < total:
        kind = hbh[pos]
        if kind == OPTION_PAD1:
            pos += 1
            continue
        if pos + 2 > total or pos + 2 + hbh[pos + 1] > total:
            raise TelemetryDecodeError(
                "bad_option_length", f"hop-by-hop option {kind:#04x} at octet {pos} runs past the header end"
            )
        end = pos + 2 + hbh[pos + 1]
        if kind == OPTION_IOAM:
            if pos % 4:
                raise TelemetryDecodeError(
                    "misaligned_option", f"IOAM option at octet {pos} is not 4n-aligned (Linux drops it)"
                )
            if end - pos < 4:
                raise TelemetryDecodeError(
                    "truncated", f"IOAM option at octet {pos}: Opt Data Len={end - pos - 2}, need >= 2"
                )
            if hbh[pos + 3] == IOAM_PREALLOCATED_TRACE:
                return pos + 4, end
            unsupported = hbh[pos + 3]
        pos = end
    if unsupported is not None:
        raise TelemetryDecodeError(
            "unsupported_ioam_type", f"IOAM Option-Type {unsupported} is not a pre-allocated trace (0)"
        )
    raise TelemetryDecodeError("no_ioam_option", "hop-by-hop header carries no IOAM option (type 0x31)")


def parse_hop_by_hop(data: bytes) -> IoamTrace:
    """Decode the IOAM pre-allocated trace carried in a hop-by-hop header.

    Parameters
    ----------
    data : bytes
        The hop-by-hop header (octets past its length are ignored).

    Returns
    -------
    IoamTrace

    Raises
    ------
    TelemetryDecodeError
        If the header is truncated, has no (aligned) pre-allocated trace,
        or the trace is malformed.

    Examples
    --------
    >>> parse_hop_by_hop(build_trace_option(9, TRACE_TYPE_DELAY, 2)).remaining_len
    8
    >>> parse_hop_by_hop(bytes.fromhex("3b00010400000000"))
    Traceback (most recent call last):
    ...
    cpn_net.telemetry.errors.TelemetryDecodeError: hop-by-hop header carries no IOAM option (type 0x31)
    """
    start, end = _locate_trace(data)
    return parse_trace(data[start:end])


def parse_ipv6_packet(data: bytes) -> IoamTrace:
    """Decode the IOAM trace of an IPv6 packet whose first extension is hop-by-hop.

    Parameters
    ----------
    data : bytes
        The packet from its IPv6 header on.

    Returns
    -------
    IoamTrace

    Raises
    ------
    TelemetryDecodeError
        If the packet is not IPv6, is truncated, has no hop-by-hop header,
        or its trace is malformed.

    Examples
    --------
    >>> header = bytes([0x60, 0, 0, 0, 0, 24, 0, 64]) + bytes(32)
    >>> parse_ipv6_packet(header + build_trace_option(1, TRACE_HOP_LIMIT_NODE_ID, 2)).nodes
    ()
    """
    if len(data) < IPV6_HEADER_LEN:
        raise TelemetryDecodeError("truncated", f"IPv6 packet: {len(data)} octets, the header alone needs 40")
    if data[0] >> 4 != 6:
        raise TelemetryDecodeError("not_ipv6", f"IPv6 packet: version={data[0] >> 4}, expected 6")
    if data[6] != NEXT_HEADER_HOP_BY_HOP:
        raise TelemetryDecodeError(
            "no_hop_by_hop", f"IPv6 packet: Next Header={data[6]}, expected 0 (hop-by-hop)"
        )
    payload_len = struct.unpack_from(">H", data, 4)[0]
    if IPV6_HEADER_LEN + payload_len > len(data):
        raise TelemetryDecodeError(
            "truncated", f"IPv6 packet: Payload Length={payload_len} but {len(data) - 40} octets follow"
        )
    return parse_hop_by_hop(data[IPV6_HEADER_LEN : IPV6_HEADER_LEN + payload_len])


def record_transit_node(hbh: bytes, node: IoamNode) -> bytes:
    """What an IOAM transit node does to the trace (RFC 9197 §4.4), for tests and emulation.

    The node's data is written just below RemainingLen, which shrinks by
    its size; with no room, the Overflow flag is set instead. A trace
    already overflowed is left alone (as Linux does).

    Parameters
    ----------
    hbh : bytes
        A hop-by-hop header carrying a pre-allocated trace.
    node : IoamNode
        The values this node records.

    Returns
    -------
    bytes
        The updated header.

    Raises
    ------
    TelemetryDecodeError
        If ``hbh`` carries no valid trace.
    TelemetryValueError
        If a value does not fit its field.

    Examples
    --------
    >>> hbh = build_trace_option(1, TRACE_HOP_LIMIT_NODE_ID, 1)
    >>> hbh = record_transit_node(record_transit_node(hbh, IoamNode(64, 1)), IoamNode(63, 2))
    >>> t = parse_hop_by_hop(hbh)
    >>> t.overflow, [n.node_id for n in t.nodes]
    (True, [1])
    """
    start, end = _locate_trace(hbh)
    trace = parse_trace(hbh[start:end])
    if trace.overflow:
        return bytes(hbh)
    written = encode_node(node, trace.trace_type)
    words = len(written) // 4
    out = bytearray(hbh)
    if trace.remaining_len < words or trace.remaining_len == 0:
        flags, remaining = trace.flags | 0b1000, trace.remaining_len
    else:
        flags, remaining = trace.flags, trace.remaining_len - words
        at = start + TRACE_HEADER_LEN + 4 * remaining
        out[at : at + len(written)] = written
    out[start : start + 4] = _trace_header(trace.namespace_id, trace.node_len, flags, remaining, 0)[:4]
    return bytes(out)


def node_timestamp_ns(node: IoamNode, ts_format: str = TS_FORMAT_POSIX) -> int | None:
    """A node's timestamp (bits 2 and 3) in integer nanoseconds.

    Integers keep sub-microsecond differences exact (a float of ~1.7e9 s
    has only ~0.2 µs resolution).

    Parameters
    ----------
    node : IoamNode
        Must carry ``ts_s`` and ``ts_frac``.
    ts_format : {"posix", "ptp", "ntp"}
        How the fraction is expressed (RFC 9197 §5); Linux writes "posix" (µs).

    Returns
    -------
    int or None
        None when a part is absent, unavailable (all ones) or out of range.

    Raises
    ------
    TelemetryValueError
        If ``ts_format`` is unknown.

    Examples
    --------
    >>> node_timestamp_ns(IoamNode(ts_s=2, ts_frac=500_000))
    2500000000
    >>> node_timestamp_ns(IoamNode(ts_s=2, ts_frac=1 << 31), "ntp")
    2500000000
    >>> node_timestamp_ns(IoamNode(ts_s=UNAVAILABLE_U32, ts_frac=0)) is None
    True
    """
    if ts_format not in (TS_FORMAT_POSIX, TS_FORMAT_PTP, TS_FORMAT_NTP):
        raise TelemetryValueError(f"ts_format={ts_format!r} must be 'posix' (Linux), 'ptp' or 'ntp'")
    seconds, fraction = node.ts_s, node.ts_frac
    if seconds is None or fraction is None or UNAVAILABLE_U32 in (seconds, fraction):
        return None
    if ts_format == TS_FORMAT_NTP:
        return seconds * 1_000_000_000 + (fraction * 1_000_000_000 >> 32)
    limit, scale = _FRACTION_NS[ts_format]
    if fraction >= limit:
        return None
    return seconds * 1_000_000_000 + fraction * scale


@dataclass
class DecodeStats:
    """Collector counters: traces decoded, and packets dropped per reason."""

    decoded: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        return {"decoded": self.decoded, "dropped": dict(sorted(self.dropped.items()))}


_LAYERS = {"ipv6": parse_ipv6_packet, "hop_by_hop": parse_hop_by_hop, "trace": parse_trace}


def decode_or_count(data: bytes, stats: DecodeStats, layer: str = "ipv6") -> IoamTrace | None:
    """Decode one captured packet, or count why it was dropped.

    Parameters
    ----------
    data : bytes
        Captured octets starting at ``layer``.
    stats : DecodeStats
        Updated in place.
    layer : {"ipv6", "hop_by_hop", "trace"}
        Where ``data`` starts.

    Returns
    -------
    IoamTrace or None
        None when the packet was dropped.

    Raises
    ------
    TelemetryValueError
        If ``layer`` is unknown (a programming error, not a bad packet).

    Examples
    --------
    >>> stats = DecodeStats()
    >>> decode_or_count(b"\\x60\\x00", stats) is None, stats.to_dict()
    (True, {'decoded': 0, 'dropped': {'truncated': 1}})
    """
    try:
        parse = _LAYERS[layer]
    except KeyError:
        raise TelemetryValueError(f"layer={layer!r} must be one of {sorted(_LAYERS)}") from None
    try:
        trace = parse(bytes(data))
    except TelemetryDecodeError as err:
        stats.dropped[err.reason] = stats.dropped.get(err.reason, 0) + 1
        return None
    stats.decoded += 1
    return trace
