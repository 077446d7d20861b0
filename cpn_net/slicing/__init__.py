"""Network slices (RFC 9543): intents, admission control and realisation, all pure.

A slice is a tenant's private network with promises: a guaranteed rate
between its member sites, optional latency and loss bounds, and isolation
from other tenants. The design, from intent to data plane:

1. **Intent** — a :class:`~cpn_net.model.topology.SliceSpec`, declared under
   ``slices:`` in the topology file or requested at runtime
   (:func:`cpn_net.model.slices.parse_slice`). It places a demand of
   ``rate_mbps`` on every ordered pair of member sites
   (:mod:`cpn_net.slicing.intents`).
2. **Admission** — :func:`~cpn_net.slicing.admission.admit` places each pair
   on one path (latency slices: least delay with room, CSPF; bulk slices:
   widest) against the capacity other slices leave, checks the latency and
   loss bounds, and returns the paths and reservations, or refuses the whole
   slice naming the bottleneck link, its residual and the shortfall. It
   also gives the slice its mark (1..15): the smallest no admitted slice
   sharing one of its links holds, so marks are reused where paths do not
   overlap.
   :func:`~cpn_net.slicing.admission.release` frees a slice.
3. **Realisation** (:mod:`cpn_net.slicing.realise`):

   * the site switch marks member-to-member traffic with the slice's mark
     in the DSCP, ``(mark << 1) | 0x20 | colour``, above the colour flows and in the
     current colour, so alternate marking keeps counting it; optional
     OpenFlow meters cap the slice at each member site;
   * each router WAN interface runs HTB at the link rate with one class per
     slice (rate = its reservations in that direction, ceil = link rate), a
     best-effort default class and u32 filters on the mark in the traffic class, which
     Linux copies to the outer header of SRv6 packets;
   * each admitted pair's path becomes the slice's SR policy, ending in an
     End.DT6 SID that decapsulates into the slice's own table ``100 + id``
     holding only the slice's member hosts (isolation).

The controller keeps ``{name: Admission}`` as its state; nothing here does I/O.
"""

from cpn_net.slicing.admission import Admission, admit, release, reserved_mbps, widest_path
from cpn_net.slicing.errors import SliceRefused, SlicingError
from cpn_net.slicing.intents import Demand, SliceIntent, demands, site_pairs

__all__ = [
    "Admission",
    "Demand",
    "SliceIntent",
    "SliceRefused",
    "SlicingError",
    "admit",
    "demands",
    "release",
    "reserved_mbps",
    "site_pairs",
    "widest_path",
]
