"""What the map page shows, computed from the northbound's views: pure functions, no I/O.

The feed (:mod:`.feed`) gathers ``GET /topology``, ``/telemetry``, ``/status``,
``/steering``, ``/policies`` and ``/slice-status`` and hands them here; the
page only draws what these functions decide, so the rules live in one place
and are tested without a browser.

Link state (``data-state`` on the page), per WAN link, over both directions:

- ``down``: the controller saw the link lose carrier (``links_down`` of
  ``GET /status``), or the link element reports it cut (``configured_down``);
- ``degraded``: its alternate-marking loss over the last
  :data:`LOSS_WINDOW_BLOCKS` blocks is above :data:`DEGRADED_LOSS_PCT` with
  95 % confidence (the Wilson score interval's lower bound: a link carrying
  10 probes a second must lose several before it counts, so a 2 % link does
  not flicker), or its measured one-way delay (IOAM median) exceeds the
  configured delay by more than :data:`SLOW_FACTOR` plus :data:`SLOW_SLACK_MS`;
- ``ok`` otherwise, measured or not (``measured`` says which).

Examples
--------
>>> link_id("east", "centre")
'east~centre'
>>> wilson_lower(30, 9) > DEGRADED_LOSS_PCT / 100
True
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

#: Alternate-marking blocks (1 s each by default) whose loss is pooled to judge a link.
LOSS_WINDOW_BLOCKS = 3
#: A link losing more than this (per cent, with 95 % confidence) is degraded: a lossy link.
DEGRADED_LOSS_PCT = 5.0
#: z of the two-sided 95 % Wilson score interval.
_Z95 = 1.959964
#: A link is slow when its measured delay exceeds configured x (1 + SLOW_FACTOR) + SLOW_SLACK_MS.
SLOW_FACTOR = 0.5
SLOW_SLACK_MS = 1.0
#: Link rate assumed for the width of a link without a configured rate (Mbit/s).
UNLIMITED_REFERENCE_MBPS = 1000.0


def link_id(a: str, b: str) -> str:
    """The page's name of the WAN link between sites ``a`` and ``b``: ``data-link="a~b"`` (topology order)."""
    return f"{a}~{b}"


def wilson_lower(sent: int, lost: int) -> float:
    """Lower bound of the 95 % Wilson score interval of a loss ratio ``lost / sent``.

    Parameters
    ----------
    sent : int
        Packets sent (trials); 0 gives 0.0.
    lost : int
        Packets lost, clipped to ``0..sent``.

    Returns
    -------
    float
        A ratio in 0..1.

    Examples
    --------
    >>> round(wilson_lower(100, 30), 3), wilson_lower(0, 0), wilson_lower(10, 0)
    (0.219, 0.0, 0.0)
    """
    if sent <= 0:
        return 0.0
    lost = min(max(lost, 0), sent)
    p = lost / sent
    z2 = _Z95 * _Z95
    centre = p + z2 / (2 * sent)
    spread = _Z95 * math.sqrt(p * (1 - p) / sent + z2 / (4 * sent * sent))
    return max(0.0, (centre - spread) / (1 + z2 / sent))


def pooled_loss(blocks: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """``(sent, lost)`` summed over block readings that have both (a reading may miss a counter).

    Examples
    --------
    >>> pooled_loss([{"sent": 10, "lost": 1}, {"sent": None, "lost": None}, {"sent": 12, "lost": 0}])
    (22, 1)
    """
    sent = lost = 0
    for block in blocks:
        if block.get("sent") is not None and block.get("lost") is not None:
            sent += max(0, int(block["sent"]))
            lost += max(0, int(block["lost"]))
    return sent, lost


def direction_view(reading: Mapping[str, Any] | None, blocks: Sequence[Mapping[str, Any]],
                   configured_delay_ms: float | None, throughput_mbps: float | None,
                   rate_mbps: float | None) -> dict:
    """One direction of a link as the page shows it.

    Parameters
    ----------
    reading : mapping or None
        The direction's entry of ``GET /telemetry``'s ``links`` (``from``, ``to``, ``delay``, ``loss``,
        ``ground_truth``).
    blocks : sequence of mapping
        The direction's latest loss blocks (``sent``, ``lost``), oldest first; the last
        :data:`LOSS_WINDOW_BLOCKS` are pooled.
    configured_delay_ms : float or None
        The topology's delay of the link (what the controller planned with).
    throughput_mbps : float or None
        Measured on the upstream router's interface.
    rate_mbps : float or None
        The link's configured rate; None: not rate-limited.

    Returns
    -------
    dict
        ``delay_ms``, ``delay_p99_ms``, ``loss_pct`` (pooled window), ``block_loss_pct`` (latest block),
        ``truth_delay_ms``, ``truth_loss_pct``, ``truth_down``, ``throughput_mbps``, ``utilisation``,
        ``lossy``, ``slow``, ``measured``.

    Examples
    --------
    >>> reading = {"from": "a", "to": "b", "delay": {"delay_ms": 5.2, "delay_p99_ms": 5.9},
    ...            "loss": {"loss_pct": 30.0, "configured_loss_pct": 30.0, "configured_down": False},
    ...            "ground_truth": {"delay_ms": 5.0}}
    >>> view = direction_view(reading, [{"sent": 10, "lost": 3}] * 3, 5.0, 25.0, 50.0)
    >>> view["loss_pct"], view["lossy"], view["slow"], view["utilisation"]
    (30.0, True, False, 0.5)
    """
    reading = reading or {}
    delay = reading.get("delay") or {}
    loss = reading.get("loss") or {}
    truth = reading.get("ground_truth") or {}
    sent, lost = pooled_loss(blocks[-LOSS_WINDOW_BLOCKS:])
    delay_ms = delay.get("delay_ms")
    slow = (delay_ms is not None and configured_delay_ms is not None
            and delay_ms > configured_delay_ms * (1 + SLOW_FACTOR) + SLOW_SLACK_MS)
    reference = rate_mbps or UNLIMITED_REFERENCE_MBPS
    return {
        "from": reading.get("from"), "to": reading.get("to"),
        "delay_ms": delay_ms, "delay_p99_ms": delay.get("delay_p99_ms"), "jitter_ms": delay.get("jitter_ms"),
        "loss_pct": round(100.0 * lost / sent, 3) if sent else None,
        "block_loss_pct": loss.get("loss_pct"),
        "window_sent": sent, "window_lost": lost,
        "truth_delay_ms": first_given(loss.get("configured_delay_ms"), truth.get("delay_ms")),
        "truth_loss_pct": first_given(loss.get("configured_loss_pct"), truth.get("loss_pct")),
        "truth_down": loss.get("configured_down"),
        "throughput_mbps": None if throughput_mbps is None else round(throughput_mbps, 3),
        "utilisation": None if throughput_mbps is None else round(min(1.0, throughput_mbps / reference), 4),
        "lossy": wilson_lower(sent, lost) > DEGRADED_LOSS_PCT / 100.0,
        "slow": bool(slow),
        "measured": bool(delay) or sent > 0,
    }


def first_given(*values: Any) -> Any:
    """The first value that is not None (None if all are)."""
    return next((v for v in values if v is not None), None)


def link_views(topology: Mapping, telemetry: Mapping | None, links_down: Iterable[str],
               blocks: Mapping[str, Sequence[Mapping]], throughput: Mapping[str, float]) -> list[dict]:
    """Every WAN link with its state, both directions and the reasons for its state.

    Parameters
    ----------
    topology : mapping
        ``GET /topology`` (``links`` with ``a``, ``b``, ``delay_ms``, ``loss_pct``, ``rate_mbps``).
    telemetry : mapping or None
        ``GET /telemetry``; None while telemetry does not run.
    links_down : iterable of str
        ``GET /status``'s ``links_down`` (``"a-b"``, the two sites sorted and joined by ``-``).
    blocks : mapping
        Per directed telemetry link name (``r1->r2``): its recent loss blocks, oldest first.
    throughput : mapping
        Per directed link ``"a->b"`` (site names): Mbit/s measured.

    Returns
    -------
    list of dict
        In topology order: ``id`` (``a~b``), ``a``, ``b``, ``state``, ``reasons``, ``configured``,
        ``directions`` (a->b then b->a), ``utilisation`` (the busier direction's).

    Examples
    --------
    >>> topo = {"links": [{"a": "x", "b": "y", "delay_ms": 5.0, "loss_pct": 0.0, "rate_mbps": None}]}
    >>> [(v["id"], v["state"]) for v in link_views(topo, None, ["x-y"], {}, {})]
    [('x~y', 'down')]
    >>> link_views(topo, None, [], {}, {})[0]["state"]
    'ok'
    """
    down = set(links_down)
    by_pair = {}
    for reading in (telemetry or {}).get("links") or []:
        by_pair[(reading.get("from"), reading.get("to"))] = reading
    out = []
    for link in topology.get("links") or []:
        a, b = link["a"], link["b"]
        directions = []
        for src, dst in ((a, b), (b, a)):
            reading = by_pair.get((src, dst))
            name = reading.get("link") if reading else None
            directions.append(direction_view(reading, list(blocks.get(name, ())) if name else [],
                                             link.get("delay_ms"), throughput.get(f"{src}->{dst}"),
                                             link.get("rate_mbps")))
        reasons = []
        if "-".join(sorted((a, b))) in down:
            reasons.append("carrier lost (controller)")
        if any(d["truth_down"] for d in directions):
            reasons.append("cut at the link element")
        state = "down" if reasons else "ok"
        if state == "ok":
            for d in directions:
                if d["lossy"]:
                    reasons.append(f"{d['from']}->{d['to']} loses {d['loss_pct']:g} % "
                                   f"(over {LOSS_WINDOW_BLOCKS} blocks, > {DEGRADED_LOSS_PCT:g} %)")
                if d["slow"]:
                    reasons.append(f"{d['from']}->{d['to']} delay {d['delay_ms']:g} ms, configured "
                                   f"{link.get('delay_ms'):g} ms")
            state = "degraded" if reasons else "ok"
        utilisations = [d["utilisation"] for d in directions if d["utilisation"] is not None]
        out.append({"id": link_id(a, b), "a": a, "b": b, "state": state, "reasons": reasons,
                    "configured": {"delay_ms": link.get("delay_ms"), "loss_pct": link.get("loss_pct"),
                                   "rate_mbps": link.get("rate_mbps")},
                    "directions": directions, "utilisation": max(utilisations) if utilisations else None,
                    "measured": any(d["measured"] for d in directions)})
    return out


def site_views(topology: Mapping, steering: Mapping | None, prices: Mapping[str, float] | None = None) -> list[dict]:
    """Every site with its place, its hosts and, for compute sites, load, surplus and price.

    ``load`` is the mean utilisation its instances last reported (0..1), ``surplus_rps``
    the capacity they leave unused (sum of capacity x (1 - utilisation)), ``price_cny_per_hour``
    the cheapest price among its compute nodes: from ``prices`` (per compute node, e.g. a market's)
    where given, else the topology's.

    Examples
    --------
    >>> topo = {"sites": [{"name": "x", "id": 1, "lat": 30.0, "lon": 104.0, "clients": [{"name": "u1-1"}],
    ...                    "compute": [{"name": "k1-1", "capacity_rps": 400.0, "price_cny_per_hour": 99.0}]}]}
    >>> steering = {"instances": [{"instance": "k1-1", "site": "x", "service": "echo", "utilisation": 0.25,
    ...                            "healthy": True, "queue_len": 0}]}
    >>> site = site_views(topo, steering)[0]
    >>> site["kind"], site["load"], site["surplus_rps"], site["price_cny_per_hour"]
    ('mixed', 0.25, 300.0, 99.0)
    """
    prices = prices or {}
    by_instance: dict[str, list[dict]] = {}
    for instance in (steering or {}).get("instances") or []:
        by_instance.setdefault(instance.get("instance"), []).append(instance)
    out = []
    for site in topology.get("sites") or []:
        compute = site.get("compute") or []
        clients = site.get("clients") or []
        loads, surplus, healthy, reported = [], 0.0, True, False
        for host in compute:
            for instance in by_instance.get(host["name"], []):
                if instance.get("utilisation") is None:
                    continue
                reported = True
                loads.append(float(instance["utilisation"]))
                surplus += float(host.get("capacity_rps") or 0.0) * (1.0 - float(instance["utilisation"]))
                healthy = healthy and bool(instance.get("healthy"))
        price_list = [prices.get(h["name"], h.get("price_cny_per_hour")) for h in compute]
        price_list = [p for p in price_list if p is not None]
        kind = "mixed" if compute and clients else "compute" if compute else "demand" if clients else "transit"
        out.append({"name": site["name"], "id": site.get("id"), "lat": site.get("lat"), "lon": site.get("lon"),
                    "kind": kind, "clients": [c["name"] for c in clients], "compute": [h["name"] for h in compute],
                    "capacity_rps": sum(float(h.get("capacity_rps") or 0.0) for h in compute) or None,
                    "load": round(sum(loads) / len(loads), 4) if loads else None,
                    "surplus_rps": round(surplus, 1) if reported else None,
                    "healthy": healthy if reported else None,
                    "price_cny_per_hour": min(price_list) if price_list else None})
    return out


def steering_arrows(topology: Mapping, steering: Mapping | None) -> list[dict]:
    """The split of new flows of each client site and service, as arrows to its instances' sites.

    Examples
    --------
    >>> topo = {"sites": [{"name": "x", "compute": [{"name": "k1-1"}]}, {"name": "y", "compute": [{"name": "k2-1"}]}]}
    >>> view = {"preferred": [{"site": "x", "service": "echo", "instance": "k2-1",
    ...                        "split": [["k2-1", 70], ["k1-1", 30]]}]}
    >>> [(a["from"], a["to"], a["instance"], a["share"]) for a in steering_arrows(topo, view)]
    [('x', 'y', 'k2-1', 0.7), ('x', 'x', 'k1-1', 0.3)]
    """
    site_of = {h["name"]: s["name"] for s in topology.get("sites") or [] for h in s.get("compute") or []}
    arrows = []
    for entry in (steering or {}).get("preferred") or []:
        split = entry.get("split") or ([[entry["instance"], 100]] if entry.get("instance") else [])
        for instance, percent in split:
            arrows.append({"from": entry.get("site"), "to": site_of.get(instance), "service": entry.get("service"),
                           "instance": instance, "share": round(float(percent) / 100.0, 4),
                           "preferred": instance == entry.get("instance")})
    return arrows


def policy_views(policies: Iterable[Mapping]) -> list[dict]:
    """SR policies as the page lists them: path, its links, segment list.

    Examples
    --------
    >>> policy_views([{"name": "p", "headend": "a", "to": "c", "path": ["a", "b", "c"], "segments": ["fcbb::1"],
    ...                "objective": "min_delay", "path_delay_ms": 15.0}])[0]["links"]
    [['a', 'b'], ['b', 'c']]
    """
    out = []
    for policy in policies:
        path = list(policy.get("path") or [])
        out.append({"name": policy.get("name"), "headend": policy.get("headend"), "to": policy.get("to"),
                    "objective": policy.get("objective"), "path": path, "links": [list(p) for p in zip(path, path[1:])],
                    "segments": [str(s) for s in policy.get("segments") or []],
                    "path_delay_ms": policy.get("path_delay_ms")})
    return out


def slice_views(slice_status: Mapping | None) -> list[dict]:
    """Slices with their paths and SLO state: ``ok``, ``violated``, ``unknown`` (nothing measured) or ``refused``.

    Examples
    --------
    >>> status = {"slices": {"gold": {"name": "gold", "state": "admitted", "paths": {"a->b": ["a", "b"]},
    ...           "rate_mbps": 5, "slo": {"pairs": [{"from": "a", "to": "b", "delay_ms": 3.0, "delay_ok": False}],
    ...           "violations": [{"what": "delay"}]}}}}
    >>> [(s["name"], s["slo_state"], s["links"]) for s in slice_views(status)]
    [('gold', 'violated', [['a', 'b']])]
    """
    out = []
    for name, entry in sorted(((slice_status or {}).get("slices") or {}).items()):
        slo = entry.get("slo") or {}
        pairs = slo.get("pairs") or []
        violations = slo.get("violations") or []
        measured = any(p.get("delay_ms") is not None or p.get("loss_pct") is not None for p in pairs)
        if entry.get("state") == "refused":
            state = "refused"
        else:
            state = "violated" if violations else "ok" if measured else "unknown"
        paths = entry.get("paths") or {}
        links = sorted({tuple(p) for path in paths.values() for p in zip(path, path[1:])})
        out.append({"name": name, "state": entry.get("state"), "slo_state": state, "rate_mbps": entry.get("rate_mbps"),
                    "max_latency_ms": entry.get("max_latency_ms"), "max_loss_pct": entry.get("max_loss_pct"),
                    "paths": paths, "links": [list(p) for p in links], "pairs": pairs, "violations": violations,
                    "refusal": entry.get("refusal")})
    return out


def alarms(links: Sequence[Mapping], slices: Sequence[Mapping], sites: Sequence[Mapping]) -> list[dict]:
    """Alarms, worst first: links down, lossy or slow links, violated slice SLOs, unhealthy compute sites.

    Examples
    --------
    >>> links = [{"id": "a~b", "a": "a", "b": "b", "state": "down", "reasons": ["cut at the link element"],
    ...           "directions": []}]
    >>> [(x["kind"], x["severity"], x["link"]) for x in alarms(links, [], [])]
    [('link_down', 'critical', 'a~b')]
    """
    found = []
    for link in links:
        if link["state"] == "down":
            found.append({"kind": "link_down", "severity": "critical", "link": link["id"],
                          "message": f"link {link['a']}-{link['b']} down: {'; '.join(link['reasons'])}"})
            continue
        for d in link.get("directions") or []:
            if d.get("lossy"):
                found.append({"kind": "lossy_link", "severity": "major", "link": link["id"],
                              "message": f"lossy link {d['from']}->{d['to']}: {d['loss_pct']:g} % lost over the "
                                         f"last {LOSS_WINDOW_BLOCKS} blocks"})
            if d.get("slow"):
                found.append({"kind": "slow_link", "severity": "minor", "link": link["id"],
                              "message": f"slow link {d['from']}->{d['to']}: {d['delay_ms']:g} ms one way, "
                                         f"configured {link.get('configured', {}).get('delay_ms')} ms"})
    for item in slices:
        for violation in item.get("violations") or []:
            found.append({"kind": "slo_violated", "severity": "major", "slice": item["name"],
                          "message": f"slice {item['name']} {violation.get('from')}->{violation.get('to')}: "
                                     f"{violation.get('what')} {violation.get('measured')} over its bound "
                                     f"{violation.get('bound')}"})
    for site in sites:
        if site.get("healthy") is False:
            found.append({"kind": "compute_unhealthy", "severity": "minor", "site": site["name"],
                          "message": f"site {site['name']}: an instance stopped reporting or failed"})
    order = {"critical": 0, "major": 1, "minor": 2}
    return sorted(found, key=lambda x: order[x["severity"]])


def map_state(topology: Mapping, *, telemetry: Mapping | None, status: Mapping | None, steering: Mapping | None,
              policies: Sequence[Mapping], slice_status: Mapping | None, blocks: Mapping[str, Sequence[Mapping]],
              throughput: Mapping[str, float], now: float, prices: Mapping[str, float] | None = None) -> dict:
    """Everything the page draws at one moment (``GET /map/state``, each ``/events`` message).

    ``telemetry_at`` is the telemetry view's own clock (None without telemetry): the page's
    update lag is measured against it.
    """
    links = link_views(topology, telemetry, (status or {}).get("links_down") or [], blocks, throughput)
    sites = site_views(topology, steering, prices)
    slices = slice_views(slice_status)
    return {"at": now, "telemetry_at": (telemetry or {}).get("now"), "topology": topology.get("name"),
            "steering_policy": (steering or {}).get("policy"), "sites": sites, "links": links,
            "steering": steering_arrows(topology, steering), "policies": policy_views(policies),
            "slices": slices, "alarms": alarms(links, slices, sites),
            "thresholds": {"degraded_loss_pct": DEGRADED_LOSS_PCT, "loss_window_blocks": LOSS_WINDOW_BLOCKS,
                           "slow_factor": SLOW_FACTOR, "slow_slack_ms": SLOW_SLACK_MS}}
