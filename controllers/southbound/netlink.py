"""Netlink adapter: install :class:`cpn_net.baseline.RouteSpec` routes in router namespaces.

Uses pyroute2 inside the named namespace ``cpn-<router>``; never creates a
namespace (``flags=0``): a missing namespace is an error, not a new empty one.
"""

from __future__ import annotations

from pyroute2 import IPRoute

from cpn_net.model import addressing


class NetlinkError(RuntimeError):
    """A netlink request failed; the message names the router and the route."""


class RouterNetlink:
    """A netlink session in one router's namespace."""

    def __init__(self, router: str) -> None:
        self.router = router
        self.namespace = addressing.namespace(router)
        try:
            self.ipr = IPRoute(netns=self.namespace, flags=0)
        except OSError as err:
            raise NetlinkError(f"router {router}: cannot open namespace {self.namespace}: {err}") from err
        self._ifindex: dict[str, int] = {}

    def ifindex(self, name: str) -> int:
        if name not in self._ifindex:
            found = self.ipr.link_lookup(ifname=name)
            if not found:
                raise NetlinkError(f"router {self.router}: no interface {name} in {self.namespace}")
            self._ifindex[name] = found[0]
        return self._ifindex[name]

    def replace_route(self, spec) -> None:
        try:
            self.ipr.route("replace", family=10, dst=spec.dst, gateway=spec.gateway,
                           oif=self.ifindex(spec.dev))
        except Exception as err:  # pyroute2 raises NetlinkError/OSError subclasses
            raise NetlinkError(f"router {self.router}: route {spec.dst} via {spec.gateway} "
                               f"dev {spec.dev}: {err}") from err

    def routes(self) -> list[dict]:
        """The router's IPv6 routes as (dst, gateway, dev) dicts (for status and tests)."""
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in self.ipr.get_links()}
        out = []
        for route in self.ipr.get_routes(family=10):
            dst = route.get_attr("RTA_DST")
            out.append({"dst": f"{dst}/{route['dst_len']}" if dst else "default",
                        "gateway": route.get_attr("RTA_GATEWAY"),
                        "dev": names.get(route.get_attr("RTA_OIF"))})
        return out

    def close(self) -> None:
        self.ipr.close()
