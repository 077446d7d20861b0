"""The market's terms: base prices per site, surge rule, network price, from a ``market:`` section.

A topology file may carry a ``market:`` section (every key optional)::

    market:
      currency: CNY                       # label for amounts; default CNY
      horizon_s: 86400                    # a posted offer is the most a worker-second costs
                                          # in the next horizon_s (the book-ahead day); > 0
      network_cny_per_mbps_s: 2.0e-6      # per Mbit/s reserved per second per link crossed; >= 0
      surge_pct: 100                      # price at a sold-out site: base x (1 + surge_pct/100); >= 0
      surge_steps: 10                     # ... reached in this many equal steps; 1..1000
      batch_slack_pct: 5                  # batch plans aim to finish this share of the window early; 0..50
      default_base_cny_per_worker_s: 0.0006667   # base price of sites without one; > 0
      sites:                              # base price per site, CNY per worker-second; > 0
        zhongwei: 0.0019
        zhangjiakou: 0.0029

Sites not listed under ``sites`` take the documented default rule
(:mod:`cpn_net.market.pricing`): the mean of their compute nodes'
``price_cny_per_hour / workers / 3600``, else ``default_base_cny_per_worker_s``.
Topologies without the section (GraphML and node-link imports too) take every
default. :func:`read_market_section` checks a section with the model's
:class:`~cpn_net.model.schema.Reader`, so its problems read like every other
``cpn check`` problem (``t.yaml: market.sites.zhongwie: unknown site; did you
mean 'zhongwei'?``).

Examples
--------
>>> from cpn_net.model import load_topology
>>> topo = load_topology("topologies/tiny.yaml")
>>> terms = market_terms(topo, {"sites": {"west": 0.001}, "surge_pct": 50})
>>> terms.base_cny_per_worker_s["west"], round(terms.base_cny_per_worker_s["east"] * 3600, 2)
(0.001, 2.4)
>>> terms.rule.top_factor
1.5
>>> market_terms(topo, {"sites": {"wset": 0.001}})
Traceback (most recent call last):
...
cpn_net.model.errors.TopologyError: (market): market.sites.wset: unknown site; did you mean 'west'?
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from cpn_net.market.pricing import (DEFAULT_BASE_CNY_PER_WORKER_S, DEFAULT_NETWORK_CNY_PER_MBPS_S,
                                    DEFAULT_SURGE_PCT, DEFAULT_SURGE_STEPS, PriceRule)
from cpn_net.model.errors import ProblemLog, unknown_fix
from cpn_net.model.schema import Field, Reader, check_value

SECTION = "market"
DEFAULT_HORIZON_S = 86_400.0
DEFAULT_BATCH_SLACK_PCT = 5.0

MARKET_FIELDS: dict[str, Field] = {
    "currency": Field("text", "name the currency, e.g. CNY"),
    "horizon_s": Field("number", "give the offer horizon in seconds, above 0", above=0),
    "network_cny_per_mbps_s": Field("number", "give the price per Mbit/s per second per link, 0 or more",
                                    at_least=0),
    "surge_pct": Field("number", "give the surge at a sold-out site in %, 0 or more", at_least=0),
    "surge_steps": Field("int", "give 1 to 1000 steps", at_least=1, at_most=1000),
    "batch_slack_pct": Field("number", "give a slack from 0 to 50 % of a batch window", at_least=0, at_most=50),
    "default_base_cny_per_worker_s": Field("number", "give a price per worker-second above 0", above=0),
    "sites": Field("mapping", "map site names to base prices per worker-second, e.g. {zhongwei: 0.0019}"),
}
_SITE_PRICE = Field("number", "give a base price per worker-second above 0", above=0)


@dataclass(frozen=True)
class MarketTerms:
    """Everything the market charges by, resolved for every site.

    Attributes
    ----------
    base_cny_per_worker_s : dict
        ``{site: base price}`` for every site with compute.
    network_cny_per_mbps_s : float
        Per Mbit/s reserved per second per link crossed.
    rule : PriceRule
        The surge rule.
    horizon_s : float
        The window a posted offer covers, starting now: its price is the most
        a worker-second anywhere in it costs.
    batch_slack_pct : float
        A batch plan aims to finish this share of (deadline - start) early,
        less when the network cannot go faster.
    currency : str

    Examples
    --------
    >>> MarketTerms({"a": 0.001}).base("a")
    0.001
    """

    base_cny_per_worker_s: Mapping[str, float] = field(default_factory=dict)
    network_cny_per_mbps_s: float = DEFAULT_NETWORK_CNY_PER_MBPS_S
    rule: PriceRule = PriceRule()
    horizon_s: float = DEFAULT_HORIZON_S
    batch_slack_pct: float = DEFAULT_BATCH_SLACK_PCT
    currency: str = "CNY"

    def base(self, site: str) -> float:
        """The base price of ``site`` (the default for a site not listed)."""
        return self.base_cny_per_worker_s.get(site, DEFAULT_BASE_CNY_PER_WORKER_S)

    def to_dict(self) -> dict:
        """JSON-ready terms, as recorded at the head of a ledger."""
        return {"currency": self.currency, "horizon_s": self.horizon_s,
                "network_cny_per_mbps_s": self.network_cny_per_mbps_s,
                "surge_pct": self.rule.surge_pct, "surge_steps": self.rule.surge_steps,
                "batch_slack_pct": self.batch_slack_pct}


def default_base_price(compute_nodes, default: float = DEFAULT_BASE_CNY_PER_WORKER_S) -> float:
    """A site's default base price: mean of ``price_cny_per_hour / workers / 3600`` over priced nodes.

    Parameters
    ----------
    compute_nodes : iterable of ComputeNode
        The site's compute nodes.
    default : float
        The price when no node has one.

    Examples
    --------
    >>> from types import SimpleNamespace as N
    >>> round(default_base_price([N(price_cny_per_hour=103.0, workers=4)]), 6)
    0.007153
    >>> default_base_price([N(price_cny_per_hour=None, workers=4)], 0.5)
    0.5
    """
    prices = [node.price_cny_per_hour / node.workers / 3600.0 for node in compute_nodes
              if node.price_cny_per_hour is not None and node.workers > 0]
    prices = [p for p in prices if p > 0]
    return sum(prices) / len(prices) if prices else default


def read_market_section(log: ProblemLog, raw: Any, site_names, *, path: str = SECTION) -> dict:
    """Check a ``market:`` section, recording every problem in ``log``; return the good values.

    Parameters
    ----------
    log : ProblemLog
        Where problems go (the topology file's log).
    raw : object
        The section as read from the file (None: absent).
    site_names : iterable of str
        The topology's sites.
    path : str
        Key path of the section in the file.

    Returns
    -------
    dict
        The section's checked keys (bad ones left out); ``sites`` a dict.

    Examples
    --------
    >>> log = ProblemLog("t.yaml")
    >>> read_market_section(log, {"surge_pct": -1, "sites": {"a": 0.01}}, ["a"])
    {'sites': {'a': 0.01}}
    >>> print(log.problems[0])
    t.yaml: market.surge_pct: -1 must be >= 0; give the surge at a sold-out site in %, 0 or more
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        log.add(path, f"expected a mapping, got {type(raw).__name__}", "write the market section as key: value pairs")
        return {}
    reader = Reader(log, path, raw, MARKET_FIELDS)
    out: dict = {}
    for key in MARKET_FIELDS:
        if key == "sites" or not reader.has(key):
            continue
        value = reader.get(key)
        if value is not None:
            out[key] = value
    sites = reader.get("sites")
    if sites is not None:
        known = list(site_names)
        prices = {}
        for name, value in sites.items():
            key = f"{path}.sites.{name}"
            if name not in known:
                log.add(key, "unknown site", unknown_fix(name, known, "sites"))
                continue
            checked = check_value(log, key, value, _SITE_PRICE)
            if isinstance(checked, float):
                prices[name] = checked
        out["sites"] = prices
    return out


def market_terms(topology, section: Any = None, *, file: str = "(market)") -> MarketTerms:
    """The resolved terms of a topology: its ``market:`` section over the documented defaults.

    Parameters
    ----------
    topology : Topology
        The validated topology (sites with compute nodes).
    section : mapping, optional
        The raw ``market:`` section; None for none (every default).
    file : str
        The file name problems are reported against.

    Returns
    -------
    MarketTerms

    Raises
    ------
    TopologyError
        Listing every problem of the section.
    """
    log = ProblemLog(file)
    values = read_market_section(log, section, [s.name for s in topology.sites])
    log.raise_if_any()
    default = values.get("default_base_cny_per_worker_s", DEFAULT_BASE_CNY_PER_WORKER_S)
    listed = values.get("sites", {})
    base = {s.name: listed.get(s.name, default_base_price(s.compute, default)) for s in topology.sites}
    return MarketTerms(
        base_cny_per_worker_s=base,
        network_cny_per_mbps_s=values.get("network_cny_per_mbps_s", DEFAULT_NETWORK_CNY_PER_MBPS_S),
        rule=PriceRule(values.get("surge_pct", DEFAULT_SURGE_PCT), values.get("surge_steps", DEFAULT_SURGE_STEPS)),
        horizon_s=values.get("horizon_s", DEFAULT_HORIZON_S),
        batch_slack_pct=values.get("batch_slack_pct", DEFAULT_BATCH_SLACK_PCT),
        currency=values.get("currency", "CNY"),
    )
