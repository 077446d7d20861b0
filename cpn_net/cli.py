"""The ``cpn`` command line.

::

    cpn check FILE                 validate a topology, print a summary (exit 1 + problems if bad)
    cpn up FILE [--detach]         boot network + controller; --detach returns once reachable
    cpn status [--json]            nodes, links (configured + ground-truth counters), controller
    cpn link set A B [--delay-ms X] [--jitter-ms J] [--loss-pct Y] [--rate-mbps Z|--unshaped] [--down|--up]
    cpn policy list|add|del        SR policies on the running network (the controller's REST API)
    cpn slice list|add|del|status  network slices: admission, paths, SLO monitoring (the REST API)
    cpn telemetry [--json]         per-link delay/jitter (IOAM) and loss (alternate marking) vs ground truth
    cpn exec NODE [-- CMD...]      run a command in a node's namespace (no command: a shell there)
    cpn steering [show|set POLICY] compute-aware steering: preferred instances, splits; switch the policy
    cpn services [--json]          service instances: site, load, health, price
    cpn map                        URL of the controller's map page
    cpn version [--json]           versions (cpn_net, git, Python, kernel, os-ken) and the running network's modes
    cpn down                       tear the running network down
    cpn clean                      remove leftovers of crashed runs (only ours)
    cpn controller                 run the os-ken controller alone (normally started by ``cpn up``)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time

from cpn_net import cli_everyday
from cpn_net.dataplane import doctor
from cpn_net.emulation import manifest as manifest_io
from cpn_net.model.schema import SLICE_KINDS

DATAPLANES = ("auto", "kernel", "bpf")

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def _progress_printer(stream=sys.stdout):
    start = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - start:6.1f}s] {message}", file=stream, flush=True)

    return progress


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise SystemExit(f"cpn {what}: needs root (network namespaces, Open vSwitch); run it with sudo")


def _load(path: str):
    from cpn_net.model import TopologyError, load_topology

    try:
        return load_topology(path)
    except TopologyError as err:
        print(str(err), file=sys.stderr)
        raise SystemExit(EXIT_PROBLEM) from None


# ---------------------------------------------------------------- commands
def cmd_check(args) -> int:
    from cpn_net.model import summarize

    from cpn_net.emulation.fidelity import capacity_warnings

    topology = _load(args.file)
    print(summarize(topology))
    for warning in capacity_warnings(topology):  # where the kernel has netem, netem shapes instead
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_up(args) -> int:
    _need_root("up")
    topology = _load(args.file)  # bad input fails here, before anything is touched
    if args.detach:
        return _up_detached(args)
    return _up_foreground(args, topology)


def _up_foreground(args, topology) -> int:
    from cpn_net.emulation.daemon import ControlServer
    from cpn_net.emulation.network import EmulatedNetwork

    progress = _progress_printer()
    network = EmulatedNetwork(topology, ofp_port=args.ofp_port, rest_port=args.rest_port, frr=not args.no_frr,
                              seed=args.seed, progress=progress, dataplane=args.dataplane)
    server = None

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        network.start(verify=not args.no_verify)
        server = ControlServer(network, network.run_dir)
        server.start()
        progress(f"ready in {network.timings.get('reachability_verified', network.timings.get('controller_ready'))} s")
        print(format_summary(network.status()), flush=True)
        if args.daemon:
            print("READY", flush=True)
            _redirect_output(os.path.join(network.run_dir, "daemon.log"))
        else:
            print("network running: Ctrl-C (or `cpn down` from another shell) stops it", flush=True)
        while not server.stop_requested.wait(0.5):
            pass
        progress("stopping")
    except KeyboardInterrupt:
        progress("interrupted: tearing down")
    except Exception as err:
        progress(f"error: {err}")
        if server is not None:
            server.close()
        network.stop()
        return EXIT_PROBLEM
    if server is not None:
        server.close()
    network.stop()
    progress("stopped; nothing left behind")
    return EXIT_OK


def _redirect_output(path: str) -> None:
    """Detached daemon: the launcher has gone, so write further output to a log file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _up_detached(args) -> int:
    cmd = [sys.executable, "-m", "cpn_net.cli", "up", args.file, "--daemon",
           "--ofp-port", str(args.ofp_port), "--rest-port", str(args.rest_port), "--seed", str(args.seed)]
    if args.no_verify:
        cmd.append("--no-verify")
    if args.no_frr:
        cmd.append("--no-frr")
    if args.dataplane:
        cmd += ["--dataplane", args.dataplane]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, text=True)
    try:
        for line in child.stdout:
            if line.strip() == "READY":
                print(f"detached: daemon PID {child.pid}; `cpn status`, `cpn down`", flush=True)
                return EXIT_OK
            print(line, end="", flush=True)
    except KeyboardInterrupt:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=120)
        return EXIT_PROBLEM
    child.wait()
    return EXIT_PROBLEM if child.returncode == 0 else child.returncode


def cmd_dataplane_show(args) -> int:
    _need_root("dataplane show")
    from cpn_net.dataplane.show import show

    manifest = manifest_io.read_json(os.path.join(manifest_io.RUN_DIR, "manifest.json"))
    if not manifest:
        print(f"no cpn network is running (no manifest in {manifest_io.RUN_DIR}); start one with `cpn up FILE`",
              file=sys.stderr)
        return EXIT_PROBLEM
    routers = {n["name"]: n for n in manifest["plan"]["nodes"] if n["kind"] == "router"}
    by_site = {n["site"]: name for name, n in routers.items()}
    router = args.node if args.node in routers else by_site.get(args.node)
    if router is None:
        print(f"{args.node!r} is not a router or site of this network; routers: {', '.join(sorted(routers))}",
              file=sys.stderr)
        return EXIT_PROBLEM
    print(f"# {router}: SRv6 data plane {manifest.get('dataplane') or 'kernel'}")
    print(show(router, manifest.get("dataplane") or "kernel", manifest_io.RUN_DIR))
    return EXIT_OK


def cmd_market_verify(args) -> int:
    from cpn_net.market import verify

    return verify.main([args.file] + (["--head", args.head] if args.head else []))


def cmd_status(args) -> int:
    from cpn_net.emulation.daemon import ControlError, call

    try:
        status = call(manifest_io.RUN_DIR, {"op": "status"})["status"]
    except ControlError as err:
        print(err, file=sys.stderr)
        return EXIT_PROBLEM
    if args.json:
        print(json.dumps(status, indent=1, default=str))
    else:
        print(format_summary(status))
    return EXIT_OK


def cmd_link_set(args) -> int:
    from cpn_net.emulation.daemon import ControlError, call

    request = {"op": "link_set", "a": args.a, "b": args.b, "delay_ms": args.delay_ms,
               "jitter_ms": args.jitter_ms, "loss_pct": args.loss_pct, "rate_mbps": args.rate_mbps,
               "unshaped": args.unshaped or None, "down": args.down}
    problems = _link_set_problems(args)
    if problems:
        print("cpn link set: " + "; ".join(problems), file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = call(manifest_io.RUN_DIR, request)["settings"]
    except ControlError as err:
        print(f"cpn link set {args.a} {args.b}: {err}", file=sys.stderr)
        return EXIT_PROBLEM
    print(f"link {args.a}-{args.b}: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    return EXIT_OK


def _link_set_problems(args) -> list[str]:
    problems = []
    # argparse's float() accepts "nan" and "inf", which no comparison below catches.
    finite = {}
    for name in ("delay_ms", "jitter_ms", "loss_pct", "rate_mbps"):
        value = getattr(args, name)
        if value is not None and not math.isfinite(value):
            problems.append(f"--{name.replace('_', '-')}={value} must be a finite number")
        else:
            finite[name] = value
    for name, low in (("delay_ms", 0), ("jitter_ms", 0), ("loss_pct", 0)):
        value = finite.get(name)
        if value is not None and value < low:
            problems.append(f"--{name.replace('_', '-')}={value} must be >= {low}")
    if finite.get("loss_pct") is not None and args.loss_pct > 100:
        problems.append(f"--loss-pct={args.loss_pct} must be <= 100")
    if finite.get("rate_mbps") is not None and args.rate_mbps <= 0:
        problems.append(f"--rate-mbps={args.rate_mbps} must be > 0 (use --unshaped to remove the limit)")
    if args.rate_mbps is not None and args.unshaped:
        problems.append("give either --rate-mbps or --unshaped, not both")
    if all(getattr(args, k) is None for k in ("delay_ms", "jitter_ms", "loss_pct", "rate_mbps", "down")) \
            and not args.unshaped:
        problems.append("nothing to change: give --delay-ms, --jitter-ms, --loss-pct, --rate-mbps, "
                        "--unshaped, --down or --up")
    return problems


def cmd_down(args) -> int:
    from cpn_net.emulation import cleanup
    from cpn_net.emulation.daemon import ControlError, call

    _need_root("down")
    manifest = manifest_io.read_json(os.path.join(manifest_io.RUN_DIR, "manifest.json"))
    pid = (manifest or {}).get("processes", {}).get("daemon")
    try:
        call(manifest_io.RUN_DIR, {"op": "down"})
    except ControlError:
        if manifest is None:
            print("no cpn network is running")
            return EXIT_OK
        print("the network's daemon does not answer; removing what it left")
        cleanup.clean(manifest_io.RUN_DIR, _progress_printer())
        return EXIT_OK
    deadline = time.monotonic() + 120
    while pid and cleanup.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid and cleanup.pid_alive(pid):
        print(f"the daemon (PID {pid}) did not stop within 120 s; run `cpn clean`", file=sys.stderr)
        return EXIT_PROBLEM
    print("network stopped")
    return EXIT_OK


def cmd_clean(args) -> int:
    from cpn_net.emulation import cleanup

    _need_root("clean")
    manifest = manifest_io.read_json(os.path.join(manifest_io.RUN_DIR, "manifest.json"))
    pid = (manifest or {}).get("processes", {}).get("daemon")
    if pid and cleanup.pid_alive(pid) and not args.force:
        print(f"a cpn network is running (daemon PID {pid}): stop it with `cpn down` "
              "(or `cpn clean --force` if it hangs)", file=sys.stderr)
        return EXIT_PROBLEM
    removed = cleanup.clean(manifest_io.RUN_DIR, _progress_printer())
    if not any(removed.values()):
        print("nothing to clean")
    return EXIT_OK


def _northbound():
    from cpn_net.northbound_client import NorthboundClient, NorthboundError

    manifest = manifest_io.read_json(os.path.join(manifest_io.RUN_DIR, "manifest.json"))
    if not manifest or not manifest.get("rest_url"):
        raise NorthboundError(0, "no cpn network is running; start one with `cpn up FILE`")
    return NorthboundClient(manifest["rest_url"])


def cmd_policy(args) -> int:
    from cpn_net.northbound_client import NorthboundError

    try:
        client = _northbound()
        if args.policy_command == "list":
            policies = client.list_policies()
            if args.json:
                print(json.dumps(policies, indent=1))
            else:
                print(format_policies(policies))
        elif args.policy_command == "add":
            body = {"name": args.name, "headend": args.headend, "to": args.to, "objective": args.objective,
                    "mode": args.mode}
            if args.bandwidth_mbps is not None:
                body["bandwidth_mbps"] = args.bandwidth_mbps
            if args.waypoint:
                body["waypoints"] = args.waypoint
            proto = int(args.proto) if args.proto and args.proto.isdigit() else args.proto
            flow = {k: v for k, v in (("proto", proto), ("src", args.src), ("src_port", args.src_port),
                                      ("dst_port", args.dst_port)) if v is not None}
            if flow:
                body["flow"] = flow
            policy = client.add_policy(body)
            print(format_policies([policy]))
        elif args.policy_command == "del":
            client.delete_policy(args.name)
            print(f"policy {args.name} removed")
    except NorthboundError as err:
        print(f"cpn policy {args.policy_command}: {err}", file=sys.stderr)
        return EXIT_PROBLEM
    return EXIT_OK


def cmd_slice(args) -> int:
    from cpn_net.northbound_client import NorthboundError

    try:
        client = _northbound()
        if args.slice_command == "list":
            slices = client.list_slices()
            print(json.dumps(slices, indent=1) if args.json else format_slices(slices))
        elif args.slice_command == "add":
            added = client.add_slice(slice_body(args))
            print(format_slices([added]))
            if added.get("enforced_ms") is not None:
                print(f"enforced in {added['enforced_ms']:.0f} ms")
        elif args.slice_command == "del":
            client.delete_slice(args.name)
            print(f"slice {args.name} removed")
        elif args.slice_command == "status":
            status = client.slice_status()
            print(json.dumps(status, indent=1) if args.json else format_slice_status(status))
    except NorthboundError as err:
        print(f"cpn slice {args.slice_command}: {err}", file=sys.stderr)
        return EXIT_PROBLEM
    return EXIT_OK


def slice_body(args) -> dict:
    """The ``POST /slices`` body of ``cpn slice add``: only the options given, so the server's defaults apply.

    Examples
    --------
    >>> args = build_parser().parse_args(["slice", "add", "gold", "--members", "east, k3-1", "--rate-mbps", "20",
    ...                                   "--no-isolation"])
    >>> slice_body(args)
    {'name': 'gold', 'members': ['east', 'k3-1'], 'rate_mbps': 20.0, 'isolation': False}
    """
    body = {"name": args.name, "members": args.members, "rate_mbps": args.rate_mbps}
    for key in ("max_latency_ms", "max_loss_pct", "meter_mbps", "kind", "id"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    if args.no_isolation:
        body["isolation"] = False
    return body


def _member_list(text: str) -> list[str]:
    members = [item.strip() for item in text.split(",") if item.strip()]
    if not members:
        raise argparse.ArgumentTypeError(f"{text!r} names no member; give host or site names separated by commas, "
                                         "e.g. u1-1,west")
    return members


def format_slices(slices: list[dict]) -> str:
    """One row per slice: intent, state, and its paths (or why admission refused it).

    Examples
    --------
    >>> print(format_slices([{"name": "gold", "id": 1, "mark": 2, "state": "admitted", "members": ["east", "k3-1"],
    ...                       "rate_mbps": 20.0, "max_latency_ms": 30.0, "kind": "latency", "isolation": True,
    ...                       "paths": {"east->west": ["east", "west"]}}]))
    slice  id  mark  state     members    rate_mbps  max_latency_ms  max_loss_pct  kind     isolated  paths
    -----  --  ----  --------  ---------  ---------  --------------  ------------  -------  --------  ...
    gold   1   2     admitted  east,k3-1  20         30              -             latency  yes       east->west: east > west
    """
    if not slices:
        return "no slices"
    rows = []
    for s in slices:
        if s.get("state") == "refused":
            paths = f"refused: {s.get('refusal') or '?'}"
        else:
            paths = "; ".join(f"{pair}: {' > '.join(path or [])}" for pair, path in (s.get("paths") or {}).items())
        rows.append([s.get("name"), _shown(s.get("id")), _shown(s.get("mark")), s.get("state", "-"), ",".join(s.get("members") or []),
                     _shown(s.get("rate_mbps")), _shown(s.get("max_latency_ms")), _shown(s.get("max_loss_pct")),
                     s.get("kind", "-"), _yes_no(s.get("isolation")), paths or "-"])
    return _table(["slice", "id", "mark", "state", "members", "rate_mbps", "max_latency_ms", "max_loss_pct", "kind",
                   "isolated", "paths"], rows)


def format_slice_status(status: dict) -> str:
    """Per slice: state, rate and bounds, then each member-site path with measured delay and loss.

    ``loss_pct`` is the slice's own loss (its mark's counters); ``link_loss_pct``
    that of all traffic on the path's links.

    Values not measured yet (or missing) show as ``-``; every SLO violation is listed at the end.

    Examples
    --------
    >>> print(format_slice_status({"slices": {"gold": {
    ...     "name": "gold", "id": 1, "state": "admitted", "rate_mbps": 20.0, "max_latency_ms": 30.0,
    ...     "kind": "latency", "slo": {"pairs": [
    ...         {"from": "east", "to": "west", "path": ["east", "centre", "west"], "delay_ms": 12.5,
    ...          "loss_pct": 0.0, "link_loss_pct": 31.5, "delay_ok": True, "loss_ok": None}],
    ...          "violations": []}}}, "violations": []}))
    gold (id 1): admitted, 20 Mbit/s, latency; bounds: delay <= 30 ms
      pair        path                  delay_ms  delay_ok  loss_pct  loss_ok  link_loss_pct
      ----------  --------------------  --------  --------  --------  -------  -------------
      east->west  east > centre > west  12.50     yes       0.00      -        31.50
    <BLANKLINE>
    SLO violations: none
    """
    slices = status.get("slices") or {}
    if not slices:
        return "no slices"
    parts = []
    for name, s in slices.items():
        bounds = [f"delay <= {s['max_latency_ms']:g} ms"] if s.get("max_latency_ms") is not None else []
        bounds += [f"loss <= {s['max_loss_pct']:g} %"] if s.get("max_loss_pct") is not None else []
        rate = f"{s['rate_mbps']:g} Mbit/s" if s.get("rate_mbps") is not None else "rate ?"
        ident = f" (id {s['id']})" if s.get("id") is not None else ""
        parts.append(f"{s.get('name', name)}{ident}: {s.get('state', '?')}, {rate}, {s.get('kind', '?')}; "
                     f"bounds: {', '.join(bounds) or 'none'}")
        pairs = (s.get("slo") or {}).get("pairs") or []
        if s.get("state") == "refused":
            parts.append(f"  refused: {s.get('refusal') or '?'}")
        elif pairs:
            rows = [[f"{p.get('from', '?')}->{p.get('to', '?')}", " > ".join(p.get("path") or []) or "-",
                     _number(p.get("delay_ms")), _yes_no(p.get("delay_ok")), _number(p.get("loss_pct")),
                     _yes_no(p.get("loss_ok")), _number(p.get("link_loss_pct"))] for p in pairs]
            table = _table(["pair", "path", "delay_ms", "delay_ok", "loss_pct", "loss_ok", "link_loss_pct"], rows)
            parts += ["  " + line for line in table.splitlines()]
        else:
            paths = s.get("paths") or {}
            parts += [f"  {pair}: {' > '.join(path or [])} (not measured yet)" for pair, path in paths.items()]
            if not paths:
                parts.append("  no paths measured yet")
    violations = status.get("violations")
    if violations is None:  # an older answer: gather the slices' own lists
        violations = [v for s in slices.values() for v in ((s.get("slo") or {}).get("violations") or [])]
    parts.append("")
    parts.append(f"SLO violations: {len(violations) or 'none'}")
    parts += [f"  {_violation_text(v)}" for v in violations]
    return "\n".join(parts)


def _violation_text(violation) -> str:
    if isinstance(violation, dict):
        if violation.get("message"):
            return str(violation["message"])
        return json.dumps(violation, sort_keys=True)
    return str(violation)


def _number(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _shown(value) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _yes_no(value) -> str:
    return "-" if value is None else "yes" if value else "no"


def cmd_telemetry(args) -> int:
    from cpn_net.northbound_client import NorthboundError

    try:
        view = _northbound().telemetry()
    except NorthboundError as err:
        print(f"cpn telemetry: {err}", file=sys.stderr)
        return EXIT_PROBLEM
    add_element_fidelity(view, _element_counters())
    print(json.dumps(view, indent=1) if args.json else format_telemetry(view))
    return EXIT_OK


def _element_counters() -> list[dict]:
    """The links' ground truth as the running network's daemon reads it (empty if it does not answer)."""
    from cpn_net.emulation.daemon import ControlError, call

    try:
        return call(manifest_io.RUN_DIR, {"op": "status"}, timeout_s=10)["status"]["links"]
    except (ControlError, KeyError, OSError):
        return []


def add_element_fidelity(view: dict, links: list[dict]) -> None:
    """Put each link direction's element fidelity (late > 1 ms, > 5 ms, early, since boot) beside its truth.

    >>> view = {"links": [{"link": "r1->r2"}, {"link": "r2->r1"}]}
    >>> add_element_fidelity(view, [{"routers": ["r1", "r2"], "ground_truth": {
    ...     "ab": {"late_over_1ms": 3, "late_over_5ms": 0, "early": 0, "forwarded": 900},
    ...     "ba": {"late_over_1ms": 1, "late_over_5ms": 1, "forwarded": 800}}}])
    >>> view["links"][1]["ground_truth"]["element"]
    {'forwarded': 800, 'late_over_1ms': 1, 'late_over_5ms': 1, 'early': 0}
    """
    from cpn_net.emulation.fidelity import COUNTERS

    by_direction = {}
    for link in links:
        ra, rb = link.get("routers") or (None, None)
        for direction, (src, dst) in (("ab", (ra, rb)), ("ba", (rb, ra))):
            counters = (link.get("ground_truth") or {}).get(direction)
            if isinstance(counters, dict) and "forwarded" in counters:
                by_direction[f"{src}->{dst}"] = {k: int(counters.get(k, 0) or 0) for k in COUNTERS}
    for entry in view.get("links", []):
        if entry["link"] in by_direction:
            entry.setdefault("ground_truth", {})["element"] = by_direction[entry["link"]]


def format_telemetry(view: dict) -> str:
    """The network view next to the emulator's ground truth, one row per link direction."""
    rows = []
    for link in view["links"]:
        delay, loss, truth = link.get("delay") or {}, link.get("loss") or {}, link.get("ground_truth") or {}
        lost = "-" if loss.get("lost") is None else f"{loss['lost']}/{loss['sent']}"
        element = truth.get("element") or {}
        late = "-" if not element else f"{element['late_over_1ms']}/{element['late_over_5ms']}/{element['early']}"
        rows.append([link["link"], f"{link['from']}>{link['to']}", delay.get("delay_ms", "-"),
                     delay.get("delay_p99_ms", "-"), delay.get("jitter_ms", "-"), truth.get("delay_ms"),
                     loss.get("block", "-"), lost, loss.get("loss_pct", "-"),
                     "-" if loss.get("truth_dropped") is None else loss["truth_dropped"],
                     truth.get("loss_pct") if truth.get("loss_pct") is not None else "-", late])
    accuracy = view.get("accuracy") or {}
    probes = view.get("probes") or {}
    return "\n".join([
        _table(["link", "sites", "delay_ms", "p99_ms", "jitter_ms", "configured_ms", "block", "lost/sent",
                "loss_pct", "element_dropped", "configured_loss_pct", "late>1ms/>5ms/early"], rows), "",
        "late>1ms/>5ms/early: frames the link element sent that late (or early) since boot; a delay tail is the "
        "link's own only while these stay still (cpn_net/emulation/fidelity.py)",
        f"alternate marking: period {view['period_s']} s; blocks matching the link elements' own drop counts: "
        f"{accuracy.get('blocks_matching_truth', 0)}/{accuracy.get('blocks_judged', 0)}",
        f"IOAM probes: {probes.get('sent', 0)} sent, {probes.get('received', 0)} decoded, "
        f"{probes.get('undecodable', 0)} undecodable, {probes.get('foreign', 0)} foreign, "
        f"{probes.get('warm_up_dropped', 0)} dropped as warm-up (first seconds after start)"])


def format_policies(policies: list[dict]) -> str:
    if not policies:
        return "no SR policies installed"
    rows = [[p["name"], p["headend"], p["to"], p["objective"], " > ".join(p["path"]),
             p["path_delay_ms"], " ".join(p["segments"])] for p in policies]
    return _table(["policy", "headend", "to", "objective", "path", "delay_ms", "segment list"], rows)


def cmd_controller(args) -> int:
    if args.action == "restart":
        from cpn_net.emulation.daemon import ControlError, call

        _need_root("controller restart")
        try:
            reply = call(manifest_io.RUN_DIR, {"op": "restart_controller"}, timeout_s=120)
        except ControlError as err:
            print(err, file=sys.stderr)
            return EXIT_PROBLEM
        if not reply.get("ok"):
            print(f"controller restart failed: {reply.get('error')}", file=sys.stderr)
            return EXIT_PROBLEM
        info = reply["restart"]
        print(f"controller restarted: PID {info['old_pid']} -> {info['pid']}, {info['without_controller_s']} s "
              f"without a controller (the data plane kept forwarding), took over what was installed")
        return EXIT_OK
    from controllers import runner

    argv = ["--ofp-port", str(args.ofp_port)]
    if args.run_dir:
        argv += ["--run-dir", args.run_dir]
    return runner.main(argv)


# ------------------------------------------------------------- formatting
def _table(headers: list[str], rows: list[list]) -> str:
    cells = [[str("" if c is None else c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def format_summary(status: dict) -> str:
    nodes = [[n["name"], n["kind"], n["site"] or "", n["namespace"] or "(root)", " ".join(
        a.split("/")[0] for a in n["addresses"])] for n in status["nodes"]]
    links = []
    for link in status["links"]:
        conf = link["configured"] or {}
        truth = link.get("ground_truth") or {}
        drops = "/".join(str(truth.get(d, {}).get("dropped_loss", "?")) for d in ("ab", "ba"))
        links.append([f"{link['a']}-{link['b']}", link["node"], conf.get("delay_ms"), conf.get("jitter_ms"),
                      conf.get("loss_pct"), conf.get("rate_mbps") or "-",
                      "down" if conf.get("down") else "up", drops])
    controller = status.get("controller") or {}
    switches = controller.get("switches", {})
    configured = sum(1 for s in switches.values() if s.get("configured"))
    routes = sum(r.get("routes", 0) for r in controller.get("routers", {}).values())
    parts = [
        f"topology {status['topology']}  run {status['run_id']}  SRv6 data plane: {status.get('dataplane')}"
        f"  link emulation: {status['link_mode']}  OVS datapath: {status['ovs_datapath']}",
        "", _table(["node", "kind", "site", "namespace", "IPv6"], nodes),
        "", _table(["link", "element", "delay_ms", "jitter_ms", "loss_pct", "rate_mbps", "state",
                    "dropped a>b/b>a"], links),
        "", f"controller: PID {controller.get('pid')}, {configured}/{len(switches)} switches configured, "
            f"{routes} routes installed, {len(controller.get('errors', []))} errors",
    ]
    if status.get("verification"):
        parts.append(f"reachability: {status['verification']}")
    return "\n".join(parts)


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cpn", description="cpn_net: compute-aware routing and "
                                     "network-slicing emulator")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="validate a topology file")
    p.add_argument("file")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("up", help="boot a topology as a real network with its controller")
    p.add_argument("file")
    p.add_argument("--detach", action="store_true", help="return once reachability is verified")
    p.add_argument("--ofp-port", type=int, default=6653, help="controller's OpenFlow TCP port")
    p.add_argument("--seed", type=int, default=1, help="seed of the link elements' loss and jitter")
    p.add_argument("--no-verify", action="store_true", help="skip the reachability check")
    p.add_argument("--rest-port", type=int, default=8181, help="controller's REST northbound TCP port")
    p.add_argument("--no-frr", action="store_true",
                   help="no precomputed backup routes: link failures are repaired by the controller only")
    p.add_argument("--dataplane", choices=DATAPLANES, default=None,
                   help="SRv6 data plane: kernel (Linux seg6), bpf (cpn's eBPF programs) or auto (kernel where "
                        "the probe finds every seg6 feature, else bpf; default, or $CPN_DATAPLANE)")
    p.add_argument("--daemon", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_up)

    doctor.add_parser(sub)

    p = sub.add_parser("market", help="the compute market")
    market_sub = p.add_subparsers(dest="market_command", required=True)
    q = market_sub.add_parser("verify", help="check a market ledger's hash chain; names the first bad entry")
    q.add_argument("file", help="ledger.jsonl")
    q.add_argument("--head", help="the SHA-256 the last entry must have (catches a cut or rewritten tail)")
    q.set_defaults(func=cmd_market_verify)

    p = sub.add_parser("dataplane", help="inspect the running SRv6 data plane")
    dp_sub = p.add_subparsers(dest="dataplane_command", required=True)
    q = dp_sub.add_parser("show", help="a router's local SIDs, policies and tables, in `ip -6 route` style")
    q.add_argument("node", help="router name (r1) or site name")
    q.set_defaults(func=cmd_dataplane_show)

    p = sub.add_parser("status", help="show the running network")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("link", help="change a running WAN link")
    link_sub = p.add_subparsers(dest="link_command", required=True)
    q = link_sub.add_parser("set", help="set delay/jitter/loss/rate or up/down")
    q.add_argument("a", help="site or router at one end")
    q.add_argument("b", help="site or router at the other end")
    q.add_argument("--delay-ms", type=float)
    q.add_argument("--jitter-ms", type=float)
    q.add_argument("--loss-pct", type=float)
    q.add_argument("--rate-mbps", type=float)
    q.add_argument("--unshaped", action="store_true", help="remove the rate limit")
    state = q.add_mutually_exclusive_group()
    state.add_argument("--down", dest="down", action="store_const", const=True)
    state.add_argument("--up", dest="down", action="store_const", const=False)
    q.set_defaults(func=cmd_link_set)

    p = sub.add_parser("policy", help="SR policies of the running network (via the controller's REST API)")
    policy_sub = p.add_subparsers(dest="policy_command", required=True)
    q = policy_sub.add_parser("list", help="installed policies with their paths and segment lists")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_policy)
    q = policy_sub.add_parser("add", help="compute, install and show a policy")
    q.add_argument("name")
    q.add_argument("--headend", required=True, help="site whose router encapsulates")
    q.add_argument("--to", required=True, help="a site (its LAN), a host (k3-1) or an IPv6 prefix")
    q.add_argument("--objective", default="min_delay", choices=["min_delay", "min_hops", "bandwidth"])
    q.add_argument("--bandwidth-mbps", type=float, help="with --objective bandwidth: the rate to reserve")
    q.add_argument("--waypoint", action="append", help="a site to pass through (repeat, in order)")
    q.add_argument("--mode", default="encap", choices=["encap", "encap.red"])
    q.add_argument("--proto", help="narrow to one flow: tcp, udp, sctp, icmpv6 or a number")
    q.add_argument("--src", help="flow source address or prefix (inside the headend's LAN)")
    q.add_argument("--src-port", type=int)
    q.add_argument("--dst-port", type=int)
    q.set_defaults(func=cmd_policy)
    q = policy_sub.add_parser("del", help="remove a policy (traffic returns to the IGP path)")
    q.add_argument("name")
    q.set_defaults(func=cmd_policy)

    p = sub.add_parser("slice", help="network slices of the running network (via the controller's REST API)")
    slice_sub = p.add_subparsers(dest="slice_command", required=True)
    q = slice_sub.add_parser("list", help="slices in force and refused ones, with their paths")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_slice)
    q = slice_sub.add_parser("add", help="admit, realise and show a slice")
    q.add_argument("name")
    q.add_argument("--members", required=True, type=_member_list,
                   help="host names (u1-1) or site names (all their hosts), separated by commas")
    q.add_argument("--rate-mbps", required=True, type=float,
                   help="guaranteed between every ordered pair of member sites")
    q.add_argument("--max-latency-ms", type=float, help="one-way delay bound on every member-site path")
    q.add_argument("--max-loss-pct", type=float, help="loss bound on every member-site path")
    q.add_argument("--meter-mbps", type=float, help="cap at each member site switch (>= --rate-mbps)")
    q.add_argument("--kind", choices=SLICE_KINDS, help="latency: minimum-delay paths (default); bulk: widest paths")
    q.add_argument("--no-isolation", action="store_true", help="share the hosts' routing table with other slices")
    q.add_argument("--id", type=int, help="slice id 1..4095 naming its flows, queues and table (default: the lowest free one)")
    q.set_defaults(func=cmd_slice)
    q = slice_sub.add_parser("del", help="remove a slice and release its capacity")
    q.add_argument("name")
    q.set_defaults(func=cmd_slice)
    q = slice_sub.add_parser("status", help="per slice: measured delay and loss of each path against its bounds")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_slice)

    p = sub.add_parser("telemetry", help="live per-link delay, jitter and loss, with the emulator's ground truth")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_telemetry)

    cli_everyday.add_parsers(sub)

    p = sub.add_parser("down", help="tear the running network down")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("clean", help="remove leftovers of crashed runs (only cpn's)")
    p.add_argument("--force", action="store_true", help="clean even if a daemon seems alive")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("controller", help="run the os-ken controller alone, or restart the running network's")
    p.add_argument("action", nargs="?", choices=["run", "restart"], default="run",
                   help="run (default): this process is the controller; restart: replace the running "
                        "network's controller by a new one that takes over the installed state")
    p.add_argument("--run-dir")
    p.add_argument("--ofp-port", type=int, default=6653)
    p.set_defaults(func=cmd_controller)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
