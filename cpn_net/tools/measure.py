"""Run one measured flow between two emulated nodes, optionally with an event mid-flow.

Used by experiments (in-process :class:`~cpn_net.emulation.network.EmulatedNetwork`)
and integration tests (``ip netns exec`` against a detached network): both pass
a ``popen(node, argv, **kwargs)`` that starts a process inside a node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from cpn_net.tools.outage import analyse_run

READY_TIMEOUT_S = 10.0


def netns_popen(node: str, argv: list[str], **kwargs) -> subprocess.Popen:
    """Start ``argv`` inside a running node's named namespace ``cpn-<node>``."""
    return subprocess.Popen(["ip", "netns", "exec", f"cpn-{node}", *argv], **kwargs)


DRAIN_S = 0.25  # longer than any emulated path's one-way delay (the flagship's longest is ~40 ms)


def measure_flow(popen, sender: str, receiver: str, address: str, *, rate_pps: float, duration_s: float,
                 workdir: str, port: int = 5999, flow_id: int = 1, event=None, event_at_s: float | None = None,
                 size_bytes: int = 64) -> dict:
    """Send a constant-rate UDP flow ``sender`` -> ``address`` (on ``receiver``) and analyse it.

    ``event`` (a callable) runs ``event_at_s`` seconds after the first packet;
    its return value and the time it took are reported with the flow.
    """
    os.makedirs(workdir, exist_ok=True)
    tag = f"{sender}-{receiver}-{flow_id}-{time.monotonic_ns()}"
    ready, recv_out, send_out = (os.path.join(workdir, f"{tag}.{kind}") for kind in ("ready", "recv.json", "send.json"))
    py = [sys.executable, "-m", "cpn_net.tools.flowgen"]
    receiver_proc = popen(receiver, py + ["recv", "--bind", address, "--port", str(port), "--duration-s",
                                          str(duration_s + 3), "--out", recv_out, "--ready-file", ready,
                                          "--flow-id", str(flow_id)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not os.path.exists(ready):
            if receiver_proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"flow receiver on {receiver} did not start: "
                                   f"{receiver_proc.stderr.read().decode()[-500:] if receiver_proc.poll() is not None else 'timeout'}")
            time.sleep(0.02)
        sender_proc = popen(sender, py + ["send", "--to", address, "--port", str(port), "--rate-pps",
                                          str(rate_pps), "--duration-s", str(duration_s), "--out", send_out,
                                          "--flow-id", str(flow_id), "--size-bytes", str(size_bytes)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started = time.monotonic()
        event_result = None
        if event is not None:
            # A scheduled fault: wait for its moment in the flow, then inject it.
            time.sleep(max(0.0, started + event_at_s - time.monotonic()))
            t0 = time.monotonic()
            event_result = {"at_s": round(t0 - started, 3), "result": event(),
                            "took_ms": round((time.monotonic() - t0) * 1000, 3)}
        _, err = sender_proc.communicate(timeout=duration_s + 30)
        if sender_proc.returncode != 0:
            raise RuntimeError(f"flow sender on {sender} failed: {err.decode()[-500:]}")
        # All sent: packets still on the wire (up to the path's one-way delay, tens of ms on our
        # topologies) get DRAIN_S to arrive, then the receiver stops waiting for stragglers.
        try:
            receiver_proc.wait(timeout=DRAIN_S)
        except subprocess.TimeoutExpired:
            receiver_proc.send_signal(subprocess.signal.SIGTERM)
        _, err = receiver_proc.communicate(timeout=30)
        if receiver_proc.returncode not in (0, -15):
            raise RuntimeError(f"flow receiver on {receiver} failed: {err.decode()[-500:]}")
    finally:
        if receiver_proc.poll() is None:
            receiver_proc.kill()
            receiver_proc.wait()
    with open(send_out) as handle:
        sent = json.load(handle)
    with open(recv_out) as handle:
        received = json.load(handle)
    report = analyse_run(sent, received).to_dict()
    report["event"] = event_result
    return report
