"""Send N requests to a service address, each from a fresh UDP socket (its own flow); print who answered.

Run inside a node's namespace by tests/integration/test_steering.py.
"""

import collections
import json
import socket
import sys
import time

from cpn_net.compute.protocol import Request, decode_response, encode_request

def main() -> None:
    address, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    served, sources, timeouts = collections.Counter(), collections.Counter(), 0
    for i in range(count):
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.settimeout(1.0)
        sock.sendto(encode_request(Request(request_id=i, session=0, send_ns=time.time_ns())), (address, port))
        try:
            data, peer = sock.recvfrom(2048)
            served[decode_response(data).instance] += 1
            sources[peer[0]] += 1
        except socket.timeout:
            timeouts += 1
        sock.close()
    print(json.dumps({"served": served, "sources": sources, "timeouts": timeouts}))


if __name__ == "__main__":
    main()
