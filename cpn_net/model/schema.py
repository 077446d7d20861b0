"""The topology file format: its keys, types, ranges and defaults.

A topology is a YAML mapping (``.yaml``/``.yml``)::

    name: tiny                        # required; lower-case letters, digits, - and _
    description: Three sites          # optional
    route_factor: 1.3                 # optional, >= 1; fibre length / great circle
    defaults:                         # optional
      link: {rate_mbps: 100, jitter_ms: 0, loss_pct: 0}
      compute: {workers: 4, service_time_ms: 10, queue_limit: 64}
    sites:                            # required, at least one
      - name: beijing                 # required, unique
        id: 1                         # optional, unique, 1..9999; default: lowest unused, file order
        lat: 39.9                     # optional, both or neither; degrees
        lon: 116.4
        clients: 1                    # 0..99, default 1
        compute: 2                    # 0..99 nodes with the defaults, or a list of
                                      # mappings of compute keys (see below); default 1
    links:                            # optional with one site
      - {a: beijing, b: shanghai, delay_ms: 5, jitter_ms: 0.5, loss_pct: 0.1, rate_mbps: 100}
    services:                         # optional
      - {name: infer, anycast: "2001:db8:ffff::1", port: 8080, compute: [k1-1, guiyang]}
    policies:                         # optional: SR policies the controller installs
      - {name: bj-gy, headend: beijing, to: guiyang, objective: min_hops, waypoints: [shanghai]}
    slices:                           # optional: tenant network slices (RFC 9543)
      - {name: gold, members: [beijing, k3-1], rate_mbps: 20, max_latency_ms: 30, kind: latency}

Link keys: ``a``, ``b`` (site names), ``delay_ms`` (one way, >= 0; omitted:
derived from the sites' coordinates, see :mod:`cpn_net.model.geo`),
``jitter_ms`` (>= 0 and <= ``delay_ms``: the emulator draws each packet's delay
from delay ± jitter and clamps at 0, so a larger jitter would skew the mean
delay), ``loss_pct`` (0..100), ``rate_mbps`` (> 0, or null for an unshaped link).
A pair of sites has at most one link; self-loops are not allowed.

Compute keys: ``workers`` (1..4096), ``service_time_ms`` (> 0), ``queue_limit``
(>= 0), ``background_load_pct`` (0 <= x < 100: a node fully taken by background
load has no capacity to steer to), ``price_cny_per_hour`` (>= 0 or null),
``carbon_g_per_kwh`` (>= 0 or null).

Service keys: ``name``, ``anycast`` (a global unicast IPv6 address outside the
ranges of :mod:`cpn_net.model.addressing`: site LANs, locators, WAN links),
``port`` (1..65535), ``compute`` (node names such as ``k1-1`` or site names
meaning all that site's compute nodes; default every compute node).

Policy keys (SR policies, RFC 9256; checked by :mod:`cpn_net.model.policies`):
``name`` (unique), ``headend`` (the site whose router encapsulates), ``to`` (a
site name: its LAN /64; a host name such as ``k3-1``: its /128, decapsulated
with End.DX6 towards it; or a quoted IPv6 prefix, e.g. a service's anycast
address), ``flow`` (optional 5-tuple narrowing: ``proto`` tcp, udp, sctp,
icmpv6 or 1..255; ``src`` an address or prefix inside the headend's LAN;
``src_port``/``dst_port`` 1..65535, only with tcp, udp or sctp), ``objective``
(``min_delay`` default, ``min_hops``, ``bandwidth``), ``bandwidth_mbps`` (> 0,
required with and only with objective ``bandwidth``), ``waypoints`` (sites to
visit in order; not the headend, not the destination site, no repeats),
``mode`` (``encap`` default or ``encap.red``: H.Encaps / H.Encaps.Red, RFC 8986
§5.1, §5.2), ``backup`` (bool, default true: precompute a link-disjoint
backup path).

Slice keys (network slices, RFC 9543; checked by :mod:`cpn_net.model.slices`):
``name`` (unique), ``id`` (1..4095, unique, default the lowest free; the
mark on the wire is given at admission, :mod:`cpn_net.slicing.admission`), ``members``
(host names, or site names meaning all the site's hosts; no host twice),
``rate_mbps`` (> 0, guaranteed between every ordered pair of member sites),
``max_latency_ms`` (> 0, optional), ``max_loss_pct`` (0..100, optional),
``kind`` (``latency`` default: minimum-delay paths; ``bulk``: widest paths),
``meter_mbps`` (optional cap at the site switch, >= ``rate_mbps``),
``isolation`` (bool, default true: a host belongs to at most one isolated
slice, decapsulated into the slice's own table).

Key ``scenario`` is reserved for a later version.
Networkx node-link JSON and Topology Zoo GraphML are imported into the same
model (:mod:`cpn_net.model.node_link`, :mod:`cpn_net.model.graphml`).

This module declares the fields; :class:`Reader` checks one mapping against
them and records every problem in a :class:`~cpn_net.model.errors.ProblemLog`.
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping

from cpn_net.model import addressing
from cpn_net.model.errors import ProblemLog, did_you_mean, unknown_fix

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
NAME_RULE = "1-63 lower-case letters, digits, '-' or '_', not starting with '-' or '_'"
# Site names that read like another node's name would mislead on every capture.
PLAN_LIKE_NAME = re.compile(r"[rs]\d+|[ku]\d+-\d+|l\d+x\d+")
MAX_WORKERS = 4096
RESERVED_KEYS = ("scenario",)
# Words people write for a key, mapped to the key, for "did you mean" hints.
KEY_ALIASES = {
    "latitude": "lat", "longitude": "lon", "lng": "lon", "delay": "delay_ms", "latency": "delay_ms",
    "latency_ms": "delay_ms", "jitter": "jitter_ms", "loss": "loss_pct", "rate": "rate_mbps",
    "bandwidth": "rate_mbps", "bw": "rate_mbps", "address": "anycast", "ip": "anycast", "hosts": "clients",
    "via": "waypoints", "destination": "to", "dest": "to", "from": "headend", "ingress": "headend",
    "protocol": "proto", "sport": "src_port", "dport": "dst_port", "source": "src",
    "endpoints": "members", "guaranteed_mbps": "rate_mbps",
    "max_delay_ms": "max_latency_ms", "latency_bound_ms": "max_latency_ms", "cap_mbps": "meter_mbps",
    "isolated": "isolation", "type": "kind",
}
#: The service importers add when a file names none, matching the flagship's.
DEFAULT_SERVICE = {"name": "infer", "anycast": "2001:db8:ffff::1", "port": 8080}
DEFAULT_SERVICE_NOTE = (f"no services given: added {DEFAULT_SERVICE['name']} at {DEFAULT_SERVICE['anycast']} "
                        f"port {DEFAULT_SERVICE['port']} on every compute node")


@dataclass(frozen=True)
class Field:
    """One key of a mapping: its kind, bounds and the fix hint for bad values.

    ``kind`` is ``number``, ``int``, ``bool``, ``name``, ``text``, ``address``,
    ``list``, ``mapping`` or ``choice`` (one of the strings in ``choices``).
    ``at_least``/``at_most`` are inclusive bounds, ``above``/``below`` exclusive.
    """

    kind: str
    fix: str
    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None
    nullable: bool = False
    choices: tuple[str, ...] = ()

    def bounds_text(self) -> str:
        low = high = None
        if self.at_least is not None or self.above is not None:
            low = f"[{self.at_least:g}" if self.at_least is not None else f"({self.above:g}"
        if self.at_most is not None or self.below is not None:
            high = f"{self.at_most:g}]" if self.at_most is not None else f"{self.below:g})"
        if low and high:
            return f"in {low}, {high}"
        if low:
            return (">= " if low[0] == "[" else "> ") + low[1:]
        return ("<= " if high[-1] == "]" else "< ") + high[:-1]

    def in_bounds(self, value: float) -> bool:
        return not (
            (self.at_least is not None and value < self.at_least)
            or (self.above is not None and value <= self.above)
            or (self.at_most is not None and value > self.at_most)
            or (self.below is not None and value >= self.below)
        )


_MS = "give a one-way delay in ms"
LINK_FIELDS: dict[str, Field] = {
    "a": Field("name", "give the name of a site"),
    "b": Field("name", "give the name of a site"),
    "delay_ms": Field("number", f"{_MS}, 0 or more", at_least=0),
    "jitter_ms": Field("number", "give a jitter in ms, 0 or more", at_least=0),
    "loss_pct": Field("number", "give a loss percentage from 0 to 100", at_least=0, at_most=100),
    "rate_mbps": Field("number", "give a rate above 0 Mbit/s, or null for an unshaped link", above=0, nullable=True),
}
LINK_DEFAULT_FIELDS = {k: LINK_FIELDS[k] for k in ("jitter_ms", "loss_pct", "rate_mbps")}

COMPUTE_FIELDS: dict[str, Field] = {
    "workers": Field("int", f"give 1 to {MAX_WORKERS} workers", at_least=1, at_most=MAX_WORKERS),
    "service_time_ms": Field("number", "give a service time above 0 ms", above=0),
    "queue_limit": Field("int", "give a queue limit of 0 or more requests", at_least=0),
    "background_load_pct": Field(
        "number", "give a load from 0 up to (not including) 100 %", at_least=0, below=100
    ),
    "price_cny_per_hour": Field("number", "give a price of 0 or more, or null", at_least=0, nullable=True),
    "carbon_g_per_kwh": Field("number", "give a carbon intensity of 0 or more, or null", at_least=0, nullable=True),
}
COMPUTE_DEFAULTS: dict[str, Any] = {
    "workers": 4,
    "service_time_ms": 10.0,
    "queue_limit": 64,
    "background_load_pct": 0.0,
    "price_cny_per_hour": None,
    "carbon_g_per_kwh": None,
}
LINK_DEFAULTS: dict[str, Any] = {"jitter_ms": 0.0, "loss_pct": 0.0, "rate_mbps": None}

_HOSTS_FIX = f"give 0 to {addressing.MAX_HOSTS_PER_KIND}"
SITE_FIELDS: dict[str, Field] = {
    "name": Field("name", "give each site a name"),
    "id": Field("int", f"give an id from 1 to {addressing.MAX_SITE_ID}, or omit it", at_least=1,
                at_most=addressing.MAX_SITE_ID),
    "lat": Field("number", "give a latitude in degrees, -90 to 90 (north positive)", at_least=-90, at_most=90),
    "lon": Field("number", "give a longitude in degrees, -180 to 180 (east positive)", at_least=-180, at_most=180),
    "clients": Field("int", f"{_HOSTS_FIX} clients", at_least=0, at_most=addressing.MAX_HOSTS_PER_KIND),
    # ``compute`` may also be a list; the builder handles that before asking the Field.
    "compute": Field("int", f"{_HOSTS_FIX} compute nodes, or a list of mappings", at_least=0,
                     at_most=addressing.MAX_HOSTS_PER_KIND),
}
SERVICE_FIELDS: dict[str, Field] = {
    "name": Field("name", "give each service a name"),
    "anycast": Field("address", "give an IPv6 address such as '2001:db8:ffff::1' (quoted)"),
    "port": Field("int", "give a port from 1 to 65535", at_least=1, at_most=65535),
    "compute": Field("list", "list compute node names (k1-1) or site names"),
}
TOP_FIELDS: dict[str, Field] = {
    "name": Field("name", "name the topology, e.g. name: tiny"),
    "description": Field("text", "describe the topology in one line of text"),
    "route_factor": Field("number", "give a factor of 1 or more (fibre is never shorter than the great circle)",
                          at_least=1),
    "defaults": Field("mapping", "give defaults as a mapping with keys link and compute"),
    "sites": Field("list", "list the sites"),
    "links": Field("list", "list the links"),
    "services": Field("list", "list the services"),
    "policies": Field("list", "list the SR policies"),
    "slices": Field("list", "list the network slices"),
}

#: Policy objectives: the first two are :mod:`cpn_net.srv6.paths` objectives;
#: ``bandwidth`` is least delay among paths with ``bandwidth_mbps`` to spare (CSPF).
POLICY_OBJECTIVES = ("min_delay", "min_hops", "bandwidth")
#: Headend behaviours H.Encaps and H.Encaps.Red (RFC 8986 §5.1, §5.2).
POLICY_MODES = ("encap", "encap.red")
#: IANA protocol numbers of the names a policy's flow may use.
PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132, "icmpv6": 58}
#: Protocols whose header starts with source and destination ports.
PORTED_PROTOCOLS = (6, 17, 132)
POLICY_FIELDS: dict[str, Field] = {
    "name": Field("name", "give each policy a name"),
    "headend": Field("name", "give the name of the site whose router steers the traffic"),
    # ``to`` and ``flow.proto``/``flow.src`` take several types; policies.py checks them.
    "to": Field("text", "give a site name, a host name or a quoted IPv6 prefix"),
    "flow": Field("mapping", "give the flow as a mapping of proto, src, src_port, dst_port", nullable=True),
    "objective": Field("choice", "use min_delay, min_hops or bandwidth", choices=POLICY_OBJECTIVES),
    "bandwidth_mbps": Field("number", "give the bandwidth to reserve, above 0 Mbit/s", above=0),
    "waypoints": Field("list", "list site names to traverse in order", nullable=True),
    "mode": Field("choice", "use encap (H.Encaps) or encap.red (H.Encaps.Red)", choices=POLICY_MODES),
    "backup": Field("bool", "write true or false"),
}
#: Slice kinds: ``latency`` rides minimum-delay paths, ``bulk`` maximum-residual (widest) ones.
SLICE_KINDS = ("latency", "bulk")
#: Slice ids name a slice's flows, meters, queues and tables; the largest is the largest
#: node number of a Linux u32 filter handle (12 bits). The mark on the wire is separate
#: (4 DSCP bits, given at admission: :func:`cpn_net.slicing.admission.free_mark`).
MAX_SLICE_ID = 4095
SLICE_FIELDS: dict[str, Field] = {
    "name": Field("name", "give each slice a name"),
    "id": Field("int", f"give an id from 1 to {MAX_SLICE_ID}, or omit it", at_least=1,
                at_most=MAX_SLICE_ID),
    "members": Field("list", "list host names (u1-1, k2-1) or site names (all the site's hosts)"),
    "rate_mbps": Field("number", "give the guaranteed rate, above 0 Mbit/s", above=0),
    "max_latency_ms": Field("number", "give the latency bound in ms, above 0, or omit it", above=0,
                            nullable=True),
    "max_loss_pct": Field("number", "give the loss bound from 0 to 100 %, or omit it", at_least=0, at_most=100,
                          nullable=True),
    "kind": Field("choice", "use latency (minimum-delay paths) or bulk (widest paths)", choices=SLICE_KINDS),
    "meter_mbps": Field("number", "give the cap above 0 Mbit/s, or omit it", above=0, nullable=True),
    "isolation": Field("bool", "write true or false"),
}
FLOW_FIELDS: dict[str, Field] = {
    "proto": Field("text", "use tcp, udp, sctp, icmpv6 or a protocol number 1..255"),
    "src": Field("text", "give a quoted IPv6 address or prefix inside the headend's LAN"),
    "src_port": Field("int", "give a port from 1 to 65535", at_least=1, at_most=65535),
    "dst_port": Field("int", "give a port from 1 to 65535", at_least=1, at_most=65535),
}


def describe(value: object) -> str:
    """Name a value's type the way a YAML or JSON author thinks of it.

    Examples
    --------
    >>> describe(True), describe(3), describe("x"), describe(None), describe([])
    ('a bool', 'an int', 'a string', 'null', 'a list')
    """
    if isinstance(value, bool):
        return "a bool"
    for kind, text in ((int, "an int"), (float, "a float"), (str, "a string"), (list, "a list"), (dict, "a mapping")):
        if isinstance(value, kind):
            return text
    return "null" if value is None else f"a {type(value).__name__}"


def show(value: object) -> str:
    """Render a value in a message as YAML/JSON would write it; strings quoted.

    Examples
    --------
    >>> show(-3), show(2.0), show(True), show(None), show("x")
    ('-3', '2.0', 'true', 'null', "'x'")
    """
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, (int, float)):
        return repr(value)
    return repr(value)


_EXPECTED = {
    "number": ("a number", "write a number such as 5 (true/false are bools, not numbers)"),
    "int": ("an int", "write a whole number such as 4"),
    "bool": ("a bool", "write true or false, without quotes"),
    "name": ("a name", f"use {NAME_RULE}, quoted if YAML would read it otherwise"),
    "text": ("a string", "write it as text (quote it if needed)"),
    "address": ("an IPv6 address string", "write it quoted, e.g. '2001:db8:ffff::1'"),
    "list": ("a list", "write a list (YAML '- item' lines or [a, b])"),
    "mapping": ("a mapping", "write key: value pairs"),
}


class Reader:
    """Checks one mapping against its fields; records problems, returns good values.

    ``path`` is the key path of the mapping in the file (``links[3]``).
    ``spelled`` maps a field to the key as the file spells it, when an
    importer accepts another spelling (``Latitude`` for ``lat``).
    ``ok`` turns False once any problem is recorded, so callers skip checks
    that would only repeat the first problem.

    Examples
    --------
    >>> log = ProblemLog("t.yaml")
    >>> r = Reader(log, "links[0]", {"a": "x", "b": "y", "delay_ms": -3, "dealy": 1}, LINK_FIELDS)
    >>> r.get("delay_ms"), r.ok
    (None, False)
    >>> for p in log.problems: print(p)
    t.yaml: links[0].dealy: unknown key; did you mean 'delay_ms'?
    t.yaml: links[0].delay_ms: -3 must be >= 0; give a one-way delay in ms, 0 or more
    """

    def __init__(
        self,
        log: ProblemLog,
        path: str,
        mapping: Mapping[str, Any],
        fields: Mapping[str, Field],
        spelled: Mapping[str, str] | None = None,
    ):
        self.log = log
        self.path = path
        self.mapping = mapping
        self.fields = fields
        self.spelled = dict(spelled or {})
        self.ok = True
        written = set(self.spelled.values())
        for key in mapping:
            if key not in fields and key not in written:
                shown = key if isinstance(key, str) else repr(key)
                known = [self.spelled.get(f, f) for f in fields]
                alias = KEY_ALIASES.get(str(key).lower())
                fix = f"did you mean {alias!r}?" if alias in known else unknown_fix(key, known, "keys")
                self.log.add(self.key(shown), "unknown key", fix)
                self.ok = False

    def key(self, name: str) -> str:
        """The key path of field ``name`` as the file spells it."""
        written = self.spelled.get(name, name)
        return f"{self.path}.{written}" if self.path else written

    def has(self, name: str) -> bool:
        return self.spelled.get(name, name) in self.mapping

    def raw(self, name: str) -> Any:
        return self.mapping.get(self.spelled.get(name, name))

    def fail(self, name: str, message: str, fix: str) -> None:
        self.log.add(self.key(name), message, fix)
        self.ok = False

    def get(self, name: str, default: Any = None) -> Any:
        """The checked value of ``name``; ``default`` if it is absent or bad."""
        if not self.has(name):
            return default
        value = self.raw(name)
        checked = check_value(self.log, self.key(name), value, self.fields[name])
        if checked is _BAD:
            self.ok = False
            return default
        return checked


class _Bad:
    def __repr__(self) -> str:
        return "<bad value>"


_BAD = _Bad()


def check_value(log: ProblemLog, key: str, value: Any, field: Field) -> Any:
    """Check one value; return it (converted) or ``_BAD`` after logging why."""
    if value is None and field.nullable:
        return None
    if field.kind == "choice":
        expected, type_fix = f"one of {', '.join(field.choices)}", field.fix
    else:
        expected, type_fix = _EXPECTED[field.kind]
    good_type = {
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "choice": isinstance(value, str),
        "name": isinstance(value, str),
        "text": isinstance(value, str),
        "address": isinstance(value, str),
        "list": isinstance(value, list),
        "mapping": isinstance(value, dict),
    }[field.kind]
    if not good_type:
        if field.kind == "int" and isinstance(value, float) and value.is_integer():
            type_fix = f"write {int(value)} without the decimal point"
        log.add(key, f"{show(value)} is {describe(value)}, expected {expected}", type_fix)
        return _BAD
    if field.kind == "number" and not (isinstance(value, int) or math.isfinite(value)):  # a huge int: no float
        log.add(key, f"{show(value)} is not a finite number", field.fix)
        return _BAD
    if field.kind in ("number", "int") and not field.in_bounds(value):
        log.add(key, f"{show(value)} must be {field.bounds_text()}", field.fix)
        return _BAD
    if field.kind == "number":
        return float(value)
    if field.kind == "name" and not NAME_PATTERN.fullmatch(value):
        log.add(key, f"{value!r} is not a valid name: expected {NAME_RULE}", _name_fix(value))
        return _BAD
    if field.kind == "address":
        return _check_anycast(log, key, value, field)
    if field.kind == "choice" and value not in field.choices:
        close = did_you_mean(value, field.choices)
        log.add(key, f"{value!r} is not {expected}", f"did you mean {close!r}?" if close else field.fix)
        return _BAD
    return value


def slug(text: str) -> str:
    """A valid name made from free text: ASCII-folded, lower-case, ``-`` between words.

    Empty when ``text`` has no letters or digits.

    Examples
    --------
    >>> slug("Gui'an (Guizhou)"), slug("Zürich"), slug("São Paulo #2"), slug("***")
    ('gui-an-guizhou', 'zurich', 'sao-paulo-2', '')
    """
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")[:63].rstrip("-")


def _name_fix(value: str) -> str:
    suggestion = slug(value)
    return f"rename it, e.g. {suggestion!r}" if suggestion else "rename it, e.g. 'site1'"


def _check_anycast(log: ProblemLog, key: str, value: str, field: Field) -> Any:
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError as err:
        log.add(key, f"{value!r} is not an IPv6 address ({err})", field.fix)
        return _BAD
    special = address.is_unspecified or address.is_loopback or address.is_link_local or address.is_multicast
    if special or address.ipv4_mapped is not None:
        log.add(key, f"{value!r} is not a routable unicast address", "use one such as '2001:db8:ffff::1'")
        return _BAD
    taken = addressing.plan_range(address)
    if taken is not None:
        log.add(
            key,
            f"{value!r} lies in {taken}, which the addressing plan assigns",
            "pick an anycast address outside site LANs, locators and WAN links, e.g. '2001:db8:ffff::1'",
        )
        return _BAD
    return address
