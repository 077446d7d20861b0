"""Admission control: a slice is admitted only if its guarantees fit the residual capacity.

For each pair of member sites (:func:`cpn_net.slicing.intents.site_pairs`)
one path is chosen and ``rate_mbps`` reserved on each of its links, in both
directions (the reverse path carries the reverse demand). Pairs are placed
one after another in the slice's site order, each seeing the residual left by
the earlier ones (a greedy placement: a refusal means this order found no
fit, not that no multi-commodity solution exists).

Path choice per slice kind:

* ``latency`` — the least-delay path among those with ``rate_mbps`` of
  residual on every link (CSPF, :func:`cpn_net.srv6.paths.best_path`).
* ``bulk`` — the widest path (maximum bottleneck residual), ties to least
  delay then to the smallest site ids (:func:`widest_path`). If that path
  breaks ``max_latency_ms``, the least-delay path with room is used instead.

Then the path is checked against ``max_latency_ms`` (sum of one-way link
delays) and ``max_loss_pct`` (``1 - prod(1 - loss)`` over its links).

Marks. The switches mark a slice's packets with a 4-bit slice mark (DSCP bits
1..4, :mod:`cpn_net.slicing.realise`), and the routers' queues tell slices
apart by it on each WAN interface. The mark only has to be unique among the
slices sharing a link, so the admitted slice takes the smallest mark 1..15 no
admitted slice on any of its links holds (first-fit colouring of the graph
of slices that share a link): any number of slices whose paths do not
overlap reuse the 15 marks. When every mark is held on the slice's links the
slice is refused, naming its link with the most slices.

All or nothing: a refusal (:class:`~cpn_net.slicing.errors.SliceRefused`)
reserves nothing; the function is pure and never changes ``existing``. A
bandwidth refusal names the bottleneck: the narrowest link of the widest
path, its residual and the shortfall (the rate minus that residual, the
least any path falls short by). :func:`release` frees a slice's reservations.
Links with ``rate_mbps`` None are unconstrained.

Examples
--------
>>> import networkx as nx
>>> from cpn_net.model.topology import SliceSpec
>>> G = nx.Graph()
>>> G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2}), ("c", {"id": 3})])
>>> G.add_edge("a", "b", delay_ms=1.0, rate_mbps=50.0)
>>> G.add_edge("b", "c", delay_ms=1.0, rate_mbps=100.0)
>>> G.add_edge("a", "c", delay_ms=5.0, rate_mbps=100.0)
>>> gold = SliceSpec("gold", 1, ("a", "c"), ("u1-1", "u3-1"), ("a", "c"), 40.0)
>>> adm = admit(G, {}, gold)
>>> adm.path("a", "c").sites, adm.path("c", "a").sites, adm.reservations
(('a', 'b', 'c'), ('c', 'b', 'a'), {('a', 'b'): 40.0, ('b', 'c'): 40.0})
>>> silver = SliceSpec("silver", 2, ("a", "b"), ("u1-1", "u2-1"), ("a", "b"), 120.0, isolation=False)
>>> admit(G, {"gold": adm}, silver)
Traceback (most recent call last):
...
cpn_net.slicing.errors.SliceRefused: slice silver refused: no path a->b with 120 Mbit/s; bottleneck link b-c has 60 Mbit/s residual, 60 Mbit/s short; lower rate_mbps, raise the link's rate_mbps or release another slice
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

import networkx as nx

from cpn_net.model.topology import SliceSpec
from cpn_net.slicing.errors import SliceRefused, SlicingError
from cpn_net.slicing.intents import site_pairs
from cpn_net.srv6.errors import InfeasiblePath, PathError
from cpn_net.srv6.paths import Path, best_path, link_key, path_along, residual_capacity
from cpn_net.telemetry.marking import MAX_SLICE_MARK

#: Slice marks are 4 DSCP bits: marks 1..15 (0 is "no slice"; :mod:`cpn_net.telemetry.marking`).
MAX_MARK = MAX_SLICE_MARK

_EPSILON_MBPS = 1e-9  # a residual equal to the rate fits despite float noise


@dataclass(frozen=True)
class Admission:
    """An admitted slice: its path per member-site pair and what it reserves.

    Attributes
    ----------
    slice : str
    slice_id : int
    rate_mbps : float
    paths : dict
        ``{(source site, target site): Path}`` for every ordered pair; the
        reverse of a pair's path is the reversed path. ``bottleneck_mbps``
        is the residual the path had before this slice.
    reservations : dict
        ``{link_key(u, v): Mbit/s}`` this slice holds on each link, in each
        direction (the sum over the pairs whose path crosses it).
    mark : int
        The slice's mark on the wire (1..:data:`MAX_MARK`), unique among the
        admitted slices that share a link with it.
    """

    slice: str
    slice_id: int
    rate_mbps: float
    paths: dict = field(default_factory=dict)
    reservations: dict = field(default_factory=dict)
    mark: int = 1

    @property
    def links(self) -> frozenset:
        """The links (``link_key``) any of the slice's paths crosses."""
        return frozenset(link_key(u, v) for path in self.paths.values() for u, v in path.links)

    def path(self, source: str, target: str) -> Path:
        """The path of the demand ``source -> target``.

        Raises
        ------
        SlicingError
            If the two are not a pair of the slice's member sites.
        """
        try:
            return self.paths[(source, target)]
        except KeyError:
            raise SlicingError(f"slice {self.slice}: no demand {source}->{target}; "
                               f"pairs are {', '.join('->'.join(p) for p in self.paths) or 'none'}") from None

    def directed_mbps(self) -> dict:
        """``{(u, v): Mbit/s}`` the slice sends from ``u`` to ``v`` over link u-v.

        Examples
        --------
        >>> p = Path(("a", "b"), 1.0, 1, None)
        >>> Admission("s", 1, 5.0, {("a", "b"): p, ("b", "a"): Path(("b", "a"), 1.0, 1, None)}).directed_mbps()
        {('a', 'b'): 5.0, ('b', 'a'): 5.0}
        """
        out: dict = {}
        for path in self.paths.values():
            for u, v in path.links:
                out[(u, v)] = out.get((u, v), 0.0) + self.rate_mbps
        return out


def reserved_mbps(admissions: Iterable[Admission]) -> dict:
    """Total reservation per link (``link_key``) over admitted slices.

    Examples
    --------
    >>> a = Admission("s", 1, 5.0, reservations={("a", "b"): 5.0})
    >>> b = Admission("t", 2, 2.0, reservations={("a", "b"): 2.0, ("b", "c"): 2.0})
    >>> reserved_mbps([a, b])
    {('a', 'b'): 7.0, ('b', 'c'): 2.0}
    """
    total: dict = {}
    for admission in admissions:
        for key, mbps in admission.reservations.items():
            total[key] = total.get(key, 0.0) + mbps
    return total


def release(existing: Mapping[str, Admission], name: str) -> dict:
    """The admitted slices without ``name``: its reservations are freed.

    Raises
    ------
    SlicingError
        If no slice of that name is admitted.

    Examples
    --------
    >>> release({"s": Admission("s", 1, 5.0)}, "s")
    {}
    """
    if name not in existing:
        raise SlicingError(f"slice {name!r} is not admitted; admitted: {', '.join(existing) or 'none'}")
    return {k: v for k, v in existing.items() if k != name}


def widest_path(G: nx.Graph, source: str, target: str, residual_mbps: Mapping | None = None) -> Path:
    """The path with the largest bottleneck residual; ties to least delay, then smallest site ids.

    The widest bottleneck W is the largest residual value at which ``source``
    and ``target`` stay connected using only links with at least W (links
    without a rate count as unbounded); the answer is then the least-delay
    path over those links (:func:`cpn_net.srv6.paths.best_path`).

    Parameters
    ----------
    G : networkx.Graph
        Sites (attribute ``id``) and links (``delay_ms``, ``rate_mbps``).
    source, target : str
    residual_mbps : mapping, optional
        ``{(u, v): Mbit/s or None}`` either order; absent links use ``rate_mbps``.

    Returns
    -------
    Path

    Raises
    ------
    PathError
        If a site is unknown; :class:`~cpn_net.srv6.errors.InfeasiblePath` if
        the two are not connected.

    Examples
    --------
    >>> G = nx.Graph()
    >>> G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2}), ("c", {"id": 3})])
    >>> G.add_edge("a", "b", delay_ms=1.0, rate_mbps=50.0)
    >>> G.add_edge("b", "c", delay_ms=1.0, rate_mbps=100.0)
    >>> G.add_edge("a", "c", delay_ms=5.0, rate_mbps=80.0)
    >>> widest_path(G, "a", "c")
    Path(sites=('a', 'c'), delay_ms=5.0, hops=1, bottleneck_mbps=80.0)
    """
    residual = _residuals(G, residual_mbps)
    widths = sorted({w for w in residual.values() if w is not None}, reverse=True)
    for width in [math.inf, *widths]:
        narrow = [key for key, w in residual.items() if w is not None and w < width]
        kept = nx.restricted_view(G, [], narrow)
        if source in kept and target in kept and nx.has_path(kept, source, target):
            return best_path(G, source, target, objective="min_delay", residual_mbps=residual_mbps,
                             exclude_links=narrow)
    return best_path(G, source, target, residual_mbps=residual_mbps)  # raises: not connected


def path_loss_pct(G: nx.Graph, path: Path) -> float:
    """End-to-end loss of a path: ``100 * (1 - prod(1 - loss_pct / 100))`` over its links.

    Examples
    --------
    >>> G = nx.Graph(); G.add_edge("a", "b", loss_pct=10.0); G.add_edge("b", "c", loss_pct=10.0)
    >>> round(path_loss_pct(G, Path(("a", "b", "c"), 0.0, 2, None)), 6)
    19.0
    """
    delivered = 1.0
    for u, v in path.links:
        delivered *= 1.0 - float(G.edges[u, v].get("loss_pct", 0.0) or 0.0) / 100.0
    return 100.0 * (1.0 - delivered)


def admit(G: nx.Graph, existing: Mapping[str, Admission], intent: SliceSpec) -> Admission:
    """Admit a slice if its guarantees fit what ``existing`` slices leave; see the module docstring.

    Parameters
    ----------
    G : networkx.Graph
        The site graph (:meth:`cpn_net.model.Topology.graph` or
        :func:`cpn_net.baseline.site_graph`): nodes with ``id``, links with
        ``delay_ms``, ``rate_mbps`` and optionally ``loss_pct``.
    existing : mapping
        ``{slice name: Admission}`` already admitted; not modified.
    intent : SliceSpec

    Returns
    -------
    Admission

    Raises
    ------
    SliceRefused
        Naming the bottleneck link, its residual and the shortfall, the
        path that breaks the latency or loss bound, or the link whose slices
        hold every mark. Nothing is reserved.
    SlicingError
        If a slice of that name or id is already admitted, or a site is unknown.
    """
    if intent.name in existing:
        raise SlicingError(f"slice {intent.name} is already admitted; release it first to change it")
    taken = {a.slice_id: a.slice for a in existing.values()}
    if intent.id in taken:
        raise SlicingError(f"slice {intent.name}: id {intent.id} is already used by admitted slice "
                           f"{taken[intent.id]}; give it a free id")
    try:
        residual = residual_capacity(G, reserved_mbps(existing.values()))
        paths: dict = {}
        reservations: dict = {}
        for a, b in site_pairs(intent):
            path = _choose(G, residual, intent, a, b)
            paths[(a, b)] = path
            paths[(b, a)] = path_along(G, tuple(reversed(path.sites)), residual)
            for u, v in path.links:
                key = link_key(u, v)
                if residual[key] is not None:
                    residual[key] -= intent.rate_mbps
                reservations[key] = reservations.get(key, 0.0) + intent.rate_mbps
    except PathError as err:
        raise SlicingError(f"slice {intent.name}: {err}") from err
    admission = Admission(intent.name, intent.id, intent.rate_mbps, paths, reservations)
    return replace(admission, mark=free_mark(existing.values(), admission))


def free_mark(admitted: Iterable[Admission], candidate: Admission) -> int:
    """The smallest mark no admitted slice sharing a link with ``candidate`` holds.

    Raises
    ------
    SliceRefused
        ``reason="marks"``, naming the candidate's link with the most slices.

    Examples
    --------
    >>> ab, bc = Path(("a", "b"), 1.0, 1, None), Path(("b", "c"), 1.0, 1, None)
    >>> gold = Admission("gold", 1, 1.0, {("a", "b"): ab}, mark=1)
    >>> free_mark([gold], Admission("bulk", 2, 1.0, {("a", "b"): ab})), \\
    ...     free_mark([gold], Admission("other", 3, 1.0, {("b", "c"): bc}))
    (2, 1)
    """
    links = candidate.links
    sharing = [(a, theirs) for a in admitted if (theirs := a.links) & links]
    held = {a.mark for a, _ in sharing}
    for mark in range(1, MAX_MARK + 1):
        if mark not in held:
            return mark
    busiest = max(sorted(links), key=lambda k: sum(k in theirs for _, theirs in sharing))
    on_it = sorted(a.slice for a, theirs in sharing if busiest in theirs)
    raise SliceRefused(
        f"slice {candidate.slice} refused: all {MAX_MARK} slice marks are held by slices sharing its links; "
        f"link {busiest[0]}-{busiest[1]} alone carries {len(on_it)} ({', '.join(on_it)}); release one of them "
        "or choose members whose paths avoid that link",
        slice=candidate.slice, reason="marks", link=busiest)


def _residuals(G: nx.Graph, residual_mbps: Mapping | None) -> dict:
    given = residual_mbps or {}
    out = {}
    for u, v, rate in G.edges(data="rate_mbps"):
        key = link_key(u, v)
        if key in given:
            out[key] = given[key]
        elif (key[1], key[0]) in given:
            out[key] = given[(key[1], key[0])]
        else:
            out[key] = None if rate is None else float(rate)
    return out


def _choose(G: nx.Graph, residual: dict, intent: SliceSpec, a: str, b: str) -> Path:
    """The path for pair a-b under the slice's kind and bounds, or SliceRefused."""
    rate = intent.rate_mbps
    try:
        widest = widest_path(G, a, b, residual)
    except InfeasiblePath as err:
        raise SliceRefused(f"slice {intent.name} refused: sites {a} and {b} are not connected ({err})",
                           slice=intent.name, reason="connectivity") from err
    if widest.bottleneck_mbps is not None and widest.bottleneck_mbps < rate - _EPSILON_MBPS:
        raise _bandwidth_refusal(G, intent, widest, residual)
    path = widest
    if intent.kind == "latency" or _too_slow(intent, widest):
        path = best_path(G, a, b, objective="min_delay", bandwidth_mbps=rate,
                         residual_mbps=residual)
    if _too_slow(intent, path):
        raise SliceRefused(
            f"slice {intent.name} refused: the fastest path with {rate:g} Mbit/s, {'->'.join(path.sites)}, "
            f"takes {path.delay_ms:g} ms one way, above max_latency_ms={intent.max_latency_ms:g}; "
            "raise max_latency_ms, lower rate_mbps or release another slice",
            slice=intent.name, reason="latency", path=path.sites)
    loss = path_loss_pct(G, path)
    if intent.max_loss_pct is not None and loss > intent.max_loss_pct:
        raise SliceRefused(
            f"slice {intent.name} refused: path {'->'.join(path.sites)} loses {loss:g} %, above "
            f"max_loss_pct={intent.max_loss_pct:g}; raise max_loss_pct or repair the lossy links",
            slice=intent.name, reason="loss", path=path.sites)
    return path


def _too_slow(intent: SliceSpec, path: Path) -> bool:
    return intent.max_latency_ms is not None and path.delay_ms > intent.max_latency_ms


def _bandwidth_refusal(G: nx.Graph, intent: SliceSpec, widest: Path, residual: dict) -> SliceRefused:
    narrowest = min((link_key(u, v) for u, v in widest.links),
                    key=lambda k: math.inf if residual[k] is None else residual[k])
    left = residual[narrowest]
    short = intent.rate_mbps - left
    a, b = widest.sites[0], widest.sites[-1]
    return SliceRefused(
        f"slice {intent.name} refused: no path {a}->{b} with {intent.rate_mbps:g} Mbit/s; bottleneck link "
        f"{narrowest[0]}-{narrowest[1]} has {left:g} Mbit/s residual, {short:g} Mbit/s short; "
        "lower rate_mbps, raise the link's rate_mbps or release another slice",
        slice=intent.name, reason="bandwidth", link=narrowest, residual_mbps=left, shortfall_mbps=short)
