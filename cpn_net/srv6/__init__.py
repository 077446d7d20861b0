"""SRv6 pure core: SID plan, SRH codec, IGP and TE paths, segment lists, SR policies.

No I/O: everything here computes values (addresses, paths, packets as bytes,
netlink specs as dicts) that the controller's adapters apply.

============================  ==================================================
module                        concern
============================  ==================================================
:mod:`.sids`                  the SID plan (one locator per site) and parsing
:mod:`.srh`                   RFC 8754 Segment Routing Header codec
:mod:`.packet`                IPv6 / SRv6 packets as bytes (H.Encaps, probes)
:mod:`.igp`                   the baseline shortest-delay routing everyone assumes
:mod:`.paths`                 TE paths: min delay / hops, CSPF, waypoints, disjoint
:mod:`.segments`              segment lists and their minimisation
:mod:`.interfaces`            router interface names used in specs
:mod:`.baseline`              per-router IGP routes and local SID routes
:mod:`.policy`                SR policies compiled to route / rule specs
:mod:`.fake_netlink`          a pure fake data plane to test the specs
:mod:`.errors`                the exception hierarchy
============================  ==================================================
"""

from cpn_net.srv6.errors import (FakeNetlinkError, InfeasiblePath, PacketError, PathError, PolicyError, SegmentError,
                                 SidError, SrhError, Srv6Error)
from cpn_net.srv6.igp import Igp, igp_next_hops, igp_path
from cpn_net.srv6.paths import Path, best_path, disjoint_paths, residual_capacity
from cpn_net.srv6.policy import CompiledPolicy, FlowMatch, SRPolicy, compile_policy
from cpn_net.srv6.segments import SegmentList, follow_segments, minimal_segment_list
from cpn_net.srv6.sids import Behaviour, Locator, Sid, parse_sid
from cpn_net.srv6.srh import SegmentRoutingHeader, decode_srh

__all__ = [
    "Behaviour", "CompiledPolicy", "FakeNetlinkError", "FlowMatch", "Igp", "InfeasiblePath", "Locator",
    "PacketError", "Path", "PathError", "PolicyError", "SRPolicy", "SegmentError", "SegmentList",
    "SegmentRoutingHeader", "Sid", "SidError", "SrhError", "Srv6Error", "best_path", "compile_policy",
    "decode_srh", "disjoint_paths", "follow_segments", "igp_next_hops", "igp_path", "minimal_segment_list",
    "parse_sid", "residual_capacity",
]
