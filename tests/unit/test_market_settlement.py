"""Settlement: charges for worker-seconds and reserved bandwidth, SLA credits for misses, the order lifecycle."""

import json

import networkx as nx
import pytest

from cpn_net.market import BatchOrder, LifecycleError, Market, StreamOrder, Supply, UnknownOrderError, settle
from cpn_net.market.ledger import verify_lines
from cpn_net.market.pricing import network_charge_cny
from cpn_net.market.settlement import CREDIT_TIERS, credit_pct


def market():
    G = nx.Graph()
    G.add_nodes_from([("east", {"id": 1}), ("mid", {"id": 2}), ("west", {"id": 3})])
    G.add_edge("east", "mid", delay_ms=5.0, rate_mbps=100.0)
    G.add_edge("mid", "west", delay_ms=5.0, rate_mbps=100.0)
    return Market(G, Supply(["east", "mid", "west"], [0, 0, 8], [0.002, 0.002, 0.001],
                            {"infer": {"west": (8, 10.0)}}))


JOB = BatchOrder("j1", "east", 3600.0, 500.0, 4000.0, 0.01, result_mb=50.0, workers=4)


def test_charges_are_worker_seconds_times_price_plus_reserved_bandwidth():
    m = market()
    placed = m.submit(JOB, 0.0)
    assert placed.worker_s == pytest.approx(3600.0)
    assert placed.compute_cny == pytest.approx(3600.0 * 0.001)
    reserved = sum(h.rate_mbps * (h.end_s - h.start_s) for h in placed.slices)
    assert placed.network_cny == pytest.approx(network_charge_cny(1.0, reserved, 2, m.terms.network_cny_per_mbps_s))
    bill = settle(placed, JOB, completed_s=placed.finish_s, worker_s_used=3000.0)
    assert bill.compute_cny == pytest.approx(3.0) and bill.network_cny == pytest.approx(placed.network_cny)
    assert bill.credit_pct == 0.0 and bill.total_cny == pytest.approx(bill.charge_cny)
    assert settle(placed, JOB, completed_s=1.0, worker_s_used=9999.0).worker_s == placed.worker_s  # capped


@pytest.mark.parametrize("late_share, credit", [(0.0, 0.0), (0.01, 10.0), (0.05, 10.0), (0.2, 25.0), (0.6, 50.0),
                                                (3.0, 50.0)])
def test_batch_credit_tiers(late_share, credit):
    placed = market().submit(JOB, 0.0)
    bill = settle(placed, JOB, completed_s=JOB.deadline_s * (1 + late_share))
    assert bill.credit_pct == credit
    assert bill.credit_cny == pytest.approx(bill.charge_cny * credit / 100)
    assert bill.total_cny == pytest.approx(bill.charge_cny - bill.credit_cny)


def test_a_batch_never_completed_is_credited_in_full():
    placed = market().submit(JOB, 0.0)
    bill = settle(placed, JOB)
    assert (bill.credit_pct, bill.total_cny, bill.note) == (100.0, 0.0, "not completed")


def test_credit_table_is_monotone():
    shares = [0.0, 0.001, 0.05, 0.051, 0.25, 0.26, 1.0]
    credits = [credit_pct(s) for s in shares]
    assert credits == sorted(credits) and credits[-1] == CREDIT_TIERS[-1][1]


def test_stream_credit_counts_measured_intervals_that_missed():
    stream = StreamOrder("s1", "infer", "east", 200.0, 60.0, 0.0, 1000.0, 0.01)
    m = market()
    placed = m.submit(stream, 0.0)
    m.start("s1", 0.0)
    for k, (p99, served) in enumerate([(40, 200), (70, 200), (40, 150), (40, 199)] + [(40, 200)] * 16):
        m.measure("s1", 50.0 * (k + 1), p99_ms=p99, served_rps=served, interval_s=50.0)
    m.complete("s1", 1000.0)
    bill = m.settle("s1", 1000.0)
    assert bill.miss_share == pytest.approx(2 / 20) and bill.credit_pct == 25.0
    assert bill.compute_cny == pytest.approx(placed.worker_s * placed.cny_per_worker_s)


def test_lifecycle_is_recorded_and_early_completion_frees_the_rest():
    m = market()
    placed = m.submit(JOB, 0.0)
    m.start("j1", 0.0)
    m.measure("j1", 100.0, input_mbps=0.9)
    done = placed.compute_end_s - 100.0
    m.complete("j1", done, worker_s_used=3000.0)
    site = m.supply.index["west"]
    assert m.book.sites[site].peak(done, 1e9) == 0 and m.book.sites[site].peak(0.0, done) == 4
    assert all(c.peak(done, 1e9) == 0 for c in m.book.links)
    bill = m.settle("j1", done)
    assert bill.compute_cny == pytest.approx(3.0) and bill.credit_pct == 0.0
    kinds = [json.loads(line)["kind"] for line in m.ledger.lines]
    assert kinds[-5:] == ["start", "measurement", "completion", "offer", "settlement"]
    assert verify_lines(m.ledger.lines).ok


def test_cancel_frees_bookings_from_now():
    m = market()
    before = m.book.snapshot()
    m.submit(JOB, 0.0)
    m.cancel("j1", 0.0, reason="slice could not be installed")
    assert m.book.snapshot() == before and m.status["j1"] == "cancelled"


def test_lifecycle_mistakes_are_named():
    m = market()
    m.submit(JOB, 0.0)
    with pytest.raises(UnknownOrderError, match="no order 'j11' in the market; did you mean 'j1'"):
        m.start("j11", 0.0)
    m.start("j1", 0.0)
    with pytest.raises(LifecycleError, match="order j1 is started: cannot start it"):
        m.start("j1", 1.0)
    with pytest.raises(ValueError, match="p99_ms=nan must be a finite number"):
        m.measure("j1", 1.0, p99_ms=float("nan"))
    m.submit(BatchOrder("dear", "east", 60.0, 1.0, 4000.0, 0.001, workers=8), 0.0)  # refused: price
    with pytest.raises(LifecycleError, match="order dear was refused, not placed"):
        m.placement("dear")
