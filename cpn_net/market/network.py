"""The site graph as the market sees it: least-delay routes from a source to every site, at national scale.

Paths follow the project's IGP metric (:func:`cpn_net.srv6.igp.igp_metric_us`:
a link's delay in whole microseconds), ties to fewer hops, as
:mod:`cpn_net.srv6.paths` ranks ``min_delay`` paths. One Dijkstra run from a
source answers every target (:meth:`SiteNetwork.tree`): scipy's compiled
``csgraph.dijkstra`` over a sparse matrix whose weights fold the hop count
below the delay (``delay_us * S + 1`` with ``S`` above any hop count), so one
float distance gives both the delay and the hops of every site's best path.
On a 7,000-site graph a run takes about a millisecond, where the pure-Python
search of :mod:`cpn_net.srv6.paths` (built for tens of sites and exact
site-id tie-breaks) takes far longer; trees are kept per source (least
recently used first out).

Every pair of sites has up to two candidate routes (:meth:`SiteNetwork.routes`):
the least-delay route and, when it exists, the least-delay route sharing no
link with it and taking at most twice its delay plus 10 ms
(:meth:`SiteNetwork.alternate`; the bound keeps that search regional). Both
depend on the graph only, so the online policies and the offline optimum
choose among the same routes.

Capacities: a link's ``rate_mbps`` (per direction), less any rate already
reserved on it outside the market (``reserved_mbps``: the slices the
controller holds, :func:`cpn_net.slicing.admission.reserved_mbps`), in whole
kbit/s; a link without a rate is unconstrained (None).

Examples
--------
>>> import networkx as nx
>>> G = nx.Graph()
>>> G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2}), ("c", {"id": 3})])
>>> G.add_edge("a", "b", delay_ms=1.0, rate_mbps=50.0)
>>> G.add_edge("b", "c", delay_ms=1.0, rate_mbps=100.0)
>>> G.add_edge("a", "c", delay_ms=5.0, rate_mbps=100.0)
>>> net = SiteNetwork(G)
>>> r = net.route("a", "c"); r.sites, r.delay_ms, r.capacity_mbps, r.hops
(('a', 'b', 'c'), 2.0, 50.0, 2)
>>> net.alternate("a", "c").sites
('a', 'c')
>>> [net.link_name(i) for i in r.links]
['a-b', 'b-c']
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import Mapping, Sequence

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from cpn_net.market.errors import MarketError, NetworkError
from cpn_net.model.errors import unknown_fix
from cpn_net.srv6.errors import PathError
from cpn_net.srv6.igp import igp_metric_us
from cpn_net.srv6.paths import link_key

_EXACT = 2.0 ** 52  # float64 distances are exact integers below this
#: An alternate route may take up to twice the least delay plus this (µs); the search stops there.
ALTERNATE_SLACK_US = 10_000


@dataclass(frozen=True)
class Route:
    """A path from a source site to a target site.

    Attributes
    ----------
    sites : tuple of str
        From source to target; one site when they are the same.
    links : tuple of int
        Link indices along it (:meth:`SiteNetwork.link_name` names them).
    delay_ms : float
        One-way delay, the sum of the links' ``delay_ms``.
    capacity_mbps : float or None
        The narrowest shaped link's capacity for the market; None if none is shaped.
    """

    sites: tuple[str, ...]
    links: tuple[int, ...]
    delay_ms: float
    capacity_mbps: float | None

    @property
    def hops(self) -> int:
        return len(self.links)

    @property
    def source(self) -> str:
        return self.sites[0]

    @property
    def target(self) -> str:
        return self.sites[-1]


class SourceTree:
    """Best paths from one source to every site: delay (s), hops and predecessor per site index.

    ``delay_s`` is inf and ``hops`` -1 at unreachable sites; ``pred`` is an
    ``array('i')`` (fast to walk from Python), negative at the source and
    unreachable sites.
    """

    __slots__ = ("source", "delay_s", "hops", "pred", "_order")

    def __init__(self, source: int, delay_s: np.ndarray, hops: np.ndarray, pred: array):
        self.source = source
        self.delay_s = delay_s
        self.hops = hops
        self.pred = pred
        self._order: np.ndarray | None = None

    def nearest_first(self) -> np.ndarray:
        """Site indices by delay, then hops, then index; unreachable sites last."""
        if self._order is None:
            n = len(self.delay_s)
            self._order = np.lexsort((np.arange(n), self.hops, self.delay_s))
        return self._order


class SiteNetwork:
    """Sites, links and cached least-delay trees of a site graph.

    Parameters
    ----------
    G : networkx.Graph
        Sites (attribute ``id``) and links (``delay_ms``, ``rate_mbps``).
    sites : sequence of str, optional
        The market's site order; default sorted by ``id``.
    reserved_mbps : mapping, optional
        ``{(u, v): Mbit/s}`` held on links outside the market.
    cache_sources : int
        Trees kept (least recently used dropped first).

    Raises
    ------
    NetworkError
        If a site has no id, a link's delay is bad, or ``sites`` differs from the graph's.
    """

    def __init__(self, G: nx.Graph, sites: Sequence[str] | None = None, *,
                 reserved_mbps: Mapping | None = None, cache_sources: int = 1024):
        if sites is None:
            try:
                sites = sorted(G.nodes, key=lambda s: G.nodes[s]["id"])
            except (KeyError, TypeError) as err:
                raise NetworkError(f"every site needs an int id to order the market's sites ({err}); "
                                   "build the graph with Topology.graph()") from err
        self.sites: tuple[str, ...] = tuple(sites)
        if set(self.sites) != set(G.nodes) or len(self.sites) != len(G):
            raise NetworkError("the market's sites and the graph's differ; give every graph site exactly once")
        self.index: dict[str, int] = {s: i for i, s in enumerate(self.sites)}
        n = len(self.sites)
        self.links: list[tuple[str, str]] = []
        self.link_delay_ms: list[float] = []
        self.link_capacity_kbps: list[int | None] = []
        self._pair_link: dict[tuple[int, int], int] = {}
        reserved = {}
        for pair, mbps in (reserved_mbps or {}).items():
            u, v = pair
            if not G.has_edge(u, v):
                raise NetworkError(f"reserved_mbps names link {u}-{v}, which the graph lacks")
            reserved[link_key(u, v)] = reserved.get(link_key(u, v), 0.0) + float(mbps)
        rows, cols, metrics = [], [], []
        for u, v, data in G.edges(data=True):
            key = link_key(u, v)
            try:
                metric = igp_metric_us(data.get("delay_ms"))
            except PathError as err:
                raise NetworkError(f"link {key[0]}-{key[1]}: {err}") from err
            rate = data.get("rate_mbps")
            li = len(self.links)
            self.links.append(key)
            self.link_delay_ms.append(float(data["delay_ms"]))
            self.link_capacity_kbps.append(
                None if rate is None else max(0, int(float(rate) * 1000.0) - round(reserved.get(key, 0.0) * 1000)))
            a, b = self.index[u], self.index[v]
            self._pair_link[(a, b)] = self._pair_link[(b, a)] = li
            rows += (a, b)
            cols += (b, a)
            metrics += (metric, metric)
        self._scale = max(n, 2)  # above any hop count
        if (sum(metrics) + 1) * self._scale >= _EXACT:
            raise NetworkError("link delays sum too high to rank paths exactly; give delays in ms, not µs")
        weights = np.asarray(metrics, dtype=np.float64) * self._scale + 1.0
        self._csr = csr_matrix((weights, (np.asarray(rows, dtype=np.int32), np.asarray(cols, dtype=np.int32))),
                               shape=(n, n))
        self._csr.sort_indices()
        self._cache_sources = max(1, cache_sources)
        self._trees: OrderedDict[int, SourceTree] = OrderedDict()
        self._routes: dict[tuple[int, int], Route | None] = {}
        self._alternates: dict[tuple[int, int], Route | None] = {}
        self.trees_computed = 0
        self.alternates_computed = 0
        hop_dtype = np.int16 if n < 32_000 else np.int32
        self._hop_dtype = hop_dtype
        self._least_delay_out = [min((self.link_delay_ms[li] for li in self._links_of(i)), default=None)
                                 for i in range(n)]

    def _links_of(self, i: int):
        csr = self._csr
        for j in csr.indices[csr.indptr[i]:csr.indptr[i + 1]]:
            yield self._pair_link[(i, int(j))]

    def site_index(self, site: str) -> int:
        """The index of ``site``; MarketError naming close matches when unknown."""
        try:
            return self.index[site]
        except KeyError:
            raise MarketError(f"no site {site!r}; {unknown_fix(site, self.sites, 'sites')}") from None

    def link_name(self, li: int) -> str:
        """``u-v`` for link index ``li`` (sites in sorted order)."""
        u, v = self.links[li]
        return f"{u}-{v}"

    def link_capacity_mbps(self, li: int) -> float | None:
        kbps = self.link_capacity_kbps[li]
        return None if kbps is None else kbps / 1000.0

    def least_delay_out_ms(self, site: str) -> float:
        """The least delay of a link out of ``site`` (0 for a site without links)."""
        return self._least_delay_out[self.site_index(site)] or 0.0

    def widest_out_mbps(self, site: str) -> float | None:
        """The largest capacity of a link out of ``site``; None if one is unconstrained or there is none."""
        widths = [self.link_capacity_kbps[li] for li in self._links_of(self.site_index(site))]
        if not widths or any(w is None for w in widths):
            return None
        return max(widths) / 1000.0

    def tree(self, source: int) -> SourceTree:
        """The least-delay tree from site index ``source`` (cached)."""
        trees = self._trees
        found = trees.get(source)
        if found is not None:
            trees.move_to_end(source)
            return found
        dist, pred = dijkstra(self._csr, directed=True, indices=source, return_predecessors=True)
        found = self._make_tree(source, dist, pred)
        trees[source] = found
        self.trees_computed += 1
        if len(trees) > self._cache_sources:
            trees.popitem(last=False)
        return found

    def _make_tree(self, source: int, dist: np.ndarray, pred: np.ndarray) -> SourceTree:
        reachable = np.isfinite(dist)
        delay_us, hops = np.divmod(np.where(reachable, dist, 0.0), self._scale)
        delay_s = np.where(reachable, delay_us / 1e6, np.inf)
        hops = np.where(reachable, hops, -1).astype(self._hop_dtype)
        walk = array("i")
        walk.frombytes(pred.astype(np.int32).tobytes())
        return SourceTree(source, delay_s, hops, walk)

    def route(self, source: str | int, target: str | int) -> Route | None:
        """The least-delay route from ``source`` to ``target`` (names or indices); None if unreachable."""
        s = source if isinstance(source, (int, np.integer)) else self.site_index(source)
        t = target if isinstance(target, (int, np.integer)) else self.site_index(target)
        key = (int(s), int(t))
        if key in self._routes:
            return self._routes[key]
        found = self._route_from_pred(key[0], key[1], self.tree(key[0]).pred)
        if len(self._routes) > 1_000_000:
            self._routes.clear()
        self._routes[key] = found
        return found

    def alternate(self, source: str | int, target: str | int) -> Route | None:
        """The least-delay route sharing no link with :meth:`route`, within twice its delay + 10 ms; else None."""
        s = source if isinstance(source, (int, np.integer)) else self.site_index(source)
        t = target if isinstance(target, (int, np.integer)) else self.site_index(target)
        key = (int(s), int(t))
        if key in self._alternates:
            return self._alternates[key]
        primary = self.route(key[0], key[1])
        found = None
        if primary is not None and primary.links:
            data = self._csr.data.copy()
            for li in primary.links:
                u, v = self.links[li]
                for a, b in ((self.index[u], self.index[v]), (self.index[v], self.index[u])):
                    data[self._position(a, b)] = np.inf
            avoiding = csr_matrix((data, self._csr.indices, self._csr.indptr), shape=self._csr.shape)
            reach_us = 2 * round(primary.delay_ms * 1000) + ALTERNATE_SLACK_US
            _, pred = dijkstra(avoiding, directed=True, indices=key[0], return_predecessors=True,
                               limit=(reach_us + 1) * self._scale)
            found = self._route_from_pred(key[0], key[1], pred.tolist())
            self.alternates_computed += 1
        if len(self._alternates) > 200_000:
            self._alternates.clear()
        self._alternates[key] = found
        return found

    def routes(self, source: str | int, target: str | int) -> tuple[Route, ...]:
        """The candidate routes: least-delay, then the link-disjoint alternate if any."""
        primary = self.route(source, target)
        if primary is None:
            return ()
        alternate = self.alternate(source, target)
        return (primary,) if alternate is None else (primary, alternate)

    def _position(self, a: int, b: int) -> int:
        csr = self._csr
        lo, hi = csr.indptr[a], csr.indptr[a + 1]
        return int(lo + np.searchsorted(csr.indices[lo:hi], b))

    def _route_from_pred(self, s: int, t: int, pred) -> Route | None:
        if s == t:
            return Route((self.sites[s],), (), 0.0, None)
        if pred[t] < 0:
            return None
        nodes = [t]
        x = t
        while x != s:
            x = pred[x]
            nodes.append(x)
        nodes.reverse()
        pair_link = self._pair_link
        links = tuple(pair_link[(a, b)] for a, b in zip(nodes, nodes[1:]))
        delay = 0.0
        cap = None
        for li in links:
            delay += self.link_delay_ms[li]
            kbps = self.link_capacity_kbps[li]
            if kbps is not None and (cap is None or kbps < cap):
                cap = kbps
        return Route(tuple(self.sites[i] for i in nodes), links, delay, None if cap is None else cap / 1000.0)
