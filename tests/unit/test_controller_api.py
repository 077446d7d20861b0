"""The REST glue over the controller core: errors become HTTP statuses, and a refused request changes nothing."""

from pathlib import Path

import pytest

from controllers.core import ControllerCore
from controllers.northbound.rest import ApiError
from controllers.northbound_api import ControllerApi
from cpn_net.baseline import interface_plan, site_graph
from cpn_net.emulation.plan import build_plan
from cpn_net.model import load_topology
from cpn_net.srv6.errors import FakeNetlinkError
from cpn_net.srv6.fake_netlink import FakeNetwork

DIAMOND = Path(__file__).resolve().parents[2] / "topologies" / "diamond.yaml"


class FakeSession:
    """The southbound session over one FakeRouter; ``refused`` (kind, op) pairs raise."""

    def __init__(self, router, refused):
        self.router = router
        self.refused = refused

    def route(self, op, spec):
        self._apply("route", op, spec)

    def rule(self, op, spec):
        self._apply("rule", op, spec)

    def _apply(self, kind, op, spec):
        if (kind, op) in self.refused:
            raise RuntimeError(f"{self.router.name}: {kind} {op} refused (test)")
        try:
            getattr(self.router, kind)(op, **spec)
        except FakeNetlinkError as err:
            if not (op == "del" and "ESRCH" in str(err)):  # the real adapter ignores ESRCH too
                raise

    def close(self):
        pass


@pytest.fixture
def world():
    """(api, fake network, refused calls, on_change calls) over the diamond with its baseline."""
    topology = load_topology(DIAMOND)
    plan = build_plan(topology)
    net = FakeNetwork(site_graph(plan), interface_plan(plan))
    refused = set()
    core = ControllerCore(plan, netlink_factory=lambda r: FakeSession(net.router(r), refused), frr=True)
    core.install_baseline()
    changes = []
    api = ControllerApi(core, topology, on_change=lambda: changes.append(len(core.events)))
    yield api, net, refused, changes
    core.close()


def state(net):
    tables = (254, 1000, 1001)
    return {site: (tuple(r for t in tables for r in router.routes(t)), router.rules())
            for site, router in net.routers.items()}


def refused_with(call, *args):
    with pytest.raises(ApiError) as err:
        call(*args)
    return err.value


# ------------------------------------------------------------------ policies
def test_a_policy_is_installed_and_reported_with_its_path(world):
    api, net, _, changes = world
    added = api.add_policy({"name": "via-c", "headend": "a", "to": "k4-1", "waypoints": ["c"]})
    assert added["path"] == ["a", "c", "d"] and len(added["segments"]) == 2
    assert api.get_policy("via-c") == added and api.list_policies() == [added]
    assert len(changes) == 1
    assert api.status()["policies"] == ["via-c"]


@pytest.mark.parametrize("body, message", [
    ({"name": "p", "headend": "a", "to": "dd"},
     "request: policy.to: no site or host is named 'dd'; did you mean 'd'?"),
    ({"name": "p", "headend": "aa", "to": "k4-1"},
     "request: policy.headend: no site is named 'aa'; did you mean 'a'?"),
    (["not", "a", "mapping"], "request: policy: must be a mapping (JSON object), got list; "
                              'send e.g. {"name": "p1", "headend": "east", "to": "west"}'),
])
def test_a_body_the_model_refuses_is_422_with_the_models_message(world, body, message):
    api, net, _, changes = world
    before = state(net)
    err = refused_with(api.add_policy, body)
    assert (err.status, err.message) == (422, message)
    assert err.details == {"problems": [message]}
    assert state(net) == before and changes == [] and api.list_policies() == []


def test_a_duplicate_name_is_409_and_changes_nothing(world):
    api, net, _, changes = world
    api.add_policy({"name": "p", "headend": "a", "to": "k4-1"})
    before = state(net)
    err = refused_with(api.add_policy, {"name": "p", "headend": "b", "to": "c"})
    assert (err.status, err.message) == (409, "policy 'p' exists already; delete it first or pick another name")
    err = refused_with(api.add_policy, {"name": "q", "headend": "a", "to": "k4-1"})
    assert err.status == 409 and "already steers 2001:db8:4::2:1/128 at a" in err.message
    assert state(net) == before and len(changes) == 1


def test_waypoints_that_force_a_loop_are_422_with_the_reason(world):
    api, net, _, changes = world
    before = state(net)
    err = refused_with(api.add_policy, {"name": "loop", "headend": "a", "to": "b", "waypoints": ["d", "c"]})
    assert err.status == 422
    assert err.message.startswith("no loop-free path a->d->c->b: the best legs revisit")
    assert "the greedy loop-free passes failed" in err.message
    assert state(net) == before and changes == []


def test_a_refused_netlink_request_is_500_and_rolled_back(world):
    api, net, refused, changes = world
    before = state(net)
    refused.add(("rule", "add"))
    err = refused_with(api.add_policy, {"name": "f", "headend": "a", "to": "k4-1", "flow": {"proto": "udp"}})
    assert err.status == 500
    assert err.message == "installing policy 'f' failed and was rolled back: r1: rule add refused (test)"
    assert state(net) == before and changes == [] and api.list_policies() == []


def test_delete_returns_the_removed_policy_and_unknown_names_are_404(world):
    api, net, _, changes = world
    before = state(net)
    added = api.add_policy({"name": "p", "headend": "a", "to": "k4-1", "waypoints": ["c"]})
    assert api.delete_policy("p") == {"removed": added}
    assert state(net) == before and len(changes) == 2
    message = "no policy named 'p'; `cpn policy list` shows the installed ones"
    for call in (api.delete_policy, api.get_policy):
        err = refused_with(call, "p")
        assert (err.status, err.message) == (404, message)
    assert len(changes) == 2


def test_without_a_topology_snapshot_policies_cannot_be_validated(world):
    api, net, _, _ = world
    bare = ControllerApi(api.core, None)
    assert refused_with(bare.topology).status == 404
    err = refused_with(bare.add_policy, {"name": "p", "headend": "a", "to": "d"})
    assert (err.status, err.message) == (409, "this controller was started without a topology snapshot; "
                                              "cannot validate")
    bare.install_declared_policies()  # nothing to install, and no error
    assert api.topology()["name"] == "diamond"


# ------------------------------------------------------------------ link events
@pytest.mark.parametrize("body, status, message", [
    ({"a": "b", "up": False}, 400, 'a link event is {"a": site, "b": site, "up": true|false}'),
    (["b", "d", False], 400, 'a link event is {"a": site, "b": site, "up": true|false}'),
    ({"a": "b", "b": "d", "up": "no"}, 400, "up='no' must be true or false"),
    ({"a": "b", "b": "d", "up": 0}, 400, "up=0 must be true or false"),
    ({"a": 2, "b": "d", "up": False}, 400, "a=2 must be a site name (a string)"),
    ({"a": "b", "b": ["d"], "up": False}, 400, "b=['d'] must be a site name (a string)"),
    ({"a": "b", "b": "zz", "up": False}, 422, "'zz' is not a site of this network"),
    ({"a": "a", "b": "d", "up": False}, 422, "no WAN link between a and d"),
])
def test_bad_link_events_are_refused_and_change_nothing(world, body, status, message):
    api, net, _, changes = world
    before = state(net)
    err = refused_with(api.link_event, body)
    assert (err.status, err.message) == (status, message)
    assert state(net) == before and changes == [] and api.core.down == set()


def test_a_link_event_reconverges_once_and_a_repeat_is_acknowledged_without_change(world):
    api, net, _, changes = world
    api.add_policy({"name": "fast", "headend": "a", "to": "k4-1"})
    event = api.link_event({"a": "d", "b": "b", "up": False})
    assert event["kind"] == "reconverge" and event["policies_rerouted"] == ["fast"]
    assert api.get_policy("fast")["path"] == ["a", "c", "d"]
    assert len(changes) == 2
    before = state(net)
    again = api.link_event({"a": "b", "b": "d", "up": False})
    assert again == {"kind": "no_change", "reason": "link b-d was already down"}
    assert state(net) == before
    assert len(changes) == 2  # nothing changed, so nothing to save
    assert api.link_event({"a": "b", "b": "d", "up": True})["policies_rerouted"] == ["fast"]
    assert len(changes) == 3
