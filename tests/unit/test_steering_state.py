"""Tests for cpn_net.steering.state: the instance, metrics and path stores."""

import pytest

from cpn_net.steering.errors import MetricsError, StateError
from cpn_net.steering.metrics import ComputeMetrics
from cpn_net.steering.model import LOCAL_PATH, PathMetrics, ServiceInstance
from cpn_net.steering.state import JOURNAL_KEEP, NetworkView, SteeringState


def instance(name, site, service="svc"):
    return ServiceInstance(name, site, service, "2001:db8::1")


def report(name, at_s=0.0, utilisation=0.5):
    return ComputeMetrics(name, at_s, utilisation, 0, 100.0, 1, 10.0)


@pytest.fixture
def state():
    state = SteeringState(period_s=1.0)
    for name, site in (("k2-1", "b"), ("k1-2", "a"), ("k1-1", "a")):
        state.add_instance(instance(name, site))
    return state


def test_instances_are_ordered_by_site_then_name(state):
    assert [each.name for each in state.instances_of("svc")] == ["k1-1", "k1-2", "k2-1"]
    assert state.sites_of("svc") == ("a", "b")
    assert [each.name for each in state.instances_at("svc", "a")] == ["k1-1", "k1-2"]
    assert state.instances_of("other") == () and state.sites_of("other") == ()


def test_adding_twice_is_refused(state):
    with pytest.raises(StateError, match=r"^instance k1-1 of service 'svc' is already registered"):
        state.add_instance(instance("k1-1", "a"))


def test_a_node_lives_at_one_site(state):
    with pytest.raises(StateError,
                       match=r"^instance k1-1: site='b' but the node is registered at site 'a'"):
        state.add_instance(instance("k1-1", "b", service="other"))


def test_a_node_may_offer_two_services_sharing_its_report(state):
    state.add_instance(instance("k1-1", "a", service="other"))
    state.report(report("k1-1"))
    assert state.services() == ("other", "svc")
    assert state.is_healthy("k1-1", 0.5)
    assert state.metrics_of("k1-1") is not None


def test_report_for_unknown_node_is_refused(state):
    with pytest.raises(StateError, match=r"^metrics for node 'k9-9': no instance registered"):
        state.report(report("k9-9"))


def test_an_older_report_does_not_replace_a_newer_one(state):
    assert state.report(report("k1-1", at_s=5.0, utilisation=0.1))
    assert not state.report(report("k1-1", at_s=4.0, utilisation=0.9))
    assert state.metrics_of("k1-1").utilisation == 0.1


def test_health_needs_a_report_younger_than_two_periods(state):
    assert not state.is_healthy("k1-1", 0.0)  # never reported
    state.report(report("k1-1", at_s=10.0))
    assert state.is_healthy("k1-1", 11.99)
    assert not state.is_healthy("k1-1", 12.0)
    assert not state.is_healthy("nobody", 10.0)


def test_period_must_be_positive():
    with pytest.raises(MetricsError, match=r"period_s=-1.0 and max_age_periods=2 must both be > 0"):
        SteeringState(period_s=-1.0)


def test_report_is_journalled_under_its_own_site(state):
    before = state.service_version("svc")
    state.report(report("k1-2"))
    assert state.service_version("svc") == before + 1
    assert state.sites_changed_since("svc", before) == {"a"}
    assert state.sites_changed_since("svc", before + 1) == set()
    assert state.sites_changed_since("svc", -1) is None


def test_journal_readers_far_behind_are_told_to_rescan(state):
    start = state.service_version("svc")
    for n in range(2 * JOURNAL_KEEP):
        state.report(report("k2-1", at_s=float(n)))
    assert state.service_version("svc") == start + 2 * JOURNAL_KEEP
    assert state.sites_changed_since("svc", start) is None
    assert state.sites_changed_since("svc", state.service_version("svc") - 3) == {"b"}


def test_remove_instance_updates_every_view(state):
    before = state.structure_version
    state.report(report("k2-1"))
    state.remove_instance("k2-1", "svc")
    assert state.structure_version == before + 1
    assert state.sites_of("svc") == ("a",)
    assert not state.has_instance("k2-1", "svc")
    assert state.metrics_of("k2-1") is None
    with pytest.raises(StateError, match=r"^instance k2-1 of service 'svc' is not registered"):
        state.remove_instance("k2-1", "svc")


def test_adding_after_listing_refreshes_the_listing(state):
    state.instances_of("svc")
    state.add_instance(instance("k0-1", "a"))
    assert [each.name for each in state.instances_of("svc")][0] == "k0-1"


def test_network_view_missing_path_is_unreachable_except_to_self():
    view = NetworkView()
    assert view.path("a", "b") is None
    assert view.path("a", "a") is LOCAL_PATH
    view.set_path("a", "a", PathMetrics(0.2, 0.0, 10.0))
    assert view.path("a", "a").delay_ms == 0.2


def test_network_view_versions_are_per_ingress():
    view = NetworkView({("a", "b"): PathMetrics(1.0, 0.0, 1.0)})
    version_a, version_b = view.version_from("a"), view.version_from("b")
    view.set_path("a", "c", PathMetrics(2.0, 0.0, 1.0))
    assert view.version_from("a") == version_a + 1 and view.version_from("b") == version_b
    view.remove_path("a", "c")
    assert view.path("a", "c") is None and view.version_from("a") == version_a + 2
    view.remove_path("a", "zzz")
    assert view.version_from("a") == version_a + 2


def test_network_view_refuses_a_non_path():
    with pytest.raises(StateError, match=r"^path a->b: 3.0 must be a PathMetrics$"):
        NetworkView().set_path("a", "b", 3.0)
