"""The checks behind :func:`cpn_net.dataplane.probe.run_probe`: each tries one feature for real.

A check takes the :class:`Scratch` and returns ``(present, detail)``: whether the
feature worked and what was seen (the command that passed, or the error). Kernel
features are tried in a scratch network namespace ``cpn-probe-<pid>`` holding a
veth pair (``veth0`` fd00:1::1, ``veth1`` fd00:1::2; the ``dummy`` link type may be
missing), made on first use and deleted by name when the :class:`Scratch` closes.
The BPF checks compile a tiny program with clang, pin it with bpftool in a bpffs
mounted in a temporary directory (like :mod:`cpn_net.dataplane.attach` does) and
attach it with ``object-pinned``; the directory is unmounted and removed at close.
Where a check cannot run (no clang), it reads ``/proc/config.gz`` and says so.

Needs root. Every command has the Scratch's timeout.
"""

from __future__ import annotations

import ctypes
import functools
import gzip
import os
import platform
import re
import shutil
import subprocess
import tempfile

NAMESPACE_PREFIX = "cpn-probe-"
BPF_PROBE_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Returns what bpf_fib_lookup says to the flags cpn_encap uses: MARK (6.10) | SKIP_NEIGH. */
SEC("tc")
int cpn_probe_tc(struct __sk_buff *skb)
{
	struct bpf_fib_lookup p = {};

	p.family = 10; /* AF_INET6 */
	p.ifindex = skb->ifindex;
	p.ipv6_dst[3] = __builtin_bswap32(1);
	return bpf_fib_lookup(skb, &p, sizeof(p), (1U << 5) | (1U << 2));
}

SEC("lwt_xmit")
int cpn_probe_lwt(struct __sk_buff *skb)
{
	return BPF_OK;
}

char _license[] SEC("license") = "GPL";
"""


class Unavailable(Exception):
    """A check cannot be tried here (no namespace, no compiler); the message says why."""


def _said(proc: subprocess.CompletedProcess) -> str:
    text = " ".join((proc.stderr or proc.stdout or "").split())
    return text[-300:] or f"exit status {proc.returncode}"


def _outcome(proc: subprocess.CompletedProcess, what: str) -> tuple[bool, str]:
    return (True, f"ok: {what}") if proc.returncode == 0 else (False, f"{what}: {_said(proc)}")


class Scratch:
    """The scratch namespace and bpffs of one probe run; everything made is removed at close."""

    def __init__(self, timeout_s: float = 10.0):
        self.name = f"{NAMESPACE_PREFIX}{os.getpid()}"
        self.timeout_s = timeout_s
        self._ns: str | Unavailable | None = None
        self._tmp: str | None = None
        self._bpffs: str | None = None
        self._programs: dict[str, str] | Unavailable | None = None

    def __enter__(self) -> "Scratch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, *cmd: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), capture_output=True, text=True, input=input, timeout=self.timeout_s)

    # ------------------------------------------------------- namespace
    def namespace(self) -> str:
        """The scratch namespace with its veth pair, made on first use."""
        if self._ns is None:
            try:
                self._ns = self._make_namespace()
            except (Unavailable, OSError, subprocess.TimeoutExpired) as err:
                self._ns = err if isinstance(err, Unavailable) else Unavailable(f"no scratch namespace: {err}")
        if isinstance(self._ns, Unavailable):
            raise self._ns
        return self._ns

    def _make_namespace(self) -> str:
        if shutil.which("ip") is None:
            raise Unavailable("no scratch namespace: ip (iproute2) is not installed")
        self.run("ip", "netns", "del", self.name)  # a stale one of a dead process with our pid
        steps = [("netns", "add", self.name),
                 ("-n", self.name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1"),
                 ("-n", self.name, "link", "set", "lo", "up"),
                 ("-n", self.name, "link", "set", "veth0", "up"),
                 ("-n", self.name, "link", "set", "veth1", "up"),
                 ("-n", self.name, "-6", "addr", "add", "fd00:1::1/64", "dev", "veth0", "nodad"),
                 ("-n", self.name, "-6", "addr", "add", "fd00:1::2/64", "dev", "veth1", "nodad")]
        for step in steps:
            proc = self.run("ip", *step)
            if proc.returncode != 0:
                raise Unavailable(f"no scratch namespace: ip {' '.join(step)}: {_said(proc)}")
        return self.name

    def ip(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("ip", "-n", self.namespace(), *args)

    def tc(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("tc", "-n", self.namespace(), *args)

    def inside(self, *cmd: str, input: str | None = None) -> subprocess.CompletedProcess:
        return self.run("ip", "netns", "exec", self.namespace(), *cmd, input=input)

    # ------------------------------------------------------------- bpf
    def tmp(self) -> str:
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix=f"{self.name}-")
        return self._tmp

    def programs(self) -> dict[str, str]:
        """Pinned paths of the probe's ``tc`` and ``lwt`` programs, compiled and loaded on first use."""
        if self._programs is None:
            try:
                self._programs = self._load_programs()
            except Unavailable as why:
                self._programs = why
        if isinstance(self._programs, Unavailable):
            raise self._programs
        return self._programs

    def _load_programs(self) -> dict[str, str]:
        for tool in ("clang", "bpftool"):
            if shutil.which(tool) is None:
                raise Unavailable(f"{tool} is not installed")
        src, obj = os.path.join(self.tmp(), "probe.bpf.c"), os.path.join(self.tmp(), "probe.bpf.o")
        with open(src, "w") as handle:
            handle.write(BPF_PROBE_SOURCE)
        proc = self.run("clang", "-O2", "-target", "bpf", "-I", f"/usr/include/{platform.machine()}-linux-gnu",
                        "-c", src, "-o", obj)
        if proc.returncode != 0:
            raise Unavailable(f"clang could not compile a BPF probe: {_said(proc)}")
        fs = os.path.join(self.tmp(), "bpf")
        os.makedirs(fs, exist_ok=True)
        proc = self.run("mount", "-t", "bpf", "bpf", fs)
        if proc.returncode != 0:
            raise Unavailable(f"cannot mount a bpffs: {_said(proc)}")
        self._bpffs = fs
        proc = self.run("bpftool", "prog", "loadall", obj, os.path.join(fs, "prog"))
        if proc.returncode != 0:
            raise Unavailable(f"bpftool prog loadall refused the probe: {_said(proc)}")
        return {"tc": os.path.join(fs, "prog", "cpn_probe_tc"), "lwt": os.path.join(fs, "prog", "cpn_probe_lwt")}

    # ----------------------------------------------------------- close
    def close(self) -> None:
        """Delete the namespace (by name), unmount the bpffs, remove the temporary directory."""
        try:
            if self._ns is not None:
                subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=self.timeout_s)
        finally:
            try:
                if self._bpffs is not None:
                    subprocess.run(["umount", self._bpffs], capture_output=True, timeout=self.timeout_s)
            finally:
                if self._tmp is not None:
                    shutil.rmtree(self._tmp, ignore_errors=True)


def kernel_config() -> dict[str, str] | None:
    """The running kernel's build options from ``/proc/config.gz`` (``{"CONFIG_X": "y"}``), or None."""
    try:
        with gzip.open("/proc/config.gz", "rt") as handle:
            text = handle.read()
    except OSError:
        return None
    return dict(re.findall(r"^(CONFIG_\w+)=(\S+)$", text, re.MULTILINE))


def config_says(options: tuple[str, ...], reason: str) -> tuple[bool, str]:
    """Present when the kernel's build has every one of ``options``: for a check that could not be tried."""
    config = kernel_config()
    if config is None:
        return False, f"not tried ({reason}) and /proc/config.gz is unreadable"
    seen = ", ".join(f"{option}={config.get(option, 'not set')}" for option in options)
    return all(config.get(option) in ("y", "m") for option in options), f"not tried ({reason}); /proc/config.gz: {seen}"


def in_namespace(check):
    """A check that needs the scratch namespace: absent, saying why, when there is none."""
    @functools.wraps(check)
    def wrapped(scratch: Scratch) -> tuple[bool, str]:
        try:
            return check(scratch)
        except Unavailable as why:
            return False, f"not tried: {why}"
    return wrapped


# ------------------------------------------------------------ seg6
def _route(*spec: str):
    @in_namespace
    def check(scratch: Scratch) -> tuple[bool, str]:
        return _outcome(scratch.ip("-6", "route", "add", *spec), f"ip -6 route add {' '.join(spec)}")
    return check


def _seg6local(prefix: str, *action: str):
    return _route(prefix, "encap", "seg6local", "action", *action, "dev", "veth0")


# ------------------------------------------------------------- tc
@in_namespace
def check_netem(scratch: Scratch) -> tuple[bool, str]:
    return _outcome(scratch.tc("qdisc", "add", "dev", "veth1", "root", "netem", "delay", "1ms"),
                    "tc qdisc add dev veth1 root netem delay 1ms")


@in_namespace
def check_htb(scratch: Scratch) -> tuple[bool, str]:
    proc = scratch.tc("qdisc", "add", "dev", "veth0", "root", "handle", "1:", "htb", "default", "10")
    if proc.returncode == 0:
        proc = scratch.tc("class", "add", "dev", "veth0", "parent", "1:", "classid", "1:10", "htb", "rate", "10mbit")
        scratch.tc("qdisc", "del", "dev", "veth0", "root")
    return _outcome(proc, "tc qdisc add ... htb; tc class add ... htb rate 10mbit")


@in_namespace
def check_clsact(scratch: Scratch) -> tuple[bool, str]:
    return _outcome(scratch.tc("qdisc", "add", "dev", "veth1", "clsact"), "tc qdisc add dev veth1 clsact")


@in_namespace
def check_cls_bpf(scratch: Scratch) -> tuple[bool, str]:
    try:
        program = scratch.programs()["tc"]
    except Unavailable as why:
        return config_says(("CONFIG_NET_CLS_BPF",), str(why))
    proc = scratch.tc("qdisc", "replace", "dev", "veth0", "clsact")
    if proc.returncode != 0:
        return config_says(("CONFIG_NET_CLS_BPF",), f"no clsact qdisc: {_said(proc)}")
    return _outcome(scratch.tc("filter", "add", "dev", "veth0", "ingress", "bpf", "direct-action",
                               "object-pinned", program),
                    "tc filter add dev veth0 ingress bpf direct-action object-pinned (bpftool-loaded probe)")


@in_namespace
def check_fib_lookup_mark(scratch: Scratch) -> tuple[bool, str]:
    try:
        program = scratch.programs()["tc"]
    except Unavailable as why:
        return _version_says((6, 10), f"not tried ({why})")
    frame = os.path.join(scratch.tmp(), "frame.bin")
    with open(frame, "wb") as handle:
        handle.write(bytes(12) + b"\x86\xdd" + bytes(50))
    proc = scratch.inside("bpftool", "prog", "run", "pinned", program, "data_in", frame)
    found = re.search(r"Return value: (\d+)", proc.stdout + proc.stderr)
    if proc.returncode != 0 or not found:
        return _version_says((6, 10), f"test run failed: {_said(proc)}")
    rc = ctypes.c_int32(int(found.group(1))).value
    if rc < 0:
        return False, f"bpf_fib_lookup(BPF_FIB_LOOKUP_MARK | SKIP_NEIGH) returned {os.strerror(-rc)} (needs Linux 6.10)"
    return True, f"ok: bpf_fib_lookup(BPF_FIB_LOOKUP_MARK | SKIP_NEIGH) in a test run returned {rc}"


def _version_says(at_least: tuple[int, int], reason: str) -> tuple[bool, str]:
    release = os.uname().release
    found = re.match(r"(\d+)\.(\d+)", release)
    version = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    return version >= at_least, f"{reason}; kernel {release}, {'at least' if version >= at_least else 'older than'} " \
                                f"{at_least[0]}.{at_least[1]}"


@in_namespace
def check_lwt_bpf(scratch: Scratch) -> tuple[bool, str]:
    try:
        program = scratch.programs()["lwt"]
    except Unavailable as why:
        return config_says(("CONFIG_LWTUNNEL_BPF",), str(why))
    return _outcome(scratch.ip("-6", "route", "add", "fd00:77::/64", "encap", "bpf", "xmit", "pinned", program,
                               "dev", "veth0"),
                    "ip -6 route add fd00:77::/64 encap bpf xmit pinned (bpftool-loaded probe) dev veth0")


# ------------------------------------------------- sysctl, nft, rules
def _sysctl(scratch: Scratch, *settings: str) -> tuple[bool, str]:
    return _outcome(scratch.inside("sysctl", "-w", *settings), f"sysctl -w {' '.join(settings)}")


@in_namespace
def check_ioam(scratch: Scratch) -> tuple[bool, str]:
    return _sysctl(scratch, "net.ipv6.ioam6_id=1", "net.ipv6.conf.veth0.ioam6_enabled=1")


@in_namespace
def check_seg6_enabled(scratch: Scratch) -> tuple[bool, str]:
    return _sysctl(scratch, "net.ipv6.conf.veth0.seg6_enabled=1")


NFT_NETDEV = """table netdev cpn_probe {
    chain in { type filter hook ingress device "veth0" priority 0; policy accept; }
    chain out { type filter hook egress device "veth0" priority 0; policy accept; }
}
"""


@in_namespace
def check_nft_netdev(scratch: Scratch) -> tuple[bool, str]:
    if shutil.which("nft") is None:
        return config_says(("CONFIG_NF_TABLES_NETDEV", "CONFIG_NETFILTER_EGRESS"), "nft is not installed")
    return _outcome(scratch.inside("nft", "-f", "-", input=NFT_NETDEV),
                    "nft: table netdev with hook ingress and hook egress chains on veth0")


@in_namespace
def check_policy_routing(scratch: Scratch) -> tuple[bool, str]:
    proc = scratch.ip("-6", "rule", "add", "from", "fd00:1::/64", "lookup", "100", "pref", "100")
    if proc.returncode == 0:
        proc = scratch.ip("-6", "rule", "add", "fwmark", "0x5c000001", "lookup", "101", "pref", "101")
    return _outcome(proc, "ip -6 rule add from fd00:1::/64 lookup 100; ip -6 rule add fwmark 0x5c000001 lookup 101")


# --------------------------------------------------------- host side
def check_openvswitch(scratch: Scratch) -> tuple[bool, str]:
    if os.path.isdir("/sys/module/openvswitch"):
        return True, "/sys/module/openvswitch exists (loaded or built in)"
    if not os.path.exists("/proc/modules"):
        return False, "no /sys/module/openvswitch, and this kernel has no loadable modules (no /proc/modules)"
    if shutil.which("modprobe") is None:
        return False, "no /sys/module/openvswitch, and modprobe is not installed"
    proc = scratch.run("modprobe", "-n", "openvswitch")
    return (True, "loadable: modprobe -n openvswitch") if proc.returncode == 0 else \
        (False, f"no /sys/module/openvswitch; modprobe -n openvswitch: {_said(proc)}")


SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine(), 321)


def check_bpf_syscall(scratch: Scratch) -> tuple[bool, str]:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    attr = (ctypes.c_uint32 * 32)(2, 4, 4, 1)  # BPF_MAP_TYPE_ARRAY, key 4, value 4, 1 entry
    fd = libc.syscall(SYS_BPF, 0, ctypes.byref(attr), ctypes.sizeof(attr))  # BPF_MAP_CREATE
    if fd < 0:
        return False, f"bpf(BPF_MAP_CREATE): {os.strerror(ctypes.get_errno())}"
    os.close(fd)
    return True, "ok: bpf(BPF_MAP_CREATE) made an array map"


def _tool(*cmd: str):
    def check(scratch: Scratch) -> tuple[bool, str]:
        path = shutil.which(cmd[0])
        if path is None:
            return False, f"{cmd[0]} is not installed (not on PATH)"
        proc = scratch.run(*cmd)
        lines = (proc.stdout or proc.stderr).strip().splitlines()
        if proc.returncode != 0:
            return False, f"{' '.join(cmd)}: {_said(proc)}"
        return True, f"{path}: {lines[0].strip() if lines else 'ok'}"
    return check


def check_ovs_daemons(scratch: Scratch) -> tuple[bool, str]:
    if shutil.which("ovs-vsctl") is None:
        return False, "ovs-vsctl is not installed (Open vSwitch)"
    proc = scratch.run("ovs-vsctl", "--timeout=3", "show")
    if proc.returncode != 0:
        return False, f"ovs-vsctl --timeout=3 show: {_said(proc)}"
    version = re.search(r'ovs_version: "([^"]+)"', proc.stdout)
    return True, f"ovs-vsctl show answered (Open vSwitch {version.group(1) if version else '?'})"


#: One check per feature of :data:`cpn_net.dataplane.probe.CATALOGUE`.
CHECKS = {
    "seg6_lwtunnel": _route("fd00:99::/64", "encap", "seg6", "mode", "encap", "segs", "fd00:1::2", "dev", "veth0"),
    "seg6local_end": _seg6local("fc00:1::1/128", "End"),
    "seg6local_end_x": _seg6local("fc00:1::2/128", "End.X", "nh6", "fd00:1::2"),
    "seg6local_end_dx6": _seg6local("fc00:1::3/128", "End.DX6", "nh6", "fd00:1::2"),
    "seg6local_end_dt6": _seg6local("fc00:1::4/128", "End.DT6", "table", "100"),
    "seg6local_end_b6_encaps": _seg6local("fc00:1::5/128", "End.B6.Encaps", "srh", "segs", "fd00:1::2"),
    "netem": check_netem,
    "openvswitch_module": check_openvswitch,
    "bpf_syscall": check_bpf_syscall,
    "cls_bpf": check_cls_bpf,
    "clsact": check_clsact,
    "bpf_fib_lookup_mark": check_fib_lookup_mark,
    "lwt_bpf": check_lwt_bpf,
    "ioam_transit": check_ioam,
    "seg6_enabled_sysctl": check_seg6_enabled,
    "nft_netdev": check_nft_netdev,
    "htb": check_htb,
    "policy_routing": check_policy_routing,
    "clang": _tool("clang", "--version"),
    "bpftool": _tool("bpftool", "version"),
    "tc": _tool("tc", "-V"),
    "ovs_daemons": check_ovs_daemons,
    "nft": _tool("nft", "--version"),
    "ip": _tool("ip", "-V"),
}
