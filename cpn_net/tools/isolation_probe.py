"""Craft and count packets that try to cross slice isolation; run inside a node's namespace.

``python -m cpn_net.tools.isolation_probe recv|send ...`` (the slice tests and experiment use it).

``recv PORT SECONDS``: count UDP datagrams on PORT by their first word; print JSON.
``send IFACE ROUTER_MAC MARKER PORT COUNT KIND ARGS...`` with KIND:
  plain SRC DST TC           an IPv6/UDP packet (any source, any traffic class);
  encap OUTER INNER_SRC DST  IPv6-in-IPv6 to a SID (a host decapsulating by hand);
  srh FIRST LAST SRC DST     an SRH [FIRST, LAST] carrying IPv6/UDP (a host source-routing).
Frames go out with sendp (layer 2) to the router's MAC, so nothing in the host changes them.
"""

import collections
import json
import socket
import sys
import time


def recv(port: int, seconds: float) -> None:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind(("::", port))
    sock.settimeout(0.1)
    counts = collections.Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data, _ = sock.recvfrom(2048)
        except socket.timeout:
            continue
        counts[data.split(b" ", 1)[0].decode(errors="replace")] += 1
    print(json.dumps(counts))


def send(iface, router_mac, marker, port, count, kind, *args) -> None:
    from scapy.all import UDP, Ether, IPv6, IPv6ExtHdrSegmentRouting, get_if_hwaddr, sendp

    payload = f"{marker} isolation-probe".encode()
    if kind == "plain":
        src, dst, tc = args
        packet = IPv6(src=src, dst=dst, tc=int(tc, 0)) / UDP(sport=40000, dport=int(port)) / payload
    elif kind == "encap":
        outer, src, dst = args
        packet = IPv6(src=src, dst=outer, nh=41) / IPv6(src=src, dst=dst) / UDP(sport=40000, dport=int(port)) / payload
    elif kind == "srh":
        first, last, src, dst = args
        packet = (IPv6(src=src, dst=first) / IPv6ExtHdrSegmentRouting(addresses=[last, first], segleft=1, nh=41)
                  / IPv6(src=src, dst=dst) / UDP(sport=40000, dport=int(port)) / payload)
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    frame = Ether(src=get_if_hwaddr(iface), dst=router_mac) / packet
    sendp(frame, iface=iface, count=int(count), inter=0.01, verbose=False)


if __name__ == "__main__":
    if sys.argv[1] == "recv":
        recv(int(sys.argv[2]), float(sys.argv[3]))
    else:
        send(*sys.argv[2:])
