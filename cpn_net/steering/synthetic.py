"""Seeded synthetic steering states for tests, benchmarks and analytic studies.

Sites are dropped uniformly in a square of ``side_km`` and joined by a
random geometric graph (sites closer than ``radius`` times the side are
linked; the radius grows until the graph is connected). A WAN link's
one-way delay is its length at 4.9 µs/km (light in fibre) times a route
stretch of 1.5 (the national plan's target for hub links); its loss and
capacity are drawn per link. Path metrics follow the least-delay route:
delays add, delivery probabilities multiply, available bandwidth is the
narrowest link's. Each site hosts ``nodes_per_site`` compute nodes named and
addressed by :mod:`cpn_net.model.addressing`, all offering one service.

Everything is drawn from ``random.Random(seed)``: same seed, same state.

Examples
--------
>>> state = synthetic_state(seed=1, sites=4, nodes_per_site=2)
>>> len(state.instances_of(SERVICE)), state.sites_of(SERVICE)
(8, ('site1', 'site2', 'site3', 'site4'))
>>> state.network.path("site1", "site2").delay_ms > 0
True
"""

from __future__ import annotations

import math
import random

import networkx as nx

from cpn_net.model.addressing import MAX_HOSTS_PER_KIND, host_address, host_name
from cpn_net.steering.errors import StateError
from cpn_net.steering.metrics import ComputeMetrics
from cpn_net.steering.model import PathMetrics, ServiceInstance
from cpn_net.steering.state import SteeringState

SERVICE = "svc"
FIBRE_MS_PER_KM = 0.0049
ROUTE_STRETCH = 1.5


def site_name(site_id: int) -> str:
    """Name of synthetic site ``site_id``: ``site<id>``."""
    return f"site{site_id}"


def random_metrics(rng: random.Random, node: str, reported_at_s: float) -> ComputeMetrics:
    """A plausible Level 0 report: 1–16 workers, 2–30 ms service, 5–95 % busy.

    Parameters
    ----------
    rng : random.Random
        Source of randomness.
    node : str
        Compute node name.
    reported_at_s : float
        Report time.

    Returns
    -------
    ComputeMetrics

    Examples
    --------
    >>> random_metrics(random.Random(3), "k1-1", 0.0).workers in (1, 2, 4, 8, 16)
    True
    """
    workers = rng.choice((1, 2, 4, 8, 16))
    service_time_ms = rng.uniform(2.0, 30.0)
    utilisation = rng.uniform(0.05, 0.95)
    queue_len = int(rng.expovariate(1.0) * workers * utilisation)
    return ComputeMetrics(node, reported_at_s, utilisation, queue_len,
                          capacity_rps=workers * 1000.0 / service_time_ms, workers=workers,
                          service_time_ms=service_time_ms,
                          price_cny_per_hour=rng.uniform(20.0, 120.0),
                          carbon_g_per_kwh=rng.uniform(100.0, 900.0))


def wan_graph(rng: random.Random, sites: int, *, side_km: float = 3000.0,
              radius: float | None = None) -> nx.Graph:
    """A connected random geometric WAN of ``sites`` nodes (ids 1..sites).

    Edges carry ``delay_ms``, ``loss_pct`` (0–0.05 %) and ``capacity_mbps``.

    Raises
    ------
    StateError
        If ``sites < 1``.

    Examples
    --------
    >>> graph = wan_graph(random.Random(0), 10)
    >>> nx.is_connected(graph), graph.number_of_nodes()
    (True, 10)
    """
    if sites < 1:
        raise StateError(f"synthetic WAN: sites={sites} must be >= 1")
    positions = {site: (rng.random() * side_km, rng.random() * side_km)
                 for site in range(1, sites + 1)}
    reach = (radius if radius is not None
             else math.sqrt(2.0 * math.log(max(sites, 2)) / max(sites, 2))) * side_km
    while True:
        graph = nx.Graph()
        graph.add_nodes_from(positions)
        for a in positions:
            for b in positions:
                length_km = math.dist(positions[a], positions[b])
                if a < b and length_km <= reach:
                    graph.add_edge(a, b, length_km=length_km)
        if nx.is_connected(graph):
            break
        reach *= 1.2
    for a, b in sorted(graph.edges):
        edge = graph.edges[a, b]
        edge["delay_ms"] = edge["length_km"] * FIBRE_MS_PER_KM * ROUTE_STRETCH
        edge["loss_pct"] = rng.uniform(0.0, 0.05)
        edge["capacity_mbps"] = rng.choice((1000.0, 10000.0, 40000.0))
    return graph


def path_metrics(graph: nx.Graph) -> dict[tuple[int, int], PathMetrics]:
    """Metrics of the least-delay route between every ordered pair of sites.

    Examples
    --------
    >>> graph = nx.Graph()
    >>> graph.add_edge(1, 2, delay_ms=2.0, loss_pct=1.0, capacity_mbps=100.0)
    >>> graph.add_edge(2, 3, delay_ms=3.0, loss_pct=1.0, capacity_mbps=50.0)
    >>> path = path_metrics(graph)[(1, 3)]
    >>> path.delay_ms, round(path.loss_pct, 6), path.available_mbps
    (5.0, 1.99, 50.0)
    """
    metrics: dict[tuple[int, int], PathMetrics] = {}
    for source in sorted(graph):
        _delays, routes = nx.single_source_dijkstra(graph, source, weight="delay_ms")
        for target, route in routes.items():
            delay_ms, delivered, available = 0.0, 1.0, math.inf
            for a, b in zip(route, route[1:]):
                edge = graph.edges[a, b]
                delay_ms += edge["delay_ms"]
                delivered *= 1.0 - edge["loss_pct"] / 100.0
                available = min(available, edge["capacity_mbps"])
            metrics[(source, target)] = PathMetrics(delay_ms, (1.0 - delivered) * 100.0,
                                                    available)
    return metrics


def synthetic_state(*, seed: int, sites: int, nodes_per_site: int, period_s: float = 1.0,
                    now: float = 0.0, service: str = SERVICE) -> SteeringState:
    """A full steering state: WAN paths for all site pairs, every node reporting.

    Parameters
    ----------
    seed : int
        Seed for everything drawn.
    sites : int
        Number of sites (``site1`` .. ``site<sites>``).
    nodes_per_site : int
        Compute nodes per site, ``1..99``.
    period_s : float
        Metrics period of the state.
    now : float
        Time stamped on the reports.
    service : str
        The one service every node offers.

    Returns
    -------
    SteeringState

    Raises
    ------
    StateError
        If ``nodes_per_site`` is outside ``1..99``.
    """
    if not 1 <= nodes_per_site <= MAX_HOSTS_PER_KIND:
        raise StateError(f"synthetic state: nodes_per_site={nodes_per_site} must be in "
                         f"1..{MAX_HOSTS_PER_KIND} (the addressing plan's limit)")
    rng = random.Random(seed)
    graph = wan_graph(rng, sites)
    state = SteeringState(period_s=period_s)
    for (source, target), path in path_metrics(graph).items():
        if source != target:
            state.network.set_path(site_name(source), site_name(target), path)
    for site in range(1, sites + 1):
        for index in range(1, nodes_per_site + 1):
            node = host_name(site, "compute", index)
            state.add_instance(ServiceInstance(node, site_name(site), service,
                                               host_address(site, "compute", index)))
            state.report(random_metrics(rng, node, now))
    return state
