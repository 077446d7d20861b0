"""Compute nodes: a real request/response service with finite capacity, its load and its results.

* :mod:`~cpn_net.compute.protocol` — the UDP request/response datagrams (pure);
* :mod:`~cpn_net.compute.station` — the M/M/c/K queueing station the service
  runs in real time, with background load (pure: the caller passes the clock);
* :mod:`~cpn_net.compute.report` — the metrics agent's CATS Level 0 report (pure);
* :mod:`~cpn_net.compute.service` — ``python -m cpn_net.compute.service``: the
  service process (UDP server, metrics agent, control socket);
* :mod:`~cpn_net.compute.workload` — seeded open-loop Poisson send schedules (pure);
* :mod:`~cpn_net.compute.loadgen` — ``python -m cpn_net.compute.loadgen``: the
  client that sends them and records every request's outcome;
* :mod:`~cpn_net.compute.results` — response-time and SLO summaries (pure).

Examples
--------
>>> issubclass(ComputeProtocolError, ComputeError), issubclass(ComputeError, ValueError)
(True, True)
"""

from cpn_net.compute.errors import (ComputeConfigError, ComputeError, ComputeProtocolError,
                                    ComputeRecordError)

__all__ = ["ComputeConfigError", "ComputeError", "ComputeProtocolError", "ComputeRecordError"]
