"""Load, pin and attach the eBPF data plane in router namespaces; remove it again.

Per router ``r``: the programs and their maps are loaded once with bpftool and
pinned under ``<run dir>/bpf/<r>/prog`` and ``<run dir>/bpf/<r>/maps`` (a bpffs
mounted at ``<run dir>/bpf``: visible from every namespace, and each router gets
maps of its own); then every interface of ``r`` gets a clsact qdisc with
``cpn_sid`` at ingress and ``cpn_encap`` at egress. Pinned programs and maps
outlive the controller: the data plane keeps forwarding while it restarts.

Everything here is named by the run directory and the router: :func:`remove`
unpins and unmounts only what :func:`attach` made.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from cpn_net.dataplane.build import BuildError, ensure_built, verifier_excerpt
from cpn_net.model import addressing

PROGRAMS = {"ingress": "cpn_sid", "egress": "cpn_encap"}


def bpf_root(run_dir: str) -> str:
    return os.path.join(run_dir, "bpf")


def pin_dir(run_dir: str, router: str) -> str:
    return os.path.join(bpf_root(run_dir), router)


def is_mounted(path: str) -> bool:
    path = os.path.realpath(path)
    try:
        with open("/proc/self/mounts") as handle:
            return any(line.split()[1] == path and line.split()[2] == "bpf" for line in handle)
    except OSError:
        return False


def mount(run_dir: str) -> str:
    """Mount a bpffs at ``<run dir>/bpf`` (once)."""
    root = bpf_root(run_dir)
    os.makedirs(root, exist_ok=True)
    if not is_mounted(root):
        proc = subprocess.run(["mount", "-t", "bpf", "bpf", root], capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"cannot mount a BPF file system at {root}: {proc.stderr.strip()} "
                             "(needs root and a kernel with CONFIG_BPF_SYSCALL)")
    return root


def load(run_dir: str, router: str, obj: str | None = None) -> str:
    """Load the programs for ``router`` and pin them and their maps; returns the pin directory.

    Raises
    ------
    BuildError
        bpftool is missing (naming the setup step), or the kernel refused a program: the
        message names the program and the verifier's complaint with its source line.
    """
    obj = obj or ensure_built("srv6")
    if shutil.which("bpftool") is None:
        raise BuildError("bpftool is not installed; run the README's setup (sudo bash scripts/setup.sh)")
    mount(run_dir)
    where = pin_dir(run_dir, router)
    if os.path.exists(os.path.join(where, "prog", PROGRAMS["ingress"])):
        return where  # pinned already: reuse (a restarted controller, a re-attach)
    os.makedirs(os.path.join(where, "maps"), exist_ok=True)
    proc = subprocess.run(["bpftool", "prog", "loadall", obj, os.path.join(where, "prog"), "type", "classifier",
                           "pinmaps", os.path.join(where, "maps")], capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(where, ignore_errors=True)
        raise BuildError(f"loading the eBPF data plane for {router} failed: "
                         f"{verifier_excerpt(proc.stderr + proc.stdout)}")
    return where


def attach_commands(router: str, interfaces, where: str) -> list[str]:
    """``tc -batch`` lines attaching both programs to every interface of a router."""
    lines = []
    for intf in interfaces:
        lines.append(f"qdisc replace dev {intf} clsact")
        for direction, program in PROGRAMS.items():
            lines.append(f"filter replace dev {intf} {direction} prio 1 handle 1 bpf direct-action "
                         f"object-pinned {os.path.join(where, 'prog', program)}")
    return lines


def attach(run_dir: str, router: str, interfaces) -> str:
    """Load (if needed) and attach the data plane to ``interfaces`` of ``router``."""
    where = load(run_dir, router)
    script = "\n".join(attach_commands(router, interfaces, where)) + "\n"
    proc = subprocess.run(["ip", "netns", "exec", addressing.namespace(router), "tc", "-batch", "-"],
                          input=script, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise BuildError(f"attaching the eBPF data plane to {router} failed: {proc.stderr.strip()[-400:]}")
    return where


def remove(run_dir: str) -> list[str]:
    """Unpin every program and map under ``<run dir>/bpf`` and unmount it; returns what went."""
    root = bpf_root(run_dir)
    removed = []
    if os.path.isdir(root):
        for router in sorted(os.listdir(root)):
            if os.path.isdir(os.path.join(root, router)):  # not the bpffs's own maps.debug, progs.debug
                shutil.rmtree(os.path.join(root, router), ignore_errors=True)
                removed.append(router)
    if is_mounted(root):
        subprocess.run(["umount", root], capture_output=True)
    return removed
