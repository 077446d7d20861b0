"""Network slices in the controller: admission, realisation and removal, at boot and at runtime.

A slice request (declared in the topology file, or ``cpn slice add`` / ``POST
/slices`` at runtime) goes through:

1. admission (:func:`cpn_net.slicing.admission.admit`) against the slices in
   force, all or nothing; a refusal names the bottleneck link and shortfall
   and installs nothing;
2. realisation (:mod:`cpn_net.slicing.realise`), each step undone if a later
   one fails, so nothing partial stays installed:

   * routers (netlink): the slice's table ``100 + id`` at each member site
     with the member hosts' routes, an End.DT6 SID into it, and (isolated
     slices) a blackhole for the member hosts in the main table, so only
     traffic decapsulated by the slice's own SID reaches them; then one SR
     policy per pair of member hosts at different sites (a rule ``from src to
     dst iif LAN`` into the slice table, whose route encapsulates onto the
     admitted path ending with the far site's End.DT6 SID);
   * routers (``tc``): per-slice HTB classes on every WAN interface of a
     shaped link the slice crosses, keyed on the slice's mark in the traffic
     class (admission gives each slice a mark no slice sharing a link holds);
   * site switches (OpenFlow): marking of member-to-member traffic with the
     slice's mark in the DSCP (composed with the alternate-marking colour, re-sent at
     every colour flip), meters where the intent asks for one, and for member
     ports anti-spoofing (only the host's own addresses pass) and the SR
     domain boundary (no packet to a SID).

Deleting a slice removes the same things in reverse and releases its capacity.
"""

from __future__ import annotations

import logging
import threading
import time

from controllers.southbound.netns import run_in
from cpn_net.model.slices import parse_slice
from cpn_net.slicing.admission import admit
from cpn_net.slicing.errors import SliceRefused, SlicingError
from cpn_net.slicing.isolation import boundary_hosts, boundary_ruleset, router_state, slice_policies, switch_guard_flows
from cpn_net.slicing.realise import (classification_flows, meter_specs, queue_commands, slice_class,
                                     slice_filter_handle)

LOG = logging.getLogger("cpn.slices")


class SliceConflict(Exception):
    """A slice with that name is in force already."""


class UnknownSlice(KeyError):
    """No slice of that name is in force."""

    def __str__(self) -> str:
        return self.args[0]




class SliceService:
    """The slices in force on the running network.

    Parameters
    ----------
    core : controllers.core.ControllerCore
        Netlink sessions, plan, graph, interface plan.
    topology : cpn_net.model.topology.Topology
        The topology snapshot; its ``slices`` are admitted by :meth:`start`.
    apply_flows : callable, optional
        ``apply_flows(before, after)``: ``{dpid: [FlowSpec]}`` of this
        service's switch flows before and after a change; the os-ken app adds
        ``after`` and deletes what of ``before`` is gone.
    apply_meters : callable, optional
        ``apply_meters(meters, command)`` with ``command`` ``"add"`` or ``"delete"``.
    colour : callable, optional
        The current alternate-marking colour.
    run_tc : callable, optional
        ``run_tc(router, commands)``: apply ``tc`` commands in a router; default
        one ``tc -batch`` in its namespace.
    """

    def __init__(self, core, topology, apply_flows=None, apply_meters=None, colour=lambda: 0,
                 run_tc=None, clock=time.monotonic) -> None:
        self.core = core
        self.topology = topology
        self.apply_flows = apply_flows or (lambda before, after: None)
        self.apply_meters = apply_meters or (lambda meters, command: None)
        self.colour = colour
        self.run_tc = run_tc or _tc_batch
        self.clock = clock
        self.specs: dict = {}        # name -> SliceSpec in force, in admission order
        self.admitted: dict = {}     # name -> Admission
        self.installed: dict[str, list] = {}  # name -> [(kind, router, spec)] in install order
        self.refused: dict[str, str] = {}
        self.enforced_ms: dict[str, float] = {}
        self.queues: dict[tuple[str, str], list] = {}  # (site, ifname) -> tc commands applied
        self.boundary = False
        self.lock = threading.RLock()

    # ------------------------------------------------------------ requests
    def start(self) -> None:
        """Admit and realise the topology's declared slices in file order; refusals are recorded."""
        for spec in self.topology.slices:
            try:
                self.add(spec)
            except (SliceRefused, SlicingError) as err:
                self.refused[spec.name] = str(err)
                LOG.warning("slice %s refused: %s", spec.name, err)

    def parse(self, body):
        """Check a runtime request against the topology and the slices in force.

        Raises
        ------
        cpn_net.model.TopologyError
            With every problem found (422 on the northbound).
        """
        with self.lock:
            in_force = tuple(self.specs.values())
        return parse_slice(body, _with_slices(self.topology, in_force))

    def add(self, spec) -> dict:
        """Admit and realise one slice; nothing of it stays installed on failure.

        Returns
        -------
        dict
            :meth:`get` of the new slice, with ``enforced_ms``: milliseconds
            from the call until every router and switch change was made.

        Raises
        ------
        SliceConflict
            A slice with this name is in force (409).
        cpn_net.slicing.errors.SliceRefused
            Admission refused it; ``.link`` / ``.shortfall_mbps`` name the bottleneck (409).
        cpn_net.slicing.errors.SlicingError
            The request cannot be realised on this network (422).
        RuntimeError
            A router or switch refused a change; everything of the slice was removed again (500).
        """
        started = self.clock()
        with self.lock:
            if spec.name in self.specs:
                raise SliceConflict(f"slice {spec.name!r} is in force already; delete it first or pick another name")
            clash = [s.name for s in self.specs.values() if s.id == spec.id]
            if clash:
                raise SliceConflict(f"slice {spec.name!r}: id {spec.id} is used by slice {clash[0]!r}; "
                                    "omit the id to get a free one")
            graph = self.core.graph()
            admission = admit(graph, self.admitted, spec)
            flows_before = self.flows(self.colour())
            done: list = []
            try:
                for state in router_state(self.topology, self.core.interfaces, spec).values():
                    self._add_state(done, state.router, state.routes, state.rules)
                for compiled in slice_policies(graph, self.topology, self.core.interfaces, spec, admission,
                                               igp=self.core.igp()):
                    self._add_state(done, compiled.router, compiled.routes, compiled.rules)
                if spec.isolation and not self.boundary:
                    self._install_boundary()
                self.specs[spec.name] = spec
                self.admitted[spec.name] = admission
                self._apply_queues(removed=None)
                meters = meter_specs(self.topology, [spec])
                if meters:
                    self.apply_meters(meters, "add")
                self.apply_flows(flows_before, self.flows(self.colour()))
            except Exception as err:
                LOG.exception("realising slice %s failed; rolling back", spec.name)
                self.specs.pop(spec.name, None)
                self.admitted.pop(spec.name, None)
                self._undo(done)
                self._rollback_quietly(flows_before, spec, admission)
                raise RuntimeError(f"realising slice {spec.name!r} failed and was rolled back: {err}") from err
            self.installed[spec.name] = done
            self.refused.pop(spec.name, None)
            self.enforced_ms[spec.name] = round((self.clock() - started) * 1000, 3)
            self.core._event(kind="slice_added", slice=spec.name, enforced_ms=self.enforced_ms[spec.name])
            return self.get(spec.name)

    def delete(self, name: str) -> dict:
        """Remove a slice everywhere and release its capacity; returns what :meth:`get` gave.

        Raises
        ------
        UnknownSlice
        """
        with self.lock:
            if name not in self.specs:
                raise UnknownSlice(f"no slice named {name!r} is in force; `cpn slice list` shows them")
            shown = self.get(name)
            spec = self.specs[name]
            flows_before = self.flows(self.colour())
            del self.specs[name]
            del self.admitted[name]
            self.apply_flows(flows_before, self.flows(self.colour()))
            meters = meter_specs(self.topology, [spec])
            if meters:
                self.apply_meters(meters, "delete")
            self._apply_queues(removed=spec.id)
            self._undo(self.installed.pop(name, []))
            self.enforced_ms.pop(name, None)
            self.core._event(kind="slice_deleted", slice=name)
            return shown

    def list(self) -> list[dict]:
        """Every slice in force (then every refused declaration), as :meth:`get` gives them."""
        with self.lock:
            return [self.get(n) for n in [*self.specs, *(r for r in self.refused if r not in self.specs)]]

    def get(self, name: str) -> dict:
        """One slice: its intent, state (``admitted``/``refused``), paths and reservations.

        Raises
        ------
        UnknownSlice
        """
        with self.lock:
            spec = self.specs.get(name) or next((s for s in self.topology.slices if s.name == name), None)
            if spec is None or (name not in self.specs and name not in self.refused):
                raise UnknownSlice(f"no slice named {name!r}; `cpn slice list` shows them")
            admission = self.admitted.get(name)
            return {"name": spec.name, "id": spec.id, "kind": spec.kind, "members": list(spec.members),
                    "hosts": list(spec.hosts), "sites": list(spec.sites), "rate_mbps": spec.rate_mbps,
                    "max_latency_ms": spec.max_latency_ms, "max_loss_pct": spec.max_loss_pct,
                    "meter_mbps": spec.meter_mbps, "isolation": spec.isolation,
                    "state": "admitted" if admission is not None else "refused",
                    "mark": admission.mark if admission is not None else None,
                    "paths": {f"{a}->{b}": list(p.sites) for (a, b), p in admission.paths.items()}
                    if admission is not None else {},
                    "enforced_ms": self.enforced_ms.get(name),
                    "refusal": self.refused.get(name)}

    def status(self, telemetry_view=None) -> dict:
        """Per-slice SLO monitoring: measured delay/loss per member-site path against the bounds.

        ``{"slices": {name: {..get().., "slo": {...}}}, "violations": [...]}``;
        without telemetry every measurement is None.
        """
        from cpn_net.slicing.monitor import slo_status

        with self.lock:
            shown = {n: self.get(n) for n in self.specs}
            measured = slo_status(dict(self.admitted), dict(self.specs), telemetry_view or {"links": []})
        for name, entry in shown.items():
            entry["slo"] = measured["slices"].get(name, {})
        return {"slices": shown, "violations": measured["violations"],
                "refused": {n: r for n, r in self.refused.items() if n not in self.specs}}

    # ------------------------------------------------------------ switches
    def flows(self, colour: int) -> dict:
        """Marking, anti-spoofing and separation flows per datapath in ``colour``'s period."""
        with self.lock:
            return self._switch_flows(list(self.specs.values()), colour, self._marks())

    def _marks(self) -> dict:
        return {name: a.mark for name, a in self.admitted.items()}

    def _switch_flows(self, specs, colour: int, marks) -> dict:
        if not specs:
            return {}
        return _union(classification_flows(self.core.plan, specs, colour, marks),
                      switch_guard_flows(self.core.plan, self.topology, specs, colour))

    def meters(self) -> dict:
        """``{dpid: [MeterSpec]}`` of the slices in force (sent to a switch when it connects)."""
        with self.lock:
            return meter_specs(self.topology, list(self.specs.values()))

    def view(self) -> dict:
        with self.lock:
            return {"admitted": {name: {"rate_mbps": a.rate_mbps, "slice_id": a.slice_id, "mark": a.mark,
                                        "enforced_ms": self.enforced_ms.get(name),
                                        "paths": {f"{x}->{y}": list(p.sites) for (x, y), p in a.paths.items()}}
                                 for name, a in self.admitted.items()},
                    "refused": {n: r for n, r in self.refused.items() if n not in self.specs}}

    # ------------------------------------------------------------ helpers
    def _add_state(self, done: list, router: str, routes, rules) -> None:
        session = self.core.session(router)
        for spec in routes:
            session.route("add", spec)
            done.append(("route", router, spec))
        for spec in rules:
            session.rule("add", spec)
            done.append(("rule", router, spec))

    def _undo(self, done: list) -> None:
        """Delete what ``done`` lists, newest first; keeps going past failures (logged)."""
        for kind, router, spec in reversed(done):
            try:
                session = self.core.session(router)
                (session.rule if kind == "rule" else session.route)("del", spec)
            except Exception:
                LOG.exception("removing %s %s on %s", kind, spec, router)

    def _rollback_quietly(self, flows_before, spec, admission) -> None:
        """After a failed add: queues, switch flows and meters back to ``flows_before``'s state."""
        steps = (lambda: self._apply_queues(removed=spec.id),
                 lambda: self.apply_flows(_union(flows_before, self._stale(spec, admission)), flows_before),
                 lambda: self.apply_meters(meter_specs(self.topology, [spec]), "delete"))
        for step in steps if spec.meter_mbps is not None else steps[:2]:
            try:
                step()
            except Exception:
                LOG.exception("rolling back slice %s", spec.name)

    def _stale(self, spec, admission) -> dict:
        """The flows ``spec`` would have added (so a rollback deletes whatever of them got in)."""
        return self._switch_flows([*self.specs.values(), spec], self.colour(),
                                  {**self._marks(), spec.name: admission.mark})

    def _apply_queues(self, removed: int | None) -> None:
        """Bring every shaped WAN interface's HTB to what the admitted slices need.

        ``removed``: a slice id whose class and filter go first where it had one.
        """
        admissions = list(self.admitted.values())
        wanted = queue_commands(self.core.graph(), self.core.interfaces, admissions) \
            if admissions or self.queues else {}
        by_router: dict[str, list] = {}
        for (site, ifname), commands in wanted.items():
            applied = self.queues.get((site, ifname))
            if applied == commands:
                continue
            lines = []
            if removed is not None and applied is not None and any(slice_class(removed) in c for c in applied):
                lines += [["tc", "filter", "del", "dev", ifname, "parent", "1:", "protocol", "ipv6", "prio", "1",
                           "handle", slice_filter_handle(removed), "u32"],
                          ["tc", "class", "del", "dev", ifname, "classid", slice_class(removed)]]
            if applied is not None:  # HTB has no "change" for its root: keep the one in place
                lines += [c for c in commands if c[:3] != ["tc", "qdisc", "replace"] or "root" not in c]
            else:
                lines += commands
            by_router.setdefault(self.core.routers[site], []).extend(lines)
            self.queues[(site, ifname)] = commands
        for router, commands in by_router.items():
            self.run_tc(router, commands)

    def _install_boundary(self) -> None:
        hosts = boundary_hosts(self.core.plan)
        for router in self.core.plan.nodes_of("router"):
            run_in(router.name, ["nft", "-f", "-"], stdin=boundary_ruleset(self.core.plan, router.site_id),
                   timeout_s=10)
            # The eBPF data plane rewrites a packet before nftables sees it: its SID program
            # drops those packets itself (the kernel driver leaves this to nftables).
            self.core.session(router.name).boundary(hosts)
        self.boundary = True


def _tc_batch(router: str, commands: list) -> None:
    """All ``tc`` commands for one router in one ``tc -batch`` process in its namespace."""
    run_in(router, ["tc", "-batch", "-"], stdin="".join(" ".join(c[1:]) + "\n" for c in commands), timeout_s=20)


def _union(a: dict, b: dict) -> dict:
    out = {k: list(v) for k, v in a.items()}
    for k, v in b.items():
        out.setdefault(k, []).extend(v)
    return out


def _with_slices(topology, slices):
    """The topology with ``slices`` as its slices (runtime requests are checked against those in force)."""
    import dataclasses

    return dataclasses.replace(topology, slices=tuple(slices))
