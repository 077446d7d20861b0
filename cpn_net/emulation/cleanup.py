"""Remove what a cpn network left behind — only ours, by name and by PID.

What is ours:

- network namespaces named ``cpn-*`` (the ``cpn-`` prefix is reserved for us);
- processes whose PIDs the manifest recorded, and only while their command line
  still looks like ours (a recycled PID is left alone);
- processes inside our namespaces;
- Open vSwitch bridges carrying ``external_ids:cpn-run`` (set at boot);
- root-namespace interfaces named in the plan of the crashed run.

Never ``killall``, ``pkill -f`` or ``mn -c``: another emulation may be running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

from cpn_net.model import addressing

#: Modules our processes run (``python -m <module>``): the daemon (cpn_net.cli),
#: link elements (cpn_net.emulation.wire) and the controller (controllers.runner).
OUR_MODULES = ("cpn_net.", "controllers.")
#: Last word of a Mininet node shell's command line (``bash ... -is mininet:r1``).
MININET_SHELL = "mininet:"
#: The native link element's binary (cpn_net/emulation/native/build.py): ``<project>/build/native/wire``.
NATIVE_ELEMENT = os.path.join("build", "native", "wire")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def is_our_command(argv: list[str]) -> bool:
    """True for the command lines of processes cpn_net starts, and only those.

    Whole words are compared, not substrings: PIDs recycle quickly (``pid_max``
    is 32768 on our machines), and a recycled PID may well belong to
    ``pytest tests/unit cpn_net`` or an editor on ``cpn_net/cli.py``.

    Examples
    --------
    >>> is_our_command(["python", "-m", "cpn_net.emulation.wire", "--a", "l1x2-eth0"])
    True
    >>> is_our_command(["bash", "--norc", "--noediting", "-is", "mininet:r1"])
    True
    >>> is_our_command(["python", "-m", "pytest", "tests/unit", "cpn_net"])
    False
    >>> is_our_command(["/srv/cpn/build/native/wire", "--a", "l1x2-eth0"]), is_our_command(["/usr/bin/wire"])
    (True, False)
    """
    modules = [argv[i + 1] for i in range(len(argv) - 1) if argv[i] == "-m"]
    if any(module.startswith(OUR_MODULES) for module in modules):
        return True
    if argv and (argv[0].endswith(os.sep + NATIVE_ELEMENT) or argv[0] == _native_element()):
        return True
    return len(argv) > 1 and argv[-1].startswith(MININET_SHELL)


def _native_element() -> str:
    from cpn_net.emulation.native import build  # honours CPN_NATIVE_BUILD_DIR

    return build.binary_path("wire")


def kill_pid(pid: int, timeout_s: float = 3.0) -> bool:
    """Terminate one process if its command line is still one of ours (see :func:`is_our_command`)."""
    if not is_our_command(_argv(pid)):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and pid_alive(pid) and not _is_zombie(pid):
        time.sleep(0.05)
    if pid_alive(pid) and not _is_zombie(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return True


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def our_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(addressing.NAMESPACE_PREFIX)]


def delete_namespace(name: str) -> None:
    """Kill the processes inside one of our namespaces, then delete it."""
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


def our_bridges() -> list[str]:
    out = subprocess.run(["ovs-vsctl", "--timeout=5", "--format=json", "--columns=name,external_ids",
                          "list", "bridge"], capture_output=True, text=True)
    if out.returncode != 0:
        return []
    rows = json.loads(out.stdout).get("data", [])
    bridges = []
    for name, external_ids in rows:
        keys = {k for k, _v in external_ids[1]} if external_ids and external_ids[0] == "map" else set()
        if "cpn-run" in keys:
            bridges.append(name)
    return bridges


def _root_interfaces() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def clashing_names(plan) -> list[str]:
    """Names our boot would create that exist already and are not ours."""
    clashes = []
    existing_intfs = _root_interfaces()
    ours = set(our_bridges())
    for node in plan.nodes:
        if node.kind == "switch":
            if node.name in existing_intfs and node.name not in ours:
                clashes.append(f"bridge/interface {node.name}")
            for intf in node.interfaces:
                if intf.name in existing_intfs and node.name not in ours:
                    clashes.append(f"interface {intf.name}")
    return clashes


def remove_by_plan(plan, run_id: str | None = None) -> None:
    """Remove the namespaces, bridges and interfaces a plan names (after a stop)."""
    existing = set(our_namespaces())
    for node in plan.nodes:
        if node.namespace and node.namespace in existing:
            delete_namespace(node.namespace)
    bridges = set(our_bridges())
    intfs = _root_interfaces()
    for switch in plan.nodes_of("switch"):
        if switch.name in bridges:
            subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", switch.name],
                           capture_output=True)
        for intf in switch.interfaces:
            if intf.name in intfs:
                subprocess.run(["ip", "link", "del", "dev", intf.name], capture_output=True)


def remove_bpf(run_dir: str) -> list[str]:
    """Unpin the eBPF data plane's programs and maps of a run and unmount its bpffs.

    Only ``<run dir>/bpf`` is touched: its tc filters went with the router namespaces.
    """
    from cpn_net.dataplane import attach

    return attach.remove(run_dir)


def clean(run_dir: str, progress=lambda message: None) -> dict:
    """Remove every leftover of crashed cpn runs; returns what was removed."""
    removed = {"processes": [], "namespaces": [], "bridges": [], "interfaces": []}
    manifest = None
    try:
        with open(os.path.join(run_dir, "manifest.json")) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        pass
    if manifest:
        for role, pid in sorted((manifest.get("processes") or {}).items()):
            if pid != os.getpid() and kill_pid(int(pid)):
                removed["processes"].append(f"{role}:{pid}")
    for name in our_namespaces():
        delete_namespace(name)
        removed["namespaces"].append(name)
    for bridge in our_bridges():
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge], capture_output=True)
        removed["bridges"].append(bridge)
    if manifest:
        intfs = _root_interfaces()
        for node in manifest["plan"]["nodes"]:
            if node["kind"] == "switch":
                for intf in node["interfaces"]:
                    if intf["name"] in intfs:
                        subprocess.run(["ip", "link", "del", "dev", intf["name"]], capture_output=True)
                        removed["interfaces"].append(intf["name"])
    removed["bpf pins"] = remove_bpf(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    for kind, items in removed.items():
        if items:
            progress(f"removed {len(items)} {kind}: {', '.join(items[:8])}{' ...' if len(items) > 8 else ''}")
    return removed
