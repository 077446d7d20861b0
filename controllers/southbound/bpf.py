"""The eBPF southbound driver: the same route and rule specs, realised with BPF maps.

:class:`RouterBpf` answers the calls of :class:`~controllers.southbound.netlink.RouterNetlink`
(``route``, ``rule``, ``routes``, ``carrier``, ``subscribe_links``, ``close``) for a
router whose kernel has no seg6, so the controller core, the slice and the steering
services hand it the specs they hand the kernel driver. What each spec becomes:

* ``encap seg6local`` (a local SID): an entry in the router's ``cpn_sids`` map. The
  ingress program does the header work; the choice of neighbour (End.X, End.DX6) or
  table (End.DT6) goes to Linux policy routing as a mark: ``ip -6 rule fwmark M
  lookup T``, where table T holds one default route via the neighbour (End.X,
  End.DX6) or is the slice's own table (End.DT6).
* ``encap seg6`` (H.Encaps / H.Encaps.Red, a policy route): a plain kernel route in
  the same table, towards the neighbour on the spec's interface, whose metric is a
  slot of its own (:func:`cpn_net.dataplane.records.kernel_metric`); the prebuilt
  outer header sits in ``cpn_encaps`` under that metric and the destination prefix
  in ``cpn_prefixes``. The egress program finds the route the stack used.
* anything else: the kernel route, its metric scaled like the policy routes' so
  that policies (100) < IGP (1024) < backups (2048) still hold.

A headend's own End / End.X SIDs at the front of a list are applied ahead (the
outer header leaves with them done, towards the End.X neighbour), as the kernel
would after re-routing the encapsulated packet.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
from dataclasses import dataclass, field

from controllers.southbound import ipbatch
from controllers.southbound.netlink import NetlinkError, RouterNetlink
from cpn_net.dataplane import attach, bpfsys
from cpn_net.dataplane import records as R
from cpn_net.model import addressing

MAP_SIZES = {"cpn_sids": (16, 12), "cpn_encaps": (4, 8 + R.MAX_HEADER), "cpn_prefixes": (20, 4),
             "cpn_hosts": (16, 1), "cpn_config": (4, 4), "cpn_stats": (4, 8)}


@functools.lru_cache(maxsize=1 << 14)
def _prefix(dst: str) -> str:
    if dst in ("default", "::/0"):
        return "::/0"
    return str(ipaddress.IPv6Network(dst, strict=False))


@dataclass
class _Route:
    """A route spec as installed: its kernel metric, and its encap key when it is a policy route."""

    spec: dict
    metric: int
    slot: int = 0
    prefix: str = ""

    @property
    def encap(self) -> bool:
        return self.slot != 0


@dataclass
class _Sid:
    entry: R.SidEntry
    spec: dict
    index: int
    routes: list = field(default_factory=list)
    rules: list = field(default_factory=list)


class RouterBpf:
    """The eBPF driver for one router (one instance per router, used from one thread).

    Parameters
    ----------
    router : str
        Router name (``r<site>``).
    plan : NetworkPlan
        Gives the router's interfaces and addresses, and each WAN interface's neighbour.
    run_dir : str
        The run directory: maps are pinned under ``<run_dir>/bpf/<router>/maps``.
    kernel : RouterNetlink, optional
        The netlink session for kernel routes and rules (opened here by default).
    maps : dict, optional
        ``{map name: object with update / delete / lookup}``; the pinned maps by default.
    """

    def __init__(self, router: str, *, plan, run_dir: str, kernel=None, maps=None) -> None:
        self.router = router
        node = plan.node(router)
        self.site_id = node.site_id
        self.lan = next(i.name for i in node.interfaces if i.peer_node.startswith("s"))
        self.addresses = {i.name: i.addresses[0].split("/")[0] for i in node.interfaces if i.addresses}
        self.neighbours = {}
        for link in plan.wan_links:
            if link.router_a == router:
                self.neighbours[link.intf_a] = link.address_b
            if link.router_b == router:
                self.neighbours[link.intf_b] = link.address_a
        self.maps = maps if maps is not None else self._open_maps(run_dir)
        self.kernel = kernel if kernel is not None else RouterNetlink(router)
        self.installed: dict[tuple, _Route] = {}  # (table, prefix, project metric) -> route
        self.sids: dict[str, _Sid] = {}
        self.prefix_refs: dict[str, int] = {}
        self.free_slots: dict[int, list[int]] = {}
        self.next_slot: dict[int, int] = {}
        self.free_indexes: list[int] = []
        self.next_index = 1
        self.kernel.rule("del", _fallback_rule())
        self.kernel.rule("add", _fallback_rule())

    def adopt(self, routes: list[dict], rules: list[dict]) -> None:
        """Take over what an earlier controller installed: the pinned maps and the kernel's routes.

        ``routes`` and ``rules`` are the router's kernel routes and rules as
        :func:`cpn_net.dataplane.show.kernel_routes` / ``kernel_rules`` read them. Afterwards a
        ``replace`` of the same spec changes nothing on the wire (same SID entry, same slot,
        same metric), so a restarted controller re-installs its state without a gap.
        """
        defaults = {r["table"]: r for r in routes if _prefix(r["dst"]) == "::/0"}
        tables = {r["fwmark"]: r["table"] for r in rules
                  if r.get("fwmark") is not None and r["fwmark"] & R.MARK_MASK == R.MARK_BASE and r.get("table")}
        for key, value in self.maps["cpn_sids"].items():
            entry = R.SidEntry.unpack(value)
            sid = str(ipaddress.IPv6Address(key))
            encap = {"type": "seg6local", "action": entry.action.behaviour}
            spec = {"dst": f"{sid}/128", "encap": encap}
            installed = _Sid(entry, spec, 0)
            if entry.mark:
                installed.index = entry.mark - R.MARK_BASE
                table = tables.get(entry.mark)
                if table is not None:
                    installed.rules.append({"priority": R.RULE_PRIORITY, "fwmark": entry.mark, "table": table})
                via = defaults.get(R.TABLE_BASE + installed.index)
                if entry.action in (R.Action.END_X, R.Action.END_DX6) and via is not None:
                    spec["oif"], encap["nh6"] = via["dev"], via["gateway"]
                    installed.routes.append({"dst": "::/0", "table": R.TABLE_BASE + installed.index,
                                             "gateway": via["gateway"], "oif": via["dev"],
                                             "priority": R.kernel_metric(R.DEFAULT_METRIC, 0)})
                elif entry.action is R.Action.END_DT6 and table is not None:
                    encap["table"] = table
            elif entry.encap:
                installed.index = entry.encap - R.BINDING_KEY_BASE
                bound = self.maps["cpn_encaps"].lookup(R.u32_key(entry.encap))
                if bound is not None:
                    encap["srh"] = {"segs": list(R.EncapEntry.unpack(bound).segments)}
            self.sids[sid] = installed
        indexes = {s.index for s in self.sids.values() if s.index}
        self.next_index = max(indexes, default=0) + 1
        self.free_indexes = sorted(set(range(1, self.next_index)) - indexes, reverse=True)
        internal = {R.TABLE_BASE + i for i in indexes}
        for route in routes:
            metric, table = route.get("metric"), route.get("table", R.MAIN_TABLE)
            if metric is None or metric < (1 << R.METRIC_SHIFT) or table in internal or route.get("type") not in \
                    (None, "unicast"):
                continue
            prefix, priority, slot = _prefix(route["dst"]), R.project_metric(metric), metric & R.MAX_SLOT
            spec = {"dst": prefix, "table": table, "oif": route.get("dev"), "priority": priority}
            if slot:
                if self.maps["cpn_encaps"].lookup(R.u32_key(metric)) is None:
                    continue
                self._prefix_ref(prefix, +1)
                self.next_slot[priority] = max(self.next_slot.get(priority, 1), slot + 1)
            elif route.get("gateway"):
                spec["gateway"] = route["gateway"]
            self.installed[(table, prefix, priority)] = _Route(spec, metric, slot, prefix)

    def _open_maps(self, run_dir: str) -> dict:
        where = os.path.join(attach.pin_dir(run_dir, self.router), "maps")
        maps = {}
        try:
            for name, (key, value) in MAP_SIZES.items():
                maps[name] = bpfsys.PinnedMap(os.path.join(where, name), key, value)
        except OSError as err:
            for pinned in maps.values():
                pinned.close()
            raise NetlinkError(f"router {self.router}: the eBPF data plane is not attached ({err}); "
                               "was the network booted with --dataplane bpf?") from err
        return maps

    # ------------------------------------------------------------------ routes
    def route(self, op: str, spec: dict) -> None:
        encap = spec.get("encap") or {}
        if encap.get("type") == "seg6local":
            self._local_sid(op, spec)
            return
        key = (int(spec.get("table", R.MAIN_TABLE)), _prefix(spec["dst"]),
               int(spec.get("priority") or R.DEFAULT_METRIC))
        old = self.installed.get(key)
        if op == "del":
            sid = str(ipaddress.IPv6Network(key[1]).network_address) if key[1].endswith("/128") else None
            if old is None and sid in self.sids and key[0] == R.MAIN_TABLE and key[2] == R.DEFAULT_METRIC and \
                    spec.get("oif") in (None, self.sids[sid].spec.get("oif", spec.get("oif"))):
                # a local SID named without its encap (CompiledPolicy.removal()): the kernel deletes it so
                self._remove_sid(sid, self.sids[sid])
                return
            if old is None:  # not installed by this session: a plain route, as the kernel driver would
                self.kernel.route("del", self._kernel_spec(spec, R.kernel_metric(key[2], 0)))
                return
            self._remove(key, old)
            return
        if op == "add" and old is not None:
            raise NetlinkError(f"router {self.router}: route add {spec['dst']} metric {key[2]}: "
                               f"{(errno.EEXIST, 'File exists')}")
        if encap.get("type") == "seg6":
            self._policy_route(op, key, spec, old)
        elif encap:
            raise NetlinkError(f"router {self.router}: route {spec['dst']}: encap {encap.get('type')!r} "
                               "is not supported by the eBPF data plane")
        else:
            self._plain_route(op, key, spec, old)

    def _kernel_spec(self, spec: dict, metric: int, **extra) -> dict:
        out = {k: v for k, v in spec.items() if k != "encap"}
        out.update(extra, priority=metric)
        return out

    def _plain_route(self, op: str, key: tuple, spec: dict, old: _Route | None) -> None:
        metric = R.kernel_metric(key[2], 0)
        self.kernel.route("replace" if old is not None else op, self._kernel_spec(spec, metric))
        if old is not None and old.encap:  # its own metric: another kernel route, now uncovered
            self.kernel.route("del", self._kernel_spec(old.spec, old.metric))
            self._remove_policy(old)
        self.installed[key] = _Route(dict(spec), metric)

    def _policy_route(self, op: str, key: tuple, spec: dict, old: _Route | None) -> None:
        header, oif, gateway = self._outer_header(spec)
        slot = old.slot if old is not None and old.encap else self._alloc_slot(key[2])
        metric = R.kernel_metric(key[2], slot)
        self.maps["cpn_encaps"].update(R.u32_key(metric), header.pack())
        fresh = old is None or not old.encap
        if fresh:
            self._prefix_ref(key[1], +1)
        try:
            self.kernel.route("replace" if old is not None else op,
                              self._kernel_spec(spec, metric, oif=oif, gateway=gateway))
        except Exception:
            if fresh:
                self.maps["cpn_encaps"].delete(R.u32_key(metric))
                self._prefix_ref(key[1], -1)
                self._free_slot(key[2], slot)
            raise
        if old is not None and not old.encap:
            self.kernel.route("del", self._kernel_spec(old.spec, old.metric))
        self.installed[key] = _Route(dict(spec), metric, slot, key[1])

    def _outer_header(self, spec: dict) -> tuple[R.EncapEntry, str, str]:
        """The prebuilt outer header of a policy route, and where it leaves (interface, neighbour)."""
        encap = spec["encap"]
        travel = list(reversed(encap["segs"]))  # specs hold SRH order
        oif = spec.get("oif")
        advanced = 0
        while advanced < len(travel) - 1:  # the headend's own End / End.X at the front: done ahead
            sid = self.sids.get(str(ipaddress.IPv6Address(travel[advanced])))
            if sid is None or sid.entry.action not in (R.Action.END, R.Action.END_X):
                break
            if sid.entry.action is R.Action.END_X:
                oif = sid.spec["oif"]
            advanced += 1
        if advanced and str(ipaddress.IPv6Address(travel[advanced])) in self.sids:
            raise NetlinkError(f"router {self.router}: route {spec['dst']}: segment {travel[advanced]} is "
                               "this router's own End.DX6 / End.DT6 / binding SID after its End.X: the eBPF "
                               "data plane encapsulates towards a neighbour")
        gateway = self.neighbours.get(oif)
        if gateway is None:
            raise NetlinkError(f"router {self.router}: route {spec['dst']}: the first segment "
                               f"{travel[advanced]} is this router's own, reached through {oif}: the eBPF data "
                               "plane encapsulates towards a WAN neighbour only")
        try:
            header = R.EncapEntry.for_segments(self.addresses[oif], travel, reduced=encap.get("mode") == "encap.red",
                                               advanced=advanced)
        except ValueError as err:
            raise NetlinkError(f"router {self.router}: route {spec['dst']}: {err}") from err
        return header, oif, gateway

    def _remove(self, key: tuple, old: _Route) -> None:
        self.kernel.route("del", self._kernel_spec(old.spec, old.metric))
        if old.encap:
            self._remove_policy(old)
        del self.installed[key]

    def _remove_policy(self, old: _Route) -> None:
        self.maps["cpn_encaps"].delete(R.u32_key(old.metric))
        self._prefix_ref(old.prefix, -1)
        self._free_slot(R.project_metric(old.metric), old.slot)

    def _prefix_ref(self, prefix: str, delta: int) -> None:
        count = self.prefix_refs.get(prefix, 0) + delta
        if count > 0:
            if delta > 0 and count == 1:
                self.maps["cpn_prefixes"].update(R.prefix_key(prefix), R.u32_key(1))
            self.prefix_refs[prefix] = count
        else:
            self.prefix_refs.pop(prefix, None)
            self.maps["cpn_prefixes"].delete(R.prefix_key(prefix))

    def _alloc_slot(self, priority: int) -> int:
        free = self.free_slots.get(priority)
        if free:
            return free.pop()
        slot = self.next_slot.get(priority, 1)
        if slot > R.MAX_SLOT:
            raise NetlinkError(f"router {self.router}: more than {R.MAX_SLOT} policy routes of metric {priority}")
        self.next_slot[priority] = slot + 1
        return slot

    def _free_slot(self, priority: int, slot: int) -> None:
        if slot:
            self.free_slots.setdefault(priority, []).append(slot)

    # -------------------------------------------------------------- local SIDs
    def _local_sid(self, op: str, spec: dict) -> None:
        sid = str(ipaddress.IPv6Network(spec["dst"], strict=False).network_address)
        old = self.sids.get(sid)
        if op == "del":
            if old is not None:
                self._remove_sid(sid, old)
            return
        if op == "add" and old is not None:
            raise NetlinkError(f"router {self.router}: route add {spec['dst']} (local SID): "
                               f"{(errno.EEXIST, 'File exists')}")
        if old is not None:
            if _sid_identity(old.spec) == _sid_identity(spec):
                return  # the same behaviour (a restarted controller's baseline): nothing to change
            self._remove_sid(sid, old)
        encap = spec["encap"]
        try:
            action = R.Action.named(encap["action"])
        except ValueError as err:
            raise NetlinkError(f"router {self.router}: route {spec['dst']}: {err}") from None
        needs_index = action in (R.Action.END_X, R.Action.END_DX6, R.Action.END_B6_ENCAPS) or (
            action is R.Action.END_DT6 and int(encap.get("table", R.MAIN_TABLE)) != R.MAIN_TABLE)
        index = (self.free_indexes.pop() if self.free_indexes else self._next_index()) if needs_index else 0
        mark = R.MARK_BASE + index
        table = R.TABLE_BASE + index
        installed = _Sid(R.SidEntry(action), dict(spec), index)
        try:
            if action in (R.Action.END_X, R.Action.END_DX6):
                route = {"dst": "::/0", "table": table, "gateway": encap["nh6"], "oif": spec["oif"],
                         "priority": R.kernel_metric(R.DEFAULT_METRIC, 0)}
                self.kernel.route("replace", route)
                installed.routes.append(route)
                installed.rules.append(self._mark_rule(mark, table))
                installed.entry = R.SidEntry(action, mark=mark)
            elif action is R.Action.END_DT6 and index:
                installed.rules.append(self._mark_rule(mark, int(encap["table"])))
                installed.entry = R.SidEntry(action, mark=mark)
            elif action is R.Action.END_B6_ENCAPS:
                travel = list(reversed(encap["srh"]["segs"]))
                header = R.EncapEntry.for_segments(str(addressing.router_lan_address(self.site_id)), travel)
                key = R.BINDING_KEY_BASE + index
                self.maps["cpn_encaps"].update(R.u32_key(key), header.pack())
                installed.entry = R.SidEntry(action, encap=key)
            self.maps["cpn_sids"].update(R.address_key(sid), installed.entry.pack())
        except Exception as err:
            self._undo_sid(installed)
            if index:
                self.free_indexes.append(index)
            if isinstance(err, ValueError):
                raise NetlinkError(f"router {self.router}: route {spec['dst']}: {err}") from err
            raise
        self.sids[sid] = installed

    def _next_index(self) -> int:
        index = self.next_index
        self.next_index += 1
        return index

    def _mark_rule(self, mark: int, table: int) -> dict:
        rule = {"priority": R.RULE_PRIORITY, "fwmark": mark, "table": table}
        self.kernel.rule("del", rule)
        self.kernel.rule("add", rule)
        return rule

    def _remove_sid(self, sid: str, old: _Sid) -> None:
        self.maps["cpn_sids"].delete(R.address_key(sid))
        self._undo_sid(old)
        del self.sids[sid]
        if old.index:
            self.free_indexes.append(old.index)

    def _undo_sid(self, sid: _Sid) -> None:
        for rule in sid.rules:
            self.kernel.rule("del", rule)
        for route in sid.routes:
            self.kernel.route("del", route)
        if sid.entry.action is R.Action.END_B6_ENCAPS and sid.entry.encap:
            self.maps["cpn_encaps"].delete(R.u32_key(sid.entry.encap))

    def batch(self, routes: list, rules: list) -> None:
        """Add many route and rule specs: map entries now, the kernel's share in one ``ip -batch``.

        On failure the specs stay registered: the caller removes them (``route("del")``), which
        takes whatever of them reached the kernel and the maps.
        """
        kernel, collector = self.kernel, _Collector()
        self.kernel = collector
        try:
            for spec in routes:
                self.route("add", spec)
            for spec in rules:
                self.rule("add", spec)
        finally:
            self.kernel = kernel
        ipbatch.run_batch(self.router, collector.lines)

    # -------------------------------------------------------- rules and the rest
    def rule(self, op: str, spec: dict) -> None:
        self.kernel.rule(op, spec)

    def boundary(self, hosts) -> None:
        """Turn the SR domain boundary on: ``hosts`` may not address delivering SIDs."""
        for host in hosts:
            self.maps["cpn_hosts"].update(R.address_key(host), b"\x01")
        self.maps["cpn_config"].update(R.u32_key(0), R.u32_key(1))

    def routes(self, table: int | None = None) -> list[dict]:
        """The kernel's routes with the project's metrics, policy routes marked ``seg6``."""
        by_metric = {route.metric: route for route in self.installed.values()}
        out = []
        for route in self.kernel.routes(table):
            metric = route.get("metric")
            ours = by_metric.get(metric)
            if metric is not None and metric >= (1 << R.METRIC_SHIFT):
                route = dict(route, metric=R.project_metric(metric))
            if ours is not None and ours.encap:
                route = dict(route, encap="seg6")
            out.append(route)
        return out

    def stats(self) -> dict[str, int]:
        cpus = bpfsys.possible_cpus()
        values = []
        for index in range(len(R.STAT_NAMES)):
            raw = self.maps["cpn_stats"].lookup(R.u32_key(index), value_size=8 * cpus)
            values.append(bpfsys.percpu_sum(raw) if raw else 0)
        return R.unpack_stats(values)

    def subscribe_links(self):
        return self.kernel.subscribe_links()

    def carrier(self, name: str) -> bool:
        return self.kernel.carrier(name)

    def close_maps(self) -> None:
        for pinned in self.maps.values():
            pinned.close()

    def close(self) -> None:
        self.close_maps()
        self.kernel.close()


def _sid_identity(spec: dict) -> tuple:
    """What a local SID does, as far as the data plane is concerned (not where its route hangs)."""
    encap = spec.get("encap") or {}
    return (encap.get("action"), encap.get("nh6"), int(encap.get("table", R.MAIN_TABLE)),
            tuple((encap.get("srh") or {}).get("segs", ())))


class _Collector:
    """Stands in for the netlink session while a batch is staged: kernel changes become ``ip`` lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def route(self, op: str, spec: dict) -> None:
        self.lines.append(ipbatch.route_line(spec, op))

    def rule(self, op: str, spec: dict) -> None:
        self.lines.append(ipbatch.rule_line(spec, op))


def _fallback_rule() -> dict:
    """Marked packets whose table has no route are dropped (seg6local looks up one table only)."""
    return {"priority": R.FALLBACK_RULE_PRIORITY, "fwmark": R.MARK_BASE, "fwmask": R.MARK_MASK,
            "action": "FR_ACT_BLACKHOLE"}


def factory(plan, run_dir: str):
    """``netlink_factory`` for :class:`controllers.core.ControllerCore` in eBPF mode.

    Each driver first adopts what is pinned and routed already (nothing on a fresh boot;
    everything an earlier controller of this run installed after a restart).
    """
    from cpn_net.dataplane import show

    def make(router: str) -> RouterBpf:
        driver = RouterBpf(router, plan=plan, run_dir=run_dir)
        driver.adopt(show.kernel_routes(router), show.kernel_rules(router))
        return driver

    return make
