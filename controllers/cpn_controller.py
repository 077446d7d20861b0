"""The cpn_net SDN controller: an os-ken (Ryu fork) application.

It reads the run's manifest (the emulator's :class:`NetworkPlan`), installs the
baseline routes on every router over netlink, and programs every site switch
over OpenFlow 1.3 when it connects. Handlers stay a few lines: the decisions are
:func:`cpn_net.baseline.router_routes` and :func:`cpn_net.baseline.switch_flows`.

The controller writes its state to ``<run dir>/controller.json`` after every
change (connected switches, flows and routes installed, errors), which
``cpn status`` shows and the emulator polls to know when the network is ready.

Started by :mod:`controllers.runner` (os-ken has no manager command); the run
directory comes from the ``CPN_RUN_DIR`` environment variable.
"""

from __future__ import annotations

import os
import time

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3

from controllers.southbound import openflow
from controllers.southbound.netlink import NetlinkError, RouterNetlink
from cpn_net import baseline
from cpn_net.emulation import manifest as manifest_io


class CpnController(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.run_dir = os.environ["CPN_RUN_DIR"]
        self.plan = manifest_io.read_manifest(self.run_dir).plan
        self.flows = baseline.switch_flows(self.plan)
        self.state = {
            "pid": os.getpid(), "started_at": time.time(), "topology": self.plan.topology,
            "switches": {str(dpid): {"connected": False, "configured": False, "flows": 0}
                         for dpid in self.flows},
            "routers": {}, "errors": [],
        }
        self._install_routes()
        self._save()

    def _install_routes(self) -> None:
        for router, specs in baseline.router_routes(self.plan).items():
            entry = {"routes": 0}
            try:
                session = RouterNetlink(router)
                try:
                    for spec in specs:
                        session.replace_route(spec)
                        entry["routes"] += 1
                finally:
                    session.close()
            except NetlinkError as err:
                self.state["errors"].append(str(err))
                self.logger.error("%s", err)
            self.state["routers"][router] = entry

    def _save(self) -> None:
        self.state["updated_at"] = time.time()
        manifest_io.write_json_atomic(os.path.join(self.run_dir, "controller.json"), self.state)

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        datapath = ev.msg.datapath
        entry = self.state["switches"].get(str(datapath.id))
        if entry is None:
            self.state["errors"].append(f"unknown switch dpid {datapath.id} connected; ignored")
            self._save()
            return
        datapath.send_msg(openflow.delete_all_flows(datapath))
        for spec in self.flows[datapath.id]:
            datapath.send_msg(openflow.flow_mod(datapath, spec))
        datapath.send_msg(datapath.ofproto_parser.OFPBarrierRequest(datapath))
        entry.update(connected=True, configured=False, flows=len(self.flows[datapath.id]))
        self._save()

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier_reply(self, ev):
        entry = self.state["switches"].get(str(ev.msg.datapath.id))
        if entry is not None and entry["connected"]:
            entry["configured"] = True
            self._save()

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def state_change(self, ev):
        if ev.state == DEAD_DISPATCHER and ev.datapath.id is not None:
            entry = self.state["switches"].get(str(ev.datapath.id))
            if entry is not None:
                entry.update(connected=False, configured=False)
                self._save()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def error_msg(self, ev):
        msg = ev.msg
        self.state["errors"].append(
            f"switch {msg.datapath.id}: OpenFlow error type={msg.type} code={msg.code}")
        self._save()
