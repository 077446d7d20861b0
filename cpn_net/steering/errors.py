"""The steering package's one exception hierarchy.

Every error message names the key and value at fault, what was expected,
and how to fix it, e.g. ``metrics k3-1: utilisation=1.4 must be in [0, 1]``.
"""

from __future__ import annotations


class SteeringError(ValueError):
    """Base class of every error raised by :mod:`cpn_net.steering`."""


class MetricsError(SteeringError):
    """A compute metrics report or path measurement is out of range."""


class StateError(SteeringError):
    """The steering state was asked about, or given, something it does not know."""


class NoCandidateError(SteeringError):
    """No healthy, reachable instance of the requested service exists."""
