"""Network slices in the controller: admission at boot, marking at the switches, queues at the routers.

For the slices a topology file declares, at start:

1. admission (:func:`cpn_net.slicing.admission.admit`): each slice in file order,
   all or nothing; a refused slice is reported with its bottleneck link and
   shortfall (``GET /status`` -> ``slices``) and nothing of it is installed;
2. marking: the member hosts' traffic to other member sites gets the slice's
   DSCP at the ingress site switch (OpenFlow, composed with the current
   alternate-marking colour, re-sent at every colour flip);
3. guarantees: per-slice HTB classes on every router WAN interface of a shaped
   link, keyed on the slice's traffic-class bits (``tc``, in the router's
   namespace).

Not yet realised here (issue 6 continues): meters, per-slice SR policies and
decapsulation tables (isolation), runtime slice requests.
"""

from __future__ import annotations

import logging

from controllers.southbound.netns import run_in
from cpn_net.baseline import interface_plan
from cpn_net.slicing.admission import admit
from cpn_net.slicing.errors import SliceRefused, SlicingError
from cpn_net.slicing.realise import classification_flows, queue_commands

LOG = logging.getLogger("cpn.slices")


class SliceService:
    def __init__(self, core, topology) -> None:
        self.core = core
        self.topology = topology
        self.admitted: dict = {}
        self.refused: dict[str, str] = {}

    def start(self) -> None:
        graph = self.core.graph()
        for spec in self.topology.slices:
            try:
                self.admitted[spec.name] = admit(graph, self.admitted, spec)
            except (SliceRefused, SlicingError) as err:
                self.refused[spec.name] = str(err)
                LOG.warning("slice %s refused: %s", spec.name, err)
        if not self.admitted:
            return
        for (site, ifname), commands in queue_commands(graph, interface_plan(self.core.plan),
                                                       self.admitted.values()).items():
            for cmd in commands:
                run_in(self.core.routers[site], cmd, timeout_s=10)

    def flows(self, colour: int) -> dict:
        """Marking flows per datapath for the admitted slices in ``colour``'s period."""
        specs = [s for s in self.topology.slices if s.name in self.admitted]
        return classification_flows(self.core.plan, specs, colour) if specs else {}

    def view(self) -> dict:
        return {"admitted": {name: {"rate_mbps": a.rate_mbps, "slice_id": a.slice_id,
                                    "paths": {f"{x}->{y}": list(p.sites) for (x, y), p in a.paths.items()}}
                             for name, a in self.admitted.items()},
                "refused": dict(self.refused)}
