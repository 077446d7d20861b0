"""The compute market: sell surplus compute with time-bounded slices, placed jointly, on a hash-chained ledger.

Pure core (no I/O but the ledger file helpers); the on-network part realises
its decisions. Modules, in the field's words:

* :mod:`~cpn_net.market.offers` — surplus per compute node and site, posted offers;
* :mod:`~cpn_net.market.pricing` — base prices, the surge rule, the network charge;
* :mod:`~cpn_net.market.terms` — the ``market:`` section of a topology and its defaults;
* :mod:`~cpn_net.market.orders` — batch and stream orders and their validation;
* :mod:`~cpn_net.market.sizing` — slots, windows and guaranteed rates an order needs;
* :mod:`~cpn_net.market.calendar` — the book-ahead calendar of slots and link kbit/s;
* :mod:`~cpn_net.market.network` — least-delay routes at national scale;
* :mod:`~cpn_net.market.placement` — the nearest, cheapest and joint policies, refusals;
* :mod:`~cpn_net.market.optimum` — the offline MILP yardstick;
* :mod:`~cpn_net.market.market` — the orchestrator core: submit, lifecycle, ledger;
* :mod:`~cpn_net.market.settlement` — charges and SLA credits;
* :mod:`~cpn_net.market.ledger` and :mod:`~cpn_net.market.verify` — the hash chain;
* :mod:`~cpn_net.market.slices` — market slices as cpn_net slices;
* :mod:`~cpn_net.market.synthetic` — a seeded national graph and workload.
"""

from cpn_net.market.calendar import BookAhead, StepCalendar
from cpn_net.market.errors import LedgerError, LifecycleError, MarketError, OrderError, UnknownOrderError
from cpn_net.market.ledger import Ledger, Verdict, verify_file, verify_lines
from cpn_net.market.market import STEPS, Market
from cpn_net.market.network import Route, SiteNetwork
from cpn_net.market.offers import NodeOffer, Offer, Supply, node_offers, surplus_slots
from cpn_net.market.orders import BatchOrder, StreamOrder, order_from_dict, validate_order
from cpn_net.market.placement import CONSTRAINTS, POLICIES, Placement, Refusal, SliceHold
from cpn_net.market.pricing import PriceRule, network_charge_cny
from cpn_net.market.settlement import Settlement, credit_pct, settle
from cpn_net.market.terms import MarketTerms, market_terms, read_market_section

__all__ = [
    "BatchOrder", "BookAhead", "CONSTRAINTS", "Ledger", "LedgerError", "LifecycleError", "Market", "MarketError",
    "MarketTerms", "NodeOffer", "Offer", "OrderError", "POLICIES", "Placement", "PriceRule", "Refusal", "Route",
    "STEPS", "Settlement", "SiteNetwork", "SliceHold", "StepCalendar", "StreamOrder", "Supply", "UnknownOrderError",
    "Verdict", "credit_pct", "market_terms", "network_charge_cny", "node_offers", "order_from_dict",
    "read_market_section", "settle", "surplus_slots", "validate_order", "verify_file", "verify_lines",
]
