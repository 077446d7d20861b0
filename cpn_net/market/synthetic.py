"""A seeded synthetic national market: a site graph, its surplus compute and a day of orders.

Modelled on "East Data, West Computing" (``shared/data/east-data-west-compute.md``):
demand and data in the east, cheap idle compute in the west.

Graph (:func:`national_graph`). ``sites`` sites in a box of roughly China's
extent (lon 80-122 E, lat 22-45 N). One site in ~110 is a regional hub; 60 %
of hubs are east of 108 E. Every other site sits around a hub (normal
scatter, 0.8 degrees) and links to its hub (access, 2 Gbit/s) and to its two
nearest sites (regional, 1 Gbit/s); hubs link to their four nearest hubs and
along a minimum spanning tree of the hubs (backbone, 20 Gbit/s). Delays are
great circle x route factor 1.3 x 4.9 µs/km (:mod:`cpn_net.model.geo`), at
least 0.05 ms.

Supply (:func:`national_supply`). 80 % of sites sell compute: hubs 8-16 nodes,
others 1-3, 4 or 8 workers each. West of 108 E the background load is 20-30 %
and compute costs 1.6-2.0 CNY per worker-hour; in the east, 60-70 % and
2.6-3.0. Every site with compute serves ``infer``, taking 5-30 ms a request.

Orders (:func:`national_orders`). Over ``day_s``, arrivals uniform; sources
are "data sites", 10 % of all sites, 80 % of them in the east. 70 % batch
(work lognormal around half a worker-hour on 1-8 workers, input lognormal
around 2 GB, a result of up to 5 % of it half the time, a deadline that
leaves room for the work 1.5-6 times over and for the data at 1-10 % of the
source's fastest link, a price cap of 1.2-2.5 x 2.4 CNY per worker-hour);
30 % stream (10-1,000 requests/s, p99 bound 30-150 ms, 1 kB requests, 4 kB
responses, starting within 10 minutes for 10 minutes to 2 hours).

Everything is drawn from ``numpy.random.default_rng(seed)``.

Examples
--------
>>> G = national_graph(seed=1, sites=300)
>>> import networkx as nx
>>> nx.is_connected(G), G.number_of_nodes()
(True, 300)
>>> supply = national_supply(G, seed=1)
>>> orders = national_orders(G, supply, seed=1, count=50)
>>> len(orders), orders[0][0] <= orders[-1][0]
(50, True)
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import cKDTree

from cpn_net.market.offers import Supply
from cpn_net.market.orders import BatchOrder, StreamOrder
from cpn_net.market.sizing import PAYLOAD_SHARE
from cpn_net.model.geo import DEFAULT_ROUTE_FACTOR, FIBRE_US_PER_KM, great_circle_km

SERVICE = "infer"
WEST_OF_LON = 108.0
SITES_PER_HUB = 110
ACCESS_MBPS, REGIONAL_MBPS, BACKBONE_MBPS = 2_000.0, 1_000.0, 20_000.0
MIN_DELAY_MS = 0.05
_BOX = {"lon": (80.0, 122.0), "lat": (22.0, 45.0)}


def site_name(i: int) -> str:
    """Name of synthetic site ``i`` (1-based): ``site<i>``."""
    return f"site{i}"


def _delay_ms(a: tuple[float, float], b: tuple[float, float]) -> float:
    km = great_circle_km(a[0], a[1], b[0], b[1])
    return max(MIN_DELAY_MS, round(km * DEFAULT_ROUTE_FACTOR * FIBRE_US_PER_KM / 1000.0, 3))


def national_graph(seed: int, sites: int = 7000, *, rate_scale: float = 1.0) -> nx.Graph:
    """The synthetic national site graph; see the module docstring.

    Node attributes ``id`` (1..sites), ``lat``, ``lon``, ``hub``; edge
    attributes ``delay_ms``, ``rate_mbps``, ``tier`` (access, regional, backbone).
    ``rate_scale`` multiplies every link rate (below 1: a network that binds).
    """
    if sites < 2:
        raise ValueError(f"sites={sites} must be >= 2")
    rng = np.random.default_rng(seed)
    hubs = max(2, round(sites / SITES_PER_HUB))
    east = rng.random(hubs) < 0.6
    hub_lon = np.where(east, rng.uniform(WEST_OF_LON, _BOX["lon"][1], hubs),
                       rng.uniform(_BOX["lon"][0], WEST_OF_LON, hubs))
    hub_lat = rng.uniform(*_BOX["lat"], hubs)
    home = np.concatenate([np.arange(hubs), rng.integers(0, hubs, sites - hubs)])
    lon = np.clip(np.where(np.arange(sites) < hubs, hub_lon[home], hub_lon[home] + rng.normal(0, 0.8, sites)),
                  *_BOX["lon"])
    lat = np.clip(np.where(np.arange(sites) < hubs, hub_lat[home], hub_lat[home] + rng.normal(0, 0.8, sites)),
                  *_BOX["lat"])
    G = nx.Graph(name=f"national-{sites}")
    for i in range(sites):
        G.add_node(site_name(i + 1), id=i + 1, lat=round(float(lat[i]), 4), lon=round(float(lon[i]), 4), hub=i < hubs)
    where = [(float(lat[i]), float(lon[i])) for i in range(sites)]

    def link(i: int, j: int, rate: float, tier: str) -> None:
        a, b = site_name(i + 1), site_name(j + 1)
        if i != j and not G.has_edge(a, b):
            G.add_edge(a, b, delay_ms=_delay_ms(where[i], where[j]), rate_mbps=rate * rate_scale, tier=tier)

    points = np.column_stack([lon * math.cos(math.radians(33.0)), lat])  # roughly equal-area degrees
    hub_points = points[:hubs]
    _, near = cKDTree(hub_points).query(hub_points, k=min(5, hubs))
    for i in range(hubs):
        for j in np.atleast_1d(near[i])[1:]:
            link(i, int(j), BACKBONE_MBPS, "backbone")
    spans = np.linalg.norm(hub_points[:, None, :] - hub_points[None, :, :], axis=2)
    tree = minimum_spanning_tree(spans).tocoo()
    for i, j in zip(tree.row, tree.col):
        link(int(i), int(j), BACKBONE_MBPS, "backbone")
    _, near = cKDTree(points).query(points, k=3)
    for i in range(hubs, sites):
        link(i, int(home[i]), ACCESS_MBPS, "access")
        for j in near[i][1:]:
            link(i, int(j), REGIONAL_MBPS, "regional")
    return G


def national_supply(G: nx.Graph, seed: int) -> Supply:
    """The surplus compute of a :func:`national_graph`; see the module docstring."""
    rng = np.random.default_rng(seed + 1)
    sites = sorted(G.nodes, key=lambda s: G.nodes[s]["id"])
    surplus, base, service = [], [], {}
    for site in sites:
        node = G.nodes[site]
        west = node["lon"] < WEST_OF_LON
        if not node["hub"] and rng.random() < 0.2:
            surplus.append(0)
            base.append(2.4 / 3600)
            continue
        nodes = int(rng.integers(8, 17)) if node["hub"] else int(rng.integers(1, 4))
        load = rng.uniform(0.2, 0.3) if west else rng.uniform(0.6, 0.7)
        slots = sum(int(math.floor(int(rng.choice((4, 8))) * (1.0 - load) + 1e-9)) for _ in range(nodes))
        surplus.append(slots)
        base.append(float(rng.uniform(1.6, 2.0) if west else rng.uniform(2.6, 3.0)) / 3600.0)
        if slots:
            service[site] = (slots, round(float(rng.uniform(5.0, 30.0)), 1))
    return Supply(sites, surplus, base, {SERVICE: service})


def national_orders(G: nx.Graph, supply: Supply, seed: int, count: int, *, day_s: float = 86_400.0,
                    batch_share: float = 0.7) -> list[tuple[float, BatchOrder | StreamOrder]]:
    """``count`` orders over ``day_s`` as ``(submitted_s, order)``, by time; see the module docstring."""
    rng = np.random.default_rng(seed + 2)
    sites = supply.sites
    lon = np.array([G.nodes[s]["lon"] for s in sites])
    east = np.flatnonzero(lon >= WEST_OF_LON)
    west = np.flatnonzero(lon < WEST_OF_LON)
    data_sites = max(1, len(sites) // 10)
    n_east = min(len(east), round(0.8 * data_sites))
    picked = np.concatenate([rng.choice(east, n_east, replace=False),
                             rng.choice(west, min(len(west), data_sites - n_east), replace=False)])
    sources = [sites[int(i)] for i in picked]
    most = int(supply.surplus.max())
    worker_choices = [w for w in (1, 2, 4, 8) if w <= most] or [1]
    top_price = 2.4 / 3600
    service = supply.services.get(SERVICE)
    times = np.sort(rng.uniform(0.0, day_s, count))
    widest_out = {site: max(G.edges[site, other]["rate_mbps"] for other in G.adj[site]) for site in set(sources)}
    out = []
    for k, now in enumerate(times):
        now = round(float(now), 3)
        source = sources[int(rng.integers(len(sources)))]
        price = round(float(rng.uniform(1.2, 2.5)) * top_price, 9)
        if rng.random() < batch_share or service is None:
            workers = int(rng.choice(worker_choices))
            work = float(np.clip(rng.lognormal(math.log(1800.0), 1.0), 60.0, 86_400.0))
            input_mb = float(np.clip(rng.lognormal(math.log(2000.0), 1.2), 10.0, 500_000.0))
            result_mb = float(input_mb * rng.uniform(0.0, 0.05)) if rng.random() < 0.5 else 0.0
            widest = widest_out[source]
            room = (work / workers * rng.uniform(1.5, 6.0)
                    + 8.0 * (input_mb + result_mb) / (widest * PAYLOAD_SHARE * rng.uniform(0.01, 0.1)))
            out.append((now, BatchOrder(f"b{k}", source, round(work, 1), round(input_mb, 1),
                                        round(now + 60.0 + room, 3), price, result_mb=round(result_mb, 1),
                                        workers=workers)))
        else:
            rate = float(math.exp(rng.uniform(math.log(10.0), math.log(1000.0))))
            out.append((now, StreamOrder(f"s{k}", SERVICE, source, round(rate, 1),
                                         round(float(rng.uniform(30.0, 150.0)), 1),
                                         round(now + float(rng.uniform(0.0, 600.0)), 3),
                                         round(float(rng.uniform(600.0, 7200.0)), 1), price,
                                         request_kb=1.0, response_kb=4.0)))
    return out
