"""Control sockets of the processes cpn_net starts: one JSON request, one JSON reply.

The link elements (:mod:`cpn_net.emulation.wire`) and the compute services
(:mod:`cpn_net.compute.service`) each listen on a Unix datagram socket in the
run directory (the filesystem is shared across network namespaces, so the
controller and the CLI reach them from the root namespace). A client binds its
own temporary path to get the reply.
"""

from __future__ import annotations

import json
import os
import socket
import time


def request(control_path: str, message: dict, timeout_s: float = 2.0) -> dict:
    """Send one request to the process listening on ``control_path`` and return its reply.

    Raises
    ------
    OSError
        If nothing listens there or it does not answer within ``timeout_s``.
    """
    client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    reply_path = f"{control_path}.{os.getpid()}.{time.monotonic_ns()}"
    try:
        client.bind(reply_path)
        client.settimeout(timeout_s)
        client.sendto(json.dumps(message).encode(), control_path)
        return json.loads(client.recv(65536))
    finally:
        client.close()
        try:
            os.unlink(reply_path)
        except FileNotFoundError:
            pass


def serve_pending(sock: socket.socket, handle) -> None:
    """Answer every request waiting on a non-blocking control socket with ``handle(data) -> dict``."""
    while True:
        try:
            data, peer = sock.recvfrom(65536)
        except (BlockingIOError, InterruptedError):
            return
        reply = handle(data)
        if peer:
            try:
                sock.sendto(json.dumps(reply).encode(), peer)
            except OSError:
                pass  # the client gave up waiting
