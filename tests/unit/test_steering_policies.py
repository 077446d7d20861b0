"""Tests for cpn_net.steering.policies, including the CATS AR/VR golden case."""

import math
import random
from collections import Counter

import pytest

from cpn_net.steering.errors import NoCandidateError
from cpn_net.steering.estimate import expected_response_ms
from cpn_net.steering.metrics import ComputeMetrics
from cpn_net.steering.model import Flow, FlowKey, PathMetrics, ServiceInstance
from cpn_net.steering.policies import (Hysteresis, Joint, JointWeights, LeastLoaded, Nearest,
                                       Oracle, RandomChoice, RoundRobin, jobs_per_worker)
from cpn_net.steering.state import SteeringState
from cpn_net.steering.synthetic import SERVICE, random_metrics, site_name, synthetic_state


def key(n=0):
    return FlowKey("2001:db8:1::1:1", "2001:db8:ff::1", 6, 1024 + n, 443)


# -- the golden case ---------------------------------------------------------
# IETF CATS use cases (AR/VR): budget 20 ms, client-side 9.4 ms; three edge
# sites with compute 4/10/5 ms and network 9/4/5 ms. The draft's "network"
# is the round trip, so the one-way path delays are half of it. Compute is
# the service time with (next to) no queueing: 64 workers at 10–30 % busy.

GOLDEN = {  # site: (compute_ms, network_ms, utilisation)
    "edge1": (4.0, 9.0, 0.1),
    "edge2": (10.0, 4.0, 0.3),
    "edge3": (5.0, 5.0, 0.2),
}


@pytest.fixture
def golden():
    state = SteeringState(period_s=1.0)
    for number, (site, (compute_ms, network_ms, utilisation)) in enumerate(GOLDEN.items(), 1):
        name = f"k{number}-1"
        state.add_instance(ServiceInstance(name, site, "arvr", f"2001:db8:{number}::2:1"))
        state.report(ComputeMetrics(name, 0.0, utilisation, 0, 1000.0, 64, compute_ms))
        state.network.set_path("client", site, PathMetrics(network_ms / 2, 0.0, 1000.0))
    flow = Flow(key(), "client", "arvr", latency_budget_ms=20.0, client_side_ms=9.4)
    return state, flow


def test_golden_case_expected_responses_are_the_drafts(golden):
    state, flow = golden
    joint = Joint()
    decisions = {site: joint.assess(0.0, flow, state.instances_at("arvr", site)[0], state)
                 for site in GOLDEN}
    assert {site: d.expected_response_ms for site, d in decisions.items()} == pytest.approx(
        {"edge1": 22.4, "edge2": 23.4, "edge3": 19.4}, abs=1e-6)
    assert [d.slo_met for d in decisions.values()] == [False, False, True]


def test_golden_case_network_only_picks_site_2_and_misses(golden):
    state, flow = golden
    decision = Nearest().choose(0.0, flow, state)
    assert decision.instance.site == "edge2" and not decision.slo_met


def test_golden_case_compute_only_picks_site_1_and_misses(golden):
    state, flow = golden
    decision = LeastLoaded().choose(0.0, flow, state)
    assert decision.instance.site == "edge1" and not decision.slo_met


def test_golden_case_only_joint_picks_site_3_and_meets_the_budget(golden):
    state, flow = golden
    decision = Joint().choose(0.0, flow, state)
    assert decision.instance.site == "edge3"
    assert decision.slo_met and decision.expected_response_ms == pytest.approx(19.4, abs=1e-6)
    assert Oracle().choose(0.0, flow, state).instance.site == "edge3"


# -- baselines -----------------------------------------------------------------

def small_state():
    """Two sites; 'near' is close but busy, 'far' is 10 ms away and idle."""
    state = SteeringState(period_s=1.0)
    for name, site, utilisation, queue in (("k1-1", "near", 0.9, 6), ("k1-2", "near", 0.8, 2),
                                           ("k2-1", "far", 0.1, 0)):
        state.add_instance(ServiceInstance(name, site, SERVICE, "2001:db8::1"))
        state.report(ComputeMetrics(name, 0.0, utilisation, queue, 100.0, 2, 10.0))
    state.network.set_path("near", "far", PathMetrics(10.0, 0.0, 50.0))
    return state


def test_nearest_ignores_load_and_takes_the_first_node_by_name():
    assert Nearest().choose(0.0, Flow(key(), "near", SERVICE), small_state()).instance.name == "k1-1"


def test_nearest_honours_bandwidth():
    state = small_state()
    state.network.set_path("near", "near", PathMetrics(0.0, 0.0, 5.0))
    flow = Flow(key(), "near", SERVICE, demand_mbps=20.0)
    assert Nearest().choose(0.0, flow, state).instance.site == "far"


def test_least_loaded_ignores_the_network():
    decision = LeastLoaded().choose(0.0, Flow(key(), "near", SERVICE), small_state())
    assert decision.instance.name == "k2-1"
    assert decision.cost == jobs_per_worker(small_state().metrics_of("k2-1"))


def test_least_loaded_still_needs_a_path():
    state = small_state()
    state.network.remove_path("near", "far")
    assert LeastLoaded().choose(0.0, Flow(key(), "near", SERVICE), state).instance.name == "k1-2"


def test_random_choice_is_reproducible_and_covers_every_healthy_instance():
    state = synthetic_state(seed=3, sites=4, nodes_per_site=3)
    policy_a, policy_b = RandomChoice(seed=42), RandomChoice(seed=42)
    run_a = [policy_a.choose(0.0, Flow(key(n), "site1", SERVICE), state).instance.name
             for n in range(600)]
    run_b = [policy_b.choose(0.0, Flow(key(n), "site1", SERVICE), state).instance.name
             for n in range(600)]
    assert run_a == run_b
    other = RandomChoice(seed=43)
    assert run_a != [other.choose(0.0, Flow(key(n), "site1", SERVICE), state).instance.name
                     for n in range(600)]
    counts = Counter(run_a)
    assert set(counts) == {each.name for each in state.instances_of(SERVICE)}
    assert max(counts.values()) < 3 * min(counts.values())  # roughly uniform over 12


def test_random_choice_skips_stale_instances_even_when_most_are_stale():
    state = synthetic_state(seed=3, sites=4, nodes_per_site=3, now=0.0)
    state.report(random_metrics(random.Random(1), "k4-3", 10.0))
    policy = RandomChoice(seed=1)
    names = {policy.choose(10.5, Flow(key(n), "site1", SERVICE), state).instance.name
             for n in range(50)}
    assert names == {"k4-3"}


def test_round_robin_cycles_in_site_then_node_order_skipping_stale():
    state = synthetic_state(seed=5, sites=2, nodes_per_site=2, now=0.0)
    for name in ("k1-1", "k2-1", "k2-2"):
        state.report(random_metrics(random.Random(2), name, 1.5))
    policy = RoundRobin()
    names = [policy.choose(2.5, Flow(key(n), "site1", SERVICE), state).instance.name
             for n in range(6)]
    assert names == ["k1-1", "k2-1", "k2-2"] * 2


@pytest.mark.parametrize("policy", [Nearest(), LeastLoaded(), RandomChoice(seed=0),
                                    RoundRobin(), Joint(), Oracle()],
                         ids=lambda policy: policy.name)
def test_every_policy_picks_a_healthy_reachable_instance_of_the_service(policy):
    rng = random.Random(8)
    state = synthetic_state(seed=8, sites=8, nodes_per_site=3, now=0.0)
    for instance in state.instances_of(SERVICE):
        if rng.random() < 0.5:
            state.report(random_metrics(rng, instance.name, 1.5))
    for n in range(40):
        flow = Flow(key(n), site_name(rng.randint(1, 8)), SERVICE, latency_budget_ms=60.0)
        decision = policy.choose(2.2, flow, state)
        assert decision.instance.service == SERVICE
        assert state.is_healthy(decision.instance.name, 2.2)
        path = state.network.path(flow.client_site, decision.instance.site)
        assert decision.path_delay_ms == path.delay_ms
        assert decision.expected_response_ms == expected_response_ms(
            path, state.metrics_of(decision.instance.name))
        assert decision.slo_met == (decision.expected_response_ms <= 60.0)


@pytest.mark.parametrize("policy", [Nearest(), LeastLoaded(), RandomChoice(seed=0),
                                    RoundRobin(), Joint(), Oracle()],
                         ids=lambda policy: policy.name)
def test_every_policy_reports_no_candidate_for_an_unknown_service(policy):
    state = synthetic_state(seed=8, sites=2, nodes_per_site=1)
    with pytest.raises(NoCandidateError, match=r"^service 'nothing' from site 'site1'"):
        policy.choose(0.0, Flow(key(), "site1", "nothing"), state)


# -- joint and oracle ------------------------------------------------------------

def test_joint_is_exact_on_random_states():
    for seed in range(5):
        rng = random.Random(seed)
        state = synthetic_state(seed=seed, sites=10, nodes_per_site=4)
        joint, oracle = Joint(), Oracle()
        for n in range(30):
            flow = Flow(key(n), site_name(rng.randint(1, 10)), SERVICE,
                        demand_mbps=rng.choice((0.0, 5000.0)))
            assert joint.choose(0.0, flow, state).cost == oracle.choose(0.0, flow, state).cost


def test_joint_skips_paths_without_the_bandwidth():
    state = small_state()
    flow = Flow(key(), "near", SERVICE, demand_mbps=100.0)
    assert Joint().choose(0.0, flow, state).instance.site == "near"


def test_joint_flags_a_missed_budget_and_says_so():
    decision = Joint().choose(0.0, Flow(key(), "near", SERVICE, latency_budget_ms=1.0),
                              small_state())
    assert not decision.slo_met
    assert decision.reason.startswith("joint: no instance meets the 1 ms budget; least expected ")


def test_joint_price_weight_prefers_the_cheaper_node_within_budget():
    state = SteeringState(period_s=1.0)
    for name, service_ms, price in (("k1-1", 5.0, 100.0), ("k1-2", 8.0, 10.0)):
        state.add_instance(ServiceInstance(name, "a", SERVICE, "2001:db8::1"))
        state.report(ComputeMetrics(name, 0.0, 0.0, 0, 100.0, 1, service_ms,
                                    price_cny_per_hour=price))
    flow = Flow(key(), "a", SERVICE, latency_budget_ms=20.0)
    assert Joint().choose(0.0, flow, state).instance.name == "k1-1"
    priced = Joint(JointWeights(ms_per_cny_per_hour=0.1)).choose(0.0, flow, state)
    assert priced.instance.name == "k1-2"
    assert priced.cost == pytest.approx(8.0 + 0.1 * 10.0)


def test_joint_with_price_falls_back_to_a_dearer_node_that_meets_the_budget():
    state = SteeringState(period_s=1.0)
    for name, service_ms, price in (("k1-1", 5.0, 100.0), ("k1-2", 30.0, 0.0)):
        state.add_instance(ServiceInstance(name, "a", SERVICE, "2001:db8::1"))
        state.report(ComputeMetrics(name, 0.0, 0.0, 0, 100.0, 1, service_ms,
                                    price_cny_per_hour=price))
    policy = Joint(JointWeights(ms_per_cny_per_hour=1.0))
    within = policy.choose(0.0, Flow(key(), "a", SERVICE, latency_budget_ms=20.0), state)
    assert within.instance.name == "k1-1" and within.slo_met
    unconstrained = policy.choose(0.0, Flow(key(), "a", SERVICE), state)
    assert unconstrained.instance.name == "k1-2"
    assert Oracle(JointWeights(ms_per_cny_per_hour=1.0)).choose(
        0.0, Flow(key(), "a", SERVICE, latency_budget_ms=20.0), state).instance.name == "k1-1"


def test_oracle_is_no_worse_than_any_policy_on_the_true_state():
    """Policies see stale, noisy metrics; the oracle and the judge see the truth."""
    rng = random.Random(21)
    truth = synthetic_state(seed=21, sites=12, nodes_per_site=4)
    seen = synthetic_state(seed=21, sites=12, nodes_per_site=4)
    for instance in seen.instances_of(SERVICE):  # the truth moved on since the reports
        truth.report(random_metrics(rng, instance.name, 0.5))
    policies = [Nearest(), LeastLoaded(), RandomChoice(seed=2), RoundRobin(), Joint(),
                Joint(JointWeights(ms_per_cny_per_hour=0.05))]
    oracle = Oracle()
    for n in range(60):
        flow = Flow(key(n), site_name(rng.randint(1, 12)), SERVICE, latency_budget_ms=40.0)
        best = oracle.choose(0.5, flow, truth)
        for policy in policies:
            chosen = policy.choose(0.5, flow, seen).instance
            judged = oracle.assess(0.5, flow, truth.instance(chosen.name, SERVICE), truth)
            assert best.cost <= judged.cost
            assert best.slo_met or not judged.slo_met


def test_hysteresis_margin_is_the_larger_of_absolute_and_relative():
    margin = Hysteresis(absolute=2.0, relative=0.1)
    assert margin.keeps(10.0, 8.0) and not margin.keeps(10.0, 7.9)   # absolute wins
    assert margin.keeps(100.0, 90.0) and not margin.keeps(100.0, 89.9)  # relative wins
    assert not margin.keeps(math.inf, 5.0)
