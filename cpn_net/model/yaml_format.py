"""Load a topology from our YAML format (described in :mod:`cpn_net.model.schema`).

YAML syntax errors are reported with their line and column; a key repeated in
one mapping is a problem too (plain YAML loaders silently keep the last one).

Examples
--------
>>> topo = parse_yaml_topology('''
... name: pair
... sites: [{name: a, lat: 0, lon: 0}, {name: b, lat: 0, lon: 1}]
... links: [{a: a, b: b}]
... ''')
>>> topo.links[0].delay_source, topo.links[0].delay_ms, topo.links[0].distance_km
('derived', 0.71, 111.2)
"""

from __future__ import annotations

import os

import yaml

from cpn_net.model.build import Entry, build_topology, read_header
from cpn_net.model.errors import FILE_KEY, TOP_KEY, ProblemLog
from cpn_net.model.files import check_document, read_text
from cpn_net.model.schema import RESERVED_KEYS, TOP_FIELDS, Reader, describe
from cpn_net.model.topology import Topology


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that records keys repeated within one mapping."""

    def __init__(self, stream):
        super().__init__(stream)
        self.repeated: list[tuple[object, yaml.Mark, yaml.Mark]] = []

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first: dict = {}
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # merge keys may legitimately be overridden
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in first:
                        self.repeated.append((key, key_node.start_mark, first[key]))
                    else:
                        first[key] = key_node.start_mark
                except TypeError:
                    pass  # unhashable key: the base constructor reports it
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node, deep=False):
        # PyYAML's constructors let Python's own errors out for some explicitly tagged or odd scalars
        # (!!int 0x, !!bool maybe, !!timestamp 1, an int of over 4300 digits): report them at the node.
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError) as err:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            what = _shown(node.value) if isinstance(node.value, str) else f"this {type(node).__name__[:-4].lower()}"
            limit = " (over 4300 digits)" if "4300" in str(err) else ""
            raise yaml.constructor.ConstructorError(None, None, f"{what} is not a valid {tag}{limit}",
                                                    node.start_mark) from err


def _code(character: str | int) -> int:
    return character if isinstance(character, int) else ord(character)  # bytes streams give ints


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:20]!r}... ({len(text)} characters)"


def load_yaml_topology(path: str | os.PathLike) -> Topology:
    """Load and validate a ``.yaml``/``.yml`` topology file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Topology

    Raises
    ------
    TopologyError
        Listing every problem found (file, key path, message, fix).

    Examples
    --------
    >>> load_yaml_topology("topologies/tiny.yaml").name
    'tiny'
    """
    return parse_yaml_topology(read_text(path), os.fspath(path))


def parse_yaml_topology(text: str, file: str = "<string>") -> Topology:
    """Validate a topology given as YAML text; ``file`` names it in messages.

    Examples
    --------
    >>> parse_yaml_topology("name: x\\nsites: [{name: a, clients: -1}]\\nscenario: {}")
    Traceback (most recent call last):
    ...
    cpn_net.model.errors.TopologyError: <string>: scenario: not supported by this version of cpn_net yet; remove it ...
    <string>: sites[0].clients: -1 must be in [0, 99]; give 0 to 99 clients
    """
    log = ProblemLog(file)
    loader = None
    try:
        loader = _StrictLoader(text)  # reads the stream already: unprintable characters fail here
        document = loader.get_single_data()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else FILE_KEY
        if isinstance(err, yaml.reader.ReaderError):
            where, problem = f"character {err.position + 1}", f"{err.reason} (#x{_code(err.character):04x})"
        else:
            problem = " ".join(str(p) for p in (getattr(err, "context", None), getattr(err, "problem", None)) if p)
        log.add(where, f"YAML syntax error: {problem or err}", "fix the YAML (check indentation, colons and quotes)")
        log.raise_if_any()
    except RecursionError:
        log.add(FILE_KEY, "nested too deeply to read", "flatten the YAML: a topology is a few levels deep")
        log.raise_if_any()
    finally:
        if loader is not None:
            loader.dispose()
    for key, mark, first in loader.repeated:
        log.add(f"line {mark.line + 1}, column {mark.column + 1}",
                f"key {key!r} repeats one given at line {first.line + 1}", "keep only one of them")
    check_document(log, document)
    log.raise_if_any()
    if document is None:
        log.add(FILE_KEY, "the file has no content", "write a topology mapping (see cpn_net.model.schema)")
        log.raise_if_any()
    if not isinstance(document, dict):
        log.add(TOP_KEY, f"the document is {describe(document)}, expected a mapping",
                "start with top-level keys such as 'name:' and 'sites:'")
        log.raise_if_any()
    for key in RESERVED_KEYS:
        if key in document:
            log.add(key, "not supported by this version of cpn_net yet",
                    "remove it (it is reserved for a later version of the format)")
    top = Reader(log, "", {k: v for k, v in document.items() if k not in RESERVED_KEYS}, TOP_FIELDS)
    header = read_header(log, top)
    lists = {key: _entries(top, key) for key in ("sites", "links", "services", "policies", "slices")}
    return build_topology(log, file, header, lists["sites"], lists["links"], lists["services"],
                          policies=lists["policies"], slices=lists["slices"])


def _entries(top: Reader, key: str) -> list[Entry]:
    # An empty YAML section (``links:`` with nothing under it) reads as null.
    items = [] if top.raw(key) is None else top.get(key, [])
    return [Entry(f"{key}[{i}]", item) for i, item in enumerate(items)]
