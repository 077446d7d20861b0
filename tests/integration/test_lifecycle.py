"""Boot and teardown leave nothing behind: `cpn down`, Ctrl-C after boot, Ctrl-C during boot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from .conftest import ROOT, TINY, cpn, leftovers, wait_until

pytestmark = pytest.mark.integration


def _plan_nodes() -> list[dict]:
    with open("/run/cpn/manifest.json") as handle:
        return json.load(handle)["plan"]["nodes"]


def _pids() -> dict:
    with open("/run/cpn/manifest.json") as handle:
        return json.load(handle)["processes"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_down_leaves_nothing_behind():
    assert leftovers() == []
    cpn("up", TINY, "--detach")
    nodes, pids = _plan_nodes(), _pids()
    assert len(pids) > len(nodes) // 2
    cpn("down")
    assert leftovers(nodes) == []
    still = [f"{role}:{pid}" for role, pid in pids.items() if _alive(pid)]
    assert still == [], f"processes still running after cpn down: {still}"
    assert "no cpn network is running" in cpn("status", check=False).stderr


def _start_foreground():
    return subprocess.Popen([sys.executable, "-m", "cpn_net.cli", "up", TINY], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _read_until(proc, marker: str) -> str:
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"cpn up ended before printing {marker!r}:\n{''.join(seen)[-3000:]}")


@pytest.mark.parametrize("interrupt_after", ["network running", "WAN link elements"])
def test_ctrl_c_leaves_nothing_behind(interrupt_after):
    assert leftovers() == []
    proc = _start_foreground()
    try:
        _read_until(proc, interrupt_after)
        nodes = _plan_nodes()
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "nothing left behind" in rest, rest[-2000:]
    wait_until(lambda: leftovers(nodes) == [], 10, f"teardown after Ctrl-C: {leftovers(nodes)}")


def test_up_refuses_a_bad_topology_without_touching_anything(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsites:\n  - {name: a}\n  - {name: b}\nlinks:\n  - {a: a, b: c, delay_ms: 1}\n")
    proc = cpn("up", str(bad), check=False)
    assert proc.returncode == 1
    assert "links[0].b" in proc.stderr and str(bad) in proc.stderr
    assert leftovers() == []
