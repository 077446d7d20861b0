"""The ledger: every market event as one JSON line, each chained to the one before by SHA-256.

An entry is one JSON object on one line::

    {"data": {...}, "hash": "<64 hex>", "kind": "placement", "prev": "<64 hex>", "seq": 7, "time_s": 120.0}

``seq`` counts from 0; ``prev`` is the previous entry's ``hash`` (64 zeros
for the first); ``hash`` is the SHA-256 of the entry's canonical JSON
without ``hash`` (keys sorted, no spaces, :func:`canonical`). Kinds:
``market`` (the terms, first), ``offer``, ``order``, ``placement``,
``refusal``, ``start``, ``measurement``, ``completion``, ``settlement``,
``cancel``.

:func:`verify_lines` walks the chain and names the first entry at fault:

* **altered** — an entry whose content no longer matches its own hash, or a
  rewritten entry whose recomputed hash no longer matches the ``prev`` of the
  entry after it (the earlier of the two is named);
* **removed** — a gap in ``seq`` where the missing entry appears nowhere;
* **moved** — a gap whose missing entry appears further down (two entries
  swapped, or one moved).

A rewrite of the tail from some entry on, with every hash recomputed, or the
removal of the last entries, leaves a valid shorter chain: give the head
hash kept elsewhere (``head=``, ``--head``) to catch those too.

:class:`Ledger` appends; :meth:`Ledger.append_many` writes several entries
in one write, all or none, so an order and its outcome land together.

Examples
--------
>>> ledger = Ledger()
>>> _ = ledger.append("order", 0.0, {"id": "j1"}); _ = ledger.append("placement", 0.0, {"id": "j1"})
>>> verify_lines(ledger.lines).message
'ok: 2 entries'
>>> lines = list(ledger.lines); lines[0] = lines[0].replace('"j1"', '"j2"')
>>> verify_lines(lines).message
'line 1: entry 0 altered: its content no longer matches its hash'
>>> verify_lines(ledger.lines[1:]).message
'line 1: entry 0 removed: line 1 holds entry 1'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, TextIO

from cpn_net.market.errors import LedgerError

GENESIS = "0" * 64
KINDS = ("market", "offer", "order", "placement", "refusal", "start", "measurement", "completion",
         "settlement", "cancel")
_HEX = re.compile(r"[0-9a-f]{64}")
_FIELDS = ("data", "kind", "prev", "seq", "time_s")


def canonical(value: Any) -> str:
    """The one JSON text of a value the chain hashes: keys sorted, no spaces, no NaN.

    Examples
    --------
    >>> canonical({"b": 1, "a": [1.5, None]})
    '{"a":[1.5,null],"b":1}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def entry_hash(entry: dict) -> str:
    """SHA-256 (hex) of an entry's canonical JSON without its ``hash``."""
    return hashlib.sha256(canonical({k: entry[k] for k in _FIELDS}).encode()).hexdigest()


class Ledger:
    """An append-only hash chain, in memory or appended to a JSON-lines file.

    Parameters
    ----------
    sink : file object, optional
        Text stream each batch of lines is written to (and flushed); None
        keeps the lines in :attr:`lines`.

    Attributes
    ----------
    head : str
        Hash of the last entry (64 zeros when empty).
    count : int
        Entries appended so far (including those found in a resumed file).
    """

    def __init__(self, sink: TextIO | None = None, *, head: str = GENESIS, count: int = 0):
        self.sink = sink
        self.lines: list[str] | None = [] if sink is None else None
        self.head = head
        self.count = count

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Ledger":
        """Append to the ledger file ``path``, continuing its chain (created if missing).

        Raises
        ------
        LedgerError
            If the existing file does not verify: a ledger is never continued past damage.
        """
        head, count = GENESIS, 0
        if os.path.exists(path):
            verdict = verify_file(path)
            if not verdict.ok:
                raise LedgerError(f"{os.fspath(path)}: {verdict.message}; keep it as evidence and start a new ledger")
            head, count = verdict.head, verdict.entries
        return cls(open(path, "a", encoding="utf-8"), head=head, count=count)  # noqa: SIM115 - closed by close()

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def append(self, kind: str, time_s: float, data: dict) -> dict:
        """Append one entry; return it (with ``seq``, ``prev`` and ``hash``)."""
        return self.append_many([(kind, time_s, data)])[0]

    def append_many(self, items: Iterable[tuple[str, float, dict]]) -> list[dict]:
        """Append several entries with one write: all of them, or (if anything raises) none.

        Raises
        ------
        LedgerError
            For an unknown kind; ValueError for data JSON cannot hold (NaN, inf).
        """
        entries, lines = [], []
        head, seq = self.head, self.count
        for kind, time_s, data in items:
            if kind not in KINDS:
                raise LedgerError(f"ledger kind {kind!r} is not one of {', '.join(KINDS)}")
            entry = {"data": data, "kind": kind, "prev": head, "seq": seq, "time_s": float(time_s)}
            # One encoding of the data serves the hash and the line: keys sort as
            # data, hash, kind, prev, seq, time_s, so the hash slots in after data.
            body = canonical(data)
            rest = canonical({"kind": kind, "prev": head, "seq": seq, "time_s": entry["time_s"]})[1:]
            entry["hash"] = head = hashlib.sha256(f'{{"data":{body},{rest}'.encode()).hexdigest()
            entries.append(entry)
            lines.append(f'{{"data":{body},"hash":"{head}",{rest}')
            seq += 1
        if not entries:
            return []
        if self.sink is None:
            self.lines.extend(lines)
        else:
            self.sink.write("\n".join(lines) + "\n")
            self.sink.flush()
        self.head, self.count = head, seq
        return entries

    def write(self, path: str | os.PathLike) -> None:
        """Write an in-memory ledger to ``path`` (JSON lines)."""
        if self.lines is None:
            raise LedgerError("this ledger is written to its file as it goes; nothing to write")
        with open(path, "w", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in self.lines)


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying a ledger.

    Attributes
    ----------
    ok : bool
    entries : int
        Entries read (all of them when ``ok``).
    head : str
        Hash of the last good entry.
    line : int or None
        1-based line of the first bad entry.
    seq : int or None
        The ``seq`` of the entry named.
    problem : {"altered", "removed", "moved", "inserted"} or None
    message : str
        ``ok: N entries`` or what is wrong where.
    """

    ok: bool
    entries: int
    head: str
    line: int | None = None
    seq: int | None = None
    problem: str | None = None
    message: str = ""


def _parse(line: str) -> dict | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or set(entry) != {*_FIELDS, "hash"}:
        return None
    seq = entry["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        return None
    if not all(isinstance(entry[k], str) and _HEX.fullmatch(entry[k]) for k in ("prev", "hash")):
        return None
    if not isinstance(entry["kind"], str) or not isinstance(entry["data"], dict):
        return None
    if isinstance(entry["time_s"], bool) or not isinstance(entry["time_s"], (int, float)):
        return None
    return entry


def _intact(entry: dict) -> bool:
    try:
        return entry_hash(entry) == entry["hash"]
    except ValueError:
        return False


def verify_lines(lines: Iterable[str], *, head: str | None = None) -> Verdict:
    """Check a ledger's lines; see the module docstring for what each finding means.

    Parameters
    ----------
    lines : iterable of str
        The file's lines (a final newline is fine).
    head : str, optional
        The hash the last entry must have.

    Returns
    -------
    Verdict
    """
    raw = [line.rstrip("\n") for line in lines]
    if raw and raw[-1] == "":
        raw.pop()
    parsed = [_parse(line) for line in raw]
    intact = [entry is not None and _intact(entry) for entry in parsed]
    first_line_of: dict[int, int] = {}
    for n, entry in enumerate(parsed, 1):
        if intact[n - 1]:
            first_line_of.setdefault(entry["seq"], n)
    expected, prev = 0, GENESIS
    for n, entry in enumerate(parsed, 1):
        if entry is None:
            return Verdict(False, n - 1, prev, n, None, "altered",
                           f"line {n}: altered: not a ledger entry (expected entry {expected})")
        seq = entry["seq"]
        if not intact[n - 1]:
            return Verdict(False, n - 1, prev, n, seq, "altered",
                           f"line {n}: entry {seq} altered: its content no longer matches its hash")
        if seq == expected:
            if entry["prev"] != prev:
                if n == 1:
                    return Verdict(False, 0, GENESIS, 1, seq, "altered",
                                   "line 1: entry 0 altered: it does not start the chain")
                return Verdict(False, n - 2, prev, n - 1, seq - 1, "altered",
                               f"line {n - 1}: entry {seq - 1} altered: rewritten, its hash is not the one "
                               f"entry {seq} (line {n}) chains to")
            expected, prev = expected + 1, entry["hash"]
            continue
        if seq > expected:
            found = first_line_of.get(expected)
            if found is not None and found > n:
                return Verdict(False, n - 1, prev, n, expected, "moved",
                               f"line {n}: entry {expected} moved: it is at line {found}, and line {n} holds "
                               f"entry {seq}")
            gone = f"entry {expected}" if seq == expected + 1 else f"entries {expected}-{seq - 1}"
            return Verdict(False, n - 1, prev, n, expected, "removed",
                           f"line {n}: {gone} removed: line {n} holds entry {seq}")
        return Verdict(False, n - 1, prev, n, seq, "inserted",
                       f"line {n}: entry {seq} inserted: a copy of the entry at line {first_line_of.get(seq)}")
    if head is not None and prev != head:
        last = len(parsed)
        return Verdict(False, last, prev, last or None, expected - 1 if last else None, "removed",
                       f"line {last}: the chain ends at entry {expected - 1}, not at head {head[:12]}...: "
                       "entries after it were removed or rewritten")
    return Verdict(True, len(parsed), prev, message=f"ok: {len(parsed)} entries")


def verify_file(path: str | os.PathLike, *, head: str | None = None) -> Verdict:
    """:func:`verify_lines` over a JSON-lines file.

    Raises
    ------
    OSError
        If the file cannot be read.
    """
    with open(path, encoding="utf-8") as f:
        return verify_lines(f, head=head)
