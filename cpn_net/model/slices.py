"""Network slices declared in a topology file, checked against its sites and hosts.

A slice (RFC 9543 §3) is a tenant's private network: member endpoints and
guarantees (a rate between every ordered pair of member sites, optional
latency and loss bounds), optionally isolated from other tenants. The keys are
declared in :mod:`cpn_net.model.schema`. This module only checks that a
declaration fits the topology; :mod:`cpn_net.slicing.admission` decides
whether the guarantees fit the links, and :mod:`cpn_net.slicing.realise`
turns an admitted slice into flows, queues and tables.

Rules beyond types and ranges:

* ``members`` names hosts (``u1-1``, ``k2-1``) or sites (all their hosts);
  no host may be listed twice (directly or through its site), and a site
  without hosts contributes nothing, which is refused.
* ``id`` is unique; omitted ids take the lowest free id 1..4095 in file order,
  after the explicit ids are taken. (The 4-bit mark on the wire is not the id:
  admission gives it, :func:`cpn_net.slicing.admission.free_mark`.)
* ``meter_mbps`` is at least ``rate_mbps``: a cap below the guarantee would
  drop traffic the slice was promised.
* A host belongs to at most one isolated slice: an isolated slice's traffic
  is decapsulated into the slice's own routing table, and a host's traffic
  can carry one slice mark only.

Examples
--------
>>> from cpn_net.model.yaml_format import parse_yaml_topology
>>> topo = parse_yaml_topology('''
... name: pair
... sites: [{name: a}, {name: b}]
... links: [{a: a, b: b, delay_ms: 1}]
... slices: [{name: s, members: [u1-1, b], rate_mbps: 5, kind: bulk, id: 3}]
... ''')
>>> s = topo.slices[0]
>>> s.id, s.hosts, s.sites, s.kind
(3, ('u1-1', 'u2-1', 'k2-1'), ('a', 'b'), 'bulk')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from cpn_net.model.errors import ProblemLog, unknown_fix
from cpn_net.model.schema import MAX_SLICE_ID, SLICE_FIELDS, Reader, describe, show
from cpn_net.model.topology import Site, SliceSpec

if TYPE_CHECKING:
    from cpn_net.model.build import Entry


def read_slices(log: ProblemLog, entries: Sequence["Entry"], sites: Sequence[Site], bad_names: set,
                existing: Sequence[SliceSpec] = ()) -> list[SliceSpec]:
    """Check slice entries (mappings, each with its key path) against the built sites.

    Parameters
    ----------
    log : ProblemLog
        Receives every problem found.
    entries : sequence of Entry
        The slices as read from the file; each ``mapping`` is a dict.
    sites : sequence of Site
        What the builder made of the file's sites.
    bad_names : set
        Site names whose own entry already has a problem; not reported again.
    existing : sequence of SliceSpec
        Slices already in force (a runtime request is checked against them).

    Returns
    -------
    list of SliceSpec
        The slices without problems, in file order.

    Examples
    --------
    >>> from cpn_net.model.build import Entry
    >>> from cpn_net.model.topology import Site
    >>> log = ProblemLog("t.yaml")
    >>> read_slices(log, [Entry("slices[0]", {"name": "s", "members": ["aa"], "rate_mbps": 1})],
    ...             [Site("a", 1, None, None, (), ())], set())
    []
    >>> print(log.problems[0])
    t.yaml: slices[0].members[0]: no site or host is named 'aa'; did you mean 'a'?
    """
    by_site = {s.name: s for s in sites}
    host_site = {h.name: s.name for s in sites for h in s.hosts}
    order = {h.name: i for i, h in enumerate(h for s in sites for h in s.hosts)}
    names: dict[str, str] = {s.name: "an existing slice" for s in existing}
    ids: dict[int, str] = {s.id: f"slice {s.name}" for s in existing}
    isolated_in: dict[str, str] = {h: f"slice {s.name}" for s in existing if s.isolation for h in s.hosts}
    drafts = []
    for entry in entries:
        r = Reader(log, entry.path, entry.mapping, SLICE_FIELDS, entry.spelled)
        for key, fix in (("name", "name the slice, e.g. name: gold"),
                         ("members", "list the member hosts or sites, e.g. members: [u1-1, west]"),
                         ("rate_mbps", "give the guaranteed rate, e.g. rate_mbps: 10")):
            if not r.has(key):
                r.fail(key, "missing", fix)
        name = r.get("name")
        if name is not None:
            if name in names:
                r.fail("name", f"{name!r} is already the name of {names[name]}", "give each slice a unique name")
            names.setdefault(name, entry.path)
        slice_id = r.get("id")
        if slice_id is not None:
            if slice_id in ids:
                r.fail("id", f"{slice_id} is already the id of {ids[slice_id]}",
                       "give each slice a unique id, or omit id to take the lowest free one")
            ids.setdefault(slice_id, entry.path)
        hosts = _members(r, by_site, host_site, bad_names)
        rate_mbps = r.get("rate_mbps")
        meter_mbps = r.get("meter_mbps")
        if meter_mbps is not None and rate_mbps is not None and meter_mbps < rate_mbps:
            r.fail("meter_mbps", f"{meter_mbps:g} Mbit/s is below rate_mbps={rate_mbps:g}; the meter would drop "
                                 "guaranteed traffic", f"give meter_mbps >= {rate_mbps:g}, or drop it")
        isolation = r.get("isolation", True)
        if hosts and isolation and name is not None:
            for host in hosts:
                if host in isolated_in:
                    r.fail("members", f"host {host} is already in the isolated {isolated_in[host]}; "
                                      "a host belongs to at most one isolated slice",
                           "remove the host from one of the slices, or set isolation: false on one")
                    break
            else:
                isolated_in.update({h: f"slice {name} ({entry.path})" for h in hosts})
        drafts.append((r, entry, name, slice_id, hosts, rate_mbps, meter_mbps, isolation))
    free = iter(i for i in range(1, MAX_SLICE_ID + 1) if i not in ids)
    slices = []
    for r, entry, name, slice_id, hosts, rate_mbps, meter_mbps, isolation in drafts:
        if slice_id is None and not r.has("id"):
            slice_id = next(free, None)
            if slice_id is None:
                r.fail("id", f"no free slice id: ids 1..{MAX_SLICE_ID} are all taken",
                       f"merge slices; at most {MAX_SLICE_ID} slices exist at a time")
        if not r.ok or None in (name, slice_id, rate_mbps) or not hosts:
            continue
        hosts = tuple(sorted(hosts, key=order.__getitem__))
        member_sites = tuple(s.name for s in sites if any(host_site[h] == s.name for h in hosts))
        slices.append(SliceSpec(name, slice_id, tuple(r.raw("members")), hosts, member_sites, rate_mbps,
                                r.get("max_latency_ms"), r.get("max_loss_pct"), r.get("kind", "latency"),
                                meter_mbps, isolation))
    return slices


def _members(r: Reader, by_site: dict, host_site: dict, bad_names: set) -> list[str]:
    """The member hosts, site names expanded; empty after a problem."""
    listed = r.get("members")
    if listed is None:
        return []
    if not listed:
        r.fail("members", "empty: a slice needs at least one member",
               "list host names (u1-1, k2-1) or site names")
        return []
    hosts: list[str] = []
    via: dict[str, str] = {}
    for i, item in enumerate(listed):
        key = f"{r.key('members')}[{i}]"
        if not isinstance(item, str):
            _fail(r, key, f"{show(item)} is {describe(item)}, expected a host or site name",
                  "write a host name such as u1-1 or a site name")
            continue
        if item in bad_names:
            r.ok = False  # the site's own entry already has the problem
            continue
        if item in by_site:
            found = [h.name for h in by_site[item].hosts]
            if not found:
                _fail(r, key, f"site {item!r} has no hosts", "give the site clients or compute nodes, or drop it")
                continue
        elif item in host_site:
            found = [item]
        else:
            _fail(r, key, f"no site or host is named {item!r}", unknown_fix(item, [*by_site, *host_site], "names"))
            continue
        for host in found:
            if host in via:
                _fail(r, key, f"host {host} is already a member through {via[host]}",
                      "list each host once (a site already includes all its hosts)")
                break
            via[host] = f"{r.key('members')}[{i}] ({item})"
            hosts.append(host)
    return hosts if r.ok else []


def _fail(r: Reader, key: str, message: str, fix: str) -> None:
    r.log.add(key, message, fix)
    r.ok = False


def slice_lines(slices: Sequence[SliceSpec], limit: int = 10) -> list[str]:
    """One line per slice for summaries: id, members, guarantees, kind, isolation.

    Examples
    --------
    >>> slice_lines([SliceSpec("gold", 1, ("east", "k3-1"), ("u1-1", "k1-1", "k3-1"), ("east", "west"), 20.0,
    ...                        max_latency_ms=30.0, meter_mbps=40.0)])
    ['gold (id 1): 3 hosts at east, west; 20 Mbit/s, <= 30 ms, latency, cap 40 Mbit/s, isolated']
    """
    lines = []
    for s in slices[:limit]:
        bounds = [f"{s.rate_mbps:g} Mbit/s"]
        bounds += [f"<= {s.max_latency_ms:g} ms"] if s.max_latency_ms is not None else []
        bounds += [f"<= {s.max_loss_pct:g} % loss"] if s.max_loss_pct is not None else []
        bounds += [s.kind] + ([f"cap {s.meter_mbps:g} Mbit/s"] if s.meter_mbps is not None else [])
        bounds.append("isolated" if s.isolation else "shared")
        hosts = f"{len(s.hosts)} host" + ("" if len(s.hosts) == 1 else "s")
        lines.append(f"{s.name} (id {s.id}): {hosts} at {', '.join(s.sites)}; {', '.join(bounds)}")
    if len(slices) > limit:
        lines.append(f"... {len(slices) - limit} more")
    return lines


def parse_slice(body: Any, topology, source: str = "request") -> SliceSpec:
    """Check one slice given at runtime (REST, ``cpn slice add``) against a loaded topology.

    The same rules and messages as a topology file's ``slices:`` entries,
    checked against the topology's slices too (names, ids, isolated hosts);
    problems name ``source`` where a file would be named.

    Raises
    ------
    TopologyError
        With every problem found.

    Examples
    --------
    >>> from cpn_net.model import load_topology
    >>> topo = load_topology("topologies/tiny.yaml")
    >>> parse_slice({"name": "s", "members": ["east", "west"], "rate_mbps": 5}, topo).hosts
    ('u1-1', 'k1-1', 'u3-1', 'k3-1')
    >>> parse_slice({"name": "s", "members": ["esat"], "rate_mbps": 5}, topo)
    Traceback (most recent call last):
    ...
    cpn_net.model.errors.TopologyError: request: slice.members[0]: no site or host is named 'esat'; did you mean 'east'?
    """
    from cpn_net.model.build import Entry

    log = ProblemLog(source)
    if not isinstance(body, dict):
        log.add("slice", f"must be a mapping (JSON object), got {type(body).__name__}",
                'send e.g. {"name": "gold", "members": ["u1-1", "k3-1"], "rate_mbps": 10}')
        log.raise_if_any()
    slices = read_slices(log, [Entry("slice", body)], topology.sites, set(), topology.slices)
    log.raise_if_any()
    return slices[0]
