"""Small statistics used to judge measurements honestly (no SciPy needed).

Examples
--------
>>> binomial_interval(1000, 0.02, 0.99)
(10, 32)
>>> percentile([1, 2, 3, 4, 5], 50)
3.0
"""

from __future__ import annotations

import math


def binomial_interval(n: int, p: float, confidence: float = 0.99) -> tuple[int, int]:
    """Central interval holding at least ``confidence`` of Binomial(n, p) outcomes.

    Exact: sums the probability mass function (in log space, so large ``n`` is fine).

    Parameters
    ----------
    n : int
        Number of trials (packets sent).
    p : float
        Success probability (configured loss as a fraction).
    confidence : float
        Probability mass the interval must hold, e.g. 0.99.

    Returns
    -------
    (low, high) : tuple of int
        Counts such that P(low <= X <= high) >= confidence; each tail left out
        holds at most ``(1 - confidence) / 2``.

    Raises
    ------
    ValueError
        If ``n`` is negative, ``p`` outside 0..1 or ``confidence`` outside (0, 1].

    Examples
    --------
    >>> binomial_interval(100, 0.5, 0.95)
    (40, 60)
    >>> binomial_interval(100, 0.5, 95)
    Traceback (most recent call last):
    ...
    ValueError: confidence=95 must be within (0, 1], e.g. 0.99 for 99 %
    """
    if n < 0 or not 0 <= p <= 1:
        raise ValueError(f"n={n} must be >= 0 and p={p} within 0..1")
    if not 0 < confidence <= 1:
        raise ValueError(f"confidence={confidence} must be within (0, 1], e.g. 0.99 for 99 %")
    if p in (0.0, 1.0):
        k = round(n * p)
        return k, k
    tail = (1 - confidence) / 2
    log_p, log_q = math.log(p), math.log1p(-p)
    pmf = [math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                    + k * log_p + (n - k) * log_q) for k in range(n + 1)]
    low, cumulative = 0, 0.0
    while cumulative + pmf[low] <= tail:
        cumulative += pmf[low]
        low += 1
    high, cumulative = n, 0.0
    while cumulative + pmf[high] <= tail:
        cumulative += pmf[high]
        high -= 1
    return low, high


def percentile(values, q: float) -> float:
    """Linear-interpolation percentile (numpy's default), ``q`` in 0..100.

    Raises
    ------
    ValueError
        If there are no values or ``q`` is outside 0..100.

    Examples
    --------
    >>> percentile([10, 20], 25)
    12.5
    """
    data = sorted(values)
    if not data:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q={q} must be within 0..100")
    position = (len(data) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(data) - 1)
    return float(data[lower] + (data[upper] - data[lower]) * (position - lower))


def within(measured: float, expected: float, rel: float, abs_: float) -> bool:
    """True when ``measured`` is within max(rel * expected, abs_) of ``expected``.

    >>> within(10.4, 10.0, 0.10, 0.5), within(11.2, 10.0, 0.10, 0.5)
    (True, False)
    """
    return abs(measured - expected) <= max(rel * abs(expected), abs_)
