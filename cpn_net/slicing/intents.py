"""Slice intents and the traffic demands they place on the WAN.

An intent is a :class:`~cpn_net.model.topology.SliceSpec` (RFC 9543 §3: the
endpoints and service level objectives a customer asks for), declared in the
topology file or requested at runtime (:func:`cpn_net.model.slices.parse_slice`).

Demands. A slice promises ``rate_mbps`` between every *ordered* pair of
distinct member sites: from each member site to each other one, in both
directions, at the full rate (the "hose" is not shared between pairs: a
tenant with three sites may send 10 Mbit/s a->b and 10 Mbit/s a->c at the
same time). Hosts at one site talk over the site switch and place no demand
on the WAN. Both directions of a pair ride the same path reversed, so a link
carries the same reservation each way; that keeps accounting per undirected
link exact (:mod:`cpn_net.slicing.admission`).

Examples
--------
>>> from cpn_net.model.topology import SliceSpec
>>> s = SliceSpec("gold", 1, ("a", "b", "c"), ("u1-1", "u2-1", "u3-1"), ("a", "b", "c"), 10.0)
>>> [f"{d.source}->{d.target}" for d in demands(s)]
['a->b', 'b->a', 'a->c', 'c->a', 'b->c', 'c->b']
>>> site_pairs(s)
(('a', 'b'), ('a', 'c'), ('b', 'c'))
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from cpn_net.model.topology import SliceSpec

#: The intent a tenant declares; the model's validated slice is the intent.
SliceIntent = SliceSpec


@dataclass(frozen=True)
class Demand:
    """Guaranteed rate from one member site to another (one direction)."""

    slice: str
    source: str
    target: str
    rate_mbps: float


def site_pairs(intent: SliceIntent) -> tuple[tuple[str, str], ...]:
    """Unordered pairs of distinct member sites, in the slice's site order.

    Examples
    --------
    >>> site_pairs(SliceSpec("s", 1, ("a",), ("u1-1", "k1-1"), ("a",), 1.0))
    ()
    """
    return tuple(combinations(intent.sites, 2))


def demands(intent: SliceIntent) -> tuple[Demand, ...]:
    """Every ordered pair of distinct member sites with the slice's guaranteed rate.

    Parameters
    ----------
    intent : SliceIntent

    Returns
    -------
    tuple of Demand
        For each pair of :func:`site_pairs`, first ``a->b`` then ``b->a``.

    Examples
    --------
    >>> demands(SliceSpec("s", 1, ("a", "b"), ("u1-1", "u2-1"), ("a", "b"), 5.0))
    (Demand(slice='s', source='a', target='b', rate_mbps=5.0), Demand(slice='s', source='b', target='a', rate_mbps=5.0))
    """
    return tuple(Demand(intent.name, s, t, intent.rate_mbps)
                 for a, b in site_pairs(intent) for s, t in ((a, b), (b, a)))
