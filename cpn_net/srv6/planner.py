"""From a declared SR policy (topology file or REST) to compiled netlink specs.

Pure: the controller calls :func:`plan_policy` with the graph of links that are
up, the bandwidth already reserved by other policies and the hosts of the
plan, then installs :attr:`PlannedPolicy.compiled` at the headend.

What a declaration's ``to`` becomes (:func:`destination_of`):

========  ==========================  ==============================================
``to``    steered prefix              last segment
========  ==========================  ==============================================
site      the site's LAN /64          End.DT6 (main table) at the site's router
host      the host's address /128     End.DX6 towards the host at its site's router
prefix    the prefix                  End.DT6 at the router whose LAN holds it
========  ==========================  ==============================================

Objectives: ``min_delay`` and ``min_hops`` as :func:`cpn_net.srv6.paths.best_path`;
``bandwidth`` is minimum delay among paths whose residual capacity fits
``bandwidth_mbps`` (CSPF), and reserves it while the policy is installed.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from typing import Mapping

import networkx as nx

from cpn_net.model import addressing
from cpn_net.srv6.errors import PolicyError
from cpn_net.srv6.igp import Igp
from cpn_net.srv6.interfaces import InterfacePlan
from cpn_net.srv6.paths import Path, best_path, link_key, residual_capacity
from cpn_net.srv6.policy import CompiledPolicy, FlowMatch, SRPolicy, compile_policy
from cpn_net.srv6.segments import SegmentList, minimal_segment_list
from cpn_net.srv6.sids import end_dt6_sid, end_dx6_sid

MAIN_TABLE = 254
FIRST_FLOW_TABLE = 1000


@dataclasses.dataclass(frozen=True)
class HostInfo:
    name: str
    site: str
    site_id: int
    kind: str  # client | compute
    index: int
    address: ipaddress.IPv6Address


@dataclasses.dataclass(frozen=True)
class Destination:
    site: str
    prefix: ipaddress.IPv6Network
    final_sid: ipaddress.IPv6Address


@dataclasses.dataclass(frozen=True)
class PlannedPolicy:
    spec: object  # cpn_net.model SRPolicySpec
    path: Path
    segments: SegmentList
    policy: SRPolicy
    compiled: CompiledPolicy
    reservation_mbps: float | None

    def links(self) -> set:
        return {link_key(a, b) for a, b in zip(self.path.sites, self.path.sites[1:])}

    def to_dict(self) -> dict:
        spec = self.spec
        flow = getattr(spec, "flow", None)
        return {
            "name": spec.name, "headend": spec.headend, "to": spec.to, "to_kind": spec.to_kind,
            "objective": spec.objective, "bandwidth_mbps": spec.bandwidth_mbps,
            "waypoints": list(spec.waypoints), "mode": spec.mode,
            "flow": dataclasses.asdict(flow) if flow is not None else None,
            "path": list(self.path.sites), "path_delay_ms": round(self.path.delay_ms, 3),
            "segments": [str(s) for s in self.segments],
            "router": self.compiled.router, "routes": list(self.compiled.routes),
            "rules": list(self.compiled.rules),
        }


def hosts_of_plan(plan) -> dict[str, HostInfo]:
    """Every client and compute node of a :class:`~cpn_net.emulation.plan.NetworkPlan`."""
    hosts = {}
    for node in plan.nodes:
        if node.kind in ("client", "compute"):
            address = ipaddress.IPv6Address(node.interfaces[0].addresses[0].split("/")[0])
            index = int(node.name.rsplit("-", 1)[1])
            hosts[node.name] = HostInfo(node.name, node.site, node.site_id, node.kind, index, address)
    return hosts


def destination_of(spec, G: nx.Graph, hosts: Mapping[str, HostInfo]) -> Destination:
    """Where a declared policy ends: its site, the steered prefix and the decapsulating SID."""
    where = f"policy {spec.name!r}"
    if spec.to_kind == "site":
        if spec.to not in G:
            raise PolicyError(f"{where}: to={spec.to!r} is not a site of this network")
        site_id = G.nodes[spec.to]["id"]
        return Destination(spec.to, _site_lan(site_id), end_dt6_sid(site_id, MAIN_TABLE))
    if spec.to_kind == "host":
        host = hosts.get(spec.to)
        if host is None:
            raise PolicyError(f"{where}: to={spec.to!r} is not a host of this network")
        return Destination(host.site, _host_prefix(host.address), end_dx6_sid(host.site_id, host.kind, host.index))
    prefix = ipaddress.IPv6Network(spec.to, strict=False)
    for site, attrs in G.nodes(data=True):
        lan = _site_lan(attrs["id"])
        if prefix.subnet_of(lan):
            return Destination(site, prefix, end_dt6_sid(attrs["id"], MAIN_TABLE))
    raise PolicyError(f"{where}: prefix {prefix} is inside no site's LAN, so no router can "
                      "decapsulate for it; give `to` as a site or a host")


def _host_prefix(address) -> ipaddress.IPv6Network:
    """The host's /128; cached, as parsing address text dominated :func:`destination_of`."""
    if type(address) is ipaddress.IPv6Address:
        return _cached_host_prefix(address)
    return ipaddress.IPv6Network(f"{address}/128")


def _site_lan(site_id) -> ipaddress.IPv6Network:
    """:func:`~cpn_net.model.addressing.site_lan`, cached for int ids (networks are immutable)."""
    if type(site_id) is int:
        return _cached_site_lan(site_id)
    return addressing.site_lan(site_id)


@functools.lru_cache(maxsize=1 << 12)
def _cached_host_prefix(address: ipaddress.IPv6Address) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(f"{address}/128")


@functools.lru_cache(maxsize=1 << 12)
def _cached_site_lan(site_id: int) -> ipaddress.IPv6Network:
    return addressing.site_lan(site_id)


def plan_policy(G: nx.Graph, spec, interfaces: InterfacePlan, hosts: Mapping[str, HostInfo], *,
                igp: Igp | None = None, reservations_mbps: Mapping | None = None,
                table: int | None = None) -> PlannedPolicy:
    """Compute the path and segment list of ``spec`` and compile it for its headend.

    Raises
    ------
    PolicyError, InfeasiblePath
        With a message naming the constraint (and the link) that cannot be met.
    """
    igp = igp or Igp(G)
    destination = destination_of(spec, G, hosts)
    if destination.site == spec.headend:
        raise PolicyError(f"policy {spec.name!r}: headend {spec.headend} is the destination's own site; "
                          "a policy steers traffic between two sites")
    bandwidth = spec.bandwidth_mbps if spec.objective == "bandwidth" else None
    objective = "min_delay" if spec.objective == "bandwidth" else spec.objective
    residual = residual_capacity(G, reservations_mbps or {}, igp=igp)
    path = best_path(G, spec.headend, destination.site, objective=objective, bandwidth_mbps=bandwidth,
                     residual_mbps=residual, waypoints=tuple(spec.waypoints), igp=igp)
    segments = minimal_segment_list(G, path, final_sid=destination.final_sid, igp=igp)
    flow = getattr(spec, "flow", None)
    if flow is not None:
        if table is None:
            raise PolicyError(f"policy {spec.name!r}: a flow policy needs its own routing table")
        target = FlowMatch(destination.prefix, src=flow.src, protocol=flow.proto, src_port=flow.src_port,
                           dst_port=flow.dst_port)
        policy = SRPolicy(spec.name, spec.headend, target, segments, mode=spec.mode, table=table)
    else:
        policy = SRPolicy(spec.name, spec.headend, destination.prefix, segments, mode=spec.mode)
    compiled = compile_policy(G, policy, interfaces, igp=igp)
    return PlannedPolicy(spec, path, segments, policy, compiled, bandwidth)


def reservations_of(policies) -> dict:
    """Bandwidth reserved per link by installed policies ``{link_key: mbps}``."""
    reserved: dict = {}
    for planned in policies:
        if planned.reservation_mbps:
            for key in planned.links():
                reserved[key] = reserved.get(key, 0.0) + planned.reservation_mbps
    return reserved
