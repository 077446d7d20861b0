"""The stateful selector: a policy plus flow affinity and hysteresis.

``Selector(policy).decide(now, state, flows) -> decisions`` is the one call
the controller makes. On top of the policy's choice it keeps two memories:

* **Flow affinity** — a flow (5-tuple) already steered keeps its instance as
  long as that instance is healthy, so a session's packets never split
  across instances. If the instance goes stale (its agent silent for two
  metric periods) or is unregistered, the flow is re-decided: a *failover*.
* **Hysteresis** — per (client site, service) the selector remembers the
  *preferred* instance for new flows. A different policy choice replaces it
  only if it beats the incumbent by more than the policy's
  :class:`~cpn_net.steering.policies.Hysteresis` margin, or if the incumbent
  became unusable (stale, unreachable, short of bandwidth, or missing the SLO
  that the new choice meets). Replacing a still-usable incumbent is a *flip*;
  flips are counted so experiments can show they stay rare. Policies without
  a cost (random, round-robin) have no hysteresis.

Call :meth:`Selector.release` when a flow ends, or its pin is kept forever.

Examples
--------
>>> from cpn_net.steering import (ComputeMetrics, Flow, FlowKey, Joint, ServiceInstance,
...                               SteeringState)
>>> state = SteeringState(period_s=1.0)
>>> state.add_instance(ServiceInstance("k1-1", "a", "svc", "2001:db8:1::2:1"))
>>> _ = state.report(ComputeMetrics("k1-1", 0.0, 0.2, 0, 100.0, 1, 5.0))
>>> selector = Selector(Joint())
>>> flow = Flow(FlowKey("2001:db8:1::1:1", "2001:db8:ff::1", 6, 40000, 80), "a", "svc")
>>> [d.reason for d in selector.decide(0.0, state, [flow, flow])]
['joint', 'affinity']
>>> selector.decide(2.5, state, [flow])[0].instance is None   # k1-1 went silent
True
>>> selector.stats().failovers
1
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from cpn_net.steering.errors import NoCandidateError
from cpn_net.steering.model import Decision, Flow, FlowKey, ServiceInstance
from cpn_net.steering.policies import Policy
from cpn_net.steering.state import SteeringState

__all__ = ["Selector", "SelectorStats"]


@dataclass(frozen=True, slots=True)
class SelectorStats:
    """Counters since the selector was created.

    Parameters
    ----------
    decisions : int
        Flows decided (each entry of each ``decide`` call).
    new_flows : int
        Decisions made by the policy (first packet or failover).
    affinity_hits : int
        Decisions that kept a pinned flow on its instance.
    flips : int
        Preferred instance replaced while the incumbent was still usable.
    failovers : int
        Pinned flows moved because their instance became unhealthy or
        unregistered, plus preferred instances replaced because unusable.
    unserved : int
        Decisions with no instance at all.
    pinned_flows : int
        Flows currently pinned.
    """

    decisions: int
    new_flows: int
    affinity_hits: int
    flips: int
    failovers: int
    unserved: int
    pinned_flows: int


class Selector:
    """Apply flow affinity and hysteresis around a steering policy.

    Parameters
    ----------
    policy : Policy
        The policy deciding new flows; its ``hysteresis`` (None for none)
        sets the switching margin.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._pinned: dict[FlowKey, ServiceInstance] = {}
        self._preferred: dict[tuple[str, str], ServiceInstance] = {}
        self._decisions = self._new_flows = self._affinity_hits = 0
        self._flips = self._failovers = self._unserved = 0

    def decide(self, now: float, state: SteeringState, flows: Iterable[Flow]) -> list[Decision]:
        """Decide every flow at time ``now``.

        Parameters
        ----------
        now : float
            Current time, seconds.
        state : SteeringState
            What is known.
        flows : iterable of Flow
            Flows to steer: new ones and packets of pinned ones alike.

        Returns
        -------
        list of Decision
            One per flow, in order. A flow with no usable instance gets a
            decision with ``instance=None`` and the reason in ``reason``.
        """
        return [self._decide(now, state, flow) for flow in flows]

    def release(self, key: FlowKey) -> None:
        """Forget a finished flow's pin (unknown keys are ignored)."""
        self._pinned.pop(key, None)

    def preferred(self, client_site: str, service: str) -> ServiceInstance | None:
        """The instance new flows from ``client_site`` to ``service`` currently go to."""
        return self._preferred.get((client_site, service))

    def stats(self) -> SelectorStats:
        """A snapshot of the counters."""
        return SelectorStats(self._decisions, self._new_flows, self._affinity_hits,
                             self._flips, self._failovers, self._unserved, len(self._pinned))

    def _decide(self, now: float, state: SteeringState, flow: Flow) -> Decision:
        self._decisions += 1
        pinned = self._pinned.get(flow.key)
        if pinned is not None:
            if (pinned.service == flow.service and state.is_healthy(pinned.name, now)
                    and state.has_instance(pinned.name, pinned.service)):
                self._affinity_hits += 1
                return self.policy.assess(now, flow, pinned, state, reason="affinity")
            self._failovers += 1
            del self._pinned[flow.key]
        self._new_flows += 1
        try:
            decision = self.policy.choose(now, flow, state)
        except NoCandidateError as err:
            self._unserved += 1
            return Decision(flow=flow, instance=None, path_delay_ms=None,
                            expected_response_ms=None, cost=math.inf, slo_met=False,
                            reason=str(err))
        if self.policy.hysteresis is not None:
            decision = self._hold(now, state, flow, decision)
        self._pinned[flow.key] = decision.instance
        return decision

    def _hold(self, now: float, state: SteeringState, flow: Flow, best: Decision) -> Decision:
        """Keep the preferred instance unless ``best`` beats it by the margin."""
        key = (flow.client_site, flow.service)
        incumbent = self._preferred.get(key)
        if incumbent is None or incumbent == best.instance:
            self._preferred[key] = best.instance
            return best
        held = self.policy.assess(now, flow, incumbent, state, reason="hysteresis")
        usable = held.cost < math.inf and (held.slo_met or not best.slo_met)
        if usable and self.policy.hysteresis.keeps(held.cost, best.cost):
            return held
        if usable:
            self._flips += 1
        else:
            self._failovers += 1
        self._preferred[key] = best.instance
        return best
