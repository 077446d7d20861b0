"""Tests of cleanup's process handling: only processes that are ours are killed.

Only this test's own child processes are touched, by PID; nothing here lists
or removes namespaces, bridges or interfaces (another emulation may be running).
Each child announces itself once running, because until it has exec'd its
command line is still pytest's.
"""

import signal
import subprocess
import sys

import pytest

from cpn_net.emulation.cleanup import is_our_command, kill_pid, pid_alive

SLEEPER = "import time; print('ready', flush=True); time.sleep(30)"


@pytest.fixture
def spawn():
    started = []

    def start(argv):
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout.readline() == "ready\n"
        return proc

    yield start
    for proc in started:  # whatever a failed test left running, by PID
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        proc.stdout.close()


def test_a_process_that_is_not_ours_is_left_alone(spawn):
    proc = spawn(["sh", "-c", "echo ready; exec sleep 30"])
    assert kill_pid(proc.pid) is False
    assert proc.poll() is None and pid_alive(proc.pid)
    proc.kill()
    assert proc.wait(timeout=5) == -signal.SIGKILL


def test_a_process_that_merely_mentions_cpn_net_is_left_alone(spawn):
    # reproducer: a recycled PID running `pytest ... cpn_net` matched the substring "cpn_net"
    proc = spawn([sys.executable, "-c", SLEEPER, "tests/unit", "cpn_net", "cpn_net/cli.py", "mininet:r1-x", "x"])
    assert kill_pid(proc.pid) is False
    assert proc.poll() is None


def test_one_of_our_modules_is_terminated(spawn):
    # argv after -c is the script's own: "-m cpn_net.<module>" reads like our daemon's command line
    proc = spawn([sys.executable, "-c", SLEEPER, "-m", "cpn_net.unit_test_marker"])
    assert kill_pid(proc.pid, timeout_s=5) is True
    assert proc.wait(timeout=5) == -signal.SIGTERM


def test_a_vanished_pid_is_not_ours_and_not_alive():
    proc = subprocess.Popen(["true"])
    proc.wait(timeout=5)  # reaped: the PID no longer exists
    assert pid_alive(proc.pid) is False
    assert kill_pid(proc.pid) is False


@pytest.mark.parametrize("argv, ours", [
    (["/usr/bin/python3", "-m", "cpn_net.cli", "up", "t.yaml", "--daemon"], True),
    (["python", "-m", "cpn_net.emulation.wire", "--a", "l1x2-eth0"], True),
    (["python", "-m", "controllers.runner", "--run-dir", "/run/cpn"], True),
    (["bash", "--norc", "--noediting", "-is", "mininet:k1-1"], True),
    (["python", "-m", "pytest", "-q", "tests/unit", "cpn_net", "."], False),
    (["vim", "cpn_net/emulation/cleanup.py"], False),
    (["grep", "-r", "mininet:", "src"], False),
    (["mininet:r1"], False),
    ([], False),
])
def test_is_our_command(argv, ours):
    assert is_our_command(argv) is ours


def test_a_refused_boot_leaves_the_running_network_alone(tmp_path):
    """`cpn up` while a network runs is refused, and the refusal tears nothing of it down."""
    import json
    import os

    import pytest

    from cpn_net.emulation.network import EmulatedNetwork, EmulationError
    from cpn_net.model import load_topology

    (tmp_path / "manifest.json").write_text(json.dumps({"processes": {"daemon": os.getpid()}}))
    (tmp_path / "links").mkdir()
    network = EmulatedNetwork(load_topology("topologies/tiny.yaml"), run_dir=str(tmp_path))
    removed = []
    network.stop = lambda: removed.append("stop")  # what a refusal must not reach
    with pytest.raises(EmulationError, match="already running"):
        network.start()
    assert removed == [] and (tmp_path / "manifest.json").exists() and (tmp_path / "links").is_dir()
