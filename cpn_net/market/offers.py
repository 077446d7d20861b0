"""Offers: the surplus compute every site puts on the market, and at what price.

A compute node's **surplus** is its capacity minus its background load, in
whole worker slots: ``floor(workers * (1 - background_load_pct / 100))``
(:func:`surplus_slots`). A site's surplus is the sum over its nodes, and the
market books a site's slots as one pool: a placement says how many slots at
which site, the orchestrator spreads them over the site's nodes.

A posted **offer** (:class:`Offer`) is a site's surplus, the slots free
throughout the next ``horizon_s`` (a day by default) and the most a
worker-second anywhere in that window costs under the surge rule
(:mod:`cpn_net.market.pricing`): the price at its most-sold moment, so an order
whose compute window lies in the horizon never pays more than the offer. An offer *changes* when
the surplus changes (background load reported anew) or the price crosses a
surge step; the market records every change in its ledger.

Services. A stream order names a service (``infer``); only sites with compute
nodes offering it may serve it, with at most the surplus slots of those nodes,
each request taking the nodes' ``service_time_ms`` (the largest at the site:
a site is planned for its slowest node). Batch work runs on any compute node.

:class:`Supply` holds all of this as arrays in site order (sites sorted by
id), the form placement and the benchmark's 7,000 sites need.

Examples
--------
>>> from cpn_net.model import load_topology
>>> topo = load_topology("topologies/east-data-west-compute.yaml")
>>> [(o.node, o.surplus_slots) for o in node_offers(topo)][:3]
[('k1-1', 1), ('k1-2', 1), ('k2-1', 1)]
>>> supply = Supply.from_topology(topo)
>>> supply.surplus_of("zhongwei"), supply.services["infer"].sites[:2]
(6, ('zhangjiakou', 'yangtze-delta'))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from cpn_net.market.errors import MarketError
from cpn_net.market.terms import MarketTerms, market_terms
from cpn_net.model.errors import unknown_fix


def surplus_slots(workers: int, background_load_pct: float) -> int:
    """Worker slots left over by the background load, rounded down.

    Examples
    --------
    >>> surplus_slots(4, 70.0), surplus_slots(4, 25.0), surplus_slots(8, 0.0)
    (1, 3, 8)
    """
    return int(math.floor(workers * (1.0 - background_load_pct / 100.0) + 1e-9))


@dataclass(frozen=True)
class NodeOffer:
    """One compute node's surplus.

    Attributes
    ----------
    node, site : str
    workers : int
        All its worker slots.
    background_load_pct : float
    surplus_slots : int
        Slots the market may sell.
    services : tuple of str
        Services it offers.
    service_time_ms : float
    """

    node: str
    site: str
    workers: int
    background_load_pct: float
    surplus_slots: int
    services: tuple[str, ...]
    service_time_ms: float


def node_offers(topology) -> tuple[NodeOffer, ...]:
    """Every compute node's surplus, in topology order."""
    offered: dict[str, list[str]] = {}
    for service in topology.services:
        for node in service.compute:
            offered.setdefault(node, []).append(service.name)
    return tuple(NodeOffer(node.name, node.site, node.workers, node.background_load_pct,
                           surplus_slots(node.workers, node.background_load_pct),
                           tuple(offered.get(node.name, ())), node.service_time_ms)
                 for node in topology.compute_nodes())


@dataclass(frozen=True)
class Offer:
    """A site's posted offer at ``at_s``: the most a worker-second in the next horizon costs.

    Attributes
    ----------
    site : str
    surplus_slots : int
        All the slots the site sells.
    free_slots : int
        Slots free throughout ``[at_s, at_s + horizon_s)``.
    cny_per_worker_s : float
        The surge price at the most-sold moment of that window.
    step : int
        The surge step the price is at.
    at_s : float
    """

    site: str
    surplus_slots: int
    free_slots: int
    cny_per_worker_s: float
    step: int
    at_s: float

    def to_dict(self) -> dict:
        return {"site": self.site, "surplus_slots": self.surplus_slots, "free_slots": self.free_slots,
                "cny_per_worker_s": self.cny_per_worker_s, "step": self.step, "at_s": self.at_s}


@dataclass(frozen=True)
class ServiceSupply:
    """Where a service can be served: per site index, its slots and service time.

    ``slots[i]`` is the surplus of the site's nodes offering it (a stream gets
    at most that and the site's current surplus); 0, and ``service_time_ms[i]``
    inf, at sites not offering it.
    """

    name: str
    sites: tuple[str, ...]
    slots: np.ndarray
    service_time_ms: np.ndarray


class Supply:
    """The sites' surplus, base prices and services as arrays in site order.

    Parameters
    ----------
    sites : sequence of str
        Site names in market order (by id); every site of the network.
    surplus : sequence of int
        Surplus slots per site (0: a site without compute for sale).
    base_cny_per_worker_s : sequence of float
        Base price per site.
    services : mapping, optional
        ``{service: {site: (slots, service_time_ms)}}``.

    Raises
    ------
    MarketError
        If the lengths differ, a surplus is negative or a price not above 0.

    Examples
    --------
    >>> s = Supply(["a", "b"], [4, 0], [0.001, 0.002], {"web": {"a": (4, 10.0)}})
    >>> s.surplus_of("a"), s.index["b"], s.services["web"].sites
    (4, 1, ('a',))
    """

    def __init__(self, sites: Sequence[str], surplus: Sequence[int], base_cny_per_worker_s: Sequence[float],
                 services: Mapping[str, Mapping[str, tuple[int, float]]] | None = None):
        self.sites: tuple[str, ...] = tuple(sites)
        if len(set(self.sites)) != len(self.sites):
            raise MarketError("supply: site names repeat; give each site once")
        if not (len(self.sites) == len(surplus) == len(base_cny_per_worker_s)):
            raise MarketError(f"supply: {len(self.sites)} sites, {len(surplus)} surplus values and "
                              f"{len(base_cny_per_worker_s)} prices; give one of each per site")
        self.index: dict[str, int] = {site: i for i, site in enumerate(self.sites)}
        self.surplus = np.asarray(surplus, dtype=np.int64).copy()
        self.base = np.asarray(base_cny_per_worker_s, dtype=np.float64).copy()
        if (self.surplus < 0).any():
            bad = self.sites[int(np.argmax(self.surplus < 0))]
            raise MarketError(f"supply: site {bad} has a negative surplus; give 0 or more slots")
        if not (self.base > 0).all() or not np.isfinite(self.base).all():
            bad = self.sites[int(np.argmax(~(self.base > 0) | ~np.isfinite(self.base)))]
            raise MarketError(f"supply: site {bad} has base price {self.base[self.index[bad]]!r}; give a price above 0")
        self._memo: dict = {}
        self.services: dict[str, ServiceSupply] = {}
        for name, where in (services or {}).items():
            slots = np.zeros(len(self.sites), dtype=np.int64)
            times = np.full(len(self.sites), np.inf)
            for site, (n, service_time_ms) in where.items():
                i = self.site_index(site)
                slots[i] = int(n)
                times[i] = float(service_time_ms)
            listed = tuple(self.sites[i] for i in np.flatnonzero(np.isfinite(times)))
            self.services[name] = ServiceSupply(name, listed, slots, times)

    @classmethod
    def from_topology(cls, topology, terms: MarketTerms | None = None) -> "Supply":
        """The supply of a validated topology (prices from ``terms``, else the defaults)."""
        terms = terms if terms is not None else market_terms(topology)
        sites = sorted(topology.sites, key=lambda s: s.id)
        offers = node_offers(topology)
        surplus = {s.name: 0 for s in sites}
        services: dict[str, dict[str, list]] = {svc.name: {} for svc in topology.services}
        for offer in offers:
            surplus[offer.site] += offer.surplus_slots
            for name in offer.services:
                slots, slowest = services[name].get(offer.site, (0, 0.0))
                services[name][offer.site] = (slots + offer.surplus_slots, max(slowest, offer.service_time_ms))
        return cls([s.name for s in sites], [surplus[s.name] for s in sites],
                   [terms.base(s.name) for s in sites],
                   {name: {site: tuple(v) for site, v in where.items()} for name, where in services.items()})

    def site_index(self, site: str) -> int:
        """The index of ``site``; MarketError naming close matches when unknown."""
        try:
            return self.index[site]
        except KeyError:
            raise MarketError(f"no site {site!r}; {unknown_fix(site, self.sites, 'sites')}") from None

    def surplus_of(self, site: str) -> int:
        return int(self.surplus[self.site_index(site)])

    def set_surplus(self, site: str, slots: int) -> None:
        """A new surplus for ``site`` (its background load changed)."""
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 0:
            raise MarketError(f"site {site}: surplus_slots={slots!r} must be an int >= 0")
        self.surplus[self.site_index(site)] = slots
        self._memo.clear()

    def able(self, workers: int) -> np.ndarray:
        """Sites selling at least ``workers`` slots (a cached boolean vector; do not modify).

        Examples
        --------
        >>> Supply(["a", "b"], [4, 1], [0.001, 0.002]).able(2).tolist()
        [True, False]
        """
        key = ("able", workers)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self.surplus >= workers
        return found

    def floor_price(self, workers: int) -> float | None:
        """The lowest base price of a site selling ``workers`` slots; None if none does."""
        key = ("floor", workers)
        if key not in self._memo:
            able = self.able(workers)
            self._memo[key] = float(self.base[able].min()) if able.any() else None
        return self._memo[key]

    def most_surplus(self) -> tuple[int, str | None]:
        """The largest surplus of any site, and that site."""
        key = ("most",)
        if key not in self._memo:
            i = int(self.surplus.argmax()) if len(self.sites) else 0
            found = len(self.sites) and self.surplus[i] > 0
            self._memo[key] = (int(self.surplus[i]), self.sites[i]) if found else (0, None)
        return self._memo[key]

    def service_view(self, name: str) -> "ServiceView":
        """A service's slots (capped by the sites' surplus) and what they can do, cached."""
        key = ("service", name)
        found = self._memo.get(key)
        if found is None:
            service = self.services[name]
            slots = np.minimum(service.slots, self.surplus)
            offering = np.isfinite(service.service_time_ms) & (slots > 0)
            if offering.any():
                fastest = float(service.service_time_ms[offering].min())
                most_rps = float((slots[offering] * 1000.0 / service.service_time_ms[offering]).max())
                floor = float(self.base[offering].min())
            else:
                fastest, most_rps, floor = math.inf, 0.0, None
            found = self._memo[key] = ServiceView(slots, offering, fastest, most_rps, floor)
        return found


@dataclass(frozen=True)
class ServiceView:
    """A service as the market can sell it now: per site slots and where it is on offer.

    Attributes
    ----------
    slots : numpy.ndarray
        Per site index, the slots a stream may get (nodes offering it, capped by the site's surplus).
    offering : numpy.ndarray
        Sites with such slots.
    fastest_ms : float
        The least service time among them.
    most_rps : float
        The most requests per second one site can serve.
    floor_price : float or None
        Their lowest base price.
    """

    slots: np.ndarray
    offering: np.ndarray
    fastest_ms: float
    most_rps: float
    floor_price: float | None
