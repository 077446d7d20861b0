"""A router's baseline netlink state: IGP routes and its local SIDs.

Everything here is a plain dict for ``ipr.route("add", **spec)`` (pyroute2
0.9.7) inside the router's namespace. Interface values are *names*; the
netlink adapter resolves them to indexes (see :mod:`cpn_net.srv6.interfaces`).

* IGP routes: every other site's locator (``fcbb:bb00:<t>::/48``) and LAN
  (``2001:db8:<t>::/64``) via the IGP next hop (:mod:`cpn_net.srv6.igp`),
  gateway = the neighbour's address on the shared WAN link.
* Local SIDs (seg6local, RFC 8986 §4): End; End.X per neighbour (``nh6`` =
  neighbour's WAN address, so the kernel sends it over that link); End.DX6
  per host (``nh6`` = the host); End.DT6 per table. Keys follow pyroute2's
  seg6local encoder: ``action`` plus ``nh6`` or ``table``.

Examples
--------
>>> import networkx as nx
>>> from cpn_net.srv6.interfaces import InterfacePlan
>>> G = nx.Graph()
>>> G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2})])
>>> G.add_edge("a", "b", number=7, delay_ms=1.0)
>>> plan = InterfacePlan.by_link_number(G)
>>> igp_routes(G, "a", plan)[0]
{'dst': 'fcbb:bb00:2::/48', 'gateway': 'fd00:7::2', 'oif': 'r1-eth1'}
>>> local_sid_routes(G, "a", plan)[1]
{'dst': 'fcbb:bb00:1:2:2::/128', 'oif': 'r1-eth1',
 'encap': {'type': 'seg6local', 'action': 'End.X', 'nh6': 'fd00:7::2'}}
"""

from __future__ import annotations

from typing import Hashable, Iterable

import networkx as nx

from cpn_net.model import addressing
from cpn_net.srv6.errors import PolicyError
from cpn_net.srv6.igp import Igp, check_site, site_id
from cpn_net.srv6.interfaces import InterfacePlan
from cpn_net.srv6.sids import Behaviour, local_sids


def neighbour_address(G: nx.Graph, site: Hashable, neighbour: Hashable) -> str:
    """The address of ``neighbour``'s router on its WAN link with ``site``.

    Raises
    ------
    PolicyError
        If the two sites are not linked or the link has no ``number``.

    Examples
    --------
    >>> G = nx.Graph(); G.add_node("a", id=1); G.add_node("b", id=2); G.add_edge("a", "b", number=3)
    >>> neighbour_address(G, "a", "b")
    'fd00:3::2'
    """
    if not G.has_edge(site, neighbour):
        raise PolicyError(f"sites {site} and {neighbour} are not linked; no WAN address to use")
    number = G.edges[site, neighbour].get("number")
    if isinstance(number, bool) or not isinstance(number, int):
        raise PolicyError(f"link {site}-{neighbour}: number={number!r} must be an int (the WAN link number)")
    return str(addressing.wan_address(number, site_id(G, neighbour)))


def igp_routes(G: nx.Graph, site: Hashable, interfaces: InterfacePlan, *, igp: Igp | None = None) -> tuple[dict, ...]:
    """Routes to every other reachable site's locator and LAN, via the IGP next hop.

    Parameters
    ----------
    G : networkx.Graph
    site : str
        The router's site.
    interfaces : InterfacePlan
    igp : Igp, optional
        Shared IGP of ``G``.

    Returns
    -------
    tuple of dict
        Two routes per other site (locator, then LAN), sites in id order.
        Unreachable sites get no route.

    Examples
    --------
    >>> G = nx.Graph(); G.add_node("a", id=1); G.add_node("b", id=2)
    >>> G.add_edge("a", "b", number=1, delay_ms=1.0)
    >>> [r["dst"] for r in igp_routes(G, "b", InterfacePlan.by_link_number(G))]
    ['fcbb:bb00:1::/48', '2001:db8:1::/64']
    """
    check_site(G, site)
    igp = igp or Igp(G)
    routes = []
    for target in sorted(G.nodes, key=lambda s: site_id(G, s)):
        hop = igp.next_hop(site, target) if target != site else None
        if hop is None:
            continue
        via = {"gateway": neighbour_address(G, site, hop), "oif": interfaces.wan_ifname(site, hop)}
        target_id = site_id(G, target)
        routes.append({"dst": str(addressing.locator(target_id)), **via})
        routes.append({"dst": str(addressing.site_lan(target_id)), **via})
    return tuple(routes)


def local_sid_routes(G: nx.Graph, site: Hashable, interfaces: InterfacePlan, *,
                     hosts: Iterable[tuple[str, int]] = (), tables: Iterable[int] = ()) -> tuple[dict, ...]:
    """The seg6local routes instantiating the site's SIDs (RFC 8986 §4).

    Parameters
    ----------
    G : networkx.Graph
    site : str
    interfaces : InterfacePlan
    hosts : iterable of (str, int)
        ``(kind, index)`` of the site's clients and compute nodes: one
        End.DX6 each.
    tables : iterable of int
        Tables that get an End.DT6 SID (254 = main; one per slice).

    Returns
    -------
    tuple of dict
        End, End.X (neighbours by id), End.DX6, End.DT6, as in
        :func:`cpn_net.srv6.sids.local_sids`.

    Examples
    --------
    >>> G = nx.Graph(); G.add_node("a", id=1)
    >>> plan = InterfacePlan.by_link_number(G)
    >>> for spec in local_sid_routes(G, "a", plan, hosts=[("compute", 1)], tables=[254])[1:]:
    ...     print(spec)
    {'dst': 'fcbb:bb00:1:3:2:1::/128', 'oif': 'r1-eth0',
     'encap': {'type': 'seg6local', 'action': 'End.DX6', 'nh6': '2001:db8:1::2:1'}}
    {'dst': 'fcbb:bb00:1:4:254::/128', 'oif': 'r1-eth0',
     'encap': {'type': 'seg6local', 'action': 'End.DT6', 'table': 254}}
    """
    check_site(G, site)
    own_id = site_id(G, site)
    by_id = {site_id(G, n): n for n in G.adj[site]}
    lan = interfaces.lan_ifname(site)
    routes = []
    for sid in local_sids(own_id, by_id, hosts, tables):
        encap = {"type": "seg6local", "action": sid.behaviour.value}
        oif = lan
        if sid.behaviour is Behaviour.END_X:
            neighbour = by_id[sid.neighbour_id]
            encap["nh6"] = neighbour_address(G, site, neighbour)
            oif = interfaces.wan_ifname(site, neighbour)
        elif sid.behaviour is Behaviour.END_DX6:
            encap["nh6"] = str(sid.nexthop)
        elif sid.behaviour is Behaviour.END_DT6:
            encap["table"] = sid.table
        routes.append({"dst": f"{sid.address}/128", "oif": oif, "encap": encap})
    return tuple(routes)


def router_baseline(G: nx.Graph, site: Hashable, interfaces: InterfacePlan, *, hosts: Iterable = (),
                    tables: Iterable[int] = (), igp: Igp | None = None) -> tuple[dict, ...]:
    """IGP routes then local SID routes: everything a router needs before any policy.

    Examples
    --------
    >>> G = nx.Graph(); G.add_node("a", id=1); G.add_node("b", id=2)
    >>> G.add_edge("a", "b", number=1, delay_ms=1.0)
    >>> len(router_baseline(G, "a", InterfacePlan.by_link_number(G), tables=[254]))
    5
    """
    return igp_routes(G, site, interfaces, igp=igp) + local_sid_routes(G, site, interfaces, hosts=hosts,
                                                                       tables=tables)
