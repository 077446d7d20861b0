"""The SRv6 package's one exception hierarchy.

Every message names the thing at fault and its value, what was expected, and
the fix, e.g. ``SID fcbb:bb00:12:9:: has function 9; expected 1..5 (End,
End.X, End.DX6, End.DT6, End.B6.Encaps)``.
"""

from __future__ import annotations


class Srv6Error(ValueError):
    """Base class of every error raised by :mod:`cpn_net.srv6`."""


class SidError(Srv6Error):
    """A SID could not be built from, or parsed back into, the SID plan."""


class SrhError(Srv6Error):
    """A Segment Routing Header (RFC 8754) is malformed or cannot be encoded."""


class PacketError(Srv6Error):
    """An IPv6 packet is malformed or truncated."""


class PathError(Srv6Error):
    """A path request names something the topology lacks, or is ill-formed."""


class InfeasiblePath(PathError):
    """No path satisfies the request.

    Attributes
    ----------
    source, target : str
        The requested end sites.
    constraint : str
        Which constraint failed: ``"connectivity"``, ``"exclude_links"``,
        ``"bandwidth_mbps"``, ``"waypoints"`` or ``"k"``.
    links : tuple of tuple of str
        The links that make the request infeasible (a bottleneck or a cut),
        each as a pair of site names; empty when no link is to blame.
    """

    def __init__(self, message: str, *, source: str, target: str, constraint: str,
                 links: tuple[tuple[str, str], ...] = ()):
        super().__init__(message)
        self.source = source
        self.target = target
        self.constraint = constraint
        self.links = links


class SegmentError(Srv6Error):
    """A segment list is ill-formed, or cannot force or follow a path."""


class PolicyError(Srv6Error):
    """An SR policy is ill-formed or cannot be compiled to netlink specs."""


class FakeNetlinkError(Srv6Error):
    """The fake netlink state was given a spec the kernel would refuse."""
