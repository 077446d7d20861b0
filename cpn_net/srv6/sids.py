"""The SID plan: every SRv6 SID cpn_net assigns, and how to read one back.

Router ``r<site>`` owns locator ``fcbb:bb00:<site>::/48`` (from
:func:`cpn_net.model.addressing.locator`). A SID is ``LOC:FUNCT:ARG`` as in
RFC 8986 §3.1: the 16-bit group after the locator is the *function*, the
groups after it are the *arguments*, everything else is zero. Like the
addressing plan, numbers are written with their *decimal* digits used as hex
groups, so ``fcbb:bb00:12:2:4::`` reads "site 12, End.X towards site 4".

=====================  ==============================  ==========================
behaviour (RFC 8986)   SID at site s                   example (site 12)
=====================  ==============================  ==========================
End (§4.1)             ``fcbb:bb00:<s>:1::``           ``fcbb:bb00:12:1::``
End.X to site n        ``fcbb:bb00:<s>:2:<n>::``       ``fcbb:bb00:12:2:4::``
(§4.2)
End.DX6 to client i    ``fcbb:bb00:<s>:3:1:<i>::``     ``fcbb:bb00:12:3:1:2::``
(§4.5)
End.DX6 to compute i   ``fcbb:bb00:<s>:3:2:<i>::``     ``fcbb:bb00:12:3:2:1::``
End.DT6 table T        ``fcbb:bb00:<s>:4:<T>::``       ``fcbb:bb00:12:4:100::``
(§4.8)
binding SID k          ``fcbb:bb00:<s>:5:<k>::``       ``fcbb:bb00:12:5:1::``
(End.B6.Encaps, §4.13)
=====================  ==============================  ==========================

The End.DX6 arguments are the host's interface identifier: SID
``fcbb:bb00:12:3:2:1::`` decapsulates towards ``2001:db8:12::2:1``
(:func:`~cpn_net.model.addressing.host_address`), so a capture reads the same
way on both sides of the decapsulation. Function 0 is never assigned: the bare
locator address is not a SID.

Ranges: neighbour sites, tables and binding indexes ``1..9999`` (one decimal
group); host indexes as in the addressing plan. Every SID is distinct
(encoding is the inverse of :func:`parse_sid`) and lies inside its site's
locator, so one ``/48`` route per site reaches every SID of that site.

Examples
--------
>>> str(end_sid(12)), str(end_x_sid(12, 4)), str(end_dx6_sid(12, "compute", 1))
('fcbb:bb00:12:1::', 'fcbb:bb00:12:2:4::', 'fcbb:bb00:12:3:2:1::')
>>> str(end_dt6_sid(12, 100)), str(binding_sid(12, 1))
('fcbb:bb00:12:4:100::', 'fcbb:bb00:12:5:1::')
>>> parse_sid("fcbb:bb00:12:2:4::").neighbour_id
4
"""

from __future__ import annotations

import enum
import functools
import ipaddress
from dataclasses import dataclass

from cpn_net.model import addressing
from cpn_net.srv6.errors import SidError

MAX_ARGUMENT = 9999
HOST_KINDS = ("client", "compute")

# SID plan prefix: fcbb:bb00::/32; the site group follows (addressing.locator).
_PLAN_PREFIX = ipaddress.IPv6Network("fcbb:bb00::/32")
_FUNCTION_SHIFT = 64  # group 4 (bits 48..63 from the top) holds the function
_ARG1_SHIFT = 48
_ARG2_SHIFT = 32


class Behaviour(enum.Enum):
    """SRv6 endpoint behaviours of the plan; values are the kernel's action names."""

    END = "End"
    END_X = "End.X"
    END_DX6 = "End.DX6"
    END_DT6 = "End.DT6"
    END_B6_ENCAPS = "End.B6.Encaps"


_FUNCTION = {
    Behaviour.END: 1,
    Behaviour.END_X: 2,
    Behaviour.END_DX6: 3,
    Behaviour.END_DT6: 4,
    Behaviour.END_B6_ENCAPS: 5,
}
_BEHAVIOUR = {code: b for b, code in _FUNCTION.items()}


def _host_code(kind: str) -> int:
    # The addressing plan's host code (1 clients, 2 compute) is the group
    # before the index; reading it from host_address keeps one source of truth.
    return (int(addressing.host_address(1, kind, 1)) >> 16) & 0xFFFF


_HOST_KIND_BY_CODE = {_host_code(kind): kind for kind in HOST_KINDS}


def _sid_cache(function):
    """Cache a pure SID function: path planning asks for the same few SIDs over and over.

    IPv6Address and Sid are immutable, so sharing results is safe; typed
    keys keep ``True`` apart from ``1``; failures are not cached. Calls with
    keywords or unhashable arguments go straight through, so they fail as
    the function itself says.
    """
    cached = functools.lru_cache(maxsize=1 << 14, typed=True)(function)

    @functools.wraps(function)
    def sid(*args, **kwargs):
        if kwargs:
            return function(*args, **kwargs)
        try:
            hash(args)
        except TypeError:
            return function(*args)
        return cached(*args)

    return sid


@dataclass(frozen=True)
class Locator:
    """A site's SRv6 locator (RFC 8986 §3.1): the prefix all its SIDs share.

    Examples
    --------
    >>> loc = site_locator(12)
    >>> str(loc.prefix), loc.contains(end_sid(12)), loc.contains(end_sid(13))
    ('fcbb:bb00:12::/48', True, False)
    """

    site_id: int
    prefix: ipaddress.IPv6Network

    def contains(self, address: ipaddress.IPv6Address | str) -> bool:
        """Whether ``address`` lies inside this locator."""
        return ipaddress.IPv6Address(address) in self.prefix


@dataclass(frozen=True)
class Sid:
    """A SID of the plan with its meaning; build one with :func:`parse_sid`.

    Only the attributes of its behaviour are set; the others stay None.

    Examples
    --------
    >>> sid = parse_sid(end_dx6_sid(3, "compute", 2))
    >>> sid.behaviour.value, sid.site_id, sid.host_kind, sid.host_index, str(sid.nexthop)
    ('End.DX6', 3, 'compute', 2, '2001:db8:3::2:2')
    """

    address: ipaddress.IPv6Address
    behaviour: Behaviour
    site_id: int
    neighbour_id: int | None = None
    host_kind: str | None = None
    host_index: int | None = None
    table: int | None = None
    binding_index: int | None = None

    @property
    def nexthop(self) -> ipaddress.IPv6Address | None:
        """The host an End.DX6 SID decapsulates towards; None for other behaviours."""
        if self.behaviour is not Behaviour.END_DX6:
            return None
        return addressing.host_address(self.site_id, self.host_kind, self.host_index)

    @property
    def args(self) -> tuple:
        """The behaviour's arguments, e.g. ``(4,)`` for End.X towards site 4."""
        values = (self.neighbour_id, self.host_kind, self.host_index, self.table, self.binding_index)
        return tuple(v for v in values if v is not None)

    def __str__(self) -> str:
        args = ",".join(str(a) for a in self.args)
        return f"{self.behaviour.value}@{self.site_id}({args})" if args else f"{self.behaviour.value}@{self.site_id}"


def site_locator(site_id: int) -> Locator:
    """The locator of site ``site_id``.

    Raises
    ------
    SidError
        If the site id is outside the addressing plan.

    Examples
    --------
    >>> site_locator(7)
    Locator(site_id=7, prefix=IPv6Network('fcbb:bb00:7::/48'))
    """
    try:
        return Locator(site_id, addressing.locator(site_id))
    except ValueError as err:
        raise SidError(f"site id {site_id!r}: {err}; use the site's id from the topology") from err


@_sid_cache
def end_sid(site_id: int) -> ipaddress.IPv6Address:
    """The node SID (End) of site ``site_id``.

    Examples
    --------
    >>> str(end_sid(1))
    'fcbb:bb00:1:1::'
    """
    return _build(site_id, Behaviour.END)


@_sid_cache
def end_x_sid(site_id: int, neighbour_id: int) -> ipaddress.IPv6Address:
    """The adjacency SID (End.X) of site ``site_id`` towards site ``neighbour_id``.

    Raises
    ------
    SidError
        If a site id is out of range, or the two ids are equal.

    Examples
    --------
    >>> str(end_x_sid(1, 2))
    'fcbb:bb00:1:2:2::'
    """
    _check_site(neighbour_id, "neighbour id")
    if neighbour_id == site_id:
        raise SidError(f"End.X at site {site_id}: neighbour id {neighbour_id} is the site itself; "
                       "give the id of the site at the other end of the link")
    return _build(site_id, Behaviour.END_X, _group(neighbour_id))


@_sid_cache
def end_dx6_sid(site_id: int, kind: str, index: int) -> ipaddress.IPv6Address:
    """The End.DX6 SID decapsulating towards host ``index`` of ``kind`` at the site.

    ``kind`` is ``"client"`` or ``"compute"``; the nexthop is
    :func:`cpn_net.model.addressing.host_address` of the same triple.

    Raises
    ------
    SidError
        If the kind or index is outside the addressing plan.

    Examples
    --------
    >>> str(end_dx6_sid(4, "client", 3))
    'fcbb:bb00:4:3:1:3::'
    """
    _check_site(site_id, "site id")
    try:
        host = addressing.host_address(site_id, kind, index)
    except ValueError as err:
        raise SidError(f"End.DX6 at site {site_id}: {err}") from err
    host_code, host_index = (int(host) >> 16) & 0xFFFF, int(host) & 0xFFFF
    return _build(site_id, Behaviour.END_DX6, host_code, host_index)


@_sid_cache
def end_dt6_sid(site_id: int, table: int) -> ipaddress.IPv6Address:
    """The End.DT6 SID decapsulating into routing table ``table`` (1..9999).

    Examples
    --------
    >>> str(end_dt6_sid(4, 254))
    'fcbb:bb00:4:4:254::'
    """
    _check_argument(table, "End.DT6 table", site_id)
    return _build(site_id, Behaviour.END_DT6, _group(table))


@_sid_cache
def binding_sid(site_id: int, index: int) -> ipaddress.IPv6Address:
    """Binding SID number ``index`` (End.B6.Encaps) of site ``site_id``.

    Examples
    --------
    >>> str(binding_sid(4, 2))
    'fcbb:bb00:4:5:2::'
    """
    _check_argument(index, "binding SID index", site_id)
    return _build(site_id, Behaviour.END_B6_ENCAPS, _group(index))


@_sid_cache
def parse_sid(address: ipaddress.IPv6Address | str) -> Sid:
    """Read a SID of the plan back into site, behaviour and arguments.

    Parameters
    ----------
    address : IPv6Address or str
        The SID.

    Returns
    -------
    Sid

    Raises
    ------
    SidError
        If the address is not a SID of this plan; the message says which part
        (locator, function, argument) is wrong.

    Examples
    --------
    >>> parse_sid("fcbb:bb00:12:4:100::").table
    100
    >>> parse_sid("2001:db8:12::1")
    Traceback (most recent call last):
    ...
    cpn_net.srv6.errors.SidError: SID 2001:db8:12::1 is outside the SID plan fcbb:bb00::/32; ...
    """
    try:
        # IPv6Address(IPv6Address) re-parses its text form: skip that, it dominates.
        addr = address if isinstance(address, ipaddress.IPv6Address) else ipaddress.IPv6Address(address)
    except ValueError as err:
        raise SidError(f"SID {address!r} is not an IPv6 address: {err}") from err
    if addr not in _PLAN_PREFIX:
        raise SidError(f"SID {addr} is outside the SID plan {_PLAN_PREFIX}; SIDs are "
                       "fcbb:bb00:<site>:<function>:<args>:: (see cpn_net.srv6.sids)")
    value = int(addr)
    site_id = _ungroup((value >> 80) & 0xFFFF, addr, "site")
    function = (value >> _FUNCTION_SHIFT) & 0xFFFF
    arg1 = (value >> _ARG1_SHIFT) & 0xFFFF
    arg2 = (value >> _ARG2_SHIFT) & 0xFFFF
    rest = value & 0xFFFFFFFF
    behaviour = _BEHAVIOUR.get(function)
    if behaviour is None:
        raise SidError(f"SID {addr} has function {function:x}; expected 1..5 "
                       "(End, End.X, End.DX6, End.DT6, End.B6.Encaps)")
    uses_two_args = behaviour is Behaviour.END_DX6
    uses_no_args = behaviour is Behaviour.END
    if rest or (not uses_two_args and arg2) or (uses_no_args and arg1):
        raise SidError(f"SID {addr}: {behaviour.value} SIDs carry "
                       f"{'no' if uses_no_args else 'two' if uses_two_args else 'one'} argument group(s) "
                       "and zeros after them; rebuild it with cpn_net.srv6.sids")
    if behaviour is Behaviour.END:
        return Sid(addr, behaviour, site_id)
    if behaviour is Behaviour.END_X:
        neighbour = _ungroup(arg1, addr, "neighbour")
        if neighbour == site_id:
            raise SidError(f"SID {addr}: End.X neighbour {neighbour} is the site itself")
        return Sid(addr, behaviour, site_id, neighbour_id=neighbour)
    if behaviour is Behaviour.END_DX6:
        kind = _HOST_KIND_BY_CODE.get(arg1)
        if kind is None:
            raise SidError(f"SID {addr}: End.DX6 host code {arg1:x} is not one of "
                           f"{sorted(_HOST_KIND_BY_CODE)} ({', '.join(HOST_KINDS)})")
        index = _ungroup(arg2, addr, "host index")
        if index > addressing.MAX_HOSTS_PER_KIND:
            raise SidError(f"SID {addr}: host index {index} must be in 1..{addressing.MAX_HOSTS_PER_KIND}")
        return Sid(addr, behaviour, site_id, host_kind=kind, host_index=index)
    number = _ungroup(arg1, addr, "argument")
    if behaviour is Behaviour.END_DT6:
        return Sid(addr, behaviour, site_id, table=number)
    return Sid(addr, behaviour, site_id, binding_index=number)


def local_sids(site_id: int, neighbour_ids=(), hosts=(), tables=()) -> tuple[Sid, ...]:
    """Every SID a router instantiates: End, End.X per neighbour, End.DX6 per host, End.DT6 per table.

    Parameters
    ----------
    site_id : int
    neighbour_ids : iterable of int
        Ids of the sites this site has a link to.
    hosts : iterable of (str, int)
        ``(kind, index)`` of the site's clients and compute nodes.
    tables : iterable of int
        Routing tables that get an End.DT6 SID (one per slice, and 254 for main).

    Returns
    -------
    tuple of Sid
        In that order, each group sorted.

    Examples
    --------
    >>> [str(s) for s in local_sids(1, [3, 2], [("compute", 1)], [254])]
    ['End@1', 'End.X@1(2)', 'End.X@1(3)', 'End.DX6@1(compute,1)', 'End.DT6@1(254)']
    """
    addresses = [end_sid(site_id)]
    addresses += [end_x_sid(site_id, n) for n in sorted(set(neighbour_ids))]
    addresses += [end_dx6_sid(site_id, k, i) for k, i in sorted(set(hosts))]
    addresses += [end_dt6_sid(site_id, t) for t in sorted(set(tables))]
    return tuple(parse_sid(a) for a in addresses)


def _build(site_id: int, behaviour: Behaviour, arg1: int = 0, arg2: int = 0) -> ipaddress.IPv6Address:
    _check_site(site_id, "site id")
    base = _locator_base(site_id)
    value = base | (_FUNCTION[behaviour] << _FUNCTION_SHIFT) | (arg1 << _ARG1_SHIFT) | (arg2 << _ARG2_SHIFT)
    return ipaddress.IPv6Address(value)


@functools.lru_cache(maxsize=None)
def _locator_base(site_id: int) -> int:
    return int(site_locator(site_id).prefix.network_address)


def _group(number: int) -> int:
    """A number 1..9999 written with its decimal digits as one hex group."""
    return int(str(number), 16)


def _ungroup(group: int, addr: ipaddress.IPv6Address, what: str) -> int:
    text = f"{group:x}"
    if not text.isdigit() or group == 0:
        raise SidError(f"SID {addr}: {what} group {text} must be a number 1..{MAX_ARGUMENT} "
                       "written in decimal digits (the plan writes 12 as :12:)")
    return int(text)


def _check_site(site_id: int, what: str) -> None:
    if not isinstance(site_id, int) or isinstance(site_id, bool) or not 1 <= site_id <= addressing.MAX_SITE_ID:
        raise SidError(f"{what} {site_id!r} must be an int in 1..{addressing.MAX_SITE_ID}; "
                       "use the site's id from the topology")


def _check_argument(value: int, what: str, site_id: int) -> None:
    _check_site(site_id, "site id")
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ARGUMENT:
        raise SidError(f"{what} {value!r} at site {site_id} must be an int in 1..{MAX_ARGUMENT} "
                       "(one decimal group of the SID)")
