"""Tests of per-slice SLO monitoring: path sums per travel direction, missing data, violations, the recorder."""

import json
import math

import networkx as nx
import pytest

from cpn_net.model.topology import SliceSpec
from cpn_net.slicing.admission import Admission, admit
from cpn_net.slicing.errors import SlicingError
from cpn_net.slicing.monitor import DEFAULT_STALE_S, SloRecorder, link_readings, slo_status
from cpn_net.srv6.paths import Path


def spec(name, sid, sites, rate=10.0, **kw):
    return SliceSpec(name, sid, tuple(sites), tuple(f"u{ord(s) - 96}-1" for s in sites), tuple(sites), rate, **kw)


def adm(name, sid, *paths):
    """An admission whose paths are the given site strings and their reverses."""
    out = {}
    for sites in paths:
        for seq in (tuple(sites), tuple(reversed(sites))):
            out[(seq[0], seq[-1])] = Path(seq, 0.0, len(seq) - 1, None)
    return Admission(name, sid, 10.0, out)


def _loss_block(loss, sent, age):
    return {"block": 7, "colour": 1, "read_at": 99.0, "sent": sent, "received": sent - round(sent * loss / 100),
            "lost": round(sent * loss / 100), "loss_pct": loss if sent else None, "age_s": age}


def entry(u, v, delay=None, p99=None, loss=None, *, delay_age=0.1, loss_age=0.6, sent=1000, marks=None):
    """One link direction; ``marks`` ``{mark: loss %}`` (default: mark 1 losing what the link loses)."""
    delay_block = None if delay is None else {
        "delay_ms": delay, "delay_mean_ms": delay, "delay_p99_ms": delay + 1.0 if p99 is None else p99,
        "jitter_ms": 0.0, "samples": 100, "window_s": 10.0, "age_s": delay_age}
    loss_block = None if loss is None else _loss_block(loss, sent, loss_age)
    if marks is None:
        marks = {} if loss is None or not sent else {1: loss}
    by_mark = {str(m): _loss_block(pct, sent, loss_age) for m, pct in marks.items()}
    return {"link": f"{u}-{v}", "from": u, "to": v, "delay": delay_block, "loss": loss_block,
            "loss_by_mark": by_mark}


def view(*entries):
    return {"period_s": 1.0, "epoch": 0.0, "now": 100.0, "links": list(entries)}


def pair(status, name, a, b):
    (found,) = [p for p in status["slices"][name]["pairs"] if (p["from"], p["to"]) == (a, b)]
    return found


# ------------------------------------------------------------ measurement

def test_multi_hop_path_sums_delays_and_p99s_and_composes_loss():
    v = view(entry("a", "b", 1.0, 1.5, 1.0), entry("b", "c", 2.25, 3.0, 2.0), entry("c", "d", 0.5, 0.75, 0.0),
             entry("b", "a", 1.0, 1.5, 0.0), entry("c", "b", 2.0, 3.0, 0.0), entry("d", "c", 0.5, 0.75, 0.0))
    status = slo_status({"s": adm("s", 1, "abcd")}, {"s": spec("s", 1, "ad")}, v)
    p = pair(status, "s", "a", "d")
    assert p["path"] == ["a", "b", "c", "d"]
    assert p["delay_ms"] == 3.75
    assert p["delay_p99_ms"] == 5.25
    assert p["loss_pct"] == pytest.approx(100 * (1 - 0.99 * 0.98))
    assert p["loss_pct"] == 2.98


def test_slice_loss_is_its_marks_loss_and_link_loss_is_everyones():
    # the link loses 60 % (a flood of another slice), the slice's mark 2 loses 0.5 %
    v = view(entry("a", "b", 1.0, loss=60.0, marks={2: 0.5, 3: 70.0}), entry("b", "a", 1.0, loss=0.0, marks={}))
    status = slo_status({"s": Admission("s", 9, 1.0, adm("s", 9, "ab").paths, mark=2)},
                        {"s": spec("s", 9, "ab", max_loss_pct=1.0)}, v)
    forward, backward = pair(status, "s", "a", "b"), pair(status, "s", "b", "a")
    assert (forward["loss_pct"], forward["link_loss_pct"], forward["loss_ok"]) == (0.5, 60.0, True)
    # nothing of the slice crossed b->a in the block: its own loss is unmeasured, not 0
    assert (backward["loss_pct"], backward["link_loss_pct"], backward["loss_ok"]) == (None, 0.0, None)
    assert status["violations"] == []


def test_stale_mark_readings_count_as_missing():
    v = view(entry("a", "b", 1.0, loss=1.0, loss_age=DEFAULT_STALE_S + 1), entry("b", "a", 1.0, loss=0.0))
    readings = link_readings(v)
    assert readings[("a", "b")]["loss_by_mark"] == {} and readings[("b", "a")]["loss_by_mark"] == {1: 0.0}


def test_reverse_direction_reads_the_reverse_link_entries():
    v = view(entry("a", "b", 1.0, loss=0.0), entry("b", "c", 1.0, loss=5.0),
             entry("c", "b", 4.0, loss=0.0), entry("b", "a", 3.0, loss=10.0))
    status = slo_status({"s": adm("s", 1, "abc")}, {"s": spec("s", 1, "ac")}, v)
    forward, backward = pair(status, "s", "a", "c"), pair(status, "s", "c", "a")
    assert forward["path"] == ["a", "b", "c"] and backward["path"] == ["c", "b", "a"]
    assert (forward["delay_ms"], forward["loss_pct"]) == (2.0, 5.0)
    assert (backward["delay_ms"], backward["loss_pct"]) == (7.0, 10.0)


def test_pairs_follow_the_admission_and_work_with_admit():
    G = nx.Graph()
    G.add_nodes_from([("a", {"id": 1}), ("b", {"id": 2}), ("c", {"id": 3})])
    G.add_edge("a", "b", delay_ms=1.0, rate_mbps=50.0)
    G.add_edge("b", "c", delay_ms=1.0, rate_mbps=100.0)
    G.add_edge("a", "c", delay_ms=5.0, rate_mbps=100.0)
    gold = spec("gold", 1, "abc", 20.0, max_latency_ms=3.0)
    admission = admit(G, {}, gold)
    v = view(*(entry(u, w, 1.0, loss=0.0) for u, w in [("a", "b"), ("b", "a"), ("b", "c"), ("c", "b"),
                                                         ("a", "c"), ("c", "a")]))
    status = slo_status({"gold": admission}, {"gold": gold}, v)
    pairs = status["slices"]["gold"]["pairs"]
    assert [(p["from"], p["to"]) for p in pairs] == list(admission.paths)
    assert all(p["path"] == list(admission.paths[(p["from"], p["to"])].sites) for p in pairs)
    assert all(p["delay_ok"] is True and p["loss_ok"] is None for p in pairs)
    assert status["violations"] == []


def test_loss_falls_back_to_lost_over_sent_and_ignores_empty_blocks():
    readings = link_readings(view(
        {"from": "a", "to": "b", "delay": None, "loss": {"sent": 400, "lost": 3, "age_s": 0.5}},
        {"from": "b", "to": "a", "delay": None, "loss": {"sent": 0, "lost": 0, "loss_pct": None, "age_s": 0.5}},
        {"from": "b", "to": "c", "delay": None, "loss": {"sent": 10, "lost": -1, "loss_pct": -10.0, "age_s": 0.5}}))
    assert readings[("a", "b")]["loss_pct"] == 0.75
    assert readings[("b", "a")]["loss_pct"] is None
    assert readings[("b", "c")]["loss_pct"] == -10.0
    # a negative reading (counting artefact) counts as no loss on the path, never as a gain
    status = slo_status({"s": adm("s", 1, "abc")}, {}, view(
        entry("a", "b", 1.0, loss=1.0), {"from": "b", "to": "c", "delay": None,
                                         "loss": {"sent": 10, "lost": -1, "loss_pct": -10.0, "age_s": 0.5},
                                         "loss_by_mark": {"1": {"sent": 10, "lost": -1, "age_s": 0.5}}}))
    assert pair(status, "s", "a", "c")["loss_pct"] == 1.0 == pair(status, "s", "a", "c")["link_loss_pct"]


def test_one_site_path_measures_zero():
    admission = Admission("s", 1, 1.0, {("a", "a"): Path(("a",), 0.0, 0, None)})
    p = slo_status({"s": admission}, {"s": spec("s", 1, "a", max_latency_ms=1.0, max_loss_pct=0.0)}, view())
    assert (p["slices"]["s"]["pairs"][0]["delay_ms"], p["slices"]["s"]["pairs"][0]["loss_pct"]) == (0.0, 0.0)
    assert p["violations"] == []


# ------------------------------------------------------------ missing data

def test_a_link_without_data_makes_the_path_value_none():
    v = view(entry("a", "b", 1.0, loss=0.0), entry("b", "c", None, loss=None),
             entry("c", "b", 1.0, loss=None), entry("b", "a", 1.0, loss=0.0))
    bounds = spec("s", 1, "ac", max_latency_ms=0.5, max_loss_pct=0.5)
    status = slo_status({"s": adm("s", 1, "abc")}, {"s": bounds}, v)
    forward, backward = pair(status, "s", "a", "c"), pair(status, "s", "c", "a")
    assert (forward["delay_ms"], forward["delay_p99_ms"], forward["loss_pct"]) == (None, None, None)
    assert (forward["delay_ok"], forward["loss_ok"]) == (None, None)
    # c->b has a delay but no loss reading: the delay is judged, the loss is not
    assert backward["delay_ms"] == 2.0 and backward["delay_ok"] is False
    assert backward["loss_pct"] is None and backward["loss_ok"] is None
    assert [(x["from"], x["what"]) for x in status["violations"]] == [("c", "delay")]


def test_a_link_absent_from_the_view_is_missing():
    status = slo_status({"s": adm("s", 1, "ab")}, {"s": spec("s", 1, "ab", max_latency_ms=1.0)},
                        view(entry("a", "b", 0.5, loss=0.0)))
    assert pair(status, "s", "a", "b")["delay_ok"] is True
    assert pair(status, "s", "b", "a")["delay_ms"] is None
    assert pair(status, "s", "b", "a")["delay_ok"] is None


def test_stale_readings_count_as_missing():
    v = view(entry("a", "b", 1.0, loss=1.0, delay_age=6.0, loss_age=0.5),
             entry("b", "a", 1.0, loss=1.0, delay_age=0.5, loss_age=7.5))
    s = {"s": adm("s", 1, "ab")}
    status = slo_status(s, {}, v)  # default 5 s
    assert DEFAULT_STALE_S == 5.0
    assert (pair(status, "s", "a", "b")["delay_ms"], pair(status, "s", "a", "b")["loss_pct"]) == (None, 1.0)
    assert (pair(status, "s", "b", "a")["delay_ms"], pair(status, "s", "b", "a")["loss_pct"]) == (1.0, None)
    loose = slo_status(s, {}, v, stale_s=10.0)
    assert pair(loose, "s", "a", "b")["delay_ms"] == 1.0 and pair(loose, "s", "b", "a")["loss_pct"] == 1.0
    assert slo_status(s, {}, v, stale_s=None) == loose
    strict = slo_status(s, {}, v, stale_s=0.1)
    assert pair(strict, "s", "a", "b")["delay_ms"] is None
    assert pair(strict, "s", "b", "a")["delay_ms"] is None
    assert slo_status(s, {}, v, stale_s=0.5)["slices"]["s"]["pairs"][1]["delay_ms"] == 1.0  # age == limit: fresh


def test_non_numeric_values_count_as_missing():
    bad = entry("a", "b", 1.0, loss=0.0)
    bad["delay"]["delay_ms"] = float("nan")
    bad["loss"]["loss_pct"] = "0"
    bad["loss"]["sent"] = None
    bad["loss_by_mark"]["1"]["loss_pct"] = "0"
    bad["loss_by_mark"]["1"]["sent"] = None
    bad["loss_by_mark"]["x"] = {"sent": 1, "lost": 0}  # not a mark: ignored
    readings = link_readings(view(bad))
    assert readings[("a", "b")] == {"delay_ms": None, "delay_p99_ms": 2.0, "loss_pct": None, "loss_by_mark": {1: None}}


def test_first_entry_of_a_direction_wins():
    readings = link_readings(view(entry("a", "b", 1.0), entry("a", "b", 9.0)))
    assert readings[("a", "b")]["delay_ms"] == 1.0


@pytest.mark.parametrize("stale_s", [-1.0, float("nan"), "5", True])
def test_invalid_stale_s_is_refused(stale_s):
    with pytest.raises(SlicingError, match="stale_s"):
        slo_status({}, {}, view(), stale_s=stale_s)


def test_malformed_view_is_refused_naming_the_entry():
    with pytest.raises(SlicingError, match=r"links\[0\]"):
        link_readings({"links": [{"link": "x", "delay": None}]})
    with pytest.raises(SlicingError, match="list"):
        link_readings({"links": "ab"})
    assert link_readings({}) == {} and link_readings({"links": None}) == {}


# ------------------------------------------------------------ violations and bounds

def test_violations_name_slice_pair_kind_measured_and_bound():
    v = view(entry("a", "b", 2.0, loss=3.0), entry("b", "a", 1.0, loss=0.0))
    specs = {"gold": spec("gold", 1, "ab", max_latency_ms=1.5, max_loss_pct=1.0),
             "silver": spec("silver", 2, "ab", max_latency_ms=2.0, max_loss_pct=5.0)}
    status = slo_status({"silver": adm("silver", 2, "ab"), "gold": adm("gold", 1, "ab")}, specs, v)
    assert list(status["slices"]) == ["gold", "silver"]  # name order
    assert status["violations"] == [
        {"slice": "gold", "from": "a", "to": "b", "what": "delay", "measured": 2.0, "bound": 1.5},
        {"slice": "gold", "from": "a", "to": "b", "what": "loss", "measured": 3.0, "bound": 1.0},
    ]
    assert status["slices"]["gold"]["violations"] == status["violations"]
    assert status["slices"]["silver"]["violations"] == []
    # equal to the bound is within it
    silver = pair(status, "silver", "a", "b")
    assert (silver["delay_ok"], silver["loss_ok"], silver["max_latency_ms"], silver["max_loss_pct"]) == (
        True, True, 2.0, 5.0)
    gold_back = pair(status, "gold", "b", "a")
    assert (gold_back["delay_ok"], gold_back["loss_ok"]) == (True, True)


def test_slices_without_bounds_are_measured_but_never_judged():
    v = view(entry("a", "b", 50.0, loss=40.0), entry("b", "a", 50.0, loss=40.0))
    for specs in ({"s": spec("s", 1, "ab")}, {}):
        status = slo_status({"s": adm("s", 1, "ab")}, specs, v)
        for p in status["slices"]["s"]["pairs"]:
            assert (p["delay_ms"], p["loss_pct"]) == (50.0, 40.0)
            assert (p["max_latency_ms"], p["max_loss_pct"], p["delay_ok"], p["loss_ok"]) == (None, None, None, None)
        assert status["violations"] == []


def test_only_the_bound_given_is_checked():
    v = view(entry("a", "b", 5.0, loss=5.0), entry("b", "a", 5.0, loss=5.0))
    status = slo_status({"s": adm("s", 1, "ab")}, {"s": spec("s", 1, "ab", max_loss_pct=1.0)}, v)
    assert {x["what"] for x in status["violations"]} == {"loss"}
    assert all(p["delay_ok"] is None and p["loss_ok"] is False for p in status["slices"]["s"]["pairs"])


def test_status_is_deterministic_pure_and_json_ready():
    v = view(entry("a", "b", 1.0, loss=1.0), entry("b", "a", 1.0, loss=1.0))
    frozen = json.dumps(v, sort_keys=True)
    admissions = {"s": adm("s", 1, "ab")}
    specs = {"s": spec("s", 1, "ab", max_latency_ms=0.5)}
    first = slo_status(admissions, specs, v)
    assert slo_status(admissions, specs, v) == first
    assert json.dumps(v, sort_keys=True) == frozen  # the view is not modified
    assert json.loads(json.dumps(first)) == first


def test_empty_inputs():
    assert slo_status({}, {}, view()) == {"slices": {}, "violations": []}


# ------------------------------------------------------------ recorder

def test_recorder_summarises_samples_violations_worst_and_fraction():
    admissions = {"gold": adm("gold", 1, "ab"), "free": adm("free", 2, "ab")}
    specs = {"gold": spec("gold", 1, "ab", max_latency_ms=2.0, max_loss_pct=1.0), "free": spec("free", 2, "ab")}
    rec = SloRecorder()
    snapshots = [
        (10.0, view(entry("a", "b", 1.0, loss=0.0), entry("b", "a", 1.0, loss=0.0))),   # within
        (11.0, view(entry("a", "b", 3.0, loss=2.0), entry("b", "a", 2.5, loss=0.0))),   # 2 delay + 1 loss
        (12.0, view(entry("a", "b", 1.0, loss=0.0))),                                    # b->a unknown
        (13.0, view(entry("a", "b", 1.5, 4.0, loss=0.5), entry("b", "a", 1.0, loss=0.0))),  # within
    ]
    for now, v in snapshots:
        rec.record(now, slo_status(admissions, specs, v))
    assert rec.samples == 4
    summary = rec.summary()
    assert list(summary) == ["free", "gold"]
    assert summary["gold"] == {
        "samples": 4, "first_at": 10.0, "last_at": 13.0,
        "violations": {"delay": 2, "loss": 1}, "violating_samples": 1, "unknown_samples": 1,
        "within_slo_samples": 2, "within_slo_fraction": 0.5,
        "worst_delay_ms": 3.0, "worst_delay_p99_ms": 4.0, "worst_loss_pct": 2.0}
    # no bounds: every sample is within, even with data missing
    assert summary["free"]["within_slo_fraction"] == 1.0
    assert summary["free"]["violations"] == {"delay": 0, "loss": 0}
    assert summary["free"]["worst_delay_ms"] == 3.0
    assert json.loads(json.dumps(summary)) == summary


def test_recorder_counts_a_slice_only_in_snapshots_that_hold_it():
    rec = SloRecorder()
    v = view(entry("a", "b", 1.0, loss=0.0), entry("b", "a", 1.0, loss=0.0))
    rec.record(1.0, slo_status({"s": adm("s", 1, "ab")}, {}, v))
    rec.record(2.0, slo_status({"s": adm("s", 1, "ab"), "t": adm("t", 2, "ab")}, {}, v))
    summary = rec.summary()
    assert (summary["s"]["samples"], summary["t"]["samples"], rec.samples) == (2, 1, 2)
    assert (summary["t"]["first_at"], summary["t"]["last_at"]) == (2.0, 2.0)


def test_recorder_does_not_keep_the_snapshot():
    rec = SloRecorder()
    status = slo_status({"s": adm("s", 1, "ab")}, {}, view(entry("a", "b", 1.0, loss=0.0)))
    rec.record(0.0, status)
    status["slices"]["s"]["pairs"][0]["delay_ms"] = 99.0
    assert rec.summary()["s"]["worst_delay_ms"] == 1.0


def test_empty_recorder_and_bad_input():
    rec = SloRecorder()
    assert rec.summary() == {} and rec.samples == 0
    with pytest.raises(SlicingError, match="finite"):
        rec.record(math.inf, {"slices": {}})
    with pytest.raises(SlicingError, match="slices"):
        rec.record(1.0, {"violations": []})
    assert rec.samples == 0
