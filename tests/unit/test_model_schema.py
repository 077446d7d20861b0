"""Tests of field checking: bounds, types, names, anycast addresses."""

import ipaddress

import pytest

from cpn_net.model.errors import ProblemLog
from cpn_net.model.schema import (
    COMPUTE_FIELDS,
    LINK_FIELDS,
    SERVICE_FIELDS,
    Field,
    Reader,
    check_value,
    describe,
    show,
    slug,
)


@pytest.mark.parametrize("field, text", [
    (Field("number", "", at_least=0), ">= 0"),
    (Field("number", "", above=0), "> 0"),
    (Field("number", "", at_most=5), "<= 5"),
    (Field("number", "", below=5), "< 5"),
    (Field("number", "", at_least=0, at_most=100), "in [0, 100]"),
    (Field("number", "", at_least=0, below=100), "in [0, 100)"),
    (Field("number", "", above=0, at_most=1.5), "in (0, 1.5]"),
])
def test_bounds_text(field, text):
    assert field.bounds_text() == text


@pytest.mark.parametrize("value, ok", [(0, True), (99.9, True), (100, False), (-0.1, False)])
def test_half_open_bound(value, ok):
    assert COMPUTE_FIELDS["background_load_pct"].in_bounds(value) is ok


def check(value, field):
    log = ProblemLog("f")
    result = check_value(log, "k", value, field)
    return result, [str(p) for p in log.problems]


def test_numbers_are_converted_to_float_and_ints_stay_int():
    assert check(5, LINK_FIELDS["delay_ms"]) == (5.0, [])
    assert type(check(5, LINK_FIELDS["delay_ms"])[0]) is float
    assert check(8, COMPUTE_FIELDS["workers"]) == (8, [])


def test_bool_is_not_a_number_or_int():
    assert check(True, LINK_FIELDS["delay_ms"])[1] == [
        "f: k: true is a bool, expected a number; write a number such as 5 (true/false are bools, not numbers)"]
    assert "expected an int" in check(False, COMPUTE_FIELDS["workers"])[1][0]


def test_nullable_fields_accept_null_and_others_do_not():
    assert check(None, LINK_FIELDS["rate_mbps"]) == (None, [])
    assert check(None, LINK_FIELDS["delay_ms"])[1] == [
        "f: k: null is null, expected a number; write a number such as 5 (true/false are bools, not numbers)"]


def test_infinite_number_rejected():
    assert check(float("inf"), LINK_FIELDS["rate_mbps"])[1] == [
        "f: k: inf is not a finite number; give a rate above 0 Mbit/s, or null for an unshaped link"]


@pytest.mark.parametrize("address, fragment", [
    ("::", "not a routable unicast address"),
    ("::1", "not a routable unicast address"),
    ("fe80::1", "not a routable unicast address"),
    ("::ffff:10.0.0.1", "not a routable unicast address"),
    ("2001:db8:9999::5", "the LAN of site 9999 (2001:db8:9999::/64)"),
    ("gg::1", "is not an IPv6 address"),
])
def test_bad_anycast(address, fragment):
    result, problems = check(address, SERVICE_FIELDS["anycast"])
    assert problems and fragment in problems[0]


@pytest.mark.parametrize("address", ["2001:db8:ffff::1", "2001:db8:12:1::1", "2001:db8:a::1", "fd12::1",
                                     "2a00:1450::1"])
def test_good_anycast(address):
    assert check(address, SERVICE_FIELDS["anycast"]) == (ipaddress.IPv6Address(address), [])


def test_reader_spelled_keys_and_hints():
    log = ProblemLog("f")
    r = Reader(log, "nodes[0]", {"Latitude": 1.0, "Longitude": 2.0, "colour": 1}, {"lat": Field("number", ""),
               "lon": Field("number", "")}, spelled={"lat": "Latitude", "lon": "Longitude"})
    assert (r.get("lat"), r.get("lon"), r.has("lat"), r.key("lat")) == (1.0, 2.0, True, "nodes[0].Latitude")
    assert [str(p) for p in log.problems] == [
        "f: nodes[0].colour: unknown key; remove it or use one of the known keys: Latitude, Longitude"]
    assert r.ok is False


def test_reader_returns_default_for_absent_and_bad_values():
    log = ProblemLog("f")
    r = Reader(log, "links[0]", {"loss_pct": 200}, LINK_FIELDS)
    assert r.get("loss_pct", 0.0) == 0.0 and r.get("jitter_ms", 0.5) == 0.5
    assert len(log.problems) == 1 and not r.ok


def test_describe_show_and_slug():
    assert describe({}) == "a mapping" and describe(1.5) == "a float"
    assert show([1, "a"]) == "[1, 'a']"
    assert slug("  Los Angeles ") == "los-angeles"
    assert slug("Kraków/Łódź") == "krakow-odz"  # NFKD cannot fold the stroke in Ł
    assert len(slug("x" * 100)) == 63
