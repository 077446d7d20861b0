"""Compile the eBPF data plane's C sources with clang; name what fails.

The setup compiles them (``scripts/setup.sh`` runs ``python -m cpn_net.dataplane.build``);
``cpn up`` compiles again when a source is newer than its object, so an edited
program never runs stale. No compiled object is committed: objects go to
``build/bpf/`` beside the sources' package (ignored by git), or to
``$CPN_BPF_BUILD_DIR``.
"""

from __future__ import annotations

import os
import platform
import re
import sys

from cpn_net.toolchain import compile_if_stale

SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpf")
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAMS = ("srv6",)  # srv6.bpf.c -> srv6.bpf.o
SETUP_HINT = "run the README's setup (sudo bash scripts/setup.sh), which installs clang, llvm, libbpf-dev and bpftool"


class BuildError(RuntimeError):
    """A BPF program could not be compiled, loaded or verified; the message names it and the fix."""


def build_dir() -> str:
    return os.environ.get("CPN_BPF_BUILD_DIR") or os.path.join(PROJECT_DIR, "build", "bpf")


def source_path(name: str, source_dir: str = SOURCE_DIR) -> str:
    return os.path.join(source_dir, f"{name}.bpf.c")


def object_path(name: str) -> str:
    return os.path.join(build_dir(), f"{name}.bpf.o")


def compile_command(source: str, out: str) -> list[str]:
    arch_include = f"/usr/include/{platform.machine()}-linux-gnu"
    return ["clang", "-O2", "-g", "-Wall", "-Werror", "-target", "bpf", "-I", arch_include,
            "-c", source, "-o", out]


def ensure_built(name: str = "srv6", source_dir: str = SOURCE_DIR) -> str:
    """The object of program ``name``, compiled first if missing or older than its source.

    Raises
    ------
    BuildError
        clang is missing (naming the setup step), or the source does not compile (naming
        the file and clang's first errors).
    """
    return compile_if_stale(source_path(name, source_dir), object_path(name), lambda out: compile_command(
        source_path(name, source_dir), out), compiler="clang", what="the eBPF data plane", hint=SETUP_HINT,
        error=BuildError)


def verifier_excerpt(log: str) -> str:
    """The program and the verifier's complaint (with its source line) from a failed load.

    >>> verifier_excerpt('''libbpf: prog 'cpn_sid': BPF program load failed: Permission denied
    ... ; if (x) @ srv6.bpf.c:120
    ... 12: (85) call bpf_skb_store_bytes#9
    ... R4 invalid zero-sized read
    ... processed 10 insns''')
    'program cpn_sid, at srv6.bpf.c:120: R4 invalid zero-sized read'
    """
    program = re.search(r"prog '([^']+)'", log)
    sources = re.findall(r"@ ([\w.]+:\d+)", log)
    complaint = ""
    for line in log.splitlines():
        text = line.strip()
        if text and not text.startswith((";", "libbpf", "processed", "--", "Error", "Warning", "If it")) \
                and not re.match(r"^\d+: \(", text) and not text.startswith("verification time"):
            complaint = text
    where = f", at {sources[-1]}" if sources else ""
    return f"program {program.group(1) if program else '?'}{where}: {complaint or log.strip()[-300:]}"


def main() -> int:
    try:
        for name in PROGRAMS:
            print(f"bpf: {ensure_built(name)}")
    except BuildError as err:
        print(f"bpf: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
