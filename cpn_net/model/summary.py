"""A few human-readable lines describing a loaded topology."""

from __future__ import annotations

from cpn_net.model.policies import policy_lines
from cpn_net.model.slices import slice_lines
from cpn_net.model.topology import DELAY_SOURCES, Topology


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


def summarize(topo: Topology) -> str:
    """Name, sizes, where link delays came from, compute capacity, SR policies, slices and notes.

    Parameters
    ----------
    topo : Topology

    Returns
    -------
    str
        Lines separated by newlines, no trailing newline.

    Examples
    --------
    >>> from cpn_net.model import load_topology
    >>> print(summarize(load_topology("topologies/tiny.yaml")))
    tiny (topologies/tiny.yaml): Three sites in a triangle with one rate-limited and one lossy link
      3 sites, 3 links, 3 clients, 3 compute nodes, 1 service
      link delays: 3 configured, 0 derived, 0 default; 5-20 ms one way
      compute capacity: 1200 req/s (12 workers), 1200 req/s free of background load
    """
    nodes = topo.compute_nodes()
    lines = [f"{topo.name} ({topo.source})" + (f": {topo.description}" if topo.description else "")]
    lines.append("  " + ", ".join([
        _count(len(topo.sites), "site"),
        _count(len(topo.links), "link"),
        _count(len(topo.clients()), "client"),
        _count(len(nodes), "compute node"),
        _count(len(topo.services), "service"),
    ] + ([_count(len(topo.policies), "SR policy", "SR policies")] if topo.policies else [])
      + ([_count(len(topo.slices), "slice")] if topo.slices else [])))
    if topo.links:
        by_source = {s: sum(1 for link in topo.links if link.delay_source == s) for s in DELAY_SOURCES}
        delays = [link.delay_ms for link in topo.links]
        lines.append("  link delays: " + ", ".join(f"{n} {s}" for s, n in by_source.items())
                     + f"; {min(delays):g}-{max(delays):g} ms one way")
    total = sum(k.capacity_rps for k in nodes)
    free = sum(k.capacity_rps * (1 - k.background_load_pct / 100) for k in nodes)
    lines.append(f"  compute capacity: {total:.0f} req/s ({sum(k.workers for k in nodes)} workers), "
                 f"{free:.0f} req/s free of background load")
    lines.extend(f"  policy {line}" for line in policy_lines(topo.policies))
    lines.extend(f"  slice {line}" for line in slice_lines(topo.slices))
    lines.extend(f"  note: {note}" for note in topo.notes)
    return "\n".join(lines)
