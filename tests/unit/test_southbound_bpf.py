"""The eBPF driver without root: route and rule specs in, map entries and kernel routes out.

Fakes stand in for the pinned maps and the netlink session; the programs that read the
maps are tested on packets in test_dataplane_programs.py.
"""

from __future__ import annotations

import errno

import pytest

from controllers.southbound.bpf import RouterBpf
from controllers.southbound.netlink import NetlinkError
from cpn_net.baseline import interface_plan, router_specs, site_graph
from cpn_net.dataplane import records as R
from cpn_net.emulation.plan import build_plan
from cpn_net.model import load_topology
from cpn_net.srv6.packet import build_ipv6, encapsulate
from cpn_net.srv6.sids import end_dt6_sid

PLAN = build_plan(load_topology("topologies/tiny.yaml"))
DT6_3 = str(end_dt6_sid(3, 254))


class FakeMap:
    def __init__(self):
        self.entries = {}

    def update(self, key, value):
        self.entries[bytes(key)] = bytes(value)

    def delete(self, key, missing_ok=True):
        return self.entries.pop(bytes(key), None) is not None

    def lookup(self, key, value_size=None):
        return self.entries.get(bytes(key))

    def items(self):
        return list(self.entries.items())

    def close(self):
        pass


class FakeKernel:
    """Routes keyed like the kernel's (table, dst, metric); rules as a list; failures on demand."""

    def __init__(self):
        self.routes_ = {}
        self.rules_ = []
        self.fail_on = None
        self.calls = []

    def route(self, op, spec):
        self.calls.append(("route", op, spec.get("dst")))
        if self.fail_on and self.fail_on(op, spec):
            raise NetlinkError(f"injected failure: {op} {spec}")
        key = (spec.get("table", 254), spec["dst"], spec.get("priority"))
        if op == "del":
            self.routes_.pop(key, None)
        elif op == "add" and key in self.routes_:
            raise NetlinkError(str((errno.EEXIST, "File exists")))
        else:
            self.routes_[key] = dict(spec)

    def rule(self, op, spec):
        self.calls.append(("rule", op, spec.get("fwmark")))
        if op == "del":
            if spec in self.rules_:
                self.rules_.remove(spec)
        else:
            self.rules_.append(dict(spec))

    def routes(self, table=None):
        return [{"dst": k[1], "metric": k[2], "table": k[0]} for k in self.routes_]

    def carrier(self, name):
        return True

    def close(self):
        pass


@pytest.fixture
def r1():
    maps = {name: FakeMap() for name in ("cpn_sids", "cpn_encaps", "cpn_prefixes", "cpn_hosts", "cpn_config",
                                         "cpn_stats")}
    kernel = FakeKernel()
    return RouterBpf("r1", plan=PLAN, run_dir="/nonexistent", kernel=kernel, maps=maps)


def _sid(r1, address):
    raw = r1.maps["cpn_sids"].entries.get(R.address_key(address))
    return None if raw is None else R.SidEntry.unpack(raw)


def _baseline(r1):
    graph = site_graph(PLAN, frozenset())
    for spec in router_specs(PLAN, graph)["r1"]:
        r1.route("replace", spec)


def test_baseline_local_sids_become_map_entries_with_their_marks_and_tables(r1):
    _baseline(r1)
    end_x = _sid(r1, "fcbb:bb00:1:2:2::")
    assert end_x.action is R.Action.END_X and end_x.mark & R.MARK_MASK == R.MARK_BASE
    table = R.TABLE_BASE + (end_x.mark - R.MARK_BASE)
    via = r1.kernel.routes_[(table, "::/0", R.kernel_metric(1024, 0))]
    assert via["gateway"] == "fd00:1::2" and via["oif"] == "r1-eth1"
    assert {"priority": R.RULE_PRIORITY, "fwmark": end_x.mark, "table": table} in r1.kernel.rules_
    assert _sid(r1, "fcbb:bb00:1:1::").action is R.Action.END and _sid(r1, "fcbb:bb00:1:1::").mark == 0
    dt6 = _sid(r1, str(end_dt6_sid(1, 254)))
    assert dt6.action is R.Action.END_DT6 and dt6.mark == 0  # the main table: no rule needed
    # plain routes keep their order: IGP at 1024 << 20
    assert (254, "2001:db8:2::/64", R.kernel_metric(1024, 0)) in r1.kernel.routes_


def test_a_policy_route_is_a_plain_route_whose_metric_keys_its_outer_header(r1):
    _baseline(r1)
    spec = {"dst": "2001:db8:3::2:1/128", "oif": "r1-eth1", "priority": 100,
            "encap": {"type": "seg6", "mode": "encap", "segs": ["fcbb:bb00:3:3:2:1::", "fcbb:bb00:2:1::"]}}
    r1.route("add", spec)
    (key, route), = [(k, v) for k, v in r1.kernel.routes_.items() if k[1] == spec["dst"]]
    assert R.project_metric(key[2]) == 100 and key[2] != R.kernel_metric(100, 0)
    assert route["gateway"] == "fd00:1::2" and route["oif"] == "r1-eth1" and "encap" not in route
    header = R.EncapEntry.unpack(r1.maps["cpn_encaps"].entries[R.u32_key(key[2])]).header
    inner = build_ipv6("2001:db8:1::1:1", "2001:db8:3::2:1", 59, b"")
    expected = encapsulate(inner, "fd00:1::1", ["fcbb:bb00:2:1::", "fcbb:bb00:3:3:2:1::"])
    srh_size = len(header) - 40
    assert header[:4] == expected[:4] and header[6:] == expected[6:len(header)]
    assert int.from_bytes(header[4:6], "big") == srh_size  # the program adds the inner packet's length
    assert R.prefix_key("2001:db8:3::2:1/128") in r1.maps["cpn_prefixes"].entries
    r1.route("del", {"dst": spec["dst"], "oif": "r1-eth1", "priority": 100})
    assert not [k for k in r1.kernel.routes_ if k[1] == spec["dst"]]
    assert R.u32_key(key[2]) not in r1.maps["cpn_encaps"].entries
    assert R.prefix_key("2001:db8:3::2:1/128") not in r1.maps["cpn_prefixes"].entries


def test_two_tables_steering_the_same_destination_get_two_slots(r1):
    _baseline(r1)
    for table, segs in ((2001, ["fcbb:bb00:2:3:2:1::"]), (2002, ["fcbb:bb00:3:3:2:1::"])):
        r1.route("replace", {"dst": "2001:db8:ffff::1/128", "table": table, "oif": "r1-eth1", "priority": 100,
                             "encap": {"type": "seg6", "mode": "encap", "segs": segs}})
    metrics = sorted(k[2] for k in r1.kernel.routes_ if k[1] == "2001:db8:ffff::1/128")
    assert len(set(metrics)) == 2
    heads = {R.EncapEntry.unpack(r1.maps["cpn_encaps"].entries[R.u32_key(m)]).destination for m in metrics}
    assert heads == {"fcbb:bb00:2:3:2:1::", "fcbb:bb00:3:3:2:1::"}


def test_a_backup_turning_from_plain_to_encap_and_back_leaves_one_kernel_route(r1):
    plain = {"dst": "2001:db8:3::/64", "oif": "r1-eth2", "gateway": "fd00:3::3", "priority": 2048}
    encap = {"dst": "2001:db8:3::/64", "oif": "r1-eth1", "priority": 2048,
             "encap": {"type": "seg6", "mode": "encap", "segs": [DT6_3, "fcbb:bb00:2:1::"]}}
    for spec in (plain, encap, plain):
        r1.route("replace", spec)
        assert len([k for k in r1.kernel.routes_ if k[1] == "2001:db8:3::/64"]) == 1
    assert r1.maps["cpn_encaps"].entries == {} and r1.maps["cpn_prefixes"].entries == {}
    r1.route("del", {"dst": "2001:db8:3::/64", "priority": 2048})
    assert r1.kernel.routes_ == {}


def test_the_headends_own_end_x_first_is_applied_ahead_towards_its_neighbour(r1):
    _baseline(r1)
    spec = {"dst": "2001:db8:3::/64", "oif": "r1-eth2", "priority": 100,
            "encap": {"type": "seg6", "mode": "encap", "segs": [DT6_3, "fcbb:bb00:1:2:2::"]}}
    r1.route("add", spec)
    (key, route), = [(k, v) for k, v in r1.kernel.routes_.items() if k[1] == "2001:db8:3::/64" and k[2] < 1 << 30]
    entry = R.EncapEntry.unpack(r1.maps["cpn_encaps"].entries[R.u32_key(key[2])])
    assert route["oif"] == "r1-eth1" and route["gateway"] == "fd00:1::2"  # the End.X adjacency, not eth2
    assert entry.destination == DT6_3 and entry.segments_left == 0


def test_add_of_an_existing_route_is_refused_and_a_failed_install_leaves_nothing(r1):
    spec = {"dst": "2001:db8:3::2:1/128", "oif": "r1-eth1", "priority": 100,
            "encap": {"type": "seg6", "mode": "encap", "segs": ["fcbb:bb00:3:3:2:1::"]}}
    r1.route("add", spec)
    with pytest.raises(NetlinkError, match="File exists"):
        r1.route("add", spec)
    r1.route("del", spec)
    r1.kernel.fail_on = lambda op, s: op == "add"
    with pytest.raises(NetlinkError, match="injected"):
        r1.route("add", spec)
    assert r1.maps["cpn_encaps"].entries == {} and r1.maps["cpn_prefixes"].entries == {}
    assert r1.installed == {}


def test_binding_sid_holds_its_bound_list_and_boundary_fills_the_host_set(r1):
    r1.route("add", {"dst": "fcbb:bb00:1:5:1::/128", "oif": "r1-eth0",
                     "encap": {"type": "seg6local", "action": "End.B6.Encaps",
                               "srh": {"segs": [DT6_3, "fcbb:bb00:2:1::"]}}})
    entry = _sid(r1, "fcbb:bb00:1:5:1::")
    assert entry.action is R.Action.END_B6_ENCAPS and entry.encap >= R.BINDING_KEY_BASE
    bound = R.EncapEntry.unpack(r1.maps["cpn_encaps"].entries[R.u32_key(entry.encap)])
    assert bound.destination == "fcbb:bb00:2:1::" and bound.segments == (DT6_3, "fcbb:bb00:2:1::")
    r1.route("del", {"dst": "fcbb:bb00:1:5:1::/128", "oif": "r1-eth0", "encap": {"type": "seg6local"}})
    assert r1.maps["cpn_sids"].entries == {} and r1.maps["cpn_encaps"].entries == {}
    r1.boundary(["2001:db8:1::1:1"])
    assert R.address_key("2001:db8:1::1:1") in r1.maps["cpn_hosts"].entries
    assert r1.maps["cpn_config"].entries[R.u32_key(0)] == R.u32_key(1)


def test_an_unsupported_first_segment_is_refused_by_name(r1):
    with pytest.raises(NetlinkError, match="WAN neighbour"):
        r1.route("add", {"dst": "2001:db8:1::1:1/128", "oif": "r1-eth0", "priority": 100,
                         "encap": {"type": "seg6", "mode": "encap", "segs": ["fcbb:bb00:1:3:1:1::"]}})


def test_a_batch_writes_the_maps_and_hands_the_kernel_one_ip_batch(r1, monkeypatch):
    sent = []
    monkeypatch.setattr("controllers.southbound.ipbatch.run_batch", lambda router, lines: sent.append((router, lines)))
    routes = [{"dst": f"2001:db8:3::2:1/128", "table": 1000 + i, "oif": "r1-eth1", "priority": 100,
               "encap": {"type": "seg6", "mode": "encap", "segs": ["fcbb:bb00:3:3:2:1::"]}} for i in range(3)]
    rules = [{"priority": 1000 + i, "table": 1000 + i, "iifname": "r1-eth0", "dst": "2001:db8:3::2:1/128"}
             for i in range(3)]
    r1.batch(routes, rules)
    (router, lines), = sent
    assert router == "r1" and len(lines) == 6 and r1.kernel.routes_ == {}  # nothing went over netlink
    metrics = [R.kernel_metric(100, slot) for slot in (1, 2, 3)]
    assert lines[0] == f"route add 2001:db8:3::2:1/128 table 1000 via fd00:1::2 dev r1-eth1 metric {metrics[0]}"
    assert lines[3] == "rule add priority 1000 to 2001:db8:3::2:1/128 iif r1-eth0 lookup 1000"
    assert {R.u32_key(m) for m in metrics} == set(r1.maps["cpn_encaps"].entries)
    for spec in routes:  # what the core does when a batch fails: every spec removed again
        r1.route("del", {k: v for k, v in spec.items() if k != "encap"})
    assert r1.maps["cpn_encaps"].entries == {} and r1.maps["cpn_prefixes"].entries == {} and r1.installed == {}


def test_a_restarted_controller_adopts_what_is_installed_and_replaces_without_a_change(r1):
    _baseline(r1)
    policy = {"dst": "2001:db8:3::2:1/128", "table": 1000, "oif": "r1-eth1", "priority": 100,
              "encap": {"type": "seg6", "mode": "encap", "segs": ["fcbb:bb00:3:3:2:1::", "fcbb:bb00:2:1::"]}}
    r1.route("add", policy)
    maps_before = {name: dict(m.entries) for name, m in r1.maps.items()}
    # the kernel as `ip -j` shows it to the new driver
    routes = [{"dst": dst, "table": table, "metric": metric, "gateway": spec.get("gateway"), "dev": spec.get("oif"),
               "type": None} for (table, dst, metric), spec in r1.kernel.routes_.items()]
    rules = [dict(rule) for rule in r1.kernel.rules_]
    again = RouterBpf("r1", plan=PLAN, run_dir="/nonexistent", kernel=r1.kernel, maps=r1.maps)
    again.adopt(routes, rules)
    r1.kernel.calls.clear()
    _baseline(again)
    again.route("replace", policy)
    changed = [c for c in r1.kernel.calls if c[1] != "replace"]
    assert changed == [], changed  # no rule or route deleted and re-added: no gap
    assert {name: dict(m.entries) for name, m in again.maps.items()} == maps_before
    assert len([k for k in r1.kernel.routes_ if k[1] == policy["dst"]]) == 1
    again.route("add", dict(policy, dst="2001:db8:3::1:1/128"))  # a new policy gets a fresh slot
    slots = sorted(k[2] & R.MAX_SLOT for k in r1.kernel.routes_ if k[0] == 1000)
    assert slots == [1, 2]
