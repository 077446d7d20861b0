"""The telemetry package's exception hierarchy.

Every error raised by :mod:`cpn_net.telemetry` derives from
:class:`TelemetryError`. Bad arguments raise :class:`TelemetryValueError`
(also a :class:`ValueError`); undecodable packets raise
:class:`TelemetryDecodeError`, whose ``reason`` is a short stable code a
collector can count drops by.

Examples
--------
>>> err = TelemetryDecodeError("truncated", "hop-by-hop header: 3 bytes, need >= 8")
>>> err.reason, str(err)
('truncated', 'hop-by-hop header: 3 bytes, need >= 8')
>>> isinstance(TelemetryValueError("x"), ValueError)
True
"""

from __future__ import annotations


class TelemetryError(Exception):
    """Base class of every error raised by :mod:`cpn_net.telemetry`."""


class TelemetryValueError(TelemetryError, ValueError):
    """An argument is out of range or inconsistent; the message names the fix."""


class TelemetryDecodeError(TelemetryError):
    """A packet or option could not be decoded.

    Parameters
    ----------
    reason : str
        Short, stable code (``"truncated"``, ``"misaligned_option"``, ...)
        used as a drop-counter key by collectors.
    message : str
        Human-readable detail naming the field, its value and what was expected.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
