"""``cpn market verify FILE``: check a market ledger's hash chain.

Prints ``ok: N entries`` and exits 0 when every entry chains to the one
before it; otherwise prints the first entry at fault, its line and whether it
was altered, removed or moved (:func:`cpn_net.market.ledger.verify_lines`),
and exits 1. Exit 2: the file cannot be read.

Usage::

    python -m cpn_net.market.verify FILE [--head SHA256]

Examples
--------
>>> import os, tempfile
>>> from cpn_net.market.ledger import Ledger
>>> ledger = Ledger(); _ = ledger.append("order", 0.0, {"id": "j1"})
>>> path = os.path.join(tempfile.mkdtemp(), "ledger.jsonl"); ledger.write(path)
>>> main([path])
ok: 1 entries
0
"""

from __future__ import annotations

import argparse
import sys

from cpn_net.market.ledger import verify_file


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cpn market verify",
                                description="Check a market ledger's SHA-256 chain; name the first entry "
                                            "altered, removed or moved.")
    p.add_argument("file", help="the ledger, JSON lines")
    p.add_argument("--head", help="the hash the last entry must have (catches a removed or rewritten tail)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the check; return the exit status (0 ok, 1 damaged, 2 unreadable)."""
    args = parser().parse_args(argv)
    try:
        verdict = verify_file(args.file, head=args.head)
    except OSError as err:
        print(f"{args.file}: cannot read: {err.strerror or err}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as err:
        print(f"{args.file}: line not text ({err.reason}): altered, or not a ledger", file=sys.stdout)
        return 1
    if verdict.ok:
        print(verdict.message)
        return 0
    print(f"{args.file}: {verdict.message}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
