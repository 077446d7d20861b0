"""Turn the mappings read from any topology format into a validated Topology.

Every loader (YAML, node-link JSON, GraphML) reduces its file to the same
shape — a :class:`Header` plus one :class:`Entry` per site, link, service and policy,
each spelled like the YAML format (:mod:`cpn_net.model.schema`) — and hands it
to :func:`build_topology`, so the rules are written once. Problems are
collected in a :class:`~cpn_net.model.errors.ProblemLog` and raised together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import networkx as nx

from cpn_net.model import addressing
from cpn_net.model.errors import ProblemLog, unknown_fix
from cpn_net.model.geo import DEFAULT_ROUTE_FACTOR, FIBRE_US_PER_KM, fibre_delay_ms, great_circle_km
from cpn_net.model.policies import read_policies
from cpn_net.model.slices import read_slices
from cpn_net.model.schema import (
    COMPUTE_DEFAULTS,
    COMPUTE_FIELDS,
    LINK_DEFAULT_FIELDS,
    LINK_DEFAULTS,
    LINK_FIELDS,
    PLAN_LIKE_NAME,
    SERVICE_FIELDS,
    SITE_FIELDS,
    Field,
    Reader,
    check_value,
    describe,
    show,
)
from cpn_net.model.topology import Client, ComputeNode, Link, Service, Site, Topology

_MAPPING = Field("mapping", "write key: value pairs")
_SITE_COUNT_FIX = f"split the topology; the addressing plan numbers sites 1..{addressing.MAX_SITE_ID}"


@dataclass(frozen=True)
class Header:
    """Topology-wide settings, already checked."""

    name: str
    description: str = ""
    route_factor: float = DEFAULT_ROUTE_FACTOR
    link_defaults: Mapping[str, Any] = field(default_factory=lambda: dict(LINK_DEFAULTS))
    compute_defaults: Mapping[str, Any] = field(default_factory=lambda: dict(COMPUTE_DEFAULTS))


@dataclass(frozen=True)
class Entry:
    """One site, link or service mapping and its key path in the file."""

    path: str
    mapping: Any
    spelled: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _SiteDraft:
    path: str
    name: str
    id: int | None
    lat: float | None
    lon: float | None
    clients: int
    compute: list[dict]


def read_header(log: ProblemLog, top: Reader, default_name: str | None = None) -> Header:
    """Read ``name``, ``description``, ``route_factor`` and ``defaults`` of a topology.

    Examples
    --------
    >>> from cpn_net.model.schema import TOP_FIELDS
    >>> log = ProblemLog("t.yaml")
    >>> read_header(log, Reader(log, "", {"name": "t", "route_factor": 1.5}, TOP_FIELDS)).route_factor
    1.5
    """
    name = top.get("name")
    if name is None and not top.has("name"):
        if default_name is None:
            top.fail("name", "missing", "name the topology, e.g. name: tiny")
        name = default_name
    link_defaults, compute_defaults = dict(LINK_DEFAULTS), dict(COMPUTE_DEFAULTS)
    defaults = top.get("defaults", {})
    if defaults:
        base = top.key("defaults")
        given = Reader(top.log, base, defaults, {"link": _MAPPING, "compute": _MAPPING})
        for key, target, fields in (
            ("link", link_defaults, LINK_DEFAULT_FIELDS),
            ("compute", compute_defaults, COMPUTE_FIELDS),
        ):
            section = given.get(key, {})
            if section:
                reader = Reader(top.log, f"{base}.{key}", section, fields)
                target.update({k: reader.get(k, target[k]) for k in fields if reader.has(k)})
    return Header(
        name=name or "unnamed",
        description=top.get("description", ""),
        route_factor=top.get("route_factor", DEFAULT_ROUTE_FACTOR),
        link_defaults=link_defaults,
        compute_defaults=compute_defaults,
    )


def build_topology(
    log: ProblemLog,
    source: str,
    header: Header,
    sites: list[Entry],
    links: list[Entry],
    services: list[Entry],
    notes: list[str] | None = None,
    fallback_delay_ms: float | None = None,
    sites_key: str = "sites",
    links_key: str = "links",
    policies: list[Entry] | None = None,
    slices: list[Entry] | None = None,
) -> Topology:
    """Check every rule and build the topology, or raise all problems at once.

    Parameters
    ----------
    log : ProblemLog
        Holds problems already found by the loader; this adds the rest.
    source : str
        Where the topology came from (recorded in :attr:`Topology.source`).
    header : Header
    sites, links, services : list of Entry
    notes : list of str, optional
        Import warnings; delay notes are appended.
    fallback_delay_ms : float, optional
        Delay for a link whose ends lack coordinates and that has no
        ``delay_ms`` (with a note). None makes that a problem, as in YAML.
    sites_key, links_key : str
        How the format calls its list of sites and links, for messages.
    policies : list of Entry, optional
        SR policies (:mod:`cpn_net.model.policies`); formats without them pass none.
    slices : list of Entry, optional
        Network slices (:mod:`cpn_net.model.slices`); formats without them pass none.

    Returns
    -------
    Topology

    Raises
    ------
    TopologyError
        With every problem in ``log``.

    Examples
    --------
    >>> log = ProblemLog("t.yaml")
    >>> topo = build_topology(log, "t.yaml", Header("t"),
    ...     [Entry("sites[0]", {"name": "a"}), Entry("sites[1]", {"name": "b", "compute": 0})],
    ...     [Entry("links[0]", {"a": "a", "b": "b", "delay_ms": 3})], [])
    >>> [h.name for h in topo.hosts()], topo.links[0].node_name
    (['u1-1', 'k1-1', 'u2-1'], 'l1x2')
    """
    notes = list(notes or [])
    drafts, bad_names = _read_sites(log, sites, header.compute_defaults, sites_key)
    built = _make_sites(log, drafts)
    by_name = {s.name: s for s in built}
    made_links = _read_links(log, links, by_name, bad_names, header, notes, fallback_delay_ms, links_key)
    made_services = _read_services(log, services, built)
    policy_entries = [e for e in policies or [] if _as_mapping(log, e, "policy")]
    made_policies = read_policies(log, policy_entries, built, made_links, bad_names)
    slice_entries = [e for e in slices or [] if _as_mapping(log, e, "slice")]
    made_slices = read_slices(log, slice_entries, built, bad_names)
    if not log.problems:
        _check_connected(log, built, made_links, links_key)
    log.raise_if_any()
    return Topology(
        name=header.name,
        source=source,
        description=header.description,
        route_factor=header.route_factor,
        sites=tuple(built),
        links=tuple(made_links),
        services=tuple(made_services),
        notes=tuple(notes),
        policies=tuple(made_policies),
        slices=tuple(made_slices),
    )


def _as_mapping(log: ProblemLog, entry: Entry, what: str) -> bool:
    if isinstance(entry.mapping, dict):
        return True
    log.add(entry.path, f"{show(entry.mapping)} is {describe(entry.mapping)}, expected a {what} mapping",
            f"write the {what} as key: value pairs")
    return False


def _read_sites(log: ProblemLog, entries: list[Entry], compute_defaults: Mapping[str, Any], key: str):
    drafts: list[_SiteDraft] = []
    bad_names: set = set()
    names: dict[str, str] = {}
    ids: dict[int, str] = {}
    if not entries and not any(p.key == key for p in log.problems):
        log.add(key, "the topology has no sites", "add at least one site")
    if len(entries) > addressing.MAX_SITE_ID:
        log.add(key, f"{len(entries)} sites is too many", _SITE_COUNT_FIX)
    for entry in entries:
        if not _as_mapping(log, entry, "site"):
            continue
        r = Reader(log, entry.path, entry.mapping, SITE_FIELDS, entry.spelled)
        name = r.get("name")
        if not r.has("name"):
            r.fail("name", "missing", "give each site a name, e.g. name: site1")
        elif name is None:
            raw = r.raw("name")
            bad_names.add(raw if isinstance(raw, str) else None)
        elif name in names:
            r.fail("name", f"{name!r} is already the name of {names[name]}", "give each site a unique name")
            name = None
        elif PLAN_LIKE_NAME.fullmatch(name):
            r.fail("name", f"{name!r} reads like a node name of the addressing plan (r1, s1, k1-1, u1-1, l1x2)",
                   f"name the site after its place, e.g. '{name}-site'")
            bad_names.add(name)
            name = None
        site_id = r.get("id")
        if site_id is not None and site_id in ids:
            r.fail("id", f"{site_id} is already the id of {ids[site_id]}", "give each site a unique id, or omit it")
            site_id = None
        if r.has("lat") != r.has("lon"):
            given, missing = ("lat", "lon") if r.has("lat") else ("lon", "lat")
            given_key = r.spelled.get(given, given)
            r.fail(missing, f"missing while {given_key} is given", "give both lat and lon, or neither")
        lat, lon = r.get("lat"), r.get("lon")
        compute = _read_compute(r, compute_defaults)
        clients = r.get("clients", 1)
        if name is None:
            continue
        names[name] = entry.path
        if site_id is not None:
            ids[site_id] = entry.path
        coords_ok = lat is not None and lon is not None
        drafts.append(_SiteDraft(entry.path, name, site_id, lat if coords_ok else None,
                                 lon if coords_ok else None, clients, compute))
    return drafts, bad_names


def _read_compute(r: Reader, defaults: Mapping[str, Any]) -> list[dict]:
    if not r.has("compute"):
        return [dict(defaults)]
    raw = r.raw("compute")
    if not isinstance(raw, list):
        count = r.get("compute", 0)
        return [dict(defaults) for _ in range(count)]
    if len(raw) > addressing.MAX_HOSTS_PER_KIND:
        r.fail("compute", f"{len(raw)} compute nodes is too many",
               f"give at most {addressing.MAX_HOSTS_PER_KIND} per site (the addressing plan's limit)")
        return []
    nodes = []
    for i, item in enumerate(raw):
        path = f"{r.key('compute')}[{i}]"
        item = {} if item is None else item
        if not isinstance(item, dict):
            r.log.add(path, f"{show(item)} is {describe(item)}, expected a compute node mapping",
                      "write key: value pairs such as {workers: 8}, or {} for the defaults")
            r.ok = False
            continue
        node = Reader(r.log, path, item, COMPUTE_FIELDS)
        nodes.append({k: node.get(k, defaults[k]) for k in COMPUTE_FIELDS})
        r.ok = r.ok and node.ok
    return nodes


def _make_sites(log: ProblemLog, drafts: list[_SiteDraft]) -> list[Site]:
    used = {d.id for d in drafts if d.id is not None}
    next_id = 1
    sites = []
    for d in drafts:
        site_id = d.id
        if site_id is None:
            while next_id in used:
                next_id += 1
            if next_id > addressing.MAX_SITE_ID:
                log.add(d.path, "no site id left to assign", _SITE_COUNT_FIX)
                continue
            site_id = next_id
            used.add(site_id)
        clients = tuple(
            Client(addressing.host_name(site_id, "client", i), d.name, site_id, i,
                   addressing.host_address(site_id, "client", i))
            for i in range(1, d.clients + 1)
        )
        compute = tuple(
            ComputeNode(addressing.host_name(site_id, "compute", i), d.name, site_id, i,
                        addressing.host_address(site_id, "compute", i), **params)
            for i, params in enumerate(d.compute, start=1)
        )
        sites.append(Site(d.name, site_id, d.lat, d.lon, clients, compute))
    return sites


def _read_links(log, entries, by_name, bad_names, header, notes, fallback_delay_ms, key) -> list[Link]:
    links: list[Link] = []
    pairs: dict[frozenset, str] = {}
    missing_coords: list[str] = []
    if len(entries) > addressing.MAX_LINK_NUMBER:
        log.add(key, f"{len(entries)} links is too many",
                f"keep at most {addressing.MAX_LINK_NUMBER} links (one WAN prefix each)")
    for number, entry in enumerate(entries, start=1):
        if not _as_mapping(log, entry, "link"):
            continue
        r = Reader(log, entry.path, entry.mapping, LINK_FIELDS, entry.spelled)
        ends = [_link_end(r, key, by_name, bad_names) for key in ("a", "b")]
        params = {k: r.get(k, header.link_defaults[k]) for k in ("jitter_ms", "loss_pct", "rate_mbps")}
        delay_ms = r.get("delay_ms")
        if None in ends:
            continue
        a, b = ends
        if a.name == b.name:
            r.fail("b", f"{b.name!r} is also end a: a link cannot join a site to itself", "link two different sites")
            continue
        pair = frozenset((a.name, b.name))
        if pair in pairs:
            log.add(entry.path, f"{a.name}-{b.name} is already linked by {pairs[pair]}",
                    "keep one link per pair of sites (links carry both directions)")
            continue
        pairs[pair] = entry.path
        distance_km = None
        if a.lat is not None and b.lat is not None:
            distance_km = round(great_circle_km(a.lat, a.lon, b.lat, b.lon), 1)
        source = "configured"
        if delay_ms is None and not r.has("delay_ms"):
            if distance_km is not None:
                delay_ms = fibre_delay_ms(great_circle_km(a.lat, a.lon, b.lat, b.lon), header.route_factor)
                source = "derived"
            elif fallback_delay_ms is not None:
                delay_ms, source = fallback_delay_ms, "default"
                missing_coords.append(f"{a.name}-{b.name}")
            else:
                lacking = [repr(s.name) for s in (a, b) if s.lat is None]
                which = f"site {lacking[0]} has" if len(lacking) == 1 else f"sites {' and '.join(lacking)} have"
                r.fail("delay_ms", f"missing, and {which} no coordinates to derive it from",
                       "give delay_ms, or lat/lon for both sites")
        elif delay_ms is not None and distance_km is not None:
            floor_ms = distance_km * FIBRE_US_PER_KM / 1000
            if delay_ms < floor_ms:
                notes.append(f"{entry.path} ({a.name}-{b.name}): delay_ms={delay_ms:g} is below the "
                             f"{floor_ms:.2f} ms light needs in fibre over {distance_km:g} km")
        if delay_ms is not None and params["jitter_ms"] > delay_ms:
            r.fail("jitter_ms", f"{params['jitter_ms']:g} exceeds delay_ms={delay_ms:g} ({source})",
                   "keep jitter_ms <= delay_ms: the emulator draws delay ± jitter clamped at 0")
        if r.ok:
            links.append(Link(number, a.name, b.name, a.id, b.id, delay_ms, delay_source=source,
                              distance_km=distance_km, **params))
    if missing_coords:
        notes.append(f"{len(missing_coords)} link(s) have an end without coordinates and use the default "
                     f"delay {fallback_delay_ms:g} ms: {', '.join(missing_coords)}")
    return links


def _link_end(r: Reader, key: str, by_name: Mapping[str, Site], bad_names: set) -> Site | None:
    if not r.has(key):
        r.fail(key, "missing", "give both ends of the link: a: <site>, b: <site>")
        return None
    raw = r.raw(key)
    if isinstance(raw, str) and raw in bad_names:
        r.ok = False  # the site's own entry already has the problem
        return None
    name = r.get(key)
    if name is None:
        return None
    if name in by_name:
        return by_name[name]
    r.fail(key, f"no site is named {name!r}", unknown_fix(name, by_name, "sites"))
    return None


def _read_services(log: ProblemLog, entries: list[Entry], sites: list[Site]) -> list[Service]:
    nodes = {k.name: k for s in sites for k in s.compute}
    sites_by_name = {s.name: s for s in sites}
    names: dict[str, str] = {}
    anycasts: dict[object, str] = {}
    services = []
    for entry in entries:
        if not _as_mapping(log, entry, "service"):
            continue
        r = Reader(log, entry.path, entry.mapping, SERVICE_FIELDS, entry.spelled)
        for key, fix in (("name", "name the service, e.g. name: infer"),
                         ("anycast", "give its anycast address, e.g. anycast: '2001:db8:ffff::1'"),
                         ("port", "give its port, e.g. port: 8080")):
            if not r.has(key):
                r.fail(key, "missing", fix)
        name, anycast, port = r.get("name"), r.get("anycast"), r.get("port")
        if name is not None:
            if name in names:
                r.fail("name", f"{name!r} is already the name of {names[name]}", "give each service a unique name")
            names.setdefault(name, entry.path)
        if anycast is not None:
            if anycast in anycasts:
                r.fail("anycast", f"{str(anycast)!r} is already the address of {anycasts[anycast]}",
                       "give each service its own anycast address")
            anycasts.setdefault(anycast, entry.path)
        chosen = _service_compute(r, nodes, sites_by_name)
        if r.ok:
            services.append(Service(name, anycast, port, chosen))
    return services


def _service_compute(r: Reader, nodes: Mapping[str, ComputeNode], sites: Mapping[str, Site]) -> tuple[str, ...]:
    if not r.has("compute"):
        if not nodes:
            r.fail("compute", "no compute node in the topology can serve it", "give some site compute nodes")
        return tuple(nodes)
    listed = r.get("compute")
    if listed is None:
        return ()
    if not listed:
        r.fail("compute", "empty list", "list at least one compute node or site, or omit compute for all nodes")
    chosen: set[str] = set()
    for i, item in enumerate(listed):
        key = f"{r.key('compute')}[{i}]"
        if check_value(r.log, key, item, SITE_FIELDS["name"]) is not item:
            r.ok = False
        elif item in nodes:
            chosen.add(item)
        elif item in sites:
            if not sites[item].compute:
                r.log.add(key, f"site {item!r} has no compute nodes", f"give site {item!r} compute nodes or drop it")
                r.ok = False
            chosen.update(k.name for k in sites[item].compute)
        else:
            r.log.add(key, f"{item!r} is neither a compute node nor a site",
                      unknown_fix(item, [*nodes, *sites], "compute nodes and sites"))
            r.ok = False
    return tuple(n for n in nodes if n in chosen)


def _check_connected(log: ProblemLog, sites: list[Site], links: list[Link], key: str) -> None:
    g = nx.Graph()
    g.add_nodes_from(s.name for s in sites)
    g.add_edges_from(link.ends for link in links)
    if len(sites) < 2 or nx.is_connected(g):
        return
    order = {s.name: i for i, s in enumerate(sites)}
    groups = sorted((sorted(c, key=order.get) for c in nx.connected_components(g)), key=lambda c: order[c[0]])
    shown = "; ".join(_group_text(c) for c in groups)
    log.add(key, f"the sites form {len(groups)} disconnected groups: {shown}",
            "add links joining the groups so every site can reach every other")


def _group_text(names: list[str], limit: int = 6) -> str:
    head = ", ".join(names[:limit])
    return "{" + head + (f", +{len(names) - limit} more" if len(names) > limit else "") + "}"
