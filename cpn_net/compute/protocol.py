"""The compute service's UDP request and response datagrams.

One request datagram asks for one unit of work; the service answers with
one response datagram from the address the request was sent to (the
service's anycast address, the CATS service ID), so a client sees the
instance that served it only in the payload. All integers are unsigned,
network byte order (RFC 1700 convention); the UDP header is RFC 768.

Request (``REQUEST_HEADER_BYTES`` = 25, zero padding up to the client's
``--size-bytes``; padding is ignored):

======  ==========  ====  ===================================================
offset  field       size  meaning
======  ==========  ====  ===================================================
0       magic       4     ``b"CPNQ"``
4       version     1     :data:`VERSION` (1)
5       request_id  8     client-chosen, echoed in the response
13      session     4     client session (one UDP source port per session)
17      send_ns     8     client ``CLOCK_REALTIME`` when sent, nanoseconds
======  ==========  ====  ===================================================

Response (``31 + len(instance)`` bytes, nothing after the name):

======  ==============  ====  ===============================================
offset  field           size  meaning
======  ==============  ====  ===============================================
0       magic           4     ``b"CPNR"``
4       version         1     :data:`VERSION` (1)
5       request_id      8     the request's
13      status          1     0 served, 1 rejected (queue full)
14      server_recv_ns  8     service ``CLOCK_REALTIME`` at receipt
22      queue_wait_us   4     time waiting for a worker, microseconds
26      service_us      4     time in service, microseconds
30      name_length     1     1 .. :data:`MAX_INSTANCE_BYTES`
31      instance        n     the serving instance's name, UTF-8
======  ==============  ====  ===============================================

Decoders accept exactly these layouts and raise :class:`ComputeProtocolError`
for anything else, whatever the bytes.

Examples
--------
>>> wire = encode_request(Request(request_id=1, session=2, send_ns=3), size_bytes=32)
>>> len(wire), wire[:5]
(32, b'CPNQ\\x01')
>>> decode_request(wire)
Request(request_id=1, session=2, send_ns=3)
>>> reply = encode_response(Response(1, ResponseStatus.SERVED, 5, 100, 9000, "k3-1"))
>>> decode_response(reply).instance
'k3-1'
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from cpn_net.compute.errors import ComputeProtocolError

REQUEST_MAGIC = b"CPNQ"
RESPONSE_MAGIC = b"CPNR"
VERSION = 1
REQUEST_HEADER = struct.Struct("!4sBQIQ")
RESPONSE_HEADER = struct.Struct("!4sBQBQIIB")
REQUEST_HEADER_BYTES = REQUEST_HEADER.size
RESPONSE_HEADER_BYTES = RESPONSE_HEADER.size  # up to and including name_length
MAX_INSTANCE_BYTES = 32
MAX_DATAGRAM_BYTES = 65535 - 8  # IPv6 payload length bounds a UDP datagram (RFC 8200 §3, no jumbograms)
U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1


class ResponseStatus(enum.IntEnum):
    """What the service did with a request."""

    SERVED = 0
    REJECTED = 1  # the queue was full: answered at once, no work done


@dataclass(frozen=True, slots=True)
class Request:
    """One request's header fields (see the module table)."""

    request_id: int
    session: int
    send_ns: int


@dataclass(frozen=True, slots=True)
class Response:
    """One response's fields (see the module table)."""

    request_id: int
    status: ResponseStatus
    server_recv_ns: int
    queue_wait_us: int
    service_us: int
    instance: str


def encode_request(request: Request, size_bytes: int = REQUEST_HEADER_BYTES) -> bytes:
    """The request datagram, zero-padded to ``size_bytes``.

    Parameters
    ----------
    request : Request
        ``request_id`` and ``send_ns`` are u64, ``session`` u32.
    size_bytes : int
        UDP payload size, ``REQUEST_HEADER_BYTES`` .. ``MAX_DATAGRAM_BYTES``.

    Returns
    -------
    bytes

    Raises
    ------
    ComputeProtocolError
        If a field or the size does not fit.

    Examples
    --------
    >>> encode_request(Request(0x0102, 7, 0x0A0B)).hex()
    '43504e51010000000000000102000000070000000000000a0b'
    >>> encode_request(Request(-1, 0, 0))
    Traceback (most recent call last):
    ...
    cpn_net.compute.errors.ComputeProtocolError: request: request_id=-1 must be an integer in 0..18446744073709551615
    """
    _check_field("request", "request_id", request.request_id, U64_MAX)
    _check_field("request", "session", request.session, U32_MAX)
    _check_field("request", "send_ns", request.send_ns, U64_MAX)
    if isinstance(size_bytes, bool) or not isinstance(size_bytes, int) \
            or not REQUEST_HEADER_BYTES <= size_bytes <= MAX_DATAGRAM_BYTES:
        raise ComputeProtocolError(
            f"request: size_bytes={size_bytes!r} must be an integer in "
            f"{REQUEST_HEADER_BYTES}..{MAX_DATAGRAM_BYTES} (the header needs {REQUEST_HEADER_BYTES} bytes)")
    header = REQUEST_HEADER.pack(REQUEST_MAGIC, VERSION, request.request_id, request.session,
                                 request.send_ns)
    return header + bytes(size_bytes - REQUEST_HEADER_BYTES)


def decode_request(datagram: bytes | bytearray | memoryview) -> Request:
    """Parse a request datagram (padding after the header is ignored).

    Raises
    ------
    ComputeProtocolError
        If the datagram is short, or its magic or version is wrong.

    Examples
    --------
    >>> decode_request(b"CPNQ")
    Traceback (most recent call last):
    ...
    cpn_net.compute.errors.ComputeProtocolError: request: 4 bytes is shorter than the 25-byte header
    """
    if len(datagram) < REQUEST_HEADER_BYTES:
        raise ComputeProtocolError(f"request: {len(datagram)} bytes is shorter than the "
                                   f"{REQUEST_HEADER_BYTES}-byte header")
    magic, version, request_id, session, send_ns = REQUEST_HEADER.unpack_from(datagram)
    _check_magic_version("request", magic, REQUEST_MAGIC, version)
    return Request(request_id=request_id, session=session, send_ns=send_ns)


def encode_response(response: Response) -> bytes:
    """The response datagram.

    Parameters
    ----------
    response : Response
        ``queue_wait_us`` and ``service_us`` must fit u32 (the service
        saturates them first); ``instance`` 1 .. 32 bytes of UTF-8.

    Returns
    -------
    bytes

    Raises
    ------
    ComputeProtocolError
        If a field does not fit.

    Examples
    --------
    >>> encode_response(Response(2, ResponseStatus.REJECTED, 3, 0, 0, "k1-1")).hex()
    '43504e520100000000000000020100000000000000030000000000000000046b312d31'
    >>> encode_response(Response(2, ResponseStatus.SERVED, 3, 0, 0, "k" * 33))
    Traceback (most recent call last):
    ...
    cpn_net.compute.errors.ComputeProtocolError: response: instance='kk...k' is 33 bytes of UTF-8; use a name of 1..32...
    """
    _check_field("response", "request_id", response.request_id, U64_MAX)
    _check_field("response", "server_recv_ns", response.server_recv_ns, U64_MAX)
    _check_field("response", "queue_wait_us", response.queue_wait_us, U32_MAX)
    _check_field("response", "service_us", response.service_us, U32_MAX)
    try:
        status = ResponseStatus(response.status)
    except ValueError as err:
        raise ComputeProtocolError(f"response: status={response.status!r} must be one of "
                                   f"{[s.value for s in ResponseStatus]}") from err
    name = instance_bytes(response.instance)
    return RESPONSE_HEADER.pack(RESPONSE_MAGIC, VERSION, response.request_id, status,
                                response.server_recv_ns, response.queue_wait_us,
                                response.service_us, len(name)) + name


def decode_response(datagram: bytes | bytearray | memoryview) -> Response:
    """Parse a response datagram; its length must be exactly header plus name.

    Raises
    ------
    ComputeProtocolError
        On a short or long datagram, wrong magic, version or status, or a
        name that is empty, too long or not UTF-8.

    Examples
    --------
    >>> bad = bytearray(encode_response(Response(1, ResponseStatus.SERVED, 0, 0, 0, "k1-1")))
    >>> bad[13] = 9
    >>> decode_response(bad)
    Traceback (most recent call last):
    ...
    cpn_net.compute.errors.ComputeProtocolError: response: status=9 must be 0 (served) or 1 (rejected)
    """
    if len(datagram) < RESPONSE_HEADER_BYTES:
        raise ComputeProtocolError(f"response: {len(datagram)} bytes is shorter than the "
                                   f"{RESPONSE_HEADER_BYTES}-byte header")
    (magic, version, request_id, status, server_recv_ns, queue_wait_us, service_us,
     name_length) = RESPONSE_HEADER.unpack_from(datagram)
    _check_magic_version("response", magic, RESPONSE_MAGIC, version)
    if status not in (ResponseStatus.SERVED, ResponseStatus.REJECTED):
        raise ComputeProtocolError(f"response: status={status} must be 0 (served) or 1 (rejected)")
    if not 1 <= name_length <= MAX_INSTANCE_BYTES:
        raise ComputeProtocolError(f"response: name_length={name_length} must be in 1..{MAX_INSTANCE_BYTES}")
    expected = RESPONSE_HEADER_BYTES + name_length
    if len(datagram) != expected:
        raise ComputeProtocolError(f"response: {len(datagram)} bytes, but name_length={name_length} "
                                   f"makes it {expected}")
    try:
        instance = bytes(datagram[RESPONSE_HEADER_BYTES:]).decode("utf-8")
    except UnicodeDecodeError as err:
        raise ComputeProtocolError(f"response: instance name {bytes(datagram[RESPONSE_HEADER_BYTES:])!r} "
                                   "is not UTF-8") from err
    return Response(request_id=request_id, status=ResponseStatus(status), server_recv_ns=server_recv_ns,
                    queue_wait_us=queue_wait_us, service_us=service_us, instance=instance)


def instance_bytes(instance: str) -> bytes:
    """An instance name as the response carries it, checked.

    Raises
    ------
    ComputeProtocolError
        If the name is not a string of 1 .. 32 bytes of UTF-8.

    Examples
    --------
    >>> instance_bytes("k12-3")
    b'k12-3'
    """
    if not isinstance(instance, str) or not instance:
        raise ComputeProtocolError(f"response: instance={instance!r} must be a non-empty string")
    name = instance.encode("utf-8")
    if len(name) > MAX_INSTANCE_BYTES:
        raise ComputeProtocolError(f"response: instance={instance!r} is {len(name)} bytes of UTF-8; "
                                   f"use a name of 1..{MAX_INSTANCE_BYTES} bytes")
    return name


def saturate_u32(value: int) -> int:
    """``value`` clamped into u32, for durations that could overflow the field.

    Examples
    --------
    >>> saturate_u32(-5), saturate_u32(7), saturate_u32(2**40) == U32_MAX
    (0, 7, True)
    """
    return min(max(value, 0), U32_MAX)


def _check_field(owner: str, key: str, value, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise ComputeProtocolError(f"{owner}: {key}={value!r} must be an integer in 0..{high}")


def _check_magic_version(owner: str, magic: bytes, expected: bytes, version: int) -> None:
    if magic != expected:
        raise ComputeProtocolError(f"{owner}: magic={magic!r} must be {expected!r}; "
                                   "is the sender a cpn_net compute client/service?")
    if version != VERSION:
        raise ComputeProtocolError(f"{owner}: version={version} is not supported; this side speaks "
                                   f"version {VERSION}")
