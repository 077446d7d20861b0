"""The controller core driving a fake data plane: baseline, SR policies, rollback, reconvergence, FRR.

Every router is a :class:`~cpn_net.srv6.fake_netlink.FakeRouter` that starts
empty (connected routes only); the core fills it through a session shaped like
:class:`controllers.southbound.netlink.RouterNetlink`, and packets are walked
through the result.
"""

import itertools
from pathlib import Path

import networkx as nx
import pytest

from controllers.core import ControllerCore, PolicyConflict, UnknownPolicy
from cpn_net.baseline import igp_paths, interface_plan, site_graph
from cpn_net.emulation.plan import build_plan
from cpn_net.model import addressing, load_topology
from cpn_net.model.policies import parse_policy
from cpn_net.model.topology import SRPolicySpec
from cpn_net.model.yaml_format import parse_yaml_topology
from cpn_net.srv6.errors import FakeNetlinkError, InfeasiblePath, PolicyError
from cpn_net.srv6.fake_netlink import FakeNetwork
from cpn_net.srv6.packet import build_udp
from cpn_net.srv6.planner import hosts_of_plan

DIAMOND = Path(__file__).resolve().parents[2] / "topologies" / "diamond.yaml"
K4 = addressing.host_address(4, "compute", 1)  # k4-1, 2001:db8:4::2:1
U4 = addressing.host_address(4, "client", 1)
LINKS = [("a", "b"), ("b", "d"), ("a", "c"), ("c", "d")]


class FakeSession:
    """The controller's southbound session over one FakeRouter.

    Like the real adapter, deleting what is already gone (ESRCH) is not an
    error. ``harness.refuse(kind, op)`` makes such calls raise, as a kernel
    refusing the request would.
    """

    def __init__(self, harness, router):
        self.harness = harness
        self.router = router

    def route(self, op, spec):
        self._apply("route", op, spec)

    def rule(self, op, spec):
        self._apply("rule", op, spec)

    def _apply(self, kind, op, spec):
        self.harness.calls.append((self.router.name, kind, op))
        if (kind, op) in self.harness.refused:
            raise RuntimeError(f"{self.router.name}: {kind} {op} refused (test)")
        try:
            getattr(self.router, kind)(op, **spec)
        except FakeNetlinkError as err:
            if op == "del" and "ESRCH" in str(err):
                return
            raise

    def close(self):
        self.harness.closed += 1


class Harness:
    """A topology, its plan, an empty fake network and a core driving it."""

    def __init__(self, topology=None, *, frr=False, down=()):
        self.topology = topology or load_topology(DIAMOND)
        self.plan = build_plan(self.topology)
        self.net = FakeNetwork(site_graph(self.plan), interface_plan(self.plan))
        self.calls, self.refused, self.closed = [], set(), 0
        ticks = itertools.count()
        self.core = ControllerCore(self.plan, netlink_factory=lambda r: FakeSession(self, self.net.router(r)),
                                   frr=frr, clock=lambda: next(ticks) * 0.001)  # every reading 1 ms later
        self.core.down = {frozenset(link) for link in down}
        self.hosts = hosts_of_plan(self.plan)

    def policy(self, **body):
        return parse_policy(body, self.topology)

    def send(self, src_host, dst, dport=2, sport=1):
        src = self.hosts[src_host]
        return self.net.send(build_udp(str(src.address), str(dst), sport, dport), src.site)

    def state(self):
        """Every router's routes (all tables in use) and rules, to compare before and after."""
        tables = {254} | set(range(1000, 1004))
        return {site: (tuple(r for t in sorted(tables) for r in router.routes(t)), router.rules())
                for site, router in self.net.routers.items()}

    def forwarding(self):
        """Every router's IGP (metric 1024) and backup (2048) routes."""
        return {site: tuple(r for r in router.routes() if r.priority in (1024, 2048) and
                            (r.encap or {}).get("type") != "seg6local")
                for site, router in self.net.routers.items()}


def baseline(**kw):
    h = Harness(**kw)
    h.core.install_baseline()
    return h


def links_of(sites):
    return {frozenset(pair) for pair in zip(sites, sites[1:])}


# ------------------------------------------------------------------ baseline
def test_routers_start_empty_and_the_baseline_delivers_every_host_pair_along_the_igp():
    h = Harness()
    assert h.send("u1-1", K4).reason == "no route to 2001:db8:4::2:1"
    event = h.core.install_baseline()
    installed = sum(1 for router in h.net.routers.values() for r in router.routes() if r.priority != 256)
    assert event["kind"] == "baseline" and event["routes"] == installed == 48 and event["backups"] == 0
    assert event["duration_ms"] > 0
    pairs = 0
    for src in h.hosts.values():
        igp = igp_paths(h.plan, src.site)
        for dst in h.hosts.values():
            if dst.site == src.site:
                continue  # the site switch carries it, no router
            walk = h.send(src.name, dst.address)
            assert (walk.result, walk.delivered_to, walk.sites) == ("delivered", dst.address, igp[dst.site])
            pairs += 1
    assert pairs == 8 * 6
    assert igp_paths(h.plan, "a")["d"] == ("a", "b", "d")


# ------------------------------------------------------------------ policies
def test_a_policy_via_c_steers_the_host_and_decapsulates_there():
    h = baseline()
    added = h.core.add_policy(h.policy(name="via-c", headend="a", to="k4-1", waypoints=["c"]))
    assert added["path"] == ["a", "c", "d"] and added["router"] == "r1"
    walk = h.send("u1-1", K4)
    assert (walk.result, walk.sites, walk.delivered_to) == ("delivered", ("a", "c", "d"), K4)
    assert walk.hops[0].outcome.steps == ("H.Encaps",)
    assert walk.hops[-1].outcome.steps[-1] == "End.DX6"
    assert h.send("u1-1", U4).sites == ("a", "b", "d")  # the other host at d keeps the IGP path
    assert [p["name"] for p in h.core.list_policies()] == ["via-c"]
    assert h.core.get_policy("via-c") == added


def test_a_flow_policy_steers_only_its_five_tuple_in_its_own_table():
    h = baseline()
    h.core.add_policy(h.policy(name="udp5001", headend="a", to="k4-1", waypoints=["c"],
                               flow={"proto": "udp", "dst_port": 5001}))
    assert h.send("u1-1", K4, dport=5001).sites == ("a", "c", "d")
    assert h.send("u1-1", K4, dport=5002).sites == ("a", "b", "d")
    assert h.send("u1-1", K4, dport=5001).delivered_to == K4
    assert h.core.tables == {"udp5001": 1000}
    assert [r.table for r in h.net.routers["a"].rules()] == [1000, 254]
    assert [str(r.dst) for r in h.net.routers["a"].routes(1000)] == ["2001:db8:4::2:1/128"]


def test_flow_policies_get_free_tables_and_a_deleted_one_gives_its_table_back():
    h = baseline()
    for name, port in (("f1", 1), ("f2", 2)):
        h.core.add_policy(h.policy(name=name, headend="a", to="k4-1", flow={"proto": "udp", "dst_port": port}))
    assert h.core.tables == {"f1": 1000, "f2": 1001}
    h.core.delete_policy("f1")
    h.core.add_policy(h.policy(name="f3", headend="a", to="k4-1", flow={"proto": "udp", "dst_port": 3}))
    assert h.core.tables == {"f2": 1001, "f3": 1000}


def test_deleting_a_policy_restores_the_igp_path_and_leaves_nothing_behind():
    h = baseline()
    before = h.state()
    h.core.add_policy(h.policy(name="via-c", headend="a", to="k4-1", waypoints=["c"]))
    h.core.add_policy(h.policy(name="flow", headend="a", to="u4-1", waypoints=["c"], flow={"proto": "udp"}))
    assert h.send("u1-1", U4).sites == ("a", "c", "d")
    removed = h.core.delete_policy("via-c")
    assert removed["name"] == "via-c" and removed["path"] == ["a", "c", "d"]
    h.core.delete_policy("flow")
    assert h.send("u1-1", K4).sites == ("a", "b", "d")
    assert h.send("u1-1", U4).sites == ("a", "b", "d")
    assert h.state() == before
    assert h.core.list_policies() == [] and h.core.tables == {}
    assert [e["kind"] for e in h.core.events[-2:]] == ["policy_deleted", "policy_deleted"]


def test_a_second_policy_with_the_same_name_conflicts():
    h = baseline()
    h.core.add_policy(h.policy(name="p", headend="a", to="k4-1"))
    before = h.state()
    with pytest.raises(PolicyConflict) as err:
        h.core.add_policy(h.policy(name="p", headend="b", to="c"))
    assert str(err.value) == "policy 'p' exists already; delete it first or pick another name"
    assert h.state() == before


def test_two_policies_for_the_same_destination_at_one_headend_conflict():
    h = baseline()
    h.core.add_policy(h.policy(name="p", headend="a", to="k4-1"))
    before = h.state()
    with pytest.raises(PolicyConflict) as err:
        h.core.add_policy(h.policy(name="q", headend="a", to="2001:db8:4::2:1/128", waypoints=["c"]))
    assert str(err.value) == "policy 'q': policy 'p' already steers 2001:db8:4::2:1/128 at a"
    assert h.state() == before and [p["name"] for p in h.core.list_policies()] == ["p"]
    h.core.add_policy(h.policy(name="r", headend="b", to="k4-1"))  # another headend may


def test_unknown_policies_and_headends_are_named_in_the_error():
    h = baseline()
    message = "no policy named 'nope'; `cpn policy list` shows the installed ones"
    for call in (h.core.delete_policy, h.core.get_policy):
        with pytest.raises(UnknownPolicy) as err:
            call("nope")
        assert str(err.value) == message
    with pytest.raises(PolicyError, match="policy 'p': headend 'zz' is not a site of this network"):
        h.core.add_policy(SRPolicySpec("p", "zz", "site", "d"))


@pytest.mark.parametrize("refused", [("route", "add"), ("rule", "add")])
def test_a_refused_install_rolls_back_everything_of_the_policy(refused):
    h = baseline()
    before = h.state()
    h.refused.add(refused)
    spec = h.policy(name="flow", headend="a", to="k4-1", waypoints=["c"], flow={"proto": "udp", "dst_port": 53})
    with pytest.raises(RuntimeError, match=f"r1: {refused[0]} add refused"):
        h.core.add_policy(spec)
    assert h.state() == before
    assert h.core.list_policies() == [] and h.core.tables == {}
    h.refused.clear()
    assert h.core.add_policy(spec)["path"] == ["a", "c", "d"]  # nothing left over to collide with


def test_bandwidth_reservations_refuse_what_does_not_fit_and_are_freed_on_delete():
    h = baseline(topology=parse_yaml_topology(TRIANGLE, "triangle.yaml"))
    assert h.core.add_policy(h.policy(name="big", headend="a", to="c", objective="bandwidth",
                                      bandwidth_mbps=80))["path"] == ["a", "b", "c"]
    second = h.policy(name="second", headend="a", to="c", objective="bandwidth", bandwidth_mbps=50)
    with pytest.raises(InfeasiblePath, match="bottleneck link a-c has 30 Mbit/s residual"):
        h.core.add_policy(second)
    h.core.delete_policy("big")
    assert h.core.add_policy(second)["path"] == ["a", "b", "c"]


TRIANGLE = """
name: triangle
sites: [{name: a, id: 1}, {name: b, id: 2}, {name: c, id: 3}]
links:
  - {a: a, b: b, delay_ms: 1, rate_mbps: 100}
  - {a: b, b: c, delay_ms: 1, rate_mbps: 100}
  - {a: a, b: c, delay_ms: 10, rate_mbps: 30}
"""


# ------------------------------------------------------------------ link state
def test_a_link_failure_moves_igp_routes_and_the_policies_that_used_it():
    h = baseline()
    h.core.add_policy(h.policy(name="fast", headend="a", to="k4-1"))  # a-b-d, over the failing link
    h.core.add_policy(h.policy(name="to-c", headend="a", to="c", objective="min_hops"))
    assert h.core.get_policy("fast")["path"] == ["a", "b", "d"]
    event = h.core.link_changed("b", "d", up=False, source="test")
    assert event["kind"] == "reconverge" and event["reason"] == "link b-d down (test)"
    assert 0 < event["routes_ms"] <= event["duration_ms"]
    assert event["policies_rerouted"] == ["fast"] and event["policies_failed"] == []
    assert h.core.get_policy("fast")["path"] == ["a", "c", "d"]
    assert h.send("u1-1", K4).sites == ("a", "c", "d")
    assert h.send("u1-1", U4).sites == ("a", "c", "d")  # the IGP too
    assert h.send("u2-1", U4).sites == ("b", "a", "c", "d")
    assert h.core.status()["links_down"] == ["b-d"]


def test_a_link_event_that_changes_nothing_returns_none():
    h = baseline()
    assert h.core.link_changed("b", "d", up=True, source="test") is None
    h.core.link_changed("d", "b", up=False, source="test")
    events = len(h.core.events)
    assert h.core.link_changed("b", "d", up=False, source="other end") is None
    assert len(h.core.events) == events


def test_a_link_coming_back_restores_the_igp_and_the_policy_paths():
    h = baseline(down=[("b", "d")])
    h.core.add_policy(h.policy(name="fast", headend="a", to="k4-1"))
    assert h.core.get_policy("fast")["path"] == ["a", "c", "d"]
    event = h.core.link_changed("b", "d", up=True, source="test")
    assert event["policies_rerouted"] == ["fast"]
    assert h.core.get_policy("fast")["path"] == ["a", "b", "d"]
    assert h.send("u1-1", K4).sites == h.send("u1-1", U4).sites == ("a", "b", "d")


@pytest.mark.parametrize("frr", [False, True])
def test_after_any_link_changes_the_routers_forward_as_a_fresh_install_would(frr):
    h = baseline(frr=frr)
    for a, b, up in (("b", "d", False), ("a", "c", False), ("b", "d", True), ("c", "d", False),
                     ("a", "b", False)):
        h.core.link_changed(a, b, up, "test")
        fresh = baseline(frr=frr, down=h.core.down)
        assert h.forwarding() == fresh.forwarding(), f"after link {a}-{b} {'up' if up else 'down'}"


CUT = """
name: chain
sites: [{name: a, id: 1}, {name: b, id: 2}, {name: c, id: 3}]
links: [{a: a, b: b, delay_ms: 1}, {a: b, b: c, delay_ms: 1}]
"""


def test_a_site_cut_off_by_a_link_down_loses_its_routes_instead_of_using_the_down_link():
    # Reproducer: routes to sites the IGP no longer reaches were left in place, so an
    # administratively downed link kept carrying traffic.
    h = baseline(topology=parse_yaml_topology(CUT, "chain.yaml"))
    k3 = addressing.host_address(3, "compute", 1)
    h.core.link_changed("b", "c", up=False, source="test")
    walk = h.send("u1-1", k3)
    assert (walk.result, walk.sites, walk.reason) == ("drop", ("a",), f"no route to {k3}")
    h.core.link_changed("b", "c", up=True, source="test")
    assert h.send("u1-1", k3).delivered_to == k3


LADDER = """
name: two-ways-on
sites: [{name: a, id: 1}, {name: b, id: 2}, {name: c, id: 3}, {name: d, id: 4}, {name: e, id: 5}]
links:
  - {a: a, b: b, delay_ms: 1}
  - {a: b, b: c, delay_ms: 1}
  - {a: c, b: e, delay_ms: 1}
  - {a: b, b: d, delay_ms: 2}
  - {a: d, b: e, delay_ms: 2}
"""


def test_a_replanned_policy_reports_its_new_path_even_when_its_routes_stay_the_same():
    # Reproducer: a policy whose new plan compiled to the same routes (one End.DT6
    # segment, same first hop) kept its old path, so it still claimed the down link.
    h = baseline(topology=parse_yaml_topology(LADDER, "ladder.yaml"))
    h.core.add_policy(h.policy(name="p", headend="a", to="e"))
    routes = h.core.get_policy("p")["routes"]
    event = h.core.link_changed("c", "e", up=False, source="test")
    assert event["policies_rerouted"] == ["p"]
    assert h.core.get_policy("p")["path"] == ["a", "b", "d", "e"]
    assert h.core.get_policy("p")["routes"] == routes
    assert h.send("u1-1", addressing.host_address(5, "client", 1)).sites == ("a", "b", "d", "e")
    event = h.core.link_changed("b", "d", up=False, source="test")  # now it does concern the policy
    assert event["policies_failed"] == ["p: no path a->e: the sites are not connected"]


def test_close_closes_every_session():
    h = baseline()
    opened = len(h.core.sessions)
    assert opened == 4
    h.core.close()
    assert h.closed == opened and h.core.sessions == {}


# ------------------------------------------------------------------ fast reroute
@pytest.mark.parametrize("failed", LINKS)
def test_frr_backups_carry_every_host_pair_around_a_link_the_controller_has_not_heard_of(failed):
    h = baseline(frr=True)
    assert h.core.status()["backups"] == {f"r{i}": 6 for i in range(1, 5)}
    h.net.set_carrier(*failed, up=False)  # the kernel skips routes over it; the core is not told
    for src in h.hosts.values():
        for dst in h.hosts.values():
            if dst.site == src.site:
                continue
            walk = h.send(src.name, dst.address)
            assert (walk.result, walk.delivered_to) == ("delivered", dst.address), (src.name, dst.name)
            assert frozenset(failed) not in links_of(walk.sites), walk.sites


def test_without_frr_a_silent_link_failure_blackholes_its_traffic():
    h = baseline(frr=False)
    h.net.set_carrier("b", "d", up=False)
    walk = h.send("u1-1", K4)
    assert (walk.result, walk.sites) == ("drop", ("a", "b"))


def test_frr_backups_follow_reconvergence_and_vanish_where_no_alternative_exists():
    h = baseline(frr=True)
    h.core.link_changed("b", "d", up=False, source="test")
    graph = h.core.graph()
    assert not graph.has_edge("b", "d") and nx.is_tree(graph)
    assert h.core.status()["backups"] == {f"r{i}": 0 for i in range(1, 5)}
    assert all(r.priority != 2048 for router in h.net.routers.values() for r in router.routes())
    h.core.link_changed("b", "d", up=True, source="test")
    assert h.core.status()["backups"] == {f"r{i}": 6 for i in range(1, 5)}
