"""Placement: where an order runs, on which path, at what rate and price, or why it cannot.

A placement is joint over compute, network and price, and all or nothing: it
books worker slots at one site over the compute window *and* a slice with a
guaranteed rate on every link of a path from the order's source over each
transfer window (:mod:`cpn_net.market.sizing` sizes both), at the site's
price for that window (:mod:`cpn_net.market.pricing`), or nothing at all.

Policies (each returns a :class:`Placement` to book or a :class:`Refusal`):

* ``nearest`` — the least-delay site that can meet the deadline (or latency
  bound) with its slots free over the window; blind to price. Price and
  link residuals are checked after the choice, not chosen by.
* ``cheapest`` — the site with the lowest posted price that can meet the
  deadline with its slots free; blind to the network's load. Link residuals
  are checked after the choice.
* ``joint`` (ours) — every site is ranked by an estimate of the order's
  total charge (compute at the site's posted price plus the network charge
  of its path, :func:`estimate_costs`: one vector over all sites); the best
  ranked are then checked exactly, the least-delay route first and, when a
  link of it is short (booked, or too narrow for the deadline), the
  link-disjoint alternate. The first ``breadth`` feasible candidates (default
  2; or the ``depth`` best ranked, default 32, whichever comes first) compete
  on exact charge, ties to less delay, then to the smaller site index. The
  estimate differs from the exact charge mainly where a site's surge step over
  the order's window differs from its posted one, so the first feasible
  candidates are nearly always the cheapest.
* ``optimum`` — offline, the whole order set at once (:mod:`cpn_net.market.optimum`).

A nearest or cheapest search looks at most ``scan`` sites (default 256).

A :class:`Refusal` names the binding constraint: ``compute`` (the site and
window without enough free slots), ``network`` (the link, its residual and
the shortfall), ``price`` (the site's price above the order's maximum),
``deadline`` (no site can finish in time even on an idle network) or
``latency`` (no site meets a stream's p99 bound). When every candidate was
too late (too slow) it is ``deadline`` (``latency``) with the best any site
could do; otherwise the first candidate, in the policy's order, stopped by
compute, network or price, with a count of the others.

Examples
--------
>>> import networkx as nx
>>> from cpn_net.market.market import Market
>>> from cpn_net.market.offers import Supply
>>> from cpn_net.market.orders import BatchOrder
>>> G = nx.Graph()
>>> G.add_nodes_from([("east", {"id": 1}), ("west", {"id": 2})])
>>> G.add_edge("east", "west", delay_ms=10.0, rate_mbps=100.0)
>>> market = Market(G, Supply(["east", "west"], [0, 8], [0.002, 0.001]))
>>> placed = market.submit(BatchOrder("j1", "east", 3600, 1000, 7200, 0.01, workers=4), now_s=0.0)
>>> placed.site, placed.slots, placed.slices[0].path, placed.slices[0].rate_mbps
('west', 4, ('east', 'west'), 1.428)
>>> market.submit(BatchOrder("j2", "east", 3600, 1000, 7200, 0.01, workers=8), now_s=0.0).constraint
'compute'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cpn_net.market.calendar import LINK, SITE, BookAhead
from cpn_net.market.network import Route, SiteNetwork
from cpn_net.market.offers import Supply
from cpn_net.market.orders import BatchOrder, Order, StreamOrder
from cpn_net.market.sizing import (PAYLOAD_SHARE, TooLate, batch_times, stream_p99_ms, stream_rate_kbps,
                                   stream_slots)
from cpn_net.market.terms import MarketTerms

COMPUTE, NETWORK, PRICE, DEADLINE, LATENCY = "compute", "network", "price", "deadline", "latency"
CONSTRAINTS = (COMPUTE, NETWORK, PRICE, DEADLINE, LATENCY)
POLICY_NAMES = ("nearest", "cheapest", "joint")
_PRICE_EPS = 1e-12


@dataclass(frozen=True)
class SliceHold:
    """A time-bounded slice: a guaranteed rate on a path over a window.

    Attributes
    ----------
    purpose : {"input", "result", "stream"}
    path : tuple of str
        Sites from the order's source to the compute site (``result`` runs it backwards).
    links : tuple of str
        The links, ``u-v`` with sites sorted.
    rate_mbps : float
        Guaranteed in both directions of every link, as a cpn_net slice is.
    start_s, end_s : float
    delay_ms : float
        One-way delay of the path.
    """

    purpose: str
    path: tuple[str, ...]
    links: tuple[str, ...]
    rate_mbps: float
    start_s: float
    end_s: float
    delay_ms: float

    def to_dict(self) -> dict:
        return {"purpose": self.purpose, "path": list(self.path), "links": list(self.links),
                "rate_mbps": self.rate_mbps, "start_s": self.start_s, "end_s": self.end_s,
                "delay_ms": self.delay_ms}


@dataclass(frozen=True)
class Placement:
    """Where and when an order runs, and what it is charged if all goes to plan.

    Attributes
    ----------
    order_id, kind, policy : str
    site : str
        The compute site.
    source : str
        Where the data (or the clients) are.
    slots : int
        Worker slots booked at ``site`` over ``[compute_start_s, compute_end_s)``.
    compute_start_s, compute_end_s : float
    slices : tuple of SliceHold
        Empty when the order runs at its source.
    cny_per_worker_s : float
        The price the order pays (its window's surge step at booking).
    worker_s : float
        Worker-seconds booked.
    compute_cny, network_cny : float
        The charges if all goes to plan (:mod:`cpn_net.market.settlement`).
    finish_s : float or None
        Batch: when the result is planned to be delivered.
    p99_ms : float or None
        Stream: the estimated p99 response time, round trip included.
    submitted_s : float
    holds : tuple
        The calendar bookings ``(kind, index, start, end, amount)``.
    """

    order_id: str
    kind: str
    policy: str
    site: str
    source: str
    slots: int
    compute_start_s: float
    compute_end_s: float
    slices: tuple[SliceHold, ...]
    cny_per_worker_s: float
    worker_s: float
    compute_cny: float
    network_cny: float
    finish_s: float | None
    p99_ms: float | None
    submitted_s: float
    holds: tuple = field(default=(), compare=False, repr=False)

    @property
    def total_cny(self) -> float:
        return self.compute_cny + self.network_cny

    @property
    def end_s(self) -> float:
        """When the last booking ends."""
        return max([self.compute_end_s] + [s.end_s for s in self.slices])

    def to_dict(self) -> dict:
        """JSON-ready form; the path is given once (every slice of a placement rides it)."""
        first = self.slices[0] if self.slices else None
        return {"order_id": self.order_id, "kind": self.kind, "policy": self.policy, "site": self.site,
                "source": self.source, "slots": self.slots, "compute_start_s": self.compute_start_s,
                "compute_end_s": self.compute_end_s,
                "path": list(first.path) if first else [self.site], "links": list(first.links) if first else [],
                "delay_ms": first.delay_ms if first else 0.0,
                "slices": [{"purpose": s.purpose, "rate_mbps": s.rate_mbps, "start_s": s.start_s, "end_s": s.end_s}
                           for s in self.slices],
                "cny_per_worker_s": self.cny_per_worker_s, "worker_s": self.worker_s,
                "compute_cny": self.compute_cny, "network_cny": self.network_cny, "finish_s": self.finish_s,
                "p99_ms": self.p99_ms, "submitted_s": self.submitted_s}


@dataclass(frozen=True)
class Refusal:
    """An order that does not fit, and the binding constraint.

    Attributes
    ----------
    order_id, policy : str
    constraint : {"compute", "network", "price", "deadline", "latency"}
    message : str
        Names the site and window, the link and shortfall, the price, or the
        fastest finish; and what to change.
    site : str or None
    window : (float, float) or None
        The stretch without enough compute or bandwidth.
    link : str or None
        ``network``: the link short of bandwidth.
    residual_mbps, shortfall_mbps : float or None
        ``network``: what the link has left and how much more is needed.
    free_slots, needed_slots : int or None
        ``compute``.
    cny_per_worker_s, max_cny_per_worker_s : float or None
        ``price``.
    fastest_s : float or None
        ``deadline``: the earliest finish of any site; ``latency``: the best p99 in ms.
    others : dict
        For ``joint``: how many other candidates failed on each constraint.
    """

    order_id: str
    policy: str
    constraint: str
    message: str
    site: str | None = None
    window: tuple[float, float] | None = None
    link: str | None = None
    residual_mbps: float | None = None
    shortfall_mbps: float | None = None
    free_slots: int | None = None
    needed_slots: int | None = None
    cny_per_worker_s: float | None = None
    max_cny_per_worker_s: float | None = None
    fastest_s: float | None = None
    others: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("order_id", "policy", "constraint", "message", "site", "link",
                                            "residual_mbps", "shortfall_mbps", "free_slots", "needed_slots",
                                            "cny_per_worker_s", "max_cny_per_worker_s", "fastest_s")}
        out["window"] = list(self.window) if self.window is not None else None
        out["others"] = dict(self.others)
        return out


@dataclass
class Context:
    """What placement reads: supply, network, calendars, terms and the posted prices (by site index)."""

    supply: Supply
    network: SiteNetwork
    book: BookAhead
    terms: MarketTerms
    posted: np.ndarray
    depth: int = 32
    breadth: int = 2
    scan: int = 256


class Plan:
    """An order sized at one site on one route: slots, windows and rate, not yet priced or booked."""

    __slots__ = ("site", "route", "slots", "compute", "windows", "rate_kbps", "finish_s", "p99_ms")

    def __init__(self, site, route, slots, compute, windows, rate_kbps, finish_s=None, p99_ms=None):
        self.site = site            # site index
        self.route = route          # Route (one site when local)
        self.slots = slots
        self.compute = compute      # (start, end)
        self.windows = windows      # ((purpose, start, end), ...) slices; () when local
        self.rate_kbps = rate_kbps
        self.finish_s = finish_s
        self.p99_ms = p99_ms

    @property
    def worker_s(self) -> float:
        return self.slots * (self.compute[1] - self.compute[0])

    def slice_mbps_s(self) -> float:
        """Rate x time over the slice windows (per link)."""
        return sum(end - start for _, start, end in self.windows) * self.rate_kbps / 1000.0


class Miss:
    """Why a candidate does not fit: the constraint and its particulars."""

    __slots__ = ("constraint", "site", "info")

    def __init__(self, constraint: str, site: int, **info):
        self.constraint = constraint
        self.site = site
        self.info = info


def order_start_s(order: Order, now_s: float) -> float:
    """When an order's first window may open: its ``start_s`` if later than now."""
    if order.start_s is None:
        return now_s
    return max(now_s, order.start_s)


def size(ctx: Context, order: Order, start_s: float, site: int, route: Route) -> Plan | Miss:
    """Size ``order`` at site index ``site`` over ``route`` (static: nothing booked is read).

    Returns a :class:`Plan` (slots, windows, rate) or the :class:`Miss` that
    makes the site impossible whatever is booked (too few slots in all, too
    late, too slow). :func:`check` then prices it against the calendars.

    Examples
    --------
    >>> import networkx as nx
    >>> from cpn_net.market.market import Market
    >>> G = nx.Graph(); G.add_nodes_from([("east", {"id": 1}), ("west", {"id": 2})])
    >>> G.add_edge("east", "west", delay_ms=10.0, rate_mbps=100.0)
    >>> market = Market(G, Supply(["east", "west"], [0, 8], [0.002, 0.001]))
    >>> order = BatchOrder("j1", "east", 600, 100, 3600, 0.01, workers=2)
    >>> plan = size(market.ctx, order, 0.0, 1, market.network.route("east", "west"))
    >>> plan.slots, plan.rate_kbps, [w[0] for w in plan.windows], check(market.ctx, order, plan)
    (2, 272, ['input'], 0.001)
    >>> size(market.ctx, BatchOrder("j2", "east", 600, 100, 200, 0.01, workers=2), 0.0, 1,
    ...      market.network.route("east", "west")).constraint
    'deadline'
    """
    supply = ctx.supply
    local = route.hops == 0
    if isinstance(order, BatchOrder):
        if supply.surplus[site] < order.workers:
            return Miss(COMPUTE, site, free=int(supply.surplus[site]), needed=order.workers,
                        window=(start_s, order.deadline_s), static=True)
        times = batch_times(order.work_worker_s, order.workers, order.input_mb, order.result_mb, start_s,
                            order.deadline_s, delay_ms=route.delay_ms, capacity_mbps=route.capacity_mbps,
                            slack_pct=ctx.terms.batch_slack_pct, local=local)
        if isinstance(times, TooLate):
            return Miss(DEADLINE, site, fastest=times.fastest_finish_s, by_network=times.by_network)
        windows = tuple((purpose, *window) for purpose, window in (("input", times.input), ("result", times.result))
                        if window is not None)
        return Plan(site, route, order.workers, times.compute, windows, times.rate_kbps, finish_s=times.finish_s)
    service = supply.services[order.service]
    service_ms = float(service.service_time_ms[site])
    cap = int(min(service.slots[site], supply.surplus[site]))
    window = (order.start_s, order.start_s + order.duration_s)
    load = order.rate_rps * service_ms / 1000.0
    if load >= cap:
        return Miss(COMPUTE, site, free=cap, needed=int(math.floor(load)) + 1, window=window, static=True)
    rtt_ms = 2.0 * route.delay_ms
    slots = stream_slots(order.rate_rps, service_ms, order.p99_ms - rtt_ms, cap)
    if slots is None:
        return Miss(LATENCY, site, best_ms=rtt_ms + stream_p99_ms(cap, order.rate_rps, service_ms), rtt_ms=rtt_ms)
    rate_kbps = 0 if local else stream_rate_kbps(order.rate_rps, order.request_kb, order.response_kb)
    windows = (("stream", *window),) if rate_kbps else ()
    p99 = rtt_ms + stream_p99_ms(slots, order.rate_rps, service_ms)
    return Plan(site, route, slots, window, windows, rate_kbps, p99_ms=p99)


def check(ctx: Context, order: Order, plan: Plan) -> float | Miss:
    """Price ``plan`` and check it against the calendars: its price, or the first constraint it breaks.

    Compute first (slots free over the compute window), then price (the
    window's surge step against the order's maximum), then every shaped link
    of the route over every slice window; a network miss names the link
    falling shortest.
    """
    i = plan.site
    start, end = plan.compute
    calendar = ctx.book.sites[i]
    sold = calendar.peak(start, end)
    surplus = int(ctx.supply.surplus[i])
    if surplus - sold < plan.slots:
        peak, frm, to = calendar.worst(start, end)
        return Miss(COMPUTE, i, free=max(0, surplus - peak), needed=plan.slots, window=(frm, to))
    price = ctx.terms.rule.price(float(ctx.supply.base[i]), sold, surplus)
    if price > order.max_cny_per_worker_s + _PRICE_EPS:
        return Miss(PRICE, i, price=price, window=(start, end))
    if plan.rate_kbps:
        worst = None
        capacity = ctx.network.link_capacity_kbps
        links = ctx.book.links
        need = plan.rate_kbps
        for li in plan.route.links:
            cap = capacity[li]
            if cap is None:
                continue
            for _, s, e in plan.windows:
                residual = cap - links[li].peak(s, e)
                if residual < need and (worst is None or residual < worst[0]):
                    worst = (residual, li, s, e)
        if worst is not None:
            residual, li, s, e = worst
            _, frm, to = links[li].worst(s, e)
            return Miss(NETWORK, i, link=li, residual_kbps=max(0, residual), need_kbps=need, window=(frm, to))
    return price


def exact_cost(ctx: Context, plan: Plan, price: float) -> float:
    """The order's charge under ``plan`` at ``price``: compute plus network."""
    network = ctx.terms.network_cny_per_mbps_s * plan.slice_mbps_s() * plan.route.hops
    return price * plan.worker_s + network


def make_placement(ctx: Context, order: Order, plan: Plan, price: float, policy: str, now_s: float) -> Placement:
    """The :class:`Placement` of a checked plan, with its calendar holds."""
    net = ctx.network
    route = plan.route
    rate_mbps = plan.rate_kbps / 1000.0
    link_names = tuple(net.link_name(li) for li in route.links)
    slices = tuple(SliceHold(purpose, route.sites, link_names, rate_mbps, s, e, route.delay_ms)
                   for purpose, s, e in plan.windows)
    holds = [(SITE, plan.site, plan.compute[0], plan.compute[1], plan.slots)]
    capacity = net.link_capacity_kbps
    for _, s, e in plan.windows:
        for li in route.links:
            if capacity[li] is not None:
                holds.append((LINK, li, s, e, plan.rate_kbps))
    network_cny = ctx.terms.network_cny_per_mbps_s * plan.slice_mbps_s() * route.hops
    return Placement(order.id, order.kind, policy, net.sites[plan.site], order.source, plan.slots,
                     plan.compute[0], plan.compute[1], slices, price, plan.worker_s, price * plan.worker_s,
                     network_cny, plan.finish_s, plan.p99_ms, now_s, tuple(holds))


def refusal(ctx: Context, order: Order, policy: str, miss: Miss, others: dict | None = None) -> Refusal:
    """The :class:`Refusal` naming ``miss`` in words, with the fix."""
    site = ctx.network.sites[miss.site] if miss.site is not None else None
    info = miss.info
    head = f"order {order.id} refused ({policy}): "
    others = dict(others or {})
    tail = ""
    if others:
        tail = " (other sites: " + ", ".join(f"{n} {c}" for c, n in sorted(others.items())) + ")"
    if miss.constraint == COMPUTE:
        frm, to = info["window"]
        what = "worker slots in all" if info.get("static") else "worker slots free"
        fix = ("ask for fewer workers or split the order" if info.get("static")
               else "choose a later deadline or start, or fewer workers")
        if isinstance(order, StreamOrder):
            fix = "lower rate_rps or split the stream" if info.get("static") else "start the stream later"
        return Refusal(order.id, policy, COMPUTE,
                       f"{head}no compute: site {site} has {info['free']} of {info['needed']} {what} over "
                       f"[{frm:g} s, {to:g} s); {fix}{tail}",
                       site=site, window=(frm, to), free_slots=info["free"], needed_slots=info["needed"],
                       others=others)
    if miss.constraint == NETWORK:
        frm, to = info["window"]
        residual, need = info["residual_kbps"] / 1000.0, info["need_kbps"] / 1000.0
        short = round(need - residual, 3)
        link = ctx.network.link_name(info["link"])
        fix = ("give a later deadline (a lower rate) or less data" if isinstance(order, BatchOrder)
               else "start later or lower the rate")
        return Refusal(order.id, policy, NETWORK,
                       f"{head}no bandwidth: link {link} has {residual:g} Mbit/s residual over [{frm:g} s, "
                       f"{to:g} s), {short:g} Mbit/s short of the {need:g} Mbit/s slice from "
                       f"{order.source} to {site}; {fix}{tail}",
                       site=site, window=(frm, to), link=link, residual_mbps=residual,
                       shortfall_mbps=short, others=others)
    if miss.constraint == PRICE:
        frm, to = info["window"]
        return Refusal(order.id, policy, PRICE,
                       f"{head}price: site {site} asks {info['price']:.6g} per worker-second over [{frm:g} s, "
                       f"{to:g} s), above max_cny_per_worker_s={order.max_cny_per_worker_s:g}; raise "
                       f"max_cny_per_worker_s to {info['price']:.6g}{tail}",
                       site=site, window=(frm, to), cny_per_worker_s=info["price"],
                       max_cny_per_worker_s=order.max_cny_per_worker_s, others=others)
    if miss.constraint == DEADLINE:
        fastest = info["fastest"]
        return Refusal(order.id, policy, DEADLINE,
                       f"{head}no placement can meet deadline_s={order.deadline_s:g}: the fastest, at {site} on "
                       f"an idle network, finishes at {fastest:g} s; give a deadline of at least "
                       f"{math.ceil(fastest):g}, less data or more workers{tail}",
                       site=site, fastest_s=fastest, others=others)
    best = info["best_ms"]
    return Refusal(order.id, policy, LATENCY,
                   f"{head}no site meets p99_ms={order.p99_ms:g}: the best, {site}, gives {best:.4g} ms "
                   f"({info['rtt_ms']:g} ms of it the round trip); raise p99_ms to {math.ceil(best):g} or "
                   f"lower rate_rps{tail}",
                   site=site, fastest_s=best, others=others)


# --- candidate ranking -------------------------------------------------------------------------

def static_mask(ctx: Context, order: Order) -> np.ndarray:
    """Sites that could take the order at all: enough surplus (and the service, for a stream). Cached; read only."""
    if isinstance(order, BatchOrder):
        return ctx.supply.able(order.workers)
    return ctx.supply.service_view(order.service).offering


def estimate_costs(ctx: Context, order: Order, start_s: float, tree) -> np.ndarray:
    """Estimated charge of the order at every site (inf where it cannot run), one vector.

    Compute at the posted price, plus the network charge of the least-delay
    path at the rate the deadline needs (batch) or the stream's rate. Sites
    that cannot meet the deadline (or latency bound) even with unlimited
    bandwidth, lack the surplus or the service, are unreachable, or whose base
    price is above the order's maximum are inf.

    Examples
    --------
    >>> import networkx as nx
    >>> from cpn_net.market.market import Market
    >>> G = nx.path_graph(["a", "b", "c"]); nx.set_node_attributes(G, {"a": 1, "b": 2, "c": 3}, "id")
    >>> nx.set_edge_attributes(G, 5.0, "delay_ms"); nx.set_edge_attributes(G, 100.0, "rate_mbps")
    >>> market = Market(G, Supply(["a", "b", "c"], [0, 4, 4], [0.002, 0.002, 0.001]))
    >>> order = BatchOrder("j1", "a", 600, 100, 3600, 0.01)
    >>> costs = estimate_costs(market.ctx, order, 0.0, market.network.tree(0))
    >>> float(costs[0]), bool(costs[2] < costs[1])
    (inf, True)
    """
    supply = ctx.supply
    delay = tree.delay_s
    net_price = ctx.terms.network_cny_per_mbps_s
    with np.errstate(divide="ignore", invalid="ignore"):
        if isinstance(order, BatchOrder):
            cost = ctx.posted * order.work_worker_s
            mbit = 8.0 * (order.input_mb + order.result_mb)
            if mbit > 0:
                legs_s = delay * float((order.input_mb > 0) + (order.result_mb > 0))
                transfer = (order.deadline_s - start_s - order.work_worker_s / order.workers) - legs_s
                ok = transfer > 0
                ok &= supply.able(order.workers)
                # slice Mbit/s x s per link: the data on the wire plus the rate held while the path delays it
                network = legs_s
                network *= mbit / PAYLOAD_SHARE
                network /= transfer
                network += mbit / PAYLOAD_SHARE
                network *= tree.hops
                network *= net_price
                cost += network
            else:
                ok = supply.able(order.workers) & np.isfinite(delay)
        else:
            service = supply.services[order.service]
            view = supply.service_view(order.service)
            slots = np.floor(order.rate_rps / 1000.0 * service.service_time_ms)
            slots += 1.0
            ok = view.slots >= slots
            ok &= view.offering
            ok &= (order.p99_ms - 2000.0 * delay) > service.service_time_ms
            rate_mbps = stream_rate_kbps(order.rate_rps, order.request_kb, order.response_kb) / 1000.0
            cost = ctx.posted * slots
            cost += tree.hops * (net_price * rate_mbps)
            cost *= order.duration_s
        ok &= supply.base <= order.max_cny_per_worker_s
    return np.where(ok, cost, np.inf)


def _ranked(values: np.ndarray, delay: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the ``limit`` smallest finite values, ordered by (value, delay, index)."""
    if len(values) > limit:
        top = np.argpartition(values, limit - 1)[:limit]
        top = top[np.isfinite(values[top])]
    else:
        top = np.flatnonzero(np.isfinite(values))
    return top[np.lexsort((top, delay[top], values[top]))]


# --- policies ----------------------------------------------------------------------------------

class _Misses:
    """The misses of the candidates a policy tried, in its order of preference."""

    def __init__(self) -> None:
        self.items: list[Miss] = []

    def add(self, miss: Miss) -> None:
        self.items.append(miss)

    def binding(self) -> tuple[Miss | None, dict]:
        """The binding miss and a count of the others per constraint.

        Too late everywhere: the site finishing first. Too slow everywhere:
        the best p99. Otherwise the first candidate stopped by compute,
        network or price.
        """
        items = self.items
        if not items:
            return None, {}
        kinds = {m.constraint for m in items}
        if kinds == {DEADLINE}:
            chosen = min(items, key=lambda m: m.info["fastest"])
        elif kinds == {LATENCY}:
            chosen = min(items, key=lambda m: m.info["best_ms"])
        else:
            chosen = next((m for m in items if m.constraint in (COMPUTE, NETWORK, PRICE)), items[0])
        others: dict = {}
        for m in items:
            if m is not chosen:
                others[m.constraint] = others.get(m.constraint, 0) + 1
        return chosen, others


def place_joint(ctx: Context, order: Order, now_s: float) -> Placement | Refusal:
    """The joint policy; see the module docstring."""
    start = order_start_s(order, now_s)
    source = ctx.network.index[order.source]
    tree = ctx.network.tree(source)
    estimates = estimate_costs(ctx, order, start, tree)
    best = None
    misses = _Misses()
    feasible = 0
    for c in _ranked(estimates, tree.delay_s, ctx.depth):
        c = int(c)
        miss = None
        for route in _routes_to_try(ctx, source, c):
            plan = size(ctx, order, start, c, route)
            outcome = plan if isinstance(plan, Miss) else check(ctx, order, plan)
            if isinstance(outcome, Miss):
                if miss is None or (miss.constraint == outcome.constraint == DEADLINE
                                    and outcome.info["fastest"] < miss.info["fastest"]):
                    miss = outcome
                if outcome.constraint == NETWORK or outcome.info.get("by_network"):
                    continue  # the link-disjoint alternate may have room, or more capacity
                break
            miss = None
            key = (exact_cost(ctx, plan, outcome), float(route.delay_ms), c)
            if best is None or key < best[0]:
                best = (key, plan, outcome)
            feasible += 1
            break
        if miss is not None:
            misses.add(miss)
        if feasible >= ctx.breadth:
            break
    if best is not None:
        _, plan, price = best
        return make_placement(ctx, order, plan, price, "joint", now_s)
    return _refuse(ctx, order, "joint", misses, start, tree)


def _routes_to_try(ctx: Context, source: int, target: int):
    primary = ctx.network.route(source, target)
    if primary is None:
        return
    yield primary
    alternate = ctx.network.alternate(source, target)
    if alternate is not None:
        yield alternate


def place_nearest(ctx: Context, order: Order, now_s: float) -> Placement | Refusal:
    """The nearest policy; see the module docstring."""
    start = order_start_s(order, now_s)
    tree = ctx.network.tree(ctx.network.index[order.source])
    by_delay = tree.nearest_first()
    mask = static_mask(ctx, order) & np.isfinite(tree.delay_s)
    return _first_with_capacity(ctx, order, "nearest", now_s, start, by_delay[mask[by_delay]][:ctx.scan], tree)


def place_cheapest(ctx: Context, order: Order, now_s: float) -> Placement | Refusal:
    """The cheapest policy; see the module docstring."""
    start = order_start_s(order, now_s)
    tree = ctx.network.tree(ctx.network.index[order.source])
    mask = static_mask(ctx, order) & np.isfinite(tree.delay_s)
    prices = np.where(mask, ctx.posted, np.inf)
    blind = np.zeros(len(prices), dtype=np.float32)  # blind to the network: ties go to the site index
    return _first_with_capacity(ctx, order, "cheapest", now_s, start, _ranked(prices, blind, ctx.scan), tree)


def _first_with_capacity(ctx: Context, order: Order, policy: str, now_s: float, start: float, candidates,
                         tree) -> Placement | Refusal:
    """The first candidate meeting the deadline with its slots free; its price and links decide the rest."""
    misses = _Misses()
    for c in candidates:
        c = int(c)
        plan = size(ctx, order, start, c, ctx.network.route(tree.source, c))
        if isinstance(plan, Miss):
            misses.add(plan)
            continue
        calendar = ctx.book.sites[c]
        surplus = int(ctx.supply.surplus[c])
        if surplus - calendar.peak(*plan.compute) < plan.slots:
            peak, frm, to = calendar.worst(*plan.compute)
            misses.add(Miss(COMPUTE, c, free=max(0, surplus - peak), needed=plan.slots, window=(frm, to)))
            continue
        outcome = check(ctx, order, plan)
        if isinstance(outcome, Miss):
            return refusal(ctx, order, policy, outcome)
        return make_placement(ctx, order, plan, outcome, policy, now_s)
    return _refuse(ctx, order, policy, misses, start, tree)


def _refuse(ctx: Context, order: Order, policy: str, misses: _Misses, start: float, tree) -> Refusal:
    """The refusal naming the binding miss; when no candidate was tried, the nearest capable sites' reasons."""
    if not misses.items:
        mask = static_mask(ctx, order) & np.isfinite(tree.delay_s)
        by_delay = tree.nearest_first()
        for c in by_delay[mask[by_delay]][:ctx.scan]:
            plan = size(ctx, order, start, int(c), ctx.network.route(tree.source, int(c)))
            outcome = plan if isinstance(plan, Miss) else check(ctx, order, plan)
            if isinstance(outcome, Miss):
                misses.add(outcome)
    miss, others = misses.binding()
    if miss is not None:
        return refusal(ctx, order, policy, miss, others)
    if isinstance(order, BatchOrder):
        most = int(ctx.supply.surplus.max()) if len(ctx.supply.sites) else 0
        return Refusal(order.id, policy, COMPUTE,
                       f"order {order.id} refused ({policy}): no site reachable from {order.source} sells "
                       f"{order.workers} worker slots (the most any site sells is {most}); ask for fewer workers",
                       needed_slots=order.workers, free_slots=most)
    return Refusal(order.id, policy, COMPUTE,
                   f"order {order.id} refused ({policy}): no site reachable from {order.source} offers "
                   f"{order.service} with surplus; choose another service or source",
                   needed_slots=1, free_slots=0)


POLICIES = {"nearest": place_nearest, "cheapest": place_cheapest, "joint": place_joint}
