"""SliceService on a recording southbound: admission, realisation, deletion and rollback.

The routers are a recording fake (a set of installed routes and rules per
router) that can refuse the n-th change; tc and OpenFlow go to recorders.
The integration tests prove the same on the kernel and OVS.
"""

import json

import pytest

from controllers.core import ControllerCore
from controllers.slice_service import SliceConflict, SliceService, UnknownSlice
from cpn_net.emulation.plan import build_plan
from cpn_net.model import load_topology
from cpn_net.slicing.errors import SliceRefused
from cpn_net.slicing.isolation import PRIORITY_SPOOFED, RULE_BLACKHOLE
from cpn_net.slicing.realise import PRIORITY_SLICE

TOPO = load_topology("topologies/slices.yaml")
PLAN = build_plan(TOPO)


def _key(spec):
    return json.dumps(spec, sort_keys=True)


class Recorder:
    def __init__(self):
        self.state = {}        # router -> {(kind, key)}
        self.changes = 0
        self.refuse_at = None  # refuse the n-th add (1-based)
        self.tc = []           # (router, commands)
        self.flows = {}        # dpid -> {(table, priority, match): actions}
        self.meters = []

    def session(self, router):
        return Session(self, router)

    def run_tc(self, router, commands):
        self.tc.append((router, commands))

    def apply_flows(self, before, after):
        for dpid, specs in after.items():
            for f in specs:
                self.flows.setdefault(dpid, {})[(f.table, f.priority, f.match)] = f.actions
        for dpid, specs in before.items():
            kept = {(f.table, f.priority, f.match) for f in after.get(dpid, [])}
            for f in specs:
                if (f.table, f.priority, f.match) not in kept:
                    self.flows.get(dpid, {}).pop((f.table, f.priority, f.match), None)

    def installed(self):
        return sum(len(v) for v in self.state.values())


class Session:
    def __init__(self, rec, router):
        self.rec, self.router = rec, router

    def _change(self, kind, op, spec):
        entries = self.rec.state.setdefault(self.router, set())
        if op == "add":
            self.rec.changes += 1
            if self.rec.refuse_at == self.rec.changes:
                raise RuntimeError(f"{self.router}: {kind} add refused (test)")
            assert (kind, _key(spec)) not in entries, f"{kind} added twice: {spec}"
            entries.add((kind, _key(spec)))
        else:
            entries.discard((kind, _key(spec)))

    def route(self, op, spec):
        self._change("route", op, spec)

    def rule(self, op, spec):
        self._change("rule", op, spec)

    def close(self):
        pass


@pytest.fixture
def rec():
    return Recorder()


@pytest.fixture
def service(rec, monkeypatch):
    core = ControllerCore(PLAN, netlink_factory=rec.session, frr=False)
    svc = SliceService(core, TOPO, apply_flows=rec.apply_flows,
                       apply_meters=lambda meters, command: rec.meters.append((command, meters)),
                       run_tc=rec.run_tc)
    monkeypatch.setattr(SliceService, "_install_boundary", lambda self: setattr(self, "boundary", True))
    yield svc
    core.close()


def test_declared_slices_admitted_in_order_greedy_refused_naming_link(service, rec):
    service.start()
    assert [s["name"] for s in service.list()] == ["gold", "bulk", "greedy"]
    assert service.get("gold")["state"] == "admitted"
    greedy = service.get("greedy")
    assert greedy["state"] == "refused" and "a-b" in greedy["refusal"]
    # gold: 2 routes + 2 rules at each of r1, r2 (table, DT6 SID, isolation pair) + one policy each way
    gold_rules = [k for k in rec.state["r2"] if k[0] == "rule" and '"blackhole"' in k[1]]
    assert len(gold_rules) == 2  # k2-1 (gold) and k2-2 (bulk) are blackholed in the main table
    assert service.boundary


def test_delete_removes_everything_it_installed(service, rec):
    service.start()
    before = rec.installed()
    service.delete("bulk")
    service.delete("gold")
    assert rec.installed() == 0 < before
    assert all(not flows for flows in rec.flows.values())
    assert service.list() == [service.get("greedy")]  # only the refused declaration is left
    with pytest.raises(UnknownSlice):
        service.delete("gold")


@pytest.mark.parametrize("refuse_at", [1, 3, 5, 7])
def test_failed_realisation_leaves_nothing_partial(service, rec, refuse_at):
    spec = TOPO.slices[0]
    rec.refuse_at = refuse_at
    with pytest.raises(RuntimeError, match="rolled back"):
        service.add(spec)
    assert rec.installed() == 0
    assert service.list() == [] and all(not flows for flows in rec.flows.values())
    rec.refuse_at = None
    assert service.add(spec)["state"] == "admitted"  # and its capacity was released


def test_refusal_installs_nothing_and_conflict_is_refused(service, rec):
    service.add(TOPO.slices[0])
    installed = rec.installed()
    with pytest.raises(SliceConflict):
        service.add(TOPO.slices[0])
    big = service.parse({"name": "huge", "members": ["u1-3", "k2-3"], "rate_mbps": 15})
    with pytest.raises(SliceRefused) as err:
        service.add(big)
    assert err.value.link == ("a", "b") and err.value.shortfall_mbps == pytest.approx(5.0)
    assert rec.installed() == installed


def test_runtime_request_is_checked_against_slices_in_force(service):
    service.add(TOPO.slices[0])
    with pytest.raises(Exception, match="u1-1"):  # u1-1 is in isolated gold already
        service.parse({"name": "other", "members": ["u1-1", "k2-3"], "rate_mbps": 1})
    spec = service.parse({"name": "other", "members": ["u1-3", "k2-3"], "rate_mbps": 1})
    assert spec.id != TOPO.slices[0].id


def test_queues_follow_slices_and_deleted_class_is_removed(service, rec):
    service.add(TOPO.slices[0])
    first = [" ".join(c) for _, cmds in rec.tc for c in cmds]
    assert any("classid 1:11 htb rate 10000kbit" in c for c in first)
    rec.tc.clear()
    service.delete("gold")
    removal = [" ".join(c) for _, cmds in rec.tc for c in cmds]
    assert any(c.startswith("tc class del") and "1:11" in c for c in removal)
    assert any(c.startswith("tc filter del") and "800::1" in c for c in removal)


def test_switch_flows_guard_every_host_port_once_an_isolated_slice_exists(service, rec):
    service.add(TOPO.slices[0])
    priorities = {p for (_, p, _) in rec.flows[1]}
    assert PRIORITY_SPOOFED in priorities
    assert RULE_BLACKHOLE  # the router side is checked in test_declared_slices...
    status = service.status(None)
    assert status["slices"]["gold"]["slo"]["pairs"][0]["delay_ms"] is None  # no telemetry: unknown


def test_marks_are_given_at_admission_and_freed_on_delete(service, rec):
    service.start()
    assert (service.get("gold")["mark"], service.get("bulk")["mark"]) == (1, 2)  # both cross a-b
    assert service.get("greedy")["mark"] is None
    assert service.view()["admitted"]["bulk"]["mark"] == 2
    bulk_dscps = {a[2] for (_, p, m), actions in rec.flows[1].items()
                  if p == PRIORITY_SLICE and ("ipv6_src", "2001:db8:1::1:2") in m
                  for a in actions if a[:2] == ("set_field", "ip_dscp")}
    assert bulk_dscps == {0x24}  # mark 2, colour 0; the id (2) names the queue, the mark the DSCP
    service.delete("gold")
    late = service.parse({"name": "late", "members": ["u1-3", "k2-3"], "rate_mbps": 1, "id": 300})
    added = service.add(late)
    assert added["mark"] == 1 and added["id"] == 300  # gold's mark is free again; ids are not marks
    commands = [" ".join(c) for _, cmds in rec.tc for c in cmds]
    assert any("handle 800::12c u32 match ip6 priority 0x88 0xf8 flowid 1:13c" in c for c in commands)
