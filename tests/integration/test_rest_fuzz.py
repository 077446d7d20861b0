"""Schemathesis against the real controller's REST northbound on the tiny network.

Every operation of ``GET /openapi.json`` gets generated requests, valid and
invalid (``--mode all``), under every check schemathesis has (``--checks
all``): no answer may be a 5xx, break the document's schemas, or refuse a
valid request with a status the document does not give for it. The run is
bounded in requests (``-n``, at least :data:`MIN_REQUESTS` sent, counted from
the HAR report) and in time.

The fuzz must leave no trace. The routers' data planes (``cpn dataplane show
r1..r3``) and the controller's state (``GET /status``, ``/policies``,
``/slices``, ``/steering``, ``/topology``) are dumped before and after and must
be equal. Rejected requests change nothing by contract; the few requests
schemathesis makes that are valid *and* feasible (``PUT /steering`` with a
policy from the enum, a policy or slice naming a real site, a link event on a
real link) are undone after the run through the API itself (the steering
policy put back, created policies and slices deleted, links set up again), and
the dumps then prove the undo complete. ``scripts/soak_fuzz.sh`` runs the same
longer (``CPN_FUZZ_REST_EXAMPLES``, ``CPN_FUZZ_SEED``).
"""

from __future__ import annotations

import collections
import difflib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from .conftest import cpn

pytestmark = pytest.mark.integration

MIN_REQUESTS = 5000
EXAMPLES = int(os.environ.get("CPN_FUZZ_REST_EXAMPLES", "300"))  # per operation and phase; ~6,000 requests
SEED = int(os.environ.get("CPN_FUZZ_SEED", "20240613"))
#: Seconds of fuzzing: schemathesis keeps generating until then (~95 requests/s here, so ~8,500 requests).
TIME_BUDGET_S = float(os.environ.get("CPN_FUZZ_REST_BUDGET_S", "90"))
ROUTERS = ("r1", "r2", "r3")
# 422: schema-valid but naming nothing of the running network (the schema cannot list its sites); 409: exists.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "404", "409", "422"]
"""


def rest(base: str, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read() or b"null")


def controller_state(base: str) -> dict:
    """What the controller holds, without what moves on its own (counters, clocks, measurements)."""
    found = {}
    for path in ("/status", "/policies", "/slices", "/steering", "/topology"):
        status, payload = rest(base, "GET", path)
        found[path] = (status, payload)
    status, view = found["/status"]
    found["/status"] = (status, {key: view.get(key) for key in ("topology", "pid", "started_at", "errors",
                                                                "dataplane", "policies")})
    status, steering = found["/steering"]
    found["/steering"] = (status, steering.get("policy") if isinstance(steering, dict) else steering)
    return found


def dataplane() -> dict:
    return {router: cpn("dataplane", "show", router).stdout for router in ROUTERS}


def undo(base: str, before: dict) -> list[str]:
    """Put back what valid requests changed; return what was undone."""
    undone = []
    _, steering = before["/steering"]
    if isinstance(steering, str) and controller_state(base)["/steering"][1] != steering:
        assert rest(base, "PUT", "/steering", {"policy": steering})[0] == 200
        undone.append(f"steering policy back to {steering}")
    kept_policies = {p["name"] for p in before["/policies"][1]}
    for policy in rest(base, "GET", "/policies")[1]:
        if policy["name"] not in kept_policies:
            assert rest(base, "DELETE", f"/policies/{policy['name']}")[0] == 200
            undone.append(f"policy {policy['name']} deleted")
    _, slices_before = before["/slices"]
    kept_slices = {s["name"] for s in slices_before} if isinstance(slices_before, list) else set()
    _, slices_now = rest(base, "GET", "/slices")
    for item in slices_now if isinstance(slices_now, list) else []:
        if item["name"] not in kept_slices and item.get("state") == "admitted":
            assert rest(base, "DELETE", f"/slices/{item['name']}")[0] == 200
            undone.append(f"slice {item['name']} deleted")
    # GET /topology is the file's view; the controller's own link state shows only in what an event changes.
    _, topology = before["/topology"]
    for link in topology["links"]:
        wanted = link.get("up", True)
        status, event = rest(base, "POST", "/events/link", {"a": link["a"], "b": link["b"], "up": wanted})
        assert status == 200, event
        if event.get("kind") != "no_change":
            undone.append(f"link {link['a']}-{link['b']} {'up' if wanted else 'down'} again")
    return undone


_SITE_POLICY = b'{"name": "hand", "headend": "east", "to": "west"'
#: The hand-made requests of issue 13 that once got a 500, no answer or a huge one: (what, raw request, status).
MALFORMED = [
    ("a 5000-digit integer", _SITE_POLICY + b', "bandwidth_mbps": ' + b"9" * 5000 + b"}", 400),
    ("a lone surrogate in a value", _SITE_POLICY + rb', "flow": {"src": "2001:db8:1::\ud800"}}', 400),
    ("a lone surrogate in a key", _SITE_POLICY + rb', "\udc00": 1}', 400),
    ("1e400", _SITE_POLICY + b', "objective": "bandwidth", "bandwidth_mbps": 1e400}', 400),
    ("18,000 policies in one batch", json.dumps({"policies": [{"name": f"p{i}", "headend": "east", "to": "west"}
                                                              for i in range(18_000)]}).encode(), 400),
    ("60,000 unknown fields", json.dumps({"name": "hand", "headend": "east", "to": "west",
                                          **{f"f{i}": 0 for i in range(60_000)}}).encode(), 400),
    ("a body over 1 MiB", _SITE_POLICY + b', "to": "' + b"x" * (1 << 20) + b'"}', 413),
]


def _send_raw(base: str, method: str, path: str, body: bytes, announced: int | None = None) -> tuple[int, dict]:
    """Send a request byte for byte; ``announced`` > len(body) leaves the rest of the body unsent."""
    host, port = base.split("//")[1].rsplit(":", 1)
    length = len(body) if announced is None else announced
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode() + body)
        answer = sock.makefile("rb").read()
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload or b"null")


def test_hand_made_malformed_requests_are_4xx_and_change_nothing(tiny_network):
    base = tiny_network["controller"]["rest"]
    requests = [(what, "POST", "/policy-batches" if "batch" in what else "/policies", body, None, status)
                for what, body, status in MALFORMED]
    requests += [("a body announced and never sent", "POST", "/policies", _SITE_POLICY[:20], 200, 408),
                 ("TRACE", "TRACE", "/policies", b"", None, 405), ("QUERY", "QUERY", "/slices", b"{}", None, 405),
                 ("a page of 0 items", "GET", "/policies?limit=0", b"", None, 400)]
    for what, method, path, body, announced, status in requests:
        state_before, plane_before = controller_state(base), dataplane()
        started = time.monotonic()
        got, payload = _send_raw(base, method, path, body, announced)
        seconds = time.monotonic() - started
        assert got == status, f"{what}: answered {got}, not {status}: {str(payload)[:500]}"
        assert payload["error"]["status"] == status and payload["error"]["message"], what
        assert len(json.dumps(payload)) < 20_000 and seconds < 15, f"{what}: {len(json.dumps(payload))} bytes"
        assert controller_state(base) == state_before, f"{what} changed the controller"
        assert dataplane() == plane_before, f"{what} changed the data plane"


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tiny_network, tmp_path):
    base = tiny_network["controller"]["rest"]
    state_before, plane_before = controller_state(base), dataplane()
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    har = tmp_path / "fuzz.har"
    command = [os.path.join(os.path.dirname(sys.executable), "schemathesis"), "--config-file", str(config), "run",
               f"{base}/openapi.json", "--checks", "all", "--mode", "all", "-n", str(EXAMPLES), "--seed", str(SEED),
               "--max-time", str(int(TIME_BUDGET_S)), "--request-timeout", "30", "--no-color",
               "--report", "har", "--report-har-path", str(har)]
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, cwd=str(tmp_path), timeout=TIME_BUDGET_S + 120)
    seconds = time.monotonic() - started
    undone = undo(base, state_before)
    state_after, plane_after = controller_state(base), dataplane()

    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = collections.Counter(entry["response"]["status"] for entry in entries)
    server_errors = [f"{e['request']['method']} {e['request']['url']} -> {e['response']['status']}"
                     for e in entries if e["response"]["status"] >= 500]
    print(f"schemathesis: {len(entries)} requests in {seconds:.0f} s (seed {SEED}); statuses "
          f"{dict(sorted(statuses.items()))}; undone after: {undone or 'nothing'}")
    summary = run.stdout[-6000:]
    assert run.returncode == 0, f"schemathesis reported failures (exit {run.returncode}):\n{summary}\n{run.stderr[-2000:]}"
    assert not server_errors, f"{len(server_errors)} answers were 5xx: {server_errors[:20]}"
    assert len(entries) >= MIN_REQUESTS, f"only {len(entries)} requests were sent:\n{summary}"
    assert state_after == state_before, f"the fuzz left controller state behind:\n{_diff(state_before, state_after)}"
    assert plane_after == plane_before, f"the fuzz left data-plane state behind:\n{_diff(plane_before, plane_after)}"


def _diff(before: dict, after: dict) -> str:
    lines = []
    for key in before:
        old, new = before[key], after.get(key)
        if old != new:
            old_text = old if isinstance(old, str) else json.dumps(old, indent=1, sort_keys=True)
            new_text = new if isinstance(new, str) else json.dumps(new, indent=1, sort_keys=True)
            lines += difflib.unified_diff(old_text.splitlines(), new_text.splitlines(), f"{key} before",
                                          f"{key} after", lineterm="")
    return "\n".join(lines[:200])
