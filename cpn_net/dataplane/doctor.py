"""``cpn doctor [--json] [--dataplane auto|kernel|bpf]``: what this machine can do, and what cpn picks.

Probes the kernel and the tools (:func:`cpn_net.dataplane.probe.run_probe`, a few
seconds, needs root) and prints one row per feature with what cpn uses it for and
what it uses when it is absent, then the data plane, link emulation and OVS
datapath it would choose. Exit status 0 when a data plane fits, 1 when none does
(the message names the fix), 2 for a bad ``$CPN_DATAPLANE``.

Registered in :mod:`cpn_net.cli` with :func:`add_parser`; also runs alone as
``python -m cpn_net.dataplane.doctor``.
"""

from __future__ import annotations

import argparse
import json
import sys

from cpn_net.dataplane import probe

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--dataplane", choices=probe.DATAPLANES, default=None,
                        help=f"check this data plane (default: ${probe.ENV_DATAPLANE}, else auto)")
    parser.set_defaults(func=run)
    return parser


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``doctor`` to the ``cpn`` subcommands (``subparsers`` from ``add_subparsers``).

    >>> parser = argparse.ArgumentParser(prog="cpn")
    >>> _ = add_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["doctor", "--json", "--dataplane", "bpf"])
    >>> args.json, args.dataplane, args.func is run
    (True, 'bpf', True)
    """
    return add_arguments(subparsers.add_parser(
        "doctor", help="what this machine's kernel and tools can do, and the modes cpn picks"))


def run(args) -> int:
    """Probe, print the table (or JSON with ``--json``); 0 when a data plane could be chosen, else 1."""
    try:
        requested = probe.requested_dataplane(getattr(args, "dataplane", None))
    except probe.ProbeError as err:
        print(f"cpn doctor: {err}", file=sys.stderr)
        return EXIT_USAGE
    data = probe.report(probe.run_probe(), requested)
    print(json.dumps(data, indent=2) if args.json else probe.render_table(data))
    if data["dataplane"] is None:
        print(f"cpn doctor: {data['error']}", file=sys.stderr)
        return EXIT_PROBLEM
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="cpn doctor", description=__doc__.splitlines()[0]))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
