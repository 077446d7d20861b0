"""Mutation fuzz of the topology loaders: whatever a file holds, the loader answers a Topology or a TopologyError.

Seeds are the shipped topologies (YAML, Topology Zoo GraphML) and node-link
JSON written from the shipped YAML ones (no JSON topology is shipped). Each
case applies one to three mutations to a seed, either to its bytes (flip,
delete, duplicate, truncate, insert a token that parsers find hard) or to its
parsed structure (replace a value with an awkward one, drop or rename a key,
duplicate an element), writes it to a file and loads it with
:func:`cpn_net.model.load_topology`, the loader every command uses.

Seeded, so a failure names the seed and case that reproduce it
(:func:`make_case`). ``CPN_FUZZ_LOADER_CASES`` and ``CPN_FUZZ_SEED`` set the
size and seed (``scripts/soak_fuzz.sh`` runs it longer); the default,
20,000 cases, takes well under a minute.
"""

from __future__ import annotations

import copy
import json
import os
import random
import time
import traceback
import xml.etree.ElementTree as ET

import pytest
import yaml

from cpn_net.model import Topology, TopologyError, load_topology

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
YAML_SEEDS = ["tiny.yaml", "diamond.yaml", "tiny-policies.yaml", "slices.yaml", "east-data-west-compute.yaml"]
GRAPHML_SEEDS = ["abilene.graphml"]
CASES = int(os.environ.get("CPN_FUZZ_LOADER_CASES", "20000"))
SEED = int(os.environ.get("CPN_FUZZ_SEED", "20240613"))
# The flagship file costs ~10 ms a parse, the others ~1 ms: it is drawn less often so the count stays in budget.
_WEIGHTS = {"east-data-west-compute.yaml": 0.2, "east-data-west-compute.json": 0.2}
_SLOW_CASE_S = 2.0

#: Values that have broken parsers and validators before: huge and special numbers, surrogates, odd types.
AWKWARD_VALUES = [
    0, -1, 1, 2, 65536, -(2 ** 63), 2 ** 64, 10 ** 400, 10 ** 4000, 0.5, -0.0, 1e308, 1e-320,
    float("inf"), float("-inf"), float("nan"), True, False, None, "", " ", "x" * 300, "\u00e9t\u00e9", "\u202e",
    "\x00", "1e400", "NaN", "-inf", "0x10", "1_000", "12:30", "2001:db8::1", "fd00::/8", "::", "256.0.0.1",
    "fcbb:bb00:1::", "r1", "k1-1", "u1-1", "east", "centre", "west", "a", "site", "-", "*", "min_delay", "bandwidth",
    "latency", "bulk", "tcp", "udp", [], [[]], [None], ["east", "east"], {}, {"a": 1}, {"name": "east"},
    {"": None}, [1, 2, 3], [{"name": "z"}],
]
#: Tokens spliced into the text at random: syntax each format reacts to.
TOKENS = {
    "yaml": [b"&a ", b"*a", b"&a [*a]", b"!!python/object:os.system ", b"!!binary ", b"!!float ", b"!!int ",
             b"!!set ", b"!!timestamp ", b"!!omap ", b"<<: ", b"<<: *a", b"? ", b": ", b"- ", b"{", b"}", b"[",
             b"]", b",", b"\t", b"\n", b"\n  ", b"%YAML 1.1\n", b"--- ", b"\n...\n", b"|", b">", b"'", b'"', b"#",
             b"\\ud800", b'"\\ud800"', b'"\\U0010ffff"', b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b"\xff",
             b"1e400", b".inf", b"-.nan", b"0x7fffffffffffffffff", b"0o777", b"1" * 5000, b"~", b"null", b"yes",
             b"2001-12-14", b"1:20:30", b"[" * 200, b"{a: " * 100],
    "json": [b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"\\ud800", b'"\\ud800"', b"\\u0000", b"1e400",
             b"-1e400", b"NaN", b"Infinity", b"-Infinity", b"1" * 5000, b"-0", b"0.0", b"true", b"null", b"[]",
             b"{}", b'"":', b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\xff", b"\x00", b"[" * 2000, b'{"a":' * 2000,
             b'"id": 0', b'"source": []', b'"nodes": {}', b'"graph": null'],
    "graphml": [b"<", b">", b"/>", b"</node>", b"<node/>", b'<node id="0"/>', b'<edge source="0" target="0"/>',
                b'<edge source="x" target="0"/>', b"<data key=\"n0\">1e400</data>", b"<data key=\"n0\">nan</data>",
                b"&amp;", b"&bogus;", b"&#0;", b"&#xD800;", b"&#1114112;", b"<![CDATA[", b"]]>", b"<!--", b"-->",
                b'<!DOCTYPE g [<!ENTITY e "ee">]>', b"&e;", b'<?xml version="1.0" encoding="utf-16"?>',
                b'encoding="bogus"', b'<?xml version="1.0" encoding="bogus"?>', b'<?xml version="1.0" encoding="utf-32"?>',
                b'<?xml version="1.0" encoding="latin-1"?>', b'<!DOCTYPE g SYSTEM "file:///etc/passwd">', b'xmlns="urn:x"', b'xmlns:a="urn:a" a:id="1"', b"\xed\xa0\x80", b"\xff",
                b"\x00", b"\xef\xbb\xbf", b'edgedefault="directed"', b'directed="true"', b"1" * 5000,
                b"<graph>", b"</graph>", b'<key id="n9" for="node" attr.name="Latitude"><default>x</default></key>'],
}


# --- seeds ---------------------------------------------------------------------------------------------------------

def _node_link_of(yaml_text: str) -> bytes:
    """The node-link JSON form of one of our YAML topologies (sites are nodes named by id)."""
    doc = yaml.safe_load(yaml_text)
    graph = {key: doc[key] for key in ("name", "description", "route_factor", "defaults", "services", "policies",
                                      "slices") if key in doc}
    nodes = []
    for site in doc["sites"]:
        node = {key: value for key, value in site.items() if key != "name"}
        if "id" in node:
            node["site_id"] = node.pop("id")
        nodes.append({"id": site["name"], **node})
    links = [{"source": link["a"], "target": link["b"], **{k: v for k, v in link.items() if k not in "ab"}}
             for link in doc.get("links") or []]
    return json.dumps({"directed": False, "multigraph": False, "graph": graph, "nodes": nodes, "links": links},
                      indent=1).encode()


def seeds() -> dict[str, bytes]:
    """Seed file name -> bytes; each name's extension picks the loader."""
    found = {}
    for name in YAML_SEEDS + GRAPHML_SEEDS:
        with open(os.path.join(ROOT, "topologies", name), "rb") as handle:
            found[name] = handle.read()
    for name in YAML_SEEDS:
        found[name.replace(".yaml", ".json")] = _node_link_of(found[name].decode())
    return found


def _format(name: str) -> str:
    return {".yaml": "yaml", ".json": "json", ".graphml": "graphml"}[os.path.splitext(name)[1]]


# --- mutations -----------------------------------------------------------------------------------------------------

def _mutate_bytes(rng: random.Random, data: bytes, fmt: str) -> bytes:
    kind = rng.randrange(7)
    at = 0 if kind == 6 else rng.randrange(len(data) + 1)  # kind 6: a token at the very start (BOM, declaration)
    if kind == 0 and data:  # flip one byte
        at = min(at, len(data) - 1)
        return data[:at] + bytes([rng.randrange(256)]) + data[at + 1:]
    if kind == 1:  # delete a span
        return data[:at] + data[at + rng.randrange(1, 64):]
    if kind == 2:  # duplicate a span somewhere else
        span = data[at:at + rng.randrange(1, 200)]
        where = rng.randrange(len(data) + 1)
        return data[:where] + span + data[where:]
    if kind == 3:  # truncate
        return data[:at]
    return data[:at] + rng.choice(TOKENS[fmt]) + data[at:]  # splice a token (twice as likely), or prepend one


def _paths(value, prefix=()):
    """Every path (tuple of keys and indexes) into nested dicts and lists."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


def _mutate_tree(rng: random.Random, doc):
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return rng.choice(AWKWARD_VALUES)
    path = rng.choice(paths)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    kind = rng.randrange(5)
    if kind <= 1:
        parent[last] = copy.deepcopy(rng.choice(AWKWARD_VALUES))
    elif kind == 2:
        del parent[last]
    elif kind == 3 and isinstance(parent, dict):  # rename a key (to an odd one, or another real key)
        new = rng.choice([f"{last}x", str(last).upper(), "", "name", "id", "a", "b", "source", "target", 1, None, True])
        parent[new] = parent.pop(last)
    elif isinstance(parent, list):  # duplicate an item
        parent.insert(rng.randrange(len(parent) + 1), copy.deepcopy(parent[last]))
    else:  # make the value contain itself a level down
        parent[last] = [copy.deepcopy(parent[last])]
    return doc


def _mutate_xml(rng: random.Random, data: bytes) -> bytes:
    root = ET.fromstring(data)
    elements = list(root.iter())
    element = rng.choice(elements)
    kind = rng.randrange(5)
    value = str(rng.choice(AWKWARD_VALUES))[:400]
    if kind == 0 and element.attrib:
        element.set(rng.choice(sorted(element.attrib)), value)
    elif kind == 1:
        element.text = value
    elif kind == 2 and len(element):
        element.remove(rng.choice(list(element)))
    elif kind == 3 and len(element):
        child = rng.choice(list(element))
        element.insert(rng.randrange(len(element) + 1), copy.deepcopy(child))
    else:
        element.set(rng.choice(["id", "source", "target", "key", "for", "attr.name", "edgedefault", "directed"]),
                    value)
    return ET.tostring(root)


def _dump(doc, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(doc).encode()  # NaN and Infinity written as JSON's common extension, as networkx can
    # libyaml's dumper: the pure-Python one would cost more than the load under test.
    return yaml.dump(doc, Dumper=_DUMPER, allow_unicode=True, sort_keys=False).encode("utf-8", "surrogatepass")


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class Corpus:
    """The seeds as bytes and, for YAML and JSON, parsed once (a case mutates a copy)."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.names = sorted(files)
        self.weights = [_WEIGHTS.get(n, 1.0) for n in self.names]
        self.trees = {n: (json.loads(d) if _format(n) == "json" else yaml.safe_load(d))
                      for n, d in files.items() if _format(n) != "graphml"}


def make_case(seed: int, index: int, corpus: Corpus) -> tuple[str, bytes]:
    """The seed file name and mutated bytes of case ``index`` of a run seeded ``seed``: a failure's reproducer.

    Half the cases mutate the structure (then maybe the bytes too), half only the bytes.
    """
    rng = random.Random(f"{seed}:{index}")
    name = rng.choices(corpus.names, corpus.weights)[0]
    data, fmt = corpus.files[name], _format(name)
    byte_mutations = rng.choice((1, 1, 2, 3))
    if rng.random() < 0.5:
        if fmt == "graphml":
            for _ in range(rng.choice((1, 2, 3))):
                try:
                    data = _mutate_xml(rng, data)
                except ET.ParseError:  # a value written before (a NUL, say) left XML no parser reads
                    break
        else:
            tree = copy.deepcopy(corpus.trees[name])
            for _ in range(rng.choice((1, 2, 3))):
                tree = _mutate_tree(rng, tree)
            data = _dump(tree, fmt)
        byte_mutations = rng.choice((0, 0, 0, 1))
    for _ in range(byte_mutations):
        data = _mutate_bytes(rng, data, fmt)
    return name, data


# --- the fuzz ------------------------------------------------------------------------------------------------------

def run_fuzz(cases: int, seed: int, workdir: str) -> dict:
    """Load ``cases`` mutated files; return counts, timings and every failure (a non-TopologyError)."""
    corpus = Corpus(seeds())
    outcomes = {"loaded": 0, "refused": 0}
    failures, slow = [], []
    started = time.perf_counter()
    for index in range(cases):
        name, data = make_case(seed, index, corpus)
        path = os.path.join(workdir, "case" + os.path.splitext(name)[1])
        with open(path, "wb") as handle:
            handle.write(data)
        begin = time.perf_counter()
        try:
            assert isinstance(load_topology(path), Topology)
            outcomes["loaded"] += 1
        except TopologyError as err:
            assert err.problems and all(str(p) for p in err.problems)
            outcomes["refused"] += 1
        except Exception as err:  # noqa: BLE001 — the point is to catch anything else
            failures.append({"case": index, "seed_file": name, "error": f"{type(err).__name__}: {err}"[:300],
                             "where": traceback.extract_tb(err.__traceback__)[-1].filename.rsplit("/", 2)[-1]
                             + f":{traceback.extract_tb(err.__traceback__)[-1].lineno}"})
        if time.perf_counter() - begin > _SLOW_CASE_S:
            slow.append(index)
    return {**outcomes, "cases": cases, "seconds": time.perf_counter() - started, "failures": failures, "slow": slow}


def test_mutated_topology_files_load_or_raise_only_topology_error(tmp_path):
    result = run_fuzz(CASES, SEED, str(tmp_path))
    print(f"loader fuzz: {result['cases']} cases (seed {SEED}) in {result['seconds']:.1f} s: "
          f"{result['loaded']} loaded, {result['refused']} refused with TopologyError, "
          f"{len(result['failures'])} other exceptions")
    shown = "\n".join(f"case {f['case']} ({f['seed_file']}) at {f['where']}: {f['error']}"
                      for f in result["failures"][:20])
    assert not result["failures"], (f"{len(result['failures'])} cases raised something else than TopologyError; "
                                    f"reproduce with make_case({SEED}, case, Corpus(seeds())):\n{shown}")
    assert not result["slow"], f"cases {result['slow'][:20]} took over {_SLOW_CASE_S} s each"
    assert result["loaded"] and result["refused"] > result["cases"] // 2  # the mutations reach both outcomes


def test_every_seed_loads_unmutated(tmp_path):
    for name, data in seeds().items():
        path = tmp_path / name
        path.write_bytes(data)
        assert isinstance(load_topology(path), Topology), name


def test_cases_are_reproducible():
    corpus = Corpus(seeds())
    assert [make_case(7, i, corpus) for i in range(50)] == [make_case(7, i, corpus) for i in range(50)]


@pytest.mark.parametrize("name, data", [
    ("big-int.yaml", b"name: t\nsites: [{name: a, id: " + b"1" * 5000 + b"}]\n"),
    ("recursive.yaml", b"name: t\nsites: &s [*s]\n"),
    ("surrogate.yaml", b'name: "\\ud800"\nsites: [{name: a}]\n'),
    ("big-int.json", b'{"nodes": [{"id": ' + b"1" * 5000 + b"}]}"),
    ("infinite.json", b'{"nodes": [{"id": "a", "lat": 1e400}], "links": []}'),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000),
    ("entity.graphml", b'<!DOCTYPE g [<!ENTITY e "ee">]><graphml><graph><node id="&e;"/></graph></graphml>'),
    ("surrogate.graphml", b'<graphml><graph><node id="&#xD800;"/></graph></graphml>'),
])
def test_known_hard_inputs_raise_topology_error_or_load(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    try:
        load_topology(path)
    except TopologyError as err:
        assert err.problems
