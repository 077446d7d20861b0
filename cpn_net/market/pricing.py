"""Prices: the base price per site, the rule that raises it as surplus sells, the network charge.

Compute is sold by the **worker-second** (one worker slot for one second) in
the market's currency (CNY unless the ``market:`` section says otherwise).

Surge rule (:class:`PriceRule`). A site's price rises in ``surge_steps`` equal
steps from its base price, at nothing sold, to ``base * (1 + surge_pct / 100)``
as its whole surplus is sold::

    step  = floor(sold_slots * surge_steps / surplus_slots)     (at most surge_steps)
    price = base * (1 + surge_pct / 100 * step / surge_steps)

``sold_slots`` is the most slots already booked at the site at any moment of the
window being priced (the order's compute window; for a posted offer, the next
``horizon_s``, so an offer is the most any window in it costs), counted
*before* the order: an order pays the step its window was at when it arrived.
With the defaults (100 %, 10 steps) every tenth of the surplus sold adds a
tenth of the base price, so a site sold to 95 % asks
1.9 x its base. Steps rather than a smooth curve keep posted offers stable,
so the ledger records an offer change only when a step is crossed.

Network charge (:func:`network_charge_cny`): ``network_cny_per_mbps_s`` per
Mbit/s reserved for one second *on each link crossed*, so a slice of 10 Mbit/s
held 60 s on a 3-link path is charged for 10 x 60 x 3 = 1,800 Mbit/s x s. Far
sites cost more to reach, which is what a joint placement weighs against
their cheaper compute.

Defaults (for topologies without a ``market:`` section, imported ones
included; :mod:`cpn_net.market.terms`):

* base price of a site: the mean over its compute nodes of
  ``price_cny_per_hour / workers / 3600`` where the node has a price, else
  :data:`DEFAULT_BASE_CNY_PER_WORKER_S` (2.4 CNY per worker-hour: shared
  university GPU time, 2024-25);
* :data:`DEFAULT_NETWORK_CNY_PER_MBPS_S` (2e-6 CNY per Mbit/s x s per link:
  a leased 1 Gbit/s long-haul wave of ~5 links at ~25k CNY a month);
* surge 100 % in 10 steps.

Examples
--------
>>> rule = PriceRule()
>>> [round(rule.price(1.0, sold, 10), 2) for sold in (0, 1, 5, 9, 10)]
[1.0, 1.1, 1.5, 1.9, 2.0]
>>> network_charge_cny(10.0, 60.0, 3, 2e-6)
0.0036
"""

from __future__ import annotations

from dataclasses import dataclass

#: 2.4 CNY per worker-hour (shared university GPU time), per worker-second.
DEFAULT_BASE_CNY_PER_WORKER_S = 2.4 / 3600
#: CNY per Mbit/s reserved for one second on one link.
DEFAULT_NETWORK_CNY_PER_MBPS_S = 2e-6
DEFAULT_SURGE_PCT = 100.0
DEFAULT_SURGE_STEPS = 10


@dataclass(frozen=True)
class PriceRule:
    """The surge rule: the price rises in steps as a site's surplus is sold.

    Attributes
    ----------
    surge_pct : float
        How much above base the price is when the whole surplus is sold, in %.
    surge_steps : int
        Number of equal steps between base and the top price.

    Examples
    --------
    >>> PriceRule(surge_pct=50, surge_steps=2).price(0.01, 3, 4)
    0.0125
    """

    surge_pct: float = DEFAULT_SURGE_PCT
    surge_steps: int = DEFAULT_SURGE_STEPS

    def step(self, sold_slots: int, surplus_slots: int) -> int:
        """The price step ``0..surge_steps`` at ``sold_slots`` of ``surplus_slots`` sold.

        Examples
        --------
        >>> PriceRule().step(3, 10), PriceRule().step(12, 10), PriceRule().step(0, 0)
        (3, 10, 0)
        """
        if surplus_slots <= 0 or sold_slots <= 0:
            return 0
        return min(self.surge_steps, sold_slots * self.surge_steps // surplus_slots)

    def price(self, base_cny_per_worker_s: float, sold_slots: int, surplus_slots: int) -> float:
        """The price per worker-second at a site with ``sold_slots`` of ``surplus_slots`` sold."""
        step = self.step(sold_slots, surplus_slots)
        if step == 0:
            return base_cny_per_worker_s
        return base_cny_per_worker_s * (1.0 + self.surge_pct / 100.0 * step / self.surge_steps)

    @property
    def top_factor(self) -> float:
        """The most the rule multiplies a base price by.

        Examples
        --------
        >>> PriceRule().top_factor
        2.0
        """
        return 1.0 + self.surge_pct / 100.0


def network_charge_cny(rate_mbps: float, duration_s: float, links: int, cny_per_mbps_s: float) -> float:
    """The network charge of a slice: rate x duration x links crossed x price.

    Parameters
    ----------
    rate_mbps : float
        Guaranteed rate reserved.
    duration_s : float
        How long it is reserved.
    links : int
        Links on its path (0 for a site's own LAN: no charge).
    cny_per_mbps_s : float
        Price per Mbit/s per second per link.

    Returns
    -------
    float

    Examples
    --------
    >>> network_charge_cny(100.0, 3600.0, 0, 2e-6)
    0.0
    """
    return rate_mbps * duration_s * links * cny_per_mbps_s
