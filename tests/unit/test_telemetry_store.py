"""Unit tests for cpn_net.telemetry.store (the network view)."""

from __future__ import annotations

import json

import pytest

from cpn_net.telemetry.altmark import BlockCount, block_at, block_losses
from cpn_net.telemetry.delay import DelayEstimate
from cpn_net.telemetry.errors import TelemetryValueError
from cpn_net.telemetry.store import (
    SCHEMA,
    SCHEMA_VERSION,
    LossReading,
    TelemetryStore,
    json_lines,
    write_json_lines,
)

PATH = ["r1-eth1:in", "r1-eth2:out", "r4-eth2:in"]


def _estimate(subject, delay_ms, last_sample_s):
    return DelayEstimate(subject, delay_ms, 0.5, 10, 5.0, 0.0, last_sample_s, delay_ms, delay_ms, delay_ms, 0.2)


def _block_loss(index, packets):
    b = block_at(index, 1.0)
    counts = [
        BlockCount(p, b, n, None if n is None else 100 * n, "missed" if n is None else "")
        for p, n in zip(PATH, packets)
    ]
    return block_losses(PATH, counts)[0]


def test_view_combines_loss_and_delay_with_provenance_and_age():
    store = TelemetryStore()
    assert store.record_block_loss(_block_loss(10, [100, 98, 90]), policy="p1") == 3
    assert store.record_delay("link", _estimate("r1->r4", 10.0, 11.2))
    view = store.view(now_s=12.0)
    link = view.links["r1->r4"]
    assert (link.lost_packets, link.sent_packets, link.loss_pct) == (8, 98, pytest.approx(100 * 8 / 98))
    assert (link.loss_block, link.loss_age_s) == (10, 1.0)  # block 10 ended at 11.0
    assert (link.delay_ms, link.jitter_ms, link.delay_samples, link.delay_age_s) == (10.0, 0.5, 10, pytest.approx(0.8))
    node = view.nodes["r1"]
    assert (node.lost_packets, node.loss_pct, node.delay_ms) == (2, 2.0, None)
    policy = view.policies["p1"]
    assert (policy.lost_packets, policy.sent_packets, policy.loss_pct) == (10, 100, 10.0)


def test_older_blocks_and_older_estimates_do_not_overwrite_newer_ones():
    store = TelemetryStore()
    store.record_block_loss(_block_loss(10, [100, 100, 90]))
    assert store.record_block_loss(_block_loss(8, [100, 100, 100])) == 0
    assert store.record_block_loss(_block_loss(10, [100, 100, 100])) == 0  # duplicate block
    assert store.view(20.0).links["r1->r4"].lost_packets == 10
    assert store.record_block_loss(_block_loss(12, [100, 100, 99])) == 2
    assert store.view(20.0).links["r1->r4"].lost_packets == 1
    store.record_delay("link", _estimate("r1->r4", 10.0, 5.0))
    assert not store.record_delay("link", _estimate("r1->r4", 99.0, 4.0))
    assert store.view(6.0).links["r1->r4"].delay_ms == 10.0


def test_invalid_hops_are_not_stored():
    store = TelemetryStore()
    assert store.record_block_loss(_block_loss(3, [100, None, 90]), policy="p1") == 0
    assert store.view(5.0).elements == ()


def test_to_dict_is_json_ready_with_nulls_for_missing_values():
    store = TelemetryStore()
    store.record_block_loss(_block_loss(10, [100, 98, 90]))
    store.record_delay("policy", _estimate("p1", 20.0, 11.0))
    out = store.view(12.0).to_dict()
    assert (out["schema"], out["schema_version"], out["now_s"]) == (SCHEMA, SCHEMA_VERSION, 12.0)
    assert set(out) == {"schema", "schema_version", "now_s", "links", "nodes", "policies"}
    assert out["policies"]["p1"]["loss_pct"] is None
    assert out["nodes"]["r1"]["delay_ms"] is None
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_kind_is_checked():
    with pytest.raises(TelemetryValueError, match=r"kind='router' must be one of \('link', 'node', 'policy'\)"):
        LossReading("r1", "router", 1, 2.0, 0, 0, None)
    with pytest.raises(TelemetryValueError, match=r"kind=.x. must be one of"):
        TelemetryStore().record_delay("x", _estimate("r1", 1.0, 1.0))


def test_json_lines_are_sorted_compact_and_refuse_nan():
    assert json_lines([{"z": 1, "a": {"c": None, "b": 2.5}}]) == ['{"a":{"b":2.5,"c":null},"z":1}']
    with pytest.raises(TelemetryValueError, match=r"record 1: .*use None for missing values"):
        json_lines([{"ok": 1}, {"delay_ms": float("nan")}])
    with pytest.raises(TelemetryValueError, match=r"record 0: "):
        json_lines([{"when": object()}])


def test_write_json_lines_appends_and_writes_nothing_on_bad_records(tmp_path):
    path = tmp_path / "samples.jsonl"
    assert write_json_lines(path, [{"a": 1}, {"a": 2}]) == 2
    assert write_json_lines(path, [{"a": 3}]) == 1
    with pytest.raises(TelemetryValueError):
        write_json_lines(path, [{"a": 4}, {"a": float("inf")}])
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1}, {"a": 2}, {"a": 3}]
