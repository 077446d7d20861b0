"""The run directory and the manifest the emulator writes for the controller and the CLI.

One cpn network runs per machine at a time; its state lives in :data:`RUN_DIR`
(``/run/cpn``, a tmpfs, so a reboot leaves nothing behind):

=====================  =====================================================
file                   content
=====================  =====================================================
``manifest.json``      the network plan, topology, link-emulation mode, PIDs
``topology.<ext>``     a copy of the topology file booted (the controller reads it)
``controller.json``    the controller's state (written by the controller)
``daemon.pid``         PID of the process that holds the running network
``control.sock``       the daemon's control socket (status, link set, down)
``links/<l>.sock``     control sockets of the userspace link elements
``*.log``              logs of the daemon, the controller and link elements
=====================  =====================================================
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile

from cpn_net.emulation.plan import NetworkPlan

RUN_DIR = os.environ.get("CPN_RUN_DIR", "/run/cpn")
MANIFEST_SCHEMA = 1


@dataclasses.dataclass(frozen=True)
class Manifest:
    run_id: str
    topology: dict  # Topology.to_dict(): the full resolved configuration
    plan: NetworkPlan
    link_mode: str
    created_at: float
    processes: dict  # role -> PID of processes the emulator started

    def to_dict(self) -> dict:
        return {"schema": MANIFEST_SCHEMA, "run_id": self.run_id, "topology": self.topology,
                "plan": self.plan.to_dict(), "link_mode": self.link_mode,
                "created_at": self.created_at, "processes": self.processes}


def write_json_atomic(path: str, data: dict) -> None:
    """Write JSON so that readers never see a half-written file."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True, default=str)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_manifest(run_dir: str, manifest: Manifest) -> None:
    write_json_atomic(os.path.join(run_dir, "manifest.json"), manifest.to_dict())


def read_manifest(run_dir: str | None = None) -> Manifest:
    """The manifest of the network running in ``run_dir`` (default: :data:`RUN_DIR` at call time).

    Raises
    ------
    ValueError
        If the manifest was written by a newer cpn_net (a higher schema number).
    """
    path = os.path.join(RUN_DIR if run_dir is None else run_dir, "manifest.json")
    with open(path) as handle:
        data = json.load(handle)
    if data.get("schema", 0) > MANIFEST_SCHEMA:
        raise ValueError(f"{path}: schema {data.get('schema')} is newer than this cpn_net "
                         f"understands ({MANIFEST_SCHEMA}); upgrade cpn_net")
    return Manifest(data["run_id"], data["topology"], NetworkPlan.from_dict(data["plan"]),
                    data["link_mode"], data["created_at"], data["processes"])


def snapshot_topology(run_dir: str, source: str) -> str | None:
    """Copy the topology file into the run directory; returns the copy's path."""
    if not source or not os.path.isfile(source):
        return None
    extension = os.path.splitext(source)[1] or ".yaml"
    target = os.path.join(run_dir, f"topology{extension}")
    shutil.copyfile(source, target)
    return target


def topology_snapshot(run_dir: str):
    """The topology the running network was booted from (None without a snapshot)."""
    from cpn_net.model import load_topology

    for name in sorted(os.listdir(run_dir)):
        if name.startswith("topology."):
            return load_topology(os.path.join(run_dir, name))
    return None


def read_json(path: str) -> dict | None:
    """A JSON file's content, or None while it does not exist yet."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
