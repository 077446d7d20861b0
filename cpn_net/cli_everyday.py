"""Everyday ``cpn`` commands on a running network: ``exec``, ``steering``, ``services``, ``map``, ``version``.

::

    cpn exec NODE [-- CMD...]      run CMD in the node's namespace (cpn-<node>); no CMD: a shell there
    cpn steering [show] [--json]   compute-aware steering: policy, preferred instance and split per client site
    cpn steering set POLICY        switch the selector's policy (joint, nearest, least-loaded, ...)
    cpn services [--json]          service instances: site, load, health, price
    cpn map                        the URL of the controller's map page, and whether the network runs
    cpn version [--json]           cpn_net, git commit, Python, kernel, os-ken; the running network's modes

``exec`` follows Mininet's CLI (``u1-1 ping k3-1``) and containerlab's
``exec``: the exit code is the command's own (128 + N when signal N ended it),
and Ctrl-C goes to the command, not to ``cpn``. Switches are Open vSwitch
bridges in the root namespace, so on a switch the command runs there, as
Mininet does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from importlib import metadata

import cpn_net
from cpn_net.emulation import manifest as manifest_io
from cpn_net.model import addressing
from cpn_net.steering import Joint, LeastLoaded, Nearest, Oracle, RandomChoice, RoundRobin

EXIT_OK, EXIT_PROBLEM = 0, 1
#: The selector's policies, named by the steering classes themselves (what ``PUT /steering`` accepts).
STEERING_POLICIES = tuple(policy.name for policy in (Joint, Nearest, LeastLoaded, RoundRobin, RandomChoice, Oracle))
NETNS_DIR = "/run/netns"  # where `ip netns` keeps named namespaces
KIND_TITLES = (("client", "clients"), ("compute", "compute"), ("router", "routers"), ("switch", "switches"),
               ("link", "link elements"))
RECENT_CHANGES = 5
VERSION_PACKAGES = ("os-ken", "mininet", "pyroute2", "scapy")


# ------------------------------------------------------------ the network
def running_network(run_dir: str | None = None) -> tuple[dict | None, str | None]:
    """The running network's manifest, or None and why there is none (a message with the fix).

    Examples
    --------
    >>> import tempfile
    >>> manifest, why = running_network(tempfile.mkdtemp())
    >>> manifest, why.startswith("no cpn network is running (no manifest in ")
    (None, True)
    """
    from cpn_net.emulation.cleanup import pid_alive

    run_dir = manifest_io.RUN_DIR if run_dir is None else run_dir
    manifest = manifest_io.read_json(os.path.join(run_dir, "manifest.json"))
    if not manifest:
        return None, f"no cpn network is running (no manifest in {run_dir}); start one with `sudo cpn up FILE`"
    pid = (manifest.get("processes") or {}).get("daemon")
    if not pid or not pid_alive(pid):
        return None, (f"no cpn network is running: the one in {run_dir} lost its daemon (PID {pid}); "
                      "`sudo cpn clean` removes what it left, `sudo cpn up FILE` starts a new one")
    return manifest, None


def _natural(name: str) -> list:
    """Sort key putting r2 before r10.

    >>> sorted(["r10", "r2", "k1-10", "k1-2"], key=_natural)
    ['k1-2', 'k1-10', 'r2', 'r10']
    """
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def node_listing(nodes: list[dict]) -> str:
    """Node names grouped by kind, for error messages.

    Examples
    --------
    >>> node_listing([{"name": "r10", "kind": "router"}, {"name": "u1-1", "kind": "client"},
    ...               {"name": "r2", "kind": "router"}])
    'clients u1-1; routers r2 r10'
    """
    groups = []
    for kind, title in KIND_TITLES:
        names = sorted((n["name"] for n in nodes if n.get("kind") == kind), key=_natural)
        if names:
            groups.append(f"{title} {' '.join(names)}")
    return "; ".join(groups)


# ------------------------------------------------------------------ exec
def exec_argv(node: dict, command: list[str]) -> list[str]:
    """The argv that runs ``command`` inside ``node``'s namespace.

    Examples
    --------
    >>> exec_argv({"name": "u1-1", "kind": "client"}, ["ping", "-c1", "2001:db8:2::2:1"])
    ['ip', 'netns', 'exec', 'cpn-u1-1', 'ping', '-c1', '2001:db8:2::2:1']
    >>> exec_argv({"name": "s1", "kind": "switch"}, ["ovs-ofctl", "dump-flows", "s1"])
    ['ovs-ofctl', 'dump-flows', 's1']
    """
    if node["kind"] == "switch":  # an OVS bridge: lives in the root namespace
        return list(command)
    return ["ip", "netns", "exec", addressing.namespace(node["name"]), *command]


def exit_code(returncode: int) -> int:
    """A child's exit status as a shell reports it: 128 + N when signal N ended it.

    >>> exit_code(3), exit_code(-2)
    (3, 130)
    """
    return 128 - returncode if returncode < 0 else returncode


def cmd_exec(args) -> int:
    from cpn_net.cli import _need_root

    _need_root("exec")
    manifest, why = running_network()
    if manifest is None:
        print(f"cpn exec: {why}", file=sys.stderr)
        return EXIT_PROBLEM
    nodes = manifest["plan"]["nodes"]
    node = next((n for n in nodes if n["name"] == args.node), None)
    if node is None:
        print(f"cpn exec: no node named {args.node!r} in the running network ({manifest['plan']['topology']}); "
              f"nodes: {node_listing(nodes)}", file=sys.stderr)
        return EXIT_PROBLEM
    namespace = addressing.namespace(node["name"])
    if node["kind"] != "switch" and not os.path.exists(os.path.join(NETNS_DIR, namespace)):
        print(f"cpn exec: node {node['name']}'s namespace {namespace} does not exist ({NETNS_DIR}/{namespace}); "
              "the network may be stopping or have crashed: see `cpn status`", file=sys.stderr)
        return EXIT_PROBLEM
    command = list(args.cmd) or [os.environ.get("SHELL") or "/bin/bash"]
    if not args.cmd:
        where = "the root namespace (a switch)" if node["kind"] == "switch" else f"namespace {namespace}"
        print(f"cpn exec: {command[0]} in {node['name']}'s {where}; `exit` leaves it", file=sys.stderr)
    return run_in_foreground(exec_argv(node, command))


def run_in_foreground(argv: list[str]) -> int:
    """Run ``argv`` attached to this terminal; its exit code, Ctrl-C left to it.

    While it runs, SIGINT does nothing in ``cpn`` (a Python handler, which the
    child does not inherit, unlike SIG_IGN): the terminal sends Ctrl-C to the
    whole foreground group, so ``ping`` prints its summary and its exit code
    still comes back through us.
    """
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        return exit_code(subprocess.run(argv).returncode)
    except FileNotFoundError as err:
        print(f"cpn exec: {err.filename or argv[0]}: command not found", file=sys.stderr)
        return 127
    finally:
        signal.signal(signal.SIGINT, previous)


# -------------------------------------------------------------- steering
def cmd_steering(args) -> int:
    from cpn_net.cli import _northbound
    from cpn_net.northbound_client import NorthboundError

    action = args.steering_command or "show"
    try:
        client = _northbound()
        view = client.set_steering_policy(args.policy) if action == "set" else client.steering()
    except NorthboundError as err:
        print(f"cpn steering {action}: {err}", file=sys.stderr)
        return EXIT_PROBLEM
    print(json.dumps(view, indent=1) if args.json else format_steering(view))
    return EXIT_OK


def _split_text(split) -> str:
    """``[["k1-1", 70], ["k2-1", 30]]`` as ``k1-1 70%, k2-1 30%``."""
    return ", ".join(f"{name} {share}%" for name, share in split or []) or "-"


def _percent(fraction) -> str:
    return "-" if fraction is None else f"{100.0 * fraction:.0f}"


def _shown(value) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _healthy(value) -> str:
    return "-" if value is None else "yes" if value else "NO"


def format_steering(view: dict) -> str:
    """The selector's state: policy and counters, preferred instance per client site and service, instances.

    Examples
    --------
    >>> print(format_steering({"policy": "joint", "period_s": 1.0, "reports": 40, "decisions": 12, "flips": 1,
    ...     "failovers": 0, "preferred": [{"site": "east", "service": "echo", "instance": "k1-1",
    ...                                    "split": [["k1-1", 70], ["k2-1", 30]]}],
    ...     "instances": [{"instance": "k1-1", "site": "east", "service": "echo", "healthy": True,
    ...                    "utilisation": 0.25, "queue_len": 0, "metrics_age_s": 0.4}],
    ...     "timeline": []}))
    steering policy: joint (period 1 s; 40 metrics reports, 12 decisions, 1 flips, 0 failovers)
    <BLANKLINE>
    site  service  preferred  split
    ----  -------  ---------  ------------------
    east  echo     k1-1       k1-1 70%, k2-1 30%
    <BLANKLINE>
    instance  site  service  healthy  util_pct  queue  metrics_age_s
    --------  ----  -------  -------  --------  -----  -------------
    k1-1      east  echo     yes      25        0      0.4
    """
    from cpn_net.cli import _table

    period = view.get("period_s")
    counters = ", ".join(f"{_shown(view.get(key))} {label}" for key, label in (
        ("reports", "metrics reports"), ("decisions", "decisions"), ("flips", "flips"), ("failovers", "failovers")))
    period_text = f"period {period:g} s; " if period is not None else ""
    parts = [f"steering policy: {view.get('policy', '?')} ({period_text}{counters})", ""]
    preferred = view.get("preferred") or []
    if preferred:
        parts.append(_table(["site", "service", "preferred", "split"],
                            [[p.get("site"), p.get("service"), p.get("instance") or "none",
                              _split_text(p.get("split"))] for p in preferred]))
    else:
        parts.append("no decisions yet (the selector decides once per period)")
    instances = view.get("instances") or []
    parts.append("")
    if instances:
        parts.append(_table(["instance", "site", "service", "healthy", "util_pct", "queue", "metrics_age_s"],
                            [[i.get("instance"), i.get("site"), i.get("service"), _healthy(i.get("healthy")),
                              _percent(i.get("utilisation")), _shown(i.get("queue_len")),
                              _shown(i.get("metrics_age_s"))] for i in instances]))
    else:
        parts.append("no service instances")
    timeline = view.get("timeline") or []
    if timeline:
        parts += ["", f"recent changes (last {min(RECENT_CHANGES, len(timeline))} of {len(timeline)}):"]
        parts += [f"  {_change_text(change)}" for change in timeline[-RECENT_CHANGES:]]
    return "\n".join(parts)


def _change_text(change: dict) -> str:
    """One timeline entry.

    >>> _change_text({"at": 0.0, "site": "east", "service": "echo", "instance": "k2-1",
    ...               "split": [["k2-1", 100]], "expected_response_ms": 12.345, "reason": "joint"})
    '00:00:00 UTC  east echo -> k2-1 (k2-1 100%), expected 12.3 ms, joint'
    """
    at = change.get("at")
    when = time.strftime("%H:%M:%S UTC", time.gmtime(at)) if isinstance(at, (int, float)) else "?"
    expected = change.get("expected_response_ms")
    text = f"{when}  {change.get('site')} {change.get('service')} -> {change.get('instance') or 'none'} " \
           f"({_split_text(change.get('split'))})"
    if isinstance(expected, (int, float)):
        text += f", expected {expected:.1f} ms"
    return text + (f", {change['reason']}" if change.get("reason") else "")


# -------------------------------------------------------------- services
def cmd_services(args) -> int:
    from cpn_net.cli import _northbound
    from cpn_net.northbound_client import NorthboundError

    try:
        view = _northbound().steering()
    except NorthboundError as err:
        print(f"cpn services: {err}", file=sys.stderr)
        return EXIT_PROBLEM
    manifest = manifest_io.read_json(os.path.join(manifest_io.RUN_DIR, "manifest.json")) or {}
    rows = service_rows(view, manifest.get("topology") or {})
    print(json.dumps(rows, indent=1) if args.json else format_services(rows))
    return EXIT_OK


def service_rows(view: dict, topology: dict) -> list[dict]:
    """GET /steering's instances with the topology's compute figures and the sites preferring each.

    ``price_cny_per_hour``, ``workers`` and ``capacity_rps`` come from the
    topology the network was booted from (None when it does not say).

    Examples
    --------
    >>> rows = service_rows(
    ...     {"instances": [{"instance": "k1-1", "site": "east", "service": "echo", "healthy": True,
    ...                     "utilisation": 0.5, "queue_len": 2, "metrics_age_s": 0.1}],
    ...      "preferred": [{"site": "west", "service": "echo", "instance": "k1-1"}]},
    ...     {"sites": [{"compute": [{"name": "k1-1", "workers": 4, "capacity_rps": 400.0,
    ...                              "price_cny_per_hour": 2.5}]}]})
    >>> rows[0]["price_cny_per_hour"], rows[0]["capacity_rps"], rows[0]["preferred_by"]
    (2.5, 400.0, ['west'])
    """
    compute = {k["name"]: k for site in topology.get("sites") or [] for k in site.get("compute") or []}
    rows = []
    for instance in view.get("instances") or []:
        name = instance.get("instance")
        host = compute.get(name, {})
        preferred_by = sorted(p.get("site") for p in view.get("preferred") or []
                              if p.get("instance") == name and p.get("service") == instance.get("service"))
        rows.append({**instance, "workers": host.get("workers"), "capacity_rps": host.get("capacity_rps"),
                     "price_cny_per_hour": host.get("price_cny_per_hour"), "preferred_by": preferred_by})
    return rows


def format_services(rows: list[dict]) -> str:
    """One row per service instance.

    Examples
    --------
    >>> print(format_services([{"instance": "k1-1", "site": "east", "service": "echo", "healthy": False,
    ...     "utilisation": 0.5, "queue_len": 2, "metrics_age_s": 3.2, "workers": 4, "capacity_rps": 400.0,
    ...     "price_cny_per_hour": None, "preferred_by": []}]))
    instance  site  service  healthy  util_pct  queue  workers  capacity_rps  price_cny_per_hour  preferred_by
    --------  ----  -------  -------  --------  -----  -------  ------------  ------------------  ------------
    k1-1      east  echo     NO       50        2      4        400           -                   -
    """
    from cpn_net.cli import _table

    if not rows:
        return "no service instances"
    return _table(["instance", "site", "service", "healthy", "util_pct", "queue", "workers", "capacity_rps",
                   "price_cny_per_hour", "preferred_by"],
                  [[r.get("instance"), r.get("site"), r.get("service"), _healthy(r.get("healthy")),
                    _percent(r.get("utilisation")), _shown(r.get("queue_len")), _shown(r.get("workers")),
                    _shown(r.get("capacity_rps")), _shown(r.get("price_cny_per_hour")),
                    ",".join(r.get("preferred_by") or []) or "-"] for r in rows])


# ------------------------------------------------------------------- map
def cmd_map(args) -> int:
    from cpn_net.northbound_client import DEFAULT_URL

    manifest, why = running_network()
    if manifest is None:
        print(f"{DEFAULT_URL}/map")
        print(f"cpn map: {why}", file=sys.stderr)
        return EXIT_PROBLEM
    url = (manifest.get("rest_url") or DEFAULT_URL).rstrip("/")
    port = urllib.parse.urlsplit(url).port or 80
    print(f"{url}/map")
    print(f"network {manifest['plan']['topology']} is running (run {manifest.get('run_id')}); open the URL in a "
          f"browser here, or from another machine through `ssh -L {port}:127.0.0.1:{port} THIS-HOST`",
          file=sys.stderr)
    return EXIT_OK


# --------------------------------------------------------------- version
def git_commit(root: str) -> str | None:
    """``root``'s checked-out commit (12 digits, ``-dirty`` with uncommitted changes); None outside a checkout."""
    if not os.path.exists(os.path.join(root, ".git")):
        return None
    git = ["git", "-c", f"safe.directory={root}", "-C", root]  # root may own the checkout or not
    try:
        head = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0 or not head.stdout.strip():
            return None
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("-dirty" if dirty else "")


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def version_info() -> dict:
    """What ``cpn version`` reports, as data."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(cpn_net.__file__)))
    manifest, why = running_network()
    network = None
    if manifest is not None:
        network = {"topology": manifest["plan"]["topology"], "run_id": manifest.get("run_id"),
                   "srv6_dataplane": manifest.get("dataplane"), "link_emulation_mode": manifest.get("link_mode"),
                   "ovs_datapath": manifest.get("ovs_datapath"), "rest_url": manifest.get("rest_url")}
    return {"cpn_net": cpn_net.__version__, "git_commit": git_commit(root), "source": root,
            "python": platform.python_version(), "python_executable": sys.executable,
            "kernel": platform.release(), "machine": platform.machine(),
            "packages": {name: _package_version(name) for name in VERSION_PACKAGES},
            "network": network, "network_note": why}


def format_version(info: dict) -> str:
    """``cpn version`` as text.

    Examples
    --------
    >>> print(format_version({"cpn_net": "0.1.0", "git_commit": "11171b0a6c1b", "source": "/src",
    ...     "python": "3.11.2", "python_executable": "/src/.venv/bin/python", "kernel": "6.1.0", "machine": "x86_64",
    ...     "packages": {"os-ken": "4.2.2", "mininet": None}, "network": None, "network_note": "none running"}))
    cpn_net 0.1.0 (git 11171b0a6c1b, /src)
    Python  3.11.2 (/src/.venv/bin/python)
    kernel  6.1.0 x86_64
    os-ken 4.2.2, mininet not installed
    network: none running
    """
    commit = f"git {info['git_commit']}" if info.get("git_commit") else "not a git checkout"
    packages = ", ".join(f"{name} {version or 'not installed'}" for name, version in info["packages"].items())
    network = info.get("network")
    if network:
        running = (f"network: {network['topology']} running (run {network['run_id']}): SRv6 data plane "
                   f"{network['srv6_dataplane'] or '?'}, link emulation {network['link_emulation_mode'] or '?'}, "
                   f"OVS datapath {network['ovs_datapath'] or '?'}")
    else:
        running = f"network: {info.get('network_note') or 'none running'}"
    return "\n".join([f"cpn_net {info['cpn_net']} ({commit}, {info['source']})",
                      f"Python  {info['python']} ({info['python_executable']})",
                      f"kernel  {info['kernel']} {info['machine']}", packages, running])


def cmd_version(args) -> int:
    info = version_info()
    print(json.dumps(info, indent=1) if args.json else format_version(info))
    return EXIT_OK


# ---------------------------------------------------------------- parser
def add_parsers(sub) -> None:
    """Add ``exec``, ``steering``, ``services``, ``map`` and ``version`` to the ``cpn`` subcommands.

    >>> parser = argparse.ArgumentParser(prog="cpn")
    >>> add_parsers(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["exec", "u1-1", "--", "ping", "-c1", "2001:db8:2::2:1"])
    >>> args.node, args.cmd, args.func is cmd_exec
    ('u1-1', ['ping', '-c1', '2001:db8:2::2:1'], True)
    >>> args = parser.parse_args(["steering"])
    >>> args.steering_command, args.json
    (None, False)
    """
    p = sub.add_parser("exec", help="run a command in a node's namespace (no command: a shell there)",
                       usage="cpn exec [-h] NODE [-- CMD [ARG ...]]",
                       description="Run CMD in NODE's network namespace (cpn-NODE); the exit code is CMD's. "
                                   "Without CMD, an interactive shell ($SHELL, else /bin/bash).")
    p.add_argument("node", help="node name: u1-1, k3-1, r2, l1x2 ... (`cpn status` lists them)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD", help="the command and its arguments")
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("steering", help="compute-aware steering: show the selector's state, or switch its policy")
    p.add_argument("--json", action="store_true", help="the controller's JSON answer")
    p.set_defaults(func=cmd_steering, steering_command=None)
    steering_sub = p.add_subparsers(dest="steering_command")
    q = steering_sub.add_parser("show", help="policy, preferred instance and split per client site and service "
                                             "(the default)")
    q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="the controller's JSON answer")
    q = steering_sub.add_parser("set", help="switch the selector's policy for new flows, then show the new state")
    q.add_argument("policy", choices=STEERING_POLICIES)
    q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="the controller's JSON answer")

    p = sub.add_parser("services", help="service instances: site, load, health, price")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_services)

    p = sub.add_parser("map", help="the URL of the controller's map page, and whether the network is running")
    p.set_defaults(func=cmd_map)

    p = sub.add_parser("version", help="cpn_net, git commit, Python, kernel, os-ken; the running network's modes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_version)
