"""Southbound adapters: turn cpn_net's pure decisions into OpenFlow and netlink messages."""
