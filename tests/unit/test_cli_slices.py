"""``cpn slice list|add|del|status`` against the real REST server over the in-memory fake api."""

import json

import pytest

from controllers.northbound.errors import ApiError
from controllers.northbound.fake_api import FakeNorthboundApi
from cpn_net import cli
from cpn_net.emulation import manifest as manifest_io

SITES = {"east": 1, "centre": 2, "west": 3}
GOLD_ARGS = ["slice", "add", "gold", "--members", "east,west", "--rate-mbps", "20"]
STATUS = {
    "slices": {
        "gold": {"name": "gold", "id": 1, "state": "admitted", "rate_mbps": 20.0, "max_latency_ms": 30.0,
                 "max_loss_pct": 1.0, "kind": "latency", "paths": {"east->west": ["east", "centre", "west"]},
                 "slo": {"pairs": [
                     {"from": "east", "to": "west", "path": ["east", "centre", "west"], "delay_ms": 35.25,
                      "loss_pct": 0.5, "link_loss_pct": 12.0, "delay_ok": False, "loss_ok": True},
                     {"from": "west", "to": "east", "path": ["west", "east"], "delay_ms": None, "loss_pct": None,
                      "delay_ok": None, "loss_ok": None}],
                     "violations": ["gold east->west: delay 35.25 ms > 30 ms"]}},
        "bulk": {"name": "bulk", "id": 2, "state": "admitted", "rate_mbps": 5.0, "kind": "bulk",
                 "paths": {"centre->west": ["centre", "west"]}, "slo": None},
        "greedy": {"name": "greedy", "state": "refused", "rate_mbps": 500.0, "kind": "bulk",
                   "refusal": "no path east->west with 500 Mbit/s", "slo": {"pairs": [], "violations": []}},
    },
    "violations": ["gold east->west: delay 35.25 ms > 30 ms"],
}


def run(argv):
    """cli.main's exit code, whether it returns it or raises SystemExit."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return exit_.code


pytestmark = pytest.mark.usefixtures("empty_run_dir")  # never /run/cpn (tests/unit/conftest.py)


@pytest.fixture
def api():
    return FakeNorthboundApi(SITES, [("east", "centre"), ("centre", "west")])


@pytest.fixture
def running(api, server, empty_run_dir):
    """The REST server named by the run directory's manifest, as `cpn up` does."""
    manifest_io.write_json_atomic(str(empty_run_dir / "manifest.json"), {"rest_url": server.url})
    return api


# ------------------------------------------------------------------- add
def test_add_sends_only_the_options_given_and_prints_the_slice(running, capsys):
    assert run(GOLD_ARGS) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["slice", "id", "mark", "state", "members", "rate_mbps", "max_latency_ms", "max_loss_pct",
                                "kind", "isolated", "paths"]
    assert lines[2].split() == ["gold", "1", "1", "admitted", "east,west", "20", "-", "-", "latency", "yes",
                                "east->west:", "east", ">", "west;", "west->east:", "west", ">", "east"]
    assert lines[3] == "enforced in 0 ms" and err == ""
    sent = running.slices["gold"]
    assert {k: sent[k] for k in ("members", "rate_mbps", "kind", "isolation")} == {
        "members": ["east", "west"], "rate_mbps": 20.0, "kind": "latency", "isolation": True}  # server defaults


def test_add_sends_every_option(running):
    assert run([*GOLD_ARGS, "--max-latency-ms", "30", "--max-loss-pct", "1.5", "--meter-mbps", "40",
                "--kind", "bulk", "--no-isolation", "--id", "7"]) == 0
    sent = running.slices["gold"]
    assert {k: sent[k] for k in ("max_latency_ms", "max_loss_pct", "meter_mbps", "kind", "isolation", "id")} == {
        "max_latency_ms": 30.0, "max_loss_pct": 1.5, "meter_mbps": 40.0, "kind": "bulk", "isolation": False,
        "id": 7}


@pytest.mark.parametrize("argv, words", [
    (["slice", "add", "gold", "--rate-mbps", "20"], "the following arguments are required: --members"),
    (["slice", "add", "gold", "--members", "east"], "the following arguments are required: --rate-mbps"),
    (["slice", "add", "gold", "--members", " , ", "--rate-mbps", "1"],
     "' , ' names no member; give host or site names separated by commas, e.g. u1-1,west"),
    ([*GOLD_ARGS, "--kind", "fast"], "invalid choice: 'fast'"),
    ([*GOLD_ARGS, "--rate-mbps", "lots"], "invalid float value: 'lots'"),
])
def test_add_usage_errors_exit_2_without_a_request(running, capsys, argv, words):
    assert run(argv) == 2
    assert words in capsys.readouterr().err and running.calls == []


@pytest.mark.parametrize("argv, message", [
    ([*GOLD_ARGS[:4], "east,mars", *GOLD_ARGS[5:]],
     "request: slice.members: no site is named 'mars'; sites: centre, east, west"),
    ([*GOLD_ARGS[:6], "500"], "slice gold refused: no path with 500 Mbit/s; at most 100 Mbit/s fit"),
    ([*GOLD_ARGS, "--id", "4096"], "body.id: 4096 must be <= 4095 (see SliceRequest in GET /openapi.json)"),
    ([*GOLD_ARGS, "--max-loss-pct", "101"],
     "body.max_loss_pct: 101.0 must be <= 100 (see SliceRequest in GET /openapi.json)"),
])
def test_add_refusals_print_the_servers_message_and_exit_1(running, capsys, argv, message):
    assert run(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == f"cpn slice add: {message}\n"
    assert running.slices == {}


def test_add_of_a_name_in_force_is_refused(running, capsys):
    assert run(GOLD_ARGS) == 0
    capsys.readouterr()
    assert run([*GOLD_ARGS[:4], "centre", *GOLD_ARGS[5:]]) == 1
    assert capsys.readouterr().err == ("cpn slice add: slice 'gold' is in force already; delete it first "
                                       "(DELETE /slices/gold)\n")
    assert running.slices["gold"]["members"] == ["east", "west"]


# ------------------------------------------------------------- list / del
def test_list_empty_then_one_then_json(running, capsys):
    assert run(["slice", "list"]) == 0
    assert capsys.readouterr().out == "no slices\n"
    run(GOLD_ARGS)
    capsys.readouterr()
    assert run(["slice", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[:4] == ["gold", "1", "1", "admitted"]
    assert run(["slice", "list", "--json"]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)] == ["gold"]


def test_del_removes_and_an_unknown_name_exits_1(running, capsys):
    run(GOLD_ARGS)
    capsys.readouterr()
    assert run(["slice", "del", "gold"]) == 0
    assert capsys.readouterr().out == "slice gold removed\n" and running.slices == {}
    assert run(["slice", "del", "gold"]) == 1
    assert capsys.readouterr().err == "cpn slice del: no slice named 'gold'; list them with GET /slices\n"


def test_no_network_running(capsys):
    assert run(["slice", "list"]) == 1
    assert capsys.readouterr().err == "cpn slice list: no cpn network is running; start one with `cpn up FILE`\n"


# ----------------------------------------------------------------- status
def test_status_prints_each_slice_with_measured_values_against_bounds(running, monkeypatch, capsys):
    monkeypatch.setattr(running, "slice_status", lambda: STATUS)
    assert run(["slice", "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "gold (id 1): admitted, 20 Mbit/s, latency; bounds: delay <= 30 ms, loss <= 1 %"
    assert lines[1].split() == ["pair", "path", "delay_ms", "delay_ok", "loss_pct", "loss_ok", "link_loss_pct"]
    assert lines[3].split() == ["east->west", "east", ">", "centre", ">", "west", "35.25", "no", "0.50", "yes",
                                "12.00"]
    assert lines[4].split() == ["west->east", "west", ">", "east", "-", "-", "-", "-", "-"]
    assert lines[5:7] == ["bulk (id 2): admitted, 5 Mbit/s, bulk; bounds: none",
                          "  centre->west: centre > west (not measured yet)"]
    assert lines[7:9] == ["greedy: refused, 500 Mbit/s, bulk; bounds: none",
                          "  refused: no path east->west with 500 Mbit/s"]
    assert lines[9:] == ["", "SLO violations: 1", "  gold east->west: delay 35.25 ms > 30 ms"]


def test_status_json_is_the_servers_answer(running, monkeypatch, capsys):
    monkeypatch.setattr(running, "slice_status", lambda: STATUS)
    assert run(["slice", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == STATUS


def test_status_of_the_fake_api_and_a_controller_without_slicing(running, monkeypatch, capsys):
    run(GOLD_ARGS)
    capsys.readouterr()
    assert run(["slice", "status"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "gold (id 1): admitted, 20 Mbit/s, latency; bounds: none", "  east->west: east > west (not measured yet)",
        "  west->east: west > east (not measured yet)", "", "SLO violations: none"]

    def no_slicing():
        raise ApiError(404, "no slices: network slicing is not running on this controller")

    monkeypatch.setattr(running, "slice_status", no_slicing)
    assert run(["slice", "status"]) == 1
    assert capsys.readouterr().err == ("cpn slice status: no slices: network slicing is not running on this "
                                       "controller\n")


@pytest.mark.parametrize("status, lines", [
    ({"slices": {}, "violations": []}, ["no slices"]),
    ({}, ["no slices"]),
    ({"slices": {"x": {}}}, ["x: ?, rate ?, ?; bounds: none", "  no paths measured yet", "",
                             "SLO violations: none"]),
    ({"slices": {"x": {"state": "admitted", "slo": {"pairs": [{}], "violations": [{"pair": "a->b"}]}}}},
     ["x: admitted, rate ?, ?; bounds: none", "  pair  path  delay_ms  delay_ok  loss_pct  loss_ok  link_loss_pct",
      "  ----  ----  --------  --------  --------  -------  -------------",
      "  ?->?  -     -         -         -         -        -", "",
      "SLO violations: 1", '  {"pair": "a->b"}']),
    ({"slices": {"x": {"state": "refused"}}, "violations": [{"message": "x: loss 3 % > 1 %"}]},
     ["x: refused, rate ?, ?; bounds: none", "  refused: ?", "", "SLO violations: 1", "  x: loss 3 % > 1 %"]),
])
def test_status_tolerates_missing_and_null_values(status, lines):
    assert [line.rstrip() for line in cli.format_slice_status(status).splitlines()] == lines
