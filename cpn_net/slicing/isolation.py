"""Isolation and per-slice paths of admitted slices: what routers and switches get. Pure.

RFC 9543 leaves isolation as an expectation the provider realises; here it is
realised by five mechanisms, each closing one way in:

1. **Own tables** (routers). Slice ``n`` has table ``100 + n`` at each member
   site: routes to the site's member hosts (``dev`` LAN) and an End.DT6 SID
   into the table (:func:`router_state`). An isolated slice's member hosts
   are *not* reachable through the main table: a rule blackholes traffic to
   them (rule priority :data:`RULE_BLACKHOLE`), after one that lets the
   router's own packets through (``iif lo``: the router answers its hosts'
   pings). Only packets decapsulated by the slice's own SID, which looks up
   the slice table directly, reach a member.
2. **Per-slice SR policies** (routers). Each admitted member-site pair's path
   (least delay for latency slices, widest for bulk slices) becomes one flow
   policy per pair of member hosts: a rule ``from src to dst iif LAN`` into
   the slice table, whose route encapsulates onto the path's minimal segment
   list ending with the far site's End.DT6 SID (:func:`slice_policies`).
3. **Anti-spoofing** (site switches). With any isolated slice in force, every
   host port passes IPv6 only from the host's own addresses (its address, the
   anycast addresses of services it runs, link-local and unspecified for
   neighbour discovery); anything else is dropped (:func:`switch_guard_flows`).
   The router's rules classify by source address, so this is what makes
   them trustworthy.
4. **Same-site separation** (site switches). Hosts on one switch never meet
   the router, so the switch drops frames between two hosts unless both are
   in the same isolated slice or both are in none.
5. **SR domain boundary** (routers, nftables). A host may not address the
   SIDs that deliver to hosts (End.DX6, End.DT6, End.B6.Encaps) itself
   (RFC 8754 §5.1, RFC 8986 §9.3): every router drops packets whose source is
   a host address and whose destination is one of its own such SIDs
   (:func:`boundary_ruleset`). Telemetry probes address End.X SIDs and hosts
   outside isolated slices, so they still pass.

Traffic class marking needs no extra guard: the site switch rewrites the
whole DSCP of every packet from a host (colour flows, or a slice's flows for
its members' traffic), so a spoofed traffic class never survives the first hop.

Examples
--------
>>> from cpn_net.model import load_topology
>>> topo = load_topology("topologies/slices.yaml")
>>> gold = topo.slices[0]
>>> state = router_state(topo, _interfaces(topo), gold)["b"]
>>> [r["dst"] for r in state.routes]
['2001:db8:2::2:1/128', 'fcbb:bb00:2:4:101::/128']
>>> [(r["priority"], r.get("iifname"), r.get("action", r.get("table"))) for r in state.rules]
[(399, 'lo', 254), (400, None, 'blackhole')]
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Sequence

import networkx as nx

from cpn_net.model import addressing
from cpn_net.model.topology import SliceSpec
from cpn_net.openflow import TABLE_CLASSIFY, TABLE_FORWARD, FlowSpec
from cpn_net.slicing.realise import SLICE_TABLE_BASE, decap_tables, slice_table
from cpn_net.srv6.igp import Igp, site_id
from cpn_net.srv6.policy import CompiledPolicy, FlowMatch, SRPolicy, compile_policy
from cpn_net.srv6.segments import minimal_segment_list
from cpn_net.srv6.sids import Behaviour, _FUNCTION, end_dt6_sid
from cpn_net.telemetry.marking import COLOUR_BIT, ETH_TYPE_IPV6, MONITORED_BIT, PRIORITY_COLOUR

#: Switch priorities (table 0): same-site separation above slice marking (60), guards between colour and marking.
PRIORITY_SEPARATE = PRIORITY_COLOUR + 30
PRIORITY_OWN_ADDRESS = PRIORITY_COLOUR + 5
PRIORITY_SPOOFED = PRIORITY_COLOUR + 2
COOKIE_GUARD = 0xC0DE5200
#: Router rule priorities: slice flows first, then the isolation pair, all before SR policies (1000).
RULE_SLICE_FLOW = 300
RULE_LOCAL_OK = 399
RULE_BLACKHOLE = 400
BOUNDARY_TABLE = "cpn_sr_boundary"
_DELIVERING = (Behaviour.END_DX6, Behaviour.END_DT6, Behaviour.END_B6_ENCAPS)


@dataclass(frozen=True)
class RouterState:
    """Routes and rules one router needs for one slice (add in order, delete in reverse)."""

    router: str
    routes: tuple[dict, ...] = ()
    rules: tuple[dict, ...] = ()


def isolated_hosts(slices: Iterable[SliceSpec]) -> dict[str, str]:
    """``{host: slice name}`` for members of isolated slices (a host is in at most one).

    Examples
    --------
    >>> isolated_hosts([SliceSpec("s", 1, ("u1-1",), ("u1-1",), ("a",), 1.0),
    ...                 SliceSpec("t", 2, ("u1-2",), ("u1-2",), ("a",), 1.0, isolation=False)])
    {'u1-1': 's'}
    """
    return {h: s.name for s in slices if s.isolation for h in s.hosts}


def _interfaces(topology):
    """The interface plan of a topology (doctests); the controller has its own."""
    from cpn_net.baseline import interface_plan
    from cpn_net.emulation.plan import build_plan

    return interface_plan(build_plan(topology))


def router_state(topology, interfaces, spec: SliceSpec) -> dict[str, RouterState]:
    """Per member site: the slice table's member routes, its End.DT6 SID, the isolation rules.

    Shared (non-isolated) slices decapsulate into the main table, which the
    baseline already gives an End.DT6 SID: they need nothing here.
    """
    out = {}
    if not spec.isolation:
        return out
    for t in decap_tables(topology, spec):
        lan = interfaces.lan_ifname(t.site)
        routes = [{"dst": r, "table": t.table, "oif": lan} for r in t.routes]
        routes.append({"dst": f"{t.sid}/128", "oif": lan,
                       "encap": {"type": "seg6local", "action": "End.DT6", "table": t.table}})
        rules = []
        for r in t.routes:
            rules.append({"priority": RULE_LOCAL_OK, "dst": r, "iifname": "lo", "table": 254})
            rules.append({"priority": RULE_BLACKHOLE, "dst": r, "action": "blackhole"})
        out[t.site] = RouterState(addressing.router_name(t.site_id), tuple(routes), tuple(rules))
    return out


def slice_policies(G: nx.Graph, topology, interfaces, spec: SliceSpec, admission, *,
                   igp: Igp | None = None) -> list[CompiledPolicy]:
    """One flow policy per ordered pair of member hosts at different sites, on the admitted path.

    Each encapsulates at the source host's site router onto the minimal
    segment list of the admitted path, ending with the End.DT6 SID of the
    slice's table at the target site (main for shared slices). The encap
    route lives in table ``100 + id`` at the headend.

    Examples
    --------
    >>> from cpn_net.model import load_topology
    >>> from cpn_net.baseline import site_graph
    >>> from cpn_net.emulation.plan import build_plan
    >>> from cpn_net.slicing.admission import admit
    >>> topo = load_topology("topologies/slices.yaml")
    >>> G = site_graph(build_plan(topo))
    >>> gold = topo.slices[0]
    >>> [p.policy for p in slice_policies(G, topo, _interfaces(topo), gold, admit(G, {}, gold))]
    ['slice gold u1-1>k2-1', 'slice gold k2-1>u1-1']
    """
    igp = igp or Igp(G)
    table = SLICE_TABLE_BASE + spec.id
    by_site: dict[str, list] = {}
    for host in spec.hosts:
        by_site.setdefault(topology.host(host).site, []).append(topology.host(host))
    policies = []
    for (a, b), path in admission.paths.items():
        final = end_dt6_sid(site_id(G, b), slice_table(spec))
        segments = minimal_segment_list(G, path, final_sid=final, igp=igp)
        for src in by_site.get(a, ()):
            for dst in by_site.get(b, ()):
                policy = SRPolicy(f"slice {spec.name} {src.name}>{dst.name}", a,
                                  FlowMatch(f"{dst.address}/128", f"{src.address}/128"), segments,
                                  table=table, rule_priority=RULE_SLICE_FLOW)
                policies.append(compile_policy(G, policy, interfaces, igp=igp))
    return policies


def _own_addresses(topology, host) -> list[str]:
    anycast = [str(s.anycast) for s in topology.services if host.name in s.compute]
    return [str(host.address), *anycast]


def _ports(plan) -> dict[str, tuple[int, int, str]]:
    """``{host: (dpid, switch port, host MAC)}``."""
    found = {}
    for switch in plan.nodes_of("switch"):
        for intf in switch.interfaces:
            peer = plan.node(intf.peer_node)
            if peer.kind in ("client", "compute"):
                found[peer.name] = (switch.site_id, intf.port, peer.interface(intf.peer_name).mac)
    return found


def switch_guard_flows(plan, topology, slices: Sequence[SliceSpec], colour: int) -> dict[int, list[FlowSpec]]:
    """Anti-spoofing and same-site separation flows per switch; none without isolated slices.

    Per host port: its own addresses pass with the current colour (priority
    :data:`PRIORITY_OWN_ADDRESS`), link-local and unspecified sources pass
    unmarked, every other IPv6 packet is dropped (:data:`PRIORITY_SPOOFED`).
    Slice marking flows (60) match the member's own source address, so they
    sit above and are unaffected. Between two hosts of a switch not in the
    same isolated slice: drop by destination MAC, both ways.

    Examples
    --------
    >>> from cpn_net.model import load_topology
    >>> from cpn_net.emulation.plan import build_plan
    >>> topo = load_topology("topologies/slices.yaml")
    >>> flows = switch_guard_flows(build_plan(topo), topo, topo.slices, 1)
    >>> sorted({f.priority for f in flows[2]})
    [52, 55, 80]
    """
    isolated = isolated_hosts(slices)
    if not isolated:
        return {}
    ports = _ports(plan)
    flows: dict[int, list[FlowSpec]] = {}
    dscp = MONITORED_BIT | (COLOUR_BIT if colour else 0)
    for host_name, (dpid, port, _mac) in sorted(ports.items()):
        host = topology.host(host_name)
        entries = flows.setdefault(dpid, [])
        for address in _own_addresses(topology, host):
            entries.append(FlowSpec(TABLE_CLASSIFY, PRIORITY_OWN_ADDRESS,
                                    (("in_port", port), ("eth_type", ETH_TYPE_IPV6), ("ipv6_src", address)),
                                    (("set_field", "ip_dscp", dscp),), goto_table=TABLE_FORWARD,
                                    cookie=COOKIE_GUARD))
        for source in ("fe80::/10", "::"):
            entries.append(FlowSpec(TABLE_CLASSIFY, PRIORITY_OWN_ADDRESS,
                                    (("in_port", port), ("eth_type", ETH_TYPE_IPV6), ("ipv6_src", source)),
                                    goto_table=TABLE_FORWARD, cookie=COOKIE_GUARD))
        entries.append(FlowSpec(TABLE_CLASSIFY, PRIORITY_SPOOFED, (("in_port", port), ("eth_type", ETH_TYPE_IPV6)),
                                cookie=COOKIE_GUARD))
        for other, (other_dpid, _port, other_mac) in sorted(ports.items()):
            if other_dpid == dpid and other != host_name and isolated.get(other) != isolated.get(host_name):
                entries.append(FlowSpec(TABLE_CLASSIFY, PRIORITY_SEPARATE,
                                        (("in_port", port), ("eth_dst", other_mac)), cookie=COOKIE_GUARD))
    return flows


def delivering_sid_prefixes(site_id_: int) -> list[ipaddress.IPv6Network]:
    """The /64s of a site's SIDs that deliver to hosts: End.DX6, End.DT6, End.B6.Encaps.

    Examples
    --------
    >>> [str(p) for p in delivering_sid_prefixes(2)]
    ['fcbb:bb00:2:3::/64', 'fcbb:bb00:2:4::/64', 'fcbb:bb00:2:5::/64']
    """
    base = int(addressing.locator(site_id_).network_address)
    return [ipaddress.IPv6Network((base | (_FUNCTION[b] << 64), 64)) for b in _DELIVERING]


def boundary_hosts(plan) -> list[ipaddress.IPv6Address]:
    """The addresses that may not address a router's delivering SIDs: every host's, sorted."""
    return sorted(ipaddress.IPv6Address(n.interfaces[0].addresses[0].split("/")[0])
                  for n in plan.nodes if n.kind in ("client", "compute"))


def boundary_ruleset(plan, site_id_: int) -> str:
    """nftables ruleset for one router: hosts may not address its delivering SIDs.

    Examples
    --------
    >>> from cpn_net.model import load_topology
    >>> from cpn_net.emulation.plan import build_plan
    >>> print(boundary_ruleset(build_plan(load_topology("topologies/tiny.yaml")), 1))
    table inet cpn_sr_boundary {
      set hosts { type ipv6_addr; elements = { 2001:db8:1::1:1, 2001:db8:1::2:1, 2001:db8:2::1:1, 2001:db8:2::2:1, 2001:db8:3::1:1, 2001:db8:3::2:1 } }
      chain prerouting {
        type filter hook prerouting priority -300; policy accept;
        ip6 saddr @hosts ip6 daddr { fcbb:bb00:1:3::/64, fcbb:bb00:1:4::/64, fcbb:bb00:1:5::/64 } counter drop
      }
    }
    <BLANKLINE>
    """
    hosts = boundary_hosts(plan)
    prefixes = ", ".join(str(p) for p in delivering_sid_prefixes(site_id_))
    return (f"table inet {BOUNDARY_TABLE} {{\n"
            f"  set hosts {{ type ipv6_addr; elements = {{ {', '.join(str(h) for h in hosts)} }} }}\n"
            f"  chain prerouting {{\n"
            f"    type filter hook prerouting priority -300; policy accept;\n"
            f"    ip6 saddr @hosts ip6 daddr {{ {prefixes} }} counter drop\n"
            f"  }}\n"
            f"}}\n")
