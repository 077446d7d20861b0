"""Tests for cpn_net.steering.selector: affinity, hysteresis, failover."""

import random

import pytest

from cpn_net.steering.metrics import ComputeMetrics
from cpn_net.steering.model import Flow, FlowKey, PathMetrics, ServiceInstance
from cpn_net.steering.policies import Hysteresis, Joint, LeastLoaded, Nearest, RandomChoice
from cpn_net.steering.selector import Selector
from cpn_net.steering.state import SteeringState
from cpn_net.steering.synthetic import SERVICE, random_metrics, site_name, synthetic_state

PERIOD_S = 1.0


def key(n=0):
    return FlowKey("2001:db8:1::1:1", "2001:db8:ff::1", 6, 1024 + n, 443)


def report(name, at_s, service_time_ms, utilisation=0.0):
    return ComputeMetrics(name, at_s, utilisation, 0, 100.0, 4, service_time_ms)


def two_sites():
    """Client site 'c'; sites 'a' and 'b' both 5 ms away, one node each."""
    state = SteeringState(period_s=PERIOD_S)
    for name, site in (("k1-1", "a"), ("k2-1", "b")):
        state.add_instance(ServiceInstance(name, site, SERVICE, "2001:db8::1"))
        state.network.set_path("c", site, PathMetrics(5.0, 0.0, 1000.0))
    state.report(report("k1-1", 0.0, 10.0))
    state.report(report("k2-1", 0.0, 20.0))
    return state


def test_a_pinned_flow_stays_while_new_flows_follow_a_clear_improvement():
    state, selector = two_sites(), Selector(Joint())
    first = selector.decide(0.0, state, [Flow(key(1), "c", SERVICE)])[0]
    assert first.instance.name == "k1-1" and first.reason == "joint"
    state.report(report("k1-1", 0.5, 40.0))  # k1-1 becomes much slower
    old, new = selector.decide(0.5, state, [Flow(key(1), "c", SERVICE),
                                            Flow(key(2), "c", SERVICE)])
    assert (old.instance.name, old.reason) == ("k1-1", "affinity")
    assert old.expected_response_ms == pytest.approx(10.0 + 40.0)
    assert new.instance.name == "k2-1"
    stats = selector.stats()
    assert (stats.decisions, stats.new_flows, stats.affinity_hits) == (3, 2, 1)
    assert (stats.flips, stats.failovers, stats.pinned_flows) == (1, 0, 2)


def test_a_small_improvement_does_not_move_new_flows():
    state, selector = two_sites(), Selector(Joint(hysteresis=Hysteresis(1.0, 0.05)))
    selector.decide(0.0, state, [Flow(key(1), "c", SERVICE)])
    state.report(report("k1-1", 0.5, 20.5))  # k2-1 now better by 0.5 ms < 1.5 ms margin
    held = selector.decide(0.5, state, [Flow(key(2), "c", SERVICE)])[0]
    assert (held.instance.name, held.reason) == ("k1-1", "hysteresis")
    assert held.expected_response_ms == pytest.approx(30.5)
    assert selector.stats().flips == 0
    assert selector.preferred("c", SERVICE).name == "k1-1"


def test_silent_node_leaves_selection_within_two_periods():
    state, selector = two_sites(), Selector(Joint())
    flow = Flow(key(1), "c", SERVICE)
    assert selector.decide(0.0, state, [flow])[0].instance.name == "k1-1"
    for beat in range(1, 6):  # k2-1 keeps reporting; k1-1 went silent after t=0
        state.report(report("k2-1", beat * PERIOD_S, 20.0))
    just_before = selector.decide(2 * PERIOD_S - 1e-6, state, [flow])[0]
    assert just_before.instance.name == "k1-1"
    moved, new = selector.decide(2 * PERIOD_S, state, [flow, Flow(key(2), "c", SERVICE)])
    assert moved.instance.name == "k2-1" and moved.reason == "joint"
    assert new.instance.name == "k2-1"
    assert selector.stats().failovers == 2  # the pinned flow and the preferred instance
    assert selector.stats().flips == 0


def test_nothing_left_gives_an_unserved_decision_with_the_reason():
    state, selector = two_sites(), Selector(Joint())
    decision = selector.decide(10.0, state, [Flow(key(1), "c", SERVICE)])[0]
    assert decision.instance is None and not decision.slo_met
    assert decision.reason.startswith("service 'svc' from site 'c': no healthy instance")
    assert selector.stats().unserved == 1 and selector.stats().pinned_flows == 0


def test_an_unregistered_instance_loses_its_flows():
    state, selector = two_sites(), Selector(Joint())
    flow = Flow(key(1), "c", SERVICE)
    selector.decide(0.0, state, [flow])
    state.remove_instance("k1-1", SERVICE)
    assert selector.decide(0.1, state, [flow])[0].instance.name == "k2-1"


def test_release_forgets_a_flow():
    state, selector = two_sites(), Selector(Joint())
    flow = Flow(key(1), "c", SERVICE)
    selector.decide(0.0, state, [flow])
    selector.release(flow.key)
    selector.release(key(99))
    assert selector.stats().pinned_flows == 0
    assert selector.decide(0.0, state, [flow])[0].reason == "joint"


def test_incumbent_missing_the_slo_is_replaced_even_within_the_margin():
    state = two_sites()
    selector = Selector(Joint(hysteresis=Hysteresis(absolute=50.0, relative=0.0)))
    budget = dict(latency_budget_ms=25.0)
    selector.decide(0.0, state, [Flow(key(1), "c", SERVICE, **budget)])
    state.report(report("k1-1", 0.5, 21.0))  # 31 ms: misses; k2-1 at 30 ms misses too
    state.report(report("k2-1", 0.5, 14.0))  # 24 ms: meets
    moved = selector.decide(0.5, state, [Flow(key(2), "c", SERVICE, **budget)])[0]
    assert moved.instance.name == "k2-1" and moved.slo_met
    assert selector.stats().failovers == 1 and selector.stats().flips == 0


def noisy_round(rng, state, now, noise_ms):
    """Both nodes report 10 ms service time plus noise: a coin toss which is best."""
    for name in ("k1-1", "k2-1"):
        state.report(report(name, now, 10.0 + rng.gauss(0.0, noise_ms)))


@pytest.mark.parametrize("policy_factory", [Joint, Nearest, LeastLoaded])
def test_flips_stay_rare_under_noisy_near_equal_metrics(policy_factory):
    def run(policy):
        rng = random.Random(17)
        state, selector = two_sites(), Selector(policy)
        for step in range(400):
            now = step * 0.1
            noisy_round(rng, state, now, noise_ms=0.3)
            if policy_factory is Nearest:  # path delays jitter too
                for site in ("a", "b"):
                    state.network.set_path("c", site, PathMetrics(
                        5.0 + rng.gauss(0.0, 0.1), 0.0, 1000.0))
            if policy_factory is LeastLoaded:
                for name in ("k1-1", "k2-1"):
                    state.report(report(name, now, 10.0, utilisation=rng.uniform(0.49, 0.51)))
            selector.decide(now, state, [Flow(key(step), "c", SERVICE)])
        return selector.stats().flips

    with_margin = run(policy_factory())
    without_margin = run(policy_factory(hysteresis=Hysteresis(0.0, 0.0)))
    assert with_margin <= 0.02 * 400  # at most 2 % of decisions flip
    assert without_margin >= 10 * max(with_margin, 1)


def test_a_real_improvement_is_followed_despite_hysteresis():
    rng = random.Random(4)
    state, selector = two_sites(), Selector(Joint())
    for step in range(50):
        noisy_round(rng, state, step * 0.1, noise_ms=0.3)
        selector.decide(step * 0.1, state, [Flow(key(step), "c", SERVICE)])
    state.report(report("k1-1", 5.0, 30.0))
    state.report(report("k2-1", 5.0, 10.0))
    decision = selector.decide(5.0, state, [Flow(key(999), "c", SERVICE)])[0]
    assert decision.instance.name == "k2-1"


def test_random_selectors_with_one_seed_decide_identically():
    state = synthetic_state(seed=6, sites=5, nodes_per_site=4)
    flows = [Flow(key(n), site_name(1 + n % 5), SERVICE) for n in range(100)]
    first = Selector(RandomChoice(seed=9)).decide(0.0, state, flows)
    second = Selector(RandomChoice(seed=9)).decide(0.0, state, flows)
    assert [d.instance for d in first] == [d.instance for d in second]


def test_joint_selector_on_a_large_random_state_keeps_every_invariant():
    rng = random.Random(12)
    state = synthetic_state(seed=12, sites=20, nodes_per_site=5)
    selector = Selector(Joint())
    active: dict = {}
    nodes = state.instances_of(SERVICE)
    for step in range(1500):
        now = step * 0.01
        node = rng.choice(nodes)
        if node.name != "k3-1":  # k3-1's agent dies at t=0
            state.report(random_metrics(rng, node.name, now))
        if active and rng.random() < 0.3:
            flow = rng.choice(list(active))
        else:
            flow = Flow(key(step), site_name(rng.randint(1, 20)), SERVICE)
        decision = selector.decide(now, state, [flow])[0]
        assert decision.instance.service == SERVICE
        assert state.is_healthy(decision.instance.name, now)
        if flow in active and decision.reason == "affinity":
            assert decision.instance == active[flow]  # affinity holds
        active[flow] = decision.instance
    stats = selector.stats()
    assert stats.affinity_hits > 300 and stats.unserved == 0
    assert not state.is_healthy("k3-1", now)
