"""OpenFlow 1.3 adapter: turn :class:`cpn_net.openflow.FlowSpec` into os-ken messages."""

from __future__ import annotations

from cpn_net.openflow import FLOOD, FlowSpec


def flow_mod(datapath, spec: FlowSpec, command=None):
    """Build an ``OFPFlowMod`` for ``spec`` on ``datapath``."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    match = {}
    for key, value in spec.match:
        if isinstance(value, str) and "/" in value and key in ("eth_dst", "eth_src"):
            value = tuple(value.split("/"))
        match[key] = value
    actions = []
    for action in spec.actions:
        if action[0] == "output":
            port = ofp.OFPP_FLOOD if action[1] == FLOOD else action[1]
            actions.append(parser.OFPActionOutput(port))
        elif action[0] == "set_field":
            actions.append(parser.OFPActionSetField(**{action[1]: action[2]}))
        else:
            raise ValueError(f"flow action {action[0]!r} is not supported by the adapter")
    instructions = []
    if actions:
        instructions.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
    if spec.goto_table is not None:
        instructions.append(parser.OFPInstructionGotoTable(spec.goto_table))
    return parser.OFPFlowMod(
        datapath=datapath, table_id=spec.table, priority=spec.priority, cookie=spec.cookie,
        command=ofp.OFPFC_ADD if command is None else command,
        match=parser.OFPMatch(**match), instructions=instructions)


def delete_all_flows(datapath):
    """A flow-mod removing every entry of every table (a clean start on connect)."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    return parser.OFPFlowMod(datapath=datapath, table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=parser.OFPMatch())
