"""GET /metrics: Prometheus text that parses with prometheus_client and says what the northbound's views say."""

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controllers import metrics
from controllers.northbound.errors import ApiError
from controllers.northbound.rest import start_rest_server

REQUIRED = {"cpn_link_delay_ms": ("link", "direction"), "cpn_link_loss_ratio": ("link", "direction"),
            "cpn_link_up": ("link", "direction"), "cpn_instance_load_ratio": ("instance", "site", "service"),
            "cpn_slice_slo_ok": ("slice",), "cpn_steering_share": ("site", "service", "instance")}


def reading(link, src, dst, delay_ms, loss_pct, down=False, configured_loss_pct=0.0):
    return {"link": link, "from": src, "to": dst,
            "delay": {"delay_ms": delay_ms, "delay_p99_ms": delay_ms + 1, "jitter_ms": 0.2, "samples": 90},
            "loss": {"block": 7, "sent": 10, "lost": 3, "loss_pct": loss_pct, "configured_loss_pct": configured_loss_pct,
                     "configured_delay_ms": 5.0, "configured_down": down},
            "ground_truth": {"delay_ms": 5.0}}


class Api:
    """The views of a tiny network at one moment: east-centre lossy one way, centre-west cut."""

    def __init__(self):
        self.steering = True
        self.links_down = ["centre-west"]

    def topology(self):
        return {"links": [{"a": "east", "b": "centre"}, {"a": "centre", "b": "west"}]}

    def status(self):
        return {"links_down": self.links_down}

    def get_telemetry(self):
        return {"now": 100.0, "links": [reading("r1->r2", "east", "centre", 5.25, 30.0, configured_loss_pct=30.0),
                                         reading("r2->r1", "centre", "east", 5.5, 0.0),
                                         reading("r2->r3", "centre", "west", 10.0, 0.0, down=True),
                                         {"link": "r3->r2", "from": "west", "to": "centre", "delay": None,
                                          "loss": None, "ground_truth": {"delay_ms": 10.0}}]}

    def get_steering(self):
        if not self.steering:
            raise ApiError(404, "no compute-aware steering")
        return {"policy": "joint",
                "instances": [{"instance": "k1-1", "site": "east", "service": "echo", "utilisation": 0.25,
                               "queue_len": 2, "healthy": True},
                              {"instance": "k3-1", "site": "west", "service": "echo", "utilisation": None,
                               "queue_len": None, "healthy": False}],
                "preferred": [{"site": "east", "service": "echo", "instance": "k1-1",
                               "split": [["k1-1", 70], ["k3-1", 30]]}]}

    def slice_status(self):
        pair = {"from": "east", "to": "centre", "delay_ms": 5.2, "loss_pct": 0.0}
        return {"slices": {"gold": {"state": "admitted", "slo": {"pairs": [pair], "violations": []}},
                           "silver": {"state": "admitted", "slo": {"pairs": [pair], "violations": [{"what": "loss"}]}},
                           "fresh": {"state": "admitted", "slo": {"pairs": [{"from": "east", "to": "west"}],
                                                                   "violations": []}}},
                "violations": []}

    def list_policies(self):
        return [{"name": "p"}]


def samples(text):
    """{(name, sorted labels): value} of every sample, parsed by prometheus_client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name, **labels):
    return found[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def found():
    return samples(metrics.exposition(Api(), lambda: {"east->centre": 12.5}).decode())


def test_every_required_family_is_there_with_its_labels():
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition(Api()).decode())}
    for name, labels in REQUIRED.items():
        assert name in families, f"{name} missing"
        assert families[name].samples, f"{name} has no sample"
        assert all(set(s.labels) == set(labels) for s in families[name].samples), name
    assert families["cpn_decision_seconds"].type == "histogram"


def test_link_values_are_the_telemetry_view_s(found):
    api = Api()
    for item in api.get_telemetry()["links"]:
        if item["delay"] is None:
            continue
        link = "east~centre" if {item["from"], item["to"]} == {"east", "centre"} else "centre~west"
        direction = f"{item['from']}->{item['to']}"
        assert value(found, "cpn_link_delay_ms", link=link, direction=direction) == item["delay"]["delay_ms"]
        assert value(found, "cpn_link_loss_ratio", link=link, direction=direction) == item["loss"]["loss_pct"] / 100
    assert value(found, "cpn_link_configured_loss_ratio", link="east~centre", direction="east->centre") == 0.3
    assert value(found, "cpn_link_throughput_mbps", link="east~centre", direction="east->centre") == 12.5


def test_a_link_is_up_unless_the_controller_or_the_element_says_it_is_down(found):
    assert value(found, "cpn_link_up", link="east~centre", direction="east->centre") == 1.0
    assert value(found, "cpn_link_up", link="centre~west", direction="centre->west") == 0.0
    assert value(found, "cpn_link_up", link="centre~west", direction="west->centre") == 0.0  # links_down only
    api = Api()
    api.links_down = []
    alone = samples(metrics.exposition(api).decode())
    assert value(alone, "cpn_link_up", link="centre~west", direction="west->centre") == 1.0
    assert value(alone, "cpn_link_up", link="centre~west", direction="centre->west") == 0.0  # cut at the element


def test_no_measurement_is_no_sample_not_zero(found):
    assert ("cpn_link_delay_ms", (("direction", "west->centre"), ("link", "centre~west"))) not in found
    assert ("cpn_instance_load_ratio", (("instance", "k3-1"), ("service", "echo"), ("site", "west"))) not in found
    assert ("cpn_slice_slo_ok", (("slice", "fresh"),)) not in found


def test_instances_steering_and_slices(found):
    assert value(found, "cpn_instance_load_ratio", instance="k1-1", site="east", service="echo") == 0.25
    assert value(found, "cpn_instance_healthy", instance="k3-1", site="west", service="echo") == 0.0
    assert value(found, "cpn_steering_share", site="east", service="echo", instance="k1-1") == 0.7
    assert value(found, "cpn_steering_share", site="east", service="echo", instance="k3-1") == 0.3
    assert value(found, "cpn_slice_slo_ok", slice="gold") == 1.0
    assert value(found, "cpn_slice_slo_ok", slice="silver") == 0.0
    assert value(found, "cpn_policies") == 1.0


def test_parts_that_do_not_run_are_left_out():
    api = Api()
    api.steering = False
    text = metrics.exposition(api).decode()
    assert "cpn_steering_share{" not in text and "cpn_link_delay_ms{" in text
    assert samples(metrics.exposition(object()).decode()) is not None  # an api with nothing at all


def test_decisions_are_timed_into_the_histogram():
    class Service:
        def decide_once(self):
            return "decided"

    service = Service()
    metrics.time_decisions(service, decision="unit-test")
    before = samples(metrics.exposition(object()).decode()).get(
        ("cpn_decision_seconds_count", (("decision", "unit-test"),)), 0.0)
    assert [service.decide_once() for _ in range(3)] == ["decided"] * 3
    after = samples(metrics.exposition(object()).decode())
    assert value(after, "cpn_decision_seconds_count", decision="unit-test") == before + 3
    assert value(after, "cpn_decision_seconds_bucket", decision="unit-test", le="+Inf") == before + 3
    assert Service.decide_once is not service.decide_once  # the instance is wrapped, the class is not


def test_get_metrics_serves_the_text_format():
    server = start_rest_server(Api(), port=0)
    try:
        with urllib.request.urlopen(server.url + "/metrics", timeout=10) as answer:
            content_type, text = answer.headers["Content-Type"], answer.read().decode()
    finally:
        server.shutdown()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert value(samples(text), "cpn_link_delay_ms", link="east~centre", direction="east->centre") == 5.25


def test_the_grafana_dashboard_uses_only_metrics_the_controller_exports():
    import json
    import os
    import re

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "grafana", "cpn_net.json")) as handle:
        dashboard = json.load(handle)
    exported = {f.name for f in text_string_to_metric_families(metrics.exposition(Api(), lambda: {}).decode())}
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    used = set()
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
        for target in panel["targets"]:
            used |= {re.sub(r"_(bucket|count|sum)$", "", name) for name in re.findall(r"\bcpn_[a-z0-9_]+", target["expr"])}
    assert used - exported == set()
    assert set(REQUIRED) | {"cpn_decision_seconds"} <= used
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "link", "site"} <= variables
