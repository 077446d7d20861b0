"""The controller's state and the actions it takes on routers, free of os-ken.

:class:`ControllerCore` owns the network plan, which links are up, the SR
policies installed, and one netlink session per router. The os-ken app
(:mod:`controllers.cpn_controller`), the REST northbound and the link monitor
call it; every decision is delegated to the pure core (:mod:`cpn_net.baseline`,
:mod:`cpn_net.srv6`). One lock serialises every change.

Unit tests drive it with a fake netlink (:class:`cpn_net.srv6.fake_netlink`-style
objects with ``route(op, spec)`` and ``rule(op, spec)``); integration tests with
the real kernel.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from cpn_net.baseline import interface_plan, router_specs, site_graph
from cpn_net.srv6.baseline import igp_routes
from cpn_net.srv6.errors import PathError, PolicyError, SegmentError
from cpn_net.srv6.frr import BACKUP_METRIC, backup_routes
from cpn_net.srv6.igp import Igp
from cpn_net.srv6.paths import link_key
from cpn_net.srv6.planner import FIRST_FLOW_TABLE, hosts_of_plan, plan_policy, reservations_of

MAX_EVENTS = 200
IGP_METRIC = 1024  # the kernel's default IPv6 metric, which IGP routes (installed without one) get


class PolicyConflict(Exception):
    """A policy with that name (or for that traffic at that headend) exists already."""


class UnknownPolicy(KeyError):
    def __str__(self) -> str:
        return self.args[0]


class ControllerCore:
    def __init__(self, plan, *, netlink_factory, frr: bool = True, clock=time.monotonic,
                 batch_runner=None, dataplane: str = "kernel", adopt: bool = False) -> None:
        self.plan = plan
        # A restarted controller takes over what its predecessor installed: its installs
        # replace instead of add, and a rule that exists already is kept (no gap on the wire).
        self.adopt = adopt
        self.dataplane = dataplane  # kernel (Linux seg6) or bpf: which driver netlink_factory makes
        self.netlink_factory = netlink_factory
        self.batch_runner = batch_runner  # (router, route specs, rule specs) -> None; None: one request per spec
        self.frr = frr
        self.clock = clock
        self.hosts = hosts_of_plan(plan)
        self.interfaces = interface_plan(plan)
        self.routers = {r.site: r.name for r in plan.nodes_of("router")}
        self.down: set[frozenset] = set()
        self.sessions: dict = {}
        self.policies: dict = {}
        self.tables: dict[str, int] = {}
        self._used_tables: set[int] = set()  # the values of self.tables, for a quick free-table search
        self._table_hint = FIRST_FLOW_TABLE  # no table below it is free
        self.steered: dict[tuple, str] = {}  # (headend router, destination) -> policy name
        self.backups: dict[str, set] = {}
        self.routes_installed: dict[str, int] = {}
        self.igp_installed: dict[str, dict[str, dict]] = {}  # router -> {dst: IGP route spec}
        self.events: list[dict] = []
        self.errors: list[str] = []
        self.lock = threading.RLock()
        self._routing = None  # (links down, graph, Igp): Igp caches its shortest-path trees
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cpn-netlink")

    # ----------------------------------------------------------- plumbing
    def session(self, router: str):
        """The netlink session with ``router``, driven by the core's one netlink thread.

        pyroute2 0.9 sockets belong to the thread that opened them (its event
        loop): used from another thread they silently miss replies and events.
        So every session is opened and used on one worker thread, whichever
        thread (os-ken, REST, link monitor) asks.
        """
        return _SessionProxy(self, router)

    def _call(self, router: str, method: str, *args):
        def work():
            if router not in self.sessions:
                self.sessions[router] = self.netlink_factory(router)
            return getattr(self.sessions[router], method)(*args)

        return self.worker.submit(work).result()

    def graph(self):
        """The graph of links that are up, and its IGP, cached until a link changes state."""
        key = frozenset(self.down)
        if self._routing is None or self._routing[0] != key:
            graph = site_graph(self.plan, key)
            self._routing = (key, graph, Igp(graph))
        return self._routing[1]

    def igp(self) -> Igp:
        self.graph()
        return self._routing[2]

    def close(self) -> None:
        def close_all():
            for session in self.sessions.values():
                session.close()
            self.sessions.clear()

        self.worker.submit(close_all).result()
        self.worker.shutdown()

    def _event(self, **fields) -> dict:
        fields["at"] = time.time()
        self.events.append(fields)
        del self.events[:-MAX_EVENTS]
        return fields

    # ------------------------------------------------------------ baseline
    def install_baseline(self) -> dict:
        """IGP routes, local SIDs and (with FRR) backup routes on every router."""
        with self.lock:
            started = self.clock()
            graph, igp = self.graph(), self.igp()
            for router, specs in router_specs(self.plan, graph, igp=igp).items():
                session = self.session(router)
                for spec in specs:
                    session.route("replace", spec)
                self.routes_installed[router] = len(specs)
            self.igp_installed = {router: {spec["dst"]: spec for spec in igp_routes(graph, site, self.interfaces,
                                                                                     igp=igp)}
                                  for site, router in self.routers.items()}
            if self.frr:
                self._install_backups(graph, igp)
            return self._event(kind="baseline", duration_ms=round((self.clock() - started) * 1000, 3),
                               routes=sum(self.routes_installed.values()),
                               backups=sum(len(b) for b in self.backups.values()))

    def _install_backups(self, graph, igp) -> None:
        for site, router in self.routers.items():
            specs = backup_routes(graph, site, self.interfaces, igp=igp) if site in graph else []
            session = self.session(router)
            for spec in specs:
                session.route("replace", spec)
            wanted = {spec["dst"] for spec in specs}
            for dst in self.backups.get(router, set()) - wanted:
                session.route("del", {"dst": dst, "priority": BACKUP_METRIC})
            self.backups[router] = wanted

    # ---------------------------------------------------------- link state
    def wan_link_of(self, router: str, ifname: str):
        for link in self.plan.wan_links:
            if (link.router_a, link.intf_a) == (router, ifname) or (link.router_b, link.intf_b) == (router, ifname):
                return link
        return None

    def link_changed(self, site_a: str, site_b: str, up: bool, source: str) -> dict | None:
        """A WAN link went down or came back: reconverge. Returns the event, None if nothing changed."""
        key = frozenset((site_a, site_b))
        with self.lock:
            if up == (key not in self.down):
                return None
            (self.down.discard if up else self.down.add)(key)
            return self.reconverge(f"link {site_a}-{site_b} {'up' if up else 'down'} ({source})",
                                   changed=key, up=up)

    def reconverge(self, reason: str, changed=None, up: bool = True) -> dict:
        """Recompute routes, backups and affected policies for the links that are up now."""
        with self.lock:
            started = self.clock()
            graph, igp = self.graph(), self.igp()
            for site, router in self.routers.items():
                self._install_igp(site, router, graph, igp)
            routes_ms = (self.clock() - started) * 1000
            if self.frr:
                self._install_backups(graph, igp)
            rerouted, failed = [], []
            for name, planned in list(self.policies.items()):
                affected = up or (changed is not None and link_key(*sorted(changed)) in
                                  {link_key(*l) for l in planned.links()})
                if not affected:
                    continue
                try:
                    if self._replan(name, graph, igp):
                        rerouted.append(name)
                except (PolicyError, PathError, SegmentError) as err:
                    failed.append(f"{name}: {err}")
            self.errors.extend(failed)
            return self._event(kind="reconverge", reason=reason,
                               routes_ms=round(routes_ms, 3),
                               duration_ms=round((self.clock() - started) * 1000, 3),
                               policies_rerouted=rerouted, policies_failed=failed)

    def _install_igp(self, site: str, router: str, graph, igp) -> None:
        session = self.session(router)
        wanted = {spec["dst"]: spec for spec in igp_routes(graph, site, self.interfaces, igp=igp)}
        for spec in wanted.values():
            session.route("replace", spec)
        # A site cut off gets no new route: withdraw the old one instead of forwarding
        # into a link routing now considers down (an administrative down still carries packets).
        for dst, old in self.igp_installed.get(router, {}).items():
            if dst not in wanted:
                session.route("del", {"dst": dst, "oif": old["oif"], "priority": IGP_METRIC})
        self.igp_installed[router] = wanted

    def _replan(self, name: str, graph, igp) -> bool:
        """Plan ``name`` again on ``graph``; True if its path or its routes changed."""
        old = self.policies[name]
        others = [p for n, p in self.policies.items() if n != name]
        reservations = {k: v for k, v in reservations_of(others).items() if graph.has_edge(*k)}
        new = plan_policy(graph, old.spec, self.interfaces, self.hosts, igp=igp,
                          reservations_mbps=reservations, table=self.tables.get(name))
        if new.compiled != old.compiled:
            session = self.session(new.compiled.router)
            # Same destination, table and metric: "replace" swaps the route atomically.
            for spec in new.compiled.routes:
                session.route("replace", spec)
        # Kept even when the routes are the same: the same segments can take a new path
        # once the IGP moved, and the path decides reservations and which failures concern it.
        self.policies[name] = new
        return new.compiled != old.compiled or new.path.sites != old.path.sites

    # ------------------------------------------------------------ policies
    def add_policy(self, spec, table: int | None = None) -> dict:
        """Plan and install one SR policy; on any failure nothing of it stays installed.

        ``table``: the routing table of a flow policy (default the lowest free one); a
        restarted controller gives each the table it had.
        """
        with self.lock:
            planned = self._plan_new(spec, table)
            self._install(planned)
            self._register(planned)
            return planned.to_dict()

    def add_policies(self, specs) -> tuple[list[dict], list[tuple[str, Exception]]]:
        """Plan many policies, then install each headend's share in one batch.

        Each policy is planned as :meth:`add_policy` would (a refused one is
        reported and skipped). With a batch runner, the routes and rules of all
        planned policies go to each headend in one ``ip -batch``; if a batch
        fails, everything of this call is removed again and the policies are
        installed one by one, so each keeps its all-or-nothing guarantee.
        """
        with self.lock:
            planned_all, refused = [], []
            for spec in specs:
                try:
                    planned = self._plan_new(spec)
                except (PolicyConflict, PolicyError, PathError, SegmentError) as err:
                    refused.append((spec.name, err))
                    continue
                self._register(planned, event=False)  # later policies of the batch see it
                planned_all.append(planned)
            if self.batch_runner is None or not planned_all or self.adopt:
                installed = []
                for planned in planned_all:
                    self._unregister(planned)
                    try:
                        self._install(planned)
                    except Exception as err:
                        refused.append((planned.spec.name, err))
                        continue
                    self._register(planned)
                    installed.append(planned.to_dict())
                return installed, refused
            try:
                by_router: dict[str, tuple[list, list]] = {}
                for planned in planned_all:
                    routes, rules = by_router.setdefault(planned.compiled.router, ([], []))
                    routes += planned.compiled.routes
                    rules += planned.compiled.rules
                for router, (routes, rules) in by_router.items():
                    self.batch_runner(router, routes, rules)
            except Exception:
                for planned in planned_all:
                    self._unregister(planned)
                    self._remove(planned, quiet=True)  # whatever of the batch got in
                installed = []
                for planned in planned_all:
                    try:
                        installed.append(self.add_policy(planned.spec))
                    except Exception as err:
                        refused.append((planned.spec.name, err))
                return installed, refused
            for planned in planned_all:
                self._event(kind="policy_added", policy=planned.spec.name, path=list(planned.path.sites))
            return [p.to_dict() for p in planned_all], refused

    def _plan_new(self, spec, table: int | None = None):
        if spec.name in self.policies:
            raise PolicyConflict(f"policy {spec.name!r} exists already; delete it first or pick another name")
        graph = self.graph()
        if spec.headend not in graph:
            raise PolicyError(f"policy {spec.name!r}: headend {spec.headend!r} is not a site of this network")
        if getattr(spec, "flow", None) is None:
            table = None
        elif table is None or table in self._used_tables:
            table = self._free_table()
        # Reservations only matter to a bandwidth-constrained request: skip the sum otherwise.
        reservations = {}
        if spec.objective == "bandwidth":
            reservations = {k: v for k, v in reservations_of(self.policies.values()).items()
                            if graph.has_edge(*k)}
        planned = plan_policy(graph, spec, self.interfaces, self.hosts, igp=self.igp(),
                              reservations_mbps=reservations, table=table)
        steered = (planned.compiled.router, planned.policy.destination)
        if steered in self.steered:
            raise PolicyConflict(f"policy {spec.name!r}: policy {self.steered[steered]!r} already steers "
                                 f"{planned.policy.destination} at {spec.headend}")
        return planned

    def _register(self, planned, event: bool = True) -> None:
        name = planned.spec.name
        self.steered[(planned.compiled.router, planned.policy.destination)] = name
        self.policies[name] = planned
        if planned.policy.table is not None and getattr(planned.spec, "flow", None) is not None:
            self.tables[name] = planned.policy.table
            self._used_tables.add(planned.policy.table)
        if event:
            self._event(kind="policy_added", policy=name, path=list(planned.path.sites))

    def _unregister(self, planned) -> None:
        name = planned.spec.name
        self.policies.pop(name, None)
        table = self.tables.pop(name, None)
        if table is not None:
            self._used_tables.discard(table)
            self._table_hint = min(self._table_hint, table)
        self.steered.pop((planned.compiled.router, planned.policy.destination), None)

    def _remove(self, planned, quiet: bool = False) -> None:
        """Delete a policy's rules, then its routes, at its headend (``quiet``: ignore what fails)."""
        removal = planned.compiled.removal()
        session = self.session(removal.router)
        for delete, specs in ((session.rule, removal.rules), (session.route, removal.routes)):
            for spec in specs:
                try:
                    delete("del", spec)
                except Exception:
                    if not quiet:
                        raise

    def _free_table(self) -> int:
        """The lowest flow table no policy holds (a hint skips the ones known to be taken)."""
        table = self._table_hint
        while table in self._used_tables:
            table += 1
        self._table_hint = table
        return table

    def _install(self, planned) -> None:
        session = self.session(planned.compiled.router)
        done = []
        try:
            for spec in planned.compiled.routes:
                session.route("replace" if self.adopt else "add", spec)
                done.append(("route", spec))
            for spec in planned.compiled.rules:
                try:
                    session.rule("add", spec)
                except Exception as err:
                    if not (self.adopt and "File exists" in str(err)):
                        raise
                done.append(("rule", spec))
        except Exception:
            removal = planned.compiled.removal()
            for kind, spec in reversed(done):
                if kind == "rule":
                    session.rule("del", spec)
                else:
                    session.route("del", removal.routes[planned.compiled.routes.index(spec)])
            raise

    def delete_policy(self, name: str) -> dict:
        with self.lock:
            planned = self.policies.get(name)
            if planned is None:
                raise UnknownPolicy(f"no policy named {name!r}; `cpn policy list` shows the installed ones")
            self._remove(planned)
            self._unregister(planned)
            self._event(kind="policy_deleted", policy=name)
            return planned.to_dict()

    def list_policies(self) -> list[dict]:
        with self.lock:
            return [p.to_dict() for p in self.policies.values()]

    def get_policy(self, name: str) -> dict:
        with self.lock:
            if name not in self.policies:
                raise UnknownPolicy(f"no policy named {name!r}; `cpn policy list` shows the installed ones")
            return self.policies[name].to_dict()

    def status(self) -> dict:
        with self.lock:
            return {"dataplane": self.dataplane, "frr": self.frr, "links_down": sorted("-".join(sorted(k)) for k in self.down),
                    "routes": dict(self.routes_installed),
                    "backups": {r: len(b) for r, b in self.backups.items()},
                    "policies": sorted(self.policies), "events": self.events[-20:],
                    "errors": self.errors[-20:]}


class _SessionProxy:
    """Forwards ``route``, ``rule``, ``routes`` and ``carrier`` to the core's netlink thread."""

    def __init__(self, core: ControllerCore, router: str) -> None:
        self.core = core
        self.router = router

    def route(self, op: str, spec: dict):
        return self.core._call(self.router, "route", op, spec)

    def rule(self, op: str, spec: dict):
        return self.core._call(self.router, "rule", op, spec)

    def routes(self, *args):
        return self.core._call(self.router, "routes", *args)

    def carrier(self, name: str) -> bool:
        return self.core._call(self.router, "carrier", name)

    def batch(self, routes: list, rules: list) -> None:
        """Many route and rule specs in one go (the eBPF driver: map updates plus one ``ip -batch``)."""
        return self.core._call(self.router, "batch", routes, rules)

    def boundary(self, hosts) -> None:
        """The SR domain boundary in the driver's own terms (eBPF); the kernel driver has nft's."""
        return self.core._call(self.router, "boundary", hosts)
