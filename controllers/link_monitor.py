"""Watch every router's WAN interfaces for carrier changes, as a router's IGP would.

One thread, one netlink socket per router namespace subscribed to link events,
one ``select`` over all of them. A carrier change on a WAN interface is handed
to :meth:`ControllerCore.link_changed` (both ends report it; the core acts once).
"""

from __future__ import annotations

import logging
import select
import threading

LOG = logging.getLogger("cpn.link_monitor")


class LinkMonitor:
    def __init__(self, core, on_change=lambda: None) -> None:
        self.core = core
        self.on_change = on_change
        self.sockets = {}
        self.sessions = {}  # this thread's own netlink sessions (pyroute2 sockets are thread-bound)
        self.carrier: dict[tuple[str, str], bool] = {}
        self.running = False
        self.ready = threading.Event()
        self.failure = None
        self.thread = threading.Thread(target=self._run, name="cpn-link-monitor", daemon=True)

    def start(self, timeout_s: float = 30.0) -> None:
        self.running = True
        self.thread.start()
        if not self.ready.wait(timeout_s):
            raise RuntimeError(f"the link monitor did not subscribe to every router within {timeout_s} s")
        if self.failure:
            raise RuntimeError(f"the link monitor could not start: {self.failure}")

    def _subscribe(self) -> None:
        # Sockets are opened in this thread: pyroute2 sockets belong to their opening thread.
        for router in self.core.routers.values():
            self.sessions[router] = self.core.netlink_factory(router)
            self.sockets[router] = self.sessions[router].subscribe_links()
        for link in self.core.plan.wan_links:
            for router, intf in ((link.router_a, link.intf_a), (link.router_b, link.intf_b)):
                self.carrier[(router, intf)] = self.sessions[router].carrier(intf)

    def _run(self) -> None:
        try:
            self._subscribe()
        except Exception as err:
            self.failure = f"{type(err).__name__}: {err}"
            self.ready.set()
            return
        self.ready.set()
        by_fd = {sock.fileno(): (router, sock) for router, sock in self.sockets.items()}
        while self.running:
            try:
                ready, _, _ = select.select(list(self.sockets.values()), [], [], 0.5)
            except (OSError, ValueError):
                return
            for sock in ready:
                router, _ = by_fd[sock.fileno()]
                try:
                    messages = sock.get()
                except OSError as err:
                    LOG.error("link events of %s: %s", router, err)
                    continue
                for msg in messages:
                    if msg.get("event") == "RTM_NEWLINK":
                        self._link_message(router, msg)

    def _link_message(self, router: str, msg) -> None:
        ifname = msg.get_attr("IFLA_IFNAME")
        carrier = msg.get_attr("IFLA_CARRIER")
        if carrier is None or (router, ifname) not in self.carrier:
            return
        up = bool(carrier)
        if self.carrier[(router, ifname)] == up:
            return
        self.carrier[(router, ifname)] = up
        link = self.core.wan_link_of(router, ifname)
        if link is None:
            return
        try:
            event = self.core.link_changed(link.site_a, link.site_b, up, f"carrier on {router} {ifname}")
        except Exception:  # a failed repair must not stop the monitor
            LOG.exception("reconverging after %s %s changed", router, ifname)
            return
        if event:
            LOG.info("%s", event)
            self.on_change()

    def stop(self) -> None:
        self.running = False
        for sock in list(self.sockets.values()) + list(self.sessions.values()):
            sock.close()
