"""Which router interface faces which neighbour: the names netlink specs use.

Specs compiled by :mod:`cpn_net.srv6.baseline` and :mod:`cpn_net.srv6.policy`
name interfaces (``"r3-eth2"``), never indexes: resolving a name to an index
(``ipr.link_lookup(ifname=...)``) is the netlink adapter's job, inside the
router's namespace.

The controller builds the plan from the emulator's network plan.
:meth:`InterfacePlan.by_link_number` reproduces the emulator's documented
convention (``r<s>-eth0`` on the site LAN, ``r<s>-eth<k>`` for the k-th WAN
link of the site in link-number order) for tests and dry runs.

Examples
--------
>>> import networkx as nx
>>> G = nx.Graph()
>>> G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2}), ("c", {"id": 3})])
>>> G.add_edge("a", "c", number=1); G.add_edge("a", "b", number=2)
>>> plan = InterfacePlan.by_link_number(G)
>>> plan.lan_ifname("a"), plan.wan_ifname("a", "c"), plan.wan_ifname("a", "b"), plan.wan_ifname("b", "a")
('r1-eth0', 'r1-eth1', 'r1-eth2', 'r2-eth1')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Mapping

import networkx as nx

from cpn_net.model import addressing
from cpn_net.srv6.errors import PolicyError
from cpn_net.srv6.igp import site_id


@dataclass(frozen=True)
class InterfacePlan:
    """Interface names of every router.

    Parameters
    ----------
    wan : mapping
        ``{(site, neighbour): ifname}``: the interface of ``site``'s router on
        its link to ``neighbour``.
    lan : mapping
        ``{site: ifname}``: the router's interface on its site LAN; it also
        carries the seg6local routes of SIDs that have no link of their own.
    """

    wan: Mapping[tuple, str]
    lan: Mapping[Hashable, str]
    _by_name: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict = {}
        for (site, neighbour), ifname in self.wan.items():
            if (site, ifname) in by_name:
                raise PolicyError(f"interface plan: {ifname} of site {site} is named for two links; "
                                  "give each link its own interface")
            by_name[(site, ifname)] = neighbour
        object.__setattr__(self, "_by_name", by_name)

    @classmethod
    def by_link_number(cls, G: nx.Graph) -> "InterfacePlan":
        """The emulator's convention: LAN ``r<s>-eth0``, WAN ``r<s>-eth<k>`` in link-number order.

        Raises
        ------
        PolicyError
            If a link lacks its ``number`` attribute.
        """
        wan = {}
        lan = {}
        for site in G.nodes:
            router = addressing.router_name(site_id(G, site))
            lan[site] = f"{router}-eth0"
            links = []
            for neighbour, attrs in G.adj[site].items():
                number = attrs.get("number")
                if isinstance(number, bool) or not isinstance(number, int):
                    raise PolicyError(f"link {site}-{neighbour}: number={number!r} must be an int "
                                      "(the WAN link number from the topology)")
                links.append((number, neighbour))
            for k, (_number, neighbour) in enumerate(sorted(links, key=lambda item: item[0]), start=1):
                wan[(site, neighbour)] = f"{router}-eth{k}"
        return cls(wan, lan)

    def wan_ifname(self, site: Hashable, neighbour: Hashable) -> str:
        """The interface of ``site``'s router towards ``neighbour``."""
        try:
            return self.wan[(site, neighbour)]
        except KeyError:
            raise PolicyError(f"interface plan has no interface of site {site} towards {neighbour}; "
                              "is there a link between them?") from None

    def lan_ifname(self, site: Hashable) -> str:
        """The router's interface on the site LAN."""
        try:
            return self.lan[site]
        except KeyError:
            raise PolicyError(f"interface plan has no LAN interface for site {site}") from None

    def neighbour_on(self, site: Hashable, ifname: str) -> Hashable | None:
        """The neighbour site behind WAN interface ``ifname`` of ``site``; None if not a WAN interface."""
        return self._by_name.get((site, ifname))
