"""Fast reroute: backup routes installed ahead of a failure (TI-LFA style, RFC 9855's idea).

For every router R and every destination site D, the primary route leaves R on
link L towards the IGP next hop. The backup is the *post-convergence path*: the
path the IGP will use once L is gone, computed now on the graph without L.
R installs it as a second route with a higher metric (:data:`BACKUP_METRIC`):

- when the post-convergence path, from its second site on, is already what the
  pre-failure IGP does (a loop-free alternate), the backup is a plain route via
  that neighbour;
- otherwise the backup encapsulates (H.Encaps) with the shortest segment list
  that forces the post-convergence path under the *pre-failure* IGP (the other
  routers have not reconverged yet), ending with End.DT6 at D's router, which
  decapsulates and looks the inner packet up in the main table.

The kernel switches to the backup on its own, within the time it takes the
carrier to drop, because routers set ``ignore_routes_with_linkdown``: a route
whose interface has lost carrier is skipped and the backup below it matches.
The controller then reconverges (new primaries and new backups) at its pace.

Pure: returns pyroute2 route specs, like :mod:`cpn_net.srv6.baseline`.

Examples
--------
>>> import networkx as nx
>>> from cpn_net.srv6.interfaces import InterfacePlan
>>> G = nx.Graph()
>>> G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2}), ("c", {"id": 3})])
>>> G.add_edge("a", "b", number=1, delay_ms=1.0); G.add_edge("b", "c", number=2, delay_ms=1.0)
>>> G.add_edge("a", "c", number=3, delay_ms=5.0)
>>> [spec["dst"] + " via " + spec.get("gateway", "encap") for spec in backup_routes(G, "a", InterfacePlan.by_link_number(G))]
['fcbb:bb00:2::/48 via fd00:3::3', '2001:db8:2::/64 via fd00:3::3', 'fcbb:bb00:3::/48 via fd00:3::3', '2001:db8:3::/64 via fd00:3::3']
"""

from __future__ import annotations

from typing import Hashable

import networkx as nx

from cpn_net.model import addressing
from cpn_net.srv6.baseline import neighbour_address
from cpn_net.srv6.igp import Igp, site_id
from cpn_net.srv6.interfaces import InterfacePlan
from cpn_net.srv6.segments import minimal_segment_list
from cpn_net.srv6.sids import end_dt6_sid

BACKUP_METRIC = 2048  # above the kernel's default 1024 that primary routes get
MAIN_TABLE = 254


def post_convergence_path(G: nx.Graph, site: Hashable, target: Hashable, failed: tuple) -> tuple | None:
    """The IGP path from ``site`` to ``target`` once link ``failed`` is gone (None: cut off)."""
    reduced = G.copy()
    reduced.remove_edge(*failed)
    if not nx.has_path(reduced, site, target):
        return None
    return Igp(reduced).path(site, target)


def backup_routes(G: nx.Graph, site: Hashable, interfaces: InterfacePlan, *, igp: Igp | None = None) -> list[dict]:
    """Backup route specs at ``site`` protecting each destination against its primary link failing.

    Returns one spec per destination prefix (every other site's locator and
    LAN) that has a post-convergence path; destinations cut off by the
    failure get none.
    """
    igp = igp or Igp(G)
    specs = []
    for target in sorted(G.nodes, key=lambda n: site_id(G, n)):
        if target == site:
            continue
        primary = igp.next_hop(site, target)
        if primary is None:
            continue
        path = post_convergence_path(G, site, target, (site, primary))
        if path is None:
            continue
        first_hop = path[1]
        route = {"oif": interfaces.wan_ifname(site, first_hop), "priority": BACKUP_METRIC}
        if igp.path(first_hop, target) == tuple(path[1:]) and not _uses(path[1:], (site, primary)):
            route["gateway"] = neighbour_address(G, site, first_hop)
        else:
            segments = minimal_segment_list(G, path, final_sid=end_dt6_sid(site_id(G, target), MAIN_TABLE),
                                            igp=igp)
            route["encap"] = {"type": "seg6", "mode": "encap",
                              "segs": [str(s) for s in segments.srh_order]}
        target_id = site_id(G, target)
        for prefix in (addressing.locator(target_id), addressing.site_lan(target_id)):
            specs.append({"dst": str(prefix), **route})
    return specs


def _uses(path, link) -> bool:
    pairs = {frozenset(p) for p in zip(path, path[1:])}
    return frozenset(link) in pairs
