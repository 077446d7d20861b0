"""Expected response time of a request: network round trip plus compute.

The estimate every latency-aware policy ranks on, written so that it splits
into a *network term* (depends only on the path) and a *compute term*
(depends only on the instance's metrics)::

    response_ms = client_side_ms + network_delay_ms(path) + compute_delay_ms(metrics)

    network_delay_ms = 2 * delay_ms + loss_penalty_ms
    loss_penalty_ms  = k * p / (1 - p) * rto_ms           (p = loss_pct / 100)
    compute_delay_ms = waiting_ms + service_time_ms
    waiting_ms       = max(erlang_c_wait_ms, backlog_ms)

This is the sum the IETF CATS use cases use (draft-ietf-cats-usecases-
requirements, AR/VR: client-side + compute + network latency against one
budget), where the network part is the round trip.

* **Round trip**: telemetry measures one-way delay; request out and response
  back make ``2 * delay_ms`` (symmetric paths assumed).
* **Loss penalty**: each of the ``k`` packets of an exchange (request and
  response, ``k = 2``) is lost independently with probability ``p``; the
  number of retransmissions before success is geometric with mean
  ``p / (1 - p)``, each costing a retransmission timeout (Linux's minimum RTO,
  200 ms, dominates on short request/response flows; RFC 6298 §2 sets the
  timer rules). ``p = 1`` gives ``inf``: the path is unusable.
* **Waiting**: the node is an M/M/c queue with ``c = workers`` servers of mean
  service time ``s`` and utilisation ``ρ`` (the report's ``utilisation``, i.e.
  ``λ / (c μ)``, so ``λ ≈ ρ · capacity``). Its mean wait is the Erlang C
  formula (Kleinrock, *Queueing Systems* vol. 1, 1975, §3.5)::

      W_q = C(c, a) · s / (c (1 - ρ)),   a = c ρ offered load in Erlangs

  ρ is capped (default 0.99) because ``W_q`` diverges at saturation, where the
  observed backlog takes over: ``backlog_ms = queue_len · s / c`` is what a new
  arrival must wait for the requests already queued (FIFO, c servers). The
  larger of the two is used — the model from utilisation when the queue is
  short, the measured queue when a burst outran the model.

Examples
--------
>>> path = PathMetrics(delay_ms=2.5, loss_pct=0.0, available_mbps=100.0)
>>> node = ComputeMetrics("k3-1", 0.0, utilisation=0.0, queue_len=0,
...                       capacity_rps=200.0, workers=1, service_time_ms=5.0)
>>> expected_response_ms(path, node, client_side_ms=9.4)
19.4
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cpn_net.steering import _checks
from cpn_net.steering.errors import MetricsError
from cpn_net.steering.metrics import ComputeMetrics
from cpn_net.steering.model import PathMetrics


@dataclass(frozen=True, slots=True)
class ResponseModel:
    """Parameters of the response-time estimate.

    Parameters
    ----------
    retransmit_timeout_ms : float
        Cost of one lost packet (Linux ``TCP_RTO_MIN`` is 200 ms).
    packets_per_exchange : int
        Packets whose loss stalls a request/response exchange.
    utilisation_cap : float
        Utilisation fed to Erlang C at most, in ``[0, 1)``.

    Examples
    --------
    >>> ResponseModel(utilisation_cap=1.0)
    Traceback (most recent call last):
    ...
    cpn_net.steering.errors.MetricsError: response model: utilisation_cap=1.0 must be in [0, 1)
    """

    retransmit_timeout_ms: float = 200.0
    packets_per_exchange: int = 2
    utilisation_cap: float = 0.99

    def __post_init__(self) -> None:
        owner = "response model"
        _checks.number(owner, "retransmit_timeout_ms", self.retransmit_timeout_ms)
        _checks.count(owner, "packets_per_exchange", self.packets_per_exchange)
        _checks.number(owner, "utilisation_cap", self.utilisation_cap,
                       high=1.0, high_inclusive=False)


DEFAULT_MODEL = ResponseModel()


def erlang_c(workers: int, offered_erlangs: float) -> float:
    """Probability that an arrival must wait in an M/M/c queue (Erlang C).

    Computed from the Erlang B recursion ``B_k = a B_{k-1} / (k + a B_{k-1})``,
    ``B_0 = 1``, which is numerically stable for large ``c``, then
    ``C = c B_c / (c - a (1 - B_c))``.

    Parameters
    ----------
    workers : int
        Number of servers ``c >= 1``.
    offered_erlangs : float
        Offered load ``a = λ / μ``, ``0 <= a < c``.

    Returns
    -------
    float
        ``C(c, a)`` in ``[0, 1)``.

    Raises
    ------
    MetricsError
        If ``a >= c`` (no steady state) or an argument is out of range.

    Examples
    --------
    >>> erlang_c(1, 0.5)            # M/M/1: P(wait) = ρ
    0.5
    >>> round(erlang_c(2, 1.0), 6)  # M/M/2 at ρ = 0.5: 1/3
    0.333333
    """
    _checks.count("erlang C", "workers", workers, low=1)
    _checks.number("erlang C", "offered_erlangs", offered_erlangs)
    if offered_erlangs >= workers:
        raise MetricsError(f"erlang C: offered_erlangs={offered_erlangs!r} must be < "
                           f"workers={workers} (the queue has no steady state)")
    blocking = 1.0
    for k in range(1, workers + 1):
        blocking = offered_erlangs * blocking / (k + offered_erlangs * blocking)
    return workers * blocking / (workers - offered_erlangs * (1.0 - blocking))


def queueing_delay_ms(metrics: ComputeMetrics, model: ResponseModel = DEFAULT_MODEL) -> float:
    """Expected wait before service: ``max(Erlang C wait, observed backlog)``.

    Parameters
    ----------
    metrics : ComputeMetrics
        The node's Level 0 report.
    model : ResponseModel
        Utilisation cap.

    Returns
    -------
    float
        Waiting time in ms, ``>= 0``.

    Examples
    --------
    >>> node = ComputeMetrics("k1-1", 0.0, 0.5, 0, 100.0, 1, 10.0)
    >>> queueing_delay_ms(node)            # M/M/1: ρ s / (1 - ρ)
    10.0
    >>> queueing_delay_ms(ComputeMetrics("k1-1", 0.0, 0.5, 30, 100.0, 2, 10.0))
    150.0
    """
    workers = metrics.workers
    utilisation = min(metrics.utilisation, model.utilisation_cap)
    service_ms = metrics.service_time_ms
    wait_ms = (erlang_c(workers, workers * utilisation) * service_ms
               / (workers * (1.0 - utilisation)))
    backlog_ms = metrics.queue_len * service_ms / workers
    return max(wait_ms, backlog_ms)


def compute_delay_ms(metrics: ComputeMetrics, model: ResponseModel = DEFAULT_MODEL) -> float:
    """Expected time at the node: waiting plus service.

    Examples
    --------
    >>> compute_delay_ms(ComputeMetrics("k1-1", 0.0, 0.0, 0, 100.0, 4, 4.0))
    4.0
    """
    return queueing_delay_ms(metrics, model) + metrics.service_time_ms


def loss_penalty_ms(loss_pct: float, model: ResponseModel = DEFAULT_MODEL) -> float:
    """Expected retransmission delay added by one-way loss ``loss_pct``.

    Parameters
    ----------
    loss_pct : float
        Loss in percent, ``[0, 100]``.
    model : ResponseModel
        Timeout and packets per exchange.

    Returns
    -------
    float
        ``k * p / (1 - p) * rto_ms``; ``inf`` at 100 % loss.

    Examples
    --------
    >>> loss_penalty_ms(0.0), loss_penalty_ms(1.0), loss_penalty_ms(100.0)
    (0.0, 4.040404040404041, inf)
    """
    fraction = loss_pct / 100.0
    if fraction >= 1.0:
        return math.inf
    return model.packets_per_exchange * fraction / (1.0 - fraction) * model.retransmit_timeout_ms


def network_delay_ms(path: PathMetrics, model: ResponseModel = DEFAULT_MODEL) -> float:
    """Round trip plus loss penalty on a path.

    Examples
    --------
    >>> network_delay_ms(PathMetrics(4.5, 0.0, 10.0))
    9.0
    """
    return 2.0 * path.delay_ms + loss_penalty_ms(path.loss_pct, model)


def expected_response_ms(path: PathMetrics, metrics: ComputeMetrics, *,
                         client_side_ms: float = 0.0,
                         model: ResponseModel = DEFAULT_MODEL) -> float:
    """Expected response time of one request over ``path`` to the node.

    Parameters
    ----------
    path : PathMetrics
        Path from the client's site to the node's site.
    metrics : ComputeMetrics
        The node's report.
    client_side_ms : float
        Latency outside network and compute (device side).
    model : ResponseModel
        Estimate parameters.

    Returns
    -------
    float
        ``client_side_ms + network_delay_ms(path) + compute_delay_ms(metrics)``.

    Examples
    --------
    >>> node = ComputeMetrics("k1-1", 0.0, 0.0, 0, 250.0, 1, 4.0)
    >>> expected_response_ms(PathMetrics(4.5, 0.0, 10.0), node, client_side_ms=9.4)
    22.4
    """
    return client_side_ms + network_delay_ms(path, model) + compute_delay_ms(metrics, model)
