"""Segment lists, and the shortest list that forces a computed path.

A packet carrying segment list ``S1..Sk`` travels by IGP (:mod:`cpn_net.srv6.igp`)
to the owner of ``S1``; the owner applies its behaviour (RFC 8986 §4): End
just moves on to the next segment, End.X also forces one link, End.DX6 /
End.DT6 decapsulate (so they come last), End.B6.Encaps pushes a bound list.

Minimisation (:func:`minimal_segment_list`): a node SID End(p_j) is enough
from p_i when the IGP path p_i -> p_j is exactly the wanted stretch; where the
wanted path takes a link the IGP would not, an adjacency SID End.X(p_j ->
p_j+1) forces it. A dynamic programme over the path positions picks the
fewest SIDs; it is exact because every SID's owner is visited, so only SIDs
of on-path sites (and End.X of on-path links) can appear. Ties prefer node
SIDs and longer IGP stretches: node SIDs let the IGP reroute around a
failure, adjacency SIDs pin a link. The decapsulating SID at the last site
(``final_sid``) doubles as its node SID.

When the first link out of the headend is one the IGP would not take, the
list starts with the headend's *own* End.X SID. Linux handles that for
forwarded traffic: after encapsulating, ``seg6_input_core()`` runs
``ip6_route_input()`` on the new destination, which hits the local seg6local
route (packets the router itself originates take the output path instead).

Examples
--------
>>> import networkx as nx
>>> G = nx.Graph()
>>> G.add_nodes_from((n, {"id": i}) for i, n in enumerate("abcd", start=1))
>>> G.add_edge("a", "b", delay_ms=1.0); G.add_edge("b", "d", delay_ms=1.0)
>>> G.add_edge("a", "c", delay_ms=2.0); G.add_edge("c", "d", delay_ms=2.0)
>>> from cpn_net.srv6.sids import end_dx6_sid
>>> sl = minimal_segment_list(G, ["a", "c", "d"], final_sid=end_dx6_sid(4, "compute", 1))
>>> str(sl)
'End@3 -> End.DX6@4(compute,1)'
>>> str(minimal_segment_list(G, ["a", "b", "d"], final_sid=end_dx6_sid(4, "compute", 1)))
'End.DX6@4(compute,1)'
>>> follow_segments(G, "a", sl)
('a', 'c', 'd')
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Hashable, Iterable, Mapping, Sequence

import networkx as nx

from cpn_net.srv6.errors import PathError, SegmentError, SidError
from cpn_net.model import addressing
from cpn_net.srv6.igp import Igp, LinkState, check_site, site_id
from cpn_net.srv6.paths import Path
from cpn_net.srv6.sids import Behaviour, Sid, end_sid, end_x_sid, parse_sid
from cpn_net.srv6.srh import MAX_SEGMENTS

_DECAPSULATING = (Behaviour.END_DX6, Behaviour.END_DT6)
_MAX_BINDING_DEPTH = 4


@dataclass(frozen=True)
class SegmentList:
    """An SRv6 segment list in travel order (the first segment is visited first).

    The SRH stores it reversed (:attr:`srh_order`, RFC 8754 §2); so does
    pyroute2's ``segs`` key.

    Examples
    --------
    >>> sl = SegmentList.of("fcbb:bb00:1:1::", "fcbb:bb00:2:1::")
    >>> len(sl), str(sl.first), [str(s) for s in sl.srh_order]
    (2, 'fcbb:bb00:1:1::', ['fcbb:bb00:2:1::', 'fcbb:bb00:1:1::'])
    """

    segments: tuple[ipaddress.IPv6Address, ...]

    def __post_init__(self) -> None:
        try:
            segs = tuple(s if isinstance(s, ipaddress.IPv6Address) else ipaddress.IPv6Address(s)
                         for s in self.segments)
        except ValueError as err:
            raise SegmentError(f"segment list: {err}") from err
        if not 1 <= len(segs) <= MAX_SEGMENTS:
            raise SegmentError(f"segment list has {len(segs)} segments; it needs 1..{MAX_SEGMENTS}")
        object.__setattr__(self, "segments", segs)

    @classmethod
    def of(cls, *segments) -> "SegmentList":
        """A segment list from addresses given as arguments (str or IPv6Address)."""
        return cls(tuple(segments))

    def __len__(self) -> int:
        return len(self.segments)

    def __iter__(self):
        return iter(self.segments)

    @property
    def first(self) -> ipaddress.IPv6Address:
        """The first segment: the outer destination address at the headend."""
        return self.segments[0]

    @property
    def last(self) -> ipaddress.IPv6Address:
        return self.segments[-1]

    @property
    def srh_order(self) -> tuple[ipaddress.IPv6Address, ...]:
        """Segment List[0..n] as in the SRH: reversed travel order."""
        return tuple(reversed(self.segments))

    def sids(self) -> tuple[Sid, ...]:
        """Each segment read back through the SID plan.

        Raises
        ------
        SegmentError
            If a segment is not a SID of the plan.
        """
        try:
            return tuple(parse_sid(s) for s in self.segments)
        except SidError as err:
            raise SegmentError(f"segment list {self.describe_addresses()}: {err}") from err

    def describe_addresses(self) -> str:
        return " -> ".join(str(s) for s in self.segments)

    def __str__(self) -> str:
        return " -> ".join(str(s) for s in self.sids())


def minimal_segment_list(G: nx.Graph, path: Path | Sequence[str], *,
                         final_sid: ipaddress.IPv6Address | str | None = None,
                         igp: Igp | None = None) -> SegmentList:
    """The fewest SIDs that make IGP forwarding follow ``path`` exactly.

    Parameters
    ----------
    G : networkx.Graph
        The site graph the IGP runs on.
    path : Path or sequence of str
        A simple path; the first site is the headend.
    final_sid : IPv6Address or str, optional
        A SID of the last site ending the list, usually End.DX6 or End.DT6.
        Without it the list ends with a node or adjacency SID reaching the
        last site.
    igp : Igp, optional
        A shared :class:`~cpn_net.srv6.igp.Igp` of ``G``: its trees and link
        state are reused, and boundaries are chosen on path positions before
        any SID is built. Same answer as without it.

    Returns
    -------
    SegmentList

    Raises
    ------
    SegmentError
        If the path is not simple, not linked, or ``final_sid`` is not a SID
        of its last site; or the path is one site long and no final SID is given.

    Examples
    --------
    >>> G = nx.path_graph(["a", "b", "c"])
    >>> nx.set_node_attributes(G, {"a": 1, "b": 2, "c": 3}, "id")
    >>> nx.set_edge_attributes(G, 1.0, "delay_ms")
    >>> str(minimal_segment_list(G, ["a", "b", "c"]))
    'End@3'
    """
    sites = _check_path(G, path)
    igp = igp or Igp(G)
    final = _check_final(G, sites, final_sid)
    n = len(sites) - 1
    if n == 0 and final is None:
        raise SegmentError(f"path ({sites[0]},) has one site and no final_sid: an empty list forces nothing; "
                           "give the decapsulating SID as final_sid")
    if igp.G is G and _plan_ready(igp.link_state()):
        return _minimal_on_plan(igp, sites, final)
    return _minimal_by_igp_paths(G, igp, sites, final)


def _plan_ready(state: LinkState) -> bool:
    """Valid delays and distinct ids in the SID plan's range: no SID or IGP query can fail."""
    key = ("segments.plan_ready",)
    ready = state.memo.get(key)
    if ready is None:
        ready = state.memo[key] = (state.ids_unique and state.metrics_valid
                                   and all(type(i) is int and 1 <= i <= addressing.MAX_SITE_ID
                                           for i in state.ids.values()))
    return ready


def _minimal_on_plan(igp: Igp, sites: tuple, final) -> SegmentList:
    """The dynamic programme of :func:`_minimal_by_igp_paths`, deciding on positions, not SIDs.

    The IGP path from ``sites[i]`` to ``sites[j]`` is ``sites[i..j]`` exactly
    when the next hop of ``sites[i]`` towards ``sites[j]`` is ``sites[i+1]``
    and the IGP path from ``sites[i+1]`` agrees too (IGP paths form a tree),
    so the positions that agree up to ``j`` are a run found by walking back
    from ``j``. The choice keys are the reference's, and unique, so only the
    chosen SIDs need building.
    """
    n = len(sites) - 1
    reaches: list = [[i] for i in range(n + 1)]  # reaches[i]: every j such that the IGP follows sites[i..j]
    final_from = 0  # the first position from which the IGP follows the path to its last site
    for j in range(n, 0, -1):
        next_hop = igp.next_hop_map(sites[j])
        i = j
        while i > 0 and next_hop.get(sites[i - 1]) == sites[i]:
            i -= 1
            reaches[i].append(j)
        if j == n:
            if i == 0:  # the IGP follows the whole path: one SID is all it takes (see below)
                return SegmentList((final if final is not None else end_sid(igp.link_state().ids[sites[n]]),))
            final_from = i
    # The reference's choice key (count, (adjacency?, -j)) as one int, smaller is
    # better: ((2 * count + adjacency) * width) + n + 1 - j.
    width = n + 2
    never = 2 * (n + 3) * width  # worse than any real choice
    end_limit = n if final is None else n - 1  # with a final SID, it is the last site's node SID
    # count[i], pick[i]: fewest SIDs from "packet at sites[i], next SID unchosen", and the first choice.
    count = [0] * (n + 1)
    pick: list = [None] * (n + 1)
    for i in range(n, -1, -1):
        if i >= final_from:
            # The IGP carries the packet from here to the last site, so one SID
            # suffices: the final SID, else End of the last site (or none there).
            # Every other choice needs two or more, or has a worse key.
            if final is not None:
                count[i], pick[i] = 1, ("final", None)
            elif i == n:
                count[i], pick[i] = 0, ("done", None)
            else:
                count[i], pick[i] = 1, ("end", n)
            continue
        best = never
        for j in reaches[i]:
            if i < j <= end_limit:
                score = 2 * (1 + count[j]) * width + n + 1 - j
                if score < best:
                    best, count[i], pick[i] = score, 1 + count[j], ("end", j)
            if j < n:
                score = (2 * (1 + count[j + 1]) + 1) * width + n + 1 - j
                if score < best:
                    best, count[i], pick[i] = score, 1 + count[j + 1], ("x", j + 1)
    ids = igp.link_state().ids
    segments = []
    i = 0
    while True:
        kind, after = pick[i]
        if kind == "final":
            segments.append(final)
        elif kind == "end":
            segments.append(end_sid(ids[sites[after]]))
        elif kind == "x":
            segments.append(end_x_sid(ids[sites[after - 1]], ids[sites[after]]))
        if after is None:
            return SegmentList(tuple(segments))
        i = after


def _minimal_by_igp_paths(G: nx.Graph, igp: Igp, sites: tuple, final) -> SegmentList:
    """The straightforward programme, asking the IGP for every stretch; any graph, any ``igp``."""
    n = len(sites) - 1
    agree_cache: dict = {}

    def agrees(i: int, j: int) -> bool:
        """The IGP alone carries a packet from sites[i] along sites[i..j]."""
        if i == j:
            return True
        if (i, j) not in agree_cache:
            agree_cache[(i, j)] = igp.path(sites[i], sites[j]) == sites[i:j + 1]
        return agree_cache[(i, j)]

    ids = [site_id(G, s) for s in sites]
    # best[i]: (sid count, preference key, sids) from "packet at sites[i], next SID unchosen".
    best: list = [None] * (n + 1)
    for i in range(n, -1, -1):
        options = []
        if final is not None and agrees(i, n):
            options.append((1, (0, -(n + 1)), (final,)))
        if final is None and i == n:
            options.append((0, (0, 0), ()))
        for j in range(i, n + 1):
            if not agrees(i, j):
                continue
            if j > i and not (final is not None and j == n):
                tail = best[j]
                options.append((1 + tail[0], (0, -j), (end_sid(ids[j]),) + tail[2]))
            if j < n:
                tail = best[j + 1]
                options.append((1 + tail[0], (1, -j), (end_x_sid(ids[j], ids[j + 1]),) + tail[2]))
        best[i] = min(options, key=lambda o: (o[0], o[1]))
    return SegmentList(best[0][2])


def hop_by_hop_segment_list(G: nx.Graph, path: Path | Sequence[str], *,
                            final_sid: ipaddress.IPv6Address | str | None = None) -> SegmentList:
    """The naive strict list: one End.X per hop, then ``final_sid``.

    The baseline :func:`minimal_segment_list` is measured against.

    Examples
    --------
    >>> G = nx.path_graph(["a", "b", "c"])
    >>> nx.set_node_attributes(G, {"a": 1, "b": 2, "c": 3}, "id")
    >>> nx.set_edge_attributes(G, 1.0, "delay_ms")
    >>> str(hop_by_hop_segment_list(G, ["a", "b", "c"]))
    'End.X@1(2) -> End.X@2(3)'
    """
    sites = _check_path(G, path)
    final = _check_final(G, sites, final_sid)
    segments = [end_x_sid(site_id(G, u), site_id(G, v)) for u, v in zip(sites, sites[1:])]
    if final is not None:
        segments.append(final)
    if not segments:
        raise SegmentError(f"path ({sites[0]},) has one site and no final_sid: nothing to list")
    return SegmentList(tuple(segments))


def follow_segments(G: nx.Graph, headend: Hashable, segments: SegmentList | Iterable, *,
                    igp: Igp | None = None, bindings: Mapping | None = None) -> tuple:
    """The sites a packet visits when the IGP carries it through ``segments``.

    A pure check that a list forces the intended path; the byte-level
    equivalent is :mod:`cpn_net.srv6.fake_netlink`.

    Parameters
    ----------
    G : networkx.Graph
    headend : str
        Where the packet is encapsulated.
    segments : SegmentList or iterable of addresses
    igp : Igp, optional
    bindings : mapping, optional
        ``{binding SID: SegmentList}`` for End.B6.Encaps SIDs in the list; a
        bound list must end with End.DT6, which hands the packet back to the
        outer list.

    Returns
    -------
    tuple of str
        Headend first, the decapsulating (or last) site last.

    Raises
    ------
    SegmentError
        If a SID is not in the plan, names a site or link not in ``G``, a
        decapsulating SID is not last, or a binding SID is unknown.

    Examples
    --------
    >>> G = nx.path_graph(["a", "b", "c"])
    >>> nx.set_node_attributes(G, {"a": 1, "b": 2, "c": 3}, "id")
    >>> nx.set_edge_attributes(G, 1.0, "delay_ms")
    >>> follow_segments(G, "a", SegmentList.of(end_sid(3)))
    ('a', 'b', 'c')
    """
    try:
        check_site(G, headend)
    except PathError as err:
        raise SegmentError(f"headend: {err}") from err
    by_id = sites_by_id(G, igp)
    sites = [headend]
    _follow(G, igp or Igp(G), by_id, sites, SegmentList(tuple(segments)), dict(bindings or {}), depth=0)
    return tuple(sites)


def sites_by_id(G: nx.Graph, igp: Igp | None = None) -> Mapping:
    """``{site id: site}`` of ``G``, from the link state of ``igp`` when it is the IGP of ``G``.

    The mapping may be ``igp``'s cached one: read it, do not change it.

    Raises
    ------
    PathError
        If a site's ``id`` is missing or not an int.

    Examples
    --------
    >>> G = nx.Graph(); G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2})])
    >>> sites_by_id(G), sites_by_id(G, Igp(G))
    ({1: 'a', 2: 'b'}, {1: 'a', 2: 'b'})
    """
    if igp is not None and igp.G is G:
        state = igp.link_state()
        if state.ids_valid:
            return state.by_id
    return {site_id(G, s): s for s in G.nodes}


def _follow(G, igp, by_id, sites, segments: SegmentList, bindings, depth) -> None:
    sids = segments.sids()
    for k, sid in enumerate(sids):
        owner = _site_of(by_id, sid.site_id, sid)
        try:
            sites.extend(igp.path(sites[-1], owner)[1:])
        except PathError as err:
            raise SegmentError(f"segment {sid.address} ({sid}): {err}") from err
        remaining = len(sids) - k - 1
        if sid.behaviour is Behaviour.END_X:
            neighbour = _site_of(by_id, sid.neighbour_id, sid)
            if not G.has_edge(owner, neighbour):
                raise SegmentError(f"segment {sid.address} ({sid}): no link {owner}-{neighbour} in the topology")
            sites.append(neighbour)
        elif sid.behaviour in _DECAPSULATING and remaining:
            raise SegmentError(f"segment {sid.address} ({sid}) decapsulates, yet {remaining} segment(s) follow it "
                               f"in {segments.describe_addresses()}; put it last")
        elif sid.behaviour is Behaviour.END_B6_ENCAPS:
            bound = bindings.get(sid.address)
            if bound is None:
                raise SegmentError(f"segment {sid.address} ({sid}) is a binding SID with no bound list; "
                                   "pass bindings={sid: SegmentList}")
            if not remaining:
                raise SegmentError(f"binding SID {sid.address} is last; End.B6.Encaps needs Segments Left > 0 "
                                   "(RFC 8986 §4.13): follow it with the SIDs after the bound list")
            if depth >= _MAX_BINDING_DEPTH:
                raise SegmentError(f"binding SID {sid.address}: bindings nest deeper than {_MAX_BINDING_DEPTH}; "
                                   "is a binding list referring to itself?")
            bound = bound if isinstance(bound, SegmentList) else SegmentList(tuple(bound))
            if bound.sids()[-1].behaviour is not Behaviour.END_DT6:
                raise SegmentError(f"binding SID {sid.address}: its bound list must end with End.DT6 so the "
                                   f"packet continues; it ends with {bound.sids()[-1]}")
            _follow(G, igp, by_id, sites, bound, bindings, depth + 1)


def _site_of(by_id: dict, sid_site_id: int, sid: Sid):
    try:
        return by_id[sid_site_id]
    except KeyError:
        raise SegmentError(f"segment {sid.address} ({sid}) names site id {sid_site_id}, "
                           "which is not in the topology") from None


def _check_path(G: nx.Graph, path) -> tuple:
    sites = tuple(path.sites if isinstance(path, Path) else path)
    if not sites:
        raise SegmentError("path is empty; give at least the headend")
    for site in sites:
        try:
            check_site(G, site)
        except PathError as err:
            raise SegmentError(f"path {'->'.join(map(str, sites))}: {err}") from err
    for u, v in zip(sites, sites[1:]):
        if not G.has_edge(u, v):
            raise SegmentError(f"path {'->'.join(map(str, sites))}: {u} and {v} are not linked")
    if len(set(sites)) != len(sites):
        twice = sorted({str(s) for s in sites if sites.count(s) > 1})
        raise SegmentError(f"path {'->'.join(map(str, sites))} visits {', '.join(twice)} twice; "
                           "only simple paths are forced")
    return sites


def _check_final(G: nx.Graph, sites: tuple, final_sid) -> ipaddress.IPv6Address | None:
    if final_sid is None:
        return None
    try:
        sid = parse_sid(final_sid)
    except SidError as err:
        raise SegmentError(f"final_sid: {err}") from err
    last_id = site_id(G, sites[-1])
    if sid.site_id != last_id or sid.behaviour not in (Behaviour.END, *_DECAPSULATING):
        raise SegmentError(f"final_sid {sid.address} is {sid}; it must be an End, End.DX6 or End.DT6 SID of "
                           f"the path's last site {sites[-1]} (id {last_id})")
    return sid.address
