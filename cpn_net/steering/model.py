"""The selector's vocabulary: service instances, paths, flows and decisions.

All frozen data. A *service instance* is one compute node offering one
service (the CATS "service contact instance"); a compute node offering two
services is two instances sharing a node name, and shares one metrics report.
Sites are named by strings (the topology's site names); node names and
addresses come from :mod:`cpn_net.model.addressing`.

Examples
--------
>>> from cpn_net.model.addressing import host_address, host_name
>>> render = ServiceInstance(host_name(3, "compute", 1), "site3", "render",
...                          host_address(3, "compute", 1))
>>> render.name, str(render.address)
('k3-1', '2001:db8:3::2:1')
>>> key = FlowKey("2001:db8:1::1:1", "2001:db8:ff::1", 17, 40000, 443)
>>> Flow(key, "site1", "render", latency_budget_ms=20.0).latency_budget_ms
20.0
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from cpn_net.steering import _checks
from cpn_net.steering.errors import MetricsError


def _ipv6(owner: str, key: str, value: object) -> ipaddress.IPv6Address:
    try:
        return ipaddress.IPv6Address(value)
    except ValueError as err:
        raise MetricsError(f"{owner}: {key}={value!r} must be an IPv6 address") from err


@dataclass(frozen=True, slots=True)
class ServiceInstance:
    """One compute node offering one service.

    Parameters
    ----------
    name : str
        Compute node name, ``k<site>-<n>`` (see :mod:`cpn_net.model.addressing`).
    site : str
        Name of the site hosting the node.
    service : str
        Service name (its anycast address is the CATS service ID).
    address : ipaddress.IPv6Address or str
        The node's unicast address, where the last segment delivers the flow.

    Raises
    ------
    MetricsError
        If a name is empty or the address is not IPv6.

    Examples
    --------
    >>> ServiceInstance("k2-1", "site2", "render", "2001:db8:2::2:1").site
    'site2'
    """

    name: str
    site: str
    service: str
    address: ipaddress.IPv6Address

    def __post_init__(self) -> None:
        owner = f"instance {self.name!r}"
        _checks.name(owner, "name", self.name)
        _checks.name(owner, "site", self.site)
        _checks.name(owner, "service", self.service)
        object.__setattr__(self, "address", _ipv6(owner, "address", self.address))


@dataclass(frozen=True, slots=True)
class PathMetrics:
    """Telemetry for the path from an ingress site to an instance's site.

    Parameters
    ----------
    delay_ms : float
        One-way delay, ingress router to egress router (IOAM / alternate
        marking, RFC 9341 / RFC 9197). The response estimate doubles it.
    loss_pct : float
        One-way packet loss in percent, ``[0, 100]``.
    available_mbps : float
        Bandwidth still free on the path (or on the flow's slice), ``>= 0``;
        ``math.inf`` when unconstrained.

    Raises
    ------
    MetricsError
        If a value is out of range.

    Examples
    --------
    >>> PathMetrics(delay_ms=4.5, loss_pct=0.0, available_mbps=1000.0).delay_ms
    4.5
    >>> PathMetrics(-1.0, 0.0, 10.0)
    Traceback (most recent call last):
    ...
    cpn_net.steering.errors.MetricsError: path: delay_ms=-1.0 must be >= 0
    """

    delay_ms: float
    loss_pct: float
    available_mbps: float

    def __post_init__(self) -> None:
        _checks.number("path", "delay_ms", self.delay_ms)
        _checks.number("path", "loss_pct", self.loss_pct, high=100.0)
        _checks.number("path", "available_mbps", self.available_mbps, allow_inf=True)


LOCAL_PATH = PathMetrics(delay_ms=0.0, loss_pct=0.0, available_mbps=math.inf)
"""The path from a site to itself when telemetry says nothing else: the
client and the instance share the site switch, so the WAN adds nothing."""


@dataclass(frozen=True, slots=True)
class FlowKey:
    """The IPv6 5-tuple that identifies a flow (what affinity pins).

    Examples
    --------
    >>> FlowKey("2001:db8:1::1:1", "2001:db8:ff::1", 6, 50000, 80).protocol
    6
    >>> FlowKey("2001:db8:1::1:1", "2001:db8:ff::1", 6, 70000, 80)
    Traceback (most recent call last):
    ...
    cpn_net.steering.errors.MetricsError: flow: src_port=70000 must be an integer in 0..65535
    """

    src: ipaddress.IPv6Address
    dst: ipaddress.IPv6Address
    protocol: int
    src_port: int
    dst_port: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "src", _ipv6("flow", "src", self.src))
        object.__setattr__(self, "dst", _ipv6("flow", "dst", self.dst))
        for key, high in (("protocol", 255), ("src_port", 65535), ("dst_port", 65535)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
                raise MetricsError(f"flow: {key}={value!r} must be an integer in 0..{high}")


@dataclass(frozen=True, slots=True)
class Flow:
    """A request to steer: which client site wants which service, and its needs.

    Parameters
    ----------
    key : FlowKey
        The flow's 5-tuple.
    client_site : str
        Site whose router is the ingress forwarder for the client.
    service : str
        Requested service.
    demand_mbps : float
        Bandwidth the flow needs on its path (0: no bandwidth constraint).
    latency_budget_ms : float or None
        End-to-end latency SLO, or None for none.
    client_side_ms : float
        Latency spent outside network and compute (capture, encode, render on
        the device); added to every candidate alike, so it never changes the
        ranking, only whether the budget is met (the CATS AR/VR case's 9.4 ms).

    Examples
    --------
    >>> key = FlowKey("2001:db8:1::1:1", "2001:db8:ff::1", 17, 40000, 443)
    >>> Flow(key, "site1", "render", demand_mbps=-1.0)
    Traceback (most recent call last):
    ...
    cpn_net.steering.errors.MetricsError: flow to 'render': demand_mbps=-1.0 must be >= 0
    """

    key: FlowKey
    client_site: str
    service: str
    demand_mbps: float = 0.0
    latency_budget_ms: float | None = None
    client_side_ms: float = 0.0

    def __post_init__(self) -> None:
        owner = f"flow to {self.service!r}"
        _checks.name(owner, "client_site", self.client_site)
        _checks.name(owner, "service", self.service)
        _checks.number(owner, "demand_mbps", self.demand_mbps)
        _checks.number(owner, "client_side_ms", self.client_side_ms)
        if self.latency_budget_ms is not None:
            _checks.number(owner, "latency_budget_ms", self.latency_budget_ms)


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a flow goes, why, and what it is expected to cost.

    Parameters
    ----------
    flow : Flow
        The flow decided.
    instance : ServiceInstance or None
        The chosen instance; None when no healthy, reachable instance exists.
    path_delay_ms : float or None
        One-way delay of the path to the instance's site (telemetry view).
    expected_response_ms : float or None
        Estimated response time (see :mod:`cpn_net.steering.estimate`) from the
        state the policy saw, whatever the policy optimises, so that policies
        are compared on one yardstick.
    cost : float
        The policy's own score of the choice (lower is better; its unit is the
        policy's, ms for the latency-based ones); ``math.inf`` if none.
    slo_met : bool
        Whether ``expected_response_ms`` is within the flow's latency budget
        (True when the flow has none and an instance was found).
    reason : str
        Short explanation: the policy's rule, ``affinity``, ``hysteresis``,
        ``failover`` or why nothing was found.
    """

    flow: Flow
    instance: ServiceInstance | None
    path_delay_ms: float | None
    expected_response_ms: float | None
    cost: float
    slo_met: bool
    reason: str
