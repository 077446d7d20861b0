"""Names of measurement points and of the network elements between them.

A *measurement point* is a counter on one interface in one direction,
written ``<interface>:<in|out>``, e.g. ``r1-eth2:out``. Interface names follow
the addressing plan (:mod:`cpn_net.model.addressing`): ``<node>-eth<N>``, so
the node owning a point is recoverable from its name.

Measurements are directional (traffic from ``r1`` to ``r4`` may lose packets
while the reverse does not), so a link between two nodes is named by its
direction: ``r1->r4``. A node is named by its node name, ``r1``.

Examples
--------
>>> p = MeasurementPoint.parse("k12-1-eth0:in")
>>> p.node, p.interface, p.direction, str(p)
('k12-1', 'k12-1-eth0', 'in', 'k12-1-eth0:in')
>>> link_id("r1", "r4")
'r1->r4'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cpn_net.telemetry.errors import TelemetryValueError

DIRECTIONS = ("in", "out")
LINK_ARROW = "->"

_INTERFACE = re.compile(r"^(?P<node>[A-Za-z][A-Za-z0-9-]*?)-eth(?P<number>[0-9]+)$")


def node_of_interface(interface: str) -> str:
    """The node owning interface ``<node>-eth<N>``.

    Parameters
    ----------
    interface : str
        Interface name following the addressing plan.

    Returns
    -------
    str
        The node name.

    Raises
    ------
    TelemetryValueError
        If the name does not follow ``<node>-eth<N>``.

    Examples
    --------
    >>> node_of_interface("r12-eth3"), node_of_interface("u3-2-eth0")
    ('r12', 'u3-2')
    """
    match = _INTERFACE.match(interface)
    if match is None:
        raise TelemetryValueError(
            f"interface {interface!r} must be named '<node>-eth<N>' (addressing plan), "
            f"e.g. 'r1-eth2'"
        )
    return match.group("node")


@dataclass(frozen=True)
class MeasurementPoint:
    """A counter on one interface in one direction (``in`` or ``out``)."""

    interface: str
    direction: str

    def __post_init__(self) -> None:
        node_of_interface(self.interface)
        if self.direction not in DIRECTIONS:
            raise TelemetryValueError(
                f"measurement point {self.interface}: direction={self.direction!r} "
                f"must be one of {DIRECTIONS}"
            )

    @property
    def node(self) -> str:
        return node_of_interface(self.interface)

    @classmethod
    def parse(cls, text: str) -> MeasurementPoint:
        """Parse ``<interface>:<in|out>``.

        Parameters
        ----------
        text : str
            The point's name.

        Returns
        -------
        MeasurementPoint

        Raises
        ------
        TelemetryValueError
            If the text is not ``<node>-eth<N>:<in|out>``.

        Examples
        --------
        >>> MeasurementPoint.parse("s1-eth1:in")
        MeasurementPoint(interface='s1-eth1', direction='in')
        """
        interface, sep, direction = text.rpartition(":")
        if not sep:
            raise TelemetryValueError(
                f"measurement point {text!r} must be '<interface>:<in|out>', e.g. 'r1-eth2:out'"
            )
        return cls(interface, direction)

    def __str__(self) -> str:
        return f"{self.interface}:{self.direction}"


def link_id(upstream_node: str, downstream_node: str) -> str:
    """The directed name of the link from ``upstream_node`` to ``downstream_node``.

    Parameters
    ----------
    upstream_node, downstream_node : str
        Node names; they must differ.

    Returns
    -------
    str
        ``"<upstream>-><downstream>"``.

    Raises
    ------
    TelemetryValueError
        If both names are equal or empty.

    Examples
    --------
    >>> link_id("s1", "r1")
    's1->r1'
    """
    if not upstream_node or not downstream_node or upstream_node == downstream_node:
        raise TelemetryValueError(
            f"link {upstream_node!r}->{downstream_node!r}: needs two different, non-empty node names"
        )
    return f"{upstream_node}{LINK_ARROW}{downstream_node}"
