"""Tests of the flow analysis: hand-made arrival sequences and seeded random flows checked by brute force."""

import json
import random

import numpy as np
import pytest

from cpn_net.tools import ToolsValueError
from cpn_net.tools.outage import (
    analyse, analyse_run, count_reordered, loss_gaps, outage_ms_from_arrivals,
)

MS = 1_000_000


def _flow(seqs, rate_pps=1000, delay_ns=2 * MS, start_ns=0):
    """Arrivals of the given sequence numbers (in this order) sent on an exact schedule."""
    interval = 1_000_000_000 // rate_pps
    return [(s, start_ns + s * interval, start_ns + s * interval + delay_ns) for s in seqs]


def test_clean_flow():
    r = analyse(5, _flow(range(5)), rate_pps=1000)
    assert (r.sent, r.received, r.lost, r.loss_pct) == (5, 5, 0, 0.0)
    assert (r.duplicates, r.reordered, r.gaps) == (0, 0, ())
    assert (r.outage_ms, r.outage_start_ns) == (0.0, None)
    assert r.delay_ms.min_ms == r.delay_ms.median_ms == r.delay_ms.p99_ms == r.delay_ms.max_ms == 2.0
    assert r.jitter_ms == 0.0
    assert r.arrival_outage_ms == 0.0
    assert r.receiver_drops is None


def test_one_gap_in_the_middle_is_dated_from_its_neighbour():
    r = analyse(100, _flow([s for s in range(100) if not 40 <= s < 70], start_ns=10 * MS), rate_pps=1000)
    assert r.gaps == ((40, 30),)
    assert (r.lost, r.loss_pct, r.outage_ms) == (30, 30.0, 30.0)
    assert r.outage_start_ns == 10 * MS + 40 * MS  # when seq 40 was due
    assert r.arrival_outage_ms == 30.0


def test_longest_gap_wins_and_ties_go_to_the_earliest():
    seqs = [s for s in range(20) if s not in {2, 3, 8, 9, 10, 14, 15, 16}]
    r = analyse(20, _flow(seqs), rate_pps=1000)
    assert r.gaps == ((2, 2), (8, 3), (14, 3))
    assert r.outage_ms == 3.0
    assert r.outage_start_ns == 8 * MS


def test_head_loss_is_dated_from_the_first_arrival():
    r = analyse(10, _flow(range(4, 10), start_ns=5 * MS), rate_pps=1000)
    assert r.gaps == ((0, 4),)
    assert r.outage_ms == 4.0
    assert r.outage_start_ns == 5 * MS


def test_tail_loss_counts():
    r = analyse(10, _flow(range(6), rate_pps=500), rate_pps=500)
    assert r.gaps == ((6, 4),)
    assert r.outage_ms == 8.0  # 4 packets at 2 ms each
    assert r.outage_start_ns == 6 * 2 * MS
    assert r.arrival_outage_ms == 0.0  # the receiver cannot see tail loss


def test_nothing_received_is_an_outage_of_the_whole_flow():
    r = analyse(2000, [], rate_pps=1000, start_ns=123)
    assert (r.received, r.lost, r.loss_pct) == (0, 2000, 100.0)
    assert r.gaps == ((0, 2000),)
    assert r.outage_ms == 2000.0
    assert r.outage_start_ns == 123
    assert (r.delay_ms, r.jitter_ms, r.arrival_outage_ms) == (None, None, None)
    assert analyse(10, [], rate_pps=1000).outage_start_ns is None


def test_nothing_sent():
    r = analyse(0, [], rate_pps=1000)
    assert (r.lost, r.loss_pct, r.outage_ms, r.gaps, r.outage_start_ns) == (0, None, 0.0, (), None)


def test_duplicates_are_counted_but_neither_received_twice_nor_timed():
    arrivals = _flow([0, 1, 1, 2, 0])
    arrivals[2] = (1, MS, 500 * MS)  # a late copy must not become the max delay
    r = analyse(3, arrivals, rate_pps=1000)
    assert (r.received, r.lost, r.duplicates, r.reordered) == (3, 0, 2, 0)
    assert r.delay_ms.max_ms == 2.0


@pytest.mark.parametrize("order, expected", [
    ([0, 1, 2, 4, 5, 3, 6], 1),
    ([0, 3, 1, 2], 2),
    ([3, 0, 1, 2], 3),
    ([2, 1, 0], 2),
    ([0, 2, 2, 1, 1], 1),  # duplicates of a reordered packet are not reordered again
    ([1, 3, 5], 0),  # loss alone is not reordering
])
def test_reordering_follows_rfc4737_next_expected(order, expected):
    assert count_reordered(order) == expected
    assert analyse(max(order) + 1, _flow(order), rate_pps=1000).reordered == expected


def test_reordered_arrivals_still_fill_their_gap():
    r = analyse(6, _flow([0, 1, 4, 5, 2, 3]), rate_pps=1000)
    assert (r.lost, r.gaps, r.outage_ms, r.reordered) == (0, (), 0.0, 2)


def test_sender_stall_is_an_arrival_gap_not_an_outage():
    arrivals = [(s, s * MS + (30 * MS if s >= 5 else 0), s * MS + (30 * MS if s >= 5 else 0) + MS)
                for s in range(10)]
    r = analyse(10, arrivals, rate_pps=1000)
    assert (r.lost, r.outage_ms) == (0, 0.0)
    assert r.arrival_outage_ms == 30.0


def test_repair_onto_a_longer_path_lengthens_the_arrival_gap_only():
    # seq 10..14 lost, then the backup path is 20 ms longer
    arrivals = [(s, s * MS, s * MS + (2 * MS if s < 10 else 22 * MS)) for s in range(30) if not 10 <= s < 15]
    r = analyse(30, arrivals, rate_pps=1000)
    assert r.outage_ms == 5.0
    assert r.arrival_outage_ms == 25.0
    assert r.jitter_ms == 0.0  # the step falls across the gap: IPDV pairs consecutive sequence numbers only
    assert (r.delay_ms.min_ms, r.delay_ms.max_ms) == (2.0, 22.0)


def test_jitter_is_the_mean_delay_change_between_consecutive_sequence_numbers():
    delays_ms = {0: 1, 1: 3, 2: 2, 3: 2, 5: 9}  # 4 is lost, so 3 -> 5 is not a pair
    r = analyse(6, [(s, s * MS, s * MS + d * MS) for s, d in delays_ms.items()], rate_pps=1000)
    assert r.jitter_ms == pytest.approx((2 + 1 + 0) / 3)
    assert analyse(3, _flow([0, 2]), rate_pps=1000).jitter_ms is None


def test_fractional_rate():
    r = analyse(9, _flow([0, 1, 5, 6, 7, 8], rate_pps=1000), rate_pps=333.3)
    assert r.outage_ms == pytest.approx(3 * 1000 / 333.3)


def test_arrivals_gap_ignores_order_and_never_goes_negative():
    assert outage_ms_from_arrivals([5 * MS, 0, 1 * MS], rate_pps=1000) == 3.0
    assert outage_ms_from_arrivals([0, MS // 2, MS], rate_pps=1000) == 0.0
    assert outage_ms_from_arrivals([], rate_pps=1000) is None


def test_loss_gaps_accepts_any_order():
    assert loss_gaps(10, [9, 0, 5, 5]) == ((1, 4), (6, 3))


@pytest.mark.parametrize("call, message", [
    (lambda: analyse(5, _flow([0, 5]), 1000),
     "received seq=5 is outside 0..4 (sent=5): the receiver's records do not belong to this sender run, "
     "or the sender summary is cut short"),
    (lambda: analyse(5, [(-1, 0, 0)], 1000),
     "received seq=-1 is outside 0..4 (sent=5): the receiver's records do not belong to this sender run, "
     "or the sender summary is cut short"),
    (lambda: analyse(-1, [], 1000), "sent=-1 must be an integer >= 0 (sequence numbers used)"),
    (lambda: analyse(2.0, [], 1000), "sent=2.0 must be an integer >= 0 (sequence numbers used)"),
    (lambda: analyse(5, [], 0), "rate_pps=0 must be a finite number > 0 (packets per second)"),
    (lambda: analyse(5, [], float("nan")), "rate_pps=nan must be a finite number > 0 (packets per second)"),
    (lambda: analyse(5, [], "1000"), "rate_pps='1000' must be a finite number > 0 (packets per second)"),
    (lambda: analyse(5, [(0, 1)], 1000), "arrival #0=(0, 1) must be (seq, send_ns, recv_ns)"),
    (lambda: analyse(5, [(0, 1, 2), 7], 1000), "arrival #1=7 must be (seq, send_ns, recv_ns)"),
    (lambda: analyse(5, [(0, 1.5, 2)], 1000),
     "arrival #0=(0, 1.5, 2) must hold three integers (seq, send_ns, recv_ns)"),
    (lambda: outage_ms_from_arrivals([0, 1], -5), "rate_pps=-5 must be a finite number > 0 (packets per second)"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ToolsValueError) as info:
        call()
    assert str(info.value) == message


def _brute_force_reordered(order):
    seen, count = [], 0
    for seq in order:
        if seq in seen:
            continue
        count += any(earlier > seq for earlier in seen)
        seen.append(seq)
    return count


@pytest.mark.parametrize("seed", range(25))
def test_random_flows_satisfy_every_invariant(seed):
    rng = random.Random(seed)
    sent = rng.randint(1, 400)
    rate = rng.choice([100, 1000, 2000, 333.3])
    lost = set()
    for _ in range(rng.randint(0, 4)):  # bursts, as a failover makes them
        first = rng.randrange(sent)
        lost.update(range(first, min(sent, first + rng.randint(1, 40))))
    lost.update(s for s in range(sent) if rng.random() < 0.05)
    kept = [s for s in range(sent) if s not in lost]
    for i in range(len(kept) - 1):  # local reordering
        if rng.random() < 0.1:
            kept[i], kept[i + 1] = kept[i + 1], kept[i]
    delays = {s: rng.randint(MS, 5 * MS) for s in kept}
    arrivals = [(s, s * 10 * MS, s * 10 * MS + delays[s]) for s in kept]
    duplicates = rng.randint(0, 5) if kept else 0
    for _ in range(duplicates):
        arrivals.insert(rng.randrange(len(arrivals) + 1), rng.choice(arrivals))

    r = analyse(sent, arrivals, rate)

    assert r.received + r.lost == sent and r.lost == len(lost)
    assert r.duplicates == duplicates
    missing = [s for first, count in r.gaps for s in range(first, first + count)]
    assert missing == sorted(lost)  # gaps cover exactly the lost packets, in order, disjoint
    for first, count in r.gaps:  # and each is maximal
        assert first == 0 or first - 1 not in lost
        assert first + count == sent or first + count not in lost
    longest = max((count for _, count in r.gaps), default=0)
    assert r.outage_ms == pytest.approx(longest * 1000 / rate)
    assert r.reordered == _brute_force_reordered([a[0] for a in arrivals])
    if kept:
        values_ms = [delays[s] / MS for s in kept]
        assert r.delay_ms.min_ms == pytest.approx(min(values_ms))
        assert r.delay_ms.median_ms == pytest.approx(float(np.median(values_ms)))
        assert r.delay_ms.p99_ms == pytest.approx(float(np.percentile(values_ms, 99)))
        assert r.delay_ms.max_ms == pytest.approx(max(values_ms))
        pairs = [abs(delays[s + 1] - delays[s]) / MS for s in sorted(delays) if s + 1 in delays]
        assert r.jitter_ms == (pytest.approx(sum(pairs) / len(pairs)) if pairs else None)
    json.dumps(r.to_dict())


SENDER = {"schema": 1, "role": "send", "flow_id": 1, "sent": 4, "rate_pps": 1000.0, "start_ns": 0}
RECEIVER = {"schema": 1, "role": "recv", "flow_id": 1, "received": [[0, 0, MS], [3, 3 * MS, 4 * MS]],
            "rx_overflow": 2}


def test_analyse_run_reads_the_records():
    r = analyse_run(SENDER, RECEIVER)
    assert (r.sent, r.received, r.gaps, r.outage_ms, r.receiver_drops) == (4, 2, ((1, 2),), 2.0, 2)
    assert analyse_run(SENDER, {k: v for k, v in RECEIVER.items() if k != "rx_overflow"}).receiver_drops is None


@pytest.mark.parametrize("sender, receiver, message", [
    (RECEIVER, RECEIVER, "sender record has role='recv', expected 'send': pass the --out file of `flowgen send`"),
    (SENDER, SENDER, "receiver record has role='send', expected 'recv': pass the --out file of `flowgen recv`"),
    (dict(SENDER, schema=2), RECEIVER,
     "sender record schema=2 is not readable by this version (reads <= 1): upgrade cpn_net"),
    (SENDER, {k: v for k, v in RECEIVER.items() if k != "received"},
     "receiver record lacks key 'received': pass the --out file of `flowgen recv`"),
    (SENDER, dict(RECEIVER, flow_id=9),
     "receiver flow_id=9 differs from sender flow_id=1: pair the records of one flow"),
    ([], RECEIVER, "sender record must be a JSON object, got list"),
])
def test_analyse_run_refuses_mismatched_records(sender, receiver, message):
    with pytest.raises(ToolsValueError) as info:
        analyse_run(sender, receiver)
    assert str(info.value) == message
