"""The market: offers, orders, all-or-nothing placements, their lifecycle and the ledger.

:class:`Market` is the orchestrator's pure core. The on-network part calls it
with the clock (``now_s``) and what it observed; it never reads a clock or a
socket. Each call that changes anything appends to the ledger:

* :meth:`Market.submit` — validate (a malformed order raises
  :class:`~cpn_net.market.errors.OrderError` and leaves no trace), place with
  the market's policy, book every hold of the placement in the book-ahead
  calendar, then record ``order`` + ``placement`` (or ``order`` + ``refusal``)
  and any ``offer`` whose price step changed, in one ledger write. Any
  failure on the way (``fault`` injects one at a named step, :data:`STEPS`)
  rolls the bookings back: no half reservation, no ledger entry.
* :meth:`Market.start`, :meth:`Market.measure`, :meth:`Market.complete`,
  :meth:`Market.cancel`, :meth:`Market.settle` — the order's life on the
  network; completing or cancelling early frees the rest of its bookings.
* :meth:`Market.update_surplus` — a site's background load changed.

Examples
--------
>>> from cpn_net.model import load_topology
>>> topo = load_topology("topologies/tiny.yaml")
>>> market = Market.from_topology(topo)
>>> from cpn_net.market.orders import StreamOrder
>>> p = market.submit(StreamOrder("s1", "echo", "east", 200.0, 60.0, 0.0, 600.0, 0.01), now_s=0.0)
>>> p.site, p.slots, p.slices
('east', 3, ())
>>> market.start("s1", 0.0); market.measure("s1", 300.0, p99_ms=45.0, served_rps=200.0, interval_s=300.0)
>>> market.complete("s1", 600.0); market.settle("s1", 600.0).credit_pct
0.0
>>> from cpn_net.market.ledger import verify_lines
>>> verify_lines(market.ledger.lines).message
'ok: 12 entries'
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import networkx as nx

from cpn_net.market.calendar import SITE, BookAhead, Transaction
from cpn_net.market.errors import LifecycleError, MarketError, UnknownOrderError
from cpn_net.market.ledger import Ledger
from cpn_net.market.network import SiteNetwork
from cpn_net.market.offers import Offer, Supply
from cpn_net.market.orders import Order, validate_order
from cpn_net.market.placement import POLICIES, POLICY_NAMES, Context, Placement, Refusal
from cpn_net.market.settlement import Settlement, settle
from cpn_net.market.terms import MarketTerms, market_terms
from cpn_net.model.errors import did_you_mean, unknown_fix

#: The steps of a placement, in order; ``fault(step)`` is called before each.
STEPS = ("validate", "choose", "reserve_compute", "reserve_link", "record")

PLACED, REFUSED, STARTED, COMPLETED, CANCELLED, SETTLED = (
    "placed", "refused", "started", "completed", "cancelled", "settled")


class Market:
    """A compute market over a site graph.

    Parameters
    ----------
    G : networkx.Graph
        Sites (``id``) and links (``delay_ms``, ``rate_mbps``).
    supply : Supply
        Surplus, base prices and services per site.
    terms : MarketTerms, optional
        Surge rule, network price, horizon, slack (default: the documented defaults).
    policy : {"nearest", "cheapest", "joint"}
    ledger : Ledger, optional
        Default: an in-memory ledger.
    reserved_mbps : mapping, optional
        Link rates held outside the market (admitted slices).
    now_s : float
        The clock at opening (stamped on the first entries).
    fault : callable, optional
        ``fault(step)`` before each placement step; raising there tests all-or-nothing.
    depth, breadth, scan : int
        Search limits of the policies (:mod:`cpn_net.market.placement`).
    cache_sources : int
        Source trees kept by the network.
    """

    def __init__(self, G: nx.Graph, supply: Supply, terms: MarketTerms | None = None, *, policy: str = "joint",
                 ledger: Ledger | None = None, reserved_mbps: Mapping | None = None, now_s: float = 0.0,
                 fault: Callable[[str], None] | None = None, depth: int = 32, breadth: int = 2, scan: int = 256,
                 cache_sources: int = 1024):
        if policy not in POLICIES:
            raise MarketError(f"policy={policy!r} is not a market policy; "
                              f"{unknown_fix(policy, POLICY_NAMES, 'policies')}")
        self.policy = policy
        self.supply = supply
        self.terms = terms if terms is not None else MarketTerms()
        self.network = SiteNetwork(G, supply.sites, reserved_mbps=reserved_mbps, cache_sources=cache_sources)
        self.book = BookAhead(len(supply.sites), len(self.network.links))
        self.ctx = Context(supply, self.network, self.book, self.terms, supply.base.astype(float).copy(),
                           depth=depth, breadth=breadth, scan=scan)
        self.ledger = ledger if ledger is not None else Ledger()
        self.fault = fault
        self.orders: dict[str, Order] = {}
        self.status: dict[str, str] = {}
        self.placements: dict[str, Placement] = {}
        self.refusals: dict[str, Refusal] = {}
        self.submissions: list[tuple[float, Order]] = []
        self._measurements: dict[str, list[dict]] = {}
        self._completions: dict[str, tuple[float, float | None]] = {}
        self._offers: dict[int, Offer] = {}
        self._forgotten_before = -math.inf  # the calendars hold nothing from before this
        opening = [("market", now_s, {"policy": policy, "sites": len(supply.sites), "links": len(self.network.links),
                                      "terms": self.terms.to_dict()})]
        for i in range(len(supply.sites)):
            if supply.surplus[i] > 0:
                offer = self._posted(i, now_s)
                self._offers[i] = offer
                opening.append(("offer", now_s, offer.to_dict()))
        self.ledger.append_many(opening)

    @classmethod
    def from_topology(cls, topology, section: Mapping | None = None, **kwargs) -> "Market":
        """A market over a validated topology, with its ``market:`` section (or the defaults)."""
        terms = market_terms(topology, section)
        return cls(topology.graph(), Supply.from_topology(topology, terms), terms, **kwargs)

    # --- offers ------------------------------------------------------------------------------

    def _posted(self, i: int, now_s: float) -> Offer:
        horizon_end = now_s + self.terms.horizon_s
        surplus = int(self.supply.surplus[i])
        sold = self.book.sites[i].peak(now_s, horizon_end)
        rule = self.terms.rule
        return Offer(self.supply.sites[i], surplus, max(0, surplus - sold),
                     rule.price(float(self.supply.base[i]), sold, surplus), rule.step(sold, surplus), now_s)

    def offers(self, now_s: float) -> tuple[Offer, ...]:
        """Every site's posted offer now (sites with surplus)."""
        return tuple(self._posted(i, now_s) for i in range(len(self.supply.sites)) if self.supply.surplus[i] > 0)

    def _offer_changes(self, sites, now_s: float) -> list[tuple[int, Offer]]:
        changed = []
        for i in sites:
            offer = self._posted(i, now_s)
            old = self._offers.get(i)
            if old is None and offer.surplus_slots == 0:
                continue  # a site that never sold anything has no offer to change
            if old is None or (old.surplus_slots, old.step) != (offer.surplus_slots, offer.step):
                changed.append((i, offer))
        return changed

    def _commit_offers(self, changed) -> None:
        for i, offer in changed:
            self._offers[i] = offer
            self.ctx.posted[i] = offer.cny_per_worker_s

    def refresh_offers(self, now_s: float, *, forget_past: bool = True) -> int:
        """Re-post every site's offer at ``now_s`` (bookings that ended lower prices); record changes.

        Returns the number of offers that changed. ``forget_past`` also drops
        calendar steps that ended before ``now_s``.
        """
        if forget_past and now_s > self._forgotten_before:
            self.book.forget_before(now_s)
            self._forgotten_before = now_s
        changed = self._offer_changes(range(len(self.supply.sites)), now_s)
        self.ledger.append_many([("offer", now_s, offer.to_dict()) for _, offer in changed])
        self._commit_offers(changed)
        return len(changed)

    def update_surplus(self, site: str, surplus_slots: int, now_s: float) -> Offer:
        """A site's surplus changed (its background load did); record the offer change."""
        i = self.supply.site_index(site)
        before = int(self.supply.surplus[i])
        self.supply.set_surplus(site, surplus_slots)
        try:
            changed = self._offer_changes([i], now_s)
            self.ledger.append_many([("offer", now_s, offer.to_dict()) for _, offer in changed])
        except BaseException:
            self.supply.set_surplus(site, before)
            raise
        self._commit_offers(changed)
        return self._offers.get(i) or self._posted(i, now_s)

    # --- orders ------------------------------------------------------------------------------

    def _step(self, name: str) -> None:
        if self.fault is not None:
            self.fault(name)

    def submit(self, order: Order, now_s: float) -> Placement | Refusal:
        """Place an order now, all or nothing.

        Returns
        -------
        Placement
            Booked and recorded.
        Refusal
            Recorded; nothing booked.

        Raises
        ------
        OrderError
            A malformed order (nothing booked or recorded).
        """
        self._step("validate")
        validate_order(order, self.supply, self.network, now_s, taken_ids=self.orders)
        self._step("choose")
        outcome = POLICIES[self.policy](self.ctx, order, now_s)
        order_entry = ("order", now_s, order.to_dict())
        if isinstance(outcome, Refusal):
            self._step("record")
            self.ledger.append_many([order_entry, ("refusal", now_s, outcome.to_dict())])
            self.refusals[order.id] = outcome
            self._remember(order, REFUSED, now_s)
            return outcome
        tx = Transaction(self.book)
        try:
            for hold in outcome.holds:
                self._step("reserve_compute" if hold[0] == SITE else "reserve_link")
                tx.add(*hold)
            self._step("record")
            changed = self._offer_changes([self.supply.index[outcome.site]], now_s)
            self.ledger.append_many([order_entry, ("placement", now_s, outcome.to_dict()),
                                     *(("offer", now_s, offer.to_dict()) for _, offer in changed)])
        except BaseException:
            tx.rollback()
            raise
        self._commit_offers(changed)
        self.placements[order.id] = outcome
        self._remember(order, PLACED, now_s)
        return outcome

    def _remember(self, order: Order, status: str, now_s: float) -> None:
        self.orders[order.id] = order
        self.status[order.id] = status
        self.submissions.append((now_s, order))

    def placement(self, order_id: str) -> Placement:
        """The placement of a placed order."""
        self._known(order_id)
        if order_id not in self.placements:
            raise LifecycleError(f"order {order_id} was {self.status[order_id]}, not placed")
        return self.placements[order_id]

    def _known(self, order_id: str) -> None:
        if order_id not in self.orders:
            close = did_you_mean(order_id, self.orders) if len(self.orders) <= 1000 else None
            raise UnknownOrderError(f"no order {order_id!r} in the market; "
                                    + (f"did you mean {close!r}?" if close else
                                       f"give the id of one of its {len(self.orders)} orders"))

    def _expect(self, order_id: str, allowed: tuple[str, ...], action: str) -> Placement:
        self._known(order_id)
        status = self.status[order_id]
        if status not in allowed:
            raise LifecycleError(f"order {order_id} is {status}: cannot {action} it "
                                 f"(only a {' or '.join(allowed)} order)")
        return self.placements[order_id]

    def start(self, order_id: str, now_s: float) -> None:
        """The order started running on the network."""
        self._expect(order_id, (PLACED,), "start")
        self.ledger.append("start", now_s, {"order_id": order_id})
        self.status[order_id] = STARTED

    def measure(self, order_id: str, now_s: float, **values: float) -> None:
        """Record a measurement of a running order (stream: ``p99_ms``, ``served_rps``, ...)."""
        self._expect(order_id, (PLACED, STARTED), "measure")
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise MarketError(f"measurement of {order_id}: {key}={value!r} must be a finite number")
        data = {"order_id": order_id, **values}
        self.ledger.append("measurement", now_s, data)
        self._measurements.setdefault(order_id, []).append(dict(values))

    def _release_from(self, placement: Placement, now_s: float) -> list[tuple]:
        """Free the bookings of ``placement`` from ``now_s`` on; returns what was freed."""
        tx = Transaction(self.book)
        freed = []
        try:
            for kind, index, start, end, amount in placement.holds:
                start = max(start, now_s, self._forgotten_before)
                if end > start:
                    tx.add(kind, index, start, end, -amount)
                    freed.append((kind, index, start, end, amount))
        except BaseException:
            tx.rollback()
            raise
        return freed

    def complete(self, order_id: str, now_s: float, *, worker_s_used: float | None = None) -> None:
        """The order finished (results delivered, or the stream ended); frees what it no longer needs."""
        placement = self._expect(order_id, (PLACED, STARTED), "complete")
        self._finish(order_id, placement, now_s, "completion", COMPLETED,
                     {"order_id": order_id, "worker_s_used": worker_s_used})
        self._completions[order_id] = (now_s, worker_s_used)

    def cancel(self, order_id: str, now_s: float, reason: str = "") -> None:
        """Withdraw a placed order (e.g. the network could not realise it); frees its bookings from now."""
        placement = self._expect(order_id, (PLACED, STARTED), "cancel")
        self._finish(order_id, placement, now_s, "cancel", CANCELLED, {"order_id": order_id, "reason": reason})

    def _finish(self, order_id, placement, now_s, kind, status, data) -> None:
        freed = self._release_from(placement, now_s)
        try:
            changed = self._offer_changes([self.supply.index[placement.site]], now_s)
            self.ledger.append_many([(kind, now_s, {**data, "released": len(freed)}),
                                     *(("offer", now_s, offer.to_dict()) for _, offer in changed)])
        except BaseException:
            for hold in freed:
                self.book.add(hold[0], hold[1], hold[2], hold[3], hold[4])
            raise
        self._commit_offers(changed)
        self.status[order_id] = status

    def settle(self, order_id: str, now_s: float) -> Settlement:
        """Bill the order (:mod:`cpn_net.market.settlement`) and record it.

        A batch never completed by ``now_s`` is settled as not delivered.
        """
        placement = self._expect(order_id, (PLACED, STARTED, COMPLETED, CANCELLED), "settle")
        completed_s, used = self._completions.get(order_id, (None, None))
        bill = settle(placement, self.orders[order_id], completed_s=completed_s, worker_s_used=used,
                      measurements=self._measurements.get(order_id, ()))
        self.ledger.append("settlement", now_s, bill.to_dict())
        self.status[order_id] = SETTLED
        return bill
