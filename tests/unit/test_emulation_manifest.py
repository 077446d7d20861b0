"""Tests of the run directory's manifest and atomic JSON writes."""

import json
import os

import pytest

from cpn_net.emulation import manifest as manifest_io
from cpn_net.emulation.manifest import (
    MANIFEST_SCHEMA,
    Manifest,
    read_json,
    read_manifest,
    write_json_atomic,
    write_manifest,
)
from cpn_net.emulation.plan import build_plan
from cpn_net.model import load_topology


@pytest.fixture(scope="module")
def manifest():
    topology = load_topology("topologies/tiny.yaml")
    return Manifest(run_id="20261121T120000Z-abc123", topology=topology.to_dict(), plan=build_plan(topology),
                    link_mode="userspace", created_at=1795000000.25, processes={"daemon": 4242, "controller": 4243})


def test_write_read_round_trip(tmp_path, manifest):
    write_manifest(str(tmp_path), manifest)
    assert read_manifest(str(tmp_path)) == manifest
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["schema"] == MANIFEST_SCHEMA and data["plan"]["topology"] == "tiny"


def test_read_manifest_defaults_to_the_run_dir_at_call_time(tmp_path, monkeypatch, manifest):
    # reproducer: the default was bound at import, so patching RUN_DIR had no effect
    write_manifest(str(tmp_path), manifest)
    monkeypatch.setattr(manifest_io, "RUN_DIR", str(tmp_path))
    assert read_manifest().run_id == manifest.run_id


def test_a_newer_schema_is_refused_with_a_fix(tmp_path, manifest):
    data = manifest.to_dict()
    data["schema"] = MANIFEST_SCHEMA + 1
    write_json_atomic(str(tmp_path / "manifest.json"), data)
    with pytest.raises(ValueError) as info:
        read_manifest(str(tmp_path))
    assert str(info.value) == (f"{tmp_path}/manifest.json: schema {MANIFEST_SCHEMA + 1} is newer than this "
                               f"cpn_net understands ({MANIFEST_SCHEMA}); upgrade cpn_net")


def test_write_json_atomic_leaves_only_the_target(tmp_path):
    target = tmp_path / "state.json"
    write_json_atomic(str(target), {"b": 1, "a": [1, 2]})
    write_json_atomic(str(target), {"replaced": True, "path": tmp_path})  # default=str for odd values
    assert os.listdir(tmp_path) == ["state.json"]
    assert json.loads(target.read_text()) == {"replaced": True, "path": str(tmp_path)}


def test_write_json_atomic_failure_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "state.json"
    write_json_atomic(str(target), {"version": 1})
    circular = {}
    circular["self"] = circular
    with pytest.raises(ValueError, match="Circular reference"):
        write_json_atomic(str(target), circular)
    assert os.listdir(tmp_path) == ["state.json"]
    assert json.loads(target.read_text()) == {"version": 1}


def test_read_json_is_none_until_the_file_exists(tmp_path):
    assert read_json(str(tmp_path / "controller.json")) is None
    write_json_atomic(str(tmp_path / "controller.json"), {"pid": 1})
    assert read_json(str(tmp_path / "controller.json")) == {"pid": 1}
