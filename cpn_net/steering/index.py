"""Exact argmin of a separable cost over service instances, fast.

Every scoring policy ranks an instance ``i`` at site ``t`` for a client at
ingress site ``s`` by a cost that splits in two::

    cost(s, i) = network_term(path(s, t)) + compute_term(metrics(i))

so the best instance is found in two steps:

1. per site, the instance with the least ``compute_term`` among the healthy
   ones (the *site best*) — it does not depend on the client;
2. per decision, the site minimising ``network_term(s, t) + site_best(t)``:
   one pass over the sites (200), not over the instances (2,000).

:class:`SeparableIndex` caches step 1 and the per-ingress network terms, and
refreshes them lazily from the version counters of
:class:`~cpn_net.steering.state.SteeringState`: a metrics report re-ranks
only its own site, a path update re-derives only its ingress row.
Staleness needs no scan either: without new reports the healthy set can
only shrink, so a cached site best stays the argmin until *it* expires; the
index remembers the earliest such expiry and re-ranks just the expired sites
when ``now`` passes it (and everything if the clock goes backwards).

The result equals :func:`brute_force_best` (same terms, same tie-break:
site name, then node name); the unit tests check it on random states.

Examples
--------
>>> state = SteeringState(period_s=1.0)
>>> for name, site in (("k1-1", "a"), ("k2-1", "b")):
...     state.add_instance(ServiceInstance(name, site, "svc", "2001:db8::1"))
>>> _ = state.report(ComputeMetrics("k1-1", 0.0, 0.9, 0, 10.0, 1, 50.0))
>>> _ = state.report(ComputeMetrics("k2-1", 0.0, 0.1, 0, 10.0, 1, 10.0))
>>> state.network.set_path("a", "b", PathMetrics(3.0, 0.0, 100.0))
>>> index = SeparableIndex(lambda m: m.service_time_ms, lambda p: 2 * p.delay_ms)
>>> instance, cost = index.best(0.5, state, "svc", "a")
>>> instance.name, cost
('k2-1', 16.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from operator import add

from cpn_net.steering.errors import NoCandidateError
from cpn_net.steering.metrics import ComputeMetrics
from cpn_net.steering.model import PathMetrics, ServiceInstance
from cpn_net.steering.state import SteeringState

ComputeTerm = Callable[[ComputeMetrics], float]
NetworkTerm = Callable[[PathMetrics], float]


def no_candidate(service: str, ingress_site: str, demand_mbps: float) -> NoCandidateError:
    """The error for a decision with nothing to choose from (one wording everywhere)."""
    need = f" with {demand_mbps:g} Mbit/s available" if demand_mbps > 0 else ""
    return NoCandidateError(
        f"service {service!r} from site {ingress_site!r}: no healthy instance reachable{need}; "
        "check that its nodes report metrics and that path telemetry covers their sites")


class _ServiceCache:
    """Per-service site bests and per-ingress network rows."""

    __slots__ = ("sites", "position", "seen_version", "best_instance", "best_term",
                 "best_expiry", "next_expiry", "last_now", "rows")

    def __init__(self, sites: tuple[str, ...]) -> None:
        self.sites = sites
        self.position = {site: j for j, site in enumerate(sites)}
        self.seen_version = -1
        self.best_instance: list[ServiceInstance | None] = [None] * len(sites)
        self.best_term = [math.inf] * len(sites)
        self.best_expiry = [math.inf] * len(sites)
        self.next_expiry = math.inf
        self.last_now = -math.inf
        self.rows: dict[str, tuple[int, list[float], list[float]]] = {}


class SeparableIndex:
    """Cached exact argmin of ``network_term(path) + compute_term(metrics)``.

    Parameters
    ----------
    compute_term : callable
        ``ComputeMetrics -> float``, ``>= 0``; memoised per report object.
    network_term : callable
        ``PathMetrics -> float``, ``>= 0``; ``inf`` marks an unusable path.

    Notes
    -----
    The index binds to the first state it is given and starts afresh if
    handed another one. Cost per decision: one pass over the service's sites.
    """

    def __init__(self, compute_term: ComputeTerm, network_term: NetworkTerm) -> None:
        self.compute_term = compute_term
        self.network_term = network_term
        self._state: SteeringState | None = None
        self._structure_version = -1
        self._services: dict[str, _ServiceCache] = {}
        self._terms: dict[str, tuple[ComputeMetrics, float]] = {}

    def term(self, metrics: ComputeMetrics) -> float:
        """``compute_term(metrics)``, memoised while the node's report is unchanged."""
        memo = self._terms.get(metrics.instance)
        if memo is not None and memo[0] is metrics:
            return memo[1]
        value = self.compute_term(metrics)
        self._terms[metrics.instance] = (metrics, value)
        return value

    def best(self, now: float, state: SteeringState, service: str, ingress_site: str,
             demand_mbps: float = 0.0) -> tuple[ServiceInstance, float]:
        """The instance with the least cost for a client at ``ingress_site``.

        Parameters
        ----------
        now : float
            Current time, seconds (judges freshness).
        state : SteeringState
            What is known.
        service : str
            Requested service.
        ingress_site : str
            Client's site.
        demand_mbps : float
            Paths with less ``available_mbps`` are skipped (0: no constraint).

        Returns
        -------
        (ServiceInstance, float)
            The argmin and its cost ``network_term + compute_term``; ties go
            to the first site, then the first node, by name.

        Raises
        ------
        NoCandidateError
            If no healthy instance is reachable with the bandwidth asked.
        """
        cache = self._cache(state, service)
        if now < cache.last_now:
            self._rerank(cache, state, service, now, range(len(cache.sites)))
        elif state.service_version(service) != cache.seen_version or now >= cache.next_expiry:
            changed = state.sites_changed_since(service, cache.seen_version)
            if changed is None:
                positions = set(range(len(cache.sites)))
            else:
                positions = {cache.position[site] for site in changed}
            if now >= cache.next_expiry:
                positions.update(j for j, expiry in enumerate(cache.best_expiry) if expiry <= now)
            self._rerank(cache, state, service, now, positions)
        cache.last_now = now
        version, network, available = cache.rows.get(ingress_site, (-1, [], []))
        if version != state.network.version_from(ingress_site):
            version, network, available = self._row(cache, state, ingress_site)
        if demand_mbps > 0:
            costs = [n + t if a >= demand_mbps else math.inf
                     for n, t, a in zip(network, cache.best_term, available)]
        else:
            costs = list(map(add, network, cache.best_term))
        least = min(costs, default=math.inf)
        if least == math.inf:
            raise no_candidate(service, ingress_site, demand_mbps)
        return cache.best_instance[costs.index(least)], least

    def _cache(self, state: SteeringState, service: str) -> _ServiceCache:
        if state is not self._state or state.structure_version != self._structure_version:
            if state is not self._state:
                self._terms.clear()
            self._state = state
            self._structure_version = state.structure_version
            self._services.clear()
        cache = self._services.get(service)
        if cache is None:
            cache = self._services[service] = _ServiceCache(state.sites_of(service))
        return cache

    def _rerank(self, cache: _ServiceCache, state: SteeringState, service: str,
                now: float, positions: Iterable[int]) -> None:
        max_age_s = state.max_age_s
        for j in positions:
            site = cache.sites[j]
            best, best_term, best_expiry = None, math.inf, math.inf
            for instance in state.instances_at(service, site):
                metrics = state.metrics_of(instance.name)
                if metrics is None or not now - metrics.reported_at_s < max_age_s:
                    continue
                term = self.term(metrics)
                if term < best_term:
                    best, best_term = instance, term
                    best_expiry = metrics.reported_at_s + max_age_s
            cache.best_instance[j] = best
            cache.best_term[j] = best_term
            cache.best_expiry[j] = best_expiry
        cache.seen_version = state.service_version(service)
        cache.next_expiry = min(cache.best_expiry, default=math.inf)

    def _row(self, cache: _ServiceCache, state: SteeringState,
             ingress_site: str) -> tuple[int, list[float], list[float]]:
        network: list[float] = []
        available: list[float] = []
        for site in cache.sites:
            path = state.network.path(ingress_site, site)
            if path is None:
                network.append(math.inf)
                available.append(-math.inf)
            else:
                network.append(self.network_term(path))
                available.append(path.available_mbps)
        row = (state.network.version_from(ingress_site), network, available)
        cache.rows[ingress_site] = row
        return row


def brute_force_best(now: float, state: SteeringState, service: str, ingress_site: str,
                     compute_term: ComputeTerm, network_term: NetworkTerm, *,
                     demand_mbps: float = 0.0,
                     accept: Callable[[ServiceInstance, float], bool] | None = None,
                     ) -> tuple[ServiceInstance, float]:
    """The same argmin as :class:`SeparableIndex` by scanning every instance.

    The reference the index is tested against, the oracle's engine, and the
    slow path for constraints that do not separate.

    Parameters
    ----------
    now, state, service, ingress_site, demand_mbps
        As for :meth:`SeparableIndex.best`.
    compute_term, network_term : callable
        The two cost terms.
    accept : callable, optional
        ``(instance, cost) -> bool``; rejected instances are skipped.

    Returns
    -------
    (ServiceInstance, float)
        The first instance (site, then node name order) of least cost.

    Raises
    ------
    NoCandidateError
        If no healthy, reachable, accepted instance exists.

    Examples
    --------
    >>> state = SteeringState(period_s=1.0)
    >>> state.add_instance(ServiceInstance("k1-1", "a", "svc", "2001:db8::1"))
    >>> _ = state.report(ComputeMetrics("k1-1", 0.0, 0.5, 0, 10.0, 1, 50.0))
    >>> brute_force_best(0.0, state, "svc", "a", lambda m: m.utilisation, lambda p: p.delay_ms)
    (ServiceInstance(name='k1-1', site='a', service='svc', address=IPv6Address('2001:db8::1')), 0.5)
    """
    best, best_cost = None, math.inf
    for instance in state.instances_of(service):
        metrics = state.metrics_of(instance.name)
        if metrics is None or not now - metrics.reported_at_s < state.max_age_s:
            continue
        path = state.network.path(ingress_site, instance.site)
        if path is None or (demand_mbps > 0 and path.available_mbps < demand_mbps):
            continue
        cost = network_term(path) + compute_term(metrics)
        if cost < best_cost and (accept is None or accept(instance, cost)):
            best, best_cost = instance, cost
    if best is None:
        raise no_candidate(service, ingress_site, demand_mbps)
    return best, best_cost
