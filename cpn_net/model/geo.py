"""Link delay from geography: great-circle distance times a fibre route factor.

A WAN link without a configured ``delay_ms`` whose two sites have coordinates
gets a *derived* one-way delay::

    delay_ms = great_circle_km * route_factor * FIBRE_US_PER_KM / 1000

rounded to 0.01 ms.

- ``FIBRE_US_PER_KM = 4.9``: light in silica fibre travels at c / 1.468 (the
  group index), about 204 km per millisecond, i.e. 4.9 µs per km one way.
- ``DEFAULT_ROUTE_FACTOR = 1.3``: fibre follows roads, railways and coasts and
  passes through exchange points, so its length exceeds the great circle.
  Calibration against the Gui'an latencies reported for China's "East Data,
  West Computing" plan (../shared/data/east-data-west-compute.md), read as
  round-trip times, dividing half the RTT by the great-circle fibre time
  (coordinates from that file):

  ==================  =========  =====  ==================  ======
  Gui'an to           distance   RTT    great-circle fibre  ratio
  ==================  =========  =====  ==================  ======
  Chongqing              356 km   6 ms             1.75 ms    1.72
  Chengdu                528 km   6 ms             2.59 ms    1.16
  Guangzhou              787 km  10 ms             3.86 ms    1.30
  Shanghai             1,563 km  15 ms             7.66 ms    0.98
  Beijing              1,764 km  20 ms             8.64 ms    1.16
  ==================  =========  =====  ==================  ======

  The mean ratio is 1.26; 1.3 rounds it up (the reported figures are targets,
  so real paths are at least this long) and stays under the plan's policy
  ceiling of 1.5 x the theoretical latency between hub clusters.

Examples
--------
>>> round(great_circle_km(39.9, 116.4, 26.4, 106.4))
1764
>>> fibre_delay_ms(1000.0, 1.0)
4.9
>>> fibre_delay_ms(1000.0)
6.37
"""

from __future__ import annotations

import math

#: Mean Earth radius (IUGG), km.
EARTH_RADIUS_KM = 6371.0088
#: One-way propagation delay of light in fibre, µs per km (group index ~1.468).
FIBRE_US_PER_KM = 4.9
#: Fibre route length over great-circle distance; see the module docstring.
DEFAULT_ROUTE_FACTOR = 1.3
#: One-way delay given to an imported link whose ends lack coordinates, ms.
DEFAULT_LINK_DELAY_MS = 1.0


def great_circle_km(lat_a: float, lon_a: float, lat_b: float, lon_b: float) -> float:
    """Great-circle distance between two points on a spherical Earth (haversine).

    Parameters
    ----------
    lat_a, lon_a, lat_b, lon_b : float
        Degrees; north and east positive.

    Returns
    -------
    float
        Distance in km over a sphere of radius :data:`EARTH_RADIUS_KM`.

    Examples
    --------
    >>> round(great_circle_km(31.2, 121.5, 37.5, 105.2))
    1649
    >>> great_circle_km(10.0, 20.0, 10.0, 20.0)
    0.0
    """
    phi_a, phi_b = math.radians(lat_a), math.radians(lat_b)
    d_phi = phi_b - phi_a
    d_lambda = math.radians(lon_b - lon_a)
    # The haversine form stays accurate for short distances, unlike acos.
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi_a) * math.cos(phi_b) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def fibre_delay_ms(distance_km: float, route_factor: float = DEFAULT_ROUTE_FACTOR) -> float:
    """One-way delay of a fibre link spanning ``distance_km`` of great circle.

    Parameters
    ----------
    distance_km : float
        Great-circle distance between the link's ends.
    route_factor : float
        Fibre route length over great-circle distance (>= 1).

    Returns
    -------
    float
        Delay in ms, rounded to 0.01 ms.

    Raises
    ------
    ValueError
        If ``distance_km`` < 0 or ``route_factor`` < 1.

    Examples
    --------
    >>> fibre_delay_ms(1763.6)
    11.23
    >>> fibre_delay_ms(-1)
    Traceback (most recent call last):
    ...
    ValueError: distance_km=-1 must be >= 0
    """
    if distance_km < 0:
        raise ValueError(f"distance_km={distance_km} must be >= 0")
    if route_factor < 1:
        raise ValueError(f"route_factor={route_factor} must be >= 1 (fibre is never shorter than the great circle)")
    return round(distance_km * route_factor * FIBRE_US_PER_KM / 1000, 2)
