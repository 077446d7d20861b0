"""Tests of the compute request/response datagrams: exact bytes, round trips, and fuzzed input."""

import random

import pytest

from cpn_net.compute import ComputeProtocolError
from cpn_net.compute.protocol import (MAX_DATAGRAM_BYTES, REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES,
                                      Request, Response, ResponseStatus, decode_request,
                                      decode_response, encode_request, encode_response)

REQUEST = Request(request_id=0x1122334455667788, session=0x0A0B0C0D, send_ns=0x0102030405060708)
RESPONSE = Response(request_id=0x1122334455667788, status=ResponseStatus.REJECTED,
                    server_recv_ns=0x0102030405060708, queue_wait_us=0x01020304,
                    service_us=0x05060708, instance="k3-1")


def test_request_bytes_are_exact():
    wire = encode_request(REQUEST)
    assert wire == (b"CPNQ" + b"\x01" + bytes.fromhex("1122334455667788") + bytes.fromhex("0a0b0c0d")
                    + bytes.fromhex("0102030405060708"))
    assert len(wire) == REQUEST_HEADER_BYTES == 25
    assert decode_request(wire) == REQUEST


def test_request_is_zero_padded_and_padding_is_ignored():
    wire = encode_request(REQUEST, size_bytes=100)
    assert len(wire) == 100 and wire[25:] == bytes(75)
    assert decode_request(wire) == REQUEST
    assert decode_request(bytearray(wire[:25]) + b"anything") == REQUEST
    assert decode_request(memoryview(wire)) == REQUEST


def test_response_bytes_are_exact():
    wire = encode_response(RESPONSE)
    assert wire == (b"CPNR" + b"\x01" + bytes.fromhex("1122334455667788") + b"\x01"
                    + bytes.fromhex("0102030405060708") + bytes.fromhex("01020304")
                    + bytes.fromhex("05060708") + b"\x04" + b"k3-1")
    assert len(wire) == RESPONSE_HEADER_BYTES + 4 == 35
    decoded = decode_response(wire)
    assert decoded == RESPONSE and decoded.status is ResponseStatus.REJECTED


def test_response_carries_a_utf8_name_of_32_bytes():
    name = "k" * 30 + "é"  # 31 characters, 32 bytes
    wire = encode_response(Response(1, ResponseStatus.SERVED, 2, 3, 4, name))
    assert wire[30] == 32 and decode_response(wire).instance == name


@pytest.mark.parametrize("request_, size, message", [
    (Request(2**64, 0, 0), 25, f"request: request_id={2**64} must be an integer in 0..{2**64 - 1}"),
    (Request(0, 2**32, 0), 25, f"request: session={2**32} must be an integer in 0..{2**32 - 1}"),
    (Request(0, 0, -1), 25, f"request: send_ns=-1 must be an integer in 0..{2**64 - 1}"),
    (Request(0, 0, True), 25, f"request: send_ns=True must be an integer in 0..{2**64 - 1}"),
    (Request(0, 0, 0), 24, f"request: size_bytes=24 must be an integer in 25..{MAX_DATAGRAM_BYTES} "
                           "(the header needs 25 bytes)"),
    (Request(0, 0, 0), MAX_DATAGRAM_BYTES + 1,
     f"request: size_bytes={MAX_DATAGRAM_BYTES + 1} must be an integer in 25..{MAX_DATAGRAM_BYTES} "
     "(the header needs 25 bytes)"),
])
def test_request_fields_must_fit(request_, size, message):
    with pytest.raises(ComputeProtocolError) as info:
        encode_request(request_, size)
    assert str(info.value) == message


@pytest.mark.parametrize("change, message", [
    (dict(queue_wait_us=2**32), f"response: queue_wait_us={2**32} must be an integer in 0..{2**32 - 1}"),
    (dict(service_us=-1), f"response: service_us=-1 must be an integer in 0..{2**32 - 1}"),
    (dict(status=2), "response: status=2 must be one of [0, 1]"),
    (dict(instance=""), "response: instance='' must be a non-empty string"),
    (dict(instance="é" * 17), "response: instance='" + "é" * 17 + "' is 34 bytes of UTF-8; "
                              "use a name of 1..32 bytes"),
])
def test_response_fields_must_fit(change, message):
    fields = dict(request_id=1, status=ResponseStatus.SERVED, server_recv_ns=0, queue_wait_us=0,
                  service_us=0, instance="k1-1") | change
    with pytest.raises(ComputeProtocolError) as info:
        encode_response(Response(**fields))
    assert str(info.value) == message


def _with(wire: bytes, offset: int, value: bytes) -> bytes:
    return wire[:offset] + value + wire[offset + len(value):]


@pytest.mark.parametrize("datagram, message", [
    (b"", "request: 0 bytes is shorter than the 25-byte header"),
    (encode_request(REQUEST)[:24], "request: 24 bytes is shorter than the 25-byte header"),
    (_with(encode_request(REQUEST), 0, b"CPNR"),
     "request: magic=b'CPNR' must be b'CPNQ'; is the sender a cpn_net compute client/service?"),
    (_with(encode_request(REQUEST), 4, b"\x02"),
     "request: version=2 is not supported; this side speaks version 1"),
])
def test_malformed_requests_are_named(datagram, message):
    with pytest.raises(ComputeProtocolError) as info:
        decode_request(datagram)
    assert str(info.value) == message


@pytest.mark.parametrize("datagram, message", [
    (encode_response(RESPONSE)[:30], "response: 30 bytes is shorter than the 31-byte header"),
    (encode_response(RESPONSE)[:-1], "response: 34 bytes, but name_length=4 makes it 35"),
    (encode_response(RESPONSE) + b"x", "response: 36 bytes, but name_length=4 makes it 35"),
    (_with(encode_response(RESPONSE), 30, b"\x00"), "response: name_length=0 must be in 1..32"),
    (_with(encode_response(RESPONSE), 30, b"\x21"), "response: name_length=33 must be in 1..32"),
    (_with(encode_response(RESPONSE), 31, b"\xff"), "response: instance name b'\\xff3-1' is not UTF-8"),
    (_with(encode_response(RESPONSE), 0, b"CPNQ"),
     "response: magic=b'CPNQ' must be b'CPNR'; is the sender a cpn_net compute client/service?"),
    (_with(encode_response(RESPONSE), 4, b"\x00"),
     "response: version=0 is not supported; this side speaks version 1"),
])
def test_malformed_responses_are_named(datagram, message):
    with pytest.raises(ComputeProtocolError) as info:
        decode_response(datagram)
    assert str(info.value) == message


def _mutations(rng: random.Random, wire: bytes):
    """Bit flips, byte overwrites, truncations, extensions and splices of a valid datagram."""
    data = bytearray(wire)
    kind = rng.randrange(5)
    if kind == 0:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1:
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 2:
        del data[rng.randrange(len(data) + 1):]
    elif kind == 3:
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    else:
        data = bytearray(rng.randbytes(rng.randrange(80)))
        if rng.random() < 0.5:
            data[:5] = wire[:5]
    return bytes(data)


def test_fuzzed_datagrams_raise_only_the_protocol_error():
    rng = random.Random(2026)
    outcomes = {"ok": 0, "error": 0}
    wires = [(decode_request, encode_request(REQUEST, 40)), (decode_response, encode_response(RESPONSE)),
             (decode_response, encode_response(Response(7, ResponseStatus.SERVED, 1, 2, 3, "k12-34")))]
    for _ in range(4000):
        decode, wire = rng.choice(wires)
        datagram = _mutations(rng, wire)
        try:
            decoded = decode(datagram)
        except ComputeProtocolError as err:
            assert str(err).startswith(("request: ", "response: "))
            outcomes["error"] += 1
        else:
            # What decodes must re-encode to the same header bytes (nothing was silently misread).
            if decode is decode_response:
                assert encode_response(decoded) == datagram
            else:
                assert encode_request(decoded) == datagram[:REQUEST_HEADER_BYTES]
            outcomes["ok"] += 1
    assert outcomes["ok"] > 100 and outcomes["error"] > 1000
