"""Link-element fidelity: did the emulator keep the links' promises during a measured window?

A userspace link element counts, per direction, the frames it sent more than 1 ms
and more than 5 ms after their due time (``late_over_1ms``, ``late_over_5ms``) and,
the native element, any sent before it (``early``). A delay tail measured across a
link is the link's only while these stay still: a late timer wake-up under CPU
contention adds delay no link was configured with. Every experiment records, per
measured window, the counters' growth per link and direction and a verdict.

A window is **faithful** when no frame left early, none left more than 5 ms late, and
at most :data:`LATE_1MS_SHARE` of the frames forwarded left more than 1 ms late.
Pure: the counters come in as the dicts ``cpn status`` shows under ``ground_truth``.

Also the element's stated capacity (:data:`ELEMENT_CAPACITY_PPS`) and the warnings
``cpn check`` and ``cpn up`` give for links that could carry more.

Examples
--------
>>> before = {"l1x2": {"ab": {"forwarded": 100, "late_over_1ms": 1, "late_over_5ms": 0, "early": 0}}}
>>> after = {"l1x2": {"ab": {"forwarded": 5100, "late_over_1ms": 3, "late_over_5ms": 0, "early": 0}}}
>>> w = window(before, after)
>>> w["faithful"], w["links"]["l1x2"]["ab"]
(True, {'forwarded': 5000, 'late_over_1ms': 2, 'late_over_5ms': 0, 'early': 0})
"""

from __future__ import annotations

COUNTERS = ("forwarded", "late_over_1ms", "late_over_5ms", "early")
LATE_1MS_SHARE = 0.001  # faithful: at most 0.1 % of the frames forwarded more than 1 ms late
#: Frames per second the native link element forwards on time on this project's machines
#: (benchmarks/link_fidelity.py: 220,000 64-byte frames/s, 0 % loss, 0 % late by > 1 ms,
#: idle and with two CPU-bound processes beside it).
ELEMENT_CAPACITY_PPS = 200_000
FRAME_BITS_MIN = 84 * 8  # a minimum Ethernet frame on the wire, preamble and gap included


def window(before: dict, after: dict) -> dict:
    """Counter growth per link and direction between two readings, and the window's verdict.

    Links or directions without counters (netem mode, an element not answering) are
    left out; a window with none at all is ``faithful: None`` (not judged).
    """
    links: dict = {}
    for link, directions in (after or {}).items():
        for direction, counters in (directions or {}).items():
            old = ((before or {}).get(link) or {}).get(direction) or {}
            if not isinstance(counters, dict) or "forwarded" not in counters:
                continue
            links.setdefault(link, {})[direction] = {k: int(counters.get(k, 0) or 0) - int(old.get(k, 0) or 0)
                                                     for k in COUNTERS}
    return {"links": links, **verdict(links)}


def verdict(links: dict) -> dict:
    """``faithful`` (bool, or None with nothing to judge) and ``why`` for a window's counter growth.

    >>> verdict({"l1x2": {"ba": {"forwarded": 100, "late_over_1ms": 5, "late_over_5ms": 1, "early": 0}}})["why"]
    'l1x2 ba: 1 frames late by > 5 ms; 5 of 100 frames late by > 1 ms'
    """
    reasons = []
    judged = False
    for link, directions in sorted(links.items()):
        for direction, c in sorted(directions.items()):
            judged = True
            problems = []
            if c["early"] > 0:
                problems.append(f"{c['early']} frames early")
            if c["late_over_5ms"] > 0:
                problems.append(f"{c['late_over_5ms']} frames late by > 5 ms")
            if c["late_over_1ms"] > LATE_1MS_SHARE * max(c["forwarded"], 1):
                problems.append(f"{c['late_over_1ms']} of {c['forwarded']} frames late by > 1 ms")
            if problems:
                reasons.append(f"{link} {direction}: " + "; ".join(problems))
    if not judged:
        return {"faithful": None, "why": "no link element counters (netem, or none answered)"}
    return {"faithful": not reasons, "why": "; ".join(reasons) or "every link kept its timing"}


def capacity_warnings(topology) -> list[str]:
    """Links that could carry more frames per second than the link element forwards on time.

    An unshaped link is limited by nothing but the element; a shaped one carries at most
    ``rate / minimum frame`` frames per second.

    >>> from cpn_net.model import load_topology
    >>> capacity_warnings(load_topology("topologies/tiny.yaml"))[0][:60]
    'link centre-west has no rate limit: past about 200,000 packe'
    """
    warnings = []
    for link in topology.links:
        name = f"{link.a}-{link.b}"
        if link.rate_mbps is None:
            warnings.append(f"link {name} has no rate limit: past about {ELEMENT_CAPACITY_PPS:,} packets/s the "
                            "userspace link element queues frames itself and adds delay no link was configured "
                            "with; give it rate_mbps to keep its timing (its late counters will say if not)")
        elif link.rate_mbps * 1e6 / FRAME_BITS_MIN > ELEMENT_CAPACITY_PPS:
            warnings.append(f"link {name} at {link.rate_mbps:g} Mbit/s can carry "
                            f"{link.rate_mbps * 1e6 / FRAME_BITS_MIN:,.0f} minimum-size frames/s, more than the "
                            f"userspace link element's {ELEMENT_CAPACITY_PPS:,} on time")
    return warnings
