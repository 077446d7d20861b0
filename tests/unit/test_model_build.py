"""Property tests of the builder over seeded random topologies, and its direct API."""

import json
import random

import networkx as nx
import pytest
import yaml

from cpn_net.model import addressing
from cpn_net.model.build import Entry, Header, build_topology
from cpn_net.model.errors import ProblemLog, TopologyError
from cpn_net.model.geo import great_circle_km
from cpn_net.model.yaml_format import parse_yaml_topology


def random_document(rng: random.Random) -> dict:
    n = rng.randint(1, 25)
    explicit = rng.sample(range(1, 60), k=rng.randint(0, n))
    sites = []
    for i in range(n):
        site = {"name": f"site-{i}", "clients": rng.randint(0, 3), "compute": rng.randint(0, 3)}
        if i < len(explicit):
            site["id"] = explicit[i]
        if rng.random() < 0.6:
            site["lat"], site["lon"] = round(rng.uniform(-60, 60), 2), round(rng.uniform(-179, 179), 2)
        sites.append(site)
    rng.shuffle(sites)
    names = [s["name"] for s in sites]
    coords = {s["name"] for s in sites if "lat" in s}
    pairs = [(names[i], names[rng.randrange(i)]) for i in range(1, n)]  # a random spanning tree
    pairs += [tuple(rng.sample(names, 2)) for _ in range(rng.randint(0, n))] if n > 1 else []
    links, seen = [], set()
    for a, b in pairs:
        if frozenset((a, b)) in seen:
            continue
        seen.add(frozenset((a, b)))
        link = {"a": a, "b": b}
        if not {a, b} <= coords or rng.random() < 0.3:
            link["delay_ms"] = round(rng.uniform(0.5, 30), 2)
        if rng.random() < 0.5:
            link["rate_mbps"] = rng.choice([10, 100, 1000])
        links.append(link)
    document = {"name": "random", "sites": sites, "links": links}
    if any(s["compute"] for s in sites):
        document["services"] = [{"name": "svc", "anycast": "2001:db8:ffff::1", "port": 80}]
    return document


@pytest.mark.parametrize("seed", range(25))
def test_random_topologies_satisfy_the_model_invariants(seed):
    document = random_document(random.Random(seed))
    topo = parse_yaml_topology(yaml.safe_dump(document), f"random-{seed}.yaml")

    given_ids = {s["name"]: s["id"] for s in document["sites"] if "id" in s}
    ids = [s.id for s in topo.sites]
    assert len(set(ids)) == len(ids) and all(1 <= i <= addressing.MAX_SITE_ID for i in ids)
    assert all(topo.site(name).id == i for name, i in given_ids.items())
    auto = [s.id for s in topo.sites if s.name not in given_ids]
    assert auto == sorted(auto)  # lowest unused, in file order

    assert [link.number for link in topo.links] == list(range(1, len(document["links"]) + 1))
    for raw, link in zip(document["links"], topo.links):
        a, b = topo.site(link.a), topo.site(link.b)
        assert (link.a, link.b, link.a_id, link.b_id) == (raw["a"], raw["b"], a.id, b.id)
        if "delay_ms" in raw:
            assert (link.delay_source, link.delay_ms) == ("configured", raw["delay_ms"])
        else:
            km = great_circle_km(a.lat, a.lon, b.lat, b.lon)
            assert (link.delay_source, link.delay_ms) == ("derived", round(km * 1.3 * 4.9 / 1000, 2))
        assert link.rate_mbps == raw.get("rate_mbps")
        assert topo.link(link.b, link.a) is link

    g = topo.graph()
    assert nx.is_connected(g) and g.number_of_edges() == len(topo.links)
    hosts = topo.hosts()
    assert len({h.address for h in hosts}) == len({h.name for h in hosts}) == len(hosts)
    assert all(h.address in topo.site(h.site).lan for h in hosts)
    for service in topo.services:
        assert service.compute == tuple(k.name for k in topo.compute_nodes())
    assert json.loads(json.dumps(topo.to_dict())) == topo.to_dict()


def test_build_topology_directly_with_fallback_delay():
    log = ProblemLog("api")
    topo = build_topology(
        log, "api", Header("direct"),
        [Entry("n0", {"name": "a"}), Entry("n1", {"name": "b", "lat": 1.0, "lon": 1.0})],
        [Entry("e0", {"a": "a", "b": "b"})], [], notes=["first"], fallback_delay_ms=2.5,
    )
    assert (topo.links[0].delay_ms, topo.links[0].delay_source) == (2.5, "default")
    assert topo.notes == ("first", "1 link(s) have an end without coordinates and use the default delay 2.5 ms: a-b")


def test_build_topology_raises_problems_found_earlier():
    log = ProblemLog("api")
    log.add("somewhere", "earlier problem", "fix it")
    with pytest.raises(TopologyError, match="api: somewhere: earlier problem; fix it"):
        build_topology(log, "api", Header("x"), [Entry("s", {"name": "a"})], [], [])


def test_too_many_sites_is_one_problem_not_ten_thousand():
    entries = [Entry(f"sites[{i}]", {"name": f"s{i}x", "clients": 0, "compute": 0}) for i in range(10000)]
    log = ProblemLog("big")
    with pytest.raises(TopologyError) as info:
        build_topology(log, "big", Header("big"), entries, [], [])
    messages = [str(p) for p in info.value.problems]
    assert messages[0] == "big: sites: 10000 sites is too many; split the topology; the addressing plan numbers " \
                          "sites 1..9999"
    assert messages[1] == "big: sites[9999]: no site id left to assign; split the topology; the addressing plan " \
                          "numbers sites 1..9999"
