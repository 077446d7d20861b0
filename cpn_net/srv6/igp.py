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
from typing import Hashable

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


class Igp:
    """The IGP of one topology snapshot, with its shortest-path trees cached.

    Build one per topology version and share it: every query on the same
    ``Igp`` reuses the tree of its target. Do not mutate ``G`` afterwards.

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

    def next_hops(self, target: Hashable) -> dict:
        """``{site: next hop towards target}`` for every site that reaches ``target``."""
        return dict(self._tree(target)[0])

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
            tree = self._trees[target] = _shortest_path_tree(self.G, target)
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
