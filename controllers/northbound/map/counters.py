"""Link throughput for the map: the routers' WAN interface byte counters, read over netlink.

Per direction ``a->b`` of a WAN link, the bytes router ``a`` transmitted on its
interface towards ``b`` (``IFLA_STATS64.tx_bytes``): what entered the link,
headers and SRv6 encapsulation included, as a link's rate limit sees it.
One netlink socket per router namespace, opened and used by one thread
(pyroute2 sockets belong to their thread).
"""

from __future__ import annotations

import logging
import time

from cpn_net.model import addressing

LOG = logging.getLogger("cpn.map")


def throughput_mbps(before: dict, after: dict) -> dict[str, float]:
    """Mbit/s per direction between two counter readings ``{direction: (unix time, tx bytes)}``.

    A counter that went backwards (interface re-created) or a reading without a
    predecessor gives nothing for that direction.

    Examples
    --------
    >>> throughput_mbps({"a->b": (10.0, 1_000_000)}, {"a->b": (12.0, 13_500_000), "b->a": (12.0, 5)})
    {'a->b': 50.0}
    """
    out = {}
    for direction, (t1, bytes1) in after.items():
        if direction not in before:
            continue
        t0, bytes0 = before[direction]
        if t1 > t0 and bytes1 >= bytes0:
            out[direction] = (bytes1 - bytes0) * 8 / (t1 - t0) / 1e6
    return out


class InterfaceCounters:
    """Reads every router's WAN ``tx_bytes``; call :meth:`read` from one thread only.

    Parameters
    ----------
    plan : cpn_net.emulation.plan.NetworkPlan
        Names the routers, their namespaces and WAN interfaces.
    """

    def __init__(self, plan) -> None:
        self.by_router: dict[str, dict[str, str]] = {}  # router -> {interface: "a->b"}
        for link in plan.wan_links:
            self.by_router.setdefault(link.router_a, {})[link.intf_a] = f"{link.site_a}->{link.site_b}"
            self.by_router.setdefault(link.router_b, {})[link.intf_b] = f"{link.site_b}->{link.site_a}"
        self.sessions: dict = {}
        self.failed: set[str] = set()

    def read(self) -> dict[str, tuple[float, int]]:
        """``{"a->b": (unix time, tx bytes)}`` for every WAN direction whose router answered."""
        from pyroute2 import IPRoute

        out = {}
        for router, interfaces in self.by_router.items():
            if router in self.failed:
                continue
            try:
                session = self.sessions.get(router)
                if session is None:
                    session = self.sessions[router] = IPRoute(netns=addressing.namespace(router), flags=0)
                links = session.get_links()
            except Exception as err:  # a namespace gone (teardown): stop asking it
                LOG.debug("map: byte counters of %s unavailable: %s", router, err)
                self.failed.add(router)
                continue
            now = time.time()
            for link in links:
                direction = interfaces.get(link.get_attr("IFLA_IFNAME"))
                stats = link.get_attr("IFLA_STATS64")
                if direction is not None and stats is not None:
                    out[direction] = (now, int(stats.get("tx_bytes")))
        return out

    def close(self) -> None:
        for session in self.sessions.values():
            try:
                session.close()
            except Exception:  # noqa: BLE001 - closing on the way out
                pass
        self.sessions.clear()
