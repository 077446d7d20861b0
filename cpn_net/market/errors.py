"""The market package's one exception hierarchy.

Every message names the thing at fault, its value, what was expected and the
fix, e.g. ``order j7: input_mb=-3 must be >= 0; give the input size in MB, 0 or
more``. A malformed order is an error (:class:`OrderError`) and reserves
nothing; an order that is well formed but does not fit is *refused*, which is
an answer, not an error (:class:`cpn_net.market.placement.Refusal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


class MarketError(ValueError):
    """Base class of every error raised by :mod:`cpn_net.market`."""


@dataclass(frozen=True)
class OrderProblem:
    """One thing wrong with an order: the field, what is wrong, and how to fix it.

    Examples
    --------
    >>> str(OrderProblem("j7", "input_mb", -3, "must be >= 0", "give the input size in MB, 0 or more"))
    'order j7: input_mb=-3 must be >= 0; give the input size in MB, 0 or more'
    """

    order: str
    field: str
    value: object
    message: str
    fix: str

    def __str__(self) -> str:
        return f"order {self.order}: {self.field}={self.value!r} {self.message}; {self.fix}"


class OrderError(MarketError):
    """A malformed order: every problem found, each naming its field and the fix.

    Attributes
    ----------
    problems : list of OrderProblem
        In field order; ``str(err)`` prints one a line.
    field : str
        The field of the first problem.

    Examples
    --------
    >>> err = OrderError([OrderProblem("j1", "work_worker_s", 0, "must be > 0", "give the work in worker-seconds")])
    >>> err.field, str(err)
    ('work_worker_s', 'order j1: work_worker_s=0 must be > 0; give the work in worker-seconds')
    """

    def __init__(self, problems: Iterable[OrderProblem]):
        self.problems: list[OrderProblem] = list(problems)
        if not self.problems:
            raise ValueError("OrderError needs at least one OrderProblem")
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def field(self) -> str:
        return self.problems[0].field

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields at fault, in the order found."""
        return tuple(p.field for p in self.problems)


class UnknownOrderError(MarketError, KeyError):
    """A lifecycle call (start, measure, complete, settle) named an order the market does not hold."""

    def __str__(self) -> str:
        return str(self.args[0])


class LifecycleError(MarketError):
    """A lifecycle call came out of order (settling an order never placed, completing twice)."""


class LedgerError(MarketError):
    """A ledger file could not be read or continued (not a chain this module wrote)."""


class NetworkError(MarketError):
    """The site graph cannot carry a market: a link without a delay, a site without an id."""
