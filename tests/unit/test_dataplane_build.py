"""Bad input to the eBPF build: a source that does not compile, a program the verifier refuses,
missing tools. Each error names the program and the fix."""

from __future__ import annotations

import os
import shutil

import pytest

from cpn_net.dataplane import attach, build
from cpn_net.dataplane.build import BuildError

REQUIRED = bool(os.environ.get("CPN_REQUIRE_INTEGRATION"))

BROKEN_SYNTAX = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("tc") int broken(struct __sk_buff *skb) { return undeclared_name; }
char _license[] SEC("license") = "GPL";
"""

UNVERIFIABLE = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("tc")
int unchecked(struct __sk_buff *skb)
{
	unsigned char *data = (unsigned char *)(long)skb->data;
	return data[20]; /* no check against data_end: the verifier must refuse it */
}
char _license[] SEC("license") = "GPL";
"""


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        if REQUIRED:
            pytest.fail(f"{tool} must be installed here (scripts/setup.sh installs it)")
        pytest.skip(f"{tool} is not installed")


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CPN_BPF_BUILD_DIR", str(tmp_path / "out"))
    return tmp_path


def test_a_source_that_does_not_compile_names_the_file_and_the_error(build_dir):
    _need("clang")
    (build_dir / "broken.bpf.c").write_text(BROKEN_SYNTAX)
    with pytest.raises(BuildError) as err:
        build.ensure_built("broken", source_dir=str(build_dir))
    assert "broken.bpf.c" in str(err.value) and "undeclared_name" in str(err.value)
    assert not os.path.exists(build.object_path("broken")), "no object is left from a failed build"


def test_missing_clang_names_the_setup_step(build_dir, monkeypatch):
    (build_dir / "x.bpf.c").write_text(BROKEN_SYNTAX)
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    with pytest.raises(BuildError, match=r"clang is not installed.*scripts/setup\.sh"):
        build.ensure_built("x", source_dir=str(build_dir))


def test_missing_bpftool_names_the_setup_step(build_dir, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "bpftool" else "/usr/bin/" + tool)
    with pytest.raises(BuildError, match=r"bpftool is not installed.*scripts/setup\.sh"):
        attach.load(str(build_dir / "run"), "r1", obj=str(build_dir / "any.o"))


def test_a_program_the_verifier_refuses_is_named_with_the_verifiers_line(build_dir):
    if os.geteuid() != 0:
        if REQUIRED:
            pytest.fail("needs root to load BPF programs")
        pytest.skip("needs root to load BPF programs")
    _need("clang")
    _need("bpftool")
    (build_dir / "unverifiable.bpf.c").write_text(UNVERIFIABLE)
    obj = build.ensure_built("unverifiable", source_dir=str(build_dir))
    run_dir = str(build_dir / "run")
    try:
        with pytest.raises(BuildError) as err:
            attach.load(run_dir, "r1", obj=obj)
        message = str(err.value)
        assert "program unchecked" in message and "unverifiable.bpf.c:" in message, message
        assert "outside of the packet" in message, message  # the verifier's own words
        assert not os.path.exists(attach.pin_dir(run_dir, "r1")), "nothing stays pinned"
    finally:
        attach.remove(run_dir)
