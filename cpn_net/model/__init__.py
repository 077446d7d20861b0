"""The topology model: validated, frozen descriptions of what cpn_net emulates.

A topology is sites (router ``r<id>``, switch ``s<id>``, clients, compute
nodes), WAN links between them, and anycast services served by compute nodes.
It is loaded from our YAML format (:mod:`cpn_net.model.schema` documents it),
from Topology Zoo GraphML (:mod:`cpn_net.model.graphml`) or from networkx
node-link JSON (:mod:`cpn_net.model.node_link`). Every loader reports *all*
problems at once as a :class:`TopologyError` whose lines read
``FILE: key.path: what is wrong; what to do``. Names and addresses follow
:mod:`cpn_net.model.addressing`; derived link delays follow
:mod:`cpn_net.model.geo`.

Examples
--------
>>> from cpn_net.model import load_topology, summarize
>>> topo = load_topology("topologies/tiny.yaml")
>>> [s.name for s in topo.sites], [k.name for k in topo.compute_nodes()]
(['east', 'centre', 'west'], ['k1-1', 'k2-1', 'k3-1'])
>>> str(topo.service("echo").anycast)
'2001:db8:ffff::1'
"""

from cpn_net.model.errors import ModelError, Problem, TopologyError, UnknownNameError
from cpn_net.model.geo import DEFAULT_LINK_DELAY_MS, DEFAULT_ROUTE_FACTOR, FIBRE_US_PER_KM
from cpn_net.model.loader import load_topology
from cpn_net.model.summary import summarize
from cpn_net.model.topology import (Client, ComputeNode, Host, Link, PolicyFlow, Service, Site, SliceSpec, SRPolicySpec,
                                    Topology)

__all__ = [
    "DEFAULT_LINK_DELAY_MS",
    "DEFAULT_ROUTE_FACTOR",
    "FIBRE_US_PER_KM",
    "Client",
    "ComputeNode",
    "Host",
    "Link",
    "ModelError",
    "PolicyFlow",
    "Problem",
    "SRPolicySpec",
    "Service",
    "Site",
    "SliceSpec",
    "Topology",
    "TopologyError",
    "UnknownNameError",
    "load_topology",
    "summarize",
]
