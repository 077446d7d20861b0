"""The offline optimum: the most orders of a set that fit at once, by mixed-integer programming.

The yardstick for the online policies. It sees the whole order set in
advance (each order with the time it was submitted) and the same compute
and link capacities, and places orders on the same terms:

* candidates: every site that could run the order, over each of the two
  candidate routes from its source (:meth:`cpn_net.market.network.SiteNetwork.routes`),
  sized exactly as online (:func:`cpn_net.market.placement.size`: same
  slots, windows and rates), at the site's *base* price, kept only if that
  price is within the order's maximum;
* a 0/1 variable per candidate, at most one per order;
* per site, at every moment a candidate's compute window opens, the slots
  of the candidates running then fit the surplus; per shaped link, at every
  moment a slice window opens, their rates fit its capacity (a step
  function's peak is reached at some window's opening, so these points
  suffice);
* objective: the most orders placed; then, among placements of that many,
  the least total charge (a second program, in the time left).

Any online placement is one of these candidates at a price at least the
base (the surge rule only adds), so a feasible online outcome is a feasible
solution here: solved to optimality, the optimum places at least as many
orders as any policy. The solver is HiGHS through :func:`scipy.optimize.milp`.

Examples
--------
>>> import networkx as nx
>>> from cpn_net.market.offers import Supply
>>> from cpn_net.market.orders import BatchOrder
>>> G = nx.Graph(); G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2})])
>>> G.add_edge("a", "b", delay_ms=5.0, rate_mbps=10.0)
>>> supply = Supply(["a", "b"], [2, 2], [0.002, 0.001])
>>> orders = [(0.0, BatchOrder(f"j{i}", "a", 600, 100, 3600, 0.01, workers=2)) for i in range(3)]
>>> result = solve(G, supply, orders)
>>> result.admitted, sorted(site for site, _ in result.choices.values())
(2, ['a', 'b'])
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import networkx as nx
import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from cpn_net.market.calendar import SITE, BookAhead
from cpn_net.market.network import SiteNetwork
from cpn_net.market.offers import Supply
from cpn_net.market.orders import Order
from cpn_net.market.placement import Context, Miss, exact_cost, make_placement, order_start_s, size, static_mask
from cpn_net.market.terms import MarketTerms


@dataclass(frozen=True)
class OptimumResult:
    """What the optimum placed.

    Attributes
    ----------
    admitted : int
        Orders placed.
    orders : int
        Orders offered.
    choices : dict
        ``{order id: (site, route sites)}`` for every order placed.
    charge_cny : float
        Their total charge at base prices (the least for that many, if time allowed).
    optimal : bool
        HiGHS proved the count optimal (False after a time limit: ``admitted``
        is then a lower bound of the optimum).
    status : str
        HiGHS's message.
    variables, constraints : int
        Size of the program.
    bound : int
        The most orders any placement could admit (HiGHS's dual bound):
        ``admitted`` when optimal; otherwise the optimum lies in
        ``[admitted, bound]``.
    """

    admitted: int
    orders: int
    choices: dict
    charge_cny: float
    optimal: bool
    status: str
    variables: int
    constraints: int
    bound: int = 0


def candidates(ctx: Context, submissions: Sequence[tuple[float, Order]]) -> list[tuple[int, object, float]]:
    """``(order position, Placement, charge)`` for every candidate; see the module docstring."""
    out = []
    network = ctx.network
    for k, (now_s, order) in enumerate(submissions):
        start = order_start_s(order, now_s)
        source = network.index[order.source]
        able = static_mask(ctx, order) & (ctx.supply.base <= order.max_cny_per_worker_s)
        for c in np.flatnonzero(able):
            c = int(c)
            price = float(ctx.supply.base[c])
            for route in network.routes(source, c):
                plan = size(ctx, order, start, c, route)
                if isinstance(plan, Miss):
                    continue
                placement = make_placement(ctx, order, plan, price, "optimum", now_s)
                out.append((k, placement, exact_cost(ctx, plan, price)))
    return out


def solve(G: nx.Graph, supply: Supply, submissions: Sequence[tuple[float, Order]], terms: MarketTerms | None = None,
          *, reserved_mbps: Mapping | None = None, time_limit_s: float = 60.0) -> OptimumResult:
    """Place ``submissions`` (``(submitted_s, order)`` pairs) optimally; see the module docstring.

    Parameters
    ----------
    G : networkx.Graph
    supply : Supply
    submissions : sequence of (float, Order)
        Well-formed orders (``Market.submissions`` holds those a market saw).
    terms : MarketTerms, optional
    reserved_mbps : mapping, optional
        Link rates held outside the market, as for :class:`~cpn_net.market.market.Market`.
    time_limit_s : float
        HiGHS's time limit.

    Returns
    -------
    OptimumResult
    """
    deadline = time.monotonic() + time_limit_s
    terms = terms if terms is not None else MarketTerms()
    network = SiteNetwork(G, supply.sites, reserved_mbps=reserved_mbps)
    ctx = Context(supply, network, BookAhead(len(supply.sites), len(network.links)), terms, supply.base.copy())
    found = candidates(ctx, submissions)
    n = len(found)
    if n == 0:
        return OptimumResult(0, len(submissions), {}, 0.0, True, "no candidates", 0, 0, 0)
    rows, cols, vals, upper = [], [], [], []
    row = 0
    for k in range(len(submissions)):  # at most one candidate per order
        members = [j for j, (pos, _, _) in enumerate(found) if pos == k]
        if len(members) > 1:
            rows += [row] * len(members)
            cols += members
            vals += [1.0] * len(members)
            upper.append(1.0)
            row += 1
    uses: dict[tuple[str, int], list[tuple[int, float, float, int]]] = {}
    for j, (_, placement, _) in enumerate(found):
        for kind, index, start, end, amount in placement.holds:
            uses.setdefault((kind, index), []).append((j, start, end, amount))
    for (kind, index), held in sorted(uses.items()):
        capacity = int(supply.surplus[index]) if kind == SITE else network.link_capacity_kbps[index]
        starts = np.array([s for _, s, _, _ in held])
        ends = np.array([e for _, _, e, _ in held])
        amounts = np.array([a for _, _, _, a in held], dtype=float)
        if amounts.sum() <= capacity:
            continue  # every candidate at once fits: no constraint needed
        for moment in np.unique(starts):
            active = np.flatnonzero((starts <= moment) & (ends > moment))
            if amounts[active].sum() <= capacity:
                continue
            rows += [row] * len(active)
            cols += [held[a][0] for a in active]
            vals += list(amounts[active])
            upper.append(float(capacity))
            row += 1
    charges = np.array([charge for _, _, charge in found])
    constraints = []
    if row:
        matrix = coo_matrix((vals, (rows, cols)), shape=(row, n)).tocsr()
        constraints.append(LinearConstraint(matrix, -np.inf, np.array(upper)))
    # First the most orders; then, with at least that many, the least charge.
    first = milp(-np.ones(n), integrality=np.ones(n), bounds=Bounds(0, 1), constraints=constraints,
                 options={"time_limit": max(1.0, deadline - time.monotonic()), "disp": False})
    bound = _bound(first, len(submissions))
    if first.x is None:
        return OptimumResult(0, len(submissions), {}, 0.0, False, first.message, n, row, bound)
    result, optimal = first, first.status == 0
    most = int(round(-first.fun)) if optimal else int((first.x > 0.5).sum())
    left = deadline - time.monotonic()
    if left > 0:
        second = milp(charges, integrality=np.ones(n), bounds=Bounds(0, 1),
                      constraints=[*constraints, LinearConstraint(np.ones((1, n)), most, np.inf)],
                      options={"time_limit": left, "disp": False})
        if second.x is not None:
            result = second
    chosen = np.flatnonzero(result.x > 0.5)
    choices = {}
    total = 0.0
    for j in chosen:
        _, placement, charge = found[int(j)]
        choices[placement.order_id] = (placement.site, placement.slices[0].path if placement.slices
                                       else (placement.site,))
        total += charge
    return OptimumResult(len(choices), len(submissions), choices, total, optimal, first.message, n, row,
                         len(choices) if optimal else bound)


def _bound(result, orders: int) -> int:
    """The most orders any placement could admit, from HiGHS's dual bound (all of them if it has none)."""
    dual = getattr(result, "mip_dual_bound", None)
    if dual is None or not np.isfinite(dual):
        return orders
    return min(orders, int(np.floor(-dual + 1e-6)))

