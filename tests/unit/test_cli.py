"""Tests of the ``cpn`` command line that need no running network and no root."""

import pytest

from cpn_net import cli
from cpn_net.emulation import cleanup, daemon

NOTHING = ("nothing to change: give --delay-ms, --jitter-ms, --loss-pct, --rate-mbps, "
           "--unshaped, --down or --up")


def run(argv):
    """cli.main's exit code, whether it returns it or raises SystemExit."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return exit_.code


pytestmark = pytest.mark.usefixtures("empty_run_dir")  # never /run/cpn (tests/unit/conftest.py)


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if the command tries to reach a network or clean anything."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"contacted the network: {args}")

    monkeypatch.setattr(daemon, "call", refuse)
    monkeypatch.setattr(cleanup, "clean", refuse)


# ---------------------------------------------------------------------- check
def test_check_good_file_prints_the_summary(capsys):
    assert run(["check", "topologies/tiny.yaml"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == ("tiny (topologies/tiny.yaml): Three sites in a triangle with one "
                                   "rate-limited and one lossy link")
    assert "  3 sites, 3 links, 3 clients, 3 compute nodes, 1 service" in out.splitlines()
    # the two unshaped links get the link element's capacity warning (and nothing else goes to stderr)
    assert [line.split(" has ")[0] for line in err.splitlines()] == ["warning: link centre-west",
                                                                     "warning: link east-west"]


def test_check_bad_file_lists_every_problem_on_stderr(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsites: [{name: east, id: 1}, {name: west, id: 2}]\n"
                   "links: [{a: east, b: west, delay_ms: -3}, {a: east, b: mars, delay_ms: 1}]\n")
    assert run(["check", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{bad}: links[0].delay_ms: -3 must be >= 0; give a one-way delay in ms, 0 or more",
        f"{bad}: links[1].b: no site is named 'mars'; remove it or use one of the known sites: east, west",
    ]


def test_check_missing_file(tmp_path, capsys):
    assert run(["check", str(tmp_path / "nope.yaml")]) == 1
    assert capsys.readouterr().err.startswith(f"{tmp_path}/nope.yaml: (file): no such file; check the path")


# ------------------------------------------------------------------- link set
@pytest.mark.parametrize("options, message", [
    (["--delay-ms", "-3"], "--delay-ms=-3.0 must be >= 0"),
    (["--jitter-ms", "-1"], "--jitter-ms=-1.0 must be >= 0"),
    (["--loss-pct", "150"], "--loss-pct=150.0 must be <= 100"),
    (["--loss-pct", "-2"], "--loss-pct=-2.0 must be >= 0"),
    (["--rate-mbps", "0"], "--rate-mbps=0.0 must be > 0 (use --unshaped to remove the limit)"),
    (["--rate-mbps", "10", "--unshaped"], "give either --rate-mbps or --unshaped, not both"),
    ([], NOTHING),
    (["--delay-ms", "-3", "--loss-pct", "101"], "--delay-ms=-3.0 must be >= 0; --loss-pct=101.0 must be <= 100"),
    # reproducer: nan and inf passed every range check and reached the network
    (["--delay-ms", "nan"], "--delay-ms=nan must be a finite number"),
    (["--rate-mbps", "inf"], "--rate-mbps=inf must be a finite number"),
])
def test_link_set_argument_problems_exit_2_without_a_network(options, message, no_network, capsys):
    assert run(["link", "set", "east", "west", *options]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"cpn link set: {message}\n"


def test_link_set_up_and_down_are_exclusive(no_network, capsys):
    assert run(["link", "set", "east", "west", "--down", "--up"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_link_set_with_no_network_running(capsys):
    assert run(["link", "set", "east", "west", "--delay-ms", "5"]) == 1
    assert capsys.readouterr().err.startswith("cpn link set east west: no cpn network is running")


def test_link_set_sends_exactly_the_request(monkeypatch, empty_run_dir, capsys):
    sent = []

    def call(run_dir, request, timeout_s=60.0):
        sent.append((run_dir, request))
        return {"ok": True, "settings": {"delay_ms": 5.0, "down": True}}

    monkeypatch.setattr(daemon, "call", call)
    assert run(["link", "set", "r1", "r3", "--delay-ms", "5", "--down"]) == 0
    assert sent == [(str(empty_run_dir), {"op": "link_set", "a": "r1", "b": "r3", "delay_ms": 5.0,
                                          "jitter_ms": None, "loss_pct": None, "rate_mbps": None,
                                          "unshaped": None, "down": True})]
    assert capsys.readouterr().out == "link r1-r3: delay_ms=5.0, down=True\n"


# ------------------------------------------------------------- status / down
def test_status_when_none_runs(empty_run_dir, capsys):
    assert run(["status"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"no cpn network is running (no answer on {empty_run_dir}/control.sock); "
                   "start one with `cpn up FILE`\n")


def test_down_when_none_runs(monkeypatch, capsys):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    monkeypatch.setattr(cleanup, "clean", lambda *a, **k: pytest.fail("must not clean when nothing ran"))
    assert run(["down"]) == 0
    assert capsys.readouterr().out == "no cpn network is running\n"


def test_down_needs_root(monkeypatch, capsys):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    assert run(["down"]) == "cpn down: needs root (network namespaces, Open vSwitch); run it with sudo"


# ------------------------------------------------------------------ summary
STATUS = {
    "run_id": "r-1", "topology": "tiny", "link_mode": "userspace", "dataplane": "bpf", "ovs_datapath": "netdev",
    "nodes": [
        {"name": "r1", "kind": "router", "site": "east", "namespace": "cpn-r1",
         "addresses": ["2001:db8:1::1/64", "fd00:1::1/64"]},
        {"name": "s1", "kind": "switch", "site": "east", "namespace": None, "addresses": []},
        {"name": "l1x2", "kind": "link", "site": None, "namespace": "cpn-l1x2", "addresses": []},
    ],
    "links": [
        {"a": "east", "b": "centre", "node": "l1x2",
         "configured": {"delay_ms": 5.0, "jitter_ms": 0.0, "loss_pct": 0.0, "rate_mbps": 50.0, "down": False},
         "ground_truth": {"ab": {"dropped_loss": 3}, "ba": {"dropped_loss": 0}}},
        {"a": "centre", "b": "west", "node": "l2x3",
         "configured": {"delay_ms": 10.0, "jitter_ms": 1.0, "loss_pct": 2.0, "rate_mbps": None, "down": True},
         "ground_truth": {"error": "element not answering"}},
    ],
    "controller": {"pid": 77, "switches": {"1": {"configured": True}, "2": {"configured": False}},
                   "routers": {"r1": {"routes": 4}, "r2": {"routes": 4}}, "errors": ["x"]},
    "verification": {"probes": 12, "answered": 12},
}


def test_format_summary():
    lines = cli.format_summary(STATUS).splitlines()
    assert lines[0] == ("topology tiny  run r-1  SRv6 data plane: bpf  link emulation: userspace"
                        "  OVS datapath: netdev")
    assert lines[2].split() == ["node", "kind", "site", "namespace", "IPv6"]
    assert lines[4].split() == ["r1", "router", "east", "cpn-r1", "2001:db8:1::1", "fd00:1::1"]
    assert lines[5].split() == ["s1", "switch", "east", "(root)"]
    assert lines[6].split() == ["l1x2", "link", "cpn-l1x2"]
    assert lines[10].split() == ["east-centre", "l1x2", "5.0", "0.0", "0.0", "50.0", "up", "3/0"]
    assert lines[11].split() == ["centre-west", "l2x3", "10.0", "1.0", "2.0", "-", "down", "?/?"]
    assert lines[13] == "controller: PID 77, 1/2 switches configured, 8 routes installed, 1 errors"
    assert lines[14] == "reachability: {'probes': 12, 'answered': 12}"
    # columns line up under their headers
    assert lines[2].index("namespace") == lines[4].index("cpn-r1") == lines[5].index("(root)")
    assert lines[8].index("state") == lines[10].index("up") == lines[11].index("down")


def test_format_summary_before_the_controller_reports():
    status = {**STATUS, "controller": None, "verification": None, "links": []}
    text = cli.format_summary(status)
    assert "controller: PID None, 0/0 switches configured, 0 routes installed, 0 errors" in text
    assert "reachability" not in text
