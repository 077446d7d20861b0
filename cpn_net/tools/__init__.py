"""Measurement tools run inside emulated nodes, and the pure analysis of what they record.

* :mod:`~cpn_net.tools.flowgen` — a constant-rate UDP/IPv6 test flow:
  ``python -m cpn_net.tools.flowgen send|recv ...`` inside a node's namespace.
  Every datagram carries a flow id, a sequence number and the sender's
  ``CLOCK_REALTIME`` timestamp; both ends write a JSON record.
* :mod:`~cpn_net.tools.outage` — loss, loss duration (the failover
  "outage"), reordering, duplicates, one-way delay and jitter from those
  records. Pure: no sockets, no clock reads.

Every error raised by this package derives from :class:`ToolsError`; bad
arguments or inconsistent records raise :class:`ToolsValueError` (also a
:class:`ValueError`).

Examples
--------
>>> isinstance(ToolsValueError("x"), ValueError), issubclass(ToolsValueError, ToolsError)
(True, True)
"""

from __future__ import annotations


class ToolsError(Exception):
    """Base class of every error raised by :mod:`cpn_net.tools`."""


class ToolsValueError(ToolsError, ValueError):
    """An argument or a record is out of range or inconsistent; the message names the fix."""
