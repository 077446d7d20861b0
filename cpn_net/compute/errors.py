"""The compute package's one exception hierarchy.

Every message names the key and value at fault, what was expected and the
fix, e.g. ``service: workers=0 must be an integer in 1..4096``.
"""

from __future__ import annotations


class ComputeError(ValueError):
    """Base class of every error raised by :mod:`cpn_net.compute`."""


class ComputeProtocolError(ComputeError):
    """A request or response datagram is malformed, or a field does not fit its format."""


class ComputeConfigError(ComputeError):
    """A service, load generator or summary argument is out of range."""


class ComputeRecordError(ComputeError):
    """A load generator record or metrics report is inconsistent or of an unknown schema."""
