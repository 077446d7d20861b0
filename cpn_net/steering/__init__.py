"""Compute-aware steering: which service instance, over which path, for each flow.

Pure decisions, no I/O; the caller passes the clock. The pieces:

* :mod:`~cpn_net.steering.metrics` — CATS Level 0/1/2 compute metrics, staleness;
* :mod:`~cpn_net.steering.model` — instances, paths, flows, decisions;
* :mod:`~cpn_net.steering.state` — the live store of instances, metrics, paths;
* :mod:`~cpn_net.steering.estimate` — expected response time (RTT, loss, Erlang C);
* :mod:`~cpn_net.steering.index` — exact, cached argmin over instances;
* :mod:`~cpn_net.steering.policies` — nearest, least-loaded, random,
  round-robin, joint, oracle;
* :mod:`~cpn_net.steering.selector` — flow affinity and hysteresis.
"""

from cpn_net.steering.errors import MetricsError, NoCandidateError, StateError, SteeringError
from cpn_net.steering.estimate import (DEFAULT_MODEL, ResponseModel, compute_delay_ms,
                                       erlang_c, expected_response_ms, loss_penalty_ms,
                                       network_delay_ms, queueing_delay_ms)
from cpn_net.steering.index import SeparableIndex, brute_force_best
from cpn_net.steering.metrics import (ComputeMetrics, Level1Scores, is_fresh, level1, level2,
                                      max_age_s)
from cpn_net.steering.model import (LOCAL_PATH, Decision, Flow, FlowKey, PathMetrics,
                                    ServiceInstance)
from cpn_net.steering.policies import (Hysteresis, Joint, JointWeights, LeastLoaded, Nearest,
                                       Oracle, Policy, RandomChoice, RoundRobin,
                                       jobs_per_worker)
from cpn_net.steering.selector import Selector, SelectorStats
from cpn_net.steering.state import NetworkView, SteeringState

__all__ = [
    "ComputeMetrics", "DEFAULT_MODEL", "Decision", "Flow", "FlowKey", "Hysteresis", "Joint",
    "JointWeights", "LOCAL_PATH", "LeastLoaded", "Level1Scores", "MetricsError", "Nearest",
    "NetworkView", "NoCandidateError", "Oracle", "PathMetrics", "Policy", "RandomChoice",
    "ResponseModel", "RoundRobin", "Selector", "SelectorStats", "SeparableIndex",
    "ServiceInstance", "StateError", "SteeringError", "SteeringState", "brute_force_best",
    "compute_delay_ms", "erlang_c", "expected_response_ms", "is_fresh", "jobs_per_worker",
    "level1", "level2", "loss_penalty_ms", "max_age_s", "network_delay_ms",
    "queueing_delay_ms",
]
