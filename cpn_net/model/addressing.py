"""The addressing and naming plan: every name and IPv6 address cpn_net assigns.

This module is the one place the plan is written down. Everything else
(emulator, controller, SRv6 SID plan, tests) asks it.

Sites carry a numeric id ``1..9999``. The id is written into addresses with
its *decimal digits* used as a hexadecimal group, so site 12 owns
``2001:db8:12::/64`` and ``fcbb:bb00:12::/48`` — readable at a glance on a
capture, at the price of capping ids at 9999.

=====================  ====================================  ===========================
what                   name / prefix                         example (site 12)
=====================  ====================================  ===========================
router                 ``r<site>``                           ``r12``
site switch (OVS)      ``s<site>`` (datapath id = site id)   ``s12``
compute node n         ``k<site>-<n>``                       ``k12-1``
client n               ``u<site>-<n>``                       ``u12-2``
WAN link element       ``l<a>x<b>`` (a < b, site ids)        ``l3x12``
network namespace      ``cpn-<node>``                        ``cpn-r12``
site LAN               ``2001:db8:<site>::/64``              ``2001:db8:12::/64``
router LAN address     ``2001:db8:<site>::1``                ``2001:db8:12::1``
client n               ``2001:db8:<site>::1:<n>``            ``2001:db8:12::1:2``
compute node n         ``2001:db8:<site>::2:<n>``            ``2001:db8:12::2:1``
SRv6 locator           ``fcbb:bb00:<site>::/48``             ``fcbb:bb00:12::/48``
WAN link number L      ``fd00:<L>::/64``, end at site s is    ``fd00:7::12``
                       ``fd00:<L>::<s>``
=====================  ====================================  ===========================

Mininet reserves ``c`` for controllers, hence ``k`` for compute nodes and
``u`` (user) for clients. Interface names are ``<node>-eth<N>`` and stay within
Linux's 15-character limit for every id this plan allows.

Examples
--------
>>> str(site_lan(12)), str(router_lan_address(12))
('2001:db8:12::/64', '2001:db8:12::1')
>>> str(host_address(12, "compute", 1)), str(host_address(12, "client", 2))
('2001:db8:12::2:1', '2001:db8:12::1:2')
>>> str(locator(12)), str(wan_address(7, 12))
('fcbb:bb00:12::/48', 'fd00:7::12')
>>> router_name(12), switch_name(12), host_name(12, "compute", 1), link_node_name(12, 3)
('r12', 's12', 'k12-1', 'l3x12')
"""

from __future__ import annotations

import ipaddress

MAX_SITE_ID = 9999
MAX_HOSTS_PER_KIND = 99
MAX_LINK_NUMBER = 0xFFFF
NAMESPACE_PREFIX = "cpn-"

_HOST_KIND = {"client": ("u", 1), "compute": ("k", 2)}


def _group(site_id: int) -> str:
    if not 1 <= site_id <= MAX_SITE_ID:
        raise ValueError(f"site id {site_id} must be in 1..{MAX_SITE_ID}")
    return str(site_id)


def site_lan(site_id: int) -> ipaddress.IPv6Network:
    """The /64 shared by a site's router, clients and compute nodes."""
    return ipaddress.IPv6Network(f"2001:db8:{_group(site_id)}::/64")


def router_lan_address(site_id: int) -> ipaddress.IPv6Address:
    """The router's address on its site LAN (the hosts' default gateway)."""
    return ipaddress.IPv6Address(f"2001:db8:{_group(site_id)}::1")


def host_address(site_id: int, kind: str, index: int) -> ipaddress.IPv6Address:
    """Address of client or compute node ``index`` (1-based) at a site."""
    _prefix, code = _host_kind(kind)
    _check_index(index)
    return ipaddress.IPv6Address(f"2001:db8:{_group(site_id)}::{code}:{index}")


def locator(site_id: int) -> ipaddress.IPv6Network:
    """The site's SRv6 locator: every SID of router ``r<site>`` lives in it."""
    return ipaddress.IPv6Network(f"fcbb:bb00:{_group(site_id)}::/48")


def wan_prefix(link_number: int) -> ipaddress.IPv6Network:
    """The /64 of WAN link number ``link_number`` (1-based, file order)."""
    if not 1 <= link_number <= MAX_LINK_NUMBER:
        raise ValueError(f"link number {link_number} must be in 1..{MAX_LINK_NUMBER}")
    return ipaddress.IPv6Network(f"fd00:{link_number:x}::/64")


def wan_address(link_number: int, site_id: int) -> ipaddress.IPv6Address:
    """The address of site ``site_id``'s router on WAN link ``link_number``."""
    return ipaddress.IPv6Address(f"{wan_prefix(link_number).network_address}{_group(site_id)}")


def router_name(site_id: int) -> str:
    return f"r{_group(site_id)}"


def switch_name(site_id: int) -> str:
    return f"s{_group(site_id)}"


def host_name(site_id: int, kind: str, index: int) -> str:
    """``k<site>-<n>`` for compute nodes, ``u<site>-<n>`` for clients."""
    prefix, _code = _host_kind(kind)
    _check_index(index)
    return f"{prefix}{_group(site_id)}-{index}"


def link_node_name(site_a: int, site_b: int) -> str:
    """Name of the node that emulates the WAN link between two sites."""
    low, high = sorted((site_a, site_b))
    return f"l{_group(low)}x{_group(high)}"


def namespace(node_name: str) -> str:
    """The named network namespace (``ip netns``) of a running node."""
    return f"{NAMESPACE_PREFIX}{node_name}"


def _host_kind(kind: str) -> tuple[str, int]:
    try:
        return _HOST_KIND[kind]
    except KeyError:
        raise ValueError(f"host kind {kind!r} must be one of {sorted(_HOST_KIND)}") from None


def _check_index(index: int) -> None:
    if not 1 <= index <= MAX_HOSTS_PER_KIND:
        raise ValueError(f"host index {index} must be in 1..{MAX_HOSTS_PER_KIND}")


# Ranges the plan hands out; anything the user chooses (a service's anycast
# address) must stay clear of them or routes would collide.
SITE_LAN_AREA = ipaddress.IPv6Network("2001:db8::/32")
LOCATOR_AREA = ipaddress.IPv6Network("fcbb:bb00::/32")
WAN_AREA = ipaddress.IPv6Network("fd00::/16")


def plan_range(address: ipaddress.IPv6Address) -> str | None:
    """Name the range of this plan that contains ``address``, if any.

    A site LAN counts for every id the plan allows, not just the sites of one
    topology, so adding a site later cannot capture a service address.

    Examples
    --------
    >>> plan_range(ipaddress.IPv6Address("2001:db8:12::7"))
    'the LAN of site 12 (2001:db8:12::/64)'
    >>> plan_range(ipaddress.IPv6Address("fd00:3::1"))
    'the WAN link range fd00::/16'
    >>> plan_range(ipaddress.IPv6Address("2001:db8:ffff::1")) is None
    True
    """
    if address in LOCATOR_AREA:
        return f"the SRv6 locator area {LOCATOR_AREA}"
    if address in WAN_AREA:
        return f"the WAN link range {WAN_AREA}"
    if address in SITE_LAN_AREA:
        words = address.exploded.split(":")
        group, rest = words[2].lstrip("0"), words[3]
        if group.isdigit() and 1 <= int(group) <= MAX_SITE_ID and rest == "0000":
            return f"the LAN of site {group} ({site_lan(int(group))})"
    return None
