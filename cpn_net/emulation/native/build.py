"""Compile the native link element (``wire.c``) and its traffic tool (``udpflood.c``) with gcc.

The setup compiles them (``python -m cpn_net.emulation.native.build``); :func:`ensure_built`
compiles again when a source is newer than its binary, so an edited element never runs
stale. No binary is committed: they go to ``build/native/`` under the project (ignored by
git), or to ``$CPN_NATIVE_BUILD_DIR``.

The element is a drop-in replacement for ``python -m cpn_net.emulation.wire``: same
arguments, same control socket and replies (see ``wire.c``); :func:`element_command`
builds its command line.
"""

from __future__ import annotations

import os
import sys

from cpn_net.toolchain import compile_if_stale

SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(SOURCE_DIR)))
PROGRAMS = ("wire", "udpflood")  # wire.c -> build/native/wire
SETUP_HINT = "install gcc (apt-get install gcc libc6-dev) or run the README's setup (sudo bash scripts/setup.sh)"


class BuildError(RuntimeError):
    """A native program could not be compiled; the message names it and the fix."""


def build_dir() -> str:
    return os.environ.get("CPN_NATIVE_BUILD_DIR") or os.path.join(PROJECT_DIR, "build", "native")


def source_path(name: str, source_dir: str = SOURCE_DIR) -> str:
    return os.path.join(source_dir, f"{name}.c")


def binary_path(name: str) -> str:
    return os.path.join(build_dir(), name)


def compile_command(source: str, out: str) -> list[str]:
    """gcc's command line for one program.

    >>> compile_command("wire.c", "out/wire")
    ['gcc', '-O2', '-g', '-Wall', '-Wextra', '-o', 'out/wire', 'wire.c', '-lm']
    """
    return ["gcc", "-O2", "-g", "-Wall", "-Wextra", "-o", out, source, "-lm"]


def ensure_built(name: str = "wire", source_dir: str = SOURCE_DIR) -> str:
    """The binary of program ``name``, compiled first if missing or older than its source.

    Raises
    ------
    BuildError
        gcc is missing (naming the fix), or the source does not compile (naming the file
        and gcc's first errors).
    """
    return compile_if_stale(source_path(name, source_dir), binary_path(name), lambda out: compile_command(
        source_path(name, source_dir), out), compiler="gcc", what=f"native program {name!r}", hint=SETUP_HINT,
        error=BuildError)


def element_command(intf_a: str, intf_b: str, control_path: str, delay_ms: float = 0.0,
                    jitter_ms: float = 0.0, loss_pct: float = 0.0, seed: int = 1,
                    binary: str | None = None) -> list[str]:
    """The native element's command line: the arguments of ``python -m cpn_net.emulation.wire``.

    >>> element_command("l1x2-eth0", "l1x2-eth1", "/run/x.sock", 5, 1, 0.5, 7, binary="wire")
    ['wire', '--a', 'l1x2-eth0', '--b', 'l1x2-eth1', '--control', '/run/x.sock', '--delay-ms', '5',
     '--jitter-ms', '1', '--loss-pct', '0.5', '--seed', '7']
    """
    return [binary or ensure_built("wire"), "--a", intf_a, "--b", intf_b, "--control", control_path,
            "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms), "--loss-pct", str(loss_pct),
            "--seed", str(seed)]


def main() -> int:
    try:
        for name in PROGRAMS:
            print(f"native: {ensure_built(name)}")
    except BuildError as err:
        print(f"native: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
