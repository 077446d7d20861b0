"""Netlink adapter: apply the pure core's route and rule specs inside router namespaces.

Specs are the plain dicts of :mod:`cpn_net.srv6.baseline`, :mod:`cpn_net.srv6.policy`
and :mod:`cpn_net.srv6.frr`; they name interfaces, which this adapter resolves to
indexes. Uses pyroute2 inside the named namespace ``cpn-<router>`` and never
creates a namespace (``flags=0``): a missing namespace is an error, not a new
empty one.

pyroute2 0.9.7 encodes only the seg6 modes ``encap`` and ``inline``: a spec with
``encap.red`` is installed with iproute2's ``ip -6 route`` instead.
"""

from __future__ import annotations

import errno
import subprocess

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError as PyrouteNetlinkError
from pyroute2.netlink.rtnl import RTMGRP_LINK

from cpn_net.model import addressing

AF_INET6 = 10
_ABSENT = (errno.ESRCH, errno.ENOENT, errno.EADDRNOTAVAIL)


class NetlinkError(RuntimeError):
    """A netlink request failed; the message names the router and the spec."""


class RouterNetlink:
    """A netlink session in one router's namespace."""

    def __init__(self, router: str) -> None:
        self.router = router
        self.namespace = addressing.namespace(router)
        try:
            self.ipr = IPRoute(netns=self.namespace, flags=0)
        except OSError as err:
            raise NetlinkError(f"router {self.router}: cannot open namespace {self.namespace}: {err}") from err
        self._ifindex: dict[str, int] = {}

    def ifindex(self, name: str) -> int:
        if name not in self._ifindex:
            found = self.ipr.link_lookup(ifname=name)
            if not found:
                raise NetlinkError(f"router {self.router}: no interface {name} in {self.namespace}")
            self._ifindex[name] = found[0]
        return self._ifindex[name]

    def ifname(self, index: int) -> str | None:
        for name, known in self._ifindex.items():
            if known == index:
                return name
        for link in self.ipr.get_links(index):
            name = link.get_attr("IFLA_IFNAME")
            self._ifindex[name] = index
            return name
        return None

    # ---------------------------------------------------------------- routes
    def route(self, op: str, spec: dict) -> None:
        """``op`` is add, replace or del; ``del`` of an absent route is not an error."""
        request = dict(spec, family=AF_INET6)
        if "oif" in request and isinstance(request["oif"], str):
            request["oif"] = self.ifindex(request["oif"])
        encap = request.get("encap") or {}
        if encap.get("type") == "seg6" and encap.get("mode") == "encap.red" and op != "del":
            self._ip_route(op, spec)
            return
        if op == "del":
            request.pop("encap", None)
        try:
            self.ipr.route(op, **request)
        except PyrouteNetlinkError as err:
            if op == "del" and err.code in _ABSENT:
                return
            raise NetlinkError(f"router {self.router}: route {op} {_describe(spec)}: {err}") from err

    def rule(self, op: str, spec: dict) -> None:
        request = dict(spec, family=AF_INET6)
        try:
            self.ipr.rule(op, **request)
        except PyrouteNetlinkError as err:
            if op == "del" and err.code in _ABSENT:
                return
            raise NetlinkError(f"router {self.router}: rule {op} {spec}: {err}") from err

    def _ip_route(self, op: str, spec: dict) -> None:
        encap = spec["encap"]
        segs = ",".join(reversed(encap["segs"]))  # specs hold SRH order; ip takes travel order
        cmd = ["ip", "-n", self.namespace, "-6", "route", op, spec["dst"], "encap", "seg6", "mode",
               encap["mode"], "segs", segs, "dev", spec["oif"]]
        if "table" in spec:
            cmd += ["table", str(spec["table"])]
        if "priority" in spec:
            cmd += ["metric", str(spec["priority"])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise NetlinkError(f"router {self.router}: `{' '.join(cmd)}`: {proc.stderr.strip()}")

    def routes(self, table: int | None = None) -> list[dict]:
        """The router's IPv6 routes as (dst, gateway, dev, metric, encap) dicts (status and tests)."""
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in self.ipr.get_links()}
        out = []
        kwargs = {"table": table} if table is not None else {}
        for route in self.ipr.get_routes(family=AF_INET6, **kwargs):
            dst = route.get_attr("RTA_DST")
            out.append({"dst": f"{dst}/{route['dst_len']}" if dst else "default",
                        "gateway": route.get_attr("RTA_GATEWAY"),
                        "dev": names.get(route.get_attr("RTA_OIF")),
                        "metric": route.get_attr("RTA_PRIORITY"),
                        "encap": route.get_attr("RTA_ENCAP_TYPE")})
        return out

    # ------------------------------------------------------------ link events
    def subscribe_links(self) -> "IPRoute":
        """A second socket bound to link events (carrier up/down) of this namespace."""
        monitor = IPRoute(netns=self.namespace, flags=0)
        monitor.bind(groups=RTMGRP_LINK)
        return monitor

    def boundary(self, hosts) -> None:
        """Nothing to do: with Linux seg6, nftables' prerouting hook sees the packet as sent."""

    def carrier(self, name: str) -> bool:
        for link in self.ipr.get_links(self.ifindex(name)):
            return bool(link.get_attr("IFLA_CARRIER"))
        return False

    def close(self) -> None:
        self.ipr.close()


def _describe(spec: dict) -> str:
    parts = [spec.get("dst", "?")]
    if "gateway" in spec:
        parts.append(f"via {spec['gateway']}")
    if "oif" in spec:
        parts.append(f"dev {spec['oif']}")
    if "priority" in spec:
        parts.append(f"metric {spec['priority']}")
    encap = spec.get("encap")
    if encap:
        parts.append(f"encap {encap.get('type')} {encap.get('action') or encap.get('mode')}")
    return " ".join(parts)
