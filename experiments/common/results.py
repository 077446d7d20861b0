"""Self-describing experiment results: one ``result.json`` per run.

Every run writes ``results/<experiment>/<utc-time>_<git-short>/result.json`` with

- ``schema``: :data:`SCHEMA_VERSION` (readers refuse newer schemas);
- ``metadata``: git commit, package versions, kernel, link-emulation mode, seed,
  command line, UTC time;
- the experiment's own ``config`` (fully resolved), raw ``samples`` and ``summary``.

Missing values are ``null``, never ``-1``. A result is written to a temporary
file and renamed, so an interrupted run never leaves a half-written result.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from importlib import metadata as _metadata

SCHEMA_VERSION = 1
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS_DIR = os.environ.get("CPN_RESULTS_DIR", os.path.join(ROOT, "results"))
PACKAGES = ("os-ken", "mininet", "pyroute2", "scapy", "networkx", "PyYAML", "matplotlib")


class ResultError(ValueError):
    """A result file cannot be read by this version."""


def git_commit(short: bool = False) -> str | None:
    args = ["git", "-C", ROOT, "rev-parse"] + (["--short"] if short else []) + ["HEAD"]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not commit:
        return None
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = _metadata.version(name)
        except _metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def tool_version(command: list[str]) -> str | None:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else None


def metadata(seed: int | None, link_mode: str | None, config: dict | None = None,
             dataplane: str | None = None) -> dict:
    """What every result.json records about the run: versions, kernel, modes (SRv6 data plane,
    link emulation), seed, command and the full resolved configuration."""
    from cpn_net import __version__

    return {
        "cpn_net": __version__, "git_commit": git_commit(), "utc_time": utc_now(),
        "python": platform.python_version(), "kernel": platform.release(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "packages": package_versions(),
        "open_vswitch": tool_version(["ovs-vsctl", "--version"]),
        "srv6_dataplane": dataplane, "link_emulation_mode": link_mode, "seed": seed, "command": sys.argv,
        "config": config,
    }


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_directory(experiment: str) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    short = (git_commit(short=True) or "nogit").replace("-dirty", "+")
    path = os.path.join(RESULTS_DIR, experiment, f"{stamp}_{short}")
    os.makedirs(path, exist_ok=True)
    return path


def write_result(experiment: str, data: dict, directory: str | None = None) -> str:
    """Write ``data`` (with the schema version) as result.json; returns its path."""
    directory = directory or run_directory(experiment)
    path = os.path.join(directory, "result.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump({"schema": SCHEMA_VERSION, "experiment": experiment, **data}, handle, indent=1,
                  default=str, allow_nan=False)
    os.replace(tmp, path)
    return path


def read_result(path: str) -> dict:
    with open(path) as handle:
        data = json.load(handle)
    schema = data.get("schema")
    if not isinstance(schema, int):
        raise ResultError(f"{path}: no integer 'schema' key; not a cpn_net result file")
    if schema > SCHEMA_VERSION:
        raise ResultError(f"{path}: schema {schema} is newer than this cpn_net reads ({SCHEMA_VERSION}); "
                          "upgrade cpn_net to read it")
    return data


def fidelity_summary(windows: list[dict]) -> dict:
    """How many measured windows the link elements kept their timing in (see cpn_net.emulation.fidelity)."""
    judged = [w for w in windows if w.get("faithful") is not None]
    return {"windows": len(windows), "judged": len(judged),
            "faithful": sum(1 for w in judged if w["faithful"]),
            "unfaithful": [w["why"] for w in judged if not w["faithful"]]}
