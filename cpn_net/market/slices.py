"""Market slices as cpn_net network slices, so the controller can realise them.

A placement's :class:`~cpn_net.market.placement.SliceHold` is a guaranteed rate
between the order's source site and its compute site over a window, on a
path the market chose. :func:`slice_spec` writes it as the
:class:`~cpn_net.model.topology.SliceSpec` the slicing service admits and
realises (:mod:`cpn_net.slicing`): members are the two sites (all their hosts),
``rate_mbps`` the hold's rate, ``kind`` ``latency``. Not isolated: a compute
node serves many orders, and an isolated slice may hold a host only once.

The market booked the rate on *its* path (``hold.path``). Kind ``latency``
makes admission choose the least-delay path with room, which is the
market's own route unless the market took the link-disjoint alternate; a
``bulk`` slice would ride the widest path instead. The realiser should pin
the slice to ``hold.path`` (waypoints) when the two differ, and install it
for the hold's window only (``hold.start_s`` to ``hold.end_s``): then the
slices installed at any moment are exactly what the market's calendar holds
then, and admission agrees with the market on every link.

Examples
--------
>>> from cpn_net.model import load_topology
>>> from cpn_net.market.placement import SliceHold
>>> topo = load_topology("topologies/tiny.yaml")
>>> hold = SliceHold("input", ("east", "centre", "west"), ("centre-east", "centre-west"), 12.5, 0.0, 90.0, 15.0)
>>> spec = slice_spec(hold, "Job-7", topo, slice_id=42)
>>> spec.name, spec.id, spec.sites, spec.hosts, spec.rate_mbps, spec.kind, spec.isolation
('mkt-job-7-input', 42, ('east', 'west'), ('u1-1', 'k1-1', 'u3-1', 'k3-1'), 12.5, 'latency', False)
"""

from __future__ import annotations

from cpn_net.market.errors import MarketError
from cpn_net.market.placement import Placement, SliceHold
from cpn_net.model.schema import MAX_SLICE_ID, slug
from cpn_net.model.topology import SliceSpec


def slice_name(order_id: str, purpose: str) -> str:
    """A valid slice name for an order's slice: ``mkt-<order>-<purpose>``, at most 63 characters.

    Examples
    --------
    >>> slice_name("J.7", "stream")
    'mkt-j-7-stream'
    """
    return f"mkt-{slug(order_id)[:63 - 5 - len(purpose) - 1]}-{purpose}"


def slice_spec(hold: SliceHold, order_id: str, topology, *, slice_id: int, kind: str = "latency",
               max_latency_ms: float | None = None) -> SliceSpec:
    """The cpn_net slice of one market slice hold.

    Parameters
    ----------
    hold : SliceHold
    order_id : str
    topology : Topology
        For the member sites' hosts.
    slice_id : int
        A free slice id, 1..4095 (the slicing service allots them).
    kind : {"latency", "bulk"}
        ``latency`` (default) keeps admission on the least-delay path, as the market books.
    max_latency_ms : float, optional
        One-way bound to hold the path to.

    Raises
    ------
    MarketError
        If the id is out of range or the hold's ends are not sites of ``topology``.
    """
    if isinstance(slice_id, bool) or not isinstance(slice_id, int) or not 1 <= slice_id <= MAX_SLICE_ID:
        raise MarketError(f"slice_id={slice_id!r} must be an int from 1 to {MAX_SLICE_ID}")
    ends = {hold.path[0], hold.path[-1]}
    sites = tuple(s for s in topology.sites if s.name in ends)
    if len(sites) != len(ends):
        raise MarketError(f"slice of order {order_id}: path {'->'.join(hold.path)} has ends outside topology "
                          f"{topology.name}")
    return SliceSpec(slice_name(order_id, hold.purpose), slice_id, tuple(s.name for s in sites),
                     tuple(h.name for s in sites for h in s.hosts), tuple(s.name for s in sites), hold.rate_mbps,
                     max_latency_ms=max_latency_ms, kind=kind, isolation=False)


def placement_slices(placement: Placement, topology, first_id: int) -> tuple[SliceSpec, ...]:
    """Every slice of a placement, with ids from ``first_id`` on.

    Examples
    --------
    >>> from cpn_net.model import load_topology
    >>> from cpn_net.market.market import Market
    >>> from cpn_net.market.orders import BatchOrder
    >>> topo = load_topology("topologies/tiny.yaml")
    >>> market = Market.from_topology(topo, {"sites": {"east": 0.01, "centre": 0.01}})
    >>> placed = market.submit(BatchOrder("j1", "east", 600, 200, 3600, 0.02, result_mb=20), now_s=0.0)
    >>> [(s.name, s.id, s.sites, s.rate_mbps) for s in placement_slices(placed, topo, first_id=100)]
    [('mkt-j1-input', 100, ('east', 'west'), 0.662), ('mkt-j1-result', 101, ('east', 'west'), 0.662)]
    """
    return tuple(slice_spec(hold, placement.order_id, topology, slice_id=first_id + k)
                 for k, hold in enumerate(placement.slices))
