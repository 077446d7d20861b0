"""Traffic-engineered path computation on the site graph.

Objectives (``objective=``):

* ``"min_delay"`` — least total one-way delay; ties go to fewer hops.
* ``"min_hops"`` — fewest links; ties go to less delay.

Constraints, combinable:

* ``bandwidth_mbps`` — CSPF: links whose *residual* capacity is below the
  demand are pruned before the search. Residual per link comes from
  ``residual_mbps`` (a dict keyed by site pair, either order), else the
  link's ``rate_mbps``; a link with neither is unconstrained.
  :func:`residual_capacity` turns reservations into that dict.
* ``exclude_links`` — links the path must avoid (a failed or protected link).
* ``waypoints`` — sites to visit in order. The best leg between consecutive
  waypoints is computed; if the concatenation is loop-free it is optimal.
  Otherwise two greedy passes (legs front to back, then back to front)
  recompute each leg avoiding the sites of legs already fixed and the other
  waypoints, and the cheaper result wins. Neither is exact (the exact
  problem is a hard one): they can miss a loop-free route, and then the
  error says the waypoints could not be visited without a loop.

Delays are compared in whole microseconds, as in the IGP, and remaining
ties go to the lexicographically smallest sequence of site ids, so answers
are deterministic. :func:`disjoint_paths` returns k link-disjoint paths of
least *total* cost (Suurballe's problem) by successive shortest paths on the
residual graph (Bhandari's form, Bellman-Ford, one unit of flow per path);
it is exact for the total, and the individual paths are an optimal set, not
each individually shortest. Node-disjointness is not enforced.

Give the topology's shared :class:`~cpn_net.srv6.igp.Igp` (``igp=``) when
asking many questions of one graph: its link state keeps the integer arc
costs and, per objective and source, the tree of best unconstrained paths
(one Dijkstra run answers every target), so most requests are lookups. The
answers are exactly those computed without it.

Infeasible requests raise :class:`~cpn_net.srv6.errors.InfeasiblePath` naming
the constraint and the link(s) at fault, e.g. ``no path beijing->zhongwei
with 80 Mbit/s: bottleneck link beijing-zhangjiakou has 50 Mbit/s residual``.

Examples
--------
>>> import networkx as nx
>>> G = nx.Graph()
>>> G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2}), ("c", {"id": 3})])
>>> G.add_edge("a", "b", delay_ms=1.0, rate_mbps=50.0)
>>> G.add_edge("b", "c", delay_ms=1.0, rate_mbps=100.0)
>>> G.add_edge("a", "c", delay_ms=5.0, rate_mbps=100.0)
>>> best_path(G, "a", "c")
Path(sites=('a', 'b', 'c'), delay_ms=2.0, hops=2, bottleneck_mbps=50.0)
>>> best_path(G, "a", "c", bandwidth_mbps=80).sites
('a', 'c')
>>> best_path(G, "a", "c", bandwidth_mbps=120)
Traceback (most recent call last):
...
cpn_net.srv6.errors.InfeasiblePath: no path a->c with 120 Mbit/s: bottleneck link a-c has 100 Mbit/s residual
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Mapping, Sequence

import networkx as nx

from cpn_net.srv6.errors import InfeasiblePath, PathError
from cpn_net.srv6.igp import Igp, LinkState, check_site, link_metric_us, link_state_of, site_id

OBJECTIVES = ("min_delay", "min_hops")
_EPSILON_MBPS = 1e-9  # residual equal to the demand fits despite float noise


@dataclass(frozen=True)
class Path:
    """A path through the site graph and what it costs.

    ``bottleneck_mbps`` is the least residual capacity along it; None when
    no link on it is constrained (and for the one-site path).
    """

    sites: tuple[str, ...]
    delay_ms: float
    hops: int
    bottleneck_mbps: float | None

    @property
    def links(self) -> tuple[tuple[str, str], ...]:
        """Consecutive site pairs, in travel direction."""
        return tuple(zip(self.sites, self.sites[1:]))


def link_key(u: Hashable, v: Hashable) -> tuple:
    """The canonical (sorted) key of an undirected link.

    Examples
    --------
    >>> link_key("b", "a")
    ('a', 'b')
    """
    return (u, v) if str(u) <= str(v) else (v, u)


def residual_capacity(G: nx.Graph, reservations_mbps: Mapping | None = None, *, igp: Igp | None = None) -> dict:
    """Residual capacity per link: ``rate_mbps`` minus reservations (None = unconstrained).

    Parameters
    ----------
    G : networkx.Graph
    reservations_mbps : mapping, optional
        ``{(site, site): Mbit/s reserved}``, either order; several entries
        for one link add up.
    igp : Igp, optional
        The shared :class:`~cpn_net.srv6.igp.Igp` of ``G``: its cached link
        rates save walking the graph.

    Returns
    -------
    dict
        ``{link_key(u, v): residual Mbit/s or None}`` for every link.

    Raises
    ------
    PathError
        If a reservation names a link that does not exist or is not a number.

    Examples
    --------
    >>> G = nx.Graph(); G.add_edge("a", "b", rate_mbps=100.0); G.add_edge("b", "c", rate_mbps=None)
    >>> residual_capacity(G, {("b", "a"): 30})
    {('a', 'b'): 70.0, ('b', 'c'): None}
    """
    reserved: dict = {}
    for pair, mbps in (reservations_mbps or {}).items():
        u, v = pair
        if not G.has_edge(u, v):
            raise PathError(f"reservation on link {u}-{v}: no such link in the topology")
        if isinstance(mbps, bool) or not isinstance(mbps, (int, float)) or not math.isfinite(mbps):
            raise PathError(f"reservation on link {u}-{v}: {mbps!r} Mbit/s must be a finite number")
        reserved[link_key(u, v)] = reserved.get(link_key(u, v), 0.0) + mbps
    rates = _link_rates(igp.link_state()) if igp is not None and igp.G is G else None
    if rates is not None:
        if not reserved:
            return dict(rates)  # x - 0.0 == x, bit for bit: the same values as below
        return {key: None if rate is None else rate - reserved.get(key, 0.0) for key, rate in rates.items()}
    result = {}
    for u, v, rate in G.edges(data="rate_mbps"):
        key = link_key(u, v)
        result[key] = None if rate is None else float(rate) - reserved.get(key, 0.0)
    return result


def _link_rates(state: LinkState) -> dict | None:
    """``{link_key: float(rate_mbps) or None}`` in edge order, cached; None if a rate is not a number."""
    key = ("paths.rates",)
    if key not in state.memo:
        try:
            rates = {}
            for u, v, rate in state.G.edges(data="rate_mbps"):
                rates[link_key(u, v)] = None if rate is None else float(rate)
        except (TypeError, ValueError, OverflowError):
            rates = None  # residual_capacity's own loop raises the error
        state.memo[key] = rates
    return state.memo[key]


def path_along(G: nx.Graph, sites: Sequence[str], residual_mbps: Mapping | None = None) -> Path:
    """Measure a given site sequence: delay, hops and bottleneck.

    Raises
    ------
    PathError
        If a site is unknown or two consecutive sites are not linked.

    Examples
    --------
    >>> G = nx.Graph(); G.add_edge("a", "b", delay_ms=1.5, rate_mbps=10.0)
    >>> path_along(G, ["a", "b"])
    Path(sites=('a', 'b'), delay_ms=1.5, hops=1, bottleneck_mbps=10.0)
    """
    sites = tuple(sites)
    if not sites:
        raise PathError("a path needs at least one site")
    for site in sites:
        check_site(G, site)
    delay_ms = 0.0
    bottleneck = None
    for u, v in zip(sites, sites[1:]):
        if not G.has_edge(u, v):
            raise PathError(f"path {'->'.join(map(str, sites))}: sites {u} and {v} are not linked")
        delay_ms += float(G.edges[u, v].get("delay_ms", 0.0))
        residual = _residual(G, u, v, residual_mbps)
        if residual is not None:
            bottleneck = residual if bottleneck is None else min(bottleneck, residual)
    return Path(sites, delay_ms, len(sites) - 1, bottleneck)


def best_path(G: nx.Graph, source: str, target: str, *, objective: str = "min_delay",
              bandwidth_mbps: float | None = None, residual_mbps: Mapping | None = None,
              waypoints: Sequence[str] = (), exclude_links: Iterable[tuple[str, str]] = (),
              igp: Igp | None = None) -> Path:
    """The best path from ``source`` to ``target`` under the objective and constraints.

    Parameters
    ----------
    G : networkx.Graph
        Sites (attribute ``id``) and links (``delay_ms``, ``rate_mbps``).
    source, target : str
    objective : {"min_delay", "min_hops"}
    bandwidth_mbps : float, optional
        Demand; links with less residual capacity are pruned (CSPF).
    residual_mbps : mapping, optional
        Residual per link, ``{(u, v): Mbit/s}`` either order; links absent
        fall back to their ``rate_mbps``.
    waypoints : sequence of str
        Sites to visit in this order between source and target.
    exclude_links : iterable of (str, str)
        Links to avoid.
    igp : Igp, optional
        The shared :class:`~cpn_net.srv6.igp.Igp` of ``G``. Its cache keeps
        the graph's costs and, per objective and source, the unconstrained
        best paths to every site, so repeated requests are lookups.

    Returns
    -------
    Path

    Raises
    ------
    PathError
        If a site or link is unknown or an argument is out of range.
    InfeasiblePath
        If no path satisfies the request; ``constraint`` and ``links`` say why.

    Examples
    --------
    >>> G = nx.cycle_graph(["a", "b", "c", "d"])
    >>> nx.set_node_attributes(G, {"a": 1, "b": 2, "c": 3, "d": 4}, "id")
    >>> nx.set_edge_attributes(G, 1.0, "delay_ms")
    >>> best_path(G, "a", "c").sites, best_path(G, "a", "c", waypoints=["d"]).sites
    (('a', 'b', 'c'), ('a', 'd', 'c'))
    """
    search = _Search(G, objective, bandwidth_mbps, residual_mbps, exclude_links, igp)
    for site in (source, target, *waypoints):
        check_site(G, site)
    if not waypoints:
        return search.measure(search.leg(source, target))
    stops = [source, *waypoints, target]
    for a, b in zip(stops, stops[1:]):
        if a == b:
            raise PathError(f"waypoints {'->'.join(stops)}: site {a!r} follows itself; drop the repeat")
    legs = [search.leg(a, b, context=f" (leg {a}->{b} of {'->'.join(stops)})") for a, b in zip(stops, stops[1:])]
    sites = _concatenate(legs)
    if len(set(sites)) == len(sites):
        return search.measure(sites)
    return search.measure(_loop_free_legs(search, stops, sites))


def disjoint_paths(G: nx.Graph, source: str, target: str, k: int = 2, *, objective: str = "min_delay",
                   bandwidth_mbps: float | None = None, residual_mbps: Mapping | None = None,
                   exclude_links: Iterable[tuple[str, str]] = (), igp: Igp | None = None) -> tuple[Path, ...]:
    """``k`` link-disjoint paths of least total cost (Suurballe / Bhandari).

    Each path must satisfy the bandwidth constraint on its own links. The
    other parameters, ``igp`` included, are those of :func:`best_path`.

    Returns
    -------
    tuple of Path
        Sorted best first.

    Raises
    ------
    InfeasiblePath
        With ``constraint="k"`` and the cut links when fewer than ``k``
        disjoint paths exist; with the single-path reason when none does.

    Examples
    --------
    >>> G = nx.cycle_graph(["a", "b", "c", "d"])
    >>> nx.set_node_attributes(G, {"a": 1, "b": 2, "c": 3, "d": 4}, "id")
    >>> nx.set_edge_attributes(G, 1.0, "delay_ms")
    >>> [p.sites for p in disjoint_paths(G, "a", "c")]
    [('a', 'b', 'c'), ('a', 'd', 'c')]
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise PathError(f"k={k!r} must be an int >= 1")
    check_site(G, source)
    check_site(G, target)
    if source == target:
        raise PathError(f"disjoint paths {source}->{target}: source and target must differ")
    search = _Search(G, objective, bandwidth_mbps, residual_mbps, exclude_links, igp)
    search.leg(source, target)  # raises the single-path reason if there is no path at all
    arcs = [(a, b) for u, v in G.edges for a, b in ((u, v), (v, u)) if search.allowed(u, v)]
    arcs.sort(key=lambda arc: (search.ids[arc[0]], search.ids[arc[1]]))
    cost = {arc: search.cost(*arc) for arc in arcs}
    flow: dict = {}  # link_key -> (x, y): one unit of flow from x to y
    for found in range(k):
        pred = _bellman_ford(source, arcs, cost, flow)
        if target not in pred:
            raise _too_few_disjoint(search, source, target, k, found, set(pred) | {source}, flow)
        node = target
        while node != source:
            x = pred[node]
            key = link_key(x, node)
            flow[key] = None if flow.get(key) == (node, x) else (x, node)
            node = x
    paths = [search.measure(p) for p in _decompose(source, target, flow)]
    return tuple(sorted(paths, key=lambda p: (search.total(p.sites), [search.ids[s] for s in p.sites])))


class _Search:
    """One request's constraints over the graph's (cached) link state and integer arc costs."""

    def __init__(self, G, objective, bandwidth_mbps, residual_mbps, exclude_links, igp=None):
        if objective not in OBJECTIVES:
            raise PathError(f"objective={objective!r} must be one of {', '.join(OBJECTIVES)}")
        if bandwidth_mbps is not None and (isinstance(bandwidth_mbps, bool)
                                           or not isinstance(bandwidth_mbps, (int, float))
                                           or not math.isfinite(bandwidth_mbps) or bandwidth_mbps <= 0):
            raise PathError(f"bandwidth_mbps={bandwidth_mbps!r} must be a number > 0, or None for no constraint")
        self.G = G
        self.objective = objective
        self.bandwidth_mbps = bandwidth_mbps
        self.residual_mbps = residual_mbps
        self.excluded = set()
        for pair in exclude_links:
            u, v = pair
            if not G.has_edge(u, v):
                raise PathError(f"exclude_links: {u}-{v} is not a link of the topology")
            self.excluded.add(link_key(u, v))
        state = self.state = link_state_of(G, igp)
        if not state.ids_valid:
            for site in state.ids:
                site_id(G, site)  # raises, naming the first bad site
        if not state.metrics_valid:
            for u, v in G.edges:
                link_metric_us(G, u, v)  # raises, naming the first bad link
        self.ids = state.ids
        self._cost, self._arcs = _arc_costs(state, objective)
        if bandwidth_mbps is None and not self.excluded:
            self._allowed = None  # every link is allowed: unconstrained searches are cached
        else:
            verdicts: dict = {}

            def allowed(u, v):
                verdict = verdicts.get((u, v))
                if verdict is None:
                    verdict = verdicts[(u, v)] = self.allowed(u, v)
                return verdict

            self._allowed = allowed

    def cost(self, u, v) -> int:
        return self._cost[(u, v)]

    def total(self, sites) -> int:
        return sum(self.cost(u, v) for u, v in zip(sites, sites[1:]))

    def residual(self, u, v) -> float | None:
        """As :func:`_residual`, reading the rate from the link state."""
        residual_mbps = self.residual_mbps
        if residual_mbps is not None:
            if (u, v) in residual_mbps:
                return residual_mbps[(u, v)]
            if (v, u) in residual_mbps:
                return residual_mbps[(v, u)]
        rate = self.state.rate_mbps[(u, v)]
        return None if rate is None else float(rate)

    def fits(self, u, v) -> bool:
        if self.bandwidth_mbps is None:
            return True
        residual = self.residual(u, v)
        return residual is None or residual >= self.bandwidth_mbps - _EPSILON_MBPS

    def allowed(self, u, v) -> bool:
        return link_key(u, v) not in self.excluded and self.fits(u, v)

    def measure(self, sites) -> Path:
        """:func:`path_along` for sites the search found (so known and linked)."""
        delays = self.state.delay_ms
        delay_ms = 0.0
        bottleneck = None
        for u, v in zip(sites, sites[1:]):
            delay_ms += delays[(u, v)]
            residual = self.residual(u, v)
            if residual is not None:
                bottleneck = residual if bottleneck is None else min(bottleneck, residual)
        return Path(tuple(sites), delay_ms, len(sites) - 1, bottleneck)

    def leg(self, source, target, banned=frozenset(), context="") -> tuple:
        """Best sites source..target avoiding ``banned``, or InfeasiblePath with the reason."""
        if source == target:
            return (source,)
        if self._allowed is None:
            found = _tree_path(self._best_from(source), target)
            # Labels are the least (cost, id sequence) over all simple paths, so
            # a best path that avoids the banned sites is also the best without them.
            if found is not None and not any(site in banned for site in found):
                return found
            if found is None and not banned:
                raise self._why_not(source, target, banned, context)
        found = _dijkstra(self._arcs, self.ids, source, target, self._allowed, banned)
        if found is not None:
            return found
        raise self._why_not(source, target, banned, context)

    def _best_from(self, source) -> dict:
        """The tree of best unconstrained paths from source (:func:`_dijkstra`'s ``reached``), cached."""
        key = ("paths.best_from", self.objective, source)
        tree = self.state.memo.get(key)
        if tree is None:
            tree = {}
            _dijkstra(self._arcs, self.ids, source, None, None, frozenset(), reached=tree)
            self.state.memo[key] = tree  # only once complete: another thread may read it
        return tree

    def _why_not(self, source, target, banned, context) -> InfeasiblePath:
        G = self.G
        where = f" without revisiting {', '.join(sorted(map(str, banned)))}" if banned else ""
        if _dijkstra(self._arcs, self.ids, source, target, None, banned) is None:
            return InfeasiblePath(f"no path {source}->{target}{where}{context}: the sites are not connected",
                                  source=source, target=target, constraint="connectivity")
        structural = lambda u, v: link_key(u, v) not in self.excluded  # noqa: E731
        if _dijkstra(self._arcs, self.ids, source, target, structural, banned) is None:
            excluded = tuple(sorted(self.excluded, key=str))
            names = ", ".join(f"{u}-{v}" for u, v in excluded)
            return InfeasiblePath(f"no path {source}->{target}{where}{context} avoiding links {names}: "
                                  "the excluded links cut them apart",
                                  source=source, target=target, constraint="exclude_links", links=excluded)
        width, (u, v) = _widest_bottleneck(G, source, target, structural, banned, self.residual_mbps)
        return InfeasiblePath(f"no path {source}->{target}{where}{context} with {self.bandwidth_mbps:g} Mbit/s: "
                              f"bottleneck link {u}-{v} has {width:g} Mbit/s residual",
                              source=source, target=target, constraint="bandwidth_mbps", links=((u, v),))


def _arc_costs(state: LinkState, objective: str) -> tuple[dict, dict]:
    """Integer arc costs ``{(u, v): cost}`` and ``{u: ((v, cost, id of v), ...)}``, cached per objective."""
    key = ("paths.costs", objective)
    found = state.memo.get(key)
    if found is None:
        metric = state.metric_us
        # Costs fold the tie-breaking metric in below the main one, as one int:
        # the scale exceeds any total the tie-breaker can reach over k paths.
        if objective == "min_delay":
            scale = state.number_of_edges + 1
            cost = {arc: us * scale + 1 for arc, us in metric.items()}
        else:
            scale = sum(metric.values()) // 2 + 1
            cost = {arc: scale + us for arc, us in metric.items()}
        ids = state.ids
        arcs = {u: tuple((v, cost[(u, v)], ids[v]) for v in neighbours) for u, neighbours in state.adj.items()}
        found = state.memo[key] = (cost, arcs)
    return found


def _residual(G, u, v, residual_mbps) -> float | None:
    if residual_mbps is not None:
        for key in ((u, v), (v, u)):
            if key in residual_mbps:
                return residual_mbps[key]
    rate = G.edges[u, v].get("rate_mbps")
    return None if rate is None else float(rate)


def _dijkstra(arcs: Mapping, ids: Mapping, source, target, allowed: Callable | None, banned,
              reached: dict | None = None) -> tuple | None:
    """Least (cost, site-id sequence) simple path; labels carry whole paths for the tie-break.

    ``arcs`` is :func:`_arc_costs`' adjacency; ``allowed`` None allows every
    link. With ``reached``, every settled site is recorded there with the
    site before it on its path (None for the source): a site's path extends
    the path of the site it was reached from, so they form a tree
    (:func:`_tree_path`). Give ``target=None`` to settle all.
    """
    settled = set()
    heap = [(0, (ids[source],), (source,))]
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        total, id_seq, sites = pop(heap)
        u = sites[-1]
        if u in settled:
            continue
        settled.add(u)
        if reached is not None:
            reached[u] = sites[-2] if len(sites) > 1 else None
        if u == target:
            return sites
        for v, cost, vid in arcs[u]:
            if v in settled or v in banned or (allowed is not None and not allowed(u, v)):
                continue
            push(heap, (total + cost, id_seq + (vid,), sites + (v,)))
    return None


def _tree_path(reached: dict, target) -> tuple | None:
    """The path to ``target`` in a tree from :func:`_dijkstra`; None if it was not reached."""
    if target not in reached:
        return None
    sites = [target]
    before = reached[target]
    while before is not None:
        sites.append(before)
        before = reached[before]
    return tuple(reversed(sites))


def _widest_bottleneck(G, source, target, allowed, banned, residual_mbps) -> tuple[float, tuple]:
    """Capacity of the widest path and its narrowest link (the first such link on it)."""
    inf = math.inf
    best = {source: inf}
    heap = [(-inf, site_id(G, source), (source,))]
    done = set()
    while heap:
        neg_width, _id, sites = heapq.heappop(heap)
        u = sites[-1]
        if u in done:
            continue
        done.add(u)
        if u == target:
            links = list(zip(sites, sites[1:]))
            widths = [_residual(G, a, b, residual_mbps) for a, b in links]
            narrowest = min(range(len(links)), key=lambda i: inf if widths[i] is None else widths[i])
            return -neg_width, links[narrowest]
        for v in G.adj[u]:
            if v in done or v in banned or not allowed(u, v):
                continue
            residual = _residual(G, u, v, residual_mbps)
            width = min(-neg_width, inf if residual is None else residual)
            if width > best.get(v, -inf):
                best[v] = width
                heapq.heappush(heap, (-width, site_id(G, v), sites + (v,)))
    raise AssertionError("widest path searched only when a path exists")


def _concatenate(legs: Sequence[tuple]) -> tuple:
    sites = list(legs[0])
    for leg in legs[1:]:
        sites.extend(leg[1:])
    return tuple(sites)


def _loop_free_legs(search: _Search, stops: list, looping: tuple) -> tuple:
    """Recompute legs avoiding used sites, front to back and back to front; keep the cheaper."""
    found = []
    failures = []
    for backwards in (False, True):
        try:
            found.append(_greedy_legs(search, stops, backwards))
        except InfeasiblePath as err:
            failures.append(err)
    if found:
        return min(found, key=lambda sites: (search.total(sites), [search.ids[s] for s in sites]))
    repeated = sorted({s for s in looping if looping.count(s) > 1}, key=str)
    err = failures[0]
    raise InfeasiblePath(
        f"no loop-free path {'->'.join(stops)}: the best legs revisit {', '.join(map(str, repeated))} "
        f"({'->'.join(looping)}), and the greedy loop-free passes failed: {err}",
        source=stops[0], target=stops[-1], constraint="waypoints", links=err.links) from err


def _greedy_legs(search: _Search, stops: list, backwards: bool) -> tuple:
    """Each leg in turn avoids the sites of legs already fixed and the stops not yet reached."""
    legs: dict = {}
    order = range(len(stops) - 2, -1, -1) if backwards else range(len(stops) - 1)
    for i in order:
        a, b = stops[i], stops[i + 1]
        used = {s for leg in legs.values() for s in leg}
        banned = (used | set(stops[:i] if backwards else stops[i + 2:])) - {a, b}
        legs[i] = search.leg(a, b, frozenset(banned))
    return _concatenate([legs[i] for i in range(len(stops) - 1)])


def _bellman_ford(source, arcs, cost, flow) -> dict:
    """Predecessors of the cheapest residual paths from source (strict improvements only)."""
    dist = {source: 0}
    pred: dict = {}
    for _ in range(len(arcs) + 1):
        changed = False
        for x, y in arcs:
            if x not in dist:
                continue
            used = flow.get(link_key(x, y))
            if used == (x, y):
                continue  # the link's one unit already flows this way
            # Sending against the link's flow cancels it, refunding its cost.
            step = -cost[(y, x)] if used == (y, x) else cost[(x, y)]
            if dist[x] + step < dist.get(y, math.inf):
                dist[y] = dist[x] + step
                pred[y] = x
                changed = True
        if not changed:
            break
    return pred


def _decompose(source, target, flow) -> list[tuple]:
    out: dict = {}
    for direction in flow.values():
        if direction is not None:
            out.setdefault(direction[0], []).append(direction[1])
    paths = []
    while out.get(source):
        sites = [source]
        while sites[-1] != target:
            nxt = out[sites[-1]].pop()
            if nxt in sites:
                # A zero-cost cycle in the flow: drop it, the rest still
                # conserves flow. Costs here are positive, so this is a guard.
                del sites[sites.index(nxt) + 1:]
            else:
                sites.append(nxt)
        paths.append(tuple(sites))
    return paths


def _too_few_disjoint(search: _Search, source, target, k, found, reachable, flow) -> InfeasiblePath:
    G = search.G
    cut = []
    for u, v in G.edges:
        if (u in reachable) == (v in reachable):
            continue
        key = link_key(u, v)
        if key in search.excluded:
            why = "excluded"
        elif not search.fits(u, v):
            why = f"{search.residual(u, v):g} Mbit/s residual < {search.bandwidth_mbps:g}"
        else:
            why = "in use by another path"  # allowed yet crossing the cut: saturated
        cut.append((key, why))
    cut.sort(key=lambda item: str(item[0]))
    with_bw = f" with {search.bandwidth_mbps:g} Mbit/s" if search.bandwidth_mbps is not None else ""
    names = ", ".join(f"{u}-{v} ({why})" for (u, v), why in cut)
    return InfeasiblePath(f"only {found} link-disjoint path(s) {source}->{target}{with_bw} exist (asked for {k}): "
                          f"every further path crosses one of {names}",
                          source=source, target=target, constraint="k", links=tuple(key for key, _ in cut))
