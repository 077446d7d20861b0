"""SR policies declared in a topology file, checked against its sites and hosts.

A policy (RFC 9256 §2) asks the controller to steer traffic entering one
site's router — the headend — towards a site's LAN, one host, or an IPv6
prefix, over a path chosen by an objective and optional waypoints, inside an
SRv6 encapsulation (H.Encaps or H.Encaps.Red, RFC 8986 §5.1, §5.2). The keys
are declared in :mod:`cpn_net.model.schema`. This module only checks that a
declaration fits the topology; :mod:`cpn_net.srv6.paths` computes the path and
:mod:`cpn_net.srv6.policy` compiles it to routes.

Rules beyond types and ranges:

* ``to`` is looked up as a site, then a host, then (with a ``:`` or ``/``)
  parsed as a prefix; a prefix must be written as its network address and be
  routable: not multicast, link-local or loopback, not inside the SRv6
  locator or WAN link areas (SIDs are reached through the IGP), not inside
  the LAN of a site id the topology lacks.
* The destination (the site, the host's site, the site whose LAN holds the
  prefix) is not the headend: the headend delivers its own LAN directly.
* ``flow.src`` lies inside the headend's LAN: the headend only steers traffic
  entering from its LAN. ``flow.proto`` 0 is refused because Linux policy
  routing reads protocol 0 as "any".
* Two policies may not steer the same traffic (headend, destination prefix
  and flow): the second would never match.
* With objective ``bandwidth``, some link at the headend and at the
  destination site must be able to carry ``bandwidth_mbps`` — a local check,
  not a path computation.

Examples
--------
>>> from cpn_net.model.yaml_format import parse_yaml_topology
>>> topo = parse_yaml_topology('''
... name: pair
... sites: [{name: a}, {name: b}]
... links: [{a: a, b: b, delay_ms: 1}]
... policies: [{name: p, headend: a, to: k2-1, flow: {proto: udp, dst_port: 53}}]
... ''')
>>> p = topo.policies[0]
>>> p.to_kind, p.flow.proto, p.objective, p.mode, p.backup
('host', 17, 'min_delay', 'encap', True)
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

from cpn_net.model import addressing
from cpn_net.model.errors import ProblemLog, did_you_mean, unknown_fix
from cpn_net.model.schema import (
    FLOW_FIELDS,
    POLICY_FIELDS,
    PORTED_PROTOCOLS,
    PROTOCOL_NUMBERS,
    SITE_FIELDS,
    Reader,
    check_value,
    describe,
    show,
)
from cpn_net.model.topology import Host, Link, PolicyFlow, Site, SRPolicySpec

if TYPE_CHECKING:
    from cpn_net.model.build import Entry

_PROTO_CHOICES = "tcp, udp, sctp, icmpv6 or a protocol number 1..255"
_PREFIX_EXAMPLE = "'2001:db8:ffff::/64'"


class _Target(NamedTuple):
    """What a policy's ``to`` resolved to."""

    kind: str
    to: str
    prefix: ipaddress.IPv6Network
    site: Site | None  # where the traffic leaves the SR domain, when the model knows it


class _Scope:
    """What policies may refer to: the built sites, their hosts and links."""

    def __init__(self, sites: Sequence[Site], links: Sequence[Link], bad_names: set):
        self.sites = {s.name: s for s in sites}
        self.hosts: dict[str, Host] = {h.name: h for s in sites for h in s.hosts}
        self.links = list(links)
        self.bad_names = bad_names

    def example(self, names: Sequence[str]) -> str:
        shown = ", ".join(list(names)[:3])
        return shown + (", ..." if len(names) > 3 else "")


def read_policies(log: ProblemLog, entries: Sequence["Entry"], sites: Sequence[Site], links: Sequence[Link],
                  bad_names: set) -> list[SRPolicySpec]:
    """Check policy entries (mappings, each with its key path) against the built sites.

    Parameters
    ----------
    log : ProblemLog
        Receives every problem found.
    entries : sequence of Entry
        The policies as read from the file; each ``mapping`` is a dict.
    sites, links : sequence of Site, Link
        What the builder made of the file's sites and links.
    bad_names : set
        Site names whose own entry already has a problem; references to them
        are not reported again.

    Returns
    -------
    list of SRPolicySpec
        The policies without problems, in file order.

    Examples
    --------
    >>> from cpn_net.model.build import Entry
    >>> from cpn_net.model.topology import Site
    >>> sites = [Site("a", 1, None, None, (), ()), Site("b", 2, None, None, (), ())]
    >>> log = ProblemLog("t.yaml")
    >>> read_policies(log, [Entry("policies[0]", {"name": "p", "headend": "a", "to": "bb"})], sites, [], set())
    []
    >>> print(log.problems[0])
    t.yaml: policies[0].to: no site or host is named 'bb'; did you mean 'b'?
    """
    scope = _Scope(sites, links, bad_names)
    names: dict[str, str] = {}
    steered: dict[tuple, str] = {}
    policies = []
    for entry in entries:
        r = Reader(log, entry.path, entry.mapping, POLICY_FIELDS, entry.spelled)
        site_names = list(scope.sites)
        for key, fix in (("name", "name the policy, e.g. name: east-to-west"),
                         ("headend", f"give the site whose router steers the traffic ({scope.example(site_names)})"),
                         ("to", "give a site name, a host name or a quoted IPv6 prefix to steer to")):
            if not r.has(key):
                r.fail(key, "missing", fix)
        name = r.get("name")
        if name is not None:
            if name in names:
                r.fail("name", f"{name!r} is already the name of {names[name]}", "give each policy a unique name")
            names.setdefault(name, entry.path)
        headend = _site_ref(r, "headend", scope)
        target = _target(r, scope, headend)
        flow = _flow(r, scope, headend)
        objective = r.get("objective") if r.has("objective") else "min_delay"
        bandwidth_mbps = _bandwidth(r, objective, scope, headend, target)
        waypoints = _waypoints(r, scope, headend, target)
        mode, backup = r.get("mode", "encap"), r.get("backup", True)
        if not r.ok or headend is None or target is None:
            continue
        key = (headend.name, target.prefix, flow)
        if key in steered:
            what = f"{headend.name} -> {target.prefix}" + (f" ({flow.describe()})" if flow else "")
            log.add(entry.path, f"steers the same traffic as {steered[key]} ({what})",
                    "merge the two policies, or narrow one of them with a different flow")
            continue
        steered[key] = entry.path
        policies.append(SRPolicySpec(name, headend.name, target.kind, target.to, flow, objective, bandwidth_mbps,
                                     tuple(waypoints), mode, backup))
    return policies


def _site_ref(r: Reader, key: str, scope: _Scope) -> Site | None:
    if not r.has(key):
        return None
    raw = r.raw(key)
    if isinstance(raw, str) and raw in scope.bad_names:
        r.ok = False  # the site's own entry already has the problem
        return None
    name = r.get(key)
    if name is None:
        return None
    if name in scope.sites:
        return scope.sites[name]
    if name in scope.hosts:
        host = scope.hosts[name]
        r.fail(key, f"{name!r} is a host; the headend is a site (its router encapsulates)",
               f"use its site: {key}: {host.site}")
        return None
    r.fail(key, f"no site is named {name!r}", unknown_fix(name, scope.sites, "sites"))
    return None


def _target(r: Reader, scope: _Scope, headend: Site | None) -> _Target | None:
    """What ``to`` names, or None after a problem."""
    if not r.has("to"):
        return None
    raw = r.raw("to")
    if isinstance(raw, str) and raw in scope.bad_names:
        r.ok = False
        return None
    if not isinstance(raw, str):
        by_id = {s.id: s.name for s in scope.sites.values()}
        is_id = isinstance(raw, int) and not isinstance(raw, bool) and raw in by_id
        fix = (f"write the site's name: to: {by_id[raw]}" if is_id
               else f"write a site name, a host name or a quoted IPv6 prefix such as {_PREFIX_EXAMPLE}")
        r.fail("to", f"{show(raw)} is {describe(raw)}, expected a site name, a host name or an IPv6 prefix", fix)
        return None
    if raw in scope.sites:
        site = scope.sites[raw]
        target = _Target("site", raw, site.lan, site)
    elif raw in scope.hosts:
        host = scope.hosts[raw]
        target = _Target("host", raw, ipaddress.IPv6Network(host.address), scope.sites[host.site])
    elif ":" in raw or "/" in raw:
        return _prefix_target(r, raw, scope, headend)
    else:
        names = [*scope.sites, *scope.hosts]
        close = did_you_mean(raw, names)
        fix = (f"did you mean {close!r}?" if close is not None else
               f"use a site ({scope.example(list(scope.sites))}), a host ({scope.example(list(scope.hosts))}) "
               f"or a quoted IPv6 prefix such as {_PREFIX_EXAMPLE}")
        r.fail("to", f"no site or host is named {raw!r}", fix)
        return None
    if headend is not None and target.site.name == headend.name:
        what = "is also the headend" if target.kind == "site" else f"is at the headend's own site {headend.name}"
        r.fail("to", f"{raw!r} {what}; the headend delivers its own LAN without a policy",
               "steer to another site, a host at another site, or another headend")
        return None
    return target


def _prefix_target(r: Reader, raw: str, scope: _Scope, headend: Site | None) -> _Target | None:
    prefix = _parse_prefix(r, "to", raw, "steer")
    if prefix is None:
        return None
    for area, what, why in (
        (addressing.LOCATOR_AREA, "the SRv6 locator area", "SIDs are reached through the IGP"),
        (addressing.WAN_AREA, "the WAN link range", "WAN links are reached through the IGP"),
    ):
        if prefix.subnet_of(area):
            r.fail("to", f"{raw!r} lies in {what} {area}; {why}",
                   f"steer a site (to: {scope.example(list(scope.sites))}), a host, or a service prefix")
            return None
    destination = next((s for s in scope.sites.values() if prefix.subnet_of(s.lan)), None)
    taken = addressing.plan_range(prefix.network_address)
    if destination is None and prefix.prefixlen >= 64 and taken is not None and taken.startswith("the LAN"):
        r.fail("to", f"{raw!r} lies in {taken}, which no site of this topology has",
               "steer an existing site by name, or a prefix outside the site LANs of the addressing plan")
        return None
    if destination is not None and headend is not None and destination.name == headend.name:
        r.fail("to", f"{raw!r} lies in the LAN of the headend {headend.name} ({headend.lan}); "
                     "the headend delivers its own LAN without a policy",
               f"steer a prefix outside {headend.lan}, or choose another headend")
        return None
    return _Target("prefix", str(prefix), prefix, destination)


def _parse_prefix(r: Reader, key: str, raw: str, verb: str) -> ipaddress.IPv6Network | None:
    """An IPv6 network from an address or prefix string, or None after a problem."""
    try:
        prefix = ipaddress.IPv6Network(raw, strict=False)
    except ValueError as err:
        r.fail(key, f"{raw!r} is not an IPv6 address or prefix ({err})",
               f"write an IPv6 address or prefix, quoted, e.g. {_PREFIX_EXAMPLE}")
        return None
    if ipaddress.IPv6Address(raw.split("/")[0]) != prefix.network_address:
        r.fail(key, f"{raw!r} has bits set after the /{prefix.prefixlen} prefix length",
               f"write the network address: '{prefix}'")
        return None
    special = next((what for what, bad in (("multicast", prefix.is_multicast), ("link-local", prefix.is_link_local),
                                           ("loopback", prefix.is_loopback),
                                           ("the unspecified address", prefix.is_unspecified)) if bad), None)
    if special is not None:
        r.fail(key, f"{raw!r} is {special}, which is never routed", f"{verb} a routable unicast prefix")
        return None
    return prefix


def _flow(r: Reader, scope: _Scope, headend: Site | None) -> PolicyFlow | None:
    mapping = r.get("flow")
    if mapping is None:
        return None
    path = r.key("flow")
    given_dst = "dst" in mapping
    if given_dst:
        r.log.add(f"{path}.dst", "unknown key: the destination of a policy is its to",
                  "drop flow.dst and set the policy's to (a site, host or prefix)")
        r.ok = False
        mapping = {k: v for k, v in mapping.items() if k != "dst"}
    flow = Reader(r.log, path, mapping, FLOW_FIELDS)
    if not mapping and not given_dst:
        r.fail("flow", "empty: it narrows nothing", "give proto, src, src_port or dst_port, or drop flow")
    proto = _proto(flow)
    src = _flow_src(flow, scope, headend)
    ports = {key: flow.get(key) for key in ("src_port", "dst_port")}
    for key, port in ports.items():
        if port is None:
            continue
        if not flow.has("proto"):
            flow.fail(key, f"{port} needs proto tcp, udp or sctp, but no proto is given",
                      f"add proto: udp (or tcp, sctp), or drop {key}")
        elif proto is not None and proto not in PORTED_PROTOCOLS:
            name = PolicyFlow(proto).proto_name
            flow.fail(key, f"{port} needs a protocol with ports, but proto is {name}",
                      f"use proto tcp, udp or sctp, or drop {key}")
    r.ok = r.ok and flow.ok
    return PolicyFlow(proto, src, ports["src_port"], ports["dst_port"]) if flow.ok else None


def _proto(flow: Reader) -> int | None:
    if not flow.has("proto"):
        return None
    raw = flow.raw("proto")
    if isinstance(raw, str):
        if raw in PROTOCOL_NUMBERS:
            return PROTOCOL_NUMBERS[raw]
        close = did_you_mean(raw, PROTOCOL_NUMBERS)
        fix = (f"write {raw} without quotes" if raw.isdigit() else
               f"did you mean {close!r}?" if close is not None else f"use {_PROTO_CHOICES}")
        flow.fail("proto", f"{raw!r} is not a known protocol name", fix)
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        flow.fail("proto", f"{show(raw)} is {describe(raw)}, expected a protocol name or number",
                  f"use {_PROTO_CHOICES}")
        return None
    if raw == 0:
        flow.fail("proto", "0 means any protocol to Linux policy routing (ip rule ipproto)",
                  "omit proto to match every protocol, or give 1..255")
    elif raw == 1:
        flow.fail("proto", "1 is ICMP for IPv4; IPv6 packets carry ICMPv6 (58)", "write proto: icmpv6")
    elif not 0 < raw <= 255:
        flow.fail("proto", f"{raw} must be in [1, 255]", f"use {_PROTO_CHOICES}")
    else:
        return raw
    return None


def _flow_src(flow: Reader, scope: _Scope, headend: Site | None) -> str | None:
    if not flow.has("src"):
        return None
    raw = flow.raw("src")
    if not isinstance(raw, str):
        flow.fail("src", f"{show(raw)} is {describe(raw)}, expected an IPv6 address or prefix",
                  "write it quoted, e.g. '2001:db8:1::1:1'")
        return None
    if raw in scope.hosts:
        address = scope.hosts[raw].address
        flow.fail("src", f"{raw!r} is a host name, expected an IPv6 address or prefix",
                  f"write its address: src: '{address}'")
        return None
    prefix = _parse_prefix(flow, "src", raw, "match")
    if prefix is None or headend is None:
        return None
    if not prefix.subnet_of(headend.lan):
        example = headend.hosts[0].address if headend.hosts else addressing.router_lan_address(headend.id)
        flow.fail("src", f"{raw!r} is outside the LAN of the headend {headend.name} ({headend.lan}), "
                         "the only traffic the headend steers",
                  f"give an address or prefix inside {headend.lan}, e.g. '{example}'")
        return None
    return str(prefix)


def _bandwidth(r: Reader, objective: str | None, scope: _Scope, headend: Site | None,
               target: _Target | None) -> float | None:
    bandwidth_mbps = r.get("bandwidth_mbps")
    if objective == "bandwidth" and not r.has("bandwidth_mbps"):
        r.fail("bandwidth_mbps", "missing while objective is bandwidth",
               "give the bandwidth to reserve, e.g. bandwidth_mbps: 20")
    elif r.has("bandwidth_mbps") and objective is not None and objective != "bandwidth":
        given = f"objective is {objective}" if r.has("objective") else "objective is min_delay (the default)"
        r.fail("bandwidth_mbps", f"given while {given}; only objective bandwidth reserves bandwidth",
               "set objective: bandwidth, or drop bandwidth_mbps")
        return None
    if bandwidth_mbps is None or headend is None or target is None:
        return bandwidth_mbps
    ends = [headend] + ([target.site] if target.site is not None else [])
    for site in ends:
        rates = [link.rate_mbps for link in scope.links if site.name in link.ends]
        if rates and all(rate is not None and rate < bandwidth_mbps for rate in rates):
            shown = ", ".join(f"{rate:g}" for rate in rates)
            r.fail("bandwidth_mbps", f"{bandwidth_mbps:g} Mbit/s exceeds every link of site {site.name} "
                                     f"({shown} Mbit/s)",
                   f"ask for at most {max(rates):g} Mbit/s, or raise the links' rate_mbps")
            return None
    return bandwidth_mbps


def _waypoints(r: Reader, scope: _Scope, headend: Site | None, target: _Target | None) -> list[str]:
    listed = r.get("waypoints") or []
    destination = target.site if target is not None else None
    chosen: list[str] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(listed):
        key = f"{r.key('waypoints')}[{i}]"
        if isinstance(item, str) and item in scope.bad_names:
            r.ok = False  # the site's own entry already has the problem
        elif check_value(r.log, key, item, SITE_FIELDS["name"]) is not item:
            r.ok = False
        elif item not in scope.sites:
            fix = (f"use its site: {scope.hosts[item].site}" if item in scope.hosts
                   else unknown_fix(item, scope.sites, "sites"))
            what = f"{item!r} is a host; waypoints are sites" if item in scope.hosts else f"no site is named {item!r}"
            _fail(r, key, what, fix)
        elif headend is not None and item == headend.name:
            _fail(r, key, f"{item!r} is the headend", "drop it: the path starts there")
        elif destination is not None and item == destination.name:
            _fail(r, key, f"{item!r} is the destination site", "drop it: the path ends there")
        elif item in seen:
            _fail(r, key, f"{item!r} is already {seen[item]}",
                  "list each site once: a path visits a site at most once")
        else:
            seen[item] = key
            chosen.append(item)
    return chosen


def _fail(r: Reader, key: str, message: str, fix: str) -> None:
    r.log.add(key, message, fix)
    r.ok = False


def policy_lines(policies: Sequence[SRPolicySpec], limit: int = 10) -> list[str]:
    """One line per policy for summaries: headend, target, flow, objective, path options.

    Examples
    --------
    >>> policy_lines([SRPolicySpec("p", "east", "site", "west", waypoints=("centre",))])
    ['p: east -> west, min_delay via centre, encap, with backup']
    """
    lines = []
    for p in policies[:limit]:
        head = f"{p.name}: {p.headend} -> {p.to}" + (f" [{p.flow.describe()}]" if p.flow else "")
        objective = p.objective + (f" {p.bandwidth_mbps:g} Mbit/s" if p.bandwidth_mbps is not None else "")
        objective += f" via {', '.join(p.waypoints)}" if p.waypoints else ""
        lines.append(f"{head}, {objective}, {p.mode}, {'with' if p.backup else 'no'} backup")
    if len(policies) > limit:
        lines.append(f"... {len(policies) - limit} more")
    return lines


def parse_policy(body: Any, topology, source: str = "request") -> SRPolicySpec:
    """Check one policy given at runtime (REST, ``cpn policy add``) against a loaded topology.

    The same rules and messages as a topology file's ``policies:`` entries;
    problems name ``source`` where a file would be named.

    Raises
    ------
    TopologyError
        With every problem found.

    Examples
    --------
    >>> from cpn_net.model import load_topology
    >>> topo = load_topology("topologies/tiny.yaml")
    >>> parse_policy({"name": "p", "headend": "east", "to": "west", "objective": "min_hops"}, topo).to_kind
    'site'
    >>> parse_policy({"name": "p", "headend": "east", "to": "wset"}, topo)
    Traceback (most recent call last):
    ...
    cpn_net.model.errors.TopologyError: request: policy.to: no site or host is named 'wset'; did you mean 'west'?
    """
    from cpn_net.model.build import Entry

    log = ProblemLog(source)
    if not isinstance(body, dict):
        log.add("policy", f"must be a mapping (JSON object), got {type(body).__name__}",
                'send e.g. {"name": "p1", "headend": "east", "to": "west"}')
        log.raise_if_any()
    policies = read_policies(log, [Entry("policy", body)], topology.sites, topology.links, set())
    log.raise_if_any()
    return policies[0]
