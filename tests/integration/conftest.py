"""Fixtures for integration tests: real Mininet, Open vSwitch, os-ken, kernel SRv6.

They need root and Open vSwitch. Where those are missing the tests skip with
the reason — except under CI (``CPN_REQUIRE_INTEGRATION=1``), where a missing
component is a failure: CI must prove the real thing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "topologies", "tiny.yaml")
DIAMOND = os.path.join(ROOT, "topologies", "diamond.yaml")


def _missing_component() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, Open vSwitch)"
    for tool in ("mnexec", "ovs-vsctl", "iperf3", "ethtool", "ping"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run scripts/setup.sh)"
    return None


@pytest.fixture(scope="session", autouse=True)
def integration_prerequisites():
    reason = _missing_component()
    if reason:
        if os.environ.get("CPN_REQUIRE_INTEGRATION"):
            pytest.fail(f"integration tests must run here but {reason}")
        pytest.skip(reason)


def cpn(*args, check=True, timeout=300, input=None) -> subprocess.CompletedProcess:
    """Run the real ``cpn`` command line; on failure, show what it printed."""
    proc = subprocess.run([sys.executable, "-m", "cpn_net.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"cpn {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


def in_node(node: str, command: str, check=True, timeout=120) -> subprocess.CompletedProcess:
    """Run a shell command inside a running node's named namespace (``cpn-<node>``)."""
    proc = subprocess.run(["ip", "netns", "exec", f"cpn-{node}", "sh", "-c", command],
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"in {node}: `{command}` exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-2000:]}")
    return proc


def wait_until(predicate, timeout_s: float, message: str, interval_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s: {message} (last value: {last!r})")


def status() -> dict:
    return json.loads(cpn("status", "--json").stdout)


def leftovers(plan_nodes: list[dict] | None = None) -> list[str]:
    """Everything a cpn network could leave behind that still exists."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"namespace {line.split()[0]}" for line in netns.splitlines() if line.startswith("cpn-")]
    bridges = subprocess.run(["ovs-vsctl", "--columns=name,external_ids", "--format=csv", "list", "bridge"],
                             capture_output=True, text=True).stdout
    found += [f"bridge {line.split(',')[0]}" for line in bridges.splitlines() if "cpn-run" in line]
    if plan_nodes:
        intfs = set(os.listdir("/sys/class/net"))
        for node in plan_nodes:
            for intf in node["interfaces"]:
                if intf["name"] in intfs:
                    found.append(f"interface {intf['name']}")
    if os.path.exists("/run/cpn"):
        found.append("run directory /run/cpn")
    with open("/proc/self/mounts") as handle:  # the eBPF data plane's bpffs (pins of programs and maps)
        found += [f"bpffs {line.split()[1]}" for line in handle
                  if line.split()[2] == "bpf" and line.split()[1].startswith("/run/cpn")]
    return found


def link_seed() -> int:
    """The link elements' seed for this boot: ``CPN_TEST_SEED`` if set, else a fresh random one.

    A fixed seed would make every run draw nearly the same stretch of the loss
    generator (the traffic before a test moves it by only a few hundred frames),
    so a statistical test would pass or fail together in every run. A fresh seed
    makes each run an independent sample; the seed is in the status the fixture
    yields, and failure messages name it so a run can be repeated.
    """
    given = os.environ.get("CPN_TEST_SEED")
    return int(given) if given else random.SystemRandom().randrange(1, 1_000_000)


@pytest.fixture(scope="module")
def diamond():
    """The diamond topology (two ways from a to d) booted detached; yields ``cpn status --json``."""
    assert leftovers() == [], f"a previous run left: {leftovers()}"
    cpn("up", DIAMOND, "--detach")
    try:
        yield status()
    finally:
        cpn("down")


@pytest.fixture(scope="module")
def tiny_network():
    """The tiny topology booted detached with the real CLI; torn down with `cpn down`.

    Yields ``cpn status --json`` with ``seed``: the link elements' seed (:func:`link_seed`).
    """
    assert not leftovers(), f"a previous run left: {leftovers()}"
    seed = link_seed()
    cpn("up", TINY, "--detach", "--seed", str(seed))
    try:
        yield {**status(), "seed": seed}
    finally:
        cpn("down")
