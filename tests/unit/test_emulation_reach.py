"""Tests of the ICMPv6 echo prober's packet building and parsing (RFC 4443 §4.1, §4.2)."""

import struct

import pytest

from cpn_net.emulation.reach import ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, echo_request, parse_echo_reply


def test_echo_request_exact_bytes():
    assert echo_request(0x1234, 7) == bytes.fromhex("80 00 0000 1234 0007") + b"cpn-reach"
    assert echo_request(0xFFFF, 0xFFFF)[:8] == bytes.fromhex("80 00 0000 ffff ffff")


def test_echo_request_fields_parse_back():
    kind, code, checksum, ident, sequence = struct.unpack("!BBHHH", echo_request(513, 42)[:8])
    assert (kind, code, checksum, ident, sequence) == (ICMPV6_ECHO_REQUEST, 0, 0, 513, 42)


def _reply(ident, sequence, kind=ICMPV6_ECHO_REPLY, payload=b"cpn-reach"):
    return struct.pack("!BBHHH", kind, 0, 0xBEEF, ident, sequence) + payload


def test_reply_for_us_gives_its_sequence():
    assert parse_echo_reply(_reply(0x1234, 9), 0x1234) == 9
    assert parse_echo_reply(_reply(0x1234, 0, payload=b""), 0x1234) == 0  # header only is enough


@pytest.mark.parametrize("data", [
    _reply(0x1234, 9, kind=ICMPV6_ECHO_REQUEST),  # our own request looped back
    _reply(0x1234, 9, kind=1),                    # destination unreachable
    _reply(0x4321, 9),                            # another prober's reply
    _reply(0x1234, 9)[:7],                        # truncated header
    b"",
])
def test_anything_else_is_ignored(data):
    assert parse_echo_reply(data, 0x1234) is None
