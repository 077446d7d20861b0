"""Tests of the small statistics helpers, checked against exact arithmetic and numpy."""

import random
from fractions import Fraction
from math import comb

import numpy as np
import pytest

from cpn_net.stats import binomial_interval, percentile, within


def _exact_pmf(n, p):
    p = Fraction(str(p))  # the decimal the test means, and small denominators (fast)
    return [comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]


@pytest.mark.parametrize("n, p, confidence", [
    (1, 0.5, 0.99), (10, 0.3, 0.9), (50, 0.02, 0.99), (200, 0.5, 0.95), (400, 0.2, 0.999),
    (300, 0.97, 0.99), (1000, 0.02, 0.99), (25, 0.5, 0.5),
])
def test_interval_holds_the_mass_and_is_tight(n, p, confidence):
    low, high = binomial_interval(n, p, confidence)
    assert 0 <= low <= high <= n
    pmf = _exact_pmf(n, p)
    tail = (1 - Fraction(str(confidence))) / 2
    below, above = sum(pmf[:low]), sum(pmf[high + 1:])
    assert 1 - below - above >= Fraction(str(confidence))
    assert below <= tail and above <= tail
    # tight: moving either end inwards would leave out more than a tail's share
    assert below + pmf[low] > tail
    assert above + pmf[high] > tail


def test_docstring_case_computed_exactly():
    # P(X <= 9) = 0.00468 <= 0.005, so 9 is outside the 99 % interval
    assert binomial_interval(1000, 0.02, 0.99) == (10, 32)


@pytest.mark.parametrize("n, p, expected", [(100, 0.0, (0, 0)), (100, 1.0, (100, 100)), (0, 0.3, (0, 0)),
                                            (0, 0.0, (0, 0))])
def test_edges(n, p, expected):
    assert binomial_interval(n, p) == expected


def test_large_n_is_fine():
    low, high = binomial_interval(200_000, 0.001, 0.99)
    assert low < 200 < high and high - low < 80


@pytest.mark.parametrize("args, message", [
    ((-1, 0.5), "n=-1 must be >= 0 and p=0.5 within 0..1"),
    ((10, 1.5), "n=10 must be >= 0 and p=1.5 within 0..1"),
    ((10, -0.1), "n=10 must be >= 0 and p=-0.1 within 0..1"),
    # reproducer: 99 (a percentage) or 0 passed silently; -1 raised IndexError
    ((10, 0.5, 99), "confidence=99 must be within (0, 1], e.g. 0.99 for 99 %"),
    ((10, 0.5, 0), "confidence=0 must be within (0, 1], e.g. 0.99 for 99 %"),
    ((10, 0.5, -1), "confidence=-1 must be within (0, 1], e.g. 0.99 for 99 %"),
])
def test_bad_arguments(args, message):
    with pytest.raises(ValueError) as info:
        binomial_interval(*args)
    assert str(info.value) == message


def test_full_confidence_is_the_whole_support():
    assert binomial_interval(20, 0.5, 1.0) == (0, 20)


@pytest.mark.parametrize("size", [1, 2, 5, 100, 101])
def test_percentile_matches_numpy(size):
    rng = random.Random(size)
    values = [rng.uniform(-50, 50) for _ in range(size)]
    for q in (0, 1, 5, 25, 50, 62.5, 90, 99, 99.9, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12, abs=1e-12)


def test_percentile_accepts_any_iterable_and_returns_float():
    assert percentile(iter([3, 1, 2]), 50) == 2.0
    assert isinstance(percentile([1, 2], 50), float)


@pytest.mark.parametrize("q", [-1, 100.5, 150])
def test_percentile_rejects_q_outside_0_100(q):
    # reproducer: q=-50 silently returned the maximum, q=150 raised IndexError
    with pytest.raises(ValueError) as info:
        percentile([1, 2, 3], q)
    assert str(info.value) == f"q={q} must be within 0..100"


def test_percentile_of_nothing():
    with pytest.raises(ValueError, match="^percentile of no values$"):
        percentile([], 50)


def test_within():
    assert within(10.9, 10.0, 0.10, 0.5)
    assert not within(11.1, 10.0, 0.10, 0.5)
    assert within(0.4, 0.0, 0.10, 0.5)  # absolute tolerance near zero
    assert within(-10.9, -10.0, 0.10, 0.5)
