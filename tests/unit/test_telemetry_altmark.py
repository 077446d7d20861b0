"""Unit tests for cpn_net.telemetry.altmark (RFC 9341 alternate marking)."""

from __future__ import annotations

import bisect
import random
from collections import defaultdict

import pytest

from cpn_net.telemetry.altmark import (
    COUNTER_MODULUS_32,
    AltMarkBlock,
    BlockCount,
    CounterSample,
    HopLoss,
    attribute_loss,
    block_at,
    block_index,
    block_losses,
    check_period,
    closed_block,
    colour_at,
    locate_hop,
    min_period_s,
    per_block_counts,
    per_hop_loss,
)
from cpn_net.telemetry.errors import TelemetryValueError

PATH = ["s1-eth1:in", "r1-eth1:in", "r1-eth2:out", "r4-eth2:in", "r4-eth1:out", "s4-eth3:out"]


# --- periods and blocks -------------------------------------------------------


@pytest.mark.parametrize("period_s", [1.0, 0.25, 0.1, 3.0])
def test_colour_alternates_every_period(period_s):
    epoch = 1_700_000_000.0
    for k in range(-3, 20):
        start = epoch + k * period_s
        for frac in (0.0, 0.3, 0.999):
            t = start + frac * period_s
            assert block_index(t, period_s, epoch) == k
            assert colour_at(t, period_s, epoch) == k % 2


def test_block_at_is_consistent_with_block_index():
    for k in range(50):
        b = block_at(k, 0.5, epoch_s=7.0)
        assert block_index(b.start_s, 0.5, 7.0) == k
        assert block_index(b.end_s - 1e-5, 0.5, 7.0) == k
        assert block_index(b.end_s, 0.5, 7.0) == k + 1
        assert b.colour == colour_at(b.start_s, 0.5, 7.0)
        assert b.period_s == pytest.approx(0.5)


def test_block_stability_window_is_second_half_of_next_block():
    b = block_at(4, 1.0)
    assert (b.stable_from_s, b.read_until_s) == (5.5, 6.0)
    assert not b.is_stable(5.49)
    assert b.is_stable(5.5)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "1"])
def test_bad_period_names_the_value(bad):
    with pytest.raises(TelemetryValueError, match=r"period_s=.* must be a finite number > 0"):
        block_index(1.0, bad)


def test_min_period_doubles_the_delay_budget():
    assert min_period_s(40, 5, 50, 5) == pytest.approx(0.2)
    assert min_period_s(0) == 0.0


def test_check_period_rejects_a_period_shorter_than_twice_the_delay():
    check_period(1.0, max_delay_ms=100, max_jitter_ms=20, read_latency_ms=100)
    with pytest.raises(TelemetryValueError) as err:
        check_period(0.2, max_delay_ms=80, max_jitter_ms=20)
    assert "period_s=0.2 is too short" in str(err.value)
    assert "100.000 ms" in str(err.value)
    assert "use period_s > 0.2" in str(err.value)


def test_min_period_rejects_negative_budget():
    with pytest.raises(TelemetryValueError, match=r"max_jitter_ms=-1 must be a finite number >= 0"):
        min_period_s(10, -1)


@pytest.mark.parametrize(
    ("read_at", "colour", "expected"),
    [
        (1.5, 0, 0),  # first usable instant for block 0
        (1.99, 0, 0),
        (1.49, 0, None),  # unstable half
        (2.0, 0, None),  # colour 0 counting again (block 2)
        (0.7, 0, None),  # during block 0 itself
        (0.7, 1, -1),  # block -1 (colour 1) closes in block 0's second half
        (3.75, 1, None),  # block 3 is colour 1: counting
        (4.75, 1, 3),
    ],
)
def test_closed_block(read_at, colour, expected):
    assert closed_block(read_at, colour, 1.0) == expected


def test_counter_sample_validation_messages():
    with pytest.raises(TelemetryValueError, match=r"counter sample r1-eth1:in: packets=-1 must be an int >= 0"):
        CounterSample("r1-eth1:in", 0, -1, 0, 1.0)
    with pytest.raises(TelemetryValueError, match=r"colour=2 must be 0 or 1"):
        CounterSample("r1-eth1:in", 2, 1, 0, 1.0)
    with pytest.raises(TelemetryValueError, match=r"point must be a non-empty name"):
        CounterSample("", 0, 1, 0, 1.0)


# --- cumulative counters to per-block counts ---------------------------------


def _reads(point, colour, values, times):
    return [CounterSample(point, colour, v, 1000 * v, t) for v, t in zip(values, times)]


def test_per_block_counts_differences_between_reads_of_the_same_colour():
    samples = _reads("r1-eth1:in", 0, [5, 12, 30], [1.7, 3.7, 5.7]) + _reads(
        "r1-eth1:in", 1, [3, 9, 9], [2.7, 4.7, 6.7]
    )
    counts = per_block_counts(samples, 1.0)
    got = [(c.block.index, c.block.colour, c.packets, c.bytes, c.valid) for c in counts]
    assert got == [
        (2, 0, 7, 7000, True),
        (3, 1, 6, 6000, True),
        (4, 0, 18, 18000, True),
        (5, 1, 0, 0, True),
    ]


def test_reads_outside_the_stable_window_are_ignored():
    samples = _reads("r1-eth1:in", 0, [5, 6, 12], [1.7, 2.2, 3.6])  # 2.2: colour 0 is counting
    assert [(c.block.index, c.packets) for c in per_block_counts(samples, 1.0)] == [(2, 7)]


def test_missed_read_marks_blocks_invalid_instead_of_guessing():
    samples = _reads("r1-eth1:in", 0, [5, 12, 30, 31], [1.7, 3.7, 7.7, 9.7])
    counts = {c.block.index: c for c in per_block_counts(samples, 1.0)}
    assert counts[2].packets == 7
    assert counts[4].packets is None and not counts[4].valid
    assert "no counter read in the stable window [5.500000, 6.000000)" in counts[4].reason
    assert counts[6].packets is None
    assert "the read closing block 4 is missing" in counts[6].reason
    assert counts[8].packets == 1  # counting resumes after the gap


def test_counter_reset_marks_block_invalid_then_resumes():
    samples = _reads("r1-eth1:in", 1, [500, 520, 4, 10], [0.6, 2.6, 4.6, 6.6])
    counts = {c.block.index: c for c in per_block_counts(samples, 1.0)}
    assert counts[1].packets == 20
    assert counts[3].packets is None
    assert "counter went back from 520 to 4 packets" in counts[3].reason
    assert "reset" in counts[3].reason
    assert counts[5].packets == 6


def test_counter_wrap_is_counted_across_the_modulus():
    top = COUNTER_MODULUS_32 - 3
    samples = [
        CounterSample("r1-eth1:in", 0, top, top, 1.6),
        CounterSample("r1-eth1:in", 0, 7, 7, 3.6),
    ]
    [count] = per_block_counts(samples, 1.0, counter_modulus=COUNTER_MODULUS_32)
    assert (count.block.index, count.packets, count.bytes) == (2, 10, 10)


def test_counter_value_above_modulus_is_rejected():
    samples = [CounterSample("r1-eth1:in", 0, 2**32, 0, 1.6)]
    with pytest.raises(TelemetryValueError, match=r"packets=4294967296 must be < counter_modulus=4294967296"):
        per_block_counts(samples, 1.0, counter_modulus=COUNTER_MODULUS_32)


def test_counter_moving_after_the_guard_marks_the_block_unstable():
    samples = _reads("r4-eth2:in", 0, [10, 20, 21, 30], [1.6, 3.6, 3.9, 5.6])
    counts = {c.block.index: c for c in per_block_counts(samples, 1.0)}
    assert counts[2].packets is None
    assert "counter moved from 20 to 21 packets after 3.500000" in counts[2].reason
    assert "use a longer period" in counts[2].reason
    assert counts[4].packets == 9  # baseline is the later read


def test_repeated_identical_reads_are_harmless():
    samples = _reads("r4-eth2:in", 0, [10, 20, 20, 30], [1.6, 3.6, 3.9, 5.6])
    assert [(c.block.index, c.packets) for c in per_block_counts(samples, 1.0)] == [(2, 10), (4, 10)]


def test_sample_order_does_not_matter():
    samples = _reads("r1-eth1:in", 0, [5, 12, 30], [1.7, 3.7, 5.7])
    random.Random(4).shuffle(samples)
    assert [(c.block.index, c.packets) for c in per_block_counts(samples, 1.0)] == [(2, 7), (4, 18)]


# --- per-hop loss and attribution --------------------------------------------


def test_per_hop_loss_telescopes_to_end_to_end_loss():
    rng = random.Random(7)
    for _ in range(200):
        sent = rng.randint(0, 5000)
        counts = {}
        left = sent
        for point in PATH:
            left -= rng.randint(0, min(left, 20)) if left else 0
            counts[point] = left
        counts[PATH[0]] = sent
        hops = per_hop_loss(PATH, counts)
        assert [h.upstream_point for h in hops] == PATH[:-1]
        assert [h.downstream_point for h in hops] == PATH[1:]
        assert sum(h.lost_packets for h in hops) == counts[PATH[0]] - counts[PATH[-1]]
        for hop in hops:
            assert hop.lost_packets == counts[hop.upstream_point] - counts[hop.downstream_point]
            if counts[hop.upstream_point]:
                assert hop.loss_pct == pytest.approx(100 * hop.lost_packets / counts[hop.upstream_point])
            else:
                assert hop.loss_pct is None


def test_per_hop_loss_keeps_invalid_counts_as_none():
    hops = per_hop_loss(["a-eth0:out", "b-eth0:in", "c-eth0:in"], {"a-eth0:out": 10, "b-eth0:in": None, "c-eth0:in": 8})
    assert [(h.lost_packets, h.loss_pct) for h in hops] == [(None, None), (None, None)]


def test_per_hop_loss_reports_downstream_excess_as_negative_loss():
    [hop] = per_hop_loss(["a-eth0:out", "b-eth0:in"], {"a-eth0:out": 10, "b-eth0:in": 12})
    assert hop.lost_packets == -2 and hop.loss_pct == pytest.approx(-20.0)


def test_per_hop_loss_argument_errors():
    with pytest.raises(TelemetryValueError, match=r"must name at least 2 measurement points"):
        per_hop_loss(["a-eth0:out"], {"a-eth0:out": 1})
    with pytest.raises(TelemetryValueError, match=r"must not repeat a point"):
        per_hop_loss(["a-eth0:out", "a-eth0:out"], {"a-eth0:out": 1})
    with pytest.raises(TelemetryValueError, match=r"no entry for point\(s\) \['b-eth0:in'\]; give None"):
        per_hop_loss(["a-eth0:out", "b-eth0:in"], {"a-eth0:out": 1})


def test_attribute_loss_names_links_and_nodes():
    counts = dict(zip(PATH, [100, 100, 98, 90, 90, 89]))
    found = attribute_loss(per_hop_loss(PATH, counts))
    assert [(a.kind, a.element, a.lost_packets) for a in found] == [
        ("node", "r1", 2),
        ("link", "r1->r4", 8),
        ("link", "r4->s4", 1),
    ]
    assert found[1].upstream_point == "r1-eth2:out" and found[1].downstream_point == "r4-eth2:in"
    assert attribute_loss(per_hop_loss(PATH, counts), min_lost_packets=5)[0].element == "r1->r4"


def test_attribute_loss_skips_missing_and_negative_hops():
    hops = [HopLoss("r1-eth1:in", "r1-eth2:out", None, None), HopLoss("r1-eth2:out", "r4-eth2:in", -3, -1.0, 300)]
    assert attribute_loss(hops) == []


def test_attribute_loss_errors():
    with pytest.raises(TelemetryValueError, match=r"min_lost_packets=0 must be an int >= 1"):
        attribute_loss([], min_lost_packets=0)
    with pytest.raises(TelemetryValueError, match=r"interface 'eth0' must be named '<node>-eth<N>'"):
        locate_hop("eth0:in", "r1-eth1:out")


def test_block_losses_marks_missing_points_and_keeps_valid_hops():
    b = block_at(6, 1.0)
    counts = [
        BlockCount("r1-eth1:in", b, 100, 0),
        BlockCount("r1-eth2:out", b, 99, 0),
        BlockCount("r4-eth2:in", b, None, None, "no counter read in the stable window"),
        BlockCount("x9-eth0:in", b, 1, 0),  # not on the path: ignored
    ]
    [loss] = block_losses(["r1-eth1:in", "r1-eth2:out", "r4-eth2:in", "r4-eth1:out"], counts)
    assert not loss.valid
    assert loss.reasons == (
        "r4-eth2:in: no counter read in the stable window",
        "r4-eth1:out: no count for block 6",
    )
    assert loss.hops[0].lost_packets == 1
    assert loss.hops[1].lost_packets is None
    assert loss.end_to_end.lost_packets is None


# --- a packet-level simulation of the whole pipeline -------------------------


def _simulate(
    seed,
    period_s,
    n_blocks,
    rate_pps,
    hop_delay_ms,
    jitter_ms,
    drops,
    read_offset=0.75,
    loss_from_s=0.0,
):
    """Send packets along PATH; return counter reads and the true drops per (hop, block).

    ``drops`` maps a hop index (between PATH[i] and PATH[i+1]) to a drop probability.
    """
    rng = random.Random(seed)
    epoch = 1000.0
    arrivals = defaultdict(list)  # (point, colour) -> arrival times
    truth = defaultdict(int)  # (hop index, block index) -> dropped
    t = epoch
    end = epoch + n_blocks * period_s
    while t < end:
        t += rng.expovariate(rate_pps)
        k = block_index(t, period_s, epoch)
        colour = k % 2
        at = t
        for i, point in enumerate(PATH):
            arrivals[(point, colour)].append(at)
            if i == len(PATH) - 1:
                break
            p = drops.get(i, 0.0) if t >= epoch + loss_from_s else 0.0
            if rng.random() < p:
                truth[(i, k)] += 1
                break
            at += (hop_delay_ms + rng.uniform(-jitter_ms, jitter_ms)) / 1000.0
    for times in arrivals.values():
        times.sort()
    samples = []
    for k in range(n_blocks + 2):
        read_at = epoch + (k + read_offset) * period_s
        for point in PATH:
            for colour in (0, 1):
                n = bisect.bisect_right(arrivals[(point, colour)], read_at)
                samples.append(CounterSample(point, colour, n, 100 * n, read_at))
    return epoch, samples, truth


@pytest.mark.parametrize("seed", range(4))
def test_pipeline_per_block_loss_equals_true_drops(seed):
    period_s = 0.5
    epoch, samples, truth = _simulate(
        seed, period_s, n_blocks=40, rate_pps=400, hop_delay_ms=20, jitter_ms=5, drops={2: 0.05, 1: 0.01}
    )
    losses = block_losses(PATH, per_block_counts(samples, period_s, epoch))
    valid = [loss for loss in losses if loss.valid]
    assert len(valid) >= 38
    for loss in valid:
        for i, hop in enumerate(loss.hops):
            assert hop.lost_packets == truth.get((i, loss.block.index), 0), (loss.block.index, i)
    assert sum(truth.values()) > 0


def test_pipeline_detects_a_period_too_short_for_the_delay():
    period_s = 0.1  # half-period 50 ms < 5 hops * 20 ms
    epoch, samples, truth = _simulate(
        3, period_s, n_blocks=30, rate_pps=500, hop_delay_ms=20, jitter_ms=5, drops={}, read_offset=0.5
    )
    losses = block_losses(PATH, per_block_counts(samples, period_s, epoch))
    # No packet was dropped, so any non-zero "loss" comes from mixing blocks.
    assert any(h.lost_packets for loss in losses for h in loss.hops)
    with pytest.raises(TelemetryValueError, match="too short"):
        check_period(period_s, max_delay_ms=5 * 25)


@pytest.mark.parametrize("seed", range(5))
def test_loss_onset_is_reported_within_two_periods(seed):
    period_s = 1.0
    rng = random.Random(100 + seed)
    onset_s = rng.uniform(5.0, 10.0)
    epoch, samples, _truth = _simulate(
        seed, period_s, n_blocks=16, rate_pps=300, hop_delay_ms=10, jitter_ms=2, drops={2: 0.2}, loss_from_s=onset_s
    )
    counts = per_block_counts(samples, period_s, epoch)
    reads = sorted({s.read_at_s for s in samples})
    losses = block_losses(PATH, counts)
    first = next(loss for loss in losses if loss.valid and attribute_loss(loss.hops))
    assert attribute_loss(first.hops)[0].element == "r1->r4"
    reported_at = next(r for r in reads if r >= first.block.stable_from_s)
    assert reported_at - (epoch + onset_s) <= 2 * period_s


def test_altmark_block_is_frozen():
    b = AltMarkBlock(0, 0, 0.0, 1.0)
    with pytest.raises(AttributeError):
        b.index = 3


def test_wall_clock_epoch_boundaries_round_trip():
    # Reproducer: epoch + k*T in floats landed just below boundary k at ~1.7e9 s.
    epoch = 1_700_000_000.0
    for k in range(-5, 200):
        assert block_index(block_at(k, 0.1, epoch).start_s, 0.1, epoch) == k
