"""The slicing package's one exception hierarchy.

Messages name the slice, the thing at fault and its value, and the fix, e.g.
``slice gold refused: no path east->west with 80 Mbit/s; bottleneck link
centre-east has 50 Mbit/s residual, 30 Mbit/s short``.
"""

from __future__ import annotations


class SlicingError(ValueError):
    """Base class of every error raised by :mod:`cpn_net.slicing`."""


class SliceRefused(SlicingError):
    """Admission control refused a slice: its guarantees do not fit.

    Attributes
    ----------
    slice : str
        The refused slice's name.
    reason : {"bandwidth", "latency", "loss", "connectivity", "marks"}
        Which guarantee does not fit (``marks``: every slice mark is held on
        the slice's links).
    link : tuple of str or None
        The bottleneck link (sorted site pair) when ``reason`` is ``bandwidth``;
        the link with the most slices when it is ``marks``.
    residual_mbps : float or None
        The bottleneck's residual capacity before this slice.
    shortfall_mbps : float or None
        How much more the bottleneck would need: the rate minus the residual
        of the widest path's narrowest link, the least any path falls short.
    path : tuple of str or None
        The best path found, when ``reason`` is ``latency`` or ``loss``.

    Examples
    --------
    >>> err = SliceRefused("slice s refused: ...", slice="s", reason="bandwidth", link=("a", "b"),
    ...                    residual_mbps=50.0, shortfall_mbps=30.0)
    >>> err.link, err.shortfall_mbps, isinstance(err, SlicingError)
    (('a', 'b'), 30.0, True)
    """

    def __init__(self, message: str, *, slice: str, reason: str, link: tuple | None = None,
                 residual_mbps: float | None = None, shortfall_mbps: float | None = None,
                 path: tuple | None = None):
        super().__init__(message)
        self.slice = slice
        self.reason = reason
        self.link = link
        self.residual_mbps = residual_mbps
        self.shortfall_mbps = shortfall_mbps
        self.path = path
