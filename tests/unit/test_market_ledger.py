"""The ledger's hash chain: verify passes an intact file and names the first entry edited, deleted or moved."""

import json
import subprocess
import sys

import pytest

from cpn_net.market import BatchOrder, Ledger, LedgerError, Market, Supply, verify_file, verify_lines
from cpn_net.market.ledger import GENESIS, canonical, entry_hash
from cpn_net.market.verify import main


def sample_ledger(n=8):
    ledger = Ledger()
    for k in range(n):
        ledger.append("measurement", float(k), {"order_id": f"j{k}", "p99_ms": 10.0 + k})
    return ledger


def write(tmp_path, lines):
    path = tmp_path / "ledger.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_lines_are_canonical_json_chained_by_sha256():
    ledger = sample_ledger(3)
    entries = [json.loads(line) for line in ledger.lines]
    for line, entry in zip(ledger.lines, entries):
        assert canonical(entry) == line and entry_hash(entry) == entry["hash"]
    assert [e["seq"] for e in entries] == [0, 1, 2]
    assert entries[0]["prev"] == GENESIS and entries[1]["prev"] == entries[0]["hash"]
    assert ledger.head == entries[-1]["hash"]


def test_an_intact_ledger_verifies(tmp_path):
    verdict = verify_file(write(tmp_path, sample_ledger().lines))
    assert verdict.ok and verdict.entries == 8 and verdict.message == "ok: 8 entries"


def test_an_edited_entry_is_named(tmp_path):
    lines = sample_ledger().lines
    lines[4] = lines[4].replace('"p99_ms":14.0', '"p99_ms":1.0')
    verdict = verify_file(write(tmp_path, lines))
    assert (verdict.ok, verdict.line, verdict.seq, verdict.problem) == (False, 5, 4, "altered")
    assert verdict.message == "line 5: entry 4 altered: its content no longer matches its hash"


def test_an_edit_with_its_hash_recomputed_is_caught_by_the_next_entry():
    lines = sample_ledger().lines
    forged = json.loads(lines[2])
    forged["data"]["p99_ms"] = 0.5
    forged["hash"] = entry_hash(forged)
    lines[2] = canonical(forged)
    verdict = verify_lines(lines)
    assert (verdict.line, verdict.seq, verdict.problem) == (3, 2, "altered")
    assert "entry 3 (line 4) chains to" in verdict.message


def test_a_deleted_entry_is_named():
    lines = sample_ledger().lines
    del lines[5]
    verdict = verify_lines(lines)
    assert (verdict.line, verdict.seq, verdict.problem) == (6, 5, "removed")
    assert verdict.message == "line 6: entry 5 removed: line 6 holds entry 6"
    fresh = sample_ledger().lines
    assert verify_lines(fresh[:3] + fresh[5:]).message == "line 4: entries 3-4 removed: line 4 holds entry 5"


def test_swapped_entries_are_named_as_moved():
    lines = sample_ledger().lines
    lines[2], lines[3] = lines[3], lines[2]
    verdict = verify_lines(lines)
    assert (verdict.line, verdict.seq, verdict.problem) == (3, 2, "moved")
    assert verdict.message == "line 3: entry 2 moved: it is at line 4, and line 3 holds entry 3"


def test_a_duplicated_entry_is_named():
    lines = sample_ledger().lines
    lines.insert(4, lines[1])
    verdict = verify_lines(lines)
    assert (verdict.line, verdict.problem) == (5, "inserted")


def test_garbage_and_a_forged_first_entry_are_altered():
    lines = sample_ledger().lines
    assert verify_lines(lines[:2] + ["not json"] + lines[2:]).message.startswith("line 3: altered: not a ledger")
    first = json.loads(lines[0])
    first["prev"] = "f" * 64
    first["hash"] = entry_hash(first)
    assert verify_lines([canonical(first)] + lines[1:]).message.startswith("line 1: entry 0 altered")


def test_a_removed_tail_needs_the_head():
    ledger = sample_ledger()
    assert verify_lines(ledger.lines[:-2]).ok
    verdict = verify_lines(ledger.lines[:-2], head=ledger.head)
    assert not verdict.ok and verdict.problem == "removed" and "not at head" in verdict.message


def test_ledger_files_resume_their_chain_and_refuse_damage(tmp_path):
    path = tmp_path / "market.jsonl"
    with Ledger.open(path) as ledger:
        ledger.append("order", 0.0, {"id": "a"})
    with Ledger.open(path) as ledger:
        ledger.append_many([("order", 1.0, {"id": "b"}), ("refusal", 1.0, {"id": "b"})])
        head = ledger.head
    verdict = verify_file(path, head=head)
    assert verdict.ok and verdict.entries == 3
    path.write_text(path.read_text().replace('"id":"a"', '"id":"z"'))
    with pytest.raises(LedgerError, match="line 1: entry 0 altered"):
        Ledger.open(path)


def test_append_many_is_all_or_nothing():
    ledger = sample_ledger(2)
    with pytest.raises(ValueError):
        ledger.append_many([("order", 3.0, {"ok": 1}), ("order", 3.0, {"bad": float("nan")})])
    with pytest.raises(LedgerError, match="ledger kind 'bogus'"):
        ledger.append("bogus", 0.0, {})
    assert ledger.count == 2 and len(ledger.lines) == 2 and verify_lines(ledger.lines).ok


def test_a_market_ledger_verifies_and_tampering_is_caught(tmp_path):
    import networkx as nx

    G = nx.Graph()
    G.add_nodes_from([("east", {"id": 1}), ("west", {"id": 2})])
    G.add_edge("east", "west", delay_ms=10.0, rate_mbps=100.0)
    path = tmp_path / "m.jsonl"
    with Ledger.open(path) as ledger:
        market = Market(G, Supply(["east", "west"], [0, 8], [0.002, 0.001]), ledger=ledger)
        for k in range(4):
            market.submit(BatchOrder(f"j{k}", "east", 600.0, 100.0, 3600.0, 0.01, workers=2), 0.0)
    assert verify_file(path).ok
    lines = path.read_text().splitlines()
    placement = next(i for i, line in enumerate(lines) if '"kind":"placement"' in line)
    lines[placement] = lines[placement].replace('"site":"west"', '"site":"east"')
    verdict = verify_lines(lines)
    assert verdict.line == placement + 1 and verdict.problem == "altered"


def test_verify_command_output_and_exit_status(tmp_path, capsys):
    good = write(tmp_path, sample_ledger().lines)
    assert main([str(good)]) == 0 and capsys.readouterr().out == "ok: 8 entries\n"
    lines = sample_ledger().lines
    del lines[1]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    assert main([str(bad)]) == 1
    assert capsys.readouterr().out == f"{bad}: line 2: entry 1 removed: line 2 holds entry 2\n"
    assert main([str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_verify_runs_as_a_module(tmp_path):
    good = write(tmp_path, sample_ledger(2).lines)
    done = subprocess.run([sys.executable, "-m", "cpn_net.market.verify", str(good)], capture_output=True,
                          text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "ok: 2 entries\n")


def test_cpn_market_verify_names_the_first_bad_entry(tmp_path, capsys):
    from cpn_net import cli
    from cpn_net.market.ledger import Ledger

    path = tmp_path / "ledger.jsonl"
    ledger = Ledger.open(str(path))
    for i in range(3):
        ledger.append("order", float(i), {"id": f"o{i}"})
    ledger.close()
    assert cli.main(["market", "verify", str(path)]) == 0
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1].replace('"o1"', '"o9"'), lines[2]]) + "\n")
    assert cli.main(["market", "verify", str(path)]) == 1
    assert "2" in capsys.readouterr().out
