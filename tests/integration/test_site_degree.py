"""Every site degree boots: a hub with 30 links (a 42-site Topology Zoo network once stopped at a
router with 14 links, its setup line cut by the node shell's terminal)."""

from __future__ import annotations

import pytest

from cpn_net.model import addressing

from .conftest import cpn, in_node, leftovers, status

LEAVES = 30


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    sites = ["  - {name: hub, id: 1, clients: 1, compute: 0}"]
    links = []
    for leaf in range(2, LEAVES + 2):
        sites.append(f"  - {{name: leaf{leaf}, id: {leaf}, clients: {1 if leaf in (2, LEAVES + 1) else 0}, "
                     "compute: 0}")
        links.append(f"  - {{a: hub, b: leaf{leaf}, delay_ms: 1}}")
    path = tmp_path_factory.mktemp("hub") / "hub30.yaml"
    path.write_text("name: hub30\ndescription: one hub with 30 links\nsites:\n" + "\n".join(sites) +
                    "\nlinks:\n" + "\n".join(links) + "\n")
    assert not leftovers(), f"a previous run left: {leftovers()}"
    cpn("up", str(path), "--detach", timeout=600)
    try:
        yield status()
    finally:
        cpn("down", timeout=300)


def test_a_hub_with_30_links_boots_and_forwards(hub):
    wan = [line for line in in_node("r1", "ip -br link").stdout.splitlines() if line.startswith("r1-eth")]
    assert len(wan) == LEAVES + 1, wan  # 30 WAN links and the LAN
    assert not hub["controller"]["errors"]
    # Leaf to leaf through the hub, both ways round: every router of the path is programmed.
    far = str(addressing.host_address(LEAVES + 1, "client", 1))
    proc = in_node("u2-1", f"ping -n -c 3 -i 0.2 -W 3 {far}", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
