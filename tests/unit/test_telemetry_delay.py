"""Unit tests for cpn_net.telemetry.delay (one-way delay and jitter from IOAM timestamps)."""

from __future__ import annotations

import random
import statistics

import pytest

from cpn_net.telemetry.delay import (
    DelaySample,
    double_marking_delays_ms,
    estimate_delays,
    hop_delay_samples,
    mean_delay_ms,
    path_delay_sample,
    rfc3550_jitter_ms,
)
from cpn_net.telemetry.errors import TelemetryValueError
from cpn_net.telemetry.ioam import (
    TRACE_TYPE_DELAY,
    UNAVAILABLE_U32,
    IoamNode,
    IoamTrace,
    build_trace_option,
    parse_hop_by_hop,
    record_transit_node,
)

T0_NS = 1_763_700_000_123_456_000  # a 2025 wall-clock time, µs resolution


def _node(node_id, ts_ns, hop_limit=None):
    seconds, rest = divmod(ts_ns, 1_000_000_000)
    return IoamNode(hop_limit=hop_limit, node_id=node_id, ingress_if=1, egress_if=2, ts_s=seconds, ts_frac=rest // 1000)


def _probe(route, start_ns, link_delays_ns, hop_limit=64):
    """Trace of a probe crossing ``route`` (IOAM node ids), as the routers would fill it."""
    hbh = build_trace_option(1, TRACE_TYPE_DELAY, len(route))
    t = start_ns
    for i, node_id in enumerate(route):
        if i:
            t += link_delays_ns[i - 1]
        hbh = record_transit_node(hbh, _node(node_id, t, hop_limit - i))
    return parse_hop_by_hop(hbh)


def test_hop_delays_from_a_decoded_trace_are_exact():
    trace = _probe([1, 4, 3], T0_NS, [10_250_000, 3_001_000])
    samples = hop_delay_samples(trace)
    assert [(s.subject, s.delay_ns) for s in samples] == [("r1->r4", 10_250_000), ("r4->r3", 3_001_000)]
    assert samples[1].at_s == pytest.approx((T0_NS + 13_251_000) / 1e9)
    assert samples[0].delay_ms == 10.25


def test_path_delay_spans_first_to_last_stamped_node():
    trace = _probe([1, 4, 3], T0_NS, [10_250_000, 3_001_000])
    sample = path_delay_sample(trace, "policy-u1-k3")
    assert (sample.subject, sample.delay_ns) == ("policy-u1-k3", 13_251_000)
    assert path_delay_sample(_probe([1], T0_NS, []), "p") is None


def test_node_names_mapping_callable_and_missing():
    trace = _probe([10, 20], T0_NS, [1_000_000])
    assert hop_delay_samples(trace, {10: "r1", 20: "r2"})[0].subject == "r1->r2"
    assert hop_delay_samples(trace, lambda i: f"n{i}")[0].subject == "n10->n20"
    with pytest.raises(TelemetryValueError, match=r"IOAM node id 20 is missing from node_names; add it"):
        hop_delay_samples(trace, {10: "r1"})
    big = _probe([10, 20000], T0_NS, [1_000_000])
    with pytest.raises(TelemetryValueError, match=r"IOAM node id 20000 is not a site id \(1..9999\)"):
        hop_delay_samples(big)


def test_unavailable_timestamps_and_non_adjacent_hops_are_skipped():
    nodes = (
        _node(1, T0_NS, hop_limit=64),
        IoamNode(hop_limit=63, node_id=2, ts_s=UNAVAILABLE_U32, ts_frac=UNAVAILABLE_U32),
        _node(3, T0_NS + 5_000_000, hop_limit=62),
        _node(4, T0_NS + 7_000_000, hop_limit=61),
    )
    trace = IoamTrace(1, TRACE_TYPE_DELAY, 4, 0, 0, 64, nodes)
    assert [s.subject for s in hop_delay_samples(trace)] == ["r3->r4"]
    assert [s.subject for s in hop_delay_samples(trace, require_adjacent=False)] == ["r1->r3", "r3->r4"]


def test_estimate_matches_direct_statistics():
    rng = random.Random(11)
    samples = [DelaySample("r1->r4", rng.randint(9_000_000, 11_000_000), 100.0 + i * 0.1) for i in range(50)]
    shuffled = samples[:]
    rng.shuffle(shuffled)
    e = estimate_delays(shuffled, now_s=105.0, window_s=10.0)["r1->r4"]
    delays = [s.delay_ns / 1e6 for s in samples]
    assert e.samples == 50
    assert e.delay_ms == pytest.approx(statistics.fmean(delays), abs=1e-6)
    assert e.median_ms == pytest.approx(statistics.median(delays), abs=1e-6)
    assert e.jitter_ms == pytest.approx(statistics.fmean(abs(b - a) for a, b in zip(delays, delays[1:])), abs=1e-6)
    assert e.stdev_ms == pytest.approx(statistics.pstdev(delays), abs=1e-6)
    assert (e.min_ms, e.max_ms) == (min(delays), max(delays))
    assert e.last_sample_s == pytest.approx(104.9) and e.age_s == pytest.approx(0.1)
    assert e.window_s == 10.0


def test_estimate_window_excludes_old_and_future_samples():
    samples = [DelaySample("a->b", 1_000_000, t) for t in (1.0, 5.0, 5.5, 7.0)]
    e = estimate_delays(samples, now_s=6.0, window_s=1.5)["a->b"]
    assert estimate_delays(samples, now_s=6.0, window_s=1.0)["a->b"].samples == 1  # (5.0, 6.0]
    assert e.samples == 2 and e.last_sample_s == 5.5
    assert estimate_delays(samples, now_s=20.0, window_s=1.0) == {}


def test_estimate_groups_by_subject():
    samples = [DelaySample("b->c", 2_000_000, 1.0), DelaySample("a->b", 1_000_000, 1.0)]
    assert list(estimate_delays(samples, 2.0, 5.0)) == ["a->b", "b->c"]


@pytest.mark.parametrize("bad", [0, -1, float("nan")])
def test_bad_window_is_rejected(bad):
    with pytest.raises(TelemetryValueError, match=r"window_s=.* must be a finite number > 0"):
        estimate_delays([], 1.0, bad)


def test_rfc3550_jitter_converges_to_mean_absolute_delay_change():
    j, previous = 0.0, 10.0
    for i in range(400):
        delay = 10.0 + (2.0 if i % 2 else -2.0)
        j = rfc3550_jitter_ms(j, previous, delay)
        previous = delay
    assert j == pytest.approx(4.0, rel=1e-3)


@pytest.mark.parametrize(("delay_ms", "jitter_ms"), [(10.0, 2.0), (2.0, 0.5), (40.0, 5.0)])
def test_per_link_delay_accuracy_from_microsecond_timestamps(delay_ms, jitter_ms):
    rng = random.Random(int(delay_ms * 10))
    samples = []
    for i in range(200):
        start = T0_NS + i * 50_000_000
        d1 = int((delay_ms + rng.uniform(-jitter_ms, jitter_ms)) * 1e6)
        d2 = int((1.0 + rng.uniform(-0.1, 0.1)) * 1e6)
        samples += hop_delay_samples(_probe([1, 2, 3], start, [d1, d2]))
    now_s = (T0_NS + 200 * 50_000_000) / 1e9
    estimates = estimate_delays(samples, now_s, window_s=20.0)
    link = estimates["r1->r2"]
    assert link.samples == 200
    assert abs(link.delay_ms - delay_ms) <= max(0.05 * delay_ms, 0.3)
    # uniform(-j, j): E|X - Y| = 2j/3 for independent draws
    assert link.jitter_ms == pytest.approx(2 * jitter_ms / 3, rel=0.15)
    assert abs(estimates["r2->r3"].delay_ms - 1.0) <= 0.3


# --- alternate-marking delay (RFC 9341 §3.2) ----------------------------------


def test_mean_delay_of_a_lossless_block():
    up = [10.0 + i * 0.001 for i in range(100)]
    down = [t + 0.015 for t in up]
    assert mean_delay_ms(sum(up), sum(down), 100, 100) == pytest.approx(15.0, abs=1e-6)
    assert mean_delay_ms(sum(up), sum(down[:-1]), 100, 99) is None
    assert mean_delay_ms(0.0, 0.0, 0, 0) is None


def test_double_marking_delays_only_for_blocks_seen_at_both_points():
    assert double_marking_delays_ms({1: 1.0, 2: 2.0, 3: 3.0}, {2: 2.0125, 3: 3.001, 4: 9.0}) == {2: 12.5, 3: 1.0}
