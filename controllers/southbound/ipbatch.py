"""Many route and rule specs into one router in one go: iproute2's ``ip -batch``.

pyroute2 costs a fraction of a millisecond per request in Python; a batch of
policies installed through one ``ip -6 -batch -`` call in the router's
namespace costs the kernel's work plus one process. The same specs as
:mod:`controllers.southbound.netlink` (pyroute2 keys), written as ``ip`` lines.

Examples
--------
>>> route_line({"dst": "2001:db8:3::2:1/128", "table": 1000, "oif": "r1-eth1", "priority": 100,
...             "encap": {"type": "seg6", "mode": "encap", "segs": ["fcbb:bb00:3:3:2:1::", "fcbb:bb00:2:1::"]}})
'route add 2001:db8:3::2:1/128 table 1000 encap seg6 mode encap segs fcbb:bb00:2:1::,fcbb:bb00:3:3:2:1:: dev r1-eth1 metric 100'
>>> rule_line({"priority": 1000, "table": 1000, "iifname": "r1-eth0", "dst": "2001:db8:3::2:1/128",
...            "ip_proto": 17, "dport_range": "5001:5001"})
'rule add priority 1000 to 2001:db8:3::2:1/128 iif r1-eth0 ipproto 17 dport 5001-5001 lookup 1000'
"""

from __future__ import annotations

import subprocess

from cpn_net.model import addressing


class BatchError(RuntimeError):
    """``ip -batch`` refused a line; the message names the router and the line."""


def route_line(spec: dict, op: str = "add") -> str:
    parts = ["route", op, spec["dst"]]
    if "table" in spec:
        parts += ["table", str(spec["table"])]
    encap = spec.get("encap")
    if encap and encap.get("type") == "seg6":
        # specs hold the SRH order (last segment first); ip takes the travel order
        parts += ["encap", "seg6", "mode", encap["mode"], "segs", ",".join(reversed(encap["segs"]))]
    elif encap:
        raise BatchError(f"route {spec['dst']}: encap type {encap.get('type')!r} is not batched")
    if "gateway" in spec:
        parts += ["via", spec["gateway"]]
    if "oif" in spec:
        parts += ["dev", spec["oif"]]
    if "priority" in spec:
        parts += ["metric", str(spec["priority"])]
    return " ".join(parts)


def rule_line(spec: dict, op: str = "add") -> str:
    parts = ["rule", op, "priority", str(spec["priority"])]
    if "src" in spec:
        parts += ["from", spec["src"]]
    if "dst" in spec:
        parts += ["to", spec["dst"]]
    if "iifname" in spec:
        parts += ["iif", spec["iifname"]]
    if "fwmark" in spec:
        parts += ["fwmark", str(spec["fwmark"])]
    if "ip_proto" in spec:
        parts += ["ipproto", str(spec["ip_proto"])]
    for key, word in (("sport_range", "sport"), ("dport_range", "dport")):
        if key in spec:
            parts += [word, spec[key].replace(":", "-")]
    parts += ["lookup", str(spec["table"])]
    return " ".join(parts)


def run_specs(router: str, routes, rules) -> None:
    """Route specs, then rule specs, into ``router`` in one ``ip -batch`` (the kernel driver's batch)."""
    run_batch(router, [route_line(r) for r in routes] + [rule_line(r) for r in rules])


def run_batch(router: str, lines: list[str]) -> None:
    """Apply ``lines`` in the router's namespace; stop at the first refused line."""
    if not lines:
        return
    proc = subprocess.run(["ip", "-n", addressing.namespace(router), "-6", "-batch", "-"],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise BatchError(f"router {router}: ip -batch: {proc.stderr.strip()[-400:]}")
