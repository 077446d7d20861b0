"""``cpn exec``, ``steering``, ``services``, ``map`` and ``version``: no root, no network.

The REST commands talk to the real REST server over the in-memory fake api;
``exec`` runs a fake ``subprocess.run``; the manifest is written to the test's
own run directory.
"""

import json
import os
import signal
import subprocess

import pytest

from controllers.northbound.errors import ApiError
from controllers.northbound.fake_api import FakeNorthboundApi
from cpn_net import cli, cli_everyday
from cpn_net.emulation import manifest as manifest_io

NODES = [{"name": n, "kind": k, "site": s} for n, k, s in (
    ("r1", "router", "east"), ("r2", "router", "centre"), ("r10", "router", "west"), ("s1", "switch", "east"),
    ("u1-1", "client", "east"), ("k1-1", "compute", "east"), ("k2-1", "compute", "centre"), ("l1x2", "link", None))]
TOPOLOGY = {"sites": [
    {"name": "east", "compute": [{"name": "k1-1", "workers": 4, "capacity_rps": 400.0, "price_cny_per_hour": 3.5}]},
    {"name": "centre", "compute": [{"name": "k2-1", "workers": 8, "capacity_rps": 800.0,
                                    "price_cny_per_hour": None}]}]}
VIEW = {
    "policy": "joint", "period_s": 1.0, "reports": 120, "decisions": 60, "flips": 2, "failovers": 1,
    "preferred": [{"site": "east", "service": "echo", "instance": "k1-1", "split": [["k1-1", 70], ["k2-1", 30]]},
                  {"site": "west", "service": "echo", "instance": None, "split": []}],
    "instances": [{"instance": "k1-1", "site": "east", "service": "echo", "healthy": True, "metrics_age_s": 0.25,
                   "utilisation": 0.625, "queue_len": 3},
                  {"instance": "k2-1", "site": "centre", "service": "echo", "healthy": False, "metrics_age_s": None,
                   "utilisation": None, "queue_len": None}],
    "timeline": [{"at": 3600.0 * i, "site": "east", "service": "echo", "instance": f"k{i}-1",
                  "split": [[f"k{i}-1", 100]], "expected_response_ms": 10.0 + i, "reason": "joint"}
                 for i in range(1, 8)],
}


def run(argv):
    """cli.main's exit code, whether it returns it or raises SystemExit."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return exit_.code


pytestmark = pytest.mark.usefixtures("empty_run_dir")  # never /run/cpn (tests/unit/conftest.py)


def write_manifest(run_dir, rest_url="http://127.0.0.1:8181", daemon=None, **extra):
    manifest_io.write_json_atomic(str(run_dir / "manifest.json"), {
        "run_id": "r-7", "rest_url": rest_url, "plan": {"topology": "tiny", "nodes": NODES},
        "processes": {"daemon": os.getpid() if daemon is None else daemon}, "topology": TOPOLOGY,
        "dataplane": "bpf", "link_mode": "userspace", "ovs_datapath": "netdev", **extra})


@pytest.fixture
def api():
    return FakeNorthboundApi({"east": 1, "centre": 2, "west": 3}, [("east", "centre")])


@pytest.fixture
def running(api, server, empty_run_dir, monkeypatch):
    """A network whose manifest names the REST server; its api answers GET/PUT /steering with VIEW."""
    write_manifest(empty_run_dir, server.url)
    monkeypatch.setattr(api, "get_steering", lambda: api._enter("get_steering") or VIEW)
    monkeypatch.setattr(api, "set_steering", lambda body: api._enter("set_steering") or {**VIEW, **body})
    return api


# ------------------------------------------------------------------ exec
@pytest.fixture
def node_shell(empty_run_dir, tmp_path_factory, monkeypatch):
    """Root, a running network with namespaces for every node, and a fake subprocess.run recording argv."""
    netns = tmp_path_factory.mktemp("netns")
    for node in NODES:
        (netns / f"cpn-{node['name']}").touch()
    monkeypatch.setattr(cli_everyday, "NETNS_DIR", str(netns))
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    write_manifest(empty_run_dir)
    ran = {"argv": [], "returncode": 0, "sigint": []}

    def fake_run(argv, **kwargs):
        assert kwargs == {}, "the command must own the terminal: no pipes, no capture"
        ran["argv"].append(argv)
        ran["sigint"].append(signal.getsignal(signal.SIGINT))
        return subprocess.CompletedProcess(argv, ran["returncode"])

    monkeypatch.setattr(cli_everyday.subprocess, "run", fake_run)
    return ran


def test_exec_runs_the_command_in_the_nodes_namespace(node_shell, capsys):
    assert run(["exec", "u1-1", "--", "ping", "-c1", "2001:db8:2::2:1"]) == 0
    assert node_shell["argv"] == [["ip", "netns", "exec", "cpn-u1-1", "ping", "-c1", "2001:db8:2::2:1"]]
    assert capsys.readouterr() == ("", "")


def test_exec_without_the_double_dash_and_with_options_of_the_command(node_shell):
    assert run(["exec", "r10", "ip", "-6", "route", "show", "--", "x"]) == 0
    assert node_shell["argv"] == [["ip", "netns", "exec", "cpn-r10", "ip", "-6", "route", "show", "--", "x"]]


@pytest.mark.parametrize("returncode, exit_code", [(0, 0), (1, 1), (42, 42), (-signal.SIGINT, 130),
                                                   (-signal.SIGKILL, 137)])
def test_exec_passes_the_commands_exit_code_through(node_shell, returncode, exit_code):
    node_shell["returncode"] = returncode
    assert run(["exec", "k1-1", "--", "false"]) == exit_code


def test_exec_leaves_ctrl_c_to_the_command_and_restores_the_handler(node_shell):
    before = signal.getsignal(signal.SIGINT)
    assert run(["exec", "u1-1", "--", "sleep", "9"]) == 0
    handler = node_shell["sigint"][0]
    # a Python handler (reset to the default in the child by exec), not SIG_IGN (which the child would inherit)
    assert callable(handler) and handler not in (before, signal.SIG_IGN, signal.default_int_handler)
    assert signal.getsignal(signal.SIGINT) is before


def test_exec_without_a_command_opens_a_shell(node_shell, monkeypatch, capsys):
    monkeypatch.setenv("SHELL", "/bin/zsh")
    assert run(["exec", "u1-1"]) == 0
    monkeypatch.delenv("SHELL")
    assert run(["exec", "u1-1", "--"]) == 0
    assert node_shell["argv"] == [["ip", "netns", "exec", "cpn-u1-1", "/bin/zsh"],
                                  ["ip", "netns", "exec", "cpn-u1-1", "/bin/bash"]]
    assert capsys.readouterr().err.splitlines()[0] == ("cpn exec: /bin/zsh in u1-1's namespace cpn-u1-1; "
                                                       "`exit` leaves it")


def test_exec_on_a_switch_runs_in_the_root_namespace(node_shell):
    assert run(["exec", "s1", "--", "ovs-ofctl", "dump-flows", "s1"]) == 0
    assert node_shell["argv"] == [["ovs-ofctl", "dump-flows", "s1"]]


def test_exec_unknown_node_lists_the_nodes(node_shell, capsys):
    assert run(["exec", "u9-1", "--", "true"]) == 1
    assert capsys.readouterr() == ("", "cpn exec: no node named 'u9-1' in the running network (tiny); nodes: "
                                       "clients u1-1; compute k1-1 k2-1; routers r1 r2 r10; switches s1; "
                                       "link elements l1x2\n")
    assert node_shell["argv"] == []


def test_exec_with_no_network_running(node_shell, empty_run_dir, capsys):
    os.unlink(empty_run_dir / "manifest.json")
    assert run(["exec", "u1-1", "--", "true"]) == 1
    assert capsys.readouterr().err == (f"cpn exec: no cpn network is running (no manifest in {empty_run_dir}); "
                                       "start one with `sudo cpn up FILE`\n")
    assert node_shell["argv"] == []


def test_exec_when_the_daemon_is_gone(node_shell, empty_run_dir, monkeypatch, capsys):
    from cpn_net.emulation import cleanup

    monkeypatch.setattr(cleanup, "pid_alive", lambda pid: False)
    assert run(["exec", "u1-1", "--", "true"]) == 1
    assert capsys.readouterr().err == (f"cpn exec: no cpn network is running: the one in {empty_run_dir} lost its "
                                       f"daemon (PID {os.getpid()}); `sudo cpn clean` removes what it left, "
                                       "`sudo cpn up FILE` starts a new one\n")


def test_exec_when_the_namespace_is_missing(node_shell, capsys):
    os.unlink(os.path.join(cli_everyday.NETNS_DIR, "cpn-k2-1"))
    assert run(["exec", "k2-1", "--", "true"]) == 1
    assert capsys.readouterr().err == (
        f"cpn exec: node k2-1's namespace cpn-k2-1 does not exist ({cli_everyday.NETNS_DIR}/cpn-k2-1); the network "
        "may be stopping or have crashed: see `cpn status`\n")
    assert node_shell["argv"] == []


def test_exec_command_not_found(node_shell, monkeypatch, capsys):
    def missing(argv, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "ip")

    monkeypatch.setattr(cli_everyday.subprocess, "run", missing)
    assert run(["exec", "u1-1", "--", "true"]) == 127
    assert capsys.readouterr().err == "cpn exec: ip: command not found\n"


def test_exec_needs_root(node_shell, monkeypatch):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    assert run(["exec", "u1-1", "--", "true"]) == ("cpn exec: needs root (network namespaces, Open vSwitch); "
                                                   "run it with sudo")
    assert node_shell["argv"] == []


# -------------------------------------------------------------- steering
@pytest.mark.parametrize("argv", [["steering"], ["steering", "show"]])
def test_steering_show_prints_the_selectors_state(running, capsys, argv):
    assert run(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "steering policy: joint (period 1 s; 120 metrics reports, 60 decisions, 2 flips, 1 failovers)"
    assert lines[2].split() == ["site", "service", "preferred", "split"]
    assert lines[4].split() == ["east", "echo", "k1-1", "k1-1", "70%,", "k2-1", "30%"]
    assert lines[5].split() == ["west", "echo", "none", "-"]
    assert lines[7].split() == ["instance", "site", "service", "healthy", "util_pct", "queue", "metrics_age_s"]
    assert lines[9].split() == ["k1-1", "east", "echo", "yes", "62", "3", "0.25"]
    assert lines[10].split() == ["k2-1", "centre", "echo", "NO", "-", "-", "-"]
    assert lines[12] == "recent changes (last 5 of 7):"
    assert lines[13] == "  03:00:00 UTC  east echo -> k3-1 (k3-1 100%), expected 13.0 ms, joint"
    assert len(lines) == 18
    assert lines[2].index("preferred") == lines[4].index("k1-1")  # columns line up
    assert running.calls == ["get_steering"]


@pytest.mark.parametrize("argv", [["steering", "--json"], ["steering", "show", "--json"],
                                  ["steering", "--json", "show"]])
def test_steering_json_is_the_controllers_answer(running, capsys, argv):
    assert run(argv) == 0
    assert json.loads(capsys.readouterr().out) == VIEW


def test_steering_set_sends_the_policy_and_prints_the_new_state(running, monkeypatch, capsys):
    sent = []
    monkeypatch.setattr(running, "set_steering", lambda body: sent.append(body) or {**VIEW, **body})
    assert run(["steering", "set", "least-loaded"]) == 0
    assert sent == [{"policy": "least-loaded"}]
    assert capsys.readouterr().out.splitlines()[0].startswith("steering policy: least-loaded (")
    assert run(["steering", "set", "oracle", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["policy"] == "oracle"


def test_steering_policies_come_from_the_steering_package():
    assert cli_everyday.STEERING_POLICIES == ("joint", "nearest", "least-loaded", "round-robin", "random", "oracle")


def test_steering_set_refuses_an_unknown_policy_without_a_request(running, capsys):
    assert run(["steering", "set", "fastest"]) == 2
    err = capsys.readouterr().err
    assert ("argument policy: invalid choice: 'fastest' (choose from 'joint', 'nearest', 'least-loaded', "
            "'round-robin', 'random', 'oracle')") in err
    assert running.calls == []


def test_steering_without_services_prints_the_controllers_reason(running, monkeypatch, capsys):
    def no_steering():
        raise ApiError(404, "no compute-aware steering: the topology declares no services")

    monkeypatch.setattr(running, "get_steering", no_steering)
    assert run(["steering"]) == 1
    assert capsys.readouterr() == ("", "cpn steering show: no compute-aware steering: the topology declares no "
                                       "services\n")


def test_steering_with_no_network_running(capsys):
    assert run(["steering", "set", "joint"]) == 1
    assert capsys.readouterr().err == "cpn steering set: no cpn network is running; start one with `cpn up FILE`\n"


def test_steering_before_any_decision():
    text = cli_everyday.format_steering({"policy": "nearest", "preferred": [], "flips": 0, "instances": []})
    assert text.splitlines() == ["steering policy: nearest (- metrics reports, - decisions, 0 flips, - failovers)",
                                 "", "no decisions yet (the selector decides once per period)", "",
                                 "no service instances"]


# -------------------------------------------------------------- services
def test_services_table_joins_load_health_and_price(running, capsys):
    assert run(["services"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["instance", "site", "service", "healthy", "util_pct", "queue", "workers",
                                "capacity_rps", "price_cny_per_hour", "preferred_by"]
    assert lines[2].split() == ["k1-1", "east", "echo", "yes", "62", "3", "4", "400", "3.5", "east"]
    assert lines[3].split() == ["k2-1", "centre", "echo", "NO", "-", "-", "8", "800", "-", "-"]
    assert len(lines) == 4


def test_services_json(running, capsys):
    assert run(["services", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["instance"], r["price_cny_per_hour"], r["utilisation"], r["queue_len"], r["healthy"])
            for r in rows] == [("k1-1", 3.5, 0.625, 3, True), ("k2-1", None, None, None, False)]


def test_services_of_an_instance_the_topology_does_not_describe():
    rows = cli_everyday.service_rows({"instances": [{"instance": "k9-1", "service": "echo"}]}, {})
    assert rows == [{"instance": "k9-1", "service": "echo", "workers": None, "capacity_rps": None,
                     "price_cny_per_hour": None, "preferred_by": []}]
    assert cli_everyday.format_services([]) == "no service instances"


def test_services_with_no_network_running(capsys):
    assert run(["services"]) == 1
    assert capsys.readouterr().err == "cpn services: no cpn network is running; start one with `cpn up FILE`\n"


# ------------------------------------------------------------------- map
def test_map_prints_the_url_of_the_running_network(empty_run_dir, capsys):
    write_manifest(empty_run_dir, "http://127.0.0.1:9191/")
    assert run(["map"]) == 0
    out, err = capsys.readouterr()
    assert out == "http://127.0.0.1:9191/map\n"
    assert err == ("network tiny is running (run r-7); open the URL in a browser here, or from another machine "
                   "through `ssh -L 9191:127.0.0.1:9191 THIS-HOST`\n")


def test_map_with_no_network_running(empty_run_dir, capsys):
    assert run(["map"]) == 1
    out, err = capsys.readouterr()
    assert out == "http://127.0.0.1:8181/map\n"
    assert err == (f"cpn map: no cpn network is running (no manifest in {empty_run_dir}); "
                   "start one with `sudo cpn up FILE`\n")


# --------------------------------------------------------------- version
def test_version_without_a_network(capsys):
    assert run(["version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("cpn_net 0.1.0 (")
    assert lines[1].startswith("Python  3.")
    assert lines[2].startswith(f"kernel  {os.uname().release} ")
    assert lines[3].startswith("os-ken 4.2.2, mininet ")
    assert lines[4].startswith("network: no cpn network is running")


def test_version_names_the_running_networks_modes(empty_run_dir, capsys):
    write_manifest(empty_run_dir)
    assert run(["version"]) == 0
    assert capsys.readouterr().out.splitlines()[4] == ("network: tiny running (run r-7): SRv6 data plane bpf, "
                                                       "link emulation userspace, OVS datapath netdev")
    assert run(["version", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["network"]["srv6_dataplane"] == "bpf" and info["network"]["link_emulation_mode"] == "userspace"
    assert info["packages"]["os-ken"] == "4.2.2" and info["cpn_net"] == "0.1.0"


def test_version_git_commit(tmp_path, monkeypatch):
    assert cli_everyday.git_commit(str(tmp_path)) is None  # not a checkout
    (tmp_path / ".git").mkdir()
    calls = []

    def fake_run(argv, **kwargs):
        calls.append(argv)
        out = "0123456789ab\n" if "rev-parse" in argv else " M cpn_net/cli.py\n"
        return subprocess.CompletedProcess(argv, 0, out, "")

    monkeypatch.setattr(cli_everyday.subprocess, "run", fake_run)
    assert cli_everyday.git_commit(str(tmp_path)) == "0123456789ab-dirty"
    assert calls[0][:5] == ["git", "-c", f"safe.directory={tmp_path}", "-C", str(tmp_path)]
