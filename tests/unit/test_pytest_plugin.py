"""The cpn_net pytest plugin without a network: marker parsing, skip/fail, faults, SLAs on fake telemetry."""

import os
from pathlib import Path

import pytest

from cpn_net import pytest_plugin as plugin
from cpn_net.pytest_plugin import (CpnFault, CpnNetwork, CpnPluginError, CpnSla, link_set_arguments,
                                   missing_prerequisite, prerequisite_outcome, restore_changes, topology_file)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "topologies" / "tiny.yaml"
HEALTHY = {"delay_ms": 5.0, "jitter_ms": 0.0, "loss_pct": 0.0, "rate_mbps": 50.0, "down": False}


# ---------------------------------------------------------------- marker
def test_no_marker_names_the_module_and_the_fix():
    with pytest.raises(CpnPluginError) as err:
        topology_file(None, module="examples/x/test_y.py", rootdir=ROOT)
    assert str(err.value) == ('examples/x/test_y.py uses the cpn_network fixture but names no topology; add '
                              '`pytestmark = pytest.mark.cpn_topology("topologies/tiny.yaml")` at module level')


@pytest.mark.parametrize("mark, shown", [
    (pytest.mark.cpn_topology(), "cpn_topology()"),
    (pytest.mark.cpn_topology(3), "cpn_topology(3)"),
    (pytest.mark.cpn_topology("a.yaml", seed=2), "cpn_topology('a.yaml', seed=2)"),
])
def test_a_marker_must_name_exactly_one_file(mark, shown):
    with pytest.raises(CpnPluginError) as err:
        topology_file(mark.mark, module="t.py", rootdir=ROOT)
    assert str(err.value) == (f"t.py: {shown} must name exactly one topology file, "
                              'e.g. cpn_topology("topologies/tiny.yaml")')


def test_a_relative_file_is_found_under_the_root_then_next_to_the_module(tmp_path):
    assert topology_file(pytest.mark.cpn_topology("topologies/tiny.yaml").mark, module=str(tmp_path / "t.py"),
                         rootdir=ROOT) == TINY
    (tmp_path / "mine.yaml").write_text("name: x\n")
    assert topology_file(pytest.mark.cpn_topology("mine.yaml").mark, module=str(tmp_path / "t.py"),
                         rootdir=ROOT) == tmp_path / "mine.yaml"
    assert topology_file(pytest.mark.cpn_topology(str(TINY)).mark, module="t.py", rootdir=tmp_path) == TINY


def test_a_missing_file_lists_where_it_was_looked_for(tmp_path):
    with pytest.raises(CpnPluginError) as err:
        topology_file(pytest.mark.cpn_topology("nope.yaml").mark, module=str(tmp_path / "t.py"), rootdir=ROOT)
    assert str(err.value) == (f"{tmp_path}/t.py: cpn_topology file 'nope.yaml' not found (looked in: "
                              f"{ROOT}/nope.yaml, {tmp_path}/nope.yaml); give a path relative to the project root")


# ------------------------------------------------------------ skip / fail
@pytest.mark.parametrize("euid, missing, reason", [
    (1000, set(), "needs root (network namespaces, Open vSwitch): run pytest as root"),
    (0, {"mnexec"}, "Mininet is not installed (no mnexec): run scripts/setup.sh"),
    (0, {"ovs-vsctl", "ip"}, "Open vSwitch is not installed (no ovs-vsctl): run scripts/setup.sh"),
    (0, set(), None),
])
def test_missing_prerequisite(euid, missing, reason):
    assert missing_prerequisite(euid=euid, which=lambda tool: None if tool in missing else f"/bin/{tool}") == reason


@pytest.mark.parametrize("reason, environ, outcome", [
    (None, {"CPN_REQUIRE_INTEGRATION": "1"}, ("run", "")),
    ("needs root", {}, ("skip", "needs root")),
    ("needs root", {"CPN_REQUIRE_INTEGRATION": ""}, ("skip", "needs root")),
    ("needs root", {"CPN_REQUIRE_INTEGRATION": "1"},
     ("fail", "CPN_REQUIRE_INTEGRATION is set, so cpn network tests must run here, but: needs root")),
])
def test_prerequisite_outcome(reason, environ, outcome):
    assert prerequisite_outcome(reason, environ) == outcome


# -------------------------------------------------------- the fixture, run by pytest
SUITE = """
import pytest
{mark}
def test_one(cpn_network):
    pass
def test_two(cpn_network):
    pass
"""


def run_suite(pytester, mark):
    pytester.makepyfile(test_suite=SUITE.format(mark=mark))
    args = ["-p", "cpn_net.pytest_plugin"] if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") else []
    return pytester.runpytest_inprocess(*args, "-rsE")


@pytest.fixture
def no_root(monkeypatch):
    """Make the plugin believe it has no root, so nothing here can boot a network."""
    monkeypatch.setattr(plugin, "missing_prerequisite", lambda **kwargs: "needs root (test)")
    monkeypatch.setattr(plugin, "_boot", lambda path: pytest.fail("tried to boot a network"))


def test_fixture_errors_without_a_marker_naming_the_module(pytester, no_root):
    result = run_suite(pytester, mark="")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*test_suite.py uses the cpn_network fixture but names no topology; add "
                                 '`pytestmark = pytest.mark.cpn_topology("topologies/tiny.yaml")` at module level'])


def test_fixture_skips_without_root(pytester, no_root, monkeypatch):
    monkeypatch.delenv("CPN_REQUIRE_INTEGRATION", raising=False)
    result = run_suite(pytester, mark=f"pytestmark = pytest.mark.cpn_topology({str(TINY)!r})")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED *needs root (test)"])


def test_fixture_fails_without_root_when_integration_is_required(pytester, no_root, monkeypatch):
    monkeypatch.setenv("CPN_REQUIRE_INTEGRATION", "1")
    result = run_suite(pytester, mark=f"pytestmark = pytest.mark.cpn_topology({str(TINY)!r})")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*CPN_REQUIRE_INTEGRATION is set, so cpn network tests must run here, "
                                 "but: needs root (test)"])


def test_the_marker_is_registered(pytester):
    pytester.makeini("[pytest]\naddopts = --strict-markers\n")
    pytester.makepyfile(test_m="import pytest\n@pytest.mark.cpn_topology('x')\ndef test_m():\n    pass\n")
    pytester.runpytest_inprocess().assert_outcomes(passed=1)


# ----------------------------------------------------------------- links
def test_link_set_arguments_round_trip_settings():
    argv = link_set_arguments("east", "centre", restore_changes(HEALTHY))
    assert argv == ["link", "set", "east", "centre", "--delay-ms", "5", "--jitter-ms", "0", "--loss-pct", "0",
                    "--rate-mbps", "50", "--up"]
    unshaped = link_set_arguments("r1", "r2", restore_changes({**HEALTHY, "rate_mbps": None, "down": True}))
    assert "--unshaped" in unshaped and "--rate-mbps" not in unshaped and unshaped[-1] == "--down"


class FakeNetwork(CpnNetwork):
    """The tiny topology's plan with link settings and telemetry held in memory instead of a network."""

    def __init__(self, views=()):
        super().__init__(TINY)
        self.settings = {link.element: dict(HEALTHY, delay_ms=link.delay_ms, loss_pct=link.loss_pct,
                                            rate_mbps=link.rate_mbps) for link in self.plan.wan_links}
        self.calls = []
        self.views = list(views)
        self.refuse = set()

    def of(self, a, b):
        """The in-memory settings of the link a-b."""
        return self.settings[self.plan.wan_link(a, b).element]

    def status(self):
        return {"links": [{"a": l.site_a, "b": l.site_b, "node": l.element,
                           "configured": dict(self.settings[l.element])} for l in self.plan.wan_links]}

    def cli(self, *args, check=True, timeout_s=0):
        self.calls.append(args)
        if args[:2] == ("link", "set"):
            element = self.plan.wan_link(args[2], args[3]).element
            if element in self.refuse:
                raise CpnPluginError(f"`cpn {' '.join(args)}` exited 1")
            options = list(args[4:])
            changes = {}
            while options:
                option = options.pop(0)
                if option in ("--up", "--down"):
                    changes["down"] = option == "--down"
                elif option == "--unshaped":
                    changes["rate_mbps"] = None
                else:
                    changes[option[2:].replace("-", "_")] = float(options.pop(0))
            self.settings[element].update(changes)

    def telemetry(self):
        return self.views.pop(0) if len(self.views) > 1 else self.views[0]


def test_fault_saves_settings_before_the_first_change_and_restores_them():
    network = FakeNetwork()
    fault = CpnFault(network)
    assert fault.link("east", "centre", loss_pct=5)["loss_pct"] == 5
    assert fault.link("r1", "r2", down=True)["down"] is True
    fault.link("centre", "west", delay_ms=30)
    fault.restore()
    assert network.of("east", "centre") == {**HEALTHY, "rate_mbps": 50}
    assert network.of("centre", "west") == {**HEALTHY, "delay_ms": 10, "loss_pct": 2, "rate_mbps": None}
    restores = [c for c in network.calls[3:] if c[:2] == ("link", "set")]
    assert restores == [("link", "set", "centre", "west", "--delay-ms", "10"),  # last changed, first restored
                        ("link", "set", "east", "centre", "--loss-pct", "0", "--up")]  # only what changed
    fault.restore()
    assert len(network.calls) == 5, "a second restore has nothing left to do"


def test_fault_restore_skips_a_link_already_back(clock):
    network = FakeNetwork()
    fault = CpnFault(network)
    fault.link("east", "centre", loss_pct=5)
    network.link_set("east", "centre", loss_pct=0)
    fault.restore()
    assert len(network.calls) == 2 and network.delay_stale_before == float("-inf")


def test_delay_changes_make_old_delay_samples_stale(clock):
    network = FakeNetwork()
    assert network.delay_stale_before == float("-inf")
    network.link_set("east", "centre", loss_pct=3)
    assert network.delay_stale_before == float("-inf")  # loss leaves delay samples valid
    network.link_set("east", "centre", delay_ms=30)
    assert network.delay_stale_before == clock.now
    clock.now += 4
    network.link_set("east", "centre", down=False)
    assert network.delay_stale_before == clock.now


def test_fault_refuses_an_unknown_change_before_touching_anything():
    network = FakeNetwork()
    with pytest.raises(CpnPluginError, match="link east-centre: unknown change 'loss'"):
        CpnFault(network).link("east", "centre", loss=5)
    assert network.calls == []


def test_fault_names_a_link_that_does_not_exist():
    with pytest.raises(CpnPluginError, match="no WAN link between east and mars in tiny.yaml"):
        CpnFault(FakeNetwork()).link("east", "mars", loss_pct=1)


def test_fault_restore_tries_every_link_and_reports_failures():
    network = FakeNetwork()
    fault = CpnFault(network)
    fault.link("east", "centre", loss_pct=5)
    fault.link("centre", "west", loss_pct=50)
    network.refuse.add(network.plan.wan_link("centre", "west").element)
    with pytest.raises(CpnPluginError, match=r"cpn_fault could not restore: `cpn link set centre west"):
        fault.restore()
    assert network.of("east", "centre")["loss_pct"] == 0  # still restored


def test_run_executes_in_the_nodes_namespace_and_fails_with_a_diagnostic(monkeypatch):
    import subprocess

    seen = []

    def fake_run(argv, **kwargs):
        seen.append(argv)
        return subprocess.CompletedProcess(argv, 2, stdout="partial", stderr="ping: unknown host")

    monkeypatch.setattr(plugin.subprocess, "run", fake_run)
    network = FakeNetwork()
    assert network.run("u1-1", "ping -c1 nowhere", check=False).returncode == 2
    assert seen[0] == ["ip", "netns", "exec", "cpn-u1-1", "sh", "-c", "ping -c1 nowhere"]
    with pytest.raises(AssertionError) as err:
        network.run("u1-1", "ping -c1 nowhere")
    assert str(err.value) == "in u1-1: `ping -c1 nowhere` exited 2\nstdout:\npartial\nstderr:\nping: unknown host"


# ----------------------------------------------------------------- paths
def test_paths_follow_the_igp_and_avoid_links_that_are_down():
    network = FakeNetwork()
    assert network.route("u1-1", "k3-1") == (("east", "centre", "west"), ("r1->r2", "r2->r3"))
    assert network.path("k3-1", "u1-1") == ("r3->r2", "r2->r1")
    network.of("east", "centre")["down"] = True
    assert network.path("u1-1", "k3-1") == ("r1->r3",)


# ------------------------------------------------------ blocks and SLAs
def telemetry_view(block, *, epoch=1000.0, lost_r2r3=12, p99=(5.2, 10.3)):
    def entry(link, sent, lost, delay):
        return {"link": link, "delay": {"delay_p99_ms": delay, "samples": 100, "window_s": 10.0},
                "loss": None if block is None else {"block": block, "sent": sent, "lost": lost,
                                                     "received": sent - lost}}
    return {"period_s": 1.0, "epoch": epoch, "links": [entry("r1->r2", 210, 0, p99[0]),
                                                       entry("r2->r3", 210, lost_r2r3, p99[1])]}


class FakeClock:
    def __init__(self, now):
        self.now = now

    def time(self):
        return self.now

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock(1003.2)
    monkeypatch.setattr(plugin, "time", fake)
    return fake


def test_wait_for_blocks_takes_only_blocks_that_began_after_the_call(clock):
    # called at 1003.2: block 3 began at 1003.0, so blocks 4 and 5 are the first two fresh ones
    network = FakeNetwork([telemetry_view(b) for b in (2, 3, 3, 4, 4, 5, 6)])
    blocks = network.wait_for_blocks(2)
    assert blocks.blocks == (4, 5)
    assert [r["block"] for r in blocks.readings["r2->r3"]] == [4, 5]


def test_wait_for_blocks_says_how_far_it_got(clock):
    network = FakeNetwork([telemetry_view(2), telemetry_view(4)])
    with pytest.raises(CpnPluginError) as err:
        network.wait_for_blocks(3, timeout_s=5)
    assert str(err.value).startswith("telemetry: 1 of 3 blocks from block 4 on within 5 s (period 1 s)")
    with pytest.raises(CpnPluginError, match="wait_for_blocks: n=0 must be an integer >= 1"):
        network.wait_for_blocks(0)


def test_wait_for_blocks_waits_for_marking_to_start(clock):
    network = FakeNetwork([telemetry_view(None, epoch=None)])
    with pytest.raises(CpnPluginError, match="telemetry: the controller has not started marking within 2 s"):
        network.wait_for_blocks(1, timeout_s=2)


def test_wait_for_fresh_delay_polls_until_the_window_is_past_the_last_change(clock):
    views = [{**telemetry_view(4), "now": now} for now in (1005.0, 1009.0, 1012.0, 1013.5, 1014.0)]
    network = FakeNetwork(views)
    network.delay_stale_before = 1003.0
    assert network.wait_for_fresh_delay()["now"] == 1013.5  # window 10 s: samples from 1003.5 on
    network = FakeNetwork([{**telemetry_view(4), "now": 1005.0}])
    network.delay_stale_before = 1003.0
    with pytest.raises(CpnPluginError) as err:
        network.wait_for_fresh_delay(timeout_s=3)
    assert str(err.value) == ("telemetry: the delay window (10 s) still holds samples from before the last "
                              "change after 3 s; is the controller's clock running?")


def test_assert_path_names_the_lossy_hop_with_measured_and_bound(clock, tmp_path):
    recorded = []
    sla = CpnSla(FakeNetwork([telemetry_view(b) for b in (3, 4, 5, 6)]), tmp_path,
                 record=lambda name, value: recorded.append((name, value)))
    with pytest.raises(AssertionError) as failure:
        sla.assert_path("u1-1", "k3-1", loss_pct_below=0.1, delay_p99_ms_below=25, traffic_pps=None)
    message = str(failure.value)
    assert message.startswith("SLA VIOLATED on u1-1 -> k3-1 (loss < 0.1 %, delay p99 < 25 ms); "
                              "IGP path east > centre > west; alternate-marking blocks 4..6")
    rows = {line.split()[0]: line.split() for line in message.splitlines()[2:]}
    assert rows["r1->r2"] == ["r1->r2", "5.2", "<", "25", "0", "(0/630)", "<", "0.1", "ok"]
    assert rows["r2->r3"][:6] == ["r2->r3", "10.3", "<", "25", "5.714", "(36/630)"]
    assert rows["r2->r3"][-4:] == ["<--", "loss", "over", "bound"]
    assert recorded[0][0] == "cpn_sla u1-1->k3-1" and recorded[0][1]["hops"][1]["lost"] == 36


def test_assert_path_returns_the_numbers_when_the_sla_holds(clock, tmp_path):
    sla = CpnSla(FakeNetwork([telemetry_view(b, lost_r2r3=0) for b in (4, 5, 6)]), tmp_path)
    measured = sla.assert_path("u1-1", "k3-1", loss_pct_below=0.1, delay_p99_ms_below=16, traffic_pps=0)
    assert measured["loss_pct"] == 0.0 and measured["delay_p99_ms_bound"] == pytest.approx(15.5)
    assert [hop["hop"] for hop in measured["hops"]] == ["r1->r2", "r2->r3"]


class LateNetwork(FakeNetwork):
    """Delay windows and the link elements' late departures given in order, one per call."""

    def __init__(self, delay_p99s, late):
        super().__init__([telemetry_view(3 + i // 4) for i in range(80)])  # a block every 4 polls (1 s)
        self.delay_views = [telemetry_view(4, p99=p99) for p99 in delay_p99s]
        self.late = list(late)

    def wait_for_fresh_delay(self, timeout_s=None):
        return self.delay_views.pop(0)

    def late_departures(self):
        return self.late.pop(0)


def _late(element, over_1ms, over_5ms):
    return {element: {"late_over_1ms": over_1ms, "late_over_5ms": over_5ms}}


def test_assert_path_re_measures_once_when_the_emulator_was_late_on_the_hop_over_the_delay_bound(clock, tmp_path):
    network = LateNetwork([(5.2, 10.3), (5.2, 8.0)], [])
    element = network.wan_link("r2", "r3").element
    network.late = [_late(element, 5, 2), _late(element, 5, 2)]  # after the first window; at the restart
    measured = CpnSla(network, tmp_path).assert_path("u1-1", "k3-1", delay_p99_ms_below=15, traffic_pps=None)
    assert measured["delay_p99_ms_bound"] == pytest.approx(13.2)
    assert network.delay_views == [] and network.late == [] and network.delay_stale_before > 1003.2


def test_assert_path_says_when_the_emulator_was_late_in_the_second_window_too(clock, tmp_path):
    network = LateNetwork([(5.2, 10.3), (5.2, 10.9)], [])
    element = network.wan_link("r2", "r3").element
    network.late = [_late(element, 5, 2), _late(element, 5, 2), _late(element, 9, 3)]
    with pytest.raises(AssertionError) as failure:
        CpnSla(network, tmp_path).assert_path("u1-1", "k3-1", delay_p99_ms_below=15, traffic_pps=None)
    notes = [line for line in str(failure.value).splitlines() if line.startswith("note: ")]
    assert notes == [
        "note: re-measured over a fresh delay window: the first had 15.5 ms end to end while the link element of "
        "r2->r3 sent 5 frames > 1 ms late (2 > 5 ms)",
        "note: in this window too, the link element of r2->r3 sent 4 frames > 1 ms late (1 > 5 ms): the delay "
        "tail is at least partly the emulator's on this machine (CPU contention), not the link's"]
    assert "largest delay" in str(failure.value)


def test_assert_path_does_not_re_measure_a_delay_violation_the_emulator_kept_time_for(clock, tmp_path):
    network = LateNetwork([(5.2, 10.3), (5.2, 8.0)], [{}])  # no element late since the window began
    with pytest.raises(AssertionError) as failure:
        CpnSla(network, tmp_path).assert_path("u1-1", "k3-1", delay_p99_ms_below=15, traffic_pps=None)
    assert "note:" not in str(failure.value) and "largest delay" in str(failure.value)
    assert len(network.delay_views) == 1 and network.delay_stale_before == float("-inf")


def test_sla_refuses_paths_without_a_wan_hop_and_bad_arguments(tmp_path):
    sla = CpnSla(FakeNetwork([telemetry_view(1)]), tmp_path)
    with pytest.raises(CpnPluginError, match="u1-1 and k1-1 are both at site east: the path crosses no WAN link"):
        sla.measure_path("u1-1", "k1-1")
    with pytest.raises(CpnPluginError, match="blocks=0 must be an integer >= 1"):
        sla.measure_path("u1-1", "k2-1", blocks=0)
    with pytest.raises(CpnPluginError, match=r"traffic_pps=-1 must be a finite number >= 0"):
        sla.measure_path("u1-1", "k2-1", traffic_pps=-1)
