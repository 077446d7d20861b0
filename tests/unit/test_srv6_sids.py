"""The SID plan: layout, round trip over every id, and refusals that say why."""

import ipaddress

import pytest

from cpn_net.model import addressing
from cpn_net.srv6.errors import SidError
from cpn_net.srv6.sids import (HOST_KINDS, Behaviour, binding_sid, end_dt6_sid, end_dx6_sid, end_sid, end_x_sid,
                               local_sids, parse_sid, site_locator)

ALL_SITES = range(1, addressing.MAX_SITE_ID + 1)


def every_sid_of(site):
    """One SID of each behaviour at ``site``, with what parse_sid must return."""
    neighbour = site % addressing.MAX_SITE_ID + 1
    return [
        (end_sid(site), Behaviour.END, ()),
        (end_x_sid(site, neighbour), Behaviour.END_X, (neighbour,)),
        (end_dx6_sid(site, "compute", 99), Behaviour.END_DX6, ("compute", 99)),
        (end_dx6_sid(site, "client", 1), Behaviour.END_DX6, ("client", 1)),
        (end_dt6_sid(site, 9999), Behaviour.END_DT6, (9999,)),
        (binding_sid(site, 1), Behaviour.END_B6_ENCAPS, (1,)),
    ]


def test_every_site_round_trips_and_no_two_sids_collide():
    seen = set()
    for site in ALL_SITES:
        prefix = site_locator(site).prefix
        for address, behaviour, args in every_sid_of(site):
            sid = parse_sid(address)
            assert (sid.site_id, sid.behaviour, sid.args) == (site, behaviour, args)
            assert address in prefix
            seen.add(address)
    assert len(seen) == 6 * len(ALL_SITES)


def test_every_argument_round_trips_at_a_site():
    site = 12
    addresses = set()
    for n in range(1, 10000):
        for build, behaviour in ((end_dt6_sid, Behaviour.END_DT6), (binding_sid, Behaviour.END_B6_ENCAPS)):
            sid = parse_sid(build(site, n))
            assert (sid.behaviour, sid.args) == (behaviour, (n,))
            addresses.add(sid.address)
        if n != site:
            sid = parse_sid(end_x_sid(site, n))
            assert sid.neighbour_id == n
            addresses.add(sid.address)
    for kind in HOST_KINDS:
        for index in range(1, addressing.MAX_HOSTS_PER_KIND + 1):
            sid = parse_sid(end_dx6_sid(site, kind, index))
            assert sid.nexthop == addressing.host_address(site, kind, index)
            addresses.add(sid.address)
    assert len(addresses) == 3 * 9999 - 1 + 2 * addressing.MAX_HOSTS_PER_KIND


def test_layout_matches_the_documented_table():
    assert str(end_sid(12)) == "fcbb:bb00:12:1::"
    assert str(end_x_sid(12, 4)) == "fcbb:bb00:12:2:4::"
    assert str(end_dx6_sid(12, "client", 2)) == "fcbb:bb00:12:3:1:2::"
    assert str(end_dx6_sid(12, "compute", 1)) == "fcbb:bb00:12:3:2:1::"
    assert str(end_dt6_sid(12, 100)) == "fcbb:bb00:12:4:100::"
    assert str(binding_sid(12, 1)) == "fcbb:bb00:12:5:1::"


def test_dx6_arguments_are_the_hosts_interface_identifier():
    for kind in HOST_KINDS:
        sid = end_dx6_sid(37, kind, 5)
        host = addressing.host_address(37, kind, 5)
        assert (int(sid) >> 32) & 0xFFFFFFFF == int(host) & 0xFFFFFFFF


def test_locator_is_the_addressing_plans():
    assert site_locator(12).prefix == addressing.locator(12)
    assert not site_locator(12).contains(end_sid(120))


def test_local_sids_lists_each_behaviour_once_sorted():
    sids = local_sids(5, [9, 2, 9], [("compute", 2), ("client", 1)], [300, 254])
    assert [str(s) for s in sids] == ["End@5", "End.X@5(2)", "End.X@5(9)", "End.DX6@5(client,1)",
                                      "End.DX6@5(compute,2)", "End.DT6@5(254)", "End.DT6@5(300)"]


@pytest.mark.parametrize("build, message", [
    (lambda: end_sid(0), "site id 0 must be an int in 1..9999"),
    (lambda: end_sid(10000), "site id 10000 must be an int in 1..9999"),
    (lambda: end_x_sid(3, 3), "End.X at site 3: neighbour id 3 is the site itself"),
    (lambda: end_x_sid(3, 0), "neighbour id 0 must be an int in 1..9999"),
    (lambda: end_dt6_sid(3, 10000), "End.DT6 table 10000 at site 3 must be an int in 1..9999"),
    (lambda: binding_sid(3, 0), "binding SID index 0 at site 3 must be an int in 1..9999"),
    (lambda: end_dx6_sid(3, "server", 1), "End.DX6 at site 3: host kind 'server' must be one of"),
    (lambda: end_dx6_sid(3, "compute", 100), "End.DX6 at site 3: host index 100 must be in 1..99"),
])
def test_builders_refuse_out_of_plan_values(build, message):
    with pytest.raises(SidError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        build()


@pytest.mark.parametrize("address, message", [
    ("2001:db8:1::1", "is outside the SID plan fcbb:bb00::/32"),
    ("fcbb:bb00:1a:1::", "site group 1a must be a number 1..9999 written in decimal digits"),
    ("fcbb:bb00:12::", "has function 0; expected 1..5"),
    ("fcbb:bb00:12:9::", "has function 9; expected 1..5"),
    ("fcbb:bb00:12:1:1::", "End SIDs carry no argument group(s)"),
    ("fcbb:bb00:12:2:4:1::", "End.X SIDs carry one argument group(s)"),
    ("fcbb:bb00:12:2:12::", "End.X neighbour 12 is the site itself"),
    ("fcbb:bb00:12:3:3:1::", "End.DX6 host code 3 is not one of"),
    ("fcbb:bb00:12:3:2:100::", "host index 100 must be in 1..99"),
    ("fcbb:bb00:12:4:0::", "argument group 0 must be a number 1..9999"),
    ("fcbb:bb00:12:1::1", "End SIDs carry no argument group(s) and zeros after them"),
    ("not-an-address", "is not an IPv6 address"),
])
def test_parse_refuses_addresses_outside_the_plan(address, message):
    with pytest.raises(SidError) as err:
        parse_sid(address)
    assert message in str(err.value)


def test_parse_accepts_address_objects_and_strings_alike():
    text = "fcbb:bb00:7:2:8::"
    assert parse_sid(text) == parse_sid(ipaddress.IPv6Address(text))
