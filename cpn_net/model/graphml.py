"""Import a topology from GraphML as published by the Internet Topology Zoo.

Topology Zoo files describe real networks and are imperfect: nodes without
coordinates, repeated labels, parallel edges, self-loops, disconnected parts.
The importer makes any such file boot as is and records each repair in
:attr:`Topology.notes`:

- a site per node, named by the slug of its ``label`` (ASCII-folded,
  lower-case), de-duplicated with ``-2``, ``-3`` suffixes; ids 1..N in file order;
- coordinates from ``Latitude``/``Longitude``, ignored (noted) when missing on
  one side, not numbers or out of range;
- each site gets ``clients_per_site`` clients and ``compute_per_site``
  compute nodes with the format's defaults;
- self-loops dropped; parallel (and, in directed files, reverse) edges merged
  into one link whose rate is the sum of theirs;
- nodes outside the largest connected component dropped (ties: the component
  met first in the file);
- link delay derived from coordinates (:mod:`cpn_net.model.geo`), else
  :data:`~cpn_net.model.geo.DEFAULT_LINK_DELAY_MS` (``delay_source="default"``);
- rate from ``LinkSpeedRaw`` (bit/s), else unshaped;
- the service :data:`~cpn_net.model.schema.DEFAULT_SERVICE` on every compute node.

Other descriptive attributes are ignored. A file that is not well-formed
GraphML (bad XML, no ``<graphml>`` root or ``<graph>``, no nodes, duplicate
node ids, edges naming undeclared nodes) raises a TopologyError.

GraphML: http://graphml.graphdrawing.org/specification.html

Examples
--------
>>> topo = load_graphml("topologies/abilene.graphml")
>>> topo.name, len(topo.sites), len(topo.links), topo.site("new-york").router
('abilene', 11, 14, 'r11')
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field, replace

import networkx as nx

from cpn_net.model.addressing import MAX_HOSTS_PER_KIND
from cpn_net.model.build import Entry, Header, build_topology
from cpn_net.model.errors import TOP_KEY, ProblemLog, unknown_fix
from cpn_net.model.files import read_bytes
from cpn_net.model.geo import DEFAULT_LINK_DELAY_MS, DEFAULT_ROUTE_FACTOR
from cpn_net.model.schema import (
    DEFAULT_SERVICE,
    DEFAULT_SERVICE_NOTE,
    PLAN_LIKE_NAME,
    SITE_FIELDS,
    TOP_FIELDS,
    check_value,
    slug,
)
from cpn_net.model.topology import Topology

_GRAPH_KEY = "(graph)"
_COMPUTE_FIX = f"give 0 to {MAX_HOSTS_PER_KIND} compute nodes"


@dataclass
class _Node:
    id: str
    data: dict[str, str]


@dataclass
class _Edge:
    index: int
    source: str
    target: str
    data: dict[str, str]


@dataclass
class _Graph:
    data: dict[str, str]
    nodes: list[_Node] = field(default_factory=list)
    edges: list[_Edge] = field(default_factory=list)
    directed: bool = False


def load_graphml(
    path: str | os.PathLike,
    *,
    clients_per_site: int = 1,
    compute_per_site: int = 1,
    route_factor: float = DEFAULT_ROUTE_FACTOR,
    default_service: bool = True,
) -> Topology:
    """Import a Topology Zoo GraphML file.

    Parameters
    ----------
    path : str or os.PathLike
    clients_per_site, compute_per_site : int
        Hosts given to every site, 0..99.
    route_factor : float
        Fibre length over great-circle distance for derived delays (>= 1).
    default_service : bool
        Add :data:`~cpn_net.model.schema.DEFAULT_SERVICE` on every compute node.

    Returns
    -------
    Topology

    Raises
    ------
    TopologyError
        If the file is not usable GraphML or an option is out of range.

    Examples
    --------
    >>> topo = load_graphml("topologies/abilene.graphml", compute_per_site=2)
    >>> len(topo.compute_nodes()), topo.link("denver", "kansas-city").delay_source
    (22, 'derived')
    """
    return parse_graphml(
        read_bytes(path),
        os.fspath(path),
        clients_per_site=clients_per_site,
        compute_per_site=compute_per_site,
        route_factor=route_factor,
        default_service=default_service,
    )


def parse_graphml(
    data: bytes | str,
    file: str = "<string>",
    *,
    clients_per_site: int = 1,
    compute_per_site: int = 1,
    route_factor: float = DEFAULT_ROUTE_FACTOR,
    default_service: bool = True,
) -> Topology:
    """Import GraphML given as bytes or text; ``file`` names it in messages.

    Examples
    --------
    >>> xml = '''<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
    ...   <graph edgedefault="undirected"><node id="a"/><node id="b"/>
    ...   <edge source="a" target="b"/><edge source="a" target="a"/></graph></graphml>'''
    >>> topo = parse_graphml(xml, "two.graphml")
    >>> topo.links[0].delay_ms, topo.links[0].delay_source
    (1.0, 'default')
    >>> print("\\n".join(topo.notes))
    dropped 1 self-loop(s): a
    no services given: added infer at 2001:db8:ffff::1 port 8080 on every compute node
    1 link(s) have an end without coordinates and use the default delay 1 ms: a-b
    """
    log = ProblemLog(file)
    check_value(log, "clients_per_site", clients_per_site, SITE_FIELDS["clients"])
    check_value(log, "compute_per_site", compute_per_site, replace(SITE_FIELDS["compute"], fix=_COMPUTE_FIX))
    check_value(log, "route_factor", route_factor, TOP_FIELDS["route_factor"])
    graph = _parse_xml(log, data)
    log.raise_if_any()
    notes: list[str] = []
    if graph.directed:
        notes.append("the file's edges are directed; each pair of nodes became one bidirectional link")
    pairs = _merge_edges(graph, notes)
    kept = _largest_component(graph, pairs, notes)
    names = _site_names(graph, kept, notes)
    sites = []
    for site_id, node in enumerate(kept, start=1):
        mapping = {"name": names[node.id], "id": site_id, "clients": clients_per_site, "compute": compute_per_site}
        mapping.update(_coordinates(node, names[node.id], notes))
        sites.append(Entry(f"node {node.id!r}", mapping))
    links = []
    for (u, v), edges in pairs.items():
        if u in names and v in names:
            rate = _rate_mbps(edges, f"{names[u]}-{names[v]}", notes)
            links.append(Entry(f"edge[{edges[0].index}]", {"a": names[u], "b": names[v], "rate_mbps": rate}))
    services = []
    if default_service and compute_per_site > 0:
        services = [Entry("(default service)", dict(DEFAULT_SERVICE))]
        notes.append(DEFAULT_SERVICE_NOTE)
    header = Header(name=_graph_name(graph, file), description=_description(graph), route_factor=route_factor)
    return build_topology(log, file, header, sites, links, services, notes,
                          fallback_delay_ms=DEFAULT_LINK_DELAY_MS, sites_key="nodes", links_key="edges")


def _local(tag: str) -> str:
    """The tag without its XML namespace: Topology Zoo files use the GraphML one."""
    return tag.rsplit("}", 1)[-1]


def _parse_xml(log: ProblemLog, data: bytes | str) -> _Graph:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        line, column = err.position
        reason = str(err).rsplit(": line ", 1)[0]  # the position is in the key already
        log.add(f"line {line}, column {column + 1}", f"malformed XML: {reason}", "fix the XML or export the file again")
        return _Graph({})
    except (LookupError, ValueError) as err:  # expat takes single-byte encodings only; an unknown one is LookupError
        log.add(TOP_KEY, f"the XML declaration's encoding cannot be read: {err}",
                'save the file as UTF-8 (<?xml version="1.0" encoding="utf-8"?>)')
        return _Graph({})
    if _local(root.tag) != "graphml":
        log.add(TOP_KEY, f"the root element is <{_local(root.tag)}>, not <graphml>",
                "give a GraphML file such as those of the Internet Topology Zoo")
        return _Graph({})
    keys, defaults = {}, {}
    for key in root:
        if _local(key.tag) == "key" and key.get("id") and key.get("attr.name"):
            keys[key.get("id")] = key.get("attr.name")
            default = next((c for c in key if _local(c.tag) == "default"), None)
            if default is not None:
                defaults.setdefault(key.get("for", "all"), {})[key.get("attr.name")] = (default.text or "").strip()
    element = next((c for c in root if _local(c.tag) == "graph"), None)
    if element is None:
        log.add(TOP_KEY, "no <graph> element", "give a GraphML file with one <graph> holding nodes and edges")
        return _Graph({})

    def data_of(item: ET.Element, domain: str) -> dict[str, str]:
        values = {**defaults.get("all", {}), **defaults.get(domain, {})}
        for child in item:
            if _local(child.tag) == "data" and child.get("key") in keys:
                values[keys[child.get("key")]] = (child.text or "").strip()
        return values

    graph = _Graph(data_of(element, "graph"), directed=element.get("edgedefault") == "directed")
    seen: set[str] = set()
    node_count = 0
    for child in element:
        tag = _local(child.tag)
        if tag == "node":
            node_id = child.get("id")
            node_count += 1
            if node_id is None:
                log.add(f"node[{node_count - 1}]", "has no id attribute", "give every <node> an id")
            elif node_id in seen:
                log.add(f"node {node_id!r}", "declared twice", "give every <node> a unique id")
            else:
                seen.add(node_id)
                graph.nodes.append(_Node(node_id, data_of(child, "node")))
        elif tag == "edge":
            ends = (child.get("source"), child.get("target"))
            graph.edges.append(_Edge(len(graph.edges), *ends, data_of(child, "edge")))
            graph.directed = graph.directed or child.get("directed") == "true"
    if not graph.nodes and not log.problems:
        log.add(_GRAPH_KEY, "the graph has no nodes", "give a graph with at least one node")
    for edge in graph.edges:
        for end in ("source", "target"):
            value = getattr(edge, end)
            if value is None:
                log.add(f"edge[{edge.index}].{end}", "missing", f"give every <edge> a {end} attribute naming a node")
            elif value not in seen:
                log.add(f"edge[{edge.index}].{end}", f"{value!r} is not a declared node",
                        unknown_fix(value, [n.id for n in graph.nodes], "node ids"))
    return graph


def _merge_edges(graph: _Graph, notes: list[str]) -> dict[tuple[str, str], list[_Edge]]:
    """Edges grouped per unordered node pair (first-seen order), self-loops dropped."""
    labels = {n.id: n.data.get("label") or n.id for n in graph.nodes}
    pairs: dict[tuple[str, str], list[_Edge]] = {}
    loops = []
    order = {n.id: i for i, n in enumerate(graph.nodes)}
    for edge in graph.edges:
        if edge.source == edge.target:
            loops.append(labels[edge.source])
            continue
        key = tuple(sorted((edge.source, edge.target), key=order.get))
        pairs.setdefault(key, []).append(edge)
    if loops:
        notes.append(f"dropped {len(loops)} self-loop(s): {', '.join(loops)}")
    merged = [f"{labels[u]}-{labels[v]} (nodes {u}-{v}, x{len(e)})" for (u, v), e in pairs.items() if len(e) > 1]
    if merged:
        notes.append(f"merged parallel edges into one link each: {', '.join(merged)}")
    return pairs


def _largest_component(graph: _Graph, pairs: dict, notes: list[str]) -> list[_Node]:
    g = nx.Graph()
    g.add_nodes_from(n.id for n in graph.nodes)
    g.add_edges_from(pairs)
    order = {n.id: i for i, n in enumerate(graph.nodes)}
    components = sorted(nx.connected_components(g), key=lambda c: (-len(c), min(order[n] for n in c)))
    if not components:
        return []
    keep = components[0]
    dropped = [n.data.get("label") or n.id for n in graph.nodes if n.id not in keep]
    if dropped:
        notes.append(f"dropped {len(dropped)} node(s) not connected to the largest group of "
                     f"{len(keep)}: {', '.join(dropped)}")
    return [n for n in graph.nodes if n.id in keep]


def _site_names(graph: _Graph, kept: list[_Node], notes: list[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    used: Counter = Counter()
    renamed = []
    for node in kept:
        label = node.data.get("label") or node.id
        base = slug(label) or slug(f"node-{node.id}") or "site"
        if PLAN_LIKE_NAME.fullmatch(base):
            base = f"{base}-site"  # r1, k2-1 ... would read as another node's name
        used[base] += 1
        name = base if used[base] == 1 else f"{base}-{used[base]}"
        while name in names.values():
            used[base] += 1
            name = f"{base}-{used[base]}"
        if used[base] > 1:
            renamed.append(f"{label!r} (node {node.id!r}) is {name}")
        names[node.id] = name
    if renamed:
        notes.append(f"repeated labels got suffixes: {'; '.join(renamed)}")
    return names


def _coordinates(node: _Node, name: str, notes: list[str]) -> dict[str, float]:
    values = {}
    for field_name, key, limit in (("lat", "Latitude", 90), ("lon", "Longitude", 180)):
        text = node.data.get(key)
        if text is None or text == "":
            continue
        try:
            value = float(text)
        except ValueError:
            notes.append(f"site {name}: {key} {text!r} is not a number; ignored")
            continue
        if not (math.isfinite(value) and -limit <= value <= limit):
            notes.append(f"site {name}: {key} {text} is outside -{limit}..{limit}; ignored")
            continue
        values[field_name] = value
    if len(values) == 1:
        notes.append(f"site {name}: only one of Latitude/Longitude is usable; coordinates ignored")
        return {}
    return values


def _rate_mbps(edges: list[_Edge], label: str, notes: list[str]) -> float | None:
    rates = []
    for edge in edges:
        text = edge.data.get("LinkSpeedRaw")
        try:
            bits = float(text) if text else math.nan
        except ValueError:
            bits = math.nan
        if text and not (math.isfinite(bits) and bits > 0):
            notes.append(f"link {label}: LinkSpeedRaw {text!r} is not a positive number; ignored")
        rates.append(bits / 1e6 if math.isfinite(bits) and bits > 0 else None)
    # A merged link is only as shaped as all its members: one unknown rate leaves it unshaped.
    return None if None in rates else round(sum(rates), 6)


def _graph_name(graph: _Graph, file: str) -> str:
    for key in ("label", "Network"):
        if slug(graph.data.get(key, "")):
            return slug(graph.data[key])
    return slug(os.path.splitext(os.path.basename(file))[0]) or "imported"


def _description(graph: _Graph) -> str:
    network = graph.data.get("Network") or graph.data.get("label") or "network"
    where = ", ".join(v for v in (graph.data.get("GeoLocation"), graph.data.get("DateYear")) if v)
    return f"{network}{f' ({where})' if where else ''}, imported from GraphML"
