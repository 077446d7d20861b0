"""Tests of the addressing plan helpers used by the model."""

import ipaddress

import pytest

from cpn_net.model import addressing


@pytest.mark.parametrize("address, expected", [
    ("2001:db8:1::", "the LAN of site 1 (2001:db8:1::/64)"),
    ("2001:db8:9999::ffff", "the LAN of site 9999 (2001:db8:9999::/64)"),
    ("2001:db8:12::2:1", "the LAN of site 12 (2001:db8:12::/64)"),
    ("fcbb:bb00:3::1", "the SRv6 locator area fcbb:bb00::/32"),
    ("fcbb:bbff::1", None),
    ("fd00:ffff::1", "the WAN link range fd00::/16"),
    ("fd01::1", None),
    ("2001:db8::1", None),  # group 0 is no site
    ("2001:db8:a::1", None),  # hex digits: no site id reads like this
    ("2001:db8:12:1::1", None),  # outside the /64
    ("2001:db8:ffff::1", None),
])
def test_plan_range(address, expected):
    assert addressing.plan_range(ipaddress.IPv6Address(address)) == expected


def test_every_assigned_address_is_in_a_plan_range():
    for site in (1, 42, 9999):
        for address in (addressing.router_lan_address(site), addressing.host_address(site, "compute", 99),
                        addressing.locator(site).network_address, addressing.wan_address(0xFFFF, site)):
            assert addressing.plan_range(address) is not None, address
