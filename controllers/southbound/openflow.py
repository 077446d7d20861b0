"""OpenFlow 1.3 adapter: turn :class:`cpn_net.openflow.FlowSpec` into os-ken messages."""

from __future__ import annotations

import ipaddress

from cpn_net.openflow import FLOOD, FlowSpec


def flow_mod(datapath, spec: FlowSpec, command=None):
    """Build an ``OFPFlowMod`` for ``spec`` on ``datapath``."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    match = {}
    for key, value in spec.match:
        if isinstance(value, str) and "/" in value and key in ("eth_dst", "eth_src"):
            value = tuple(value.split("/"))
        elif isinstance(value, str) and "/" in value and key in ("ipv6_src", "ipv6_dst"):
            network = ipaddress.IPv6Network(value)
            value = (str(network.network_address), str(network.netmask))
        match[key] = value
    actions = []
    meter = None
    for action in spec.actions:
        if action[0] == "meter":
            meter = action[1]
        elif action[0] == "output":
            port = ofp.OFPP_FLOOD if action[1] == FLOOD else action[1]
            actions.append(parser.OFPActionOutput(port))
        elif action[0] == "set_field":
            actions.append(parser.OFPActionSetField(**{action[1]: action[2]}))
        else:
            raise ValueError(f"flow action {action[0]!r} is not supported by the adapter")
    instructions = []
    if meter is not None:  # OpenFlow 1.3 §5.9: the meter instruction runs before apply-actions
        instructions.append(parser.OFPInstructionMeter(meter, ofp.OFPIT_METER))
    if actions:
        instructions.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
    if spec.goto_table is not None:
        instructions.append(parser.OFPInstructionGotoTable(spec.goto_table))
    return parser.OFPFlowMod(
        datapath=datapath, table_id=spec.table, priority=spec.priority, cookie=spec.cookie,
        command=ofp.OFPFC_ADD if command is None else command,
        match=parser.OFPMatch(**match), instructions=instructions)


def delete_flow(datapath, spec: FlowSpec):
    """A strict delete of the entry with ``spec``'s table, priority and match."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    message = flow_mod(datapath, FlowSpec(spec.table, spec.priority, spec.match), ofp.OFPFC_DELETE_STRICT)
    message.out_port, message.out_group = ofp.OFPP_ANY, ofp.OFPG_ANY
    return message


def meter_mod(datapath, meter, command: str = "add"):
    """An ``OFPMeterMod`` for a :class:`cpn_net.slicing.realise.MeterSpec` (one drop band, kbit/s).

    ``command``: ``"add"``, ``"modify"`` or ``"delete"``.
    """
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    commands = {"add": ofp.OFPMC_ADD, "modify": ofp.OFPMC_MODIFY, "delete": ofp.OFPMC_DELETE}
    if command not in commands:
        raise ValueError(f"meter command {command!r} must be one of {', '.join(commands)}")
    bands = [] if command == "delete" else [parser.OFPMeterBandDrop(rate=meter.rate_kbps,
                                                                    burst_size=meter.burst_kbits)]
    return parser.OFPMeterMod(datapath=datapath, command=commands[command],
                              flags=ofp.OFPMF_KBPS | ofp.OFPMF_BURST, meter_id=meter.meter_id, bands=bands)


def delete_all_flows(datapath):
    """A flow-mod removing every entry of every table (a clean start on connect)."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    return parser.OFPFlowMod(datapath=datapath, table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=parser.OFPMatch())
