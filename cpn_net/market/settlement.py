"""Settlement: what an order is charged, and the SLA credit it gets back for a miss.

Charges:

* compute — worker-seconds used (at most those booked) x the price the
  placement fixed;
* network — what was *reserved*: each slice's rate x its window x the links
  of its path x ``network_cny_per_mbps_s`` (:func:`cpn_net.market.pricing.network_charge_cny`);
  a reservation is paid whether or not it is filled.

SLA credit (:func:`credit_pct`), a share of the charge given back, by how much
of the promise was missed (the *miss share*):

====================================  ==========
miss share                            credit
====================================  ==========
0 (met)                               0 %
up to 5 %                             10 %
over 5 %, up to 25 %                  25 %
over 25 %                             50 %
never delivered (batch not completed) 100 %
====================================  ==========

* batch: miss share = lateness / (deadline - start), lateness the time the
  results arrived after the deadline (capped at 1);
* stream: the share of measured time (measurement intervals) in which the
  measured p99 exceeded the bound or fewer requests were served than were
  sent (and ordered) by more than 1 %. Unmeasured time counts as met: the
  orchestrator measures every interval it wants paid for.

Examples
--------
>>> credit_pct(0.0), credit_pct(0.03), credit_pct(0.2), credit_pct(0.6), credit_pct(0.0, delivered=False)
(0.0, 10.0, 25.0, 50.0, 100.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

from cpn_net.market.orders import BatchOrder, Order
from cpn_net.market.placement import Placement

#: (highest miss share, credit %) in increasing order; above the last share, the last credit.
CREDIT_TIERS = ((0.05, 10.0), (0.25, 25.0), (1.0, 50.0))
NOT_DELIVERED_CREDIT_PCT = 100.0
#: A stream interval misses when it serves fewer than this share of what was sent (within the order's rate).
SERVED_SHARE = 0.99


@dataclass(frozen=True)
class Settlement:
    """The bill of one order.

    Attributes
    ----------
    order_id : str
    worker_s : float
        Worker-seconds charged (used, at most booked).
    compute_cny, network_cny, charge_cny : float
        The charges and their sum.
    miss_share : float
        How much of the promise was missed, 0..1.
    credit_pct, credit_cny : float
        SLA credit.
    total_cny : float
        ``charge_cny - credit_cny``: what the buyer pays.
    note : str
        How the miss share came about.
    """

    order_id: str
    worker_s: float
    compute_cny: float
    network_cny: float
    charge_cny: float
    miss_share: float
    credit_pct: float
    credit_cny: float
    total_cny: float
    note: str

    def to_dict(self) -> dict:
        return asdict(self)


def credit_pct(miss_share: float, *, delivered: bool = True) -> float:
    """The SLA credit, in % of the charge, for a miss share; see the module docstring."""
    if not delivered:
        return NOT_DELIVERED_CREDIT_PCT
    if miss_share <= 0:
        return 0.0
    for share, credit in CREDIT_TIERS:
        if miss_share <= share:
            return credit
    return CREDIT_TIERS[-1][1]


def stream_miss_share(order, measurements: Iterable[Mapping]) -> tuple[float, str]:
    """Share of measured time a stream missed its p99 bound or its rate.

    Each measurement: ``p99_ms``, ``served_rps``, optional ``offered_rps``
    (default the ordered rate) and ``interval_s`` (default 1).

    Examples
    --------
    >>> from types import SimpleNamespace as O
    >>> stream_miss_share(O(p99_ms=50.0, rate_rps=100.0),
    ...                   [{"p99_ms": 40, "served_rps": 100}, {"p99_ms": 70, "served_rps": 100}])
    (0.5, '1 of 2 measured intervals missed (p99 above 50 ms or rate short)')
    """
    measured = missed = 0.0
    count = bad = 0
    for m in measurements:
        interval = float(m.get("interval_s", 1.0))
        offered = min(float(m.get("offered_rps", order.rate_rps)), order.rate_rps)
        miss = float(m["p99_ms"]) > order.p99_ms or float(m["served_rps"]) < SERVED_SHARE * offered
        measured += interval
        count += 1
        if miss:
            missed += interval
            bad += 1
    if count == 0:
        return 0.0, "not measured"
    return missed / measured, (f"{bad} of {count} measured intervals missed (p99 above {order.p99_ms:g} ms "
                               "or rate short)")


def settle(placement: Placement, order: Order, *, completed_s: float | None = None,
           worker_s_used: float | None = None, measurements: Iterable[Mapping] = ()) -> Settlement:
    """Bill a placed order; see the module docstring for the rule.

    Parameters
    ----------
    placement : Placement
    order : BatchOrder or StreamOrder
    completed_s : float, optional
        Batch: when the results arrived; None if never.
    worker_s_used : float, optional
        Worker-seconds the job really used; default what was booked.
    measurements : iterable of mapping
        Stream measurements (:func:`stream_miss_share`).

    Returns
    -------
    Settlement

    Examples
    --------
    >>> from cpn_net.market.placement import Placement
    >>> p = Placement("j1", "batch", "joint", "west", "east", 2, 100.0, 1100.0, (), 0.001, 2000.0, 2.0, 0.5,
    ...               1100.0, None, 0.0)
    >>> o = BatchOrder("j1", "east", 2000, 100, 1200, 0.01, workers=2)
    >>> s = settle(p, o, completed_s=1260.0, worker_s_used=1800.0)
    >>> s.compute_cny, s.network_cny, s.miss_share, s.credit_pct, s.total_cny
    (1.8, 0.5, 0.05, 10.0, 2.07)
    """
    used = placement.worker_s if worker_s_used is None else min(float(worker_s_used), placement.worker_s)
    compute = round(used * placement.cny_per_worker_s, 9)
    network = round(placement.network_cny, 9)
    charge = round(compute + network, 9)
    delivered = True
    if isinstance(order, BatchOrder):
        start = order.start_s if order.start_s is not None else placement.submitted_s
        window = max(order.deadline_s - start, 1e-9)
        if completed_s is None:
            delivered, share, note = False, 1.0, "not completed"
        else:
            late = max(0.0, completed_s - order.deadline_s)
            share = min(1.0, late / window)
            note = f"completed {late:g} s after the deadline" if late else "completed by the deadline"
    else:
        share, note = stream_miss_share(order, measurements)
    pct = credit_pct(share, delivered=delivered)
    credit = round(charge * pct / 100.0, 9)
    return Settlement(order.id, used, compute, network, charge, share, pct, credit, round(charge - credit, 9), note)
