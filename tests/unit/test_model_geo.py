"""Tests of great-circle distance and derived fibre delay."""

import math

import pytest

from cpn_net.model.geo import (
    DEFAULT_ROUTE_FACTOR,
    EARTH_RADIUS_KM,
    FIBRE_US_PER_KM,
    fibre_delay_ms,
    great_circle_km,
)

# Coordinates from ../shared/data/east-data-west-compute.md (approx. +-0.1 deg).
BEIJING, GUIAN, SHANGHAI, ZHONGWEI = (39.9, 116.4), (26.4, 106.4), (31.2, 121.5), (37.5, 105.2)
GUANGZHOU, CHENGDU, CHONGQING = (23.1, 113.3), (30.7, 104.1), (29.6, 106.6)


@pytest.mark.parametrize("a, b, reported_km", [
    (BEIJING, GUIAN, 1764),
    (SHANGHAI, ZHONGWEI, 1647),
    (BEIJING, ZHONGWEI, 1008),
    (GUANGZHOU, GUIAN, 782),
])
def test_great_circle_matches_reported_distances_within_1_percent(a, b, reported_km):
    assert great_circle_km(*a, *b) == pytest.approx(reported_km, rel=0.01)


def test_chengdu_chongqing_within_the_coordinates_uncertainty():
    # The file's 264 km used finer coordinates than its +-0.1 deg table: 0.1 deg
    # moves each end up to ~11 km, so the table's points give 269.7 km (2.2 % more).
    assert great_circle_km(*CHENGDU, *CHONGQING) == pytest.approx(264, rel=0.03)
    assert great_circle_km(30.57, 104.07, 29.56, 106.55) == pytest.approx(264, rel=0.01)


def test_great_circle_properties():
    assert great_circle_km(*BEIJING, *GUIAN) == great_circle_km(*GUIAN, *BEIJING)
    assert great_circle_km(0, 0, 0, 180) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert great_circle_km(90, 0, -90, 0) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert great_circle_km(0, 179.5, 0, -179.5) == pytest.approx(great_circle_km(0, 0, 0, 1))  # across the date line
    assert great_circle_km(45, 10, 45, 10) == 0.0


def test_reported_one_way_fibre_times():
    # The facts file: Beijing-Gui'an 8.6 ms, Shanghai-Zhongwei 8.1 ms one way at 4.9 us/km.
    assert fibre_delay_ms(1764, 1.0) == 8.64
    assert fibre_delay_ms(1647, 1.0) == 8.07


def test_fibre_delay_formula_and_rounding():
    assert FIBRE_US_PER_KM == 4.9 and DEFAULT_ROUTE_FACTOR == 1.3
    assert fibre_delay_ms(100.0) == round(100 * 1.3 * 4.9 / 1000, 2) == 0.64
    assert fibre_delay_ms(0.0) == 0.0
    assert fibre_delay_ms(1234.5, 1.5) == 9.07


def test_route_factor_is_below_the_policy_ceiling():
    assert 1.0 <= DEFAULT_ROUTE_FACTOR <= 1.5


@pytest.mark.parametrize("distance, factor, message", [
    (-1, 1.3, "distance_km=-1 must be >= 0"),
    (10, 0.9, "route_factor=0.9 must be >= 1"),
])
def test_fibre_delay_rejects_impossible_inputs(distance, factor, message):
    with pytest.raises(ValueError, match=message):
        fibre_delay_ms(distance, factor)
