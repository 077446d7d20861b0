"""The baseline IGP: the shortest-delay routing every router follows by default.

This is the one definition of "where does a packet go without a segment
list". The controller installs its next hops as the routes to every other
site's locator and LAN; segment-list minimisation assumes exactly it.

Definition
----------
* Metric: each link costs its one-way ``delay_ms`` rounded to whole
  microseconds (:func:`igp_metric_us`). Integer metrics, as IS-IS and OSPF
  use, make ties exact instead of subject to floating-point sums.
* Routing towards a target is destination-based: a shortest-path tree rooted
  at the target, grown by Dijkstra, popping nodes in ``(distance, site id)``
  order. A node's next hop is, among the neighbours on a shortest path that
  were popped before it, the one with the smallest site id. With positive
  metrics that is simply "the smallest-id neighbour on any shortest path";
  the pop-order condition keeps zero-delay links loop-free.
* Because it is a tree, ``igp_path(G, a, t)[1:] == igp_path(G, b, t)`` where
  ``b`` is ``a``'s next hop: hop-by-hop forwarding and the computed path agree.

Nodes of ``G`` are site names with attribute ``id`` (int); edges carry
``delay_ms`` (float >= 0).

Examples
--------
>>> import networkx as nx
>>> G = nx.Graph()
>>> G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2}), ("c", {"id": 3}), ("d", {"id": 4})])
>>> G.add_edges_from([("a", "b", {"delay_ms": 1}), ("b", "d", {"delay_ms": 1}),
...                   ("a", "c", {"delay_ms": 1}), ("c", "d", {"delay_ms": 1})])
>>> igp_path(G, "a", "d")   # a tie: b (id 2) beats c (id 3)
('a', 'b', 'd')
>>> igp_next_hops(G, "d")
{'b': 'd', 'c': 'd', 'a': 'b'}
"""

from __future__ import annotations

import heapq
import math
from typing import Hashable, Mapping

import networkx as nx

from cpn_net.srv6.errors import PathError


def igp_metric_us(delay_ms: float) -> int:
    """The IGP metric of a link: its delay in whole microseconds.

    Raises
    ------
    PathError
        If the delay is negative or not a finite number.

    Examples
    --------
    >>> igp_metric_us(2.5), igp_metric_us(0.0004)
    (2500, 0)
    """
    if type(delay_ms) is float and 0 <= delay_ms < math.inf:  # the common case, checked fast
        return round(delay_ms * 1000)
    if isinstance(delay_ms, bool) or not isinstance(delay_ms, (int, float)) or not math.isfinite(delay_ms) \
            or delay_ms < 0:
        raise PathError(f"delay_ms={delay_ms!r} must be a finite number >= 0")
    return round(delay_ms * 1000)


def site_id(G: nx.Graph, site: Hashable) -> int:
    """The ``id`` attribute of a site, with a clear error when the site or id is missing.

    Examples
    --------
    >>> G = nx.Graph(); G.add_node("a", id=7)
    >>> site_id(G, "a")
    7
    """
    check_site(G, site)
    value = G.nodes[site].get("id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise PathError(f"site {site!r}: id={value!r} must be an int; build the graph with Topology.graph()")
    return value


def check_site(G: nx.Graph, site: Hashable) -> None:
    """Raise PathError naming the known sites if ``site`` is not in ``G``."""
    if site not in G:
        known = ", ".join(sorted(map(str, G.nodes))[:12]) + (", ..." if len(G) > 12 else "")
        raise PathError(f"site {site!r} is not in the topology; known sites: {known}")


def link_metric_us(G: nx.Graph, u: Hashable, v: Hashable) -> int:
    """The IGP metric of link ``u-v``, naming the link when its delay is bad."""
    try:
        return igp_metric_us(G.edges[u, v].get("delay_ms"))
    except PathError as err:
        first, second = sorted((str(u), str(v)))
        raise PathError(f"link {first}-{second}: {err}") from err


class LinkState:
    """What the searches read in their inner loops, taken from ``G`` once.

    The link-state database of one topology snapshot: site ids, neighbours
    and per-link attributes as plain dicts, so per-request code never walks
    networkx views. Invalid attributes are recorded, not raised: each caller
    raises the error its own contract names, or falls back to a slower path
    that does. Get one from :meth:`Igp.link_state` (cached with the IGP's
    trees) or :func:`link_state_of`.

    Attributes
    ----------
    ids : dict
        ``{site: id attribute}`` in node order (the raw value, maybe invalid).
    by_id : dict
        ``{id: site}``; with duplicate ids the site listed last wins; empty
        unless ``ids_valid``.
    ids_valid, ids_unique, metrics_valid : bool
        Every id is an int; no two sites share one; every delay passes
        :func:`igp_metric_us`.
    adj : dict
        ``{site: tuple of neighbours}`` in ``G.adj`` order.
    metric_us, delay_ms, rate_mbps : dict
        Per arc ``(u, v)``, both directions: the IGP metric (None if
        invalid), ``float(delay_ms)`` (None if invalid) and the raw
        ``rate_mbps`` (None when absent).
    number_of_edges : int
    memo : dict
        Derived per-graph data other modules cache here, keyed by tuples
        whose first item names the module's purpose.

    Examples
    --------
    >>> G = nx.path_graph(["x", "y"])
    >>> nx.set_node_attributes(G, {"x": 1, "y": 2}, "id")
    >>> nx.set_edge_attributes(G, 1.5, "delay_ms")
    >>> state = LinkState(G)
    >>> state.by_id[2], state.adj["x"], state.metric_us[("y", "x")], state.metrics_valid
    ('y', ('y',), 1500, True)
    """

    def __init__(self, G: nx.Graph):
        self.G = G
        self.ids = dict(G.nodes(data="id"))
        self.ids_valid = all(isinstance(v, int) and not isinstance(v, bool) for v in self.ids.values())
        self.by_id = {value: site for site, value in self.ids.items()} if self.ids_valid else {}
        self.ids_unique = self.ids_valid and len(self.by_id) == len(self.ids)
        self.adj = {site: tuple(neighbours) for site, neighbours in G.adj.items()}
        self.metric_us: dict = {}
        self.delay_ms: dict = {}
        self.rate_mbps: dict = {}
        self.metrics_valid = True
        for u, v, attrs in G.edges(data=True):
            delay_ms = attrs.get("delay_ms")
            try:
                us, delay = igp_metric_us(delay_ms), float(delay_ms)
            except (PathError, OverflowError):  # e.g. 1e308 ms: the exact checks raise it where they must
                us = delay = None
                self.metrics_valid = False
            self.metric_us[(u, v)] = self.metric_us[(v, u)] = us
            self.delay_ms[(u, v)] = self.delay_ms[(v, u)] = delay
            self.rate_mbps[(u, v)] = self.rate_mbps[(v, u)] = attrs.get("rate_mbps")
        self.number_of_edges = G.number_of_edges()
        self.memo: dict = {}


def link_state_of(G: nx.Graph, igp: "Igp | None" = None) -> LinkState:
    """The cached :class:`LinkState` of ``igp`` if it is the IGP of ``G``, else a fresh one.

    A cache is only ever reused for the very graph object it was built
    from, so a changed topology (a new graph) never sees another's data.

    Examples
    --------
    >>> G = nx.Graph(); G.add_node("a", id=1)
    >>> igp = Igp(G)
    >>> link_state_of(G, igp) is igp.link_state(), link_state_of(nx.Graph(G), igp) is igp.link_state()
    (True, False)
    """
    if igp is not None and igp.G is G:
        return igp.link_state()
    return LinkState(G)


class Igp:
    """The IGP of one topology snapshot, with its shortest-path trees cached.

    Build one per topology version and share it: every query on the same
    ``Igp`` reuses the tree of its target, and functions given ``igp=``
    reuse its :class:`LinkState` (site ids, neighbours, link attributes,
    path-search caches). What it caches is read from ``G`` once, so do not
    mutate ``G`` afterwards: build a new graph and a new ``Igp`` when the
    topology changes (the controller keeps one per set of links up).

    Examples
    --------
    >>> G = nx.path_graph(["x", "y", "z"])
    >>> nx.set_node_attributes(G, {"x": 1, "y": 2, "z": 3}, "id")
    >>> nx.set_edge_attributes(G, 1.0, "delay_ms")
    >>> igp = Igp(G)
    >>> igp.path("x", "z"), igp.next_hop("x", "z"), igp.distance_us("x", "z")
    (('x', 'y', 'z'), 'y', 2000)
    """

    def __init__(self, G: nx.Graph):
        self.G = G
        self._trees: dict[Hashable, tuple[dict, dict]] = {}
        self._link_state: LinkState | None = None

    def link_state(self) -> LinkState:
        """The :class:`LinkState` of ``G``, built on first use."""
        if self._link_state is None:
            self._link_state = LinkState(self.G)
        return self._link_state

    def next_hops(self, target: Hashable) -> dict:
        """``{site: next hop towards target}`` for every site that reaches ``target``."""
        return dict(self._tree(target)[0])

    def next_hop_map(self, target: Hashable) -> Mapping:
        """Like :meth:`next_hops` without the copy: the cached map, which callers must not change."""
        return self._tree(target)[0]

    def next_hop(self, site: Hashable, target: Hashable) -> Hashable | None:
        """The next hop from ``site`` towards ``target``; None at the target or when unreachable."""
        check_site(self.G, site)
        return self._tree(target)[0].get(site)

    def distance_us(self, source: Hashable, target: Hashable) -> int | None:
        """The IGP distance in microseconds; None when unreachable."""
        check_site(self.G, source)
        return self._tree(target)[1].get(source)

    def path(self, source: Hashable, target: Hashable) -> tuple:
        """The sites a packet from ``source`` to ``target`` visits, both ends included.

        Raises
        ------
        PathError
            If a site is unknown or ``target`` is unreachable from ``source``.
        """
        check_site(self.G, source)
        parents, dist = self._tree(target)
        if source not in dist:
            raise PathError(f"IGP: no route from {source!r} to {target!r}: the sites are not connected")
        sites = [source]
        while sites[-1] != target:
            sites.append(parents[sites[-1]])
        return tuple(sites)

    def _tree(self, target: Hashable) -> tuple[dict, dict]:
        tree = self._trees.get(target)
        if tree is None:
            state = self.link_state()
            if state.ids_valid and state.metrics_valid and target in self.G:
                tree = _shortest_path_tree_of(state, target)
            else:
                tree = _shortest_path_tree(self.G, target)  # raises, naming the site or link
            self._trees[target] = tree
        return tree


def igp_next_hops(G: nx.Graph, target: Hashable) -> dict:
    """``{site: next hop towards target}`` for every site that reaches ``target``.

    Parameters
    ----------
    G : networkx.Graph
        Sites (attribute ``id``) and links (attribute ``delay_ms``).
    target : str
        The destination site.

    Returns
    -------
    dict
        The target itself and unreachable sites are absent.

    Raises
    ------
    PathError
        If ``target`` is not in ``G`` or a site/link attribute is missing or invalid.

    Examples
    --------
    >>> G = nx.path_graph(["x", "y", "z"])
    >>> nx.set_node_attributes(G, {"x": 1, "y": 2, "z": 3}, "id")
    >>> nx.set_edge_attributes(G, 1.0, "delay_ms")
    >>> igp_next_hops(G, "z")
    {'y': 'z', 'x': 'y'}
    """
    return Igp(G).next_hops(target)


def igp_path(G: nx.Graph, source: Hashable, target: Hashable) -> tuple:
    """The sites a packet from ``source`` to ``target`` visits under the IGP.

    Use an :class:`Igp` instead when asking many questions of one topology.

    Raises
    ------
    PathError
        If a site is unknown or the two sites are not connected.

    Examples
    --------
    >>> G = nx.path_graph(["x", "y", "z"])
    >>> nx.set_node_attributes(G, {"x": 1, "y": 2, "z": 3}, "id")
    >>> nx.set_edge_attributes(G, 1.0, "delay_ms")
    >>> igp_path(G, "z", "x")
    ('z', 'y', 'x')
    """
    return Igp(G).path(source, target)


def _shortest_path_tree(G: nx.Graph, target: Hashable) -> tuple[dict, dict]:
    """Dijkstra from ``target``: (parent towards target, distance in us) per reached site."""
    check_site(G, target)
    dist = {target: 0}
    parent: dict = {}
    done: set = set()
    heap = [(0, site_id(G, target), target)]
    while heap:
        d, _id, u = heapq.heappop(heap)
        if u in done:
            continue
        done.add(u)
        uid = site_id(G, u)
        for v in G.adj[u]:
            if v in done:
                continue
            nd = d + link_metric_us(G, u, v)
            old = dist.get(v)
            # Equal distance: the smaller-id parent wins; u is popped before v
            # here, which is what keeps zero-metric ties loop-free.
            if old is None or nd < old or (nd == old and uid < site_id(G, parent[v])):
                dist[v] = nd
                parent[v] = u
                if old is None or nd < old:
                    heapq.heappush(heap, (nd, site_id(G, v), v))
    return parent, dist


def _shortest_path_tree_of(state: LinkState, target: Hashable) -> tuple[dict, dict]:
    """:func:`_shortest_path_tree` on valid link-state data: the same steps, no attribute checks."""
    ids, adj, metric_us = state.ids, state.adj, state.metric_us
    dist = {target: 0}
    parent: dict = {}
    done: set = set()
    heap = [(0, ids[target], target)]
    while heap:
        d, uid, u = heapq.heappop(heap)
        if u in done:
            continue
        done.add(u)
        for v in adj[u]:
            if v in done:
                continue
            nd = d + metric_us[(u, v)]
            old = dist.get(v)
            if old is None or nd < old or (nd == old and uid < ids[parent[v]]):
                dist[v] = nd
                parent[v] = u
                if old is None or nd < old:
                    heapq.heappush(heap, (nd, ids[v], v))
    return parent, dist
