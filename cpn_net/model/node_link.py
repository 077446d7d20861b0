"""Import a topology from networkx node-link JSON (``networkx.node_link_data``).

Layout (either ``links`` or ``edges`` holds the links)::

    {"directed": false, "multigraph": false,
     "graph": {"name": "pair", "route_factor": 1.3, "services": [...]},
     "nodes": [{"id": "beijing", "lat": 39.9, "lon": 116.4, "clients": 2, "compute": 0},
               {"id": 7, "name": "guian", "Latitude": 26.4, "Longitude": 106.4}],
     "links": [{"source": "beijing", "target": 7, "rate_mbps": 100}]}

- A node whose ``id`` is a string is the site of that name (``site_id``
  optionally fixes its numeric id); an int ``id`` is the site id, named by
  ``name`` (default ``site<id>``).
- Node keys otherwise as YAML sites: ``lat``/``lon`` (or ``Latitude``/
  ``Longitude``), ``clients``, ``compute``. Link keys as YAML links, with
  ``source``/``target`` for the ends. ``graph`` holds the YAML top-level keys
  ``name`` (default: the file name), ``description``, ``route_factor``,
  ``defaults``, ``services``, ``policies`` (SR policies, as in YAML, naming
  sites by name), ``slices`` (network slices, as in YAML).
- Unknown keys are rejected like in YAML. Directed graphs and multigraphs are
  rejected: links carry both directions, one per pair of sites.
- Without ``graph.services`` the topology gets the service
  :data:`~cpn_net.model.schema.DEFAULT_SERVICE` on every compute node (noted).

Examples
--------
>>> import json
>>> topo = parse_node_link(json.dumps({"nodes": [{"id": "a"}, {"id": "b"}],
...     "links": [{"source": "a", "target": "b", "delay_ms": 2}]}), "pair.json")
>>> topo.name, topo.link("a", "b").delay_ms, topo.services[0].name
('pair', 2.0, 'infer')
"""

from __future__ import annotations

import json
import os
from typing import Any

from cpn_net.model.addressing import MAX_SITE_ID
from cpn_net.model.build import Entry, build_topology, read_header
from cpn_net.model.errors import FILE_KEY, TOP_KEY, ProblemLog, unknown_fix
from cpn_net.model.files import check_document, read_text
from cpn_net.model.schema import DEFAULT_SERVICE, DEFAULT_SERVICE_NOTE, TOP_FIELDS, Reader, describe, show, slug
from cpn_net.model.topology import Topology

_TOP_KEYS = ("directed", "multigraph", "graph", "nodes", "links", "edges")
_GRAPH_FIELDS = {k: TOP_FIELDS[k] for k in ("name", "description", "route_factor", "defaults", "services", "policies",
                                             "slices")}
_COORD_SPELLINGS = {"lat": "Latitude", "lon": "Longitude"}


def load_node_link(path: str | os.PathLike, *, default_service: bool = True) -> Topology:
    """Load and validate a node-link JSON topology file.

    Parameters
    ----------
    path : str or os.PathLike
    default_service : bool
        Add :data:`~cpn_net.model.schema.DEFAULT_SERVICE` when the file names
        no services and has compute nodes.

    Returns
    -------
    Topology

    Raises
    ------
    TopologyError
        Listing every problem found.

    Examples
    --------
    >>> load_node_link("missing.json")
    Traceback (most recent call last):
    ...
    cpn_net.model.errors.TopologyError: missing.json: (file): no such file; ...
    """
    file = os.fspath(path)
    return parse_node_link(read_text(path), file, default_service=default_service)


def parse_node_link(text: str, file: str = "<string>", *, default_service: bool = True) -> Topology:
    """Validate node-link JSON text; ``file`` names it in messages.

    Examples
    --------
    >>> parse_node_link('{"directed": true, "nodes": [{"id": "a"}], "links": []}')
    Traceback (most recent call last):
    ...
    cpn_net.model.errors.TopologyError: <string>: directed: true is not supported; ...
    """
    log = ProblemLog(file)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        log.add(f"line {err.lineno}, column {err.colno}", f"JSON syntax error: {err.msg}",
                "fix the JSON (check commas, quotes and brackets)")
        log.raise_if_any()
    except ValueError as err:  # Python refuses int() of over 4300 digits (CVE-2020-10735)
        log.add(FILE_KEY, f"a number is not one Python reads{' (over 4300 digits)' if '4300' in str(err) else ''}",
                "give numbers below 1e308")
        log.raise_if_any()
    except RecursionError:
        log.add(FILE_KEY, "nested too deeply to read", "flatten the JSON: a topology is a few levels deep")
        log.raise_if_any()
    check_document(log, document)
    log.raise_if_any()
    if not isinstance(document, dict):
        log.add(TOP_KEY, f"the document is {describe(document)}, expected a node-link object",
                'write {"nodes": [...], "links": [...]} as networkx.node_link_data does')
        log.raise_if_any()
    for key in document:
        if key not in _TOP_KEYS:
            log.add(str(key), "unknown key", unknown_fix(key, _TOP_KEYS, "keys"))
    for key, fix in (("directed", "write an undirected graph (links carry both directions): G.to_undirected()"),
                     ("multigraph", "merge parallel links into one link per pair of nodes")):
        if document.get(key, False) is not False:
            log.add(key, f"{show(document[key])} is not supported", fix)
    links_key = "edges" if "edges" in document else "links"
    if "edges" in document and "links" in document:
        log.add("edges", "given together with links", "put every link under one key, links or edges")
    graph = document.get("graph", {})
    if not isinstance(graph, dict):
        log.add("graph", f"{show(graph)} is {describe(graph)}, expected a mapping",
                "write graph attributes as an object")
        graph = {}
    top = Reader(log, "graph", graph, _GRAPH_FIELDS)
    header = read_header(log, top, default_name=_file_slug(file))
    nodes = _list(log, document, "nodes", required=True)
    sites, names = _sites(log, nodes)
    links = _links(log, _list(log, document, links_key, required=False), links_key, names)
    notes: list[str] = []
    if top.has("services"):
        services = [Entry(f"graph.services[{i}]", item) for i, item in enumerate(top.get("services", []))]
    else:
        services, notes = _default_service(default_service, sites)
    policies = [Entry(f"graph.policies[{i}]", item) for i, item in enumerate(top.get("policies") or [])]
    slices = [Entry(f"graph.slices[{i}]", item) for i, item in enumerate(top.get("slices") or [])]
    return build_topology(log, file, header, sites, links, services, notes, sites_key="nodes", links_key=links_key,
                          policies=policies, slices=slices)


def _list(log: ProblemLog, document: dict, key: str, required: bool) -> list:
    if key not in document:
        if required:
            log.add(key, "missing", f'list the sites: "{key}": [{{"id": "a"}}, ...]')
        return []
    value = document[key]
    if not isinstance(value, list):
        log.add(key, f"{show(value)} is {describe(value)}, expected a list", f'write "{key}" as a JSON array')
        return []
    return value


def _sites(log: ProblemLog, nodes: list) -> tuple[list[Entry], dict]:
    """Site entries, and node id -> site name for resolving link ends."""
    entries, names = [], {}
    for i, node in enumerate(nodes):
        path = f"nodes[{i}]"
        if not isinstance(node, dict):
            entries.append(Entry(path, node))
            continue
        node_id = node.get("id")
        mapping = dict(node)
        spelled: dict[str, str] = {}
        if isinstance(node_id, str):
            if "name" in node:
                log.add(f"{path}.name", "given together with a string id, which already names the site",
                        "drop name, or make id the int site id")
                mapping.pop("name")
            # The Reader finds field "name" under key "id", and field "id" under "site_id".
            spelled = {"name": "id", "id": "site_id"}
        elif isinstance(node_id, int) and not isinstance(node_id, bool):
            if "site_id" in node:
                log.add(f"{path}.site_id", "given together with an int id, which already is the site id",
                        "drop site_id, or make id the site name")
                mapping.pop("site_id")
            mapping.setdefault("name", f"site{node_id}")
            if not 1 <= node_id <= MAX_SITE_ID:
                log.add(f"{path}.id", f"{node_id} is not a site id (1..{MAX_SITE_ID})",
                        "number nodes from 1 (nx.convert_node_labels_to_integers(G, first_label=1)) or use names")
                del mapping["id"]  # keep the site, so its links raise no second problem
        else:
            what = "missing" if "id" not in node else f"{show(node_id)} is {describe(node_id)}"
            log.add(f"{path}.id", f"{what}, expected a site name or an int site id",
                    'give every node an id, e.g. "id": "beijing"')
            continue
        for field, other in _COORD_SPELLINGS.items():
            if other in mapping:
                if field in mapping:
                    log.add(f"{path}.{other}", f"given together with {field}", f"keep one of {field} and {other}")
                    mapping.pop(other)
                else:
                    spelled[field] = other
        if spelled.keys() & _COORD_SPELLINGS.keys():
            # Name a missing coordinate the way its partner is spelled.
            spelled.update({f: o for f, o in _COORD_SPELLINGS.items() if f not in mapping})
        if isinstance(node_id, (str, int)) and node_id not in names:
            names[node_id] = mapping["id"] if isinstance(node_id, str) else mapping["name"]
        entries.append(Entry(path, mapping, spelled))
    return entries, names


def _links(log: ProblemLog, items: list, key: str, names: dict) -> list[Entry]:
    entries = []
    for i, item in enumerate(items):
        path = f"{key}[{i}]"
        if not isinstance(item, dict):
            entries.append(Entry(path, item))
            continue
        mapping = dict(item)
        ends_ok = True
        for end in ("source", "target"):
            if end not in item:
                log.add(f"{path}.{end}", "missing", "give both ends of the link: source and target node ids")
                ends_ok = False
            elif not isinstance(item[end], (str, int)) or isinstance(item[end], bool) or item[end] not in names:
                choices = [str(n) for n in names]
                log.add(f"{path}.{end}", f"no node has id {show(item[end])}",
                        unknown_fix(str(item[end]), choices, "node ids"))
                ends_ok = False
            else:
                mapping[end] = names[item[end]]  # the site's name, read as field a or b
        if ends_ok:
            entries.append(Entry(path, mapping, {"a": "source", "b": "target"}))
    return entries


def _default_service(wanted: bool, sites: list[Entry]) -> tuple[list[Entry], list[str]]:
    has_compute = any(
        isinstance(e.mapping, dict) and e.mapping.get("compute", 1) not in (0, []) for e in sites
    )
    if not (wanted and has_compute):
        return [], []
    return [Entry("(default service)", dict(DEFAULT_SERVICE))], [DEFAULT_SERVICE_NOTE]


def _file_slug(file: str) -> str:
    return slug(os.path.splitext(os.path.basename(file))[0]) or "imported"
