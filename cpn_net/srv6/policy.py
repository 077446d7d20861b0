"""SR policies and their compilation to netlink route and rule specs.

An :class:`SRPolicy` is a headend, what it steers (a destination prefix, a
single flow by 5-tuple, and/or a binding SID other headends can use), a
segment list and a headend mode. :func:`compile_policy` turns it into plain
dicts for pyroute2 0.9.7 in the headend's namespace::

    ipr.route("add", **spec)  for spec in compiled.routes
    ipr.rule("add", **spec)   for spec in compiled.rules

Specs name interfaces (``"oif": "r1-eth2"``); the adapter resolves names to
indexes. What each kind compiles to:

* prefix: ``{"dst": prefix, "oif": ..., "priority": 100, "encap": {"type": "seg6",
  "mode": mode, "segs": [...]}}`` in ``table`` (main when None) — H.Encaps /
  H.Encaps.Red (RFC 8986 §5.1, §5.2). The metric (``priority``, 100) sits
  below the baseline routes' 1024: a policy for a site's LAN prefix coexists
  with the IGP route to it (the kernel refuses a second route with the same
  prefix and metric) and wins; deleting the policy uncovers the IGP route.
* flow (5-tuple): the same route in the policy's own ``table``, plus an
  ``ip -6 rule`` selecting the flow (``src``, ``dst``, ``ip_proto``,
  ``sport_range``, ``dport_range``, ``iifname`` = the LAN, so only traffic
  entering from the site is steered) that points at that table.
* binding SID: a seg6local End.B6.Encaps route (RFC 8986 §4.13) pushing the
  list; the list must end with End.DT6 so packets continue after it.

Two pyroute2 0.9.7 facts the specs are shaped by (both checked by tests):

* ``segs`` is packed into the SRH *as given*, so it must be in SRH order
  (last segment first), i.e. :attr:`SegmentList.srh_order`. ``ip route``
  takes travel order; pyroute2 does not.
* its seg6 encoder knows only modes ``"inline"`` and ``"encap"`` and
  silently encodes anything else as ``"encap"``. A spec with mode
  ``"encap.red"`` is correct for the kernel (SEG6_IPTUN_MODE_ENCAP_RED) but
  the adapter must not hand it to pyroute2 0.9.7 as is.

Examples
--------
>>> import ipaddress, networkx as nx
>>> from cpn_net.srv6.interfaces import InterfacePlan
>>> from cpn_net.srv6.segments import SegmentList
>>> from cpn_net.srv6.sids import end_dx6_sid, end_x_sid
>>> G = nx.Graph()
>>> G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2})])
>>> G.add_edge("a", "b", number=1, delay_ms=1.0)
>>> policy = SRPolicy("web", "a", ipaddress.IPv6Network("2001:db8:2::/64"),
...                   SegmentList.of(end_dx6_sid(2, "compute", 1)))
>>> compile_policy(G, policy, InterfacePlan.by_link_number(G)).routes
({'dst': '2001:db8:2::/64', 'oif': 'r1-eth1', 'priority': 100,
  'encap': {'type': 'seg6', 'mode': 'encap', 'segs': ['fcbb:bb00:2:3:2:1::']}},)
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from typing import Mapping

import networkx as nx

from cpn_net.model import addressing
from cpn_net.srv6.errors import PathError, PolicyError, SegmentError
from cpn_net.srv6.igp import Igp, check_site, site_id
from cpn_net.srv6.interfaces import InterfacePlan
from cpn_net.srv6.segments import SegmentList, follow_segments, sites_by_id
from cpn_net.srv6.sids import Behaviour, parse_sid

MODES = ("encap", "encap.red")
DEFAULT_RULE_PRIORITY = 1000
POLICY_METRIC = 100  # below the kernel's default IPv6 metric (1024) that baseline routes get
_PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132}
_PORTED = (6, 17, 132)
_RESERVED_TABLES = (0, 255)  # unspecified, local


@dataclass(frozen=True)
class FlowMatch:
    """A single flow (or flow aggregate) by 5-tuple, for policy routing.

    Parameters
    ----------
    dst : IPv6Network or str
        Destination address or prefix (a bare address means /128).
    src : IPv6Network or str, optional
    protocol : int or {"tcp", "udp", "sctp"}, optional
    src_port, dst_port : int, optional
        Need a protocol with ports.

    Examples
    --------
    >>> FlowMatch("2001:db8:3::2:1", "2001:db8:1::1:1", "udp", 5000, 7000).protocol
    17
    """

    dst: ipaddress.IPv6Network
    src: ipaddress.IPv6Network | None = None
    protocol: int | None = None
    src_port: int | None = None
    dst_port: int | None = None

    def __post_init__(self) -> None:
        try:
            if type(self.dst) is not ipaddress.IPv6Network:  # re-parsing one through its text is slow
                object.__setattr__(self, "dst", ipaddress.IPv6Network(self.dst))
            if self.src is not None:
                object.__setattr__(self, "src", ipaddress.IPv6Network(self.src))
        except ValueError as err:
            raise PolicyError(f"flow match: {err}; give an IPv6 address or prefix") from err
        protocol = _PROTOCOLS.get(self.protocol, self.protocol) if isinstance(self.protocol, str) else self.protocol
        if protocol is not None and (isinstance(protocol, (bool, str)) or not isinstance(protocol, int)
                                     or not 0 <= protocol <= 255):
            raise PolicyError(f"flow match: protocol={self.protocol!r} must be 0..255 or one of {sorted(_PROTOCOLS)}")
        object.__setattr__(self, "protocol", protocol)
        for name in ("src_port", "dst_port"):
            port = getattr(self, name)
            if port is None:
                continue
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 0xFFFF:
                raise PolicyError(f"flow match: {name}={port!r} must be an int in 0..65535")
            if protocol not in _PORTED:
                raise PolicyError(f"flow match: {name}={port} needs protocol tcp, udp or sctp, "
                                  f"got protocol={self.protocol!r}")


@dataclass(frozen=True)
class SRPolicy:
    """An SR policy at one headend.

    Parameters
    ----------
    name : str
        Unique per headend; appears in error messages.
    headend : str
        Site whose router encapsulates.
    destination : IPv6Network, FlowMatch or None
        What is steered: a prefix, a single flow, or nothing (a policy only
        reachable through its binding SID).
    segments : SegmentList
        Travel order. With a destination it must end with a decapsulating
        SID (End.DX6 or End.DT6); with a binding SID, with End.DT6.
    mode : {"encap", "encap.red"}
        H.Encaps or H.Encaps.Red (RFC 8986 §5.1, §5.2).
    table : int, optional
        Routing table of the encap route; required for a FlowMatch (the
        rule points there), main (254) when None.
    binding_sid : IPv6Address, optional
        An End.B6.Encaps SID of the headend that also applies the list.
    rule_priority : int
        Priority of the flow rule (lower is earlier); main is 32766.
    """

    name: str
    headend: str
    destination: ipaddress.IPv6Network | FlowMatch | None
    segments: SegmentList
    mode: str = "encap"
    table: int | None = None
    binding_sid: ipaddress.IPv6Address | None = None
    rule_priority: int = DEFAULT_RULE_PRIORITY

    def __post_init__(self) -> None:
        where = f"policy {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise PolicyError(f"policy name {self.name!r} must be a non-empty string")
        if self.mode not in MODES:
            raise PolicyError(f"{where}: mode={self.mode!r} must be one of {', '.join(MODES)}")
        if not isinstance(self.segments, SegmentList):
            raise PolicyError(f"{where}: segments must be a SegmentList, got {type(self.segments).__name__}")
        if self.destination is not None and not isinstance(self.destination, FlowMatch) \
                and type(self.destination) is not ipaddress.IPv6Network:  # re-parsing one is slow
            try:
                object.__setattr__(self, "destination", ipaddress.IPv6Network(self.destination))
            except ValueError as err:
                raise PolicyError(f"{where}: destination {self.destination!r}: {err}") from err
        if self.destination is None and self.binding_sid is None:
            raise PolicyError(f"{where}: steers nothing; give a destination, a binding_sid, or both")
        if self.table is not None and (isinstance(self.table, bool) or not isinstance(self.table, int)
                                       or not 0 < self.table <= 0xFFFFFFFF or self.table in _RESERVED_TABLES):
            raise PolicyError(f"{where}: table={self.table!r} must be an int in 1..4294967295, not 255 (local)")
        if isinstance(self.destination, FlowMatch) and self.table is None:
            raise PolicyError(f"{where}: a 5-tuple policy needs table=<id>, the table its rule points at; "
                              "give each flow policy its own table")
        if isinstance(self.rule_priority, bool) or not isinstance(self.rule_priority, int) \
                or not 0 < self.rule_priority < 32766:
            raise PolicyError(f"{where}: rule_priority={self.rule_priority!r} must be in 1..32765 "
                              "(before the main table's rule)")
        if self.binding_sid is not None:
            try:
                object.__setattr__(self, "binding_sid", ipaddress.IPv6Address(self.binding_sid))
            except ValueError as err:
                raise PolicyError(f"{where}: binding_sid {self.binding_sid!r}: {err}") from err
        self._check_segments(where)

    def _check_segments(self, where: str) -> None:
        try:
            last = self.segments.sids()[-1]
        except SegmentError as err:
            raise PolicyError(f"{where}: {err}") from err
        if self.destination is not None and last.behaviour not in (Behaviour.END_DX6, Behaviour.END_DT6):
            raise PolicyError(f"{where}: the last segment {last.address} is {last}, which does not decapsulate; "
                              "end the list with an End.DX6 or End.DT6 SID")
        if self.binding_sid is not None and last.behaviour is not Behaviour.END_DT6:
            raise PolicyError(f"{where}: a binding SID's list must end with End.DT6 so packets continue with "
                              f"their own segments; it ends with {last}")


@dataclass(frozen=True)
class CompiledPolicy:
    """The netlink specs of one policy at its headend router."""

    policy: str
    router: str
    routes: tuple[dict, ...]
    rules: tuple[dict, ...]

    @property
    def namespace(self) -> str:
        """The named network namespace to apply the specs in."""
        return addressing.namespace(self.router)

    def removal(self) -> "CompiledPolicy":
        """Specs for ``ipr.route("del", ...)`` / ``ipr.rule("del", ...)``, rules first.

        Routes are matched on destination, table, interface and metric (the
        metric matters: without it the kernel may delete the baseline route to
        the same prefix); rules on all their selectors.
        """
        keep = ("dst", "table", "oif", "priority")
        routes = tuple({k: v for k, v in spec.items() if k in keep} for spec in self.routes)
        return CompiledPolicy(self.policy, self.router, routes, tuple(dict(r) for r in self.rules))


def compile_policy(G: nx.Graph, policy: SRPolicy, interfaces: InterfacePlan, *, igp: Igp | None = None,
                   bindings: Mapping | None = None) -> CompiledPolicy:
    """Compile ``policy`` into route and rule specs for its headend.

    The segment list is first followed through the IGP
    (:func:`~cpn_net.srv6.segments.follow_segments`) so a list naming an
    unknown site or link is refused before anything is installed.

    Parameters
    ----------
    G : networkx.Graph
    policy : SRPolicy
    interfaces : InterfacePlan
    igp : Igp, optional
        Shared IGP of ``G``.
    bindings : mapping, optional
        ``{binding SID: SegmentList}`` of other policies whose binding SIDs
        appear in this list.

    Returns
    -------
    CompiledPolicy

    Raises
    ------
    PolicyError
        If the headend is unknown, the binding SID is not an End.B6.Encaps
        SID of the headend, or the list cannot be followed.
    """
    where = f"policy {policy.name!r}"
    try:
        check_site(G, policy.headend)
    except PathError as err:
        raise PolicyError(f"{where}: headend: {err}") from err
    igp = igp or Igp(G)
    headend_id = site_id(G, policy.headend)
    try:
        follow_segments(G, policy.headend, policy.segments, igp=igp, bindings=bindings)
    except (SegmentError, PathError) as err:
        raise PolicyError(f"{where}: {err}") from err
    segs = [_text(s) for s in policy.segments.srh_order]
    oif = _first_hop_ifname(G, policy, interfaces, igp)
    routes = []
    rules = []
    table = {"table": policy.table} if policy.table is not None else {}
    encap = {"type": "seg6", "mode": policy.mode, "segs": segs}
    if isinstance(policy.destination, FlowMatch):
        flow = policy.destination
        routes.append({"dst": _text(flow.dst), **table, "oif": oif, "priority": POLICY_METRIC, "encap": encap})
        rules.append(_flow_rule(policy, flow, interfaces.lan_ifname(policy.headend)))
    elif policy.destination is not None:
        routes.append({"dst": _text(policy.destination), **table, "oif": oif, "priority": POLICY_METRIC,
                       "encap": encap})
    if policy.binding_sid is not None:
        bsid = parse_sid(policy.binding_sid)
        if bsid.behaviour is not Behaviour.END_B6_ENCAPS or bsid.site_id != headend_id:
            raise PolicyError(f"{where}: binding_sid {policy.binding_sid} is {bsid}; it must be an "
                              f"End.B6.Encaps SID of the headend {policy.headend} (site id {headend_id}), "
                              "see cpn_net.srv6.sids.binding_sid")
        routes.append({"dst": f"{policy.binding_sid}/128", "oif": interfaces.lan_ifname(policy.headend),
                       "encap": {"type": "seg6local", "action": "End.B6.Encaps", "srh": {"segs": list(segs)}}})
    router = addressing.router_name(headend_id)
    return CompiledPolicy(policy.name, router, tuple(routes), tuple(rules))


def _first_hop_ifname(G, policy: SRPolicy, interfaces: InterfacePlan, igp: Igp) -> str:
    """The interface towards the first segment, as ``ip route`` would show it."""
    first = parse_sid(policy.segments.first)
    by_id = sites_by_id(G, igp)
    owner = by_id[first.site_id]
    if owner != policy.headend:
        return interfaces.wan_ifname(policy.headend, igp.next_hop(policy.headend, owner))
    if first.behaviour is Behaviour.END_X:
        return interfaces.wan_ifname(policy.headend, by_id[first.neighbour_id])
    return interfaces.lan_ifname(policy.headend)


@functools.lru_cache(maxsize=1 << 14, typed=True)
def _text(value: ipaddress.IPv6Address | ipaddress.IPv6Network) -> str:
    """``str(value)``, cached: ipaddress formats in Python, and specs repeat the same SIDs and prefixes."""
    return str(value)


def _flow_rule(policy: SRPolicy, flow: FlowMatch, lan_ifname: str) -> dict:
    rule = {"family": socket.AF_INET6, "priority": policy.rule_priority, "table": policy.table,
            "iifname": lan_ifname, "dst": _text(flow.dst)}
    if flow.src is not None:
        rule["src"] = _text(flow.src)
    if flow.protocol is not None:
        rule["ip_proto"] = flow.protocol
    if flow.src_port is not None:
        rule["sport_range"] = f"{flow.src_port}:{flow.src_port}"
    if flow.dst_port is not None:
        rule["dport_range"] = f"{flow.dst_port}:{flow.dst_port}"
    return rule
