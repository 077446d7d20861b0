"""Scratch network namespaces for measuring link elements (root only).

Used by ``benchmarks/link_fidelity.py`` and ``tests/unit/test_native_wire.py``; never
touches a cpn network. Names are ``cpn-lf<pid>-<role>``::

    <prefix>-<c>a [a0] ──veth── [e0] <prefix>-<c>e (element) [e1] ──veth── [b0] <prefix>-<c>b
    <prefix>-pa [pa0] ──veth── [pb0] <prefix>-pb                        (plain veth control)

with one chain per name ``c`` given (the Python and the native element each get their own,
so both are measured in the same window without restarts).

Every interface as the emulator sets a WAN link up: MTU 9000, ``ethtool -K tx off tso off gso
off gro off``, no DAD; the element namespace has IPv6 off and its interfaces promiscuous,
like a link node. A and B get static neighbour entries so no neighbour discovery crosses the
element while counting.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from cpn_net import unixctl

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MTU = 9000
ADDR_A, ADDR_B = "fd00:1f::1", "fd00:1f::2"
ADDR_PA, ADDR_PB = "fd00:2f::1", "fd00:2f::2"
#: Unassigned addresses whose neighbour entry (at A, A') is B's (B''s) MAC: B receives their
#: datagrams and drops them in the kernel (not forwarding, not local), no process wakes up.
SINK_B, SINK_PB = "fd00:1f::99", "fd00:2f::99"
MAC_A, MAC_B = "02:00:00:1f:00:01", "02:00:00:1f:00:02"
MAC_PA, MAC_PB = "02:00:00:2f:00:01", "02:00:00:2f:00:02"
KINDS = ("python", "native")


class LabError(RuntimeError):
    """A scratch namespace command failed; the message names it."""


def missing_tool(tools=("ip", "ethtool", "ping", "gcc")) -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, AF_PACKET)"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def sh(cmd: list[str], check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-500:]}")
    return proc


class Element:
    """A running link element (Python or native) in the lab's element namespace."""

    def __init__(self, kind: str, process: subprocess.Popen, control_path: str, log_path: str) -> None:
        self.kind = kind
        self.process = process
        self.pid = process.pid  # `ip netns exec` execs the command: this is the element's PID
        self.control_path = control_path
        self.log_path = log_path

    def request(self, message: dict, timeout_s: float = 2.0) -> dict:
        return unixctl.request(self.control_path, message, timeout_s=timeout_s)

    def stats(self) -> dict:
        return self.request({"op": "stats"})

    def set(self, **settings) -> dict:
        reply = self.request({"op": "set", **settings})
        if not reply.get("ok"):
            raise LabError(f"{self.kind} element refused {settings}: {reply.get('error')}")
        return reply

    def cpu_ticks(self) -> int:
        """utime + stime of the element (clock ticks, all threads), from /proc/<pid>/stat."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def cpu_ns(self) -> int:
        """CPU time of every thread of the element in ns, from /proc/<pid>/task/*/schedstat."""
        total = 0
        for task in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-2000:]
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=3)


class Chain:
    """One ``A --veth-- E --veth-- B`` chain: namespaces ``<prefix>-<name>a``, ``-<name>e``, ``-<name>b``."""

    def __init__(self, prefix: str, name: str) -> None:
        self.name = name
        self.ns_a, self.ns_e, self.ns_b = (f"{prefix}-{name}{r}" for r in ("a", "e", "b"))
        self.element: Element | None = None


class Lab:
    """Builds and removes the scratch namespaces; runs commands and elements in them.

    ``chains`` element chains (namespaces A, E, B each) and, with ``plain``, the plain veth pair.
    ``lab.ns_a`` / ``ns_e`` / ``ns_b`` name the first chain's namespaces.
    """

    def __init__(self, prefix: str | None = None, chains=("x",), plain: bool = True, mtu: int = MTU) -> None:
        self.prefix = prefix or f"cpn-lf{os.getpid()}"
        if not self.prefix.startswith("cpn-lf"):
            raise LabError(f"lab namespaces must be named cpn-lf<pid>-*, not {self.prefix}")
        self.chains = {name: Chain(self.prefix, name) for name in chains}
        first = next(iter(self.chains.values()))
        self.ns_a, self.ns_e, self.ns_b = first.ns_a, first.ns_e, first.ns_b
        self.ns_pa, self.ns_pb = f"{self.prefix}-pa", f"{self.prefix}-pb"
        self.plain = plain
        self.mtu = mtu
        self.created: list[str] = []
        self.elements: list[Element] = []
        self.processes: list[subprocess.Popen] = []
        self.tmp = tempfile.mkdtemp(prefix="cpn-lf-")

    # ------------------------------------------------------------ building
    def __enter__(self) -> "Lab":
        try:
            self.setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    def _namespace(self, ns: str, element: bool = False) -> None:
        sh(["ip", "netns", "add", ns])
        self.created.append(ns)
        self.ns(ns, ["ip", "link", "set", "lo", "up"])
        self.ns(ns, ["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
                     "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0",
                     "net.ipv6.conf.default.router_solicitations=0"])
        if element:
            self.ns(ns, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                         "net.ipv6.conf.default.disable_ipv6=1"])

    def setup(self) -> None:
        for chain in self.chains.values():
            self._namespace(chain.ns_a)
            self._namespace(chain.ns_e, element=True)
            self._namespace(chain.ns_b)
            sh(["ip", "link", "add", "a0", "netns", chain.ns_a, "address", MAC_A, "type", "veth",
                "peer", "name", "e0", "netns", chain.ns_e])
            sh(["ip", "link", "add", "b0", "netns", chain.ns_b, "address", MAC_B, "type", "veth",
                "peer", "name", "e1", "netns", chain.ns_e])
            self._intf(chain.ns_a, "a0", ADDR_A)
            self._intf(chain.ns_b, "b0", ADDR_B)
            self._intf(chain.ns_e, "e0", None)
            self._intf(chain.ns_e, "e1", None)
            for address in (ADDR_B, SINK_B):
                self.ns(chain.ns_a, ["ip", "-6", "neigh", "replace", address, "lladdr", MAC_B, "dev", "a0",
                                     "nud", "permanent"])
            self.ns(chain.ns_b, ["ip", "-6", "neigh", "replace", ADDR_A, "lladdr", MAC_A, "dev", "b0",
                                 "nud", "permanent"])
        if self.plain:
            self._namespace(self.ns_pa)
            self._namespace(self.ns_pb)
            sh(["ip", "link", "add", "pa0", "netns", self.ns_pa, "address", MAC_PA, "type", "veth",
                "peer", "name", "pb0", "netns", self.ns_pb, "address", MAC_PB])
            self._intf(self.ns_pa, "pa0", ADDR_PA)
            self._intf(self.ns_pb, "pb0", ADDR_PB)
            for address in (ADDR_PB, SINK_PB):
                self.ns(self.ns_pa, ["ip", "-6", "neigh", "replace", address, "lladdr", MAC_PB, "dev", "pa0",
                                     "nud", "permanent"])
            self.ns(self.ns_pb, ["ip", "-6", "neigh", "replace", ADDR_PA, "lladdr", MAC_PA, "dev", "pb0",
                                 "nud", "permanent"])

    def _intf(self, ns: str, intf: str, address: str | None) -> None:
        self.ns(ns, ["ip", "link", "set", "dev", intf, "mtu", str(self.mtu)])
        self.ns(ns, ["ethtool", "-K", intf, "tx", "off", "tso", "off", "gso", "off", "gro", "off"])
        if address is None:
            self.ns(ns, ["ip", "link", "set", "dev", intf, "promisc", "on"])
        else:
            self.ns(ns, ["sysctl", "-qw", f"net.ipv6.conf.{intf}.accept_dad=0",
                         f"net.ipv6.conf.{intf}.router_solicitations=0"])
            self.ns(ns, ["ip", "-6", "addr", "add", f"{address}/64", "dev", intf, "nodad"])
        self.ns(ns, ["ip", "link", "set", "dev", intf, "up"])

    def teardown(self) -> None:
        for element in list(self.elements):
            try:
                element.stop()
            except (OSError, subprocess.SubprocessError):
                pass
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout=3)
                except (OSError, subprocess.SubprocessError):
                    pass
        for ns in reversed(self.created):
            sh(["ip", "netns", "del", ns], check=False)
        self.created = []
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------ running
    def rx_packets(self, ns: str, intf: str) -> int:
        """Packets ``intf`` in ``ns`` received (its kernel counter)."""
        doc = json.loads(self.ns(ns, ["ip", "-s", "-j", "link", "show", "dev", intf]).stdout)
        return int(doc[0]["stats64"]["rx"]["packets"])

    def ns(self, ns: str, cmd: list[str], check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return sh(["ip", "netns", "exec", ns, *cmd], check=check, timeout=timeout)

    def popen(self, ns: str, cmd: list[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.setdefault("text", True)
        process = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kwargs)
        self.processes.append(process)
        return process

    def start_element(self, kind: str, delay_ms: float = 0.0, jitter_ms: float = 0.0, loss_pct: float = 0.0,
                      seed: int = 1, extra: tuple[str, ...] = (), binary: str | None = None,
                      chain: str | None = None) -> Element:
        """Start a link element between e0 and e1 of a chain; wait until its control socket answers."""
        where = self.chains[chain] if chain else next(iter(self.chains.values()))
        if where.element is not None and where.element.process.poll() is None:
            raise LabError(f"chain {where.name} already runs a {where.element.kind} element")
        index = len(self.elements) + len(self.processes)
        control = os.path.join(self.tmp, f"{kind}-{where.name}-{index}.sock")
        log_path = os.path.join(self.tmp, f"{kind}-{where.name}-{index}.log")
        args = ["--a", "e0", "--b", "e1", "--control", control, "--delay-ms", str(delay_ms),
                "--jitter-ms", str(jitter_ms), "--loss-pct", str(loss_pct), "--seed", str(seed)]
        if kind == "python":
            cmd = [sys.executable, "-m", "cpn_net.emulation.wire", *args]
        elif kind == "native":
            from cpn_net.emulation.native import build
            cmd = [binary or build.ensure_built("wire"), *args, *extra]
        else:
            raise LabError(f"kind={kind!r} must be one of {', '.join(KINDS)}")
        with open(log_path, "ab") as log:
            process = subprocess.Popen(["ip", "netns", "exec", where.ns_e, *cmd], stdout=log,
                                       stderr=subprocess.STDOUT, cwd=PROJECT_DIR)
        element = Element(kind, process, control, log_path)
        self.elements.append(element)
        where.element = element
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LabError(f"{kind} element exited with {process.returncode}: {element.log()}")
            if os.path.exists(control):
                try:
                    if element.stats().get("ok"):
                        return element
                except (OSError, ValueError):
                    pass
            time.sleep(0.05)
        raise LabError(f"{kind} element did not answer on {control} within 15 s: {element.log()}")

    def stop_element(self, element: Element) -> None:
        element.stop()
        if element in self.elements:
            self.elements.remove(element)
        for chain in self.chains.values():
            if chain.element is element:
                chain.element = None


def stats_delta(before: dict, after: dict) -> dict:
    """Per direction, counters ``after`` minus ``before`` (two stats replies).

    >>> stats_delta({"counters": {"ab": {"received": 2}}}, {"counters": {"ab": {"received": 7}}})
    {'ab': {'received': 5}}
    """
    return {d: {k: v - before["counters"][d].get(k, 0) for k, v in c.items()}
            for d, c in after["counters"].items()}


def dumps(doc) -> str:
    return json.dumps(doc, indent=2, sort_keys=False)
