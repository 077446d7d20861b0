"""Path SLAs from synthetic /telemetry views: per-hop loss and delay, composition, verdicts, the report."""

import math
import random

import pytest

from cpn_net.path_sla import (HopMeasurement, LossBlockCollector, LossBlocks, PathMeasurement, PathSla,
                              SlaValueError, evaluate_sla, first_block_starting_at_or_after, measure_path)


def link_entry(link, *, block=None, sent=None, lost=None, p99=None, samples=100):
    """One link of a GET /telemetry view, shaped as TelemetryService.view() makes it."""
    delay = None if p99 is None else {"delay_ms": p99 - 0.2, "delay_mean_ms": p99 - 0.2, "delay_p99_ms": p99,
                                      "jitter_ms": 0.05, "samples": samples, "window_s": 10.0, "age_s": 0.05}
    loss = None if block is None else {
        "block": block, "colour": block % 2, "read_at": 1000.0 + block, "sent": sent,
        "received": None if sent is None or lost is None else sent - lost, "lost": lost,
        "loss_pct": None, "truth_dropped": lost, "matches_truth": True, "age_s": 0.3}
    return {"link": link, "from": "x", "to": "y", "delay": delay, "loss": loss, "ground_truth": {}}


def view(*links, epoch=100.0, period_s=1.0):
    return {"period_s": period_s, "epoch": epoch, "now": 0.0, "links": list(links), "probes": {}, "accuracy": {}}


def collect(views, first_block, n):
    collector = LossBlockCollector(first_block)
    for v in views:
        collector.add(v)
    return collector.blocks(n)


# ------------------------------------------------------------ collector
def test_first_block_is_the_first_that_begins_at_or_after_now():
    v = view()
    assert first_block_starting_at_or_after(v, 100.0) == 0
    assert first_block_starting_at_or_after(v, 100.001) == 1
    assert first_block_starting_at_or_after(v, 99.0) == 0  # before the epoch: block 0 is the first
    assert first_block_starting_at_or_after(view(period_s=0.5), 103.2) == 7


def test_first_block_refuses_a_view_without_a_period():
    with pytest.raises(SlaValueError, match=r"period_s=0 must be > 0"):
        first_block_starting_at_or_after(view(period_s=0), 101.0)


def test_collector_keeps_each_block_once_from_the_first_block_on():
    views = [view(link_entry("r1->r2", block=b, sent=100 + b, lost=0)) for b in (3, 4, 4, 5, 6)]
    blocks = collect(views, first_block=4, n=2)
    assert blocks.blocks == (4, 5)
    assert [r["sent"] for r in blocks.readings["r1->r2"]] == [104, 105]


def test_collector_returns_fewer_blocks_when_fewer_were_read():
    collector = LossBlockCollector(first_block=0)
    collector.add(view(link_entry("r1->r2", block=2, sent=1, lost=0), link_entry("r2->r1")))
    assert collector.count() == 1 and collector.latest() == 2
    assert collector.blocks(3).blocks == (2,)
    assert LossBlockCollector(first_block=0).latest() is None


# ----------------------------------------------------------- measurement
def test_hop_loss_is_sum_lost_over_sum_sent_across_blocks():
    views = [view(link_entry("r2->r3", block=7, sent=200, lost=2, p99=10.4)),
             view(link_entry("r2->r3", block=8, sent=600, lost=14, p99=10.5))]
    m = measure_path("u2-1", "k3-1", ("centre", "west"), ("r2->r3",), collect(views, 7, 2), views[-1])
    hop = m.hops[0]
    assert (hop.sent, hop.lost, hop.unread_blocks) == (800, 16, 0)
    assert hop.loss_pct == pytest.approx(2.0)  # not the mean of 1 % and 2.33 %
    assert hop.delay_p99_ms == 10.5 and hop.delay_samples == 100 and hop.delay_window_s == 10.0
    assert hop.truth_dropped == 16  # the link element's own count, for comparison


def test_ground_truth_is_unknown_if_a_block_lacks_it():
    entries = [link_entry("r2->r3", block=b, sent=100, lost=1, p99=10.0) for b in (1, 2)]
    entries[1]["loss"]["truth_dropped"] = None
    hop = measure_path("u2-1", "k3-1", ("centre", "west"), ("r2->r3",), collect([view(e) for e in entries], 1, 2),
                       view(entries[1])).hops[0]
    assert (hop.lost, hop.truth_dropped) == (2, None)


def test_unread_blocks_are_left_out_and_counted():
    views = [view(link_entry("r1->r2", block=1, sent=None, lost=None, p99=5.1)),
             view(link_entry("r1->r2", block=2, sent=300, lost=3, p99=5.1))]
    hop = measure_path("u1-1", "k2-1", ("east", "centre"), ("r1->r2",), collect(views, 1, 2), views[-1]).hops[0]
    assert (hop.sent, hop.lost, hop.unread_blocks, hop.loss_pct) == (300, 3, 1, 1.0)


def test_a_hop_without_traffic_is_zero_loss_and_marked():
    views = [view(link_entry("r1->r2", block=1, sent=0, lost=0, p99=5.1))]
    hop = measure_path("u1-1", "k2-1", ("east", "centre"), ("r1->r2",), collect(views, 1, 1), views[-1]).hops[0]
    assert hop.loss_pct == 0.0 and hop.loss_note == "no traffic"


def test_a_hop_never_read_has_unknown_loss():
    v = view(link_entry("r1->r2", p99=None))
    m = measure_path("u1-1", "k2-1", ("east", "centre"), ("r1->r2",), LossBlocks((4, 5)), v)
    assert m.hops[0].loss_pct is None and m.hops[0].loss_note == "no reading" and m.hops[0].unread_blocks == 2
    assert m.loss_pct is None and m.delay_p99_ms_bound is None


def test_a_link_missing_from_the_view_is_named():
    with pytest.raises(SlaValueError, match=r"telemetry has no link 'r1->r9' \(it has: r1->r2\)"):
        measure_path("u1-1", "k9-1", ("east", "x"), ("r1->r9",), LossBlocks(()), view(link_entry("r1->r2")))


def test_end_to_end_loss_composes_hops_and_delay_adds_p99s():
    rng = random.Random(7)
    for _ in range(200):
        hops = tuple(HopMeasurement(f"r{i}->r{i + 1}", sent=(sent := rng.randint(1, 1000)),
                                    lost=rng.randint(0, sent), unread_blocks=0,
                                    delay_p99_ms=rng.uniform(0, 30)) for i in range(rng.randint(1, 5)))
        m = PathMeasurement("a", "b", (), hops, (1,))
        delivered = math.prod(1 - h.lost / h.sent for h in hops)
        assert m.loss_pct == pytest.approx(100 * (1 - delivered))
        assert max(h.loss_pct for h in hops) - 1e-9 <= m.loss_pct <= sum(h.loss_pct for h in hops) + 1e-9
        assert m.delay_p99_ms_bound == pytest.approx(sum(h.delay_p99_ms for h in hops))


def test_measurement_dict_carries_every_number_for_reports():
    hops = (HopMeasurement("r1->r2", 630, 0, 0, 5.3, 98, 10.0),)
    d = PathMeasurement("u1-1", "k2-1", ("east", "centre"), hops, (2, 3, 4), {"sent": 900}).to_dict()
    assert d["hops"] == [{"hop": "r1->r2", "delay_p99_ms": 5.3, "delay_samples": 98, "delay_window_s": 10.0,
                          "loss_pct": 0.0, "lost": 0, "sent": 630, "unread_blocks": 0, "note": None,
                          "truth_dropped": None}]
    assert (d["loss_pct"], d["delay_p99_ms_bound"], d["blocks"], d["flow"]) == (0.0, 5.3, [2, 3, 4], {"sent": 900})
    assert "upper-bound estimate" in d["delay_bound_note"]


# --------------------------------------------------------------- the SLA
@pytest.mark.parametrize("kwargs, message", [
    ({}, "SLA: no bound given; pass loss_pct_below=..., delay_p99_ms_below=... or both"),
    ({"loss_pct_below": 0}, "SLA: loss_pct_below=0 must be a number in (0, 100], e.g. 0.1"),
    ({"loss_pct_below": float("nan")}, "SLA: loss_pct_below=nan must be a number in (0, 100], e.g. 0.1"),
    ({"delay_p99_ms_below": -1}, "SLA: delay_p99_ms_below=-1 must be a number > 0, e.g. 25"),
    ({"delay_p99_ms_below": True}, "SLA: delay_p99_ms_below=True must be a number > 0, e.g. 25"),
])
def test_sla_bounds_are_checked(kwargs, message):
    with pytest.raises(SlaValueError) as err:
        PathSla(**kwargs)
    assert str(err.value) == message


def two_hop_path(loss=((600, 0), (600, 12)), p99=(5.2, 10.3)):
    hops = tuple(HopMeasurement(link, sent, lost, 0, delay) for link, (sent, lost), delay
                 in zip(("r1->r2", "r2->r3"), loss, p99))
    return PathMeasurement("u1-1", "k3-1", ("east", "centre", "west"), hops, (4, 5, 6),
                           {"rate_pps": 200.0, "sent": 900, "received": 882})


def test_a_path_within_its_bounds_passes():
    verdict = evaluate_sla(two_hop_path(), PathSla(loss_pct_below=2.5, delay_p99_ms_below=16))
    assert verdict.ok and verdict.problems == () and verdict.offenders == {}
    assert verdict.report().startswith("SLA met on u1-1 -> k3-1")


def test_bounds_are_strict():
    verdict = evaluate_sla(two_hop_path(p99=(6.0, 10.0)), PathSla(delay_p99_ms_below=16))
    assert verdict.problems == ("end-to-end delay p99 bound 16 ms (sum of hop p99s) is not below 16 ms",)


def test_the_lossy_hop_is_named_and_the_clean_one_is_not():
    verdict = evaluate_sla(two_hop_path(), PathSla(loss_pct_below=0.1))
    assert verdict.problems == ("end-to-end loss 2 % is not below 0.1 %",)
    assert verdict.offenders == {"r2->r3": ("loss over bound",)}


def test_when_only_the_sum_breaks_the_bound_the_contributing_hops_are_named():
    m = two_hop_path(loss=((1000, 6), (1000, 6)), p99=(7.0, 9.0))
    verdict = evaluate_sla(m, PathSla(loss_pct_below=1.0, delay_p99_ms_below=15))
    assert verdict.offenders == {"r1->r2": ("loss adds up",), "r2->r3": ("loss adds up", "largest delay")}
    assert verdict.problems[0].startswith("end-to-end loss 1.196 % is not below 1 %")


def test_unknown_values_violate_the_sla_that_needs_them():
    hops = (HopMeasurement("r1->r2", None, None, 3, None),)
    m = PathMeasurement("u1-1", "k2-1", ("east", "centre"), hops, (4, 5, 6))
    verdict = evaluate_sla(m, PathSla(loss_pct_below=0.1, delay_p99_ms_below=8))
    assert verdict.problems == ("loss unknown: no alternate-marking reading on r1->r2",
                                "delay unknown: no IOAM delay samples on r1->r2")
    assert verdict.offenders == {"r1->r2": ("no reading", "no delay samples")}


def table_rows(report):
    return {line.split()[0]: line for line in report.splitlines() if line.startswith(("r", "end-to-end"))}


def test_the_failure_report_shows_measured_against_bound_per_hop():
    report = evaluate_sla(two_hop_path(), PathSla(loss_pct_below=0.1, delay_p99_ms_below=25)).report()
    lines = report.splitlines()
    assert lines[0] == ("SLA VIOLATED on u1-1 -> k3-1 (loss < 0.1 %, delay p99 < 25 ms); IGP path "
                        "east > centre > west; alternate-marking blocks 4..6; probe flow 200 pps: "
                        "sent 900, received 882")
    assert lines[1] == "  - end-to-end loss 2 % is not below 0.1 %"
    assert lines[2].split() == ["hop", "delay", "p99", "ms", "bound", "ms", "loss", "%", "(lost/sent)",
                                "bound", "%", "verdict"]
    rows = table_rows(report)
    assert rows["r1->r2"].split() == ["r1->r2", "5.2", "<", "25", "0", "(0/600)", "<", "0.1", "ok"]
    assert rows["r2->r3"].split() == ["r2->r3", "10.3", "<", "25", "2", "(12/600)", "<", "0.1", "<--", "loss",
                                      "over", "bound"]
    assert rows["end-to-end"].split() == ["end-to-end", "<=", "15.5", "*", "<", "25", "2", "<", "0.1", "<--",
                                          "VIOLATED"]
    assert "upper-bound estimate" in lines[-1]


def test_the_report_marks_no_traffic_unread_blocks_and_missing_samples():
    hops = (HopMeasurement("r1->r2", 0, 0, 1, None), HopMeasurement("r2->r3", None, None, 3, 10.0))
    m = PathMeasurement("u1-1", "k3-1", ("east", "centre", "west"), hops, (7,))
    rows = table_rows(evaluate_sla(m, PathSla(loss_pct_below=0.1, delay_p99_ms_below=30)).report())
    assert "? (no delay samples)" in rows["r1->r2"] and "0 (0/0, no traffic, 1 block(s) unread)" in rows["r1->r2"]
    assert "? (no reading)" in rows["r2->r3"] and "<-- no reading" in rows["r2->r3"]
    assert rows["end-to-end"].split()[1:3] == ["?", "<"]
    assert "bound ms" in evaluate_sla(m, PathSla(loss_pct_below=1)).report()
    assert table_rows(evaluate_sla(m, PathSla(loss_pct_below=1)).report())["r2->r3"].split()[1:3] == ["10", "-"]
