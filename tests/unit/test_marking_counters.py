"""The routers' alternate-marking counters: per colour on every interface, per slice mark on WAN ones."""

import re

import pytest

from controllers.telemetry_service import _block_deltas, _mark_readings
from cpn_net.telemetry.marking import (MAX_SLICE_MARK, counter_name, mark_point, nft_ruleset, point_of_counter,
                                       slice_dscp_values)


def test_every_counter_a_rule_names_is_declared_and_every_declared_one_is_used():
    text = nft_ruleset(["r1-eth0", "r1-eth1"], ["r1-eth1"])
    declared = set(re.findall(r"^  counter (\S+) \{\}$", text, re.M))
    used = set(re.findall(r'counter name "([^"]+)"', text))
    assert declared == used
    # colour counters everywhere, mark counters on the WAN interface only
    assert {point_of_counter(n)[0] for n in declared} == {
        "r1-eth0:in", "r1-eth0:out", "r1-eth1:in", "r1-eth1:out",
        *(mark_point(p, m) for p in ("r1-eth1:in", "r1-eth1:out") for m in range(1, MAX_SLICE_MARK + 1))}
    assert len(declared) == 2 * 2 * 2 + 2 * 2 * MAX_SLICE_MARK


def test_the_mark_map_sends_each_marks_dscp_in_each_colour_to_its_own_counter():
    text = nft_ruleset(["r2-eth3"], ["r2-eth3"])
    (vmap,) = re.findall(r'hook egress device "r2-eth3".*?ip6 dscp vmap \{ ([^}]*) \}', text)
    entries = dict(e.split(" : jump ") for e in vmap.split(", "))
    assert len(entries) == 2 * MAX_SLICE_MARK
    for mark in range(1, MAX_SLICE_MARK + 1):
        for colour, dscp in slice_dscp_values(mark).items():
            chain = entries[str(dscp)]
            body = re.search(rf"chain {chain} \{{ ([^}}]*) \}}", text).group(1)
            assert body == f'counter name "{counter_name("r2-eth3", "out", colour, mark)}";'
    assert not {"0", "1", "32", "33"} & set(entries)  # unsliced traffic is only counted by colour


@pytest.mark.parametrize("name, point", [
    ("r1-eth1_out_c0", ("r1-eth1:out", 0)), ("r12-eth10_in_c1", ("r12-eth10:in", 1)),
    ("r1-eth1_out_m15_c1", ("r1-eth1:out/m15", 1)), ("r3-eth2_in_m1_c0", ("r3-eth2:in/m1", 0))])
def test_counter_names_parse_back_to_their_points(name, point):
    assert point_of_counter(name) == point
    interface, direction = point[0].split("/")[0].split(":")
    mark = int(point[0].split("/m")[1]) if "/m" in point[0] else None
    assert counter_name(interface, direction, point[1], mark) == name


def test_mark_readings_are_per_mark_loss_of_one_block_and_skip_idle_marks():
    stable: dict = {}
    up, down = "r1-eth1:out", "r2-eth1:in"
    block0 = {mark_point(up, 1): {0: 100}, mark_point(down, 1): {0: 100},
              mark_point(up, 2): {0: 50}, mark_point(down, 2): {0: 50}, mark_point(up, 3): {0: 7}}
    _block_deltas(stable, block0, 0, 0)  # the first block of a colour only sets the baseline
    block2 = {mark_point(up, 1): {0: 1100}, mark_point(down, 1): {0: 1090},
              mark_point(up, 2): {0: 50}, mark_point(down, 2): {0: 50}, mark_point(up, 3): {0: 17}}
    counts = _block_deltas(stable, block2, 0, 2)
    readings = _mark_readings(counts, up, down, 2, 123.0)
    assert readings == {
        1: {"block": 2, "read_at": 123.0, "sent": 1000, "received": 990, "lost": 10, "loss_pct": 1.0},
        # mark 3 was never counted downstream: its loss is unknown, not 10 of 10
        3: {"block": 2, "read_at": 123.0, "sent": 10, "received": None, "lost": None, "loss_pct": None}}
