"""Tests for cpn_net.steering.index: the cached argmin equals brute force."""

import random

import pytest

from cpn_net.steering.errors import NoCandidateError
from cpn_net.steering.estimate import compute_delay_ms, network_delay_ms
from cpn_net.steering.index import SeparableIndex, brute_force_best
from cpn_net.steering.metrics import ComputeMetrics
from cpn_net.steering.model import PathMetrics, ServiceInstance
from cpn_net.steering.state import SteeringState
from cpn_net.steering.synthetic import SERVICE, random_metrics, synthetic_state


def check_against_brute_force(index, now, state, ingress, demand_mbps):
    """The index's answer is valid, costs what it claims, and is the minimum."""
    try:
        expected = brute_force_best(now, state, SERVICE, ingress, compute_delay_ms,
                                    network_delay_ms, demand_mbps=demand_mbps)
    except NoCandidateError:
        with pytest.raises(NoCandidateError):
            index.best(now, state, SERVICE, ingress, demand_mbps)
        return None
    instance, cost = index.best(now, state, SERVICE, ingress, demand_mbps)
    path = state.network.path(ingress, instance.site)
    assert state.has_instance(instance.name, SERVICE)
    assert state.is_healthy(instance.name, now)
    assert path is not None and (demand_mbps == 0 or path.available_mbps >= demand_mbps)
    assert cost == network_delay_ms(path) + compute_delay_ms(state.metrics_of(instance.name))
    assert cost == expected[1]
    return instance


@pytest.mark.parametrize("seed", range(12))
def test_index_equals_brute_force_through_random_updates(seed):
    rng = random.Random(seed)
    state = synthetic_state(seed=seed, sites=6, nodes_per_site=3, period_s=1.0)
    sites = state.sites_of(SERVICE)
    index = SeparableIndex(compute_delay_ms, network_delay_ms)
    now = 0.0
    silent = set()
    for step in range(600):
        action = rng.random()
        if action < 0.35:
            now += rng.uniform(0.0, 0.6)
        elif action < 0.40:
            now -= rng.uniform(0.0, 1.0)  # the caller's clock may go backwards
        elif action < 0.75:
            node = rng.choice(state.instances_of(SERVICE) or [None])
            if node is not None and node.name not in silent:
                state.report(random_metrics(rng, node.name, now))
            if rng.random() < 0.05 and node is not None:
                silent.add(node.name)  # this agent stops answering
        elif action < 0.90:
            ingress, site = rng.choice(sites), rng.choice(sites)
            if rng.random() < 0.1:
                state.network.remove_path(ingress, site)
            else:
                state.network.set_path(ingress, site, PathMetrics(
                    rng.uniform(0, 30), rng.choice((0.0, 0.5, 100.0)), rng.uniform(0, 500)))
        elif action < 0.95:
            victim = rng.choice(state.instances_of(SERVICE) or [None])
            if victim is not None:
                state.remove_instance(victim.name, SERVICE)
        else:
            site = rng.choice(sites)
            name = f"k{sites.index(site) + 1}-{50 + step}"
            state.add_instance(ServiceInstance(name, site, SERVICE, "2001:db8::9"))
            state.report(random_metrics(rng, name, now))
        if rng.random() < 0.5:  # let several changes pile up between decisions
            continue
        for _ in range(3):
            check_against_brute_force(index, now, state, rng.choice(sites),
                                      rng.choice((0.0, 0.0, 100.0, 1000.0)))


def test_stale_site_best_gives_way_to_the_next_best_without_new_reports():
    state = SteeringState(period_s=1.0)
    for name, service_ms, at_s in (("k1-1", 1.0, 0.0), ("k1-2", 5.0, 1.0)):
        state.add_instance(ServiceInstance(name, "a", SERVICE, "2001:db8::1"))
        state.report(ComputeMetrics(name, at_s, 0.0, 0, 100.0, 1, service_ms))
    index = SeparableIndex(compute_delay_ms, network_delay_ms)
    assert index.best(1.5, state, SERVICE, "a")[0].name == "k1-1"
    assert index.best(2.0, state, SERVICE, "a")[0].name == "k1-2"  # k1-1 is 2 periods old
    with pytest.raises(NoCandidateError):
        index.best(3.0, state, SERVICE, "a")
    assert index.best(1.0, state, SERVICE, "a")[0].name == "k1-1"  # clock went back


def test_expiry_is_noticed_when_another_site_reports_at_the_same_moment():
    state = SteeringState(period_s=1.0)
    for name, site in (("k1-1", "a"), ("k2-1", "b")):
        state.add_instance(ServiceInstance(name, site, SERVICE, "2001:db8::1"))
    state.report(ComputeMetrics("k1-1", 0.0, 0.0, 0, 100.0, 1, 1.0))
    state.report(ComputeMetrics("k2-1", 0.0, 0.0, 0, 100.0, 1, 9.0))
    state.network.set_path("a", "b", PathMetrics(1.0, 0.0, 10.0))
    index = SeparableIndex(compute_delay_ms, network_delay_ms)
    assert index.best(0.0, state, SERVICE, "a")[0].name == "k1-1"
    state.report(ComputeMetrics("k2-1", 2.5, 0.0, 0, 100.0, 1, 9.0))
    assert index.best(2.5, state, SERVICE, "a")[0].name == "k2-1"


def test_ties_go_to_the_first_site_then_the_first_node():
    state = SteeringState(period_s=1.0)
    for name, site in (("k2-1", "b"), ("k1-2", "a"), ("k1-1", "a")):
        state.add_instance(ServiceInstance(name, site, SERVICE, "2001:db8::1"))
        state.report(ComputeMetrics(name, 0.0, 0.0, 0, 100.0, 1, 5.0))
    state.network.set_path("c", "a", PathMetrics(3.0, 0.0, 10.0))
    state.network.set_path("c", "b", PathMetrics(3.0, 0.0, 10.0))
    index = SeparableIndex(compute_delay_ms, network_delay_ms)
    assert index.best(0.0, state, SERVICE, "c")[0].name == "k1-1"
    assert brute_force_best(0.0, state, SERVICE, "c", compute_delay_ms,
                            network_delay_ms)[0].name == "k1-1"


def test_no_candidate_message_names_service_site_and_bandwidth():
    state = SteeringState(period_s=1.0)
    state.add_instance(ServiceInstance("k1-1", "a", SERVICE, "2001:db8::1"))
    state.report(ComputeMetrics("k1-1", 0.0, 0.0, 0, 100.0, 1, 5.0))
    state.network.set_path("b", "a", PathMetrics(3.0, 0.0, 10.0))
    index = SeparableIndex(compute_delay_ms, network_delay_ms)
    with pytest.raises(NoCandidateError,
                       match=r"^service 'svc' from site 'b': no healthy instance reachable "
                             r"with 50 Mbit/s available; check"):
        index.best(0.0, state, SERVICE, "b", 50.0)
    with pytest.raises(NoCandidateError, match=r"^service 'other' from site 'b': no healthy"):
        index.best(0.0, state, "other", "b")


def test_index_starts_afresh_for_another_state():
    index = SeparableIndex(compute_delay_ms, network_delay_ms)
    first = synthetic_state(seed=1, sites=3, nodes_per_site=2)
    second = synthetic_state(seed=2, sites=3, nodes_per_site=2)
    for state in (first, second, first):
        instance, cost = index.best(0.0, state, SERVICE, "site1")
        assert cost == brute_force_best(0.0, state, SERVICE, "site1", compute_delay_ms,
                                        network_delay_ms)[1]


def test_compute_terms_are_memoised_per_report():
    calls = []

    def counting_term(metrics):
        calls.append(metrics.instance)
        return metrics.service_time_ms

    state = synthetic_state(seed=4, sites=3, nodes_per_site=2)
    index = SeparableIndex(counting_term, network_delay_ms)
    for ingress in ("site1", "site2", "site3"):
        index.best(0.0, state, SERVICE, ingress)
    assert len(calls) == 6  # once per node, not per decision
    state.report(random_metrics(random.Random(0), "k2-1", 0.5))
    index.best(0.5, state, SERVICE, "site1")
    assert calls[6:] == ["k2-1"]
