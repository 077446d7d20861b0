"""Fixtures shared by the unit tests of the command line and the REST northbound."""

import pytest

from controllers.northbound.rest import start_rest_server
from cpn_net.emulation import manifest as manifest_io


@pytest.fixture
def empty_run_dir(tmp_path, monkeypatch):
    """An empty run directory of the test's own instead of /run/cpn."""
    monkeypatch.setattr(manifest_io, "RUN_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def server(api):
    """The REST northbound serving the module's ``api`` fixture on an ephemeral port."""
    server = start_rest_server(api, port=0)
    try:
        yield server
    finally:
        server.shutdown()
