"""The capability probe's decisions and output on fake feature sets (no root, no kernel touched)."""

from __future__ import annotations

import argparse
import json
import subprocess

import pytest

from cpn_net.dataplane import doctor, probe, probe_checks
from cpn_net.dataplane.probe import (
    BPF_NEEDS,
    CATALOGUE,
    KERNEL_NEEDS,
    ProbeError,
    choose_dataplane,
    choose_link_emulation,
    choose_ovs_datapath,
    feature_set,
    make_feature,
    render_table,
    report,
    requested_dataplane,
)

NAMES = ["seg6_lwtunnel", "seg6local_end", "seg6local_end_x", "seg6local_end_dx6", "seg6local_end_dt6",
         "seg6local_end_b6_encaps", "netem", "openvswitch_module", "bpf_syscall", "cls_bpf", "clsact",
         "bpf_fib_lookup_mark", "lwt_bpf", "ioam_transit", "seg6_enabled_sysctl", "nft_netdev", "htb",
         "policy_routing", "clang", "bpftool", "tc", "ovs_daemons", "nft", "ip"]
SEG6 = set(KERNEL_NEEDS)


def kernel_without(absent) -> dict:
    """Every feature present except ``absent`` (names)."""
    return feature_set(present=[name for name in NAMES if name not in set(absent)])


#: The earlier kernel: seg6 everywhere, no netem, no OVS module.
OLD_KERNEL = kernel_without({"netem", "openvswitch_module"})
#: Today's kernel: no seg6, no netem, no OVS module; the eBPF tool chain installed.
TODAY = kernel_without(SEG6 | {"netem", "openvswitch_module"})
#: Neither seg6 nor a compiler.
BARE = kernel_without(SEG6 | {"netem", "openvswitch_module", "clang"})


def test_names_are_the_json_keys_and_every_one_has_a_check():
    assert list(CATALOGUE) == NAMES
    assert list(probe_checks.CHECKS) == NAMES


def test_old_kernel_with_seg6_chooses_the_kernel_data_plane():
    assert choose_dataplane(OLD_KERNEL) == "kernel"
    assert choose_dataplane(OLD_KERNEL, "bpf") == "bpf"
    assert choose_link_emulation(OLD_KERNEL) == "userspace"
    assert choose_ovs_datapath(OLD_KERNEL) == "user"


def test_todays_kernel_without_seg6_chooses_bpf():
    assert choose_dataplane(TODAY) == "bpf"
    assert choose_dataplane(TODAY, "bpf") == "bpf"


def test_one_missing_seg6_behaviour_is_enough_to_fall_back_to_bpf():
    assert choose_dataplane(kernel_without({"seg6local_end_dt6"})) == "bpf"


def test_neither_data_plane_names_both_fixes():
    with pytest.raises(ProbeError) as err:
        choose_dataplane(BARE)
    message = str(err.value)
    assert "no SRv6 data plane" in message
    assert "CONFIG_IPV6_SEG6_LWTUNNEL" in message
    assert "clang, not installed (run sudo bash scripts/setup.sh)" in message


def test_requested_kernel_on_a_kernel_without_seg6():
    with pytest.raises(ProbeError) as err:
        choose_dataplane(TODAY, "kernel")
    message = str(err.value)
    assert message.startswith("--dataplane kernel needs seg6 encap, seg6local End, ")
    assert "seg6local End.DT6" in message and "absent on this kernel (CONFIG_IPV6_SEG6_LWTUNNEL)" in message
    assert message.endswith("use --dataplane bpf or auto")


def test_requested_kernel_missing_only_end_dt6_names_it():
    with pytest.raises(ProbeError, match=r"^--dataplane kernel needs seg6local End\.DT6, absent on this kernel "
                                         r"\(CONFIG_IPV6_SEG6_LWTUNNEL\); use --dataplane bpf or auto$"):
        choose_dataplane(kernel_without({"seg6local_end_dt6"}), "kernel")


def test_requested_bpf_without_tools_names_the_setup_step():
    features = kernel_without({"netem", "clang", "bpftool"})
    with pytest.raises(ProbeError) as err:
        choose_dataplane(features, "bpf")
    assert str(err.value) == ("--dataplane bpf needs clang, bpftool, not installed (run sudo bash "
                              "scripts/setup.sh); use --dataplane kernel or auto")


def test_requested_kernel_when_bpf_is_impossible_too_says_so():
    with pytest.raises(ProbeError, match="--dataplane bpf is not possible either: it needs clang"):
        choose_dataplane(BARE, "kernel")


def test_old_fib_lookup_names_the_kernel_version():
    features = kernel_without(SEG6 | {"bpf_fib_lookup_mark"})
    with pytest.raises(ProbeError, match=r"Linux 6\.10"):
        choose_dataplane(features)


def test_unknown_request_lists_the_choices():
    with pytest.raises(ProbeError, match="choose one of auto, kernel, bpf"):
        choose_dataplane(TODAY, "ebpf")


def test_missing_names_count_as_absent_and_plain_dicts_work():
    assert choose_link_emulation({"netem": {"present": True}}) == "netem"
    assert choose_ovs_datapath({"openvswitch_module": make_feature("openvswitch_module", True)}) == "kernel"
    with pytest.raises(ProbeError):
        choose_dataplane({name: {"present": True} for name in BPF_NEEDS if name != "clang"})


def test_env_var_precedence(monkeypatch):
    monkeypatch.delenv("CPN_DATAPLANE", raising=False)
    assert requested_dataplane(None) == "auto"
    monkeypatch.setenv("CPN_DATAPLANE", "kernel")
    assert requested_dataplane(None) == "kernel"
    assert requested_dataplane("bpf") == "bpf"  # the command line wins
    monkeypatch.setenv("CPN_DATAPLANE", "")
    assert requested_dataplane(None) == "auto"
    monkeypatch.setenv("CPN_DATAPLANE", "vpp")
    with pytest.raises(ProbeError, match="CPN_DATAPLANE='vpp': choose one of auto, kernel, bpf"):
        requested_dataplane(None)


def test_json_shape():
    data = json.loads(json.dumps(report(TODAY)))
    assert set(data) == {"features", "dataplane", "link_emulation", "ovs_datapath"}
    assert list(data["features"]) == NAMES
    for name, feature in data["features"].items():
        assert set(feature) == {"present", "detail", "used_for", "instead"}, name
        assert isinstance(feature["present"], bool)
    assert data["dataplane"] == "bpf"
    assert data["link_emulation"] == "userspace" and data["ovs_datapath"] == "user"
    assert data["features"]["netem"]["instead"] == "cpn's userspace link element"


def test_json_without_a_data_plane_has_null_and_an_error():
    data = report(BARE)
    assert data["dataplane"] is None
    assert "sudo bash scripts/setup.sh" in data["error"]
    assert set(data) == {"features", "dataplane", "link_emulation", "ovs_datapath", "error"}


def test_table_text():
    text = render_table(report(TODAY))
    lines = text.splitlines()
    assert lines[0].split() == ["feature", "present", "cpn", "uses", "it", "for", "instead"]
    rows = {line.split()[0]: line.split()[1] for line in lines[1:len(NAMES) + 1]}
    assert rows["seg6_lwtunnel"] == "no" and rows["cls_bpf"] == "yes" and rows["netem"] == "no"
    assert "cpn's userspace link element" in text
    assert "  netem: absent" in text  # what was seen of an absent feature
    assert text.endswith("data plane: bpf\nlink emulation: userspace\nOVS datapath: user")
    assert "data plane: none (no SRv6 data plane" in render_table(report(BARE))


def test_without_root_every_feature_is_absent_saying_so(monkeypatch):
    monkeypatch.setattr(probe.os, "geteuid", lambda: 1000)
    features = probe.run_probe()
    assert list(features) == NAMES
    assert all(not f.present and f.detail == "needs root" for f in features.values())
    assert report(features)["error"] == ("the kernel was not probed: that needs root (network namespaces, bpf); "
                                         "run it with sudo")


def test_one_failing_or_hanging_check_does_not_stop_the_others(monkeypatch):
    def broken(scratch):
        raise RuntimeError("boom")

    def hangs(scratch):
        raise subprocess.TimeoutExpired(["tc", "qdisc", "add"], 10)

    checks = {name: (lambda scratch: (True, "fine")) for name in NAMES}
    checks.update(netem=broken, htb=hangs)
    monkeypatch.setattr(probe.os, "geteuid", lambda: 0)
    monkeypatch.setattr(probe_checks, "CHECKS", checks)
    features = probe.run_probe()
    assert features["netem"].detail == "probe failed: RuntimeError: boom" and not features["netem"].present
    assert features["htb"].detail == "timed out after 10 s: tc qdisc add" and not features["htb"].present
    assert all(features[name].present for name in NAMES if name not in ("netem", "htb"))


def test_scratch_namespace_name_is_reserved_and_per_process():
    scratch = probe_checks.Scratch()
    assert scratch.name == f"cpn-probe-{probe_checks.os.getpid()}"
    scratch.close()  # nothing was made: nothing to remove


def test_config_fallback_reads_the_kernel_build(monkeypatch):
    monkeypatch.setattr(probe_checks, "kernel_config", lambda: {"CONFIG_NET_CLS_BPF": "y"})
    assert probe_checks.config_says(("CONFIG_NET_CLS_BPF",), "clang is not installed") == \
        (True, "not tried (clang is not installed); /proc/config.gz: CONFIG_NET_CLS_BPF=y")
    present, detail = probe_checks.config_says(("CONFIG_LWTUNNEL_BPF",), "no clang")
    assert not present and detail.endswith("CONFIG_LWTUNNEL_BPF=not set")


# ------------------------------------------------------------ doctor
def _args(argv):
    parser = argparse.ArgumentParser(prog="cpn")
    doctor.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["doctor", *argv])


def test_doctor_prints_json_and_exits_0_when_a_data_plane_fits(monkeypatch, capsys):
    monkeypatch.delenv("CPN_DATAPLANE", raising=False)
    monkeypatch.setattr(probe, "run_probe", lambda: TODAY)
    assert _args(["--json"]).func(_args(["--json"])) == 0
    assert json.loads(capsys.readouterr().out)["dataplane"] == "bpf"


def test_doctor_exits_1_naming_the_fix(monkeypatch, capsys):
    monkeypatch.delenv("CPN_DATAPLANE", raising=False)
    monkeypatch.setattr(probe, "run_probe", lambda: TODAY)
    assert doctor.run(_args(["--dataplane", "kernel"])) == 1
    out, err = capsys.readouterr()
    assert "data plane: none (--dataplane kernel needs" in out
    assert "CONFIG_IPV6_SEG6_LWTUNNEL" in err


def test_doctor_honours_the_env_var_and_refuses_a_bad_one(monkeypatch, capsys):
    monkeypatch.setattr(probe, "run_probe", lambda: OLD_KERNEL)
    monkeypatch.setenv("CPN_DATAPLANE", "bpf")
    assert doctor.main(["--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dataplane"] == "bpf"
    monkeypatch.setenv("CPN_DATAPLANE", "nope")
    assert doctor.main([]) == 2
    assert "CPN_DATAPLANE='nope'" in capsys.readouterr().err
