"""Orders: what buyers ask the market for, and the checks a well-formed order passes.

Two kinds:

* :class:`BatchOrder` — ``work_worker_s`` of work (worker-seconds) on
  ``workers`` slots in parallel, whose ``input_mb`` of data sits at site
  ``source``; optionally ``result_mb`` of results go back to ``source``; done
  by ``deadline_s``; at most ``max_cny_per_worker_s``. It starts at
  ``start_s`` (default: when submitted).
* :class:`StreamOrder` — requests to ``service`` from clients at ``source``
  at ``rate_rps``, answered within ``p99_ms`` (99th percentile, round trip
  included), from ``start_s`` for ``duration_s``; each request carries
  ``request_kb`` and its response ``response_kb`` (kB = 1,000 bytes).

Times are seconds on the market's clock (the ``now_s`` every call is given).
Sizes are MB = 10^6 bytes; rates Mbit/s = 10^6 bit/s.

:func:`validate_order` collects every problem of an order and raises one
:class:`~cpn_net.market.errors.OrderError` naming each field and its fix:
negative or missing sizes, an unknown site or service, a deadline in the past
or shorter than the fastest possible transfer, a price below the market's
floor (the lowest base price of a site that could serve it), more workers or
requests than any site could take. A malformed order reserves nothing.

Examples
--------
>>> order = BatchOrder("j1", "east", work_worker_s=600, input_mb=100, deadline_s=3600,
...                    max_cny_per_worker_s=0.01)
>>> order.kind, order.to_dict()["input_mb"]
('batch', 100)
>>> order_from_dict({"kind": "stream", "id": "s1", "service": "echo", "source": "east", "rate_rps": 50,
...                  "p99_ms": 80, "start_s": 0, "duration_s": 600, "max_cny_per_worker_s": 0.01}).rate_rps
50
>>> order_from_dict({"kind": "batch", "id": "j2", "source": "east", "work": 5})
Traceback (most recent call last):
...
cpn_net.market.errors.OrderError: order j2: work=5 is not a batch order field; did you mean 'work_worker_s'?
order j2: work_worker_s=None is missing; give the work in worker-seconds, above 0
order j2: input_mb=None is missing; give the input size in MB, 0 or more
order j2: deadline_s=None is missing; give the time the results are due, in seconds on the market clock
order j2: max_cny_per_worker_s=None is missing; give the most you pay per worker-second
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Union

from cpn_net.market.errors import OrderError, OrderProblem
from cpn_net.market.sizing import PAYLOAD_SHARE
from cpn_net.model.errors import unknown_fix

ORDER_KINDS = ("batch", "stream")
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_ID_FIX = "give an id of 1-64 letters, digits, '_', '.', ':' or '-', unique in the market"


@dataclass(frozen=True)
class BatchOrder:
    """A batch job: work, its input data at a source site, a deadline and a price cap."""

    id: str
    source: str
    work_worker_s: float
    input_mb: float
    deadline_s: float
    max_cny_per_worker_s: float
    result_mb: float = 0.0
    workers: int = 1
    start_s: float | None = None

    @property
    def kind(self) -> str:
        return "batch"

    def to_dict(self) -> dict:
        return {"kind": "batch", "id": self.id, "source": self.source, "work_worker_s": self.work_worker_s,
                "input_mb": self.input_mb, "deadline_s": self.deadline_s,
                "max_cny_per_worker_s": self.max_cny_per_worker_s, "result_mb": self.result_mb,
                "workers": self.workers, "start_s": self.start_s}


@dataclass(frozen=True)
class StreamOrder:
    """A request stream to a service at a rate, with a p99 latency bound, for a while."""

    id: str
    service: str
    source: str
    rate_rps: float
    p99_ms: float
    start_s: float
    duration_s: float
    max_cny_per_worker_s: float
    request_kb: float = 1.0
    response_kb: float = 1.0

    @property
    def kind(self) -> str:
        return "stream"

    def to_dict(self) -> dict:
        return {"kind": "stream", "id": self.id, "service": self.service, "source": self.source,
                "rate_rps": self.rate_rps, "p99_ms": self.p99_ms, "start_s": self.start_s,
                "duration_s": self.duration_s, "max_cny_per_worker_s": self.max_cny_per_worker_s,
                "request_kb": self.request_kb, "response_kb": self.response_kb}


Order = Union[BatchOrder, StreamOrder]

#: The fix for each field, used for type and range problems alike.
FIXES = {
    "id": _ID_FIX,
    "source": "give the name of the site the data (or the clients) are at",
    "service": "give the name of a service of the topology",
    "work_worker_s": "give the work in worker-seconds, above 0",
    "input_mb": "give the input size in MB, 0 or more",
    "result_mb": "give the result size in MB, 0 or more",
    "deadline_s": "give the time the results are due, in seconds on the market clock",
    "max_cny_per_worker_s": "give the most you pay per worker-second",
    "workers": "give the worker slots to run on in parallel, 1 or more",
    "start_s": "give the start time in seconds on the market clock, now or later",
    "rate_rps": "give the request rate above 0 per second",
    "p99_ms": "give the 99th-percentile response time bound in ms, above 0",
    "duration_s": "give how long the stream runs, above 0 s",
    "request_kb": "give the request size in kB, 0 or more",
    "response_kb": "give the response size in kB, 0 or more",
}
#: Words people write for a field, for "did you mean" hints.
ALIASES = {"work": "work_worker_s", "work_s": "work_worker_s", "input": "input_mb", "data_mb": "input_mb",
           "result": "result_mb", "output_mb": "result_mb", "deadline": "deadline_s", "start": "start_s",
           "price": "max_cny_per_worker_s", "max_price": "max_cny_per_worker_s", "rate": "rate_rps",
           "p99": "p99_ms", "latency_ms": "p99_ms", "duration": "duration_s", "site": "source",
           "slots": "workers"}
_FIELDS = {"batch": [f.name for f in dataclasses.fields(BatchOrder)],
           "stream": [f.name for f in dataclasses.fields(StreamOrder)]}
_REQUIRED = {kind: [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
             for kind, cls in (("batch", BatchOrder), ("stream", StreamOrder))}


def order_from_dict(data: Mapping[str, Any]) -> Order:
    """An order from JSON-like data (``kind`` plus the fields); types are checked by :func:`validate_order`.

    Raises
    ------
    OrderError
        Naming an unknown ``kind``, unknown keys (with the closest field) and missing fields.
    """
    if not isinstance(data, Mapping):
        raise OrderError([OrderProblem("?", "(order)", data, "is not a mapping", "send the order as key: value pairs")])
    order_id = str(data.get("id", "?"))
    kind = data.get("kind")
    if kind not in ORDER_KINDS:
        raise OrderError([OrderProblem(order_id, "kind", kind, "is not an order kind",
                                       "use kind: batch (a job with data and a deadline) or kind: stream "
                                       "(requests to a service)")])
    problems = []
    for key in data:
        if key != "kind" and key not in _FIELDS[kind]:
            alias = ALIASES.get(str(key).lower())
            fix = (f"did you mean {alias!r}?" if alias in _FIELDS[kind]
                   else unknown_fix(str(key), _FIELDS[kind], "fields"))
            problems.append(OrderProblem(order_id, str(key), data[key], f"is not a {kind} order field", fix))
    for key in _REQUIRED[kind]:
        if key not in data:
            problems.append(OrderProblem(order_id, key, None, "is missing", FIXES[key]))
    if problems:
        raise OrderError(problems)
    values = {k: v for k, v in data.items() if k != "kind"}
    return BatchOrder(**values) if kind == "batch" else StreamOrder(**values)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Problems:
    def __init__(self, order_id: str):
        self.order_id = order_id
        self.found: list[OrderProblem] = []
        self.bad: set[str] = set()

    def add(self, field: str, value: Any, message: str, fix: str | None = None) -> None:
        self.found.append(OrderProblem(self.order_id, field, value, message, fix or FIXES[field]))
        self.bad.add(field)

    def number(self, order, field: str, *, above: float | None = None, at_least: float | None = None) -> None:
        value = getattr(order, field)
        if not _number(value):
            self.add(field, value, "is not a finite number")
        elif above is not None and value <= above:
            self.add(field, value, f"must be > {above:g}")
        elif at_least is not None and value < at_least:
            self.add(field, value, f"must be >= {at_least:g}")

    def site(self, order, field: str, supply) -> None:
        value = getattr(order, field)
        if not isinstance(value, str) or value not in supply.index:
            self.add(field, value, "is not a site of the market", unknown_fix(value, supply.sites, "sites"))

    def ok(self, *fields: str) -> bool:
        return not self.bad.intersection(fields)


def validate_order(order: Order, supply, network, now_s: float, *, taken_ids=()) -> None:
    """Check an order against the market; raise one OrderError listing every problem.

    Parameters
    ----------
    order : BatchOrder or StreamOrder
    supply : Supply
        Sites, surplus, base prices and services (:class:`cpn_net.market.offers.Supply`).
    network : SiteNetwork
        The site graph (:class:`cpn_net.market.network.SiteNetwork`): the
        fastest link and least delay out of the source bound the transfer.
    now_s : float
        The market clock.
    taken_ids : container of str
        Ids already used.

    Raises
    ------
    OrderError
        Each problem names its field, the value and the fix.

    Examples
    --------
    >>> import networkx as nx
    >>> from cpn_net.market.network import SiteNetwork
    >>> from cpn_net.market.offers import Supply
    >>> G = nx.Graph(); G.add_nodes_from([("east", {"id": 1}), ("west", {"id": 2})])
    >>> G.add_edge("east", "west", delay_ms=10.0, rate_mbps=100.0)
    >>> supply, net = Supply(["east", "west"], [0, 8], [0.002, 0.001]), SiteNetwork(G)
    >>> validate_order(BatchOrder("j1", "east", 600, 100, 3600, 0.01), supply, net, now_s=0.0)
    >>> validate_order(BatchOrder("j1", "east", 600, -1, 3600, 0.0005), supply, net, now_s=0.0)
    Traceback (most recent call last):
    ...
    cpn_net.market.errors.OrderError: order j1: input_mb=-1 must be >= 0; give the input size in MB, 0 or more
    order j1: max_cny_per_worker_s=0.0005 is below the market's floor, 0.001 (...); offer at least 0.001 ...
    """
    if isinstance(order, BatchOrder):
        _validate_batch(order, supply, network, now_s, taken_ids)
    elif isinstance(order, StreamOrder):
        _validate_stream(order, supply, now_s, taken_ids)
    else:
        raise OrderError([OrderProblem("?", "(order)", type(order).__name__, "is not an order",
                                       "send a BatchOrder or StreamOrder (or order_from_dict data)")])


def _check_id(p: _Problems, order, taken_ids) -> None:
    if not isinstance(order.id, str) or not ID_PATTERN.fullmatch(order.id):
        p.add("id", order.id, "is not a valid order id")
    elif order.id in taken_ids:
        p.add("id", order.id, "is already used by another order", "give the order a new id")


def _validate_batch(order: BatchOrder, supply, network, now_s: float, taken_ids) -> None:
    p = _Problems(str(order.id))
    _check_id(p, order, taken_ids)
    p.site(order, "source", supply)
    p.number(order, "work_worker_s", above=0)
    p.number(order, "input_mb", at_least=0)
    p.number(order, "result_mb", at_least=0)
    p.number(order, "deadline_s")
    p.number(order, "max_cny_per_worker_s", above=0)
    workers = order.workers
    most, best = supply.most_surplus()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        p.add("workers", workers, "is not an int >= 1")
    elif workers > most:
        p.add("workers", workers, f"exceeds the largest surplus of any site ({most} slots at {best or 'none'})",
              f"ask for at most {most} workers, or split the job into several orders")
    start = now_s
    if order.start_s is not None:
        p.number(order, "start_s")
        if p.ok("start_s"):
            if order.start_s < now_s:
                p.add("start_s", order.start_s, f"is before now ({now_s:g} s)",
                      f"give a start of {now_s:g} or later, or leave it out to start now")
            start = max(now_s, order.start_s)
    if p.ok("deadline_s", "start_s") and order.deadline_s <= start:
        when = "now" if start == now_s else "the start"
        p.add("deadline_s", order.deadline_s, f"is not after {when} ({start:g} s): it is in the past",
              f"give a deadline later than {start:g}")
    elif p.ok("deadline_s", "start_s", "source", "work_worker_s", "input_mb", "result_mb", "workers"):
        fastest, how = _fastest_batch_s(order, supply, network)
        if order.deadline_s - start < fastest:
            p.add("deadline_s", order.deadline_s,
                  f"leaves {order.deadline_s - start:g} s, shorter than the fastest possible transfer and work: "
                  f"{how} take {fastest:g} s",
                  f"give a deadline of at least {start + fastest:g}, send less data or ask for more workers")
    if p.ok("max_cny_per_worker_s", "workers"):
        floor = supply.floor_price(workers)
        if floor is not None and order.max_cny_per_worker_s < floor:
            p.add("max_cny_per_worker_s", order.max_cny_per_worker_s,
                  f"is below the market's floor, {floor:g} (the lowest base price of a site with "
                  f"{workers} free slots)", f"offer at least {floor:g} per worker-second")
    if p.found:
        raise OrderError(p.found)


def _fastest_batch_s(order: BatchOrder, supply, network) -> tuple[float, str]:
    """The least time any placement could take on an idle network, and how it is made up."""
    work_s = order.work_worker_s / order.workers
    work = f"{order.work_worker_s:g} worker-s on {order.workers} worker(s)"
    if supply.surplus[supply.index[order.source]] >= order.workers:
        return work_s, f"{work} at {order.source} itself"
    mbit = 8.0 * (order.input_mb + order.result_mb)
    widest = network.widest_out_mbps(order.source)
    if widest is None or mbit == 0:
        transfer_s = 0.0
        over = "an unshaped link" if mbit else "no data"
    else:
        transfer_s = mbit / (widest * PAYLOAD_SHARE)
        over = f"its fastest link ({widest:g} Mbit/s)"
    legs = (order.input_mb > 0) + (order.result_mb > 0)
    delay_s = legs * network.least_delay_out_ms(order.source) / 1000.0
    return (work_s + transfer_s + delay_s,
            f"moving {order.input_mb + order.result_mb:g} MB out of {order.source} over {over} and {work}")


def _validate_stream(order: StreamOrder, supply, now_s: float, taken_ids) -> None:
    p = _Problems(str(order.id))
    _check_id(p, order, taken_ids)
    p.site(order, "source", supply)
    service = supply.services.get(order.service) if isinstance(order.service, str) else None
    if service is None:
        p.add("service", order.service, "is not a service of the market",
              unknown_fix(order.service, list(supply.services), "services"))
    p.number(order, "rate_rps", above=0)
    p.number(order, "p99_ms", above=0)
    p.number(order, "start_s")
    p.number(order, "duration_s", above=0)
    p.number(order, "max_cny_per_worker_s", above=0)
    p.number(order, "request_kb", at_least=0)
    p.number(order, "response_kb", at_least=0)
    if p.ok("start_s") and order.start_s < now_s:
        p.add("start_s", order.start_s, f"is before now ({now_s:g} s)", f"give a start of {now_s:g} or later")
    view = supply.service_view(order.service) if service is not None else None
    if view is not None and not view.offering.any():
        p.add("service", order.service, "is offered by no site with surplus now",
              "choose a service some compute node with surplus offers, or wait for surplus")
    elif view is not None:
        if p.ok("p99_ms") and order.p99_ms <= view.fastest_ms:
            p.add("p99_ms", order.p99_ms, f"is not above the service time of {order.service} at any site "
                  f"({view.fastest_ms:g} ms at best)", f"give a bound above {view.fastest_ms:g} ms")
        if p.ok("rate_rps") and order.rate_rps >= view.most_rps:
            p.add("rate_rps", order.rate_rps, f"needs more slots than any site has for {order.service} "
                  f"(the largest serves under {view.most_rps:g} requests/s)",
                  f"ask for less than {view.most_rps:g} requests/s, or split the stream into several orders")
        if p.ok("max_cny_per_worker_s") and order.max_cny_per_worker_s < view.floor_price:
            p.add("max_cny_per_worker_s", order.max_cny_per_worker_s,
                  f"is below the market's floor, {view.floor_price:g} (the lowest base price of a site "
                  f"offering {order.service})", f"offer at least {view.floor_price:g} per worker-second")
    if p.found:
        raise OrderError(p.found)
