"""The book-ahead calendar: worker slots per site and kbit/s per link, booked over time windows.

Each resource's bookings form one step function of time (:class:`StepCalendar`):
sorted breakpoints and the amount booked from each to the next, zero before
the first and after the last. Booking ``amount`` over ``[start, end)`` adds
two breakpoints at most and raises the steps between; the most booked at any
moment of a window (:meth:`StepCalendar.peak`) is a binary search and a scan
of the steps inside the window. With 100,000 orders on 7,000 sites a site
holds a few dozen steps and a busy backbone link a few hundred, so a query
costs microseconds and memory grows with the bookings, not with time.

The representation is canonical (no two neighbouring steps equal, nothing
before the first breakpoint), so booking and then releasing the same window
gives back exactly the calendar there was: a rolled-back placement leaves no
trace (:class:`Transaction`). Amounts are integers (slots; kbit/s for links),
so releases never leave float dust behind.

Links are booked once per undirected link: a slice reserves its rate in both
directions of every link on its path, as :mod:`cpn_net.slicing.admission`
does, so one calendar per link counts each direction exactly.

Examples
--------
>>> c = StepCalendar()
>>> c.add(10.0, 20.0, 3); c.add(15.0, 30.0, 2)
>>> c.peak(0.0, 12.0), c.peak(12.0, 40.0), c.peak(30.0, 40.0)
(3, 5, 0)
>>> c.worst(0.0, 40.0)
(5, 15.0, 20.0)
>>> c.add(10.0, 20.0, -3); c.add(15.0, 30.0, -2); c.steps()
((), ())
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Sequence

import numpy as np

from cpn_net.market.errors import MarketError

SITE = "site"
LINK = "link"


class StepCalendar:
    """The amount booked on one resource as a step function of time."""

    __slots__ = ("_times", "_levels")

    def __init__(self) -> None:
        self._times: list[float] = []
        self._levels: list[int] = []

    def __len__(self) -> int:
        return len(self._times)

    def at(self, t: float) -> int:
        """The amount booked at time ``t``.

        Examples
        --------
        >>> c = StepCalendar(); c.add(1.0, 2.0, 4)
        >>> c.at(0.5), c.at(1.0), c.at(2.0)
        (0, 4, 0)
        """
        i = bisect_right(self._times, t) - 1
        return self._levels[i] if i >= 0 else 0

    def peak(self, start: float, end: float) -> int:
        """The most booked at any moment of ``[start, end)``."""
        times = self._times
        if not times or end <= times[0] or start >= times[-1]:
            return 0
        i = bisect_right(times, start) - 1
        j = bisect_left(times, end, max(i, 0))
        return max(self._levels[max(i, 0):j])

    def worst(self, start: float, end: float) -> tuple[int, float, float]:
        """The peak over ``[start, end)`` and the first stretch of it where it holds.

        Returns
        -------
        (amount, from_s, to_s)
            The stretch is clipped to the window.
        """
        times, levels = self._times, self._levels
        i = bisect_right(times, start) - 1
        best, frm = (levels[i] if i >= 0 else 0), start
        to = times[i + 1] if i + 1 < len(times) and times[i + 1] < end else end
        k = i + 1
        while k < len(times) and times[k] < end:
            if levels[k] > best:
                best, frm = levels[k], times[k]
                to = times[k + 1] if k + 1 < len(times) and times[k + 1] < end else end
            k += 1
        return best, frm, to

    def add(self, start: float, end: float, amount: int) -> None:
        """Book ``amount`` over ``[start, end)`` (a negative amount releases).

        Raises
        ------
        MarketError
            If a release takes more than is booked, or the window is empty.
        """
        if not end > start:
            raise MarketError(f"calendar window [{start!r}, {end!r}) is empty; give end > start")
        if amount == 0:
            return
        times, levels = self._times, self._levels
        i = bisect_left(times, start)
        if i == len(times) or times[i] != start:
            times.insert(i, start)
            levels.insert(i, levels[i - 1] if i > 0 else 0)
        j = bisect_left(times, end, i)
        if j == len(times) or times[j] != end:
            times.insert(j, end)
            levels.insert(j, levels[j - 1])
        levels[i:j] = [level + amount for level in levels[i:j]]
        if amount < 0 and min(levels[i:j]) < 0:
            levels[i:j] = [level - amount for level in levels[i:j]]
            self._coalesce(i, j)
            raise MarketError(f"release of {-amount} over [{start:g}, {end:g}) exceeds what is booked")
        self._coalesce(i, j)

    def _coalesce(self, i: int, j: int) -> None:
        times, levels = self._times, self._levels
        if levels[j] == levels[j - 1]:
            del times[j], levels[j]
        if levels[i] == (levels[i - 1] if i > 0 else 0):
            del times[i], levels[i]

    def steps(self) -> tuple[tuple[float, ...], tuple[int, ...]]:
        """The breakpoints and amounts, for comparing calendars in tests."""
        return tuple(self._times), tuple(self._levels)

    def forget_before(self, t: float) -> None:
        """Drop the steps that end at or before ``t`` (the past no longer matters)."""
        times = self._times
        i = bisect_right(times, t) - 1
        if i <= 0:
            return
        level = self._levels[i]
        del times[:i], self._levels[:i]
        if level == 0:
            del times[0], self._levels[0]


class DenseStepCalendar:
    """A :class:`StepCalendar` kept in numpy arrays, for resources with many steps.

    Same methods and results; inserting a breakpoint copies the arrays, but
    raising a long run of steps or finding its peak is one vector operation
    instead of a Python loop. :class:`BookAhead` switches a calendar to this
    form once it holds more than :data:`DENSE_STEPS` steps (a busy backbone
    link holds thousands).
    """

    __slots__ = ("_times", "_levels")

    def __init__(self, times=(), levels=()) -> None:
        self._times = np.asarray(times, dtype=np.float64)
        self._levels = np.asarray(levels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._times)

    def at(self, t: float) -> int:
        i = int(self._times.searchsorted(t, "right")) - 1
        return int(self._levels[i]) if i >= 0 else 0

    def peak(self, start: float, end: float) -> int:
        times = self._times
        if not len(times) or end <= times[0] or start >= times[-1]:
            return 0
        i = max(int(times.searchsorted(start, "right")) - 1, 0)
        j = int(times.searchsorted(end, "left"))
        return int(self._levels[i:j].max())

    def worst(self, start: float, end: float) -> tuple[int, float, float]:
        times, levels = self._times, self._levels
        i = int(times.searchsorted(start, "right")) - 1
        j = int(times.searchsorted(end, "left"))
        lo = max(i, 0)
        if j <= lo:
            return (int(levels[i]) if i >= 0 else 0), start, end
        k = lo + int(levels[lo:j].argmax())
        best = int(levels[k])
        if i >= 0 and k == i:
            frm = start
        elif i < 0 and best == 0:
            k, frm = -1, start
        else:
            frm = float(times[k])
        to = float(times[k + 1]) if k + 1 < len(times) and times[k + 1] < end else end
        return best, frm, to

    def _insert(self, i: int, t: float) -> None:
        level = self._levels[i - 1] if i > 0 else 0
        self._times = np.concatenate((self._times[:i], (t,), self._times[i:]))
        self._levels = np.concatenate((self._levels[:i], (level,), self._levels[i:]))

    def _delete(self, i: int) -> None:
        self._times = np.concatenate((self._times[:i], self._times[i + 1:]))
        self._levels = np.concatenate((self._levels[:i], self._levels[i + 1:]))

    def add(self, start: float, end: float, amount: int) -> None:
        if not end > start:
            raise MarketError(f"calendar window [{start!r}, {end!r}) is empty; give end > start")
        if amount == 0:
            return
        i = int(self._times.searchsorted(start, "left"))
        if i == len(self._times) or self._times[i] != start:
            self._insert(i, start)
        j = int(self._times.searchsorted(end, "left"))
        if j == len(self._times) or self._times[j] != end:
            self._insert(j, end)
        run = self._levels[i:j]
        run += amount
        if amount < 0 and run.min() < 0:
            run -= amount
            self._coalesce(i, j)
            raise MarketError(f"release of {-amount} over [{start:g}, {end:g}) exceeds what is booked")
        self._coalesce(i, j)

    def _coalesce(self, i: int, j: int) -> None:
        levels = self._levels
        if levels[j] == levels[j - 1]:
            self._delete(j)
        if self._levels[i] == (self._levels[i - 1] if i > 0 else 0):
            self._delete(i)

    def steps(self) -> tuple[tuple[float, ...], tuple[int, ...]]:
        return tuple(self._times.tolist()), tuple(self._levels.tolist())

    def forget_before(self, t: float) -> None:
        i = int(self._times.searchsorted(t, "right")) - 1
        if i <= 0:
            return
        start = i + 1 if self._levels[i] == 0 else i
        self._times, self._levels = self._times[start:].copy(), self._levels[start:].copy()


#: Steps above which a calendar is kept in numpy arrays; below :data:`SPARSE_STEPS` it returns to lists.
DENSE_STEPS = 512
SPARSE_STEPS = 128


class BookAhead:
    """The market's calendars: one per site (slots) and one per link (kbit/s).

    Capacities live with the supply (site surplus) and the network (link
    rates); the calendars hold only what is booked.

    Examples
    --------
    >>> book = BookAhead(sites=2, links=1)
    >>> book.add(SITE, 1, 0.0, 10.0, 2); book.peak(SITE, 1, 5.0, 6.0), book.peak(LINK, 0, 5.0, 6.0)
    (2, 0)
    """

    def __init__(self, sites: int, links: int):
        self.sites = [StepCalendar() for _ in range(sites)]
        self.links = [StepCalendar() for _ in range(links)]

    def calendar(self, kind: str, index: int):
        return self.sites[index] if kind == SITE else self.links[index]

    def peak(self, kind: str, index: int, start: float, end: float) -> int:
        return (self.sites if kind == SITE else self.links)[index].peak(start, end)

    def add(self, kind: str, index: int, start: float, end: float, amount: int) -> None:
        calendars = self.sites if kind == SITE else self.links
        calendar = calendars[index]
        calendar.add(start, end, amount)
        if len(calendar) > DENSE_STEPS and isinstance(calendar, StepCalendar):
            calendars[index] = DenseStepCalendar(*calendar.steps())

    def snapshot(self) -> tuple:
        """Every non-empty calendar's steps: equal snapshots mean equal bookings."""
        return (tuple((i, c.steps()) for i, c in enumerate(self.sites) if len(c)),
                tuple((i, c.steps()) for i, c in enumerate(self.links) if len(c)))

    def forget_before(self, t: float) -> None:
        """Drop every step that ended by ``t``."""
        for calendars in (self.sites, self.links):
            for index, calendar in enumerate(calendars):
                if len(calendar):
                    calendar.forget_before(t)
                    if len(calendar) < SPARSE_STEPS and isinstance(calendar, DenseStepCalendar):
                        sparse = StepCalendar()
                        sparse._times, sparse._levels = (list(x) for x in calendar.steps())
                        calendars[index] = sparse


class Transaction:
    """Bookings applied one by one, undone in reverse on :meth:`rollback`: all or nothing.

    Examples
    --------
    >>> book = BookAhead(sites=1, links=1)
    >>> before = book.snapshot()
    >>> tx = Transaction(book); tx.add(SITE, 0, 0.0, 5.0, 1); tx.add(LINK, 0, 0.0, 5.0, 800)
    >>> tx.rollback(); book.snapshot() == before
    True
    """

    def __init__(self, book: BookAhead):
        self.book = book
        self.applied: list[tuple[str, int, float, float, int]] = []

    def add(self, kind: str, index: int, start: float, end: float, amount: int) -> None:
        self.book.add(kind, index, start, end, amount)
        self.applied.append((kind, index, start, end, amount))

    def rollback(self) -> None:
        while self.applied:
            kind, index, start, end, amount = self.applied.pop()
            self.book.add(kind, index, start, end, -amount)


def book_holds(book: BookAhead, holds: Sequence[tuple[str, int, float, float, int]], sign: int = 1) -> None:
    """Apply (or with ``sign=-1`` release) holds outside a transaction."""
    for kind, index, start, end, amount in holds:
        if end > start:
            book.add(kind, index, start, end, sign * amount)
