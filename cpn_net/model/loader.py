"""Load a topology from any supported file, choosing the format by extension."""

from __future__ import annotations

import os
from typing import Any

from cpn_net.model.errors import FILE_KEY, Problem, TopologyError
from cpn_net.model.graphml import load_graphml
from cpn_net.model.node_link import load_node_link
from cpn_net.model.topology import Topology
from cpn_net.model.yaml_format import load_yaml_topology

FORMATS = {".yaml": "YAML", ".yml": "YAML", ".graphml": "GraphML", ".json": "node-link JSON"}


def load_topology(path: str | os.PathLike, **import_options: Any) -> Topology:
    """Load and validate a topology file.

    ``.yaml``/``.yml``: our format (:mod:`cpn_net.model.schema`);
    ``.graphml``: Topology Zoo GraphML (:mod:`cpn_net.model.graphml`);
    ``.json``: networkx node-link JSON (:mod:`cpn_net.model.node_link`).

    Parameters
    ----------
    path : str or os.PathLike
    **import_options
        Passed to the importer: ``clients_per_site``, ``compute_per_site``,
        ``route_factor``, ``default_service`` for GraphML; ``default_service``
        for JSON. YAML takes none.

    Returns
    -------
    Topology

    Raises
    ------
    TopologyError
        Listing every problem found; also for an unknown extension.
    TypeError
        For an option the format does not take.

    Examples
    --------
    >>> load_topology("topologies/tiny.yaml").name
    'tiny'
    >>> load_topology("topologies/tiny.txt")
    Traceback (most recent call last):
    ...
    cpn_net.model.errors.TopologyError: topologies/tiny.txt: (file): extension '.txt' is not a known
    topology format; use .yaml, .yml, .graphml or .json
    """
    file = os.fspath(path)
    extension = os.path.splitext(file)[1].lower()
    if extension in (".yaml", ".yml"):
        if import_options:
            raise TypeError(f"YAML topologies take no import options, got {sorted(import_options)}")
        return load_yaml_topology(path)
    if extension == ".graphml":
        return load_graphml(path, **import_options)
    if extension == ".json":
        return load_node_link(path, **import_options)
    raise TopologyError([Problem(file, FILE_KEY, f"extension {extension!r} is not a known topology format",
                                 f"use {', '.join(list(FORMATS)[:-1])} or {list(FORMATS)[-1]}")])
