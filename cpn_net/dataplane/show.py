"""``cpn dataplane show NODE``: a router's local SIDs, policies and tables in ``ip -6 route`` style.

With Linux seg6 this is what ``ip -6 route show table all`` and ``ip -6 rule``
print. With the eBPF data plane the same facts live in pinned maps and in plain
kernel routes whose metrics name policies; this module reads both and prints them
the way ``ip -6 route`` prints the kernel's seg6 routes, so a student sees the
same thing whichever data plane runs::

    fcbb:bb00:2:2:1::/128 encap seg6local action End.X proto bpf nh6 fd00:1::1 dev r2-eth1
    2001:db8:3::2:1/128 encap seg6 mode encap segs 1 [ fcbb:bb00:3:3:2:1:: ] via fd00:1::2 dev r1-eth1 metric 100

The formatting is pure (:func:`format_bpf`); :func:`show` gathers the inputs.

Examples
--------
>>> from cpn_net.dataplane import records as R
>>> sids = {"fcbb:bb00:1:2:2::": R.SidEntry(R.Action.END_X, mark=R.MARK_BASE + 2)}
>>> rules = [{"priority": 40, "fwmark": R.MARK_BASE + 2, "table": R.TABLE_BASE + 2}]
>>> routes = [{"dst": "default", "table": R.TABLE_BASE + 2, "gateway": "fd00:1::2", "dev": "r1-eth1",
...            "metric": R.kernel_metric(1024, 0)},
...           {"dst": "2001:db8:3::2:1", "table": 254, "gateway": "fd00:1::2", "dev": "r1-eth1",
...            "metric": R.kernel_metric(100, 3)}]
>>> encaps = {R.kernel_metric(100, 3): R.EncapEntry.for_segments("fd00:1::1", ["fcbb:bb00:3:3:2:1::"])}
>>> print(format_bpf(sids, encaps, routes, rules))
# local SIDs (map cpn_sids)
fcbb:bb00:1:2:2::/128 encap seg6local action End.X proto bpf nh6 fd00:1::2 dev r1-eth1
# routes (policy routes: map cpn_encaps, keyed by the route's metric)
2001:db8:3::2:1/128 encap seg6 mode encap segs 1 [ fcbb:bb00:3:3:2:1:: ] via fd00:1::2 dev r1-eth1 metric 100
# rules
40: from all fwmark 0x5c000002 lookup 1543503874 (End.X)
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess

from cpn_net.dataplane import records as R
from cpn_net.model import addressing


def _prefix(dst: str) -> str:
    if dst == "default":
        return "::/0"
    return str(ipaddress.IPv6Network(dst, strict=False))


def _table(table) -> str:
    return "" if table in (None, 254, "main") else f" table {table}"


def _segs_text(entry: R.EncapEntry) -> tuple[str, str]:
    """(mode, segs in travel order) of a prebuilt outer header."""
    srh = list(reversed(entry.segments))
    left = entry.segments_left
    if left is None:  # reduced, one segment
        return "encap.red", entry.destination
    reduced = left > len(entry.segments) - 1 or (srh and srh[0] != entry.destination and
                                                 entry.destination not in srh)
    travel = ([entry.destination] if reduced else []) + srh
    return ("encap.red" if reduced else "encap"), " ".join(travel)


def format_bpf(sids: dict, encaps: dict, routes: list[dict], rules: list[dict]) -> str:
    """The eBPF data plane's state of one router as ``ip -6 route`` would print seg6 routes."""
    by_mark = {r["fwmark"]: r for r in rules if r.get("fwmark") is not None}
    defaults = {r.get("table"): r for r in routes if _prefix(r["dst"]) == "::/0"}
    lines = ["# local SIDs (map cpn_sids)"]
    for sid, entry in sorted(sids.items(), key=lambda kv: ipaddress.IPv6Address(kv[0])):
        text = f"{sid}/128 encap seg6local action {entry.action.behaviour} proto bpf"
        rule = by_mark.get(entry.mark)
        if entry.action in (R.Action.END_X, R.Action.END_DX6) and rule is not None:
            via = defaults.get(rule["table"], {})
            text += f" nh6 {via.get('gateway')} dev {via.get('dev')}"
        elif entry.action is R.Action.END_DT6:
            text += f" table {rule['table'] if rule is not None else R.MAIN_TABLE}"
        elif entry.action is R.Action.END_B6_ENCAPS and entry.encap in encaps:
            _mode, travel = _segs_text(encaps[entry.encap])
            text += f" srh segs {travel.replace(' ', ',')}"
        lines.append(text)
    lines.append("# routes (policy routes: map cpn_encaps, keyed by the route's metric)")
    internal = {r["table"] for r in rules if isinstance(r.get("table"), int) and r["table"] & R.MARK_MASK == R.TABLE_BASE}
    for route in routes:
        if route.get("table") in internal:
            continue
        metric = route.get("metric")
        text = _prefix(route["dst"])
        entry = encaps.get(metric)
        if entry is not None:
            mode, travel = _segs_text(entry)
            text += f" encap seg6 mode {mode} segs {len(travel.split())} [ {travel} ]"
        if route.get("type") not in (None, "unicast"):
            text = f"{route['type']} {text}"
        if route.get("gateway"):
            text += f" via {route['gateway']}"
        if route.get("dev"):
            text += f" dev {route['dev']}"
        text += _table(route.get("table"))
        if metric is not None:
            text += f" metric {R.project_metric(metric) if metric >= (1 << R.METRIC_SHIFT) else metric}"
        lines.append(text)
    lines.append("# rules")
    behaviours = {e.mark: e.action.behaviour for e in sids.values() if e.mark}
    for rule in sorted(rules, key=lambda r: r.get("priority", 0)):
        text = f"{rule.get('priority', 0)}: from {rule.get('src') or 'all'}"
        if rule.get("dst"):
            text += f" to {rule['dst']}"
        if rule.get("iif"):
            text += f" iif {rule['iif']}"
        if rule.get("fwmark") is not None:
            text += f" fwmark {rule['fwmark']:#x}" + (f"/{rule['fwmask']:#x}" if rule.get("fwmask") else "")
        for key in ("ipproto", "sport", "dport"):
            if rule.get(key) is not None:
                text += f" {key} {rule[key]}"
        text += f" lookup {rule['table']}" if rule.get("table") is not None else f" {rule.get('action', '')}"
        if rule.get("fwmark") in behaviours:
            text += f" ({behaviours[rule['fwmark']]})"
        lines.append(text)
    return "\n".join(lines)


def _ip_json(router: str, *args: str) -> list[dict]:
    proc = subprocess.run(["ip", "-n", addressing.namespace(router), "-j", "-6", *args],
                          capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise RuntimeError(f"{router}: `ip -6 {' '.join(args)}` failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout or "[]")


def kernel_routes(router: str) -> list[dict]:
    """A router's IPv6 routes in every table but local (not the kernel's own connected routes)."""
    out = []
    for route in _ip_json(router, "route", "show", "table", "all"):
        dst = route.get("dst", "")
        if route.get("table") == "local" or dst.startswith(("fe80", "ff00", "multicast")) or \
                route.get("protocol") == "kernel":
            continue
        table = route.get("table", "main")
        out.append({"dst": dst, "table": 254 if table == "main" else int(table), "gateway": route.get("gateway"),
                    "dev": route.get("dev"), "metric": route.get("metric"), "type": route.get("type")})
    return out


def kernel_rules(router: str) -> list[dict]:
    """A router's IPv6 rules, without the three every namespace has."""
    out = []
    for rule in _ip_json(router, "rule", "show"):
        if rule.get("table") in ("local", "main", "default") and "fwmark" not in rule and "src" not in rule:
            continue
        table = rule.get("table")
        mark = rule.get("fwmark")
        out.append({"priority": rule.get("priority"), "src": rule.get("src"), "dst": rule.get("dst"),
                    "iif": rule.get("iif"), "fwmark": int(mark, 0) if mark else None,
                    "fwmask": int(rule["fwmask"], 0) if rule.get("fwmask") else None,
                    "table": int(table) if table and table.isdigit() else table,
                    "action": rule.get("action"), "ipproto": rule.get("ipproto"),
                    "sport": rule.get("sport"), "dport": rule.get("dport")})
    return out


def read_bpf_maps(run_dir: str, router: str) -> tuple[dict, dict]:
    """(SIDs by address, outer headers by key) from a router's pinned maps."""
    from cpn_net.dataplane import attach, bpfsys

    where = os.path.join(attach.pin_dir(run_dir, router), "maps")
    sids_map = bpfsys.PinnedMap(os.path.join(where, "cpn_sids"))
    encaps_map = bpfsys.PinnedMap(os.path.join(where, "cpn_encaps"))
    try:
        sids = {str(ipaddress.IPv6Address(k)): R.SidEntry.unpack(v) for k, v in sids_map.items()}
        encaps = {int.from_bytes(k, "little"): R.EncapEntry.unpack(v) for k, v in encaps_map.items()}
    finally:
        sids_map.close()
        encaps_map.close()
    return sids, encaps


def show(router: str, dataplane: str, run_dir: str) -> str:
    """The text of ``cpn dataplane show`` for a running router."""
    if dataplane == "bpf":
        sids, encaps = read_bpf_maps(run_dir, router)
        return format_bpf(sids, encaps, kernel_routes(router), kernel_rules(router))
    routes = subprocess.run(["ip", "-n", addressing.namespace(router), "-6", "route", "show", "table", "all"],
                            capture_output=True, text=True, timeout=20).stdout
    rules = subprocess.run(["ip", "-n", addressing.namespace(router), "-6", "rule", "show"],
                           capture_output=True, text=True, timeout=20).stdout
    kept = [line for line in routes.splitlines() if not line.startswith(("local ", "multicast ", "fe80", "anycast "))]
    return "# routes (Linux seg6)\n" + "\n".join(kept) + "\n# rules\n" + rules.rstrip()
