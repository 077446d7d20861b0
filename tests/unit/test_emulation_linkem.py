"""Tests of link emulation: pure tc command builders and LinkEmulator.set with a fake node."""

import pytest

from cpn_net.emulation import linkem, wire
from cpn_net.emulation.linkem import (
    LinkEmulationError,
    LinkEmulator,
    htb_commands,
    netem_command,
    queue_packets,
    root_qdisc_drops,
    settings_problem,
)
from cpn_net.emulation.plan import build_plan
from cpn_net.model import load_topology


class FakeNode:
    """Records every shell command; answers ``rc=0`` unless told to fail on a word."""

    def __init__(self, fail_on=None, output=""):
        self.commands = []
        self.fail_on = fail_on
        self.output = output

    def cmd(self, command):
        self.commands.append(command)
        if self.fail_on and self.fail_on in command:
            return "Error: Specified qdisc kind is unknown.\nrc=2"
        return f"{self.output}\nrc=0" if self.output else "rc=0"


@pytest.fixture(scope="module")
def plan():
    return build_plan(load_topology("topologies/tiny.yaml"))


def _emulator(plan, mode="netem", node=None, pair=("east", "centre")):
    return LinkEmulator(node or FakeNode(), plan.wan_link(*pair), mode, "/nonexistent/run", seed=7)


# --------------------------------------------------------------- builders
@pytest.mark.parametrize("rate_mbps, packets", [(0.001, 100), (1, 100), (28.8, 120), (100, 417), (1000, 4167)])
def test_queue_packets_holds_50_ms_at_the_rate(rate_mbps, packets):
    assert queue_packets(rate_mbps) == packets
    assert queue_packets(rate_mbps) * 1500 * 8 >= min(rate_mbps * 1e6 * 0.050, 100 * 1500 * 8)


def test_htb_commands_for_a_fast_link_raise_burst_to_one_ms():
    cmds = htb_commands("l1x2-eth1", 1000)
    assert cmds == [
        ["tc", "qdisc", "replace", "dev", "l1x2-eth1", "root", "handle", "1:", "htb", "default", "1"],
        ["tc", "class", "replace", "dev", "l1x2-eth1", "parent", "1:", "classid", "1:1", "htb",
         "rate", "1000000kbit", "ceil", "1000000kbit", "burst", "125000"],
        ["tc", "qdisc", "replace", "dev", "l1x2-eth1", "parent", "1:1", "handle", "10:", "pfifo",
         "limit", "4167"],
    ]


def test_htb_rate_never_rounds_to_zero():
    assert htb_commands("x", 0.0001)[1][11] == "1kbit"


def test_htb_unshaped_deletes_the_root_qdisc():
    assert htb_commands("l1x2-eth0", None) == [["tc", "qdisc", "del", "dev", "l1x2-eth0", "root"]]


@pytest.mark.parametrize("args, tail", [
    ((5, 0, 0, None), ["delay", "5.0ms", "limit", "10000"]),
    ((0, 0, 0, None), ["delay", "0.0ms", "limit", "10000"]),
    ((10, 2.5, 0, None), ["delay", "10.0ms", "2.5ms", "limit", "10000"]),
    ((10, 0, 2, None), ["delay", "10.0ms", "loss", "random", "2%", "limit", "10000"]),
    ((10, 0, 0, 50), ["delay", "10.0ms", "rate", "50000kbit", "limit", "10000"]),
    ((1, 0.5, 0.25, 0.5), ["delay", "1.0ms", "0.5ms", "loss", "random", "0.25%", "rate", "500kbit",
                           "limit", "10000"]),
])
def test_netem_command(args, tail):
    assert netem_command("l1x2-eth0", *args) == ["tc", "qdisc", "replace", "dev", "l1x2-eth0", "root",
                                                 "netem"] + tail


def test_root_qdisc_drops_counts_a_tail_drop_once():
    # reproducer: HTB's root counter already includes its pfifo child's drops
    text = ("qdisc htb 1: root refcnt 2 r2q 10 default 0x1 direct_packets_stat 0 direct_qlen 1000\n"
            " Sent 1500000 bytes 1000 pkt (dropped 37, overlimits 120 requeues 0)\n"
            " backlog 0b 0p requeues 0\n"
            "qdisc pfifo 10: parent 1:1 limit 417p\n"
            " Sent 1500000 bytes 1000 pkt (dropped 37, overlimits 0 requeues 0)\n"
            " backlog 0b 0p requeues 0\n")
    assert root_qdisc_drops(text) == 37
    assert root_qdisc_drops("qdisc noqueue 0: root refcnt 2\n Sent 0 bytes 0 pkt (dropped 0, overlimits 0)") == 0
    assert root_qdisc_drops("") == 0


# ------------------------------------------------------------ settings rules
GOOD = {"delay_ms": 5.0, "jitter_ms": 1.0, "loss_pct": 0.0, "rate_mbps": None, "down": False}


@pytest.mark.parametrize("change, problem", [
    ({"delay_ms": -3}, "delay_ms=-3 must be >= 0"),
    ({"jitter_ms": -1}, "jitter_ms=-1 must be >= 0"),
    ({"loss_pct": 101}, "loss_pct=101 must be within 0..100"),
    ({"rate_mbps": 0}, "rate_mbps=0 must be > 0 (or None for an unshaped link)"),
    ({"rate_mbps": -5}, "rate_mbps=-5 must be > 0 (or None for an unshaped link)"),
    ({"delay_ms": float("nan")}, "delay_ms=nan must be a finite number"),
    ({"loss_pct": "2"}, "loss_pct='2' must be a finite number"),
    ({"down": "yes"}, "down='yes' must be true or false"),
    ({"jitter_ms": 6}, "jitter_ms=6 must be <= delay_ms=5.0"),
])
def test_settings_problem(change, problem):
    assert settings_problem({**GOOD, **change}) == problem


def test_settings_problem_accepts_edges():
    assert settings_problem({**GOOD, "delay_ms": 0, "jitter_ms": 0, "loss_pct": 100, "rate_mbps": 0.1}) is None


# ------------------------------------------------------------------ set, netem
def test_initial_settings_come_from_the_plan(plan):
    emulator = _emulator(plan)
    assert emulator.settings == {"delay_ms": 5.0, "jitter_ms": 0.0, "loss_pct": 0.0, "rate_mbps": 50.0,
                                 "down": False}
    assert emulator.interfaces == ("l1x2-eth0", "l1x2-eth1")
    assert emulator.control_path == "/nonexistent/run/links/l1x2.sock"


def test_netem_set_applies_both_directions_and_returns_the_new_settings(plan):
    node = FakeNode()
    emulator = _emulator(plan, node=node)
    new = emulator.set(delay_ms=12, loss_pct=1.5)
    assert new == {"delay_ms": 12, "jitter_ms": 0.0, "loss_pct": 1.5, "rate_mbps": 50.0, "down": False}
    assert emulator.settings == new and new is not emulator.settings
    assert node.commands == [
        f"{' '.join(netem_command(intf, 12, 0.0, 1.5, 50.0))} 2>&1; echo rc=$?"
        for intf in ("l1x2-eth0", "l1x2-eth1")]


def test_netem_set_unshaped_and_rate(plan):
    emulator = _emulator(plan)
    assert emulator.set(unshaped=True)["rate_mbps"] is None
    assert "rate" not in emulator.node.commands[-1]
    assert emulator.set(rate_mbps=20)["rate_mbps"] == 20
    assert "rate 20000kbit" in emulator.node.commands[-1]


def test_jitter_above_delay_is_rejected_before_any_command(plan):
    node = FakeNode()
    emulator = _emulator(plan, node=node)
    before = dict(emulator.settings)
    with pytest.raises(LinkEmulationError) as info:
        emulator.set(jitter_ms=6)
    assert str(info.value) == "link east-centre: jitter_ms=6 must be <= delay_ms=5.0"
    assert emulator.settings == before and node.commands == []


def test_negative_delay_is_rejected_before_any_command(plan):
    # reproducer: LinkEmulator.set passed delay_ms=-3 on to tc
    emulator = _emulator(plan)
    with pytest.raises(LinkEmulationError, match=r"^link east-centre: delay_ms=-3 must be >= 0$"):
        emulator.set(delay_ms=-3)
    assert emulator.node.commands == []


def test_a_failing_command_rolls_the_settings_back_and_names_the_command(plan):
    node = FakeNode(fail_on="l1x2-eth1")
    emulator = _emulator(plan, node=node)
    before = dict(emulator.settings)
    with pytest.raises(LinkEmulationError) as info:
        emulator.set(delay_ms=30)
    message = str(info.value)
    assert message.startswith("link l1x2: `tc qdisc replace dev l1x2-eth1 root netem delay 30.0ms")
    assert message.endswith("failed: Error: Specified qdisc kind is unknown.")
    assert emulator.settings == before


def test_down_sets_both_element_interfaces_down_then_up(plan):
    node = FakeNode()
    emulator = _emulator(plan, node=node)
    assert emulator.set(down=True)["down"] is True
    assert node.commands[-2:] == ["ip link set dev l1x2-eth0 down 2>&1; echo rc=$?",
                                  "ip link set dev l1x2-eth1 down 2>&1; echo rc=$?"]
    node.commands.clear()
    emulator.set(delay_ms=7)  # down unchanged: no link commands
    assert not any(c.startswith("ip link") for c in node.commands)
    emulator.set(down=False)
    assert node.commands[-2:] == ["ip link set dev l1x2-eth0 up 2>&1; echo rc=$?",
                                  "ip link set dev l1x2-eth1 up 2>&1; echo rc=$?"]


def test_netem_counters_read_tc_per_direction(plan):
    node = FakeNode(output="qdisc netem 8001: root")
    counters = _emulator(plan, node=node).counters()
    assert set(counters) == {"ab", "ba"}
    assert node.commands == ["tc -s qdisc show dev l1x2-eth0", "tc -s qdisc show dev l1x2-eth1"]


# ------------------------------------------------------------- set, userspace
@pytest.fixture
def element(monkeypatch):
    """Stands in for the wire element's control socket."""
    sent = []
    reply = {"ok": True}

    def request(path, message, timeout_s=2.0):
        sent.append((path, message))
        return dict(reply)

    monkeypatch.setattr(wire, "request", request)
    return sent, reply


def test_userspace_set_sends_the_element_all_settings(plan, element):
    sent, _reply = element
    emulator = _emulator(plan, mode="userspace", pair=("centre", "west"))
    emulator.set(loss_pct=5, down=True)
    assert sent == [("/nonexistent/run/links/l2x3.sock",
                     {"op": "set", "delay_ms": 10.0, "jitter_ms": 0.0, "loss_pct": 5, "down": True})]
    # no rate change: no tc; down: both interfaces
    assert emulator.node.commands == ["ip link set dev l2x3-eth0 down 2>&1; echo rc=$?",
                                      "ip link set dev l2x3-eth1 down 2>&1; echo rc=$?"]


def test_userspace_rate_change_reshapes_both_egresses(plan, element):
    emulator = _emulator(plan, mode="userspace", pair=("centre", "west"))
    emulator.set(rate_mbps=10)
    shaped = [c for c in emulator.node.commands if "htb rate 10000kbit" in c]
    assert [c.split()[4] for c in shaped] == ["l2x3-eth0", "l2x3-eth1"]


def test_userspace_element_refusal_rolls_back(plan, element):
    _sent, reply = element
    reply.update({"ok": False, "error": "loss_pct=5 must be within 0..100"})
    emulator = _emulator(plan, mode="userspace", pair=("centre", "west"))
    before = dict(emulator.settings)
    with pytest.raises(LinkEmulationError, match=r"^link l2x3: loss_pct=5 must be within 0..100$"):
        emulator.set(loss_pct=5)
    assert emulator.settings == before


def test_userspace_counters_add_root_queue_drops(plan, monkeypatch):
    def request(path, message, timeout_s=2.0):
        return {"ok": True, "counters": {d: {"dropped_loss": 1} for d in ("ab", "ba")}}

    monkeypatch.setattr(wire, "request", request)
    node = FakeNode(output="qdisc htb 1: root refcnt 2\n Sent 1 bytes 1 pkt (dropped 3, overlimits 0)\n"
                           "qdisc pfifo 10: parent 1:1\n Sent 1 bytes 1 pkt (dropped 3, overlimits 0)")
    counters = _emulator(plan, mode="userspace", node=node).counters()
    assert counters == {"ab": {"dropped_loss": 1, "queue_drops": 3}, "ba": {"dropped_loss": 1, "queue_drops": 3}}


def test_forced_mode_must_be_known(monkeypatch):
    monkeypatch.setenv("CPN_LINK_MODE", "bogus")
    with pytest.raises(LinkEmulationError, match=r"^CPN_LINK_MODE='bogus' must be one of netem, userspace$"):
        linkem.detect_mode()
    monkeypatch.setenv("CPN_LINK_MODE", "userspace")
    assert linkem.detect_mode() == "userspace"
