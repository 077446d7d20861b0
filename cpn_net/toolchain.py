"""Compile a program the project ships as source (eBPF objects, the native link element).

The setup compiles each one; ``cpn up`` asks again through :func:`compile_if_stale`, which
compiles only when the output is missing or older than its source, so an edited source
never runs stale. Errors name the file, the compiler's first complaints and the fix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Callable


def compile_if_stale(source: str, out: str, command: Callable[[str], list[str]], *, compiler: str, what: str,
                     hint: str, error: type[Exception] = RuntimeError) -> str:
    """``out``, built from ``source`` with ``command(path)`` first if missing or stale.

    The build writes to a temporary name and renames it: a concurrent run sees the old
    output or the new one, never half of one.

    Raises
    ------
    error
        No source, no ``compiler`` on the PATH (naming ``hint``), or a failed build
        (naming ``source`` and the compiler's first error lines).
    """
    if not os.path.exists(source):
        raise error(f"no source {source} for {what}")
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(source):
        return out
    if shutil.which(compiler) is None:
        raise error(f"cannot compile {what} ({os.path.basename(source)}): {compiler} is not installed; {hint}")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    tmp = f"{out}.{os.getpid()}.tmp"
    proc = subprocess.run(command(tmp), capture_output=True, text=True)
    if proc.returncode != 0:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise error(f"compiling {source} failed:\n{first_errors(proc.stderr)}")
    os.replace(tmp, out)
    return out


def first_errors(stderr: str, count: int = 8) -> str:
    """The compiler's first error lines (or its first lines when none says error).

    >>> first_errors("a.c:1: warning: x\\na.c:2: error: y\\n")
    'a.c:2: error: y'
    """
    lines = [line for line in stderr.splitlines() if "error" in line]
    return "\n".join((lines or stderr.splitlines())[:count])
