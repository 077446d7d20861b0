"""Open sockets inside a node's network namespace from the controller process.

A network namespace is per thread in Linux: a short-lived thread joins the
namespace (``setns``), creates the socket, and ends; the socket stays in that
namespace for its whole life, usable from any thread. This lets one controller
process send and collect telemetry probes at every site without a helper
process per node.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading

from cpn_net.model import addressing

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def in_namespace(namespace: str, work):
    """``work()`` on a short-lived thread that joined the named namespace ``/run/netns/<namespace>``.

    What ``work`` creates there (a socket, a BPF test run's view of routes) belongs to that
    namespace; its return value or exception is handed back to the caller's thread.
    """
    result: dict = {}

    def enter_and_work():
        try:
            fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into {namespace}: {os.strerror(err)}")
            finally:
                os.close(fd)
            result["value"] = work()
        except BaseException as err:  # handed to the caller's thread
            result["error"] = err

    thread = threading.Thread(target=enter_and_work, name=f"netns-{namespace}")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def socket_in(namespace: str, family: int = socket.AF_INET6, kind: int = socket.SOCK_DGRAM,
              proto: int = 0) -> socket.socket:
    """A socket created inside the named namespace ``/run/netns/<namespace>``."""
    return in_namespace(namespace, lambda: socket.socket(family, kind, proto))


def run_in(node: str, argv: list[str], *, stdin: str | None = None, check: bool = True,
           timeout_s: float = 30.0) -> subprocess.CompletedProcess:
    """Run a command (nft, tc, sysctl, ip) inside a node's namespace ``cpn-<node>``.

    Raises
    ------
    RuntimeError
        With ``check``, when the command fails: names the node, the command and its error.
    """
    proc = subprocess.run(["ip", "netns", "exec", addressing.namespace(node), *argv], input=stdin,
                          capture_output=True, text=True, timeout=timeout_s)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{node}: `{' '.join(argv)}` failed: {proc.stderr.strip()}")
    return proc
