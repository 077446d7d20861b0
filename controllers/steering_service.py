"""Compute-aware steering in the controller: metrics + telemetry in, per-flow SR steering out.

The closed loop, once per period (1 s by default):

1. compute metrics (CATS L0) arrive from every compute node's agent on a Unix
   datagram socket (``<run dir>/metrics.sock``) and update the
   :class:`~cpn_net.steering.SteeringState`;
2. the network view comes from telemetry: per (ingress site, instance site),
   the one-way delay along the IGP path is the sum of the links' IOAM delays
   (configured delays until probes arrive) and the loss combines the links'
   last alternate-marking blocks;
3. the :class:`~cpn_net.steering.Selector` (policy + hysteresis) picks, per
   client site and service, the instance new flows should go to;
4. a changed choice is written into the ingress router's data plane.

Data plane at each client site's router (the CATS ingress forwarder): one
routing table per instance holding the service's anycast /128 with an SRv6
encapsulation ending in End.DX6 towards that compute node (a plain route when
the instance is at the same site); one ``ip -6 rule fwmark -> table`` per
instance; and an nftables map ``anycast -> mark of the preferred instance``. A
new flow (conntrack mark 0) gets the current preference copied into its
conntrack mark; every packet of the flow takes its mark from conntrack. So
existing flows keep their instance (affinity) and new flows follow the newest
decision, in the kernel, at line rate. For joint, a decision is a weighted
split of new flows over the near-best instances (see :meth:`SteeringService._split`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
import socket
import threading
import time

from controllers.southbound.netns import run_in
from cpn_net.baseline import interface_plan
from cpn_net.model import addressing
from cpn_net.srv6.planner import hosts_of_plan
from cpn_net.srv6.policy import SRPolicy, compile_policy
from cpn_net.srv6.segments import minimal_segment_list
from cpn_net.srv6.sids import end_dx6_sid
from cpn_net.emulation import wire
from cpn_net.steering import (ComputeMetrics, Flow, FlowKey, Joint, LeastLoaded, Nearest, Oracle, PathMetrics,
                              RandomChoice, RoundRobin, Selector, ServiceInstance, SteeringState)

LOG = logging.getLogger("cpn.steering")
FIRST_MARK = 0x100
FIRST_TABLE = 2000
RULE_PRIORITY = 900
NFT_TABLE = "cpn_steer"
FLOW_IDLE_S = 2
SPLIT_BUCKETS = 100
SPREAD_MARGIN = 0.5  # joint shares new flows among instances within 50 % of the best expected response
SPREAD_MAX = 4
POLICIES = {"joint": Joint, "nearest": Nearest, "least-loaded": LeastLoaded, "round-robin": RoundRobin,
            "random": lambda: RandomChoice(seed=1), "oracle": Oracle}
ORACLE_PERIOD_S = 0.25


class SteeringService:
    def __init__(self, core, topology, run_dir: str, telemetry=None, *, period_s: float = 1.0,
                 policy: str = "joint") -> None:
        self.core = core
        self.plan = core.plan
        self.topology = topology
        self.run_dir = run_dir
        self.telemetry = telemetry
        self.period_s = period_s
        self.state = SteeringState(period_s=period_s)
        self.lock = threading.Lock()
        self.running = False
        self.hosts = hosts_of_plan(self.plan)
        self.instances: list[tuple[ServiceInstance, object]] = []  # (instance, service)
        for service in topology.services:
            for name in service.compute:
                host = self.hosts[name]
                instance = ServiceInstance(name, host.site, service.name, str(host.address))
                self.instances.append((instance, service))
                self.state.add_instance(instance)
        self.marks = {name: FIRST_MARK + i for i, name in enumerate(sorted({inst.name for inst, _ in self.instances}))}
        self.ingress_sites = sorted({n.site for n in self.plan.nodes if n.kind == "client"})
        self.preferred: dict[tuple[str, str], str | None] = {}
        self.splits: dict[tuple[str, str], tuple] = {}
        self.timeline: list[dict] = []
        self.reports = 0
        self.policy_name = policy
        self.selector = Selector(POLICIES[policy]())
        self.metrics_sock = None

    # ------------------------------------------------------------ set-up
    def start(self) -> None:
        if not self.instances:
            return
        self._install_data_plane()
        path = os.path.join(self.run_dir, "metrics.sock")
        if os.path.exists(path):
            os.unlink(path)
        self.metrics_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.metrics_sock.bind(path)
        self.running = True
        for target, name in ((self._metrics_loop, "cpn-metrics"), (self._decision_loop, "cpn-steering")):
            threading.Thread(target=target, name=name, daemon=True).start()

    def stop(self) -> None:
        self.running = False

    def _install_data_plane(self) -> None:
        graph, igp = self.core.graph(), self.core.igp()
        interfaces = interface_plan(self.plan)
        anycasts = sorted({str(service.anycast) for _, service in self.instances})
        for site in self.ingress_sites:
            router = self.core.routers[site]
            session = self.core.session(router)
            lan = interfaces.lan_ifname(site)
            for instance, service in self.instances:
                table = FIRST_TABLE + self.marks[instance.name] - FIRST_MARK
                host = self.hosts[instance.name]
                prefix = f"{service.anycast}/128"
                if instance.site == site:
                    route = {"dst": prefix, "table": table, "gateway": str(host.address), "oif": lan}
                else:
                    path = igp.path(site, instance.site)
                    segments = minimal_segment_list(graph, path, final_sid=end_dx6_sid(host.site_id, host.kind,
                                                                                      host.index), igp=igp)
                    policy = SRPolicy(f"steer-{instance.name}", site, ipaddress.IPv6Network(prefix), segments,
                                      table=table)
                    route = dict(compile_policy(graph, policy, interfaces, igp=igp).routes[0])
                session.route("replace", route)
                session.rule("del", {"fwmark": self.marks[instance.name], "table": table,
                                     "priority": RULE_PRIORITY})
                session.rule("add", {"fwmark": self.marks[instance.name], "table": table,
                                     "priority": RULE_PRIORITY})
            elements = ", ".join(anycasts)
            maps = "".join(f"  map split_{i} {{ typeof numgen random mod {SPLIT_BUCKETS} : meta mark; "
                           f"flags interval; }}\n" for i, _ in enumerate(self.topology.services))
            # A new flow (conntrack mark 0) draws a bucket; the service's split map says which
            # instance that bucket goes to. Every packet then carries its flow's mark.
            steer = "".join(f'    iifname "{lan}" ip6 daddr {svc.anycast} ct mark 0 ct mark set numgen random '
                            f"mod {SPLIT_BUCKETS} map @split_{i};\n"
                            for i, svc in enumerate(self.topology.services))
            ruleset = (f"table inet {NFT_TABLE} {{\n"
                       f"  set services {{ type ipv6_addr; elements = {{ {elements} }}; }}\n"
                       f"{maps}"
                       f"  chain pre {{ type filter hook prerouting priority -150;\n"
                       f"{steer}"
                       f'    iifname "{lan}" ip6 daddr @services meta mark set ct mark; }}\n'
                       f"}}\n")
            _nft(router, f"delete table inet {NFT_TABLE}\n", check=False)
            _nft(router, ruleset)
            # A flow is a 5-tuple seen within the last FLOW_IDLE_S: request/response sessions keep
            # their instance while active, and an idle source port is a new flow next time.
            run_in(router, ["sysctl", "-qw", f"net.netfilter.nf_conntrack_udp_timeout={FLOW_IDLE_S}",
                            f"net.netfilter.nf_conntrack_udp_timeout_stream={FLOW_IDLE_S}"], check=False)

    # ----------------------------------------------------------- metrics
    def _metrics_loop(self) -> None:
        while self.running:
            try:
                data = self.metrics_sock.recv(65536)
                report = json.loads(data)
                metrics = ComputeMetrics(report["instance"], float(report["reported_at"]),
                                         min(1.0, max(0.0, float(report["utilisation"]))),
                                         int(report["queue_len"]), float(report["capacity_rps"]),
                                         int(report["workers"]), float(report["service_time_ms"]),
                                         report.get("price_cny_per_hour"), report.get("carbon_g_per_kwh"))
            except (OSError, ValueError, KeyError, TypeError) as err:
                LOG.warning("metrics report refused: %s", err)
                continue
            with self.lock:
                try:
                    self.state.report(metrics)
                    self.reports += 1
                except Exception as err:  # unknown instance, out-of-range value
                    LOG.warning("metrics of %s refused: %s", report.get("instance"), err)

    # ---------------------------------------------------------- decisions
    def _network_view(self) -> None:
        """Per (ingress site, instance site) path metrics from telemetry, configured delays as fallback."""
        measured = {}
        if self.telemetry is not None:
            for link in self.telemetry.view()["links"]:
                delay = (link.get("delay") or {}).get("delay_ms")
                loss = (link.get("loss") or {}).get("loss_pct") or 0.0
                measured[(link["from"], link["to"])] = (delay, loss)
        igp = self.core.igp()
        sites = {inst.site for inst, _ in self.instances}
        for ingress in self.ingress_sites:
            for site in sites:
                if ingress == site:
                    self.state.network.set_path(ingress, site, PathMetrics(0.0, 0.0, math.inf))
                    continue
                try:
                    path = igp.path(ingress, site)
                except Exception:
                    self.state.network.remove_path(ingress, site)
                    continue
                delay, delivered = 0.0, 1.0
                for a, b in zip(path, path[1:]):
                    d, loss = measured.get((a, b), (None, 0.0))
                    delay += d if d is not None else self.plan.wan_link(a, b).delay_ms
                    delivered *= 1 - loss / 100.0
                self.state.network.set_path(ingress, site, PathMetrics(delay, min(100.0, max(0.0, 100.0 * (1 - delivered))), math.inf))

    def decide_once(self, now: float | None = None) -> list[dict]:
        now = time.time() if now is None else now
        changes = []
        with self.lock:
            self._network_view()
            for ingress in self.ingress_sites:
                for service in self.topology.services:
                    key = FlowKey(str(addressing.router_lan_address(self.plan.node(self.core.routers[ingress]).site_id)),
                                  str(service.anycast), 17, 1, service.port)
                    decision = self.selector.decide(now, self.state, [Flow(key, ingress, service.name)])[0]
                    self.selector.release(key)  # a probe of the preference, not a real flow
                    chosen = decision.instance.name if decision.instance else None
                    split = self._split(now, Flow(key, ingress, service.name), decision)
                    if self.preferred.get((ingress, service.name)) != chosen or \
                            self.splits.get((ingress, service.name)) != split:
                        self.preferred[(ingress, service.name)] = chosen
                        self.splits[(ingress, service.name)] = split
                        changes.append({"at": now, "site": ingress, "service": service.name, "instance": chosen,
                                        "split": split, "expected_response_ms": decision.expected_response_ms,
                                        "reason": decision.reason})
            self.timeline.extend(changes)
        for change in changes:
            self._apply(change["site"])
        return changes

    def _split(self, now: float, flow, decision) -> tuple:
        """How new flows are shared: ``((instance, percent), ...)``.

        Policies other than joint send every new flow to their one choice. Joint
        spreads new flows over the instances whose expected response is within
        :data:`SPREAD_MARGIN` of the best, weighted by 1 / expected response, so a
        whole city's new flows do not herd onto one instance for a whole period
        (what a single choice per period does, and what made joint oscillate).
        """
        if decision.instance is None:
            return ()
        if self.policy_name not in ("joint", "oracle"):
            return ((decision.instance.name, 100),)
        policy = self.selector.policy
        best = decision.expected_response_ms
        candidates = []
        for instance in self.state.instances_of(flow.service):
            assessed = policy.assess(now, flow, instance, self.state)
            cost = assessed.expected_response_ms
            if cost is not None and math.isfinite(cost) and cost <= best * (1 + SPREAD_MARGIN):
                candidates.append((cost, instance.name))
        candidates = sorted(candidates)[:SPREAD_MAX]
        if decision.instance.name not in {n for _, n in candidates}:
            candidates = [(best, decision.instance.name)] + candidates[:SPREAD_MAX - 1]
        weights = [1.0 / max(cost, 1e-3) for cost, _ in candidates]
        total = sum(weights)
        shares = [max(1, round(SPLIT_BUCKETS * w / total)) for w in weights]
        shares[0] += SPLIT_BUCKETS - sum(shares)  # exact total, rounding on the best
        return tuple((name, share) for (_, name), share in zip(candidates, shares) if share > 0)

    def _apply(self, site: str) -> None:
        router = self.core.routers[site]
        batch = ""
        for i, service in enumerate(self.topology.services):
            split = self.splits.get((site, service.name)) or ()
            batch += f"flush map inet {NFT_TABLE} split_{i}\n"
            ranges, low = [], 0
            for name, share in split:
                ranges.append(f"{low}-{low + share - 1} : {self.marks[name]:#x}")
                low += share
            if ranges:
                batch += f"add element inet {NFT_TABLE} split_{i} {{ {', '.join(ranges)} }}\n"
        _nft(router, batch)

    def _decision_loop(self) -> None:
        while self.running:
            oracle = self.policy_name == "oracle"
            try:
                if oracle:
                    self._true_state()
                self.decide_once()
            except Exception:
                LOG.exception("steering decision")
            time.sleep(ORACLE_PERIOD_S if oracle else self.period_s)

    def _true_state(self) -> None:
        """The oracle's full knowledge: every instance's state right now, read from the service itself.

        No agent period, no staleness, no telemetry estimate (the network view
        falls back to configured delays only where telemetry has none), and
        decisions four times per period: the best a selector with this cost
        model could do, the yardstick the joint policy is measured against.
        """
        now = time.time()
        for instance, service in self.instances:
            path = os.path.join(self.run_dir, "services", f"{instance.name}.{service.name}.sock")
            try:
                reply = wire.request(path, {"op": "stats"}, timeout_s=0.2)
            except OSError:
                continue
            if not reply.get("ok") or reply.get("paused_s"):
                continue
            settings = reply["settings"]
            workers = int(settings["workers"])
            metrics = ComputeMetrics(instance.name, now, min(1.0, reply["in_service"] / max(1, workers)),
                                     int(reply["queue_len"]), float(settings["capacity_rps"]), workers,
                                     float(settings["service_time_ms"]), settings.get("price_cny_per_hour"),
                                     settings.get("carbon_g_per_kwh"))
            with self.lock:
                self.state.report(metrics)

    # ---------------------------------------------------------- northbound
    def set_policy(self, name: str) -> dict:
        if name not in POLICIES:
            raise KeyError(f"policy {name!r} must be one of {', '.join(POLICIES)}")
        with self.lock:
            self.policy_name = name
            self.selector = Selector(POLICIES[name]())
            self.preferred.clear()
            self.splits.clear()
        self.decide_once()
        return self.view()

    def view(self) -> dict:
        now = time.time()
        with self.lock:
            stats = self.selector.stats()
            instances = []
            for instance, _service in self.instances:
                metrics = self.state.metrics_of(instance.name)
                instances.append({"instance": instance.name, "site": instance.site, "service": instance.service,
                                  "healthy": self.state.is_healthy(instance.name, now),
                                  "metrics_age_s": None if metrics is None else round(now - metrics.reported_at_s, 3),
                                  "utilisation": None if metrics is None else metrics.utilisation,
                                  "queue_len": None if metrics is None else metrics.queue_len})
            return {"policy": self.policy_name, "period_s": self.period_s, "reports": self.reports,
                    "preferred": [{"site": s, "service": svc, "instance": i,
                                   "split": [list(x) for x in self.splits.get((s, svc), ())]}
                                  for (s, svc), i in sorted(self.preferred.items())],
                    "flips": stats.flips, "failovers": stats.failovers, "decisions": stats.decisions,
                    "instances": instances, "timeline": self.timeline[-200:]}


def _nft(router: str, script: str, check: bool = True) -> None:
    run_in(router, ["nft", "-f", "-"], stdin=script, check=check, timeout_s=10)
