"""The cpn_net SDN controller: an os-ken (Ryu fork) application.

At start it reads the run's manifest (the emulator's :class:`NetworkPlan`) and
the snapshot of the topology file, installs every router's baseline over netlink
(IGP routes, local SRv6 SIDs, fast-reroute backups) and the SR policies the
topology declares, starts the REST northbound and the link monitor. It programs
every site switch over OpenFlow 1.3 when the switch connects.

Handlers stay a few lines: the state and actions are
:class:`controllers.core.ControllerCore`, the decisions the pure core
(:mod:`cpn_net.baseline`, :mod:`cpn_net.srv6`).

It writes its state to ``<run dir>/controller.json`` after every change, which
``cpn status`` shows and the emulator polls to know when the network is ready.

Environment: ``CPN_RUN_DIR`` (run directory), ``CPN_REST_PORT`` (northbound,
default 8181), ``CPN_FRR`` (``0`` disables the precomputed backup routes),
``CPN_DATAPLANE`` (``kernel``: Linux seg6 over netlink, default; ``bpf``: the
eBPF data plane's pinned maps, :mod:`controllers.southbound.bpf`), ``CPN_ALTMARK_PERIOD_S`` (alternate-marking period, default 1), ``CPN_IOAM_PROBE_HZ``
(IOAM probes per second per link direction, default 10), ``CPN_STEERING_POLICY``
(the selector's policy at start: joint, nearest, least-loaded, round-robin, random).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3

from controllers import metrics
from controllers.core import ControllerCore
from controllers.link_monitor import LinkMonitor
from controllers.northbound.map.feed import feed_for
from controllers.northbound_api import ControllerApi
from controllers.slice_service import SliceService
from controllers.steering_service import SteeringService
from controllers.telemetry_service import TelemetryService
from controllers.southbound import bpf as bpf_driver
from controllers.southbound import ipbatch, openflow
from controllers.southbound.netlink import RouterNetlink
from cpn_net import baseline
from cpn_net.emulation import manifest as manifest_io
from cpn_net.slicing.isolation import isolated_hosts
from cpn_net.telemetry import marking

LOG = logging.getLogger("cpn.controller")
DEFAULT_REST_PORT = 8181
SAVE_DELAY_S = 0.2


class CpnController(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.run_dir = os.environ["CPN_RUN_DIR"]
        manifest = manifest_io.read_manifest(self.run_dir)
        self.plan = manifest.plan
        self.flows = baseline.switch_flows(self.plan)
        self.state_lock = threading.Lock()
        self.save_pending = False
        self.state = {
            "pid": os.getpid(), "started_at": time.time(), "topology": self.plan.topology,
            "switches": {str(dpid): {"connected": False, "configured": False, "flows": 0}
                         for dpid in self.flows},
            "routers": {}, "errors": [],
        }
        self.dataplane = os.environ.get("CPN_DATAPLANE", "kernel")
        if self.dataplane == "bpf":
            factory, batch_runner = bpf_driver.factory(self.plan, self.run_dir), self._driver_batch
        else:
            factory, batch_runner = RouterNetlink, ipbatch.run_specs
        self.state["dataplane"] = self.dataplane
        # Restarted on a running network: take over what is installed instead of starting afresh.
        self.adopt = os.environ.get("CPN_CONTROLLER_ADOPT") == "1"
        self.core = ControllerCore(self.plan, netlink_factory=factory, dataplane=self.dataplane,
                                   frr=os.environ.get("CPN_FRR", "1") != "0", batch_runner=batch_runner,
                                   adopt=self.adopt)
        self.api = ControllerApi(self.core, manifest_io.topology_snapshot(self.run_dir), self.changed,
                                 state_path=os.path.join(self.run_dir, "runtime-policies.json"))
        self.rest = None
        self.monitor = None
        self.datapaths = {}
        self.adopted_switches: set[int] = set()
        self.telemetry = TelemetryService(self.plan, self.run_dir, self.send_colour,
                                          period_s=float(os.environ.get("CPN_ALTMARK_PERIOD_S", "1.0")),
                                          probe_hz=float(os.environ.get("CPN_IOAM_PROBE_HZ", "10")),
                                          avoid_hosts=isolated_hosts(self.api.topology_model.slices)
                                          if self.api.topology_model is not None else ())
        self.api.telemetry = self.telemetry
        self.steering = None
        self.slices = None
        try:
            self.core.install_baseline()
            self.api.install_declared_policies()
            if self.adopt:
                self.state["errors"] += self.api.reinstall_runtime_policies()
            self.telemetry.start()
            if self.api.topology_model is not None and self.api.topology_model.services:
                self.steering = SteeringService(self.core, self.api.topology_model, self.run_dir, self.telemetry,
                                                policy=os.environ.get("CPN_STEERING_POLICY", "joint"))
                metrics.time_decisions(self.steering)  # the cpn_decision_seconds histogram of GET /metrics
                self.steering.start()
                self.api.steering = self.steering
            if self.api.topology_model is not None:
                self.slices = SliceService(self.core, self.api.topology_model, apply_flows=self.apply_slice_flows,
                                           apply_meters=self.apply_meters, colour=lambda: self.telemetry.colour)
                self.slices.start()
                self.api.slices = self.slices
            self.monitor = LinkMonitor(self.core, on_change=self.changed)
            self.monitor.start()
            from controllers.northbound.rest import start_rest_server

            port = int(os.environ.get("CPN_REST_PORT", DEFAULT_REST_PORT))
            self.rest = start_rest_server(self.api, host="127.0.0.1", port=port)
            self.state["rest"] = f"http://127.0.0.1:{port}"
            feed_for(self.rest)  # the map records its 5-minute link history from boot, watched or not
        except Exception as err:  # reported to the emulator, which stops the boot
            LOG.exception("controller start-up failed")
            self.state["errors"].append(f"start-up: {type(err).__name__}: {err}")
        self.core.adopt = False  # taken over: what comes next is new
        self.state["adopted"] = self.adopt
        self.save()

    def _driver_batch(self, router: str, routes, rules) -> None:
        """eBPF data plane: the driver writes the maps and hands the kernel one ``ip -batch``."""
        self.core.session(router).batch(routes, rules)

    def save(self) -> None:
        with self.state_lock:
            self.state["updated_at"] = time.time()
            self.state["routers"] = {r: {"routes": n} for r, n in self.core.routes_installed.items()}
            self.state["core"] = self.core.status()
            if self.slices is not None:
                self.state["slices"] = self.slices.view()
            manifest_io.write_json_atomic(os.path.join(self.run_dir, "controller.json"), self.state)

    def changed(self) -> None:
        """Write the state soon: many changes in a burst (REST, reconvergence) cost one write."""
        with self.state_lock:
            if self.save_pending:
                return
            self.save_pending = True
        timer = threading.Timer(SAVE_DELAY_S, self._deferred_save)
        timer.daemon = True
        timer.start()

    def _deferred_save(self) -> None:
        with self.state_lock:
            self.save_pending = False
        self.save()

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        datapath = ev.msg.datapath
        entry = self.state["switches"].get(str(datapath.id))
        if entry is None:
            self.state["errors"].append(f"unknown switch dpid {datapath.id} connected; ignored")
            self.save()
            return
        # A restarted controller leaves the switch's flows in place (the switch kept forwarding
        # with them) and writes the same ones over them: no gap on the wire.
        first = datapath.id not in self.adopted_switches
        if not (self.adopt and first):
            datapath.send_msg(openflow.delete_all_flows(datapath))
        self.adopted_switches.add(datapath.id)
        if self.slices is not None:
            for meter in self.slices.meters().get(datapath.id, []):
                datapath.send_msg(openflow.meter_mod(datapath, meter, "modify" if self.adopt and first else "add"))
        for spec in self.flows[datapath.id] + self._colour_flows(datapath.id, self.telemetry.colour):
            datapath.send_msg(openflow.flow_mod(datapath, spec))
        self.datapaths[datapath.id] = datapath
        datapath.send_msg(datapath.ofproto_parser.OFPBarrierRequest(datapath))
        entry.update(connected=True, configured=False, flows=len(self.flows[datapath.id]))
        self.save()

    def _colour_flows(self, dpid: int, colour: int):
        """Alternate-marking colour flows, and the slices' marking flows in the same colour."""
        switch = next(n for n in self.plan.nodes_of("switch") if n.site_id == dpid)
        flows = marking.colour_flows(switch, colour)
        if self.slices is not None:
            flows += self.slices.flows(colour).get(dpid, [])
        return flows

    def send_colour(self, colour: int) -> None:
        """Alternate marking: every site switch now colours new packets ``colour``."""
        for dpid, datapath in list(self.datapaths.items()):
            for spec in self._colour_flows(dpid, colour):
                datapath.send_msg(openflow.flow_mod(datapath, spec))

    def apply_slice_flows(self, before: dict, after: dict) -> None:
        """Slice changes on the switches: add (or modify) ``after``, strictly delete what of ``before`` is gone."""
        for dpid, datapath in list(self.datapaths.items()):
            kept = {(f.table, f.priority, f.match) for f in after.get(dpid, [])}
            for spec in after.get(dpid, []):
                datapath.send_msg(openflow.flow_mod(datapath, spec))
            for spec in before.get(dpid, []):
                if (spec.table, spec.priority, spec.match) not in kept:
                    datapath.send_msg(openflow.delete_flow(datapath, spec))

    def apply_meters(self, meters: dict, command: str) -> None:
        """Slice meters on the switches (``command`` add or delete), before the flows that use them."""
        for dpid, specs in meters.items():
            datapath = self.datapaths.get(dpid)
            if datapath is None:
                continue  # sent when the switch connects
            for meter in specs:
                datapath.send_msg(openflow.meter_mod(datapath, meter, command))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier_reply(self, ev):
        entry = self.state["switches"].get(str(ev.msg.datapath.id))
        if entry is not None and entry["connected"]:
            entry["configured"] = True
            self.save()

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def state_change(self, ev):
        if ev.state == DEAD_DISPATCHER and ev.datapath.id is not None:
            entry = self.state["switches"].get(str(ev.datapath.id))
            if entry is not None:
                entry.update(connected=False, configured=False)
                self.datapaths.pop(ev.datapath.id, None)
                self.save()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def error_msg(self, ev):
        msg = ev.msg
        self.state["errors"].append(f"switch {msg.datapath.id}: OpenFlow error type={msg.type} code={msg.code}")
        self.save()

    def close(self):
        self.telemetry.stop()
        if self.steering is not None:
            self.steering.stop()
        if self.monitor is not None:
            self.monitor.stop()
        if self.rest is not None:
            self.rest.shutdown()
        self.core.close()
        super().close()
