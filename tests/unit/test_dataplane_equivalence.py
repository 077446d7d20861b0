"""Both data planes against one model: the same specs in, the same packets through, the same outcome.

One network is the Linux seg6 reference (:class:`~cpn_net.srv6.fake_netlink.FakeNetwork` of
:class:`~cpn_net.srv6.fake_netlink.FakeRouter`), the other the eBPF data plane
(:class:`~cpn_net.dataplane.fake.BpfFakeNetwork`): the real eBPF driver writing fake maps and a
kernel FakeRouter, the programs of ``srv6.bpf.c`` modelled in Python. Every host pair's packet
must give the same result, the same sites, the same delivered host and packet, and hop by hop
the same packets on the wire (outer destination, SRH segment list and Segments Left, traffic
class, flow label, the innermost bytes).

Differences the two models are *meant* to have, so the comparison leaves them out:

* **Hop limits.** The eBPF headend encapsulates at egress, after the stack forwarded (and
  decremented) the inner packet; the Linux model encapsulates at input and the forwarding
  decrements the new outer header instead. Both outer headers inherit the inner Hop Limit
  (``seg6_do_srh_encap``), so they leave the headend with the same value; the packet an egress
  H.Encaps wraps arrives with a Hop Limit one lower per such encapsulation (checked exactly:
  :func:`egress_wraps`). Every Hop Limit is compared apart from that.
* **Outer source address.** The eBPF driver takes the address of the interface the policy
  leaves by (as Linux's source address selection does for ``dev``, without ``ip sr tunsrc``);
  the Linux model always uses the router's LAN address. Sources are compared as "which router".
* **Steps.** The eBPF driver applies the headend's own End / End.X at the front of a list ahead
  (the outer header leaves with them done), so that End.X is no step of its own. Steps of a drop
  are not compared: an End.X whose link lost carrier is dropped by both at the same router, but
  Linux hides the seg6local route itself (its ``dev`` is linkdown, ``ignore_routes_with_linkdown``)
  while the program, which knows no carrier, advances the SRH and the End.X table's route is the
  one hidden (the fallback blackhole rule drops the marked packet).

Two differences change where packets go; each is pinned by a test of its own instead of being
left out: End.DT6 of the main table (eBPF routes the decapsulated packet through every rule,
Linux looks the main table up alone: an isolated slice's blackhole rule is bypassed by Linux
behind an FRR backup), and where H.Encaps sends the outer packet (eBPF: the neighbour of the
spec's ``oif``; Linux: wherever the route to the first segment says, which differs for stale
policies).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import socket
import struct

import networkx as nx
import pytest

from cpn_net.baseline import interface_plan, router_specs, site_graph
from cpn_net.dataplane import records as R
from cpn_net.dataplane.fake import BpfFakeNetwork, BpfFakeRouter, FakeLpmMap, fake_maps, plan_of_graph
from cpn_net.emulation.plan import build_plan
from cpn_net.model import addressing, load_topology
from cpn_net.model.policies import parse_policy
from cpn_net.srv6.fake_netlink import FakeNetwork, FakeRouter
from cpn_net.srv6.frr import backup_routes
from cpn_net.srv6.baseline import router_baseline
from cpn_net.srv6.igp import Igp
from cpn_net.srv6.interfaces import InterfacePlan
from cpn_net.srv6.packet import build_udp, decode_ipv6, decode_srv6, encapsulate
from cpn_net.srv6.planner import hosts_of_plan, plan_policy
from cpn_net.srv6.policy import FlowMatch, SRPolicy, compile_policy
from cpn_net.srv6.segments import SegmentList, minimal_segment_list
from cpn_net.srv6.sids import Behaviour, binding_sid, end_dt6_sid, end_dx6_sid, end_x_sid, parse_sid
from cpn_net.srv6.srh import NEXT_HEADER_IPV6

FLOW_PORT = 7001  # the flow policies steer UDP to this port; every pair also sends to OTHER_PORT
OTHER_PORT = 7002


# --------------------------------------------------------------------------- the pair
class Pair:
    """The same network twice: Linux seg6 and the eBPF data plane, fed the same specs."""

    def __init__(self, G: nx.Graph, interfaces: InterfacePlan, *, netplan=None, topology=None, linux_marks=False):
        self.G, self.interfaces, self.topology = G, interfaces, topology
        routers = {site: FakeRouter.for_site(G, site, interfaces, marks=linux_marks) for site in G} \
            if linux_marks else {}
        self.linux = FakeNetwork(G, interfaces, routers)
        self.bpf = BpfFakeNetwork(G, interfaces, netplan=netplan)
        self.igp = Igp(G)
        self.owners = {address: router.name for router in self.linux.routers.values()
                       for address in router.addresses}
        self.next_table = 1000

    @classmethod
    def of_topology(cls, path: str, **kw) -> "Pair":
        topology = load_topology(path)
        plan = build_plan(topology)
        pair = cls(site_graph(plan), interface_plan(plan), netplan=plan, topology=topology, **kw)
        pair.plan = plan
        pair.hosts = hosts_of_plan(plan)
        for router, specs in router_specs(pair.plan, pair.G, igp=pair.igp).items():
            for spec in specs:
                pair.route(router, "add", spec)
        pair.add_backups()
        return pair

    def nets(self):
        return self.linux, self.bpf

    def route(self, router: str, op: str, spec: dict) -> None:
        for net in self.nets():
            net.router(router).route(op, **spec)

    def add_backups(self) -> None:
        for site in self.G:
            router = addressing.router_name(self.G.nodes[site]["id"])
            for spec in backup_routes(self.G, site, self.interfaces, igp=self.igp):
                self.route(router, "add", spec)

    def install(self, compiled):
        for net in self.nets():
            net.install(compiled)
        return compiled

    def remove(self, compiled) -> None:
        for net in self.nets():
            net.remove(compiled)

    def policy(self, *, flow_table: bool = False, **body):
        """A declared policy planned by the pure core (as the controller does) and installed in both."""
        table = None
        if flow_table:
            table, self.next_table = self.next_table, self.next_table + 1
        planned = plan_policy(self.G, parse_policy(body, self.topology), self.interfaces, self.hosts, igp=self.igp,
                              table=table)
        self.install(planned.compiled)
        return planned

    def cut(self, a, b) -> None:
        for net in self.nets():
            net.set_carrier(a, b, False)

    def send(self, packet: bytes, site):
        return self.linux.send(packet, site), self.bpf.send(packet, site)

    def host_packets(self):
        """A UDP packet (traffic class and flow label set) per host pair of two sites, per port."""
        for src in self.hosts.values():
            for dst in self.hosts.values():
                if src.site != dst.site:
                    for port in (FLOW_PORT, OTHER_PORT):
                        yield src.site, build_udp(src.address, dst.address, 5000 + src.index, port,
                                                  f"{src.name}>{dst.name}".encode(), traffic_class=0x2E << 2,
                                                  flow_label=0x12345)


# ------------------------------------------------------------------------ comparison
def layers(packet: bytes, owners) -> tuple:
    """Every IPv6 header of ``packet``, outermost first, as compared (no Hop Limit), then the innermost payload.

    A header's source is the router owning it when a router does (each model picks another of its addresses).
    """
    out = []
    while True:
        parsed = decode_srv6(packet)
        header = parsed.outer
        srh = None if parsed.srh is None else (tuple(str(s) for s in parsed.srh.segment_list),
                                               parsed.srh.segments_left, parsed.srh.last_entry,
                                               parsed.srh.next_header, parsed.srh.flags, parsed.srh.tag)
        out.append((owners.get(header.source, str(header.source)), str(header.destination), header.next_header,
                    header.traffic_class, header.flow_label, srh))
        if parsed.inner_next_header != NEXT_HEADER_IPV6:
            out.append(parsed.inner)
            return tuple(out)
        packet = parsed.inner


def hop_limits(packet: bytes) -> tuple[int, ...]:
    limits = []
    while True:
        parsed = decode_srv6(packet)
        limits.append(parsed.outer.hop_limit)
        if parsed.inner_next_header != NEXT_HEADER_IPV6:
            return tuple(limits)
        packet = parsed.inner


def egress_wraps(walk, delivered: bytes, owners) -> int:
    """Hops where the eBPF data plane's egress H.Encaps wrapped the delivered packet itself."""
    wanted = layers(delivered, owners)
    count = 0
    for hop in walk.hops:
        if "H.Encaps" in hop.outcome.steps and hop.outcome.action == "forward":
            if layers(decode_srv6(hop.outcome.packet).inner, owners) == wanted:
                count += 1
    return count


def normal_steps(steps) -> tuple:
    """The Linux model's steps as the eBPF data plane takes them (see the module docstring)."""
    out, after_encap = [], False
    for step in steps:
        if step.startswith("H.Encaps"):
            out.append("H.Encaps")
            after_encap = True
        elif after_encap and step in ("End", "End.X"):
            continue  # the eBPF driver applied the headend's own End / End.X ahead
        else:
            out.append(step)
            after_encap = False
    return tuple(out)


def differences(pair: Pair, packet: bytes, site) -> list[str]:
    """What differs between the two models for ``packet`` sent from ``site``'s LAN (empty: nothing)."""
    linux, bpf = pair.send(packet, site)
    owners = pair.owners
    what = f"{decode_ipv6(packet)[0].source} -> {decode_ipv6(packet)[0].destination} from {site}"
    out = []
    if (linux.result, linux.sites, linux.delivered_to) != (bpf.result, bpf.sites, bpf.delivered_to):
        return [f"{what}: linux {linux.result} {linux.sites} {linux.delivered_to} ({linux.reason}), "
                f"bpf {bpf.result} {bpf.sites} {bpf.delivered_to} ({bpf.reason})"]
    for i, (a, b) in enumerate(zip(linux.hops, bpf.hops)):
        where = f"{what}: hop {i} ({a.site})"
        if (a.iif, a.outcome.action, a.outcome.oif, a.outcome.nexthop) != \
                (b.iif, b.outcome.action, b.outcome.oif, b.outcome.nexthop):
            out.append(f"{where}: linux {a.outcome.action} {a.outcome.oif} {a.outcome.nexthop}, "
                       f"bpf {b.outcome.action} {b.outcome.oif} {b.outcome.nexthop}")
        if a.outcome.action != "drop" and normal_steps(a.outcome.steps) != b.outcome.steps:
            out.append(f"{where}: steps linux {a.outcome.steps}, bpf {b.outcome.steps}")
        if a.outcome.action == "forward" and layers(a.outcome.packet, owners) != layers(b.outcome.packet, owners):
            out.append(f"{where}: on the wire linux {layers(a.outcome.packet, owners)}, "
                       f"bpf {layers(b.outcome.packet, owners)}")
    if linux.result == "delivered" and not out:
        wraps = egress_wraps(bpf, bpf.packet, owners)
        expected = tuple(h - wraps for h in hop_limits(linux.packet))
        if layers(linux.packet, owners) != layers(bpf.packet, owners) or hop_limits(bpf.packet) != expected:
            out.append(f"{what}: delivered linux {linux.packet.hex()}, bpf {bpf.packet.hex()} "
                       f"({wraps} egress encapsulations)")
    return out


def assert_equivalent(pair: Pair, packets=None) -> dict:
    """Every packet through both models; returns how many ended how (to check the scenario did something)."""
    problems, results = [], {}
    for site, packet in packets if packets is not None else pair.host_packets():
        found = differences(pair, packet, site)
        problems += found
        linux, _ = pair.send(packet, site)
        results[linux.result] = results.get(linux.result, 0) + 1
        for hop in linux.hops:
            for step in hop.outcome.steps:
                results[step] = results.get(step, 0) + 1
    assert not problems, "\n".join(problems[:10]) + f"\n({len(problems)} differences)"
    return results


def walks_of(pair: Pair, src: str, dst: str, port=OTHER_PORT):
    s, d = pair.hosts[src], pair.hosts[dst]
    return pair.send(build_udp(s.address, d.address, 5000 + s.index, port, b"x"), s.site)


# ------------------------------------------------------------------------- scenarios
def diamond() -> tuple[Pair, dict]:
    """diamond.yaml: baseline, FRR backups and one policy of every kind."""
    pair = Pair.of_topology("topologies/diamond.yaml")
    done = {
        # a prefix (d's LAN) from b over d's far side: b-a-c-d
        "prefix": pair.policy(name="prefix", headend="b", to="2001:db8:4::/64", waypoints=["c"]),
        # a host with a waypoint: a-c-d-b, End.X of c towards d in the list
        "host": pair.policy(name="host", headend="a", to="k2-1", waypoints=["c"]),
        # one flow, its rule and table: a-c-d for UDP to port FLOW_PORT only
        "flow": pair.policy(name="flow", headend="a", to="k4-1", waypoints=["c"], flow_table=True,
                            flow={"proto": "udp", "dst_port": FLOW_PORT}),
        # H.Encaps.Red: d-c-a
        "red": pair.policy(name="red", headend="d", to="u1-1", waypoints=["c"], mode="encap.red"),
    }
    # A binding SID at c (bound: c-a-b, End.DT6 at b) used by d for u2-1: d-c-a-b.
    bsid = binding_sid(3, 1)
    bound = minimal_segment_list(pair.G, ("c", "a", "b"), final_sid=end_dt6_sid(2, 254), igp=pair.igp)
    done["binding"] = pair.install(compile_policy(pair.G, SRPolicy("bsid", "c", None, bound, binding_sid=bsid),
                                                  pair.interfaces, igp=pair.igp))
    done["user"] = pair.install(compile_policy(
        pair.G, SRPolicy("use-bsid", "d", ipaddress.IPv6Network(f"{addressing.host_address(2, 'client', 1)}/128"),
                         SegmentList.of(bsid, end_dx6_sid(2, "client", 1))),
        pair.interfaces, igp=pair.igp, bindings={bsid: bound}))
    return pair, done


def tiny() -> tuple[Pair, dict]:
    """tiny.yaml: the headend's own End.X first (applied ahead by the driver), also with encap.red."""
    pair = Pair.of_topology("topologies/tiny.yaml")
    done = {
        # west -> east over the direct link: [End.X(west->east), End.DT6(east)], the first one the headend's own
        "prefix": pair.policy(name="prefix", headend="west", to="2001:db8:1::/64", objective="min_hops"),
        # east -> u2-1 via west: [End.X(east->west) (own), End.DX6]
        "host": pair.policy(name="host", headend="east", to="u2-1", waypoints=["west"]),
        # centre -> k3-1 via east: [End.X(east->west) (not the headend's), End.DX6], for one flow
        "flow": pair.policy(name="flow", headend="centre", to="k3-1", waypoints=["east"], flow_table=True,
                            flow={"proto": "udp", "dst_port": FLOW_PORT}),
        # reduced, and the headend's End.X ahead: the first segment is in no SRH at all
        "red": pair.policy(name="red", headend="east", to="k2-1", waypoints=["west"], mode="encap.red"),
    }
    bsid = binding_sid(2, 1)
    bound = minimal_segment_list(pair.G, ("centre", "west"), final_sid=end_dt6_sid(3, 254), igp=pair.igp)
    done["binding"] = pair.install(compile_policy(pair.G, SRPolicy("bsid", "centre", None, bound, binding_sid=bsid),
                                                  pair.interfaces, igp=pair.igp))
    done["user"] = pair.install(compile_policy(
        pair.G, SRPolicy("use-bsid", "east", ipaddress.IPv6Network(f"{addressing.host_address(3, 'client', 1)}/128"),
                         SegmentList.of(bsid, end_dx6_sid(3, "client", 1))),
        pair.interfaces, igp=pair.igp, bindings={bsid: bound}))
    return pair, done


SCENARIOS = {"diamond": diamond, "tiny": tiny}
CUTS = {"diamond": [("a", "b"), ("b", "d"), ("a", "c"), ("c", "d")],
        "tiny": [("east", "centre"), ("centre", "west"), ("east", "west")]}


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_baseline_and_backups_alone_give_the_same_walks(name):
    pair = Pair.of_topology(f"topologies/{name}.yaml")
    results = assert_equivalent(pair)
    assert set(results) == {"delivered"}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_kind_of_policy_gives_the_same_walks_and_wire_packets(name):
    pair, _ = SCENARIOS[name]()
    results = assert_equivalent(pair)
    assert results["delivered"] == sum(1 for _ in pair.host_packets())
    for step in ("H.Encaps", "H.Encaps.Red", "End.X", "End.DX6", "End.DT6", "End.B6.Encaps"):
        assert results.get(step), f"the scenario exercises no {step}: {results}"


@pytest.mark.parametrize("name, cut", [(n, c) for n in sorted(SCENARIOS) for c in CUTS[n]])
def test_a_cut_link_sends_traffic_over_the_same_backups(name, cut):
    pair, _ = SCENARIOS[name]()
    pair.cut(*cut)
    results = assert_equivalent(pair)
    assert results.get("delivered")


def test_the_scenarios_do_what_they_say():
    pair, done = diamond()
    linux, bpf = walks_of(pair, "u1-1", "k2-1")
    assert bpf.sites == done["host"].path.sites == ("a", "c", "d", "b")
    assert parse_sid(done["host"].segments.first).behaviour is Behaviour.END_X
    assert "End.X" in bpf.hops[1].outcome.steps
    assert walks_of(pair, "u1-1", "k4-1", FLOW_PORT)[1].sites == ("a", "c", "d")
    # other ports take the IGP to b, where the prefix policy for d's LAN steers transit traffic too
    assert walks_of(pair, "u1-1", "k4-1", OTHER_PORT)[1].sites == ("a", "b", "a", "c", "d")
    linux, bpf = walks_of(pair, "u4-1", "u2-1")
    assert bpf.sites == ("d", "c", "a", "b") and "End.B6.Encaps" in bpf.hops[1].outcome.steps
    linux, bpf = walks_of(pair, "u4-1", "u1-1")
    assert linux.hops[0].outcome.steps[0] == "H.Encaps.Red" and decode_srv6(bpf.wire[0]).srh.last_entry == 0
    # the difference the module docstring names: one Hop Limit less per egress encapsulation
    assert decode_ipv6(bpf.packet)[0].hop_limit == decode_ipv6(linux.packet)[0].hop_limit - 1
    # with a-b cut, b's traffic to a's LAN rides its encapsulating backup (End.DT6 at a)
    pair.cut("a", "b")
    linux, bpf = walks_of(pair, "u2-1", "u1-1")
    assert bpf.sites == ("b", "d", "c", "a") and bpf.hops[-1].outcome.steps == ("End.DT6",)
    assert pair.bpf.routers["b"].driver.stats()["h_encaps"] >= 1

    pair, done = tiny()
    linux, bpf = walks_of(pair, "u1-1", "u2-1")
    first = decode_srv6(bpf.wire[0])
    assert bpf.sites == ("east", "west", "centre")
    assert str(first.outer.destination) == str(end_dx6_sid(2, "client", 1)) and first.srh.segments_left == 0
    linux, bpf = walks_of(pair, "u1-1", "k2-1")  # reduced, End.X ahead: SL 0, the SRH holds End.DX6 only
    first = decode_srv6(bpf.wire[0])
    assert first.srh.segment_list == (end_dx6_sid(2, "compute", 1),) and first.srh.segments_left == 0


def test_removing_the_policies_gives_the_same_walks_again():
    for scenario in (diamond, tiny):
        pair, done = scenario()
        for key in ("prefix", "host", "flow", "red", "user"):
            compiled = getattr(done[key], "compiled", done[key])
            pair.remove(compiled)
            assert_equivalent(pair)


def test_a_removed_binding_sid_stops_in_both():
    """RouterBpf used to keep a binding SID's map entry when its route was deleted without the encap
    (CompiledPolicy.removal() keeps only dst, table, oif, priority): the SID kept pushing its list."""
    pair, done = diamond()
    pair.remove(done["user"])
    pair.remove(done["binding"])
    assert R.address_key(binding_sid(3, 1)) not in pair.bpf.routers["c"].maps["cpn_sids"].entries
    inner = build_udp(pair.hosts["u4-1"].address, pair.hosts["u2-1"].address, 1, OTHER_PORT)
    packet = encapsulate(inner, addressing.router_lan_address(4), [binding_sid(3, 1), end_dx6_sid(2, "client", 1)])
    linux, bpf = pair.send(packet, "d")
    assert linux.result == bpf.result == "drop" and linux.sites == bpf.sites == ("d", "c")
    assert not differences(pair, packet, "d")


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_policies_and_cuts(seed):
    rng = random.Random(seed)
    base = nx.connected_watts_strogatz_graph(8, 4, 0.4, seed=seed)
    G = nx.Graph()
    G.add_nodes_from((f"n{i}", {"id": i + 1}) for i in range(8))
    for number, (u, v) in enumerate(base.edges, start=1):
        G.add_edge(f"n{u}", f"n{v}", number=number, delay_ms=float(rng.randint(1, 5)), rate_mbps=100.0)
    interfaces = InterfacePlan.by_link_number(G)
    pair = Pair(G, interfaces)  # the driver reads plan_of_graph(G)
    hosts = {s: [("client", 1), ("compute", 1)] for s in G}
    for net in pair.nets():
        for site in G:
            for spec in router_baseline(G, site, interfaces, hosts=hosts[site], tables=(254,), igp=pair.igp):
                net.routers[site].route("add", **spec)
    pair.add_backups()
    for k in range(6):
        source, target = rng.sample(sorted(G), 2)
        path = rng.choice(list(nx.all_simple_paths(G, source, target, cutoff=5)))
        tid = G.nodes[target]["id"]
        final = end_dx6_sid(tid, "compute", 1) if k % 2 else end_dt6_sid(tid, 254)
        segments = minimal_segment_list(G, path, final_sid=final, igp=pair.igp)
        destination = FlowMatch(addressing.host_address(tid, "compute", 1), protocol="udp", dst_port=FLOW_PORT) \
            if k % 3 == 0 else ipaddress.IPv6Network(f"{addressing.host_address(tid, 'compute', 1)}/128")
        policy = SRPolicy(f"p{k}", source, destination, segments, mode=rng.choice(["encap", "encap.red"]),
                          table=2000 + k if k % 3 == 0 else None)
        try:
            compiled = compile_policy(G, policy, interfaces, igp=pair.igp)
            pair.install(compiled)
        except Exception as err:  # a second policy for the same host at one headend: skip it in both
            if "exists" not in str(err) and "EEXIST" not in str(err):
                raise
    packets = [(s, build_udp(addressing.host_address(G.nodes[s]["id"], "client", 1),
                             addressing.host_address(G.nodes[d]["id"], kind, 1), 4000, port, b"r",
                             flow_label=seed + 1))
               for s in G for d in G if s != d for kind in ("client", "compute") for port in (FLOW_PORT, OTHER_PORT)]
    pair.owners = {a: r.name for r in pair.linux.routers.values() for a in r.addresses}
    assert assert_equivalent(pair, packets).get("delivered")
    pair.cut(*rng.choice(list(G.edges)))
    assert_equivalent(pair, packets)


# ------------------------------------------------------------ the comparison has teeth
def test_a_wrong_end_x_mark_is_caught():
    pair, _ = diamond()
    maps = pair.bpf.routers["c"].maps["cpn_sids"]
    to_d, to_a = (R.address_key(end_x_sid(3, n)) for n in (4, 1))
    a, b = R.SidEntry.unpack(maps.entries[to_d]), R.SidEntry.unpack(maps.entries[to_a])
    maps.update(to_d, dataclasses.replace(a, mark=b.mark).pack())  # End.X towards d now marks for a
    problems = [p for site, packet in pair.host_packets() for p in differences(pair, packet, site)]
    assert problems and any("('a', 'c', 'a'" in p or "hop 1 (c)" in p for p in problems), problems[:3]


def test_swapped_encap_slots_are_caught():
    pair, _ = diamond()
    # two policies at a (host k2-1 in main, the flow to k4-1 in its table): swap their prebuilt headers
    encaps = pair.bpf.routers["a"].maps["cpn_encaps"]
    keys = [k for k in encaps.entries if R.project_metric(struct.unpack("<I", k)[0]) == 100]
    assert len(keys) == 2
    first, second = keys
    encaps.entries[first], encaps.entries[second] = encaps.entries[second], encaps.entries[first]
    problems = [p for site, packet in pair.host_packets() for p in differences(pair, packet, site)]
    assert any("u1-1" in p or "2001:db8:1::1:1" in p for p in problems), problems[:3]


def test_a_missing_policy_prefix_is_caught():
    pair, _ = tiny()
    prefixes = pair.bpf.routers["west"].maps["cpn_prefixes"]
    del prefixes.entries[R.prefix_key("2001:db8:1::/64")]
    problems = [p for site, packet in pair.host_packets() for p in differences(pair, packet, site)]
    assert problems and all("west" in p or "2001:db8:3::" in p for p in problems), problems[:3]


# ------------------------------------------------------------------ the model itself
def test_plan_of_graph_gives_the_driver_what_build_plan_gives_it():
    for name in SCENARIOS:
        plan = build_plan(load_topology(f"topologies/{name}.yaml"))
        G, interfaces = site_graph(plan), interface_plan(plan)
        graph_plan = plan_of_graph(G, interfaces)
        for router in plan.nodes_of("router"):
            real = BpfFakeRouter(FakeRouter.for_site(G, router.site, interfaces, marks=True), plan).driver
            ours = BpfFakeRouter(FakeRouter.for_site(G, router.site, interfaces, marks=True), graph_plan).driver
            assert (ours.site_id, ours.lan, ours.addresses, ours.neighbours) == \
                (real.site_id, real.lan, real.addresses, real.neighbours)


def test_the_lpm_map_answers_the_longest_prefix():
    m = FakeLpmMap()
    m.update(R.prefix_key("2001:db8::/32"), b"short")
    m.update(R.prefix_key("2001:db8:3::/64"), b"long")
    assert m.lookup(R.prefix_key("2001:db8:3::1/128")) == b"long"
    assert m.lookup(R.prefix_key("2001:db8:4::1/128")) == b"short"
    assert m.lookup(R.prefix_key("2001:db9::1/128")) is None
    assert set(fake_maps()) == {"cpn_sids", "cpn_encaps", "cpn_prefixes", "cpn_hosts", "cpn_config", "cpn_stats"}


def test_the_boundary_drops_host_packets_to_delivering_sids_only():
    pair, _ = diamond()
    router = pair.bpf.routers["d"]
    router.driver.boundary([str(h.address) for h in pair.hosts.values()])
    host = pair.hosts["u1-1"].address
    inner = build_udp(host, pair.hosts["k4-1"].address, 1, 2)
    to_dx6 = encapsulate(inner, host, [end_dx6_sid(4, "compute", 1)])
    outcome = router.receive(to_dx6, "r4-eth1")
    assert outcome.action == "drop" and "drop_boundary" in outcome.reason
    assert router.driver.stats()["drop_boundary"] == 1
    from_router = encapsulate(inner, addressing.router_lan_address(1), [end_dx6_sid(4, "compute", 1)])
    assert router.receive(from_router, "r4-eth1").action == "forward"


def test_end_dt6_of_the_main_table_meets_the_rules_in_ebpf_but_not_in_linux():
    """A model difference, kept visible: Linux's End.DT6 looks the inner packet up in its table alone;
    the eBPF driver gives End.DT6 of the main table no mark, so the stack routes the decapsulated packet
    through every rule. An isolated slice's blackhole rule (cpn_net.slicing.isolation, priority 400)
    therefore stops a packet the main-table End.DT6 decapsulated in eBPF, while Linux delivers it."""
    pair = Pair.of_topology("topologies/diamond.yaml", linux_marks=True)
    member = pair.hosts["k4-1"].address
    for net in pair.nets():
        net.routers["d"].rule("add", family=10, priority=400, dst=f"{member}/128", action="blackhole")
    inner = build_udp(pair.hosts["u1-1"].address, member, 1, 2)
    linux, bpf = pair.send(encapsulate(inner, addressing.router_lan_address(1), [end_dt6_sid(4, 254)]), "a")
    assert linux.result == "delivered" and linux.hops[-1].outcome.steps == ("End.DT6",)
    assert bpf.result == "drop" and "blackhole" in bpf.reason and bpf.sites == linux.sites
    # not decapsulated, the same packet meets the rule in both
    linux, bpf = pair.send(inner, "a")
    assert linux.result == bpf.result == "drop"


def test_the_kernel_model_matches_marks_and_blackhole_rules_as_fib_rules_do():
    G = nx.Graph()
    G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2})])
    G.add_edge("a", "b", number=1, delay_ms=1.0)
    router = FakeRouter.for_site(G, "a", InterfacePlan.by_link_number(G), marks=True)
    router.route("add", dst="::/0", table=77, oif="r1-eth1", gateway="fd00:1::2")
    router.rule("add", family=10, priority=40, fwmark=0x5C000007, table=77)
    router.rule("add", family=10, priority=41, fwmark=0x5C000000, fwmask=0xFF000000, action="FR_ACT_BLACKHOLE")
    packet = build_udp("2001:db8:1::1:1", "2001:db8:9::1", 1, 2)
    assert router.forward(packet, "r1-eth0", mark=0x5C000007)[0].nexthop == ipaddress.IPv6Address("fd00:1::2")
    outcome, route = router.forward(packet, "r1-eth0", mark=0x5C000008)  # marked, no table of its own: dropped
    assert outcome.action == "drop" and "blackhole" in outcome.reason and route is None
    assert router.forward(packet, "r1-eth0")[0].reason == "no route to 2001:db8:9::1"  # unmarked: main, no route
    router.set_carrier("r1-eth1", False)  # the marked table's route hidden: the blackhole rule below it drops
    assert "blackhole" in router.forward(packet, "r1-eth0", mark=0x5C000007)[0].reason
    router.rule("del", family=10, priority=41, fwmark=0x5C000000, fwmask=0xFF000000, action="FR_ACT_BLACKHOLE")
    assert len(router.rules()) == 2


def test_the_driver_reads_its_routes_back_with_project_metrics():
    pair, _ = diamond()
    driver = pair.bpf.routers["a"].driver
    routes = driver.routes(254)
    assert {(r["dst"], r["metric"], r["encap"]) for r in routes} >= {
        ("2001:db8:2::2:1/128", 100, "seg6"), ("2001:db8:4::/64", 1024, None), ("2001:db8:3::/64", 2048, "seg6")}
    assert any(r["metric"] == 100 and r["encap"] == "seg6" for r in driver.routes(1000))


def isolated_slice() -> Pair:
    """diamond.yaml with an isolated slice {u1-1, k4-1}: its tables, End.DT6 SIDs, rules and flow policies."""
    from cpn_net.model.yaml_format import parse_yaml_topology
    from cpn_net.slicing.admission import admit
    from cpn_net.slicing.isolation import router_state, slice_policies

    with open("topologies/diamond.yaml") as handle:
        topology = parse_yaml_topology(handle.read() + "\nslices:\n  - {name: gold, members: [u1-1, k4-1], "
                                       "rate_mbps: 1, kind: latency, max_latency_ms: 50}\n")
    plan = build_plan(topology)
    pair = Pair(site_graph(plan), interface_plan(plan), netplan=plan, topology=topology, linux_marks=True)
    pair.plan, pair.hosts = plan, hosts_of_plan(plan)
    for router, specs in router_specs(plan, pair.G, igp=pair.igp).items():
        for spec in specs:
            pair.route(router, "add", spec)
    pair.add_backups()
    gold = topology.slices[0]
    for state in router_state(topology, pair.interfaces, gold).values():
        for spec in state.routes:
            pair.route(state.router, "add", spec)
        for spec in state.rules:  # the netlink adapter adds the family
            for net in pair.nets():
                net.router(state.router).rule("add", family=socket.AF_INET6, **spec)
    for compiled in slice_policies(pair.G, topology, pair.interfaces, gold, admit(pair.G, {}, gold), igp=pair.igp):
        pair.install(compiled)
    return pair


def test_an_isolated_slice_gives_the_same_walks_while_every_link_is_up():
    pair = isolated_slice()
    results = assert_equivalent(pair)
    assert results["End.DT6"] and results["drop"]  # members reach each other; others meet the blackhole rule
    linux, bpf = walks_of(pair, "u1-1", "k4-1")
    assert bpf.result == "delivered" and bpf.hops[-1].outcome.steps == ("End.DT6",)
    assert walks_of(pair, "u2-1", "k4-1")[1].result == "drop"


@pytest.mark.parametrize("cut, leaked", [(("a", "b"), "u1-1"), (("b", "d"), "k4-1")])
def test_an_isolated_slice_behind_an_frr_backup_is_where_the_data_planes_differ(cut, leaked):
    """The End.DT6 (main table) difference on real specs: with a link cut, an FRR backup carries a
    non-member's packet to an isolated member's site and decapsulates it with End.DT6 of the main table.
    Linux looks the main table up alone and delivers it (the isolation's blackhole rule is bypassed);
    eBPF routes it through the rules and the blackhole rule drops it, as cpn_net.slicing.isolation
    intends. Nothing else differs."""
    pair = isolated_slice()
    pair.cut(*cut)
    problems = [p for site, packet in pair.host_packets() for p in differences(pair, packet, site)]
    member = str(pair.hosts[leaked].address)
    assert problems and all(f"-> {member} " in p and "linux delivered" in p and "bpf drop" in p and
                            "blackhole rule" in p for p in problems), problems


# ------------------------------------------------- the controller driving both data planes
class _LinuxSession:
    """The controller's session over a Linux-model FakeRouter (deleting what is gone is no error)."""

    def __init__(self, router: FakeRouter) -> None:
        self.router = router

    def route(self, op, spec):
        self._apply(self.router.route, op, spec)

    def rule(self, op, spec):
        self._apply(self.router.rule, op, dict(spec, family=socket.AF_INET6))

    @staticmethod
    def _apply(call, op, spec):
        try:
            call(op, **spec)
        except Exception as err:
            if not (op == "del" and "ESRCH" in str(err)):
                raise

    def close(self):
        pass


def test_the_controller_drives_both_data_planes_to_the_same_forwarding():
    """ControllerCore's own call sequences (replace, partial deletes, replans, backups moving) on both."""
    from controllers.core import ControllerCore

    topology = load_topology("topologies/diamond.yaml")
    plan = build_plan(topology)
    pair = Pair(site_graph(plan), interface_plan(plan), netplan=plan, topology=topology)
    pair.plan, pair.hosts = plan, hosts_of_plan(plan)
    cores = (ControllerCore(plan, netlink_factory=lambda r: _LinuxSession(pair.linux.router(r)), frr=True),
             ControllerCore(plan, netlink_factory=lambda r: pair.bpf.router(r).driver, frr=True, dataplane="bpf"))
    try:
        def both(call, *args, **kw):
            for core in cores:
                getattr(core, call)(*args, **kw)

        both("install_baseline")
        assert_equivalent(pair)
        for body in ({"name": "via-c", "headend": "a", "to": "k4-1", "waypoints": ["c"]},
                     {"name": "flow", "headend": "a", "to": "u4-1", "waypoints": ["c"],
                      "flow": {"proto": "udp", "dst_port": FLOW_PORT}},
                     {"name": "lan", "headend": "d", "to": "a", "waypoints": ["c"], "mode": "encap.red"}):
            both("add_policy", parse_policy(body, topology))
        assert_equivalent(pair)
        for a, b, up in (("b", "d", False), ("a", "c", False), ("b", "d", True), ("a", "c", True)):
            for net in pair.nets():
                net.set_carrier(a, b, up)
            if up:  # back before the controller knows: policies it could not replan (via-c) are stale,
                for site, packet in pair.host_packets():  # which the data planes route differently
                    linux, bpf = pair.send(packet, site)  # (see the test after this one); the hosts agree
                    assert (linux.result, linux.delivered_to) == (bpf.result, bpf.delivered_to)
            else:
                assert_equivalent(pair)  # backups only: the controller has not heard yet
            both("link_changed", a, b, up, "test")
            assert_equivalent(pair)  # reconverged: new IGP routes, backups, replanned policies
        both("delete_policy", "via-c")
        both("delete_policy", "flow")
        assert_equivalent(pair)
    finally:
        for core in cores:
            core.close()


def test_h_encaps_goes_to_the_compiled_neighbour_in_ebpf_and_where_the_igp_says_in_linux():
    """A model difference, kept visible: Linux's H.Encaps looks the outer destination (the first
    segment) up again; the eBPF policy route is a plain route via the neighbour the spec's ``oif``
    names, so the outer packet leaves there whatever the route to the first segment says. They
    agree while the controller keeps policies and IGP in step; they part when a policy is stale,
    e.g. a link came back before the controller heard of it and the policy could not be replanned
    while it was down (the controller test above meets exactly that)."""
    pair, done = diamond()  # "flow": a -> k4-1 over [End(c), End.DX6(d)], leaving a towards c
    assert walks_of(pair, "u1-1", "k4-1", FLOW_PORT)[0].sites == ("a", "c", "d")
    # c's locator by way of b and d now, as an IGP without the link a-c routes it
    pair.route("r1", "replace", {"dst": "fcbb:bb00:3::/48", "oif": "r1-eth1", "gateway": "fd00:1::2"})
    pair.route("r2", "replace", {"dst": "fcbb:bb00:3::/48", "oif": "r2-eth2", "gateway": "fd00:2::4"})
    linux, bpf = walks_of(pair, "u1-1", "k4-1", FLOW_PORT)
    assert linux.result == bpf.result == "delivered" and linux.delivered_to == bpf.delivered_to
    assert linux.sites == ("a", "b", "d", "c", "d") and bpf.sites == ("a", "c", "d")


def test_a_restarted_driver_adopts_the_maps_and_routes_and_forwards_the_same():
    """A new RouterBpf per router adopts the maps and the kernel's routes and rules (as `ip -j` shows
    them), then the controller's re-install (replace everything) changes no map entry: same walks."""
    from controllers.southbound.bpf import RouterBpf

    pair, done = diamond()
    before = {site: {name: dict(m.entries) for name, m in r.maps.items() if name != "cpn_stats"}
              for site, r in pair.bpf.routers.items()}
    for router in pair.bpf.routers.values():
        session = router.driver.kernel
        routes = [dict(r, dst="default" if r["dst"] == "::/0" else r["dst"], type=None) for r in session.routes()
                  if r["metric"] != 256]  # not the kernel's own connected routes
        rules = [{"priority": r.priority, "fwmark": r.fwmark, "fwmask": r.fwmask, "table": r.table or None,
                  "action": "blackhole" if r.blackhole else None} for r in router.kernel.rules()]
        router.driver = RouterBpf(router.name, plan=pair.plan, run_dir="/nonexistent", kernel=session,
                                  maps=router.maps)
        router.driver.adopt(routes, rules)
    for router, specs in router_specs(pair.plan, pair.G, igp=pair.igp).items():
        for spec in specs:
            pair.bpf.router(router).route("replace", **spec)
    for site in pair.G:
        for spec in backup_routes(pair.G, site, pair.interfaces, igp=pair.igp):
            pair.bpf.routers[site].route("replace", **spec)
    for compiled in (getattr(d, "compiled", d) for d in done.values()):
        for spec in compiled.routes:
            pair.bpf.router(compiled.router).route("replace", **spec)
    after = {site: {name: dict(m.entries) for name, m in r.maps.items() if name != "cpn_stats"}
             for site, r in pair.bpf.routers.items()}
    assert after == before
    assert_equivalent(pair)
