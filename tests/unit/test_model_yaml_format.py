"""Tests of the YAML topology loader: every rule of the format, good and bad."""

import pytest

from cpn_net.model import TopologyError, load_topology
from cpn_net.model.yaml_format import parse_yaml_topology

FILE = "bad.yaml"
TWO = "sites: [{name: a}, {name: b}]\nlinks: [{a: a, b: b, delay_ms: 1}]\n"


def problems(text):
    with pytest.raises(TopologyError) as info:
        parse_yaml_topology(text, FILE)
    return info.value.problems


def one_problem(text, key, message, fix):
    """The problem at ``key`` exists and its message and fix say what we expect."""
    found = problems(text)
    at_key = [p for p in found if p.key == key]
    assert at_key, f"no problem at {key!r}; got:\n" + "\n".join(map(str, found))
    p = at_key[0]
    assert p.file == FILE
    assert message in p.message, str(p)
    assert fix in p.fix, str(p)
    assert str(p) == f"{FILE}: {key}: {p.message}; {p.fix}"


BAD_CASES = {
    # top level
    "unknown top key": ("name: t\nsties: []\n" + TWO, "sties", "unknown key", "did you mean 'sites'?"),
    "reserved scenario": ("name: t\nscenario: {}\n" + TWO, "scenario", "not supported", "reserved"),
    "name missing": (TWO, "name", "missing", "name the topology"),
    "name invalid": ("name: My Net\n" + TWO, "name", "'My Net' is not a valid name", "e.g. 'my-net'"),
    "name starts with dash": ("name: -x\n" + TWO, "name", "is not a valid name", "rename it, e.g. 'x'"),
    "route factor below 1": ("name: t\nroute_factor: 0.9\n" + TWO, "route_factor", "0.9 must be >= 1",
                             "never shorter than the great circle"),
    "route factor bool": ("name: t\nroute_factor: yes\n" + TWO, "route_factor",
                          "true is a bool, expected a number", "bools, not numbers"),
    "description not text": ("name: t\ndescription: [a]\n" + TWO, "description", "is a list, expected a string",
                             "write it as text"),
    "defaults not mapping": ("name: t\ndefaults: 3\n" + TWO, "defaults", "3 is an int, expected a mapping",
                             "key: value"),
    "defaults link unknown key": ("name: t\ndefaults: {link: {delay: 3}}\n" + TWO, "defaults.link.delay",
                                  "unknown key", "known keys: jitter_ms, loss_pct, rate_mbps"),
    "defaults unknown section": ("name: t\ndefaults: {links: {}}\n" + TWO, "defaults.links", "unknown key",
                                 "did you mean 'link'?"),
    "defaults compute workers 0": ("name: t\ndefaults: {compute: {workers: 0}}\n" + TWO,
                                   "defaults.compute.workers", "0 must be in [1, 4096]", "give 1 to 4096 workers"),
    # sites
    "no sites": ("name: t\nsites: []\n", "sites", "the topology has no sites", "add at least one site"),
    "sites missing": ("name: t\n", "sites", "the topology has no sites", "add at least one site"),
    "sites not list": ("name: t\nsites: {a: 1}\n", "sites", "is a mapping, expected a list", "write a list"),
    "site not mapping": ("name: t\nsites: [a]\n", "sites[0]", "'a' is a string, expected a site mapping",
                         "key: value pairs"),
    "site name missing": ("name: t\nsites: [{id: 1}]\n", "sites[0].name", "missing", "give each site a name"),
    "site unknown key": ("name: t\nsites: [{name: a, latitude: 3}]\n", "sites[0].latitude", "unknown key",
                         "did you mean 'lat'?"),
    "link key without unit": ("name: t\nsites: [{name: a}, {name: b}]\nlinks: [{a: a, b: b, bandwidth: 3}]\n",
                              "links[0].bandwidth", "unknown key", "did you mean 'rate_mbps'?"),
    "duplicate site name": ("name: t\nsites: [{name: a}, {name: a}]\n", "sites[1].name",
                            "'a' is already the name of sites[0]", "unique name"),
    "upper-case site name": ("name: t\nsites: [{name: Beijing}]\n", "sites[0].name",
                             "'Beijing' is not a valid name", "e.g. 'beijing'"),
    "site name read as bool": ("name: t\nsites: [{name: yes}]\n", "sites[0].name",
                               "true is a bool, expected a name", "quoted"),
    "plan-like site name": ("name: t\nsites: [{name: r3}]\n", "sites[0].name", "reads like a node name",
                            "e.g. 'r3-site'"),
    "duplicate site id": ("name: t\nsites: [{name: a, id: 3}, {name: b, id: 3}]\n", "sites[1].id",
                          "3 is already the id of sites[0]", "unique id"),
    "site id too big": ("name: t\nsites: [{name: a, id: 10000}]\n", "sites[0].id", "10000 must be in [1, 9999]",
                        "give an id from 1 to 9999"),
    "site id zero": ("name: t\nsites: [{name: a, id: 0}]\n", "sites[0].id", "0 must be in [1, 9999]", "or omit it"),
    "site id string": ("name: t\nsites: [{name: a, id: '3'}]\n", "sites[0].id", "'3' is a string, expected an int",
                       "whole number"),
    "lat without lon": ("name: t\nsites: [{name: a, lat: 3}]\n", "sites[0].lon", "missing while lat is given",
                        "give both lat and lon, or neither"),
    "lon without lat": ("name: t\nsites: [{name: a, lon: 3}]\n", "sites[0].lat", "missing while lon is given",
                        "give both lat and lon"),
    "lat out of range": ("name: t\nsites: [{name: a, lat: 91, lon: 0}]\n", "sites[0].lat",
                         "91 must be in [-90, 90]", "latitude in degrees"),
    "lon out of range": ("name: t\nsites: [{name: a, lat: 0, lon: -181}]\n", "sites[0].lon",
                         "-181 must be in [-180, 180]", "longitude in degrees"),
    "too many clients": ("name: t\nsites: [{name: a, clients: 100}]\n", "sites[0].clients",
                         "100 must be in [0, 99]", "give 0 to 99 clients"),
    "negative compute count": ("name: t\nsites: [{name: a, compute: -1}]\n", "sites[0].compute",
                               "-1 must be in [0, 99]", "compute nodes, or a list"),
    "compute count float": ("name: t\nsites: [{name: a, compute: 2.0}]\n", "sites[0].compute",
                            "2.0 is a float, expected an int", "write 2 without the decimal point"),
    "compute item not mapping": ("name: t\nsites: [{name: a, compute: [{}, 8]}]\n", "sites[0].compute[1]",
                                 "8 is an int, expected a compute node mapping", "{workers: 8}"),
    "compute workers 0": ("name: t\nsites: [{name: a, compute: [{workers: 0}]}]\n", "sites[0].compute[0].workers",
                          "0 must be in [1, 4096]", "give 1 to 4096 workers"),
    "compute service time 0": ("name: t\nsites: [{name: a, compute: [{service_time_ms: 0}]}]\n",
                               "sites[0].compute[0].service_time_ms", "0 must be > 0", "above 0 ms"),
    "compute full background load": ("name: t\nsites: [{name: a, compute: [{background_load_pct: 100}]}]\n",
                                     "sites[0].compute[0].background_load_pct", "100 must be in [0, 100)",
                                     "not including"),
    "compute negative price": ("name: t\nsites: [{name: a, compute: [{price_cny_per_hour: -1}]}]\n",
                               "sites[0].compute[0].price_cny_per_hour", "-1 must be >= 0", "or null"),
    "compute unknown key": ("name: t\nsites: [{name: a, compute: [{worker: 2}]}]\n", "sites[0].compute[0].worker",
                            "unknown key", "did you mean 'workers'?"),
    # links
    "link unknown site": ("name: t\nsites: [{name: a}, {name: b}]\nlinks: [{a: a, b: bb, delay_ms: 1}]\n",
                          "links[0].b", "no site is named 'bb'", "did you mean 'b'?"),
    "link missing end": ("name: t\nsites: [{name: a}, {name: b}]\nlinks: [{a: a, delay_ms: 1}]\n", "links[0].b",
                         "missing", "give both ends of the link"),
    "link not mapping": ("name: t\nsites: [{name: a}]\nlinks: [a-b]\n", "links[0]", "is a string, expected a link",
                         "key: value pairs"),
    "self-loop": ("name: t\nsites: [{name: a}, {name: b}]\nlinks: [{a: a, b: a, delay_ms: 1}]\n", "links[0].b",
                  "cannot join a site to itself", "two different sites"),
    "duplicate link reversed": ("name: t\nsites: [{name: a}, {name: b}]\n"
                                "links: [{a: a, b: b, delay_ms: 1}, {a: b, b: a, delay_ms: 2}]\n", "links[1]",
                                "b-a is already linked by links[0]", "one link per pair of sites"),
    "negative delay": ("name: t\nsites: [{name: a}, {name: b}]\nlinks: [{a: a, b: b, delay_ms: -1}]\n",
                       "links[0].delay_ms", "-1 must be >= 0", "0 or more"),
    "delay as text": ("name: t\nsites: [{name: a}, {name: b}]\nlinks: [{a: a, b: b, delay_ms: 5ms}]\n",
                      "links[0].delay_ms", "'5ms' is a string, expected a number", "write a number"),
    "delay NaN": ("name: t\nsites: [{name: a}, {name: b}]\nlinks: [{a: a, b: b, delay_ms: .nan}]\n",
                  "links[0].delay_ms", "nan is not a finite number", "0 or more"),
    "negative jitter": ("name: t\nsites: [{name: a}, {name: b}]\nlinks: [{a: a, b: b, delay_ms: 1, jitter_ms: -1}]\n",
                        "links[0].jitter_ms", "-1 must be >= 0", "jitter in ms"),
    "jitter above delay": ("name: t\nsites: [{name: a}, {name: b}]\nlinks: [{a: a, b: b, delay_ms: 2, jitter_ms: 3}]\n",
                           "links[0].jitter_ms", "3 exceeds delay_ms=2 (configured)", "clamped at 0"),
    "default jitter above derived delay": (
        "name: t\ndefaults: {link: {jitter_ms: 5}}\n"
        "sites: [{name: a, lat: 0, lon: 0}, {name: b, lat: 0, lon: 1}]\nlinks: [{a: a, b: b}]\n",
        "links[0].jitter_ms", "5 exceeds delay_ms=0.71 (derived)", "keep jitter_ms <= delay_ms"),
    "loss above 100": ("name: t\nsites: [{name: a}, {name: b}]\nlinks: [{a: a, b: b, delay_ms: 1, loss_pct: 101}]\n",
                       "links[0].loss_pct", "101 must be in [0, 100]", "from 0 to 100"),
    "zero rate": ("name: t\nsites: [{name: a}, {name: b}]\nlinks: [{a: a, b: b, delay_ms: 1, rate_mbps: 0}]\n",
                  "links[0].rate_mbps", "0 must be > 0", "null for an unshaped link"),
    "delay without coordinates": ("name: t\nsites: [{name: a, lat: 1, lon: 1}, {name: b}]\nlinks: [{a: a, b: b}]\n",
                                  "links[0].delay_ms", "site 'b' has no coordinates",
                                  "give delay_ms, or lat/lon for both sites"),
    "disconnected": ("name: t\nsites: [{name: a}, {name: b}, {name: c}]\nlinks: [{a: a, b: b, delay_ms: 1}]\n",
                     "links", "2 disconnected groups: {a, b}; {c}", "add links joining the groups"),
    # services
    "anycast in a site LAN": (TWO + "services: [{name: s, anycast: '2001:db8:1::9', port: 80}]\n",
                              "services[0].anycast", "lies in the LAN of site 1", "pick an anycast address outside"),
    "anycast in a locator": (TWO + "services: [{name: s, anycast: 'fcbb:bb00:7::1', port: 80}]\n",
                             "services[0].anycast", "SRv6 locator area fcbb:bb00::/32", "outside site LANs"),
    "anycast in WAN range": (TWO + "services: [{name: s, anycast: 'fd00:2::1', port: 80}]\n",
                             "services[0].anycast", "the WAN link range fd00::/16", "e.g. '2001:db8:ffff::1'"),
    "anycast IPv4": (TWO + "services: [{name: s, anycast: 10.1.1.1, port: 80}]\n", "services[0].anycast",
                     "'10.1.1.1' is not an IPv6 address", "give an IPv6 address"),
    "anycast multicast": (TWO + "services: [{name: s, anycast: 'ff05::1', port: 80}]\n", "services[0].anycast",
                          "not a routable unicast address", "2001:db8:ffff::1"),
    "duplicate anycast": (TWO + "services: [{name: s, anycast: '2001:db8:ffff::1', port: 80},"
                          " {name: t, anycast: '2001:db8:ffff::1', port: 81}]\n", "services[1].anycast",
                          "is already the address of services[0]", "its own anycast address"),
    "duplicate service name": (TWO + "services: [{name: s, anycast: '2001:db8:ffff::1', port: 80},"
                               " {name: s, anycast: '2001:db8:ffff::2', port: 80}]\n", "services[1].name",
                               "'s' is already the name of services[0]", "unique name"),
    "port out of range": (TWO + "services: [{name: s, anycast: '2001:db8:ffff::1', port: 70000}]\n",
                          "services[0].port", "70000 must be in [1, 65535]", "port from 1 to 65535"),
    "port missing": (TWO + "services: [{name: s, anycast: '2001:db8:ffff::1'}]\n", "services[0].port", "missing",
                     "give its port"),
    "service unknown compute node": (TWO + "services: [{name: s, anycast: '2001:db8:ffff::1', port: 1,"
                                     " compute: [k9-1]}]\n", "services[0].compute[0]",
                                     "'k9-1' is neither a compute node nor a site", "did you mean 'k1-1'?"),
    "service site without compute": ("name: t\nsites: [{name: a}, {name: b, compute: 0}]\n"
                                     "links: [{a: a, b: b, delay_ms: 1}]\n"
                                     "services: [{name: s, anycast: '2001:db8:ffff::1', port: 1, compute: [b]}]\n",
                                     "services[0].compute[0]", "site 'b' has no compute nodes",
                                     "give site 'b' compute nodes or drop it"),
    "service empty compute": (TWO + "services: [{name: s, anycast: '2001:db8:ffff::1', port: 1, compute: []}]\n",
                              "services[0].compute", "empty list", "omit compute for all nodes"),
    "service without any compute node": ("name: t\nsites: [{name: a, compute: 0}]\n"
                                         "services: [{name: s, anycast: '2001:db8:ffff::1', port: 1}]\n",
                                         "services[0].compute", "no compute node in the topology",
                                         "give some site compute nodes"),
    # syntax
    "YAML syntax error": ("name: t\nsites: [\n  {name: a\n", "line 4, column 1", "YAML syntax error",
                          "fix the YAML"),
    "repeated key": ("name: t\nsites:\n  - name: a\n    name: b\n", "line 4, column 5",
                     "key 'name' repeats one given at line 3", "keep only one"),
    "top level list": ("- a\n- b\n", "(top level)", "the document is a list, expected a mapping",
                       "top-level keys"),
    "only comments": ("# nothing here\n", "(file)", "the file has no content", "write a topology mapping"),
}


@pytest.mark.parametrize("text, key, message, fix", list(BAD_CASES.values()), ids=list(BAD_CASES))
def test_bad_yaml_names_key_message_and_fix(text, key, message, fix):
    one_problem(text, key, message, fix)


def test_every_problem_is_reported_at_once():
    text = (
        "name: t\nroute_factor: 0\n"
        "sites: [{name: a, lat: 100, lon: 0}, {name: a}, {name: c, clients: -1}]\n"
        "links: [{a: a, b: zz, delay_ms: -1}]\n"
    )
    keys = [p.key for p in problems(text)]
    assert keys == ["route_factor", "sites[0].lat", "sites[1].name", "sites[2].clients", "links[0].b",
                    "links[0].delay_ms"]


def test_error_text_is_one_line_per_problem():
    with pytest.raises(TopologyError) as info:
        parse_yaml_topology("name: t\nsites: [{name: a, id: 0}, {name: B}]\n", FILE)
    assert str(info.value).splitlines() == [str(p) for p in info.value.problems]
    assert len(info.value.problems) == 2


def test_link_to_a_badly_named_site_reports_only_the_name():
    found = problems("name: t\nsites: [{name: A}, {name: b}]\nlinks: [{a: A, b: b, delay_ms: 1}]\n")
    assert [p.key for p in found] == ["sites[0].name"]


# --- file-level problems, through load_topology ---


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    (p,) = info.value.problems
    assert (p.file, p.key, p.message) == (str(path), "(file)", "no such file")
    assert "check the path" in p.fix
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("  \n")
    with pytest.raises(TopologyError, match=r"empty\.yaml: \(file\): the file is empty; write a topology"):
        load_topology(path)


def test_directory_instead_of_file(tmp_path):
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(TopologyError, match=r"dir\.yaml: \(file\): is a directory; give the path"):
        load_topology(folder)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(TopologyError, match=r"latin\.yaml: \(file\): is not UTF-8 text .*; save the file as UTF-8"):
        load_topology(path)


def test_yaml_takes_no_import_options():
    with pytest.raises(TypeError, match="YAML topologies take no import options"):
        load_topology("topologies/tiny.yaml", clients_per_site=2)


# --- good input ---


def test_minimal_topology_gets_documented_defaults():
    topo = parse_yaml_topology("name: one\nsites: [{name: solo}]\n")
    (site,) = topo.sites
    assert (site.id, len(site.clients), len(site.compute)) == (1, 1, 1)
    node = site.compute[0]
    assert (node.workers, node.service_time_ms, node.queue_limit, node.background_load_pct) == (4, 10.0, 64, 0.0)
    assert (node.price_cny_per_hour, node.carbon_g_per_kwh) == (None, None)
    assert topo.links == () and topo.services == () and topo.notes == ()
    assert topo.route_factor == 1.3 and topo.description == ""


def test_ids_default_to_lowest_unused_in_file_order():
    topo = parse_yaml_topology(
        "name: t\nsites: [{name: a, id: 2}, {name: b}, {name: c}, {name: d, id: 1}, {name: e, id: 4}, {name: f}]\n"
        "links: [{a: a, b: b, delay_ms: 1}, {a: a, b: c, delay_ms: 1}, {a: a, b: d, delay_ms: 1},"
        " {a: a, b: e, delay_ms: 1}, {a: a, b: f, delay_ms: 1}]\n"
    )
    assert {s.name: s.id for s in topo.sites} == {"a": 2, "b": 3, "c": 5, "d": 1, "e": 4, "f": 6}


def test_defaults_apply_and_explicit_values_win():
    topo = parse_yaml_topology(
        "name: t\n"
        "defaults: {link: {rate_mbps: 100, loss_pct: 0.5}, compute: {workers: 8, service_time_ms: 20}}\n"
        "sites: [{name: a, compute: 2}, {name: b, compute: [{workers: 2}, {}]}]\n"
        "links: [{a: a, b: b, delay_ms: 3, rate_mbps: null, loss_pct: 0}]\n"
    )
    link = topo.link("a", "b")
    assert (link.rate_mbps, link.loss_pct, link.jitter_ms) == (None, 0.0, 0.0)
    assert [(k.name, k.workers, k.service_time_ms) for k in topo.compute_nodes()] == [
        ("k1-1", 8, 20.0), ("k1-2", 8, 20.0), ("k2-1", 2, 20.0), ("k2-2", 8, 20.0)]
    assert topo.compute_nodes()[0].capacity_rps == 400.0


def test_default_link_values_used_when_link_omits_them():
    topo = parse_yaml_topology("name: t\ndefaults: {link: {rate_mbps: 100, jitter_ms: 0.5}}\n" + TWO)
    assert topo.links[0].rate_mbps == 100.0 and topo.links[0].jitter_ms == 0.5


def test_jitter_equal_to_delay_is_allowed():
    text = "name: t\nsites: [{name: a}, {name: b}]\nlinks: [{a: a, b: b, delay_ms: 2, jitter_ms: 2}]"
    topo = parse_yaml_topology(text)
    assert topo.links[0].jitter_ms == topo.links[0].delay_ms == 2.0


def test_derived_delay_follows_the_formula_and_route_factor():
    text = "name: t\nroute_factor: 1.5\nsites: [{name: a, lat: 0, lon: 0}, {name: b, lat: 0, lon: 10}]\n" \
           "links: [{a: a, b: b}]\n"
    link = parse_yaml_topology(text).links[0]
    assert link.delay_source == "derived"
    assert link.distance_km == pytest.approx(1111.95, abs=0.1)
    assert link.delay_ms == round(link.distance_km * 1.5 * 4.9 / 1000, 2)


def test_configured_delay_faster_than_light_is_noted_not_rejected():
    text = "name: t\nsites: [{name: a, lat: 0, lon: 0}, {name: b, lat: 0, lon: 10}]\n" \
           "links: [{a: a, b: b, delay_ms: 1}]\n"
    topo = parse_yaml_topology(text)
    assert topo.links[0].delay_source == "configured" and topo.links[0].distance_km == pytest.approx(1112, abs=1)
    assert topo.notes == ("links[0] (a-b): delay_ms=1 is below the 5.45 ms light needs in fibre over 1112 km",)


def test_service_compute_by_node_and_site_in_topology_order():
    topo = parse_yaml_topology(
        "name: t\nsites: [{name: a, compute: 2}, {name: b, compute: 2}, {name: c}]\n"
        "links: [{a: a, b: b, delay_ms: 1}, {a: b, b: c, delay_ms: 1}]\n"
        "services: [{name: s, anycast: '2001:db8:ffff::1', port: 80, compute: [c, k1-2, b, k1-2]}]\n"
    )
    assert topo.services[0].compute == ("k1-2", "k2-1", "k2-2", "k3-1")
    assert str(topo.services[0].anycast) == "2001:db8:ffff::1" and topo.services[0].port == 80


def test_empty_sections_read_as_empty():
    topo = parse_yaml_topology("name: t\nsites:\n  - name: a\nlinks:\nservices:\n")
    assert topo.links == () and topo.services == ()


def test_yaml_anchors_and_merge_keys_work():
    text = (
        "name: t\nsites:\n  - {name: a, compute: [&big {workers: 16, queue_limit: 8}]}\n"
        "  - {name: b, compute: [{<<: *big, workers: 2}]}\n"
        "links: [{a: a, b: b, delay_ms: 1}]\n"
    )
    topo = parse_yaml_topology(text)
    assert [(k.workers, k.queue_limit) for k in topo.compute_nodes()] == [(16, 8), (2, 8)]
