"""Tests of the userspace link element's pure parts (no sockets, no root)."""

import dataclasses
import json
import random

import pytest

from cpn_net.emulation.wire import SETTABLE, Wire, WireSettings, departure_time, is_lost, new_counters
from cpn_net.stats import binomial_interval


# ------------------------------------------------------------------ settings
@pytest.mark.parametrize("kwargs, message", [
    ({"delay_ms": -1}, "delay_ms=-1 must be >= 0"),
    ({"jitter_ms": -0.5}, "jitter_ms=-0.5 must be >= 0"),
    ({"loss_pct": -1}, "loss_pct=-1 must be within 0..100"),
    ({"loss_pct": 100.5}, "loss_pct=100.5 must be within 0..100"),
    ({"delay_ms": float("nan")}, "delay_ms=nan must be a finite number"),
    ({"delay_ms": float("inf")}, "delay_ms=inf must be a finite number"),
    ({"jitter_ms": "2"}, "jitter_ms='2' must be a finite number"),
    ({"loss_pct": True}, "loss_pct=True must be a finite number"),
    ({"down": "false"}, "down='false' must be true or false"),
    ({"down": 1}, "down=1 must be true or false"),
])
def test_settings_validation_messages(kwargs, message):
    with pytest.raises(ValueError) as info:
        WireSettings(**kwargs)
    assert str(info.value) == message


def test_settings_edges_are_allowed():
    assert WireSettings(delay_ms=0, jitter_ms=0, loss_pct=0) == WireSettings()
    assert WireSettings(loss_pct=100).loss_pct == 100


def test_replace_ignores_none_and_validates():
    base = WireSettings(delay_ms=10, jitter_ms=1, loss_pct=2)
    assert base.replace(delay_ms=None, loss_pct=5) == WireSettings(delay_ms=10, jitter_ms=1, loss_pct=5)
    assert base.replace(down=False) == base
    with pytest.raises(ValueError, match="loss_pct=101 must be within 0..100"):
        base.replace(loss_pct=101)


# ------------------------------------------------------------ departure time
def test_departure_without_jitter_is_arrival_plus_delay():
    rng = random.Random(3)
    assert departure_time(2.0, WireSettings(delay_ms=25), 0.0, rng) == pytest.approx(2.025)
    assert departure_time(2.0, WireSettings(), 0.0, rng) == 2.0


def test_fifo_never_overtakes_and_jitter_stays_within_bounds():
    settings = WireSettings(delay_ms=10, jitter_ms=4)
    rng = random.Random(11)
    last, arrival, delays = 0.0, 100.0, []
    for _ in range(5000):
        arrival += rng.uniform(0, 0.004)  # frames closer together than the jitter
        leave = departure_time(arrival, settings, last, rng)
        assert leave >= last and leave >= arrival
        delays.append(leave - arrival)
        last = leave
    # independent draws (no FIFO push-back) must span the whole window [6, 14] ms
    rng = random.Random(12)
    drawn = [departure_time(0.0, settings, 0.0, rng) * 1000 for _ in range(5000)]
    assert min(drawn) >= 6 - 1e-9 and max(drawn) <= 14 + 1e-9
    assert min(drawn) < 6.1 and max(drawn) > 13.9
    # FIFO only ever adds waiting
    assert min(delays) >= 0.006 - 1e-12


def test_jitter_larger_than_delay_is_clamped_at_zero():
    settings = WireSettings(delay_ms=1, jitter_ms=5)
    rng = random.Random(5)
    drawn = [departure_time(10.0, settings, 0.0, rng) for _ in range(2000)]
    assert min(drawn) == 10.0  # clamped, many times
    assert max(drawn) <= 10.006


def test_departure_is_reproducible_with_a_seed():
    settings = WireSettings(delay_ms=10, jitter_ms=3)
    runs = []
    for _ in range(2):
        rng = random.Random(42)
        runs.append([departure_time(i * 0.001, settings, 0.0, rng) for i in range(100)])
    assert runs[0] == runs[1]


# ---------------------------------------------------------------------- loss
@pytest.mark.parametrize("loss_pct, seed", [(2.0, 1), (20.0, 7), (0.5, 3)])
def test_loss_frequency_within_a_99_percent_binomial_interval(loss_pct, seed):
    n = 20000
    rng = random.Random(seed)
    lost = sum(is_lost(WireSettings(loss_pct=loss_pct), rng) for _ in range(n))
    low, high = binomial_interval(n, loss_pct / 100, 0.99)
    assert low <= lost <= high, f"{lost} lost of {n} outside [{low}, {high}]"


def test_loss_edges():
    rng = random.Random(1)
    assert not any(is_lost(WireSettings(loss_pct=0), rng) for _ in range(1000))
    assert all(is_lost(WireSettings(loss_pct=100), rng) for _ in range(1000))


# ---------------------------------------------------------- control requests
def _wire(settings=None):
    """A Wire with no sockets: enough for handle_request."""
    wire = object.__new__(Wire)
    wire.settings = settings or WireSettings(delay_ms=10, jitter_ms=1, loss_pct=2)
    wire.counters = new_counters()
    wire.queue = []
    wire.lateness_s = 0.0
    wire.sockets = {}
    return wire


def _ask(wire, message):
    data = message if isinstance(message, bytes) else json.dumps(message).encode()
    return wire.handle_request(data)


def test_stats_reports_settings_and_counters():
    wire = _wire()
    wire.counters["ab"]["received"] = 7
    reply = _ask(wire, {"op": "stats"})
    assert reply["ok"] is True
    assert reply["settings"] == {"delay_ms": 10, "jitter_ms": 1, "loss_pct": 2, "down": False}
    assert reply["counters"]["ab"]["received"] == 7
    assert (reply["queued"], reply["wakeup_lateness_us"], reply["kernel"]) == (0, 0.0, {})
    json.dumps(reply)


def test_set_changes_only_the_given_settings():
    wire = _wire()
    reply = _ask(wire, {"op": "set", "delay_ms": 30, "down": True})
    assert reply["ok"] is True
    assert wire.settings == WireSettings(delay_ms=30, jitter_ms=1, loss_pct=2, down=True)
    assert reply["settings"] == dataclasses.asdict(wire.settings)
    _ask(wire, {"op": "set", "down": False, "loss_pct": None})
    assert wire.settings == WireSettings(delay_ms=30, jitter_ms=1, loss_pct=2, down=False)


def test_reset_zeroes_the_counters():
    wire = _wire()
    wire.counters["ba"]["dropped_loss"] = 3
    assert _ask(wire, {"op": "reset"})["counters"] == new_counters()


@pytest.mark.parametrize("message, error", [
    ({"op": "explode"}, "op='explode' must be one of stats, set, reset"),
    ({}, "op=None must be one of stats, set, reset"),
    ({"op": "set", "delay_ms": -4}, "delay_ms=-4 must be >= 0"),
    ({"op": "set", "loss_pct": 150}, "loss_pct=150 must be within 0..100"),
    ({"op": "set", "jitter_ms": "3"}, "jitter_ms='3' must be a finite number"),
    ({"op": "set", "down": "false"}, "down='false' must be true or false"),
    ({"op": "set", "delay": 5}, "set: unknown key 'delay'; known keys are " + ", ".join(SETTABLE)),
    (b"not json", "Expecting value: line 1 column 1 (char 0)"),
    (b"[1, 2]", 'request [1, 2] must be a JSON object such as {"op": "stats"}'),
    (b"\xff\xfe", None),
])
def test_bad_requests_answer_an_error_and_leave_settings_unchanged(message, error):
    wire = _wire()
    before = wire.settings
    wire.counters["ab"]["forwarded"] = 5
    reply = _ask(wire, message)
    assert reply["ok"] is False
    assert isinstance(reply["error"], str) and reply["error"]
    if error is not None:
        assert reply["error"] == error
    assert wire.settings is before
    assert wire.counters["ab"]["forwarded"] == 5
