"""The validated topology: sites, WAN links, hosts and services as frozen data.

Instances come from the loaders (:func:`cpn_net.model.load_topology`), which
check every rule of the format; the classes here only hold and look up data.
Names and addresses come from :mod:`cpn_net.model.addressing`.

Examples
--------
>>> from cpn_net.model import load_topology
>>> topo = load_topology("topologies/tiny.yaml")
>>> topo.site("east").router, topo.site(2).name
('r1', 'centre')
>>> link = topo.link("west", "centre")
>>> link.number, link.node_name, link.loss_pct
(2, 'l2x3', 2.0)
>>> [h.name for h in topo.hosts()][:3]
['u1-1', 'k1-1', 'u2-1']
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property
from typing import Union

import networkx as nx

from cpn_net.model import addressing
from cpn_net.model.errors import UnknownNameError, unknown_fix
from cpn_net.model.schema import PROTOCOL_NUMBERS

#: Version of the dictionary layout written by :meth:`Topology.to_dict` (2 added ``policies``, 3 ``slices``).
TOPOLOGY_DICT_VERSION = 3
DELAY_SOURCES = ("configured", "derived", "default")
#: What a policy's ``to`` names: a site (its LAN), a host (its /128) or a prefix.
POLICY_TARGET_KINDS = ("site", "host", "prefix")


@dataclass(frozen=True)
class Client:
    """A traffic source ``u<site>-<n>`` on a site LAN."""

    name: str
    site: str
    site_id: int
    index: int
    address: ipaddress.IPv6Address

    @property
    def kind(self) -> str:
        return "client"


@dataclass(frozen=True)
class ComputeNode:
    """A compute node ``k<site>-<n>`` running a service with finite capacity.

    ``workers`` requests are served in parallel, each taking
    ``service_time_ms``; up to ``queue_limit`` more wait. ``background_load_pct``
    of the capacity is taken by load outside the experiment.

    Examples
    --------
    >>> import ipaddress
    >>> node = ComputeNode("k1-1", "east", 1, 1, ipaddress.IPv6Address("2001:db8:1::2:1"),
    ...                    workers=4, service_time_ms=10.0)
    >>> node.capacity_rps, node.kind
    (400.0, 'compute')
    """

    name: str
    site: str
    site_id: int
    index: int
    address: ipaddress.IPv6Address
    workers: int = 4
    service_time_ms: float = 10.0
    queue_limit: int = 64
    background_load_pct: float = 0.0
    price_cny_per_hour: float | None = None
    carbon_g_per_kwh: float | None = None

    @property
    def kind(self) -> str:
        return "compute"

    @property
    def capacity_rps(self) -> float:
        """Requests per second the node completes when all workers are busy."""
        return self.workers * 1000.0 / self.service_time_ms


Host = Union[Client, ComputeNode]


@dataclass(frozen=True)
class Site:
    """A data-centre site: router ``r<id>``, switch ``s<id>``, its hosts and LAN."""

    name: str
    id: int
    lat: float | None
    lon: float | None
    clients: tuple[Client, ...]
    compute: tuple[ComputeNode, ...]

    @property
    def router(self) -> str:
        return addressing.router_name(self.id)

    @property
    def switch(self) -> str:
        return addressing.switch_name(self.id)

    @property
    def lan(self) -> ipaddress.IPv6Network:
        return addressing.site_lan(self.id)

    @property
    def locator(self) -> ipaddress.IPv6Network:
        return addressing.locator(self.id)

    @property
    def hosts(self) -> tuple[Host, ...]:
        return self.clients + self.compute


@dataclass(frozen=True)
class Link:
    """A bidirectional WAN link between two sites' routers.

    ``a`` and ``b`` keep the file's order; ``number`` (1-based, file order)
    picks the link's WAN prefix. ``delay_ms`` is one way; ``rate_mbps`` None
    means unshaped. ``delay_source`` says where the delay came from:
    ``configured`` (the file), ``derived`` (coordinates, see
    :mod:`cpn_net.model.geo`) or ``default`` (an import without coordinates).
    """

    number: int
    a: str
    b: str
    a_id: int
    b_id: int
    delay_ms: float
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    rate_mbps: float | None = None
    delay_source: str = "configured"
    distance_km: float | None = None

    @property
    def node_name(self) -> str:
        return addressing.link_node_name(self.a_id, self.b_id)

    @property
    def wan_prefix(self) -> ipaddress.IPv6Network:
        return addressing.wan_prefix(self.number)

    @property
    def ends(self) -> tuple[str, str]:
        return (self.a, self.b)


@dataclass(frozen=True)
class Service:
    """A service reachable at an anycast address on every compute node listed."""

    name: str
    anycast: ipaddress.IPv6Address
    port: int
    compute: tuple[str, ...]


@dataclass(frozen=True)
class PolicyFlow:
    """The 5-tuple fields narrowing an SR policy to one flow; None matches any.

    ``proto`` is an IANA protocol number (the IPv6 Next Header value, RFC
    8200 §3) of the upper-layer header; ``src`` an IPv6 prefix string
    (``'2001:db8:1::1:1/128'`` for one address) inside the headend's LAN.
    The destination is the policy's ``to``.

    Examples
    --------
    >>> flow = PolicyFlow(proto=17, dst_port=5001)
    >>> flow.proto_name, flow.describe()
    ('udp', 'udp dport 5001')
    """

    proto: int | None = None
    src: str | None = None
    src_port: int | None = None
    dst_port: int | None = None

    @property
    def proto_name(self) -> str | None:
        """``tcp``, ``udp``, ``sctp``, ``icmpv6``, the number as text, or None."""
        if self.proto is None:
            return None
        names = {number: name for name, number in PROTOCOL_NUMBERS.items()}
        return names.get(self.proto, str(self.proto))

    def describe(self) -> str:
        """The flow in the words of ``ip rule``: protocol, source, ports."""
        parts = [self.proto_name or "", f"from {self.src}" if self.src else "",
                 f"sport {self.src_port}" if self.src_port is not None else "",
                 f"dport {self.dst_port}" if self.dst_port is not None else ""]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class SRPolicySpec:
    """An SR policy as declared in a topology file (RFC 9256 §2: headend, endpoint).

    The controller computes its path and segment list
    (:mod:`cpn_net.srv6.paths`, :mod:`cpn_net.srv6.policy`); the model only
    guarantees the declaration fits the topology.

    Attributes
    ----------
    name : str
        Unique in the topology.
    headend : str
        The site whose router encapsulates (H.Encaps, RFC 8986 §5.1).
    to_kind : {"site", "host", "prefix"}
        ``site``: steers the site's LAN /64; ``host``: the host's /128, the
        last segment an End.DX6 towards it; ``prefix``: ``to`` itself, the
        egress chosen from the routing.
    to : str
        A site name, a host name, or a normalised prefix (``'2001:db8:ffff::1/128'``).
    flow : PolicyFlow or None
        Narrows the policy to one flow; None steers all traffic to ``to``.
    objective : {"min_delay", "min_hops", "bandwidth"}
    bandwidth_mbps : float or None
        Set exactly when ``objective`` is ``bandwidth``.
    waypoints : tuple of str
        Sites to traverse in order.
    mode : {"encap", "encap.red"}
    backup : bool
        Precompute a link-disjoint backup path.

    Examples
    --------
    >>> from cpn_net.model import load_topology
    >>> topo = load_topology("topologies/tiny-policies.yaml")
    >>> p = topo.policy("east-west-direct")
    >>> p.headend, p.to_kind, p.to, p.objective, p.waypoints
    ('east', 'site', 'west', 'min_hops', ())
    """

    name: str
    headend: str
    to_kind: str
    to: str
    flow: PolicyFlow | None = None
    objective: str = "min_delay"
    bandwidth_mbps: float | None = None
    waypoints: tuple[str, ...] = ()
    mode: str = "encap"
    backup: bool = True


@dataclass(frozen=True)
class SliceSpec:
    """A network slice (RFC 9543 §3): member endpoints, guarantees and isolation.

    The model only guarantees the declaration fits the topology; whether the
    guarantees fit the links is admission control (:mod:`cpn_net.slicing.admission`).

    Attributes
    ----------
    name : str
        Unique in the topology.
    id : int
        1..4095, unique; names the slice's flows, meters, queues and tables
        (the mark on the wire is given at admission).
    members : tuple of str
        As declared: host names and site names.
    hosts : tuple of str
        The member hosts, a site expanded to all its hosts, in topology order.
    sites : tuple of str
        The sites of the member hosts, in topology order.
    rate_mbps : float
        Guaranteed between every ordered pair of member sites.
    max_latency_ms, max_loss_pct : float or None
        One-way bounds on every member-site path; None: no bound.
    kind : {"latency", "bulk"}
        Minimum-delay or widest (maximum residual bandwidth) paths.
    meter_mbps : float or None
        Cap on the slice's traffic entering at each member site switch.
    isolation : bool
        Decapsulate into the slice's own table; a host is in at most one isolated slice.

    Examples
    --------
    >>> from cpn_net.model.yaml_format import parse_yaml_topology
    >>> topo = parse_yaml_topology('''
    ... name: pair
    ... sites: [{name: a}, {name: b}]
    ... links: [{a: a, b: b, delay_ms: 1, rate_mbps: 100}]
    ... slices: [{name: gold, members: [a, k2-1], rate_mbps: 10}]
    ... ''')
    >>> s = topo.slice("gold")
    >>> s.id, s.hosts, s.sites, s.kind, s.isolation
    (1, ('u1-1', 'k1-1', 'k2-1'), ('a', 'b'), 'latency', True)
    """

    name: str
    id: int
    members: tuple[str, ...]
    hosts: tuple[str, ...]
    sites: tuple[str, ...]
    rate_mbps: float
    max_latency_ms: float | None = None
    max_loss_pct: float | None = None
    kind: str = "latency"
    meter_mbps: float | None = None
    isolation: bool = True


@dataclass(frozen=True)
class Topology:
    """A whole validated topology; see the module docstring for an example."""

    name: str
    source: str
    description: str
    route_factor: float
    sites: tuple[Site, ...]
    links: tuple[Link, ...]
    services: tuple[Service, ...]
    notes: tuple[str, ...] = ()
    policies: tuple[SRPolicySpec, ...] = ()
    slices: tuple[SliceSpec, ...] = ()

    @cached_property
    def _sites_by_name(self) -> dict[str, Site]:
        return {s.name: s for s in self.sites}

    @cached_property
    def _sites_by_id(self) -> dict[int, Site]:
        return {s.id: s for s in self.sites}

    @cached_property
    def _links_by_pair(self) -> dict[frozenset, Link]:
        return {frozenset(link.ends): link for link in self.links}

    @cached_property
    def _hosts_by_name(self) -> dict[str, Host]:
        return {h.name: h for h in self.hosts()}

    def site(self, name_or_id: str | int) -> Site:
        """The site with this name (str) or id (int).

        Raises
        ------
        UnknownNameError
            (a ``KeyError``) if there is no such site.

        Examples
        --------
        >>> from cpn_net.model import load_topology
        >>> load_topology("topologies/tiny.yaml").site("esat")
        Traceback (most recent call last):
        ...
        cpn_net.model.errors.UnknownNameError: topology tiny has no site 'esat'; did you mean 'east'?
        """
        if isinstance(name_or_id, int) and not isinstance(name_or_id, bool):
            if name_or_id in self._sites_by_id:
                return self._sites_by_id[name_or_id]
            ids = ", ".join(str(i) for i in sorted(self._sites_by_id))
            raise UnknownNameError(f"topology {self.name} has no site with id {name_or_id}; ids are {ids}")
        if name_or_id in self._sites_by_name:
            return self._sites_by_name[name_or_id]
        raise UnknownNameError(
            f"topology {self.name} has no site {name_or_id!r}; "
            f"{unknown_fix(name_or_id, self._sites_by_name, 'sites')}"
        )

    def link(self, a: str | int, b: str | int) -> Link:
        """The link between two sites (names or ids), in either order.

        Raises
        ------
        UnknownNameError
            If either site is unknown or the two are not linked.

        Examples
        --------
        >>> from cpn_net.model import load_topology
        >>> load_topology("topologies/tiny.yaml").link("centre", "east").number
        1
        """
        site_a, site_b = self.site(a), self.site(b)
        try:
            return self._links_by_pair[frozenset((site_a.name, site_b.name))]
        except KeyError:
            raise UnknownNameError(
                f"topology {self.name} has no link between {site_a.name} and {site_b.name}"
            ) from None

    def hosts(self) -> tuple[Host, ...]:
        """Every client and compute node, in site order (clients first in a site)."""
        return tuple(h for s in self.sites for h in s.hosts)

    def clients(self) -> tuple[Client, ...]:
        return tuple(c for s in self.sites for c in s.clients)

    def compute_nodes(self) -> tuple[ComputeNode, ...]:
        return tuple(k for s in self.sites for k in s.compute)

    def host(self, name: str) -> Host:
        """The client or compute node called ``name`` (e.g. ``k2-1``)."""
        try:
            return self._hosts_by_name[name]
        except KeyError:
            raise UnknownNameError(
                f"topology {self.name} has no host {name!r}; {unknown_fix(name, self._hosts_by_name, 'hosts')}"
            ) from None

    def service(self, name: str) -> Service:
        """The service called ``name``."""
        for service in self.services:
            if service.name == name:
                return service
        names = [s.name for s in self.services]
        raise UnknownNameError(f"topology {self.name} has no service {name!r}; {unknown_fix(name, names, 'services')}")

    def policy(self, name: str) -> SRPolicySpec:
        """The SR policy called ``name``.

        Raises
        ------
        UnknownNameError
            If there is no such policy.

        Examples
        --------
        >>> from cpn_net.model import load_topology
        >>> load_topology("topologies/tiny-policies.yaml").policy("echo-udp-to-k3-1").flow.dst_port
        5001
        """
        for policy in self.policies:
            if policy.name == name:
                return policy
        names = [p.name for p in self.policies]
        raise UnknownNameError(f"topology {self.name} has no policy {name!r}; {unknown_fix(name, names, 'policies')}")

    def slice(self, name: str) -> SliceSpec:
        """The network slice called ``name``.

        Raises
        ------
        UnknownNameError
            If there is no such slice.

        Examples
        --------
        >>> from cpn_net.model import load_topology
        >>> load_topology("topologies/tiny.yaml").slice("gold")
        Traceback (most recent call last):
        ...
        cpn_net.model.errors.UnknownNameError: topology tiny has no slice 'gold'; there are no slices
        """
        for spec in self.slices:
            if spec.name == name:
                return spec
        names = [s.name for s in self.slices]
        raise UnknownNameError(f"topology {self.name} has no slice {name!r}; {unknown_fix(name, names, 'slices')}")

    def steered_prefix(self, policy: SRPolicySpec | str) -> ipaddress.IPv6Network:
        """The destination prefix a policy (or policy name) steers at its headend.

        A site's LAN /64, a host's /128, or the declared prefix.

        Examples
        --------
        >>> from cpn_net.model import load_topology
        >>> topo = load_topology("topologies/tiny-policies.yaml")
        >>> str(topo.steered_prefix("east-west-direct")), str(topo.steered_prefix("echo-udp-to-k3-1"))
        ('2001:db8:3::/64', '2001:db8:3::2:1/128')
        """
        policy = self.policy(policy) if isinstance(policy, str) else policy
        if policy.to_kind == "site":
            return self.site(policy.to).lan
        if policy.to_kind == "host":
            return ipaddress.IPv6Network(self.host(policy.to).address)
        return ipaddress.IPv6Network(policy.to)

    def destination_site(self, policy: SRPolicySpec | str) -> str | None:
        """The site where a policy's traffic leaves the SR domain, if the model knows it.

        The site itself, the host's site, or the site whose LAN contains the
        prefix; None for other prefixes (the controller picks the egress).

        Examples
        --------
        >>> from cpn_net.model import load_topology
        >>> load_topology("topologies/tiny-policies.yaml").destination_site("echo-udp-to-k3-1")
        'west'
        """
        policy = self.policy(policy) if isinstance(policy, str) else policy
        if policy.to_kind == "site":
            return policy.to
        if policy.to_kind == "host":
            return self.host(policy.to).site
        prefix = ipaddress.IPv6Network(policy.to)
        return next((s.name for s in self.sites if prefix.subnet_of(s.lan)), None)

    def graph(self) -> nx.Graph:
        """The site graph: nodes are site names, edges carry the link parameters.

        Node attributes: ``id, lat, lon``. Edge attributes: ``number, delay_ms,
        jitter_ms, loss_pct, rate_mbps`` (None = unshaped), ``distance_km``,
        ``delay_source``. A fresh graph each call, so callers may modify it.

        Examples
        --------
        >>> from cpn_net.model import load_topology
        >>> g = load_topology("topologies/tiny.yaml").graph()
        >>> import networkx as nx
        >>> nx.shortest_path(g, "east", "west", weight="delay_ms")
        ['east', 'centre', 'west']
        """
        g = nx.Graph(name=self.name)
        for s in self.sites:
            g.add_node(s.name, id=s.id, lat=s.lat, lon=s.lon)
        for link in self.links:
            g.add_edge(
                link.a,
                link.b,
                number=link.number,
                delay_ms=link.delay_ms,
                jitter_ms=link.jitter_ms,
                loss_pct=link.loss_pct,
                rate_mbps=link.rate_mbps,
                distance_km=link.distance_km,
                delay_source=link.delay_source,
            )
        return g

    def to_dict(self) -> dict:
        """The full resolved configuration as JSON-serialisable data.

        Every default is filled in and every name and address the plan assigns
        is written out (addresses as strings), so a results file records exactly
        what ran.

        Examples
        --------
        >>> import json
        >>> from cpn_net.model import load_topology
        >>> d = load_topology("topologies/tiny.yaml").to_dict()
        >>> d["sites"][0]["compute"][0]["address"], d["links"][0]["wan_prefix"]
        ('2001:db8:1::2:1', 'fd00:1::/64')
        >>> json.loads(json.dumps(d)) == d
        True
        """
        return {
            "version": TOPOLOGY_DICT_VERSION,
            "name": self.name,
            "source": self.source,
            "description": self.description,
            "route_factor": self.route_factor,
            "sites": [_site_dict(s) for s in self.sites],
            "links": [_link_dict(link) for link in self.links],
            "services": [
                {"name": s.name, "anycast": str(s.anycast), "port": s.port, "compute": list(s.compute)}
                for s in self.services
            ],
            "notes": list(self.notes),
            "policies": [self._policy_dict(p) for p in self.policies],
            "slices": [_slice_dict(s) for s in self.slices],
        }

    def _policy_dict(self, policy: SRPolicySpec) -> dict:
        flow = policy.flow
        return {
            "name": policy.name,
            "headend": policy.headend,
            "headend_router": self.site(policy.headend).router,
            "to_kind": policy.to_kind,
            "to": policy.to,
            "steered_prefix": str(self.steered_prefix(policy)),
            "destination_site": self.destination_site(policy),
            "flow": None if flow is None else {
                "proto": flow.proto, "proto_name": flow.proto_name, "src": flow.src,
                "src_port": flow.src_port, "dst_port": flow.dst_port,
            },
            "objective": policy.objective,
            "bandwidth_mbps": policy.bandwidth_mbps,
            "waypoints": list(policy.waypoints),
            "mode": policy.mode,
            "backup": policy.backup,
        }


def _site_dict(site: Site) -> dict:
    return {
        "name": site.name,
        "id": site.id,
        "lat": site.lat,
        "lon": site.lon,
        "router": site.router,
        "switch": site.switch,
        "lan": str(site.lan),
        "locator": str(site.locator),
        "clients": [{"name": c.name, "index": c.index, "address": str(c.address)} for c in site.clients],
        "compute": [
            {
                "name": k.name,
                "index": k.index,
                "address": str(k.address),
                "workers": k.workers,
                "service_time_ms": k.service_time_ms,
                "queue_limit": k.queue_limit,
                "background_load_pct": k.background_load_pct,
                "price_cny_per_hour": k.price_cny_per_hour,
                "carbon_g_per_kwh": k.carbon_g_per_kwh,
                "capacity_rps": k.capacity_rps,
            }
            for k in site.compute
        ],
    }


def _slice_dict(spec: SliceSpec) -> dict:
    return {
        "name": spec.name,
        "id": spec.id,
        "members": list(spec.members),
        "hosts": list(spec.hosts),
        "sites": list(spec.sites),
        "rate_mbps": spec.rate_mbps,
        "max_latency_ms": spec.max_latency_ms,
        "max_loss_pct": spec.max_loss_pct,
        "kind": spec.kind,
        "meter_mbps": spec.meter_mbps,
        "isolation": spec.isolation,
    }


def _link_dict(link: Link) -> dict:
    return {
        "number": link.number,
        "a": link.a,
        "b": link.b,
        "a_id": link.a_id,
        "b_id": link.b_id,
        "node_name": link.node_name,
        "wan_prefix": str(link.wan_prefix),
        "delay_ms": link.delay_ms,
        "jitter_ms": link.jitter_ms,
        "loss_pct": link.loss_pct,
        "rate_mbps": link.rate_mbps,
        "delay_source": link.delay_source,
        "distance_km": link.distance_km,
    }
