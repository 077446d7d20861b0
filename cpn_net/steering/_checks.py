"""Range checks shared by the steering data classes (private)."""

from __future__ import annotations

import math

from cpn_net.steering.errors import MetricsError


def number(owner: str, key: str, value: object, *, low: float = 0.0,
           high: float = math.inf, high_inclusive: bool = True,
           allow_inf: bool = False) -> float:
    """Return ``value`` as a float, or raise naming ``owner``, ``key`` and the range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetricsError(f"{owner}: {key}={value!r} must be a number")
    as_float = float(value)
    if math.isnan(as_float) or (math.isinf(as_float) and not allow_inf):
        raise MetricsError(f"{owner}: {key}={value!r} must be a finite number")
    above = as_float > high if high_inclusive else as_float >= high
    if as_float < low or above:
        closing = "]" if high_inclusive else ")"
        span = f">= {low:g}" if math.isinf(high) else f"in [{low:g}, {high:g}{closing}"
        raise MetricsError(f"{owner}: {key}={value!r} must be {span}")
    return as_float


def count(owner: str, key: str, value: object, *, low: int = 0) -> int:
    """Return ``value`` if it is an int ``>= low``, else raise naming ``owner`` and ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise MetricsError(f"{owner}: {key}={value!r} must be an integer >= {low}")
    return value


def name(owner: str, key: str, value: object) -> str:
    """Return ``value`` if it is a non-empty string, else raise."""
    if not isinstance(value, str) or not value:
        raise MetricsError(f"{owner}: {key}={value!r} must be a non-empty string")
    return value
