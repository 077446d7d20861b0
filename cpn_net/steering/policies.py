"""Steering policies: where should a new flow go?

Every policy answers ``choose(now, flow, state) -> Decision`` for a new flow
and ``assess(now, flow, instance, state) -> Decision`` for a given instance
(used by :class:`~cpn_net.steering.selector.Selector` for affinity and
hysteresis). Policies are pure apart from their caches, the random policy's
seeded generator and the round-robin cursor.

============  ===============================  ======================  =================
policy        cost of instance i (lower wins)  constraints             knowledge
============  ===============================  ======================  =================
Nearest       one-way path delay (ms)          bandwidth               network only
LeastLoaded   utilisation + queue/workers      —                       compute only
RandomChoice  — (uniform)                      —                       liveness only
RoundRobin    — (rotation)                     —                       liveness only
Joint         expected response (ms)           bandwidth, latency SLO  network + compute
              + weighted price, carbon (ms)
Oracle        as Joint, exhaustive search      bandwidth, latency SLO  the *true* state
============  ===============================  ======================  =================

All policies only pick healthy instances (fresh metrics, see
:mod:`cpn_net.steering.metrics`) on reachable sites (a path is known). Every
decision reports the same response estimate (:mod:`cpn_net.steering.estimate`)
and whether it meets the flow's budget, whatever the policy optimised, so
baselines are judged on one yardstick.

The latency SLO is a soft constraint: among instances whose expected
response meets the budget, the cheapest wins; if none meets it, the cheapest
overall is returned with ``slo_met=False``. The oracle is :class:`Joint`'s
cost minimised by brute force over a state holding the *true* values (e.g.
the metrics at the time the request is served): give it that state.

Examples
--------
>>> from cpn_net.steering import (ComputeMetrics, Flow, FlowKey, PathMetrics,
...                               ServiceInstance, SteeringState)
>>> state = SteeringState(period_s=1.0)
>>> for site, service_ms in (("a", 30.0), ("b", 5.0)):
...     state.add_instance(ServiceInstance(f"k-{site}", site, "svc", "2001:db8::1"))
...     _ = state.report(ComputeMetrics(f"k-{site}", 0.0, 0.0, 0, 100.0, 1, service_ms))
>>> state.network.set_path("a", "b", PathMetrics(4.0, 0.0, 100.0))
>>> key = FlowKey("2001:db8:1::1:1", "2001:db8:ff::1", 6, 40000, 80)
>>> flow = Flow(key, "a", "svc")
>>> Nearest().choose(0.0, flow, state).instance.name
'k-a'
>>> decision = Joint().choose(0.0, flow, state)
>>> decision.instance.name, decision.expected_response_ms
('k-b', 13.0)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from cpn_net.steering import _checks
from cpn_net.steering.errors import NoCandidateError
from cpn_net.steering.estimate import (DEFAULT_MODEL, ResponseModel, compute_delay_ms,
                                       network_delay_ms)
from cpn_net.steering.index import SeparableIndex, brute_force_best, no_candidate
from cpn_net.steering.metrics import ComputeMetrics
from cpn_net.steering.model import Decision, Flow, PathMetrics, ServiceInstance
from cpn_net.steering.state import SteeringState

__all__ = ["Hysteresis", "JointWeights", "Policy", "Nearest", "LeastLoaded",
           "RandomChoice", "RoundRobin", "Joint", "Oracle", "jobs_per_worker"]


@dataclass(frozen=True, slots=True)
class Hysteresis:
    """How much better a new best must be before new flows switch to it.

    The new best replaces the incumbent only if it improves the policy's cost
    by more than ``absolute`` *and* by more than ``relative`` times the
    incumbent's cost, i.e. by more than ``max(absolute, relative * cost)``.
    The absolute floor stops flapping between near-equal cheap choices; the
    relative part scales the margin with the cost's own noise.

    Parameters
    ----------
    absolute : float
        Margin in the policy's cost unit (ms for latency policies), ``>= 0``.
    relative : float
        Margin as a fraction of the incumbent's cost, ``>= 0``.

    Examples
    --------
    >>> margin = Hysteresis(absolute=1.0, relative=0.05)
    >>> margin.keeps(incumbent_cost=30.0, best_cost=28.6)   # 1.4 <= max(1, 1.5)
    True
    >>> margin.keeps(incumbent_cost=30.0, best_cost=28.0)
    False
    """

    absolute: float
    relative: float

    def __post_init__(self) -> None:
        _checks.number("hysteresis", "absolute", self.absolute)
        _checks.number("hysteresis", "relative", self.relative)

    def keeps(self, incumbent_cost: float, best_cost: float) -> bool:
        """Whether the incumbent stays (the gain is within the margin).

        An incumbent of infinite cost (unusable) never stays.
        """
        if incumbent_cost == math.inf:
            return False
        return incumbent_cost - best_cost <= max(self.absolute,
                                                 self.relative * abs(incumbent_cost))


@dataclass(frozen=True, slots=True)
class JointWeights:
    """Exchange rates turning price and carbon into milliseconds of cost.

    A node's missing price or carbon value costs nothing (unknown is not
    penalised).

    Parameters
    ----------
    ms_per_cny_per_hour : float
        Cost in ms added per CNY/hour of the node's price, ``>= 0``.
    ms_per_g_per_kwh : float
        Cost in ms added per g CO2/kWh of the node's electricity, ``>= 0``.

    Examples
    --------
    >>> JointWeights(ms_per_cny_per_hour=-1.0)
    Traceback (most recent call last):
    ...
    cpn_net.steering.errors.MetricsError: joint weights: ms_per_cny_per_hour=-1.0 must be >= 0
    """

    ms_per_cny_per_hour: float = 0.0
    ms_per_g_per_kwh: float = 0.0

    def __post_init__(self) -> None:
        _checks.number("joint weights", "ms_per_cny_per_hour", self.ms_per_cny_per_hour)
        _checks.number("joint weights", "ms_per_g_per_kwh", self.ms_per_g_per_kwh)

    @property
    def zero(self) -> bool:
        """True when price and carbon do not count (cost = expected response)."""
        return self.ms_per_cny_per_hour == 0 and self.ms_per_g_per_kwh == 0


class Policy:
    """Base class: shared decision building, health and reachability.

    Subclasses set ``name`` and ``hysteresis`` and implement :meth:`choose`
    and :meth:`_cost`.
    """

    name = "policy"
    hysteresis: Hysteresis | None = None
    enforces_bandwidth = False

    def __init__(self, model: ResponseModel = DEFAULT_MODEL) -> None:
        self.model = model
        self._delays: dict[str, tuple[ComputeMetrics, float]] = {}

    def compute_delay_ms(self, metrics: ComputeMetrics) -> float:
        """:func:`~cpn_net.steering.estimate.compute_delay_ms`, memoised per report."""
        memo = self._delays.get(metrics.instance)
        if memo is not None and memo[0] is metrics:
            return memo[1]
        value = compute_delay_ms(metrics, self.model)
        self._delays[metrics.instance] = (metrics, value)
        return value

    def choose(self, now: float, flow: Flow, state: SteeringState) -> Decision:
        """Decide a new flow. Raises :class:`NoCandidateError` if nothing fits."""
        raise NotImplementedError

    def _cost(self, flow: Flow, path: PathMetrics, metrics: ComputeMetrics) -> float:
        raise NotImplementedError

    def assess(self, now: float, flow: Flow, instance: ServiceInstance,
               state: SteeringState, reason: str | None = None) -> Decision:
        """The decision "send ``flow`` to ``instance``", with this policy's cost.

        The cost is ``inf`` when this policy would not pick the instance at
        all: unhealthy, unreachable, or (for bandwidth-aware policies) short
        of ``flow.demand_mbps``.

        Parameters
        ----------
        now : float
            Current time, seconds.
        flow : Flow
            The flow.
        instance : ServiceInstance
            The instance to assess.
        state : SteeringState
            What is known.
        reason : str, optional
            Reason to record (the policy's name by default).

        Returns
        -------
        Decision
        """
        path = state.network.path(flow.client_site, instance.site)
        metrics = state.metrics_of(instance.name)
        expected = None
        if path is not None and metrics is not None:
            # the same sum, in the same order, as estimate.expected_response_ms
            expected = (flow.client_side_ms + network_delay_ms(path, self.model)
                        + self.compute_delay_ms(metrics))
        cost = math.inf
        if (expected is not None and state.is_healthy(instance.name, now)
                and state.has_instance(instance.name, instance.service)
                and not (self.enforces_bandwidth and path.available_mbps < flow.demand_mbps)):
            cost = self._cost(flow, path, metrics)
        budget = flow.latency_budget_ms
        slo_met = expected is not None and (budget is None or expected <= budget)
        return Decision(flow=flow, instance=instance,
                        path_delay_ms=None if path is None else path.delay_ms,
                        expected_response_ms=expected, cost=cost, slo_met=slo_met,
                        reason=self.name if reason is None else reason)


class _IndexedPolicy(Policy):
    """A policy whose cost separates into network and compute terms."""

    index: SeparableIndex

    def _demand(self, flow: Flow) -> float:
        return flow.demand_mbps if self.enforces_bandwidth else 0.0

    def choose(self, now: float, flow: Flow, state: SteeringState) -> Decision:
        instance, _cost = self.index.best(now, state, flow.service, flow.client_site,
                                          self._demand(flow))
        return self.assess(now, flow, instance, state)

    def _cost(self, flow: Flow, path: PathMetrics, metrics: ComputeMetrics) -> float:
        return self.index.network_term(path) + self.index.term(metrics)


class Nearest(_IndexedPolicy):
    """Network-only: the reachable site with the least one-way path delay.

    Within that site, the first healthy node by name (a network-only
    selector cannot tell nodes apart). Honours bandwidth; ignores the SLO,
    which it cannot estimate without compute metrics.

    Parameters
    ----------
    hysteresis : Hysteresis or None
        Margin in ms of path delay.
    """

    name = "nearest"
    enforces_bandwidth = True

    def __init__(self, hysteresis: Hysteresis | None = Hysteresis(absolute=0.5, relative=0.05),
                 model: ResponseModel = DEFAULT_MODEL) -> None:
        super().__init__(model)
        self.hysteresis = hysteresis
        self.index = SeparableIndex(lambda metrics: 0.0, lambda path: path.delay_ms)


def jobs_per_worker(metrics: ComputeMetrics) -> float:
    """Least-loaded score: busy share plus queued requests per worker.

    Examples
    --------
    >>> jobs_per_worker(ComputeMetrics("k1-1", 0.0, 0.5, 4, 100.0, 2, 10.0))
    2.5
    """
    return metrics.utilisation + metrics.queue_len / metrics.workers


class LeastLoaded(_IndexedPolicy):
    """Compute-only: the healthy node with the fewest jobs per worker.

    Ignores network delay, loss and bandwidth (only reachability counts).

    Parameters
    ----------
    hysteresis : Hysteresis or None
        Margin in jobs per worker.
    """

    name = "least-loaded"

    def __init__(self, hysteresis: Hysteresis | None = Hysteresis(absolute=0.05, relative=0.1),
                 model: ResponseModel = DEFAULT_MODEL) -> None:
        super().__init__(model)
        self.hysteresis = hysteresis
        self.index = SeparableIndex(jobs_per_worker, lambda path: 0.0)


class Joint(_IndexedPolicy):
    """Ours: least expected response time, plus optional price/carbon cost.

    ``cost = expected_response_ms + w_price * price + w_carbon * carbon``,
    the response from telemetry (round trip, loss) and compute metrics
    (Erlang C wait, service time); see :mod:`cpn_net.steering.estimate`.
    Honours bandwidth and the latency SLO (soft; see the module docstring).

    Parameters
    ----------
    weights : JointWeights
        Price and carbon exchange rates (zero by default).
    hysteresis : Hysteresis or None
        Margin in ms.
    model : ResponseModel
        Response estimate parameters.

    Notes
    -----
    The argmin comes from :class:`SeparableIndex` (one pass over sites). If
    it misses the budget and price/carbon weigh in, a cheaper-to-run but
    slower instance may still meet it, so the choice falls back to an
    exhaustive search restricted to instances meeting the budget. With zero
    weights the argmin *is* the fastest instance, so no fallback is needed.
    """

    name = "joint"
    enforces_bandwidth = True

    def __init__(self, weights: JointWeights = JointWeights(),
                 hysteresis: Hysteresis | None = Hysteresis(absolute=1.0, relative=0.05),
                 model: ResponseModel = DEFAULT_MODEL) -> None:
        super().__init__(model)
        self.weights = weights
        self.hysteresis = hysteresis
        self.index = SeparableIndex(self._compute_term, self._network_term)

    def _compute_term(self, metrics: ComputeMetrics) -> float:
        weights = self.weights
        return (self.compute_delay_ms(metrics)
                + weights.ms_per_cny_per_hour * (metrics.price_cny_per_hour or 0.0)
                + weights.ms_per_g_per_kwh * (metrics.carbon_g_per_kwh or 0.0))

    def _network_term(self, path: PathMetrics) -> float:
        return network_delay_ms(path, self.model)

    def _cost(self, flow: Flow, path: PathMetrics, metrics: ComputeMetrics) -> float:
        return flow.client_side_ms + self._network_term(path) + self.index.term(metrics)

    def choose(self, now: float, flow: Flow, state: SteeringState) -> Decision:
        decision = super().choose(now, flow, state)
        if decision.slo_met or flow.latency_budget_ms is None:
            return decision
        if not self.weights.zero:
            slo = _within_budget(self, now, flow, state)
            if slo is not None:
                return slo
        return _missed_budget(decision)


class Oracle(Policy):
    """Exhaustive minimum of :class:`Joint`'s cost: the benchmarks' yardstick.

    Scans every instance (no caches), so it is exact by construction and
    slow (O(instances) per decision). Give it the *true* state.

    Parameters
    ----------
    weights : JointWeights
        As for :class:`Joint`.
    model : ResponseModel
        As for :class:`Joint`.
    """

    name = "oracle"
    enforces_bandwidth = True

    def __init__(self, weights: JointWeights = JointWeights(),
                 model: ResponseModel = DEFAULT_MODEL) -> None:
        super().__init__(model)
        self.weights = weights
        self.hysteresis = None
        self._joint = Joint(weights, hysteresis=None, model=model)

    def _cost(self, flow: Flow, path: PathMetrics, metrics: ComputeMetrics) -> float:
        return self._joint._cost(flow, path, metrics)

    def choose(self, now: float, flow: Flow, state: SteeringState) -> Decision:
        slo = _within_budget(self, now, flow, state)
        if slo is not None:
            return slo
        instance, _cost = brute_force_best(
            now, state, flow.service, flow.client_site, self._joint.index.term,
            self._joint._network_term, demand_mbps=flow.demand_mbps)
        return _missed_budget(self.assess(now, flow, instance, state))


def _within_budget(policy: Joint | Oracle, now: float, flow: Flow,
                   state: SteeringState) -> Decision | None:
    """Cheapest instance meeting the flow's budget by exhaustive search, or None."""
    joint = policy if isinstance(policy, Joint) else policy._joint
    budget = flow.latency_budget_ms

    def meets_budget(instance: ServiceInstance, _cost: float) -> bool:
        return budget is None or policy.assess(now, flow, instance, state).slo_met

    try:
        instance, _cost = brute_force_best(
            now, state, flow.service, flow.client_site, joint.index.term,
            joint._network_term, demand_mbps=flow.demand_mbps, accept=meets_budget)
    except NoCandidateError:
        return None
    return policy.assess(now, flow, instance, state)


def _missed_budget(decision: Decision) -> Decision:
    return Decision(decision.flow, decision.instance, decision.path_delay_ms,
                    decision.expected_response_ms, decision.cost, decision.slo_met,
                    f"{decision.reason}: no instance meets the "
                    f"{decision.flow.latency_budget_ms:g} ms budget; least expected "
                    f"{decision.expected_response_ms:.3f} ms")


class _LivenessPolicy(Policy):
    """Policies that only need a healthy, reachable instance (no cost)."""

    def _cost(self, flow: Flow, path: PathMetrics, metrics: ComputeMetrics) -> float:
        return 0.0

    def _usable(self, now: float, flow: Flow, instance: ServiceInstance,
                state: SteeringState) -> bool:
        return (state.is_healthy(instance.name, now)
                and state.network.path(flow.client_site, instance.site) is not None)


class RandomChoice(_LivenessPolicy):
    """Uniformly random healthy, reachable instance (seeded, reproducible).

    Draws with rejection (exactly uniform over the usable instances, O(1)
    while most are usable), falling back to listing them after 8 misses.

    Parameters
    ----------
    seed : int
        Seed of the policy's own generator.
    """

    name = "random"
    _TRIES = 8

    def __init__(self, seed: int, model: ResponseModel = DEFAULT_MODEL) -> None:
        super().__init__(model)
        self.seed = seed
        self._rng = random.Random(seed)

    def choose(self, now: float, flow: Flow, state: SteeringState) -> Decision:
        instances = state.instances_of(flow.service)
        if instances:
            for _ in range(self._TRIES):
                instance = instances[self._rng.randrange(len(instances))]
                if self._usable(now, flow, instance, state):
                    return self.assess(now, flow, instance, state)
            usable = [each for each in instances if self._usable(now, flow, each, state)]
            if usable:
                return self.assess(now, flow, self._rng.choice(usable), state)
        raise no_candidate(flow.service, flow.client_site, 0.0)


class RoundRobin(_LivenessPolicy):
    """The next healthy, reachable instance in (site, node) order, per service."""

    name = "round-robin"

    def __init__(self, model: ResponseModel = DEFAULT_MODEL) -> None:
        super().__init__(model)
        self._cursor: dict[str, int] = {}

    def choose(self, now: float, flow: Flow, state: SteeringState) -> Decision:
        instances = state.instances_of(flow.service)
        start = self._cursor.get(flow.service, 0)
        for step in range(len(instances)):
            position = (start + step) % len(instances)
            instance = instances[position]
            if self._usable(now, flow, instance, state):
                self._cursor[flow.service] = position + 1
                return self.assess(now, flow, instance, state)
        raise no_candidate(flow.service, flow.client_site, 0.0)
