"""Tests of format dispatch and of the shipped topologies."""

import math

import networkx as nx
import pytest

from cpn_net.model import DEFAULT_ROUTE_FACTOR, FIBRE_US_PER_KM, TopologyError, load_topology

SHIPPED = ["topologies/tiny.yaml", "topologies/east-data-west-compute.yaml", "topologies/abilene.graphml"]


@pytest.mark.parametrize("path", SHIPPED)
def test_shipped_topologies_load_connected(path):
    topo = load_topology(path)
    assert nx.is_connected(topo.graph())
    assert topo.services and all(s.compute for s in topo.services)


def test_unknown_extension():
    with pytest.raises(TopologyError) as info:
        load_topology("net.xml")
    (p,) = info.value.problems
    assert (p.file, p.key) == ("net.xml", "(file)")
    assert p.message == "extension '.xml' is not a known topology format"
    assert p.fix == "use .yaml, .yml, .graphml or .json"


def test_extension_is_case_insensitive_and_yml_works(tmp_path):
    path = tmp_path / "T.YML"
    path.write_text("name: t\nsites: [{name: a}]\n")
    assert load_topology(path).name == "t"


def test_graphml_options_pass_through():
    topo = load_topology("topologies/abilene.graphml", clients_per_site=2, compute_per_site=0)
    assert len(topo.clients()) == 22 and topo.compute_nodes() == () and topo.services == ()


def test_tiny_has_the_link_parameters_tests_rely_on():
    topo = load_topology("topologies/tiny.yaml")
    assert [(link.a, link.b, link.delay_ms, link.rate_mbps, link.loss_pct) for link in topo.links] == [
        ("east", "centre", 5.0, 50.0, 0.0),
        ("centre", "west", 10.0, None, 2.0),
        ("east", "west", 20.0, None, 0.0),
    ]


# --- the flagship ---

CLUSTERS = ["zhangjiakou", "yangtze-delta", "wuhu", "shaoguan", "tianfu", "chongqing", "horinger", "guian",
            "qingyang", "zhongwei"]
CITIES = ["beijing", "shanghai", "guangzhou", "shenzhen", "chengdu"]
EASTERN = ["zhangjiakou", "yangtze-delta", "wuhu", "shaoguan"]
WESTERN = ["horinger", "guian", "qingyang", "zhongwei"]


@pytest.fixture(scope="module")
def flagship():
    return load_topology("topologies/east-data-west-compute.yaml")


def test_flagship_sites(flagship):
    assert [s.name for s in flagship.sites] == CLUSTERS + CITIES
    for name in CLUSTERS:
        assert (len(flagship.site(name).clients), len(flagship.site(name).compute)) == (0, 2)
    for name in CITIES:
        assert (len(flagship.site(name).clients), len(flagship.site(name).compute)) == (2, 0)
    assert flagship.site("guian").lat == 26.4 and flagship.site("guian").lon == 106.4


def test_flagship_east_is_busier_and_dearer_than_west(flagship):
    def nodes(names):
        return [k for n in names for k in flagship.site(n).compute]

    assert min(k.background_load_pct for k in nodes(EASTERN)) >= 60
    assert max(k.background_load_pct for k in nodes(WESTERN)) <= 30
    assert min(k.price_cny_per_hour for k in nodes(EASTERN)) > max(k.price_cny_per_hour for k in nodes(WESTERN))


def test_flagship_links_and_service(flagship):
    assert 20 <= len(flagship.links) <= 25
    assert all(link.rate_mbps == 100.0 for link in flagship.links)
    (infer,) = flagship.services
    assert (infer.name, str(infer.anycast), infer.port) == ("infer", "2001:db8:ffff::1", 8080)
    assert infer.compute == tuple(k.name for k in flagship.compute_nodes()) and len(infer.compute) == 20
    g = flagship.graph()
    for city in CITIES:  # every demand city is one hop from a cluster
        assert any(n in CLUSTERS for n in g.neighbors(city))


def _spherical_cosines_km(lat1, lon1, lat2, lon2):
    """An independent formula for the great circle (law of cosines)."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    cos_angle = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371.0088 * math.acos(min(1.0, cos_angle))


def test_flagship_delays_are_derived_by_the_formula(flagship):
    assert flagship.route_factor == DEFAULT_ROUTE_FACTOR == 1.3
    for link in flagship.links:
        a, b = flagship.site(link.a), flagship.site(link.b)
        km = _spherical_cosines_km(a.lat, a.lon, b.lat, b.lon)
        assert link.delay_source == "derived"
        assert link.distance_km == pytest.approx(km, abs=0.1)
        assert link.delay_ms == pytest.approx(km * 1.3 * FIBRE_US_PER_KM / 1000, abs=0.006)


def test_flagship_guian_paths_are_plausible(flagship):
    """Gui'an's shortest path to each demand city: longer than straight fibre, at most 1.6x it.

    Each hop carries the 1.3 route factor; detours through hubs add the rest
    (Beijing 1.48x, Chengdu via Chongqing 1.54x).
    """
    g = flagship.graph()
    guian = flagship.site("guian")
    lengths = nx.single_source_dijkstra_path_length(g, "guian", weight="delay_ms")
    for city in CITIES:
        c = flagship.site(city)
        straight_ms = _spherical_cosines_km(guian.lat, guian.lon, c.lat, c.lon) * FIBRE_US_PER_KM / 1000
        assert 1.3 * straight_ms - 0.01 <= lengths[city] <= 1.6 * straight_ms, city
