"""Order validation: every malformed order names the field and the fix, and reserves nothing."""

import math

import networkx as nx
import pytest

from cpn_net.market import BatchOrder, Market, OrderError, StreamOrder, Supply, order_from_dict
from cpn_net.market.sizing import PAYLOAD_SHARE


def market():
    G = nx.Graph()
    G.add_nodes_from([("east", {"id": 1}), ("west", {"id": 2})])
    G.add_edge("east", "west", delay_ms=10.0, rate_mbps=100.0)
    supply = Supply(["east", "west"], [0, 8], [0.003, 0.001], {"infer": {"west": (8, 10.0)}})
    return Market(G, supply)


def batch(**changes):
    fields = dict(id="j1", source="east", work_worker_s=600.0, input_mb=100.0, deadline_s=3600.0,
                  max_cny_per_worker_s=0.01, result_mb=0.0, workers=2, start_s=None)
    fields.update(changes)
    return BatchOrder(**fields)


def stream(**changes):
    fields = dict(id="s1", service="infer", source="east", rate_rps=100.0, p99_ms=80.0, start_s=100.0,
                  duration_s=600.0, max_cny_per_worker_s=0.01)
    fields.update(changes)
    return StreamOrder(**fields)


def refused_with(order, field, *fixes, now_s=100.0):
    """Submitting ``order`` raises an OrderError whose first problem is ``field``, naming each fix; nothing changes."""
    m = market()
    before, entries = m.book.snapshot(), m.ledger.count
    with pytest.raises(OrderError) as caught:
        m.submit(order, now_s)
    err = caught.value
    assert err.field == field, str(err)
    text = str(err)
    assert f"{field}=" in text
    for fix in fixes:
        assert fix in text, text
    assert m.book.snapshot() == before and m.ledger.count == entries and not m.orders
    return err


@pytest.mark.parametrize("field, value, fix", [
    ("work_worker_s", -5.0, "give the work in worker-seconds, above 0"),
    ("work_worker_s", 0.0, "above 0"),
    ("input_mb", -1.0, "give the input size in MB, 0 or more"),
    ("result_mb", -0.5, "give the result size in MB, 0 or more"),
    ("input_mb", math.nan, "give the input size in MB"),
    ("workers", 0, "give the worker slots to run on in parallel, 1 or more"),
    ("workers", 2.5, "1 or more"),
    ("max_cny_per_worker_s", -1.0, "give the most you pay per worker-second"),
])
def test_negative_or_bad_sizes_name_the_field_and_fix(field, value, fix):
    refused_with(batch(**{field: value}), field, fix)


def test_unknown_site_suggests_the_close_one():
    refused_with(batch(source="esat"), "source", "did you mean 'east'?")
    refused_with(stream(source="nowhere"), "source", "use one of the known sites: east, west")


def test_unknown_service_suggests_the_close_one():
    refused_with(stream(service="infre"), "service", "did you mean 'infer'?")


def test_deadline_in_the_past():
    err = refused_with(batch(deadline_s=50.0), "deadline_s", "give a deadline later than 100", now_s=100.0)
    assert "in the past" in str(err)


def test_deadline_shorter_than_the_fastest_possible_transfer():
    # 1000 MB at the source's fastest link (100 Mbit/s) takes 84.8 s, plus 300 s of work on 2 workers
    fastest = 8000.0 / (100.0 * PAYLOAD_SHARE) + 0.01 + 300.0
    err = refused_with(batch(input_mb=1000.0, deadline_s=100.0 + fastest - 1.0), "deadline_s",
                       "shorter than the fastest possible transfer", "its fastest link (100 Mbit/s)",
                       f"give a deadline of at least {100.0 + fastest:g}")
    assert "send less data or ask for more workers" in str(err)
    market().submit(batch(input_mb=1000.0, deadline_s=100.0 + fastest + 1.0), 100.0)  # just enough is accepted


def test_price_below_the_floor():
    refused_with(batch(max_cny_per_worker_s=0.0005), "max_cny_per_worker_s", "below the market's floor, 0.001",
                 "offer at least 0.001 per worker-second")
    refused_with(stream(max_cny_per_worker_s=0.0005), "max_cny_per_worker_s", "offer at least 0.001")


def test_more_workers_than_any_site_sells():
    refused_with(batch(workers=9), "workers", "largest surplus of any site (8 slots at west)",
                 "ask for at most 8 workers")


def test_start_before_now():
    refused_with(batch(start_s=10.0), "start_s", "give a start of 100 or later")
    refused_with(stream(start_s=10.0), "start_s", "give a start of 100 or later")


def test_stream_bounds():
    refused_with(stream(p99_ms=10.0), "p99_ms", "give a bound above 10 ms")
    refused_with(stream(rate_rps=900.0), "rate_rps", "ask for less than 800 requests/s")
    refused_with(stream(duration_s=0.0), "duration_s", "give how long the stream runs, above 0 s")
    refused_with(stream(request_kb=-1.0), "request_kb", "0 or more")


def test_bad_and_repeated_ids():
    refused_with(batch(id="no spaces"), "id", "give an id of 1-64 letters")
    m = market()
    m.submit(batch(), 100.0)
    with pytest.raises(OrderError, match="id='j1' is already used by another order; give the order a new id"):
        m.submit(batch(), 100.0)


def test_every_problem_is_listed_at_once():
    with pytest.raises(OrderError) as caught:
        market().submit(batch(input_mb=-1.0, source="esat", workers=0), 100.0)
    assert set(caught.value.fields) == {"source", "input_mb", "workers"}
    assert len(str(caught.value).splitlines()) == 3


def test_order_from_dict_round_trips_and_names_unknown_and_missing_keys():
    order = batch()
    assert order_from_dict(order.to_dict()) == order
    assert order_from_dict(stream().to_dict()) == stream()
    with pytest.raises(OrderError) as caught:
        order_from_dict({"kind": "batch", "id": "j9", "source": "east", "deadline": 5})
    text = str(caught.value)
    assert "deadline=5 is not a batch order field; did you mean 'deadline_s'?" in text
    assert "work_worker_s=None is missing" in text
    with pytest.raises(OrderError, match="use kind: batch .* or kind: stream"):
        order_from_dict({"kind": "job"})


def test_a_valid_order_passes():
    m = market()
    assert m.submit(batch(), 100.0).site == "west"
    assert m.submit(stream(start_s=100.0), 100.0).site == "west"
