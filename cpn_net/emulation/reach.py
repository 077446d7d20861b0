"""An ICMPv6 echo prober run inside a node: which addresses answer, and how fast.

Faster than one ``ping`` process per destination when a booted network is
verified: one raw socket sends echo requests to every destination, resends to
the silent ones every ``interval_s`` until they answer or the deadline passes,
and prints one JSON object ``{address: rtt_ms or null}``.

Run as ``python -m cpn_net.emulation.reach --timeout-s 5 ADDR ...`` inside a
node's namespace (needs root for the raw socket).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time

ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129


def echo_request(ident: int, sequence: int) -> bytes:
    """An ICMPv6 echo request (RFC 4443 §4.1); the kernel fills in the checksum.

    Examples
    --------
    >>> echo_request(0x1234, 7).hex()
    '800000001234000763706e2d7265616368'
    """
    return struct.pack("!BBHHH", ICMPV6_ECHO_REQUEST, 0, 0, ident, sequence) + b"cpn-reach"


def parse_echo_reply(data: bytes, ident: int) -> int | None:
    """The sequence number of an echo reply meant for us, else None."""
    if len(data) < 8:
        return None
    kind, _code, _checksum, reply_ident, sequence = struct.unpack("!BBHHH", data[:8])
    if kind != ICMPV6_ECHO_REPLY or reply_ident != ident:
        return None
    return sequence


def probe(destinations: list[str], timeout_s: float, interval_s: float = 0.2) -> dict[str, float | None]:
    """Send echo requests until every destination answered or ``timeout_s`` passed."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    ident = os.getpid() & 0xFFFF
    index = {i: str(ipaddress.IPv6Address(d)) for i, d in enumerate(destinations)}
    sent_at: dict[int, float] = {}
    result: dict[str, float | None] = {addr: None for addr in index.values()}
    deadline = time.monotonic() + timeout_s
    next_round = 0.0
    try:
        while time.monotonic() < deadline and any(v is None for v in result.values()):
            now = time.monotonic()
            if now >= next_round:
                for seq, addr in index.items():
                    if result[addr] is None:
                        sent_at[seq] = time.monotonic()
                        try:
                            sock.sendto(echo_request(ident, seq), (addr, 0))
                        except OSError:
                            pass  # no route yet: try again next round
                next_round = now + interval_s
            wait = max(0.0, min(next_round, deadline) - time.monotonic())
            ready, _, _ = select.select([sock], [], [], wait)
            if ready:
                data, _peer = sock.recvfrom(2048)
                seq = parse_echo_reply(data, ident)
                if seq in index and result[index[seq]] is None:
                    result[index[seq]] = round((time.monotonic() - sent_at[seq]) * 1000.0, 3)
    finally:
        sock.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("destinations", nargs="+")
    parser.add_argument("--timeout-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    print(json.dumps(probe(args.destinations, args.timeout_s)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
