"""OpenFlow 1.3 flow entries as plain data, and a fake flow table to test them.

The controller's decisions are lists of :class:`FlowSpec`; the os-ken adapter
(``controllers/southbound/openflow.py``) turns each into an ``OFPFlowMod``.
Unit tests ask a :class:`FakeFlowTable` the question FAUCET's tests ask: "does a
packet matching X leave on port Y?", without a switch.

Table layout of a site switch (room is left for slices and telemetry):

=====  =========  ==========================================================
table  name       what it does
=====  =========  ==========================================================
0      classify   slice / colour marking (later issues); default: goto 1
1      forward    L2 forwarding on static MACs; multicast (IPv6 ND) floods
=====  =========  ==========================================================
"""

from __future__ import annotations

import dataclasses

TABLE_CLASSIFY = 0
TABLE_FORWARD = 1
FLOOD = "FLOOD"
COOKIE_BASELINE = 0xC0DE0001


@dataclasses.dataclass(frozen=True)
class FlowSpec:
    """One flow entry.

    ``match`` holds os-ken OFPMatch keyword pairs (``eth_dst``, ``in_port``, ...);
    a value ``"addr/mask"`` on ``eth_dst`` is a masked match. ``actions`` is a
    tuple of ``("output", port)``, ``("output", FLOOD)`` or
    ``("set_field", field, value)``.
    """

    table: int
    priority: int
    match: tuple[tuple[str, object], ...] = ()
    actions: tuple[tuple, ...] = ()
    goto_table: int | None = None
    cookie: int = COOKIE_BASELINE

    def match_dict(self) -> dict:
        return dict(self.match)


def _eth_matches(rule: str, mac: str) -> bool:
    if "/" not in rule:
        return rule.lower() == mac.lower()
    value, mask = rule.split("/")
    v, m, a = (int(x.replace(":", ""), 16) for x in (value, mask, mac))
    return (a & m) == (v & m)


class FakeFlowTable:
    """A pure model of an OpenFlow 1.3 pipeline, enough for our own flows.

    The highest-priority matching entry of a table wins (equal priorities: the
    first given, where a real switch's choice is undefined); a table miss drops
    the packet. ``goto_table`` must name a later table (OpenFlow 1.3 §5.1),
    which also guarantees that a lookup ends. An explicit output to the
    packet's ``in_port`` is not sent, as on a real switch (OpenFlow 1.3 §4.5:
    only the reserved ``IN_PORT`` sends a packet back where it came from).

    Raises
    ------
    ValueError
        If a flow's ``goto_table`` is not a later table than its own.

    Examples
    --------
    >>> flows = [FlowSpec(0, 0, goto_table=1),
    ...          FlowSpec(1, 100, (("eth_dst", "02:00:00:01:01:00"),), (("output", 1),))]
    >>> FakeFlowTable(flows, ports=(1, 2, 3)).output_ports(in_port=2, eth_dst="02:00:00:01:01:00")
    [1]
    >>> FakeFlowTable(flows, ports=(1, 2, 3)).output_ports(in_port=2, eth_dst="02:00:00:01:99:00")
    []
    """

    def __init__(self, flows, ports=()):
        self.flows = sorted(flows, key=lambda f: (f.table, -f.priority))
        for flow in self.flows:
            if flow.goto_table is not None and flow.goto_table <= flow.table:
                raise ValueError(f"flow {flow}: goto_table={flow.goto_table} must be > its table {flow.table} "
                                 "(OpenFlow 1.3 §5.1); send it to a later table")
        self.ports = tuple(ports)

    def lookup(self, table: int, **packet) -> FlowSpec | None:
        for flow in self.flows:
            if flow.table != table:
                continue
            if all(self._field_matches(k, v, packet) for k, v in flow.match):
                return flow
        return None

    @staticmethod
    def _field_matches(key, rule, packet) -> bool:
        if key not in packet:
            return False
        if key in ("eth_dst", "eth_src"):
            return _eth_matches(rule, packet[key])
        return rule == packet[key]

    def output_ports(self, **packet) -> list[int]:
        """Ports a packet leaves on (FLOOD expanded, in_port excluded)."""
        table, out = 0, []
        while table is not None:
            flow = self.lookup(table, **packet)
            if flow is None:
                return out
            for action in flow.actions:
                if action[0] == "output":
                    if action[1] == FLOOD:
                        out.extend(p for p in self.ports if p != packet.get("in_port"))
                    elif action[1] != packet.get("in_port"):
                        out.append(action[1])
                elif action[0] == "set_field":
                    packet[action[1]] = action[2]
            table = flow.goto_table
        return out
