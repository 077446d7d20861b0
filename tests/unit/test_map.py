"""The map's rules (link states, alarms, sites, paths), its feed and history, and its routes, without a browser."""

import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.request

import pytest

from controllers.northbound.errors import ApiError
from controllers.northbound.map import assets, feed as feed_module, state
from controllers.northbound.rest import start_rest_server

TOPOLOGY = {
    "name": "tiny",
    "sites": [{"name": "east", "id": 1, "lat": None, "lon": None, "clients": [{"name": "u1-1"}],
               "compute": [{"name": "k1-1", "capacity_rps": 400.0, "price_cny_per_hour": 2.0}]},
              {"name": "centre", "id": 2, "lat": None, "lon": None, "clients": [], "compute": []},
              {"name": "west", "id": 3, "lat": None, "lon": None, "clients": [],
               "compute": [{"name": "k3-1", "capacity_rps": 200.0, "price_cny_per_hour": None}]}],
    "links": [{"a": "east", "b": "centre", "delay_ms": 5.0, "loss_pct": 0.0, "rate_mbps": 50.0},
              {"a": "centre", "b": "west", "delay_ms": 10.0, "loss_pct": 2.0, "rate_mbps": None}],
}


def direction(src, dst, delay_ms=None, block=1, sent=10, lost=0, down=False, name=None):
    return {"link": name or f"{src}->{dst}", "from": src, "to": dst,
            "delay": None if delay_ms is None else {"delay_ms": delay_ms, "delay_p99_ms": delay_ms, "samples": 10},
            "loss": {"block": block, "read_at": 1000.0 + block, "sent": sent, "lost": lost,
                     "loss_pct": 100.0 * lost / sent if sent else None, "truth_dropped": lost,
                     "configured_loss_pct": 0.0, "configured_delay_ms": 5.0, "configured_down": down},
            "ground_truth": {"delay_ms": 5.0}}


def views(telemetry=None, links_down=(), blocks=None):
    return {v["id"]: v for v in state.link_views(TOPOLOGY, telemetry, links_down, blocks or {}, {})}


# --- link states -----------------------------------------------------------------------------------------------
def test_a_link_without_measurements_is_ok_and_says_so():
    link = views()["east~centre"]
    assert (link["state"], link["measured"], link["reasons"]) == ("ok", False, [])


def test_thirty_percent_loss_over_three_blocks_is_degraded_and_named():
    telemetry = {"links": [direction("east", "centre", 5.1)]}
    blocks = {"east->centre": [{"sent": 10, "lost": 3}] * 3}
    link = views(telemetry, blocks=blocks)["east~centre"]
    assert link["state"] == "degraded"
    assert link["directions"][0]["loss_pct"] == 30.0 and link["directions"][0]["lossy"]
    assert "east->centre loses 30 %" in link["reasons"][0]


def test_a_two_percent_link_with_probe_traffic_rarely_looks_degraded():
    # 10 probes a block, 2 % loss: the Wilson bound keeps chance bursts from flagging the link.
    rng = random.Random(1)
    telemetry = {"links": [direction("centre", "west", 10.2)]}
    flagged = 0
    for _ in range(2000):
        blocks = {"centre->west": [{"sent": 10, "lost": sum(rng.random() < 0.02 for _ in range(10))}
                                   for _ in range(3)]}
        flagged += views(telemetry, blocks=blocks)["centre~west"]["state"] == "degraded"
    assert flagged / 2000 < 0.01


@pytest.mark.parametrize("lost, degraded", [(0, False), (2, False), (3, False), (5, True), (30, True)])
def test_degraded_needs_loss_above_five_percent_with_confidence(lost, degraded):
    blocks = {"east->centre": [{"sent": 10, "lost": lost // 3}, {"sent": 10, "lost": lost // 3},
                               {"sent": 10, "lost": lost - 2 * (lost // 3)}]}
    assert (views({"links": [direction("east", "centre")]}, blocks=blocks)["east~centre"]["state"]
            == "degraded") is degraded


def test_only_the_last_blocks_count():
    old_loss = [{"sent": 10, "lost": 9}] * 5
    blocks = {"east->centre": old_loss + [{"sent": 10, "lost": 0}] * state.LOSS_WINDOW_BLOCKS}
    assert views({"links": [direction("east", "centre")]}, blocks=blocks)["east~centre"]["state"] == "ok"


def test_a_slow_link_is_degraded():
    slow = views({"links": [direction("east", "centre", delay_ms=5.0 * 1.5 + 1.5)]})["east~centre"]
    fine = views({"links": [direction("east", "centre", delay_ms=5.0 * 1.5 + 0.5)]})["east~centre"]
    assert (slow["state"], fine["state"]) == ("degraded", "ok")
    assert "delay 9 ms, configured 5 ms" in slow["reasons"][0]


def test_down_from_the_controller_or_the_element_wins_over_degraded():
    blocks = {"east->centre": [{"sent": 10, "lost": 10}] * 3}
    assert views(None, links_down=["centre-east"])["east~centre"]["state"] == "down"
    cut = views({"links": [direction("east", "centre", down=True)]}, blocks=blocks)["east~centre"]
    assert cut["state"] == "down" and cut["reasons"] == ["cut at the link element"]


def test_wilson_lower_bound_is_the_textbook_value():
    assert state.wilson_lower(100, 30) == pytest.approx(0.2189, abs=1e-4)
    assert state.wilson_lower(50, 0) == 0.0 and state.wilson_lower(0, 0) == 0.0
    assert state.wilson_lower(10, 99) == pytest.approx(state.wilson_lower(10, 10))


# --- sites, paths, alarms --------------------------------------------------------------------------------------
def test_sites_show_kind_load_surplus_and_price():
    steering = {"instances": [{"instance": "k1-1", "utilisation": 0.5, "healthy": True},
                              {"instance": "k3-1", "utilisation": 0.25, "healthy": False}]}
    sites = {s["name"]: s for s in state.site_views(TOPOLOGY, steering, prices={"k3-1": 1.5})}
    assert (sites["east"]["kind"], sites["centre"]["kind"], sites["west"]["kind"]) == ("mixed", "transit", "compute")
    assert (sites["east"]["load"], sites["east"]["surplus_rps"], sites["east"]["price_cny_per_hour"]) == (0.5, 200.0, 2.0)
    assert (sites["west"]["price_cny_per_hour"], sites["west"]["healthy"]) == (1.5, False)
    assert sites["centre"]["load"] is None and sites["centre"]["capacity_rps"] is None


def test_alarms_list_down_lossy_and_violated_worst_first():
    links = [{"id": "a~b", "a": "a", "b": "b", "state": "degraded", "reasons": ["x"], "configured": {"delay_ms": 1},
              "directions": [{"from": "a", "to": "b", "lossy": True, "slow": False, "loss_pct": 30.0}]},
             {"id": "b~c", "a": "b", "b": "c", "state": "down", "reasons": ["carrier lost"], "directions": []}]
    slices = [{"name": "gold", "violations": [{"from": "a", "to": "b", "what": "delay", "measured": 9, "bound": 5}]}]
    found = state.alarms(links, slices, [{"name": "a", "healthy": False}])
    assert [a["kind"] for a in found] == ["link_down", "lossy_link", "slo_violated", "compute_unhealthy"]
    assert found[2]["message"] == "slice gold a->b: delay 9 over its bound 5"


def test_steering_arrows_point_from_the_client_site_to_each_instance_s_site():
    view = {"preferred": [{"site": "east", "service": "echo", "instance": "k3-1", "split": [["k3-1", 80], ["k1-1", 20]]},
                          {"site": "centre", "service": "echo", "instance": "k1-1", "split": []}]}
    arrows = state.steering_arrows(TOPOLOGY, view)
    assert [(a["from"], a["to"], a["share"], a["preferred"]) for a in arrows] == [
        ("east", "west", 0.8, True), ("east", "east", 0.2, False), ("centre", "east", 1.0, True)]
    assert sum(a["share"] for a in arrows if a["from"] == "east") == pytest.approx(1.0)


def test_a_whole_state_is_json_and_carries_the_telemetry_clock():
    telemetry = {"now": 123.5, "links": [direction("east", "centre", 5.2)]}
    built = state.map_state(TOPOLOGY, telemetry=telemetry, status={"links_down": []}, steering=None,
                            policies=[{"name": "p", "path": ["east", "centre", "west"], "segments": ["fcbb::"]}],
                            slice_status=None, blocks={}, throughput={"east->centre": 25.0}, now=124.0)
    assert json.loads(json.dumps(built)) == built
    assert (built["telemetry_at"], built["at"]) == (123.5, 124.0)
    assert built["policies"][0]["links"] == [["east", "centre"], ["centre", "west"]]
    assert built["links"][0]["utilisation"] == 0.5  # 25 of the link's 50 Mbit/s


# --- the feed --------------------------------------------------------------------------------------------------
class Api:
    def __init__(self):
        self.block = 1
        self.lost = 0
        self.links_down = []

    def topology(self):
        return TOPOLOGY

    def status(self):
        return {"links_down": self.links_down}

    def get_telemetry(self):
        return {"now": time.time(), "links": [direction("east", "centre", 5.2, block=self.block, lost=self.lost,
                                                        name="r1->r2"),
                                              direction("centre", "east", 5.1, block=self.block, name="r2->r1")]}


def test_the_feed_keeps_each_block_once_and_the_history_five_minutes():
    api = Api()
    feed = feed_module.MapFeed(api)
    for block in range(1, 8):
        api.block, api.lost = block, 3 if block > 4 else 0
        for _ in range(2):  # two readings of the same block: recorded once
            feed.record(api.get_telemetry(), now=1000.0 + block)
    assert len(feed.blocks["r1->r2"]) == 7
    assert feed.state()["links"][0]["state"] == "degraded"
    history = feed.history("east~centre")
    assert [d["from"] for d in history["directions"]] == ["east", "centre"]
    loss = history["directions"][0]["loss"]
    assert [row[1] for row in loss] == [0.0] * 4 + [30.0] * 3 and [row[2] for row in loss][-1] == 30.0
    feed.record(api.get_telemetry(), now=1000.0 + 7 + feed_module.HISTORY_S + 1)
    assert len(feed.history("east~centre")["directions"][0]["loss"]) <= 1


def test_the_history_of_an_unknown_link_is_404_naming_the_links():
    with pytest.raises(ApiError) as caught:
        feed_module.MapFeed(Api()).history("east~nowhere")
    assert caught.value.status == 404 and "east~centre, centre~west" in caught.value.message


def test_delay_samples_are_averaged_per_reading_against_the_element_setting():
    feed = feed_module.MapFeed(Api())
    feed.record(Api().get_telemetry(), {"r1->r2": [(10.0, 5.0), (10.1, 6.0)]}, now=11.0)
    assert feed.history("east~centre")["directions"][0]["delay"] == [[11.0, 5.5, 5.0]]
    assert feed._last_delay_t == 10.1


def test_events_encode_one_line_of_json_without_nan():
    event = feed_module.encode_event({"x": float("nan"), "y": [1.5, float("inf")]}, 3)
    assert event.endswith(b"\n\n") and event.count(b"\ndata: ") == 1
    assert json.loads(event.split(b"data: ")[1]) == {"x": None, "y": [1.5, None]}


# --- routes ----------------------------------------------------------------------------------------------------
@pytest.fixture
def built(tmp_path, monkeypatch):
    (tmp_path / "index.html").write_text("<!doctype html><title>map</title>")
    (tmp_path / "app.js").write_text("console.log('map')")
    monkeypatch.setattr(assets, "BUILD_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def server():
    server = start_rest_server(Api(), port=0)
    yield server
    server.shutdown()


def get(server, path, headers=None):
    request = urllib.request.Request(server.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers["Content-Type"], err.read()


def test_the_page_and_its_assets_are_served_with_their_types(server, built):
    assert get(server, "/map")[:2] == (200, "text/html; charset=utf-8")
    status, content_type, body = get(server, "/map/app.js")
    assert (status, content_type, body) == (200, "text/javascript; charset=utf-8", b"console.log('map')")
    for path in ("/map/nothing.js", "/map/..%2Findex.html", "/map/.hidden"):
        status, content_type, body = get(server, path)
        assert (status, content_type) == (404, "application/json"), path
        assert "no map asset" in json.loads(body)["error"]["message"]


def test_an_unbuilt_page_is_404_naming_the_fix(server, tmp_path, monkeypatch):
    monkeypatch.setattr(assets, "BUILD_DIR", str(tmp_path / "absent"))
    status, _, body = get(server, "/map")
    assert status == 404 and "scripts/setup.sh" in json.loads(body)["error"]["message"]


def test_map_state_and_history_are_json(server):
    status, content_type, body = get(server, "/map/state")
    assert (status, content_type) == (200, "application/json")
    assert [link["id"] for link in json.loads(body)["links"]] == ["east~centre", "centre~west"]
    status, _, body = get(server, "/map/history/east~centre")
    assert status == 200 and json.loads(body)["link"] == "east~centre"
    assert get(server, "/map/history/a~b")[0] == 404


def test_events_without_accept_answer_one_event_and_close(server):
    status, content_type, body = get(server, "/events")
    assert (status, content_type) == (200, "text/event-stream; charset=utf-8")
    assert body.startswith(b"id: ") and body.count(b"event: state") == 1
    assert json.loads(body.split(b"data: ")[1])["topology"] == "tiny"


def read_events(server, count, timeout_s=10.0):
    """The first ``count`` events of a live stream, then the connection is dropped."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    connection.request("GET", "/events", headers={"Accept": "text/event-stream"})
    answer = connection.getresponse()
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/event-stream")
    events, data = [], b""
    while len(events) < count:
        data += answer.read1(65536)
        while b"\n\n" in data:
            message, data = data.split(b"\n\n", 1)
            if b"data: " in message:
                events.append(json.loads(message.split(b"data: ", 1)[1]))
    connection.close()
    return events


def test_a_live_stream_sends_at_once_then_every_period(server):
    started = time.monotonic()
    events = read_events(server, 3)
    seconds = time.monotonic() - started
    assert all(e["topology"] == "tiny" for e in events)
    assert events[2]["at"] > events[0]["at"]
    assert seconds < 3 * feed_module.FEED_PERIOD_S + 2


def test_streams_past_the_limit_are_503_and_a_stream_ends_with_the_server(monkeypatch):
    monkeypatch.setattr(feed_module, "MAX_STREAMS", 1)
    server = start_rest_server(Api(), port=0)
    host, port = server.server_address[:2]
    first = http.client.HTTPConnection(host, port, timeout=10)
    first.request("GET", "/events", headers={"Accept": "text/event-stream"})
    answer = first.getresponse()
    answer.read1(65536)
    second = http.client.HTTPConnection(host, port, timeout=10)
    second.request("GET", "/events", headers={"Accept": "text/event-stream"})
    refused = second.getresponse()
    assert refused.status == 503 and "event streams are open" in json.loads(refused.read())["error"]["message"]
    second.close()
    ended = threading.Event()

    def drain():
        while answer.read1(65536):
            pass
        ended.set()

    threading.Thread(target=drain, daemon=True).start()
    server.shutdown()
    assert ended.wait(5), "the stream did not end with the server"
    first.close()
