"""`cpn doctor` for real: it probes this machine's kernel and tools and leaves nothing behind."""

from __future__ import annotations

import glob
import gzip
import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.integration

NAMES = ["seg6_lwtunnel", "seg6local_end", "seg6local_end_x", "seg6local_end_dx6", "seg6local_end_dt6",
         "seg6local_end_b6_encaps", "netem", "openvswitch_module", "bpf_syscall", "cls_bpf", "clsact",
         "bpf_fib_lookup_mark", "lwt_bpf", "ioam_transit", "seg6_enabled_sysctl", "nft_netdev", "htb",
         "policy_routing", "clang", "bpftool", "tc", "ovs_daemons", "nft", "ip"]


def kernel_config() -> dict[str, str]:
    with gzip.open("/proc/config.gz", "rt") as handle:
        return dict(line.strip().split("=", 1) for line in handle if line.startswith("CONFIG_"))


def doctor(*args: str) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``python -m cpn_net.dataplane.doctor``; also its PID, which names its scratch namespace."""
    proc = subprocess.Popen([sys.executable, "-m", "cpn_net.dataplane.doctor", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), proc.pid


def assert_nothing_left(pid: int) -> None:
    scratch = f"cpn-probe-{pid}"
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert scratch not in [line.split()[0] for line in netns.splitlines() if line.strip()]
    with open("/proc/self/mounts") as handle:
        assert scratch not in handle.read()
    assert not glob.glob(f"/tmp/{scratch}-*")


@pytest.fixture(scope="module")
def json_run():
    proc, pid = doctor("--json")
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout), proc, pid


def test_json_shape(json_run):
    data, _, _ = json_run
    assert set(data) - {"error"} == {"features", "dataplane", "link_emulation", "ovs_datapath"}
    assert list(data["features"]) == NAMES
    for name, feature in data["features"].items():
        assert set(feature) == {"present", "detail", "used_for", "instead"}, name
        assert isinstance(feature["present"], bool) and feature["detail"], name
    assert data["link_emulation"] in ("netem", "userspace")
    assert data["ovs_datapath"] in ("kernel", "user")


def test_what_this_machine_has(json_run):
    data, _, _ = json_run
    features = data["features"]
    for name in ("bpf_syscall", "cls_bpf", "htb", "policy_routing"):
        assert features[name]["present"], f"{name}: {features[name]['detail']}"


def test_data_plane_follows_the_kernel_build(json_run):
    data, proc, _ = json_run
    config = kernel_config()
    has_seg6 = config.get("CONFIG_IPV6_SEG6_LWTUNNEL") == "y"
    assert data["features"]["seg6_lwtunnel"]["present"] is has_seg6
    assert data["features"]["netem"]["present"] is (config.get("CONFIG_NET_SCH_NETEM") in ("y", "m"))
    if has_seg6:
        assert data["dataplane"] == "kernel"
    else:
        assert data["dataplane"] == "bpf", data.get("error")
        assert proc.returncode == 0


def test_no_scratch_namespace_or_bpffs_is_left(json_run):
    _, _, pid = json_run
    assert_nothing_left(pid)


def test_requesting_the_kernel_data_plane_without_seg6_fails_naming_the_fix():
    if kernel_config().get("CONFIG_IPV6_SEG6_LWTUNNEL") == "y":
        pytest.skip("this kernel has seg6: --dataplane kernel is possible")
    proc, pid = doctor("--dataplane", "kernel")
    assert proc.returncode == 1
    assert "CONFIG_IPV6_SEG6_LWTUNNEL" in proc.stderr and "--dataplane bpf or auto" in proc.stderr
    assert "data plane: none" in proc.stdout
    assert_nothing_left(pid)
