"""An in-memory :class:`~controllers.northbound.rest.NorthboundApi` for tests.

It keeps policies and slices in dicts and answers like the controller does
(404, 409, 422 with messages naming the value) without a network, so the REST
server, the client and the ``cpn policy`` / ``cpn slice`` CLI can be tested
end to end as a normal user. Paths are the requested stops (headend,
waypoints, destination) and segments one locator address per stop after the
headend: plausible, not computed. A slice's members are sites; its paths go
straight from each member site to each other one, and a rate above
``capacity_mbps`` is refused as admission control would.

Examples
--------
>>> api = FakeNorthboundApi({"east": 1, "west": 3}, [("east", "west")])
>>> api.add_policy({"name": "web", "headend": "east", "to": "west"})["path"]
['east', 'west']
>>> api.add_policy({"name": "web", "headend": "east", "to": "west"})
Traceback (most recent call last):
...
controllers.northbound.errors.ApiError: policy 'web' already exists; delete it first (DELETE /policies/web)
"""

from __future__ import annotations

import copy
import threading
from typing import Iterable, Mapping

from controllers.northbound.errors import ApiError
from cpn_net.model import addressing
from cpn_net.model.schema import MAX_SLICE_ID

_DEFAULTS = {"flow": None, "objective": "min_delay", "bandwidth_mbps": None, "waypoints": [], "mode": "encap",
             "backup": False}
_SLICE_DEFAULTS = {"max_latency_ms": None, "max_loss_pct": None, "kind": "latency", "meter_mbps": None,
                   "isolation": True}


class FakeNorthboundApi:
    """Policies and slices in memory over a fixed set of sites and links.

    Parameters
    ----------
    sites : mapping of str to int
        Site name to site id.
    links : iterable of (str, str)
        Site pairs; link events must name one.
    capacity_mbps : float
        A policy asking for more bandwidth is infeasible (422); a slice asking
        for more is refused by admission (409).

    Attributes
    ----------
    fail_with : Exception or None
        Raised (once) by the next call, to test the server's error handling.
    calls : list of str
        Names of the methods called, in order.
    """

    def __init__(self, sites: Mapping[str, int], links: Iterable[tuple[str, str]] = (), capacity_mbps: float = 100.0):
        self.sites = dict(sites)
        self.links = {frozenset(pair): True for pair in links}
        self.capacity_mbps = capacity_mbps
        self.policies: dict[str, dict] = {}
        self.slices: dict[str, dict] = {}
        self.fail_with: Exception | None = None
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def status(self) -> dict:
        self._enter("status")
        with self._lock:
            return {"topology": "fake", "pid": 0, "policies": len(self.policies), "errors": []}

    def list_policies(self) -> list[dict]:
        self._enter("list_policies")
        with self._lock:
            return [copy.deepcopy(self.policies[name]) for name in sorted(self.policies)]

    def get_policy(self, name: str) -> dict:
        self._enter("get_policy")
        with self._lock:
            return copy.deepcopy(self._find(name))

    def add_policy(self, body: dict) -> dict:
        self._enter("add_policy")
        policy = {**copy.deepcopy(_DEFAULTS), **copy.deepcopy(body)}
        name = policy["name"]
        stops = [policy["headend"], *policy["waypoints"], policy["to"]]
        for role, site in zip(["headend", *["waypoint"] * len(policy["waypoints"]), "to"], stops):
            if site not in self.sites:
                raise ApiError(422, f"policy {name!r}: {role} {site!r} is not a site; sites: "
                                    f"{', '.join(sorted(self.sites))}", {"field": role, "value": site})
        demand = policy["bandwidth_mbps"]
        if demand is not None and demand > self.capacity_mbps:
            raise ApiError(422, f"policy {name!r}: no path from {stops[0]} to {stops[-1]} has "
                                f"bandwidth_mbps={demand:g} free (at most {self.capacity_mbps:g}); ask for less",
                           {"constraint": "bandwidth_mbps"})
        policy["path"] = stops
        policy["segments"] = [str(addressing.locator(self.sites[site]).network_address) for site in stops[1:]]
        policy["delay_ms"] = None
        policy["backup_path"] = policy["backup_segments"] = None
        with self._lock:
            if name in self.policies:
                raise ApiError(409, f"policy {name!r} already exists; delete it first (DELETE /policies/{name})",
                               {"name": name})
            self.policies[name] = policy
        return copy.deepcopy(policy)

    def get_steering(self) -> dict:
        self._enter("get_steering")
        return {"policy": "joint", "preferred": [], "flips": 0, "instances": []}

    def set_steering(self, body: dict) -> dict:
        self._enter("set_steering")
        return {"policy": body["policy"], "preferred": [], "flips": 0, "instances": []}

    def get_telemetry(self) -> dict:
        self._enter("get_telemetry")
        return {"period_s": 1.0, "epoch": None, "now": 0.0, "links": [], "probes": {}, "accuracy": {}}

    def add_policies(self, bodies: list) -> dict:
        installed, refused = [], []
        for body in bodies:
            try:
                installed.append(self.add_policy(body))
            except ApiError as err:
                refused.append({"name": body.get("name"), "status": err.status, "message": err.message})
        return {"installed": installed, "refused": refused}

    def delete_policy(self, name: str) -> dict:
        self._enter("delete_policy")
        with self._lock:
            return {"removed": self.policies.pop(self._find(name)["name"])}

    def topology(self) -> dict:
        self._enter("topology")
        with self._lock:
            links = sorted((sorted(pair), up) for pair, up in self.links.items())
        return {"name": "fake", "sites": [{"name": n, "id": i} for n, i in sorted(self.sites.items())],
                "links": [{"a": a, "b": b, "up": up} for (a, b), up in links]}

    def link_event(self, body: dict) -> dict:
        self._enter("link_event")
        pair = frozenset((body["a"], body["b"]))
        with self._lock:
            if pair not in self.links:
                raise ApiError(422, f"no link between {body['a']!r} and {body['b']!r}; GET /topology lists the links")
            self.links[pair] = body["up"]
        return {"link": "-".join(sorted(pair)), "up": body["up"], "rerouted": []}

    def list_slices(self) -> list[dict]:
        self._enter("list_slices")
        with self._lock:
            return [copy.deepcopy(s) for s in self.slices.values()]

    def get_slice(self, name: str) -> dict:
        self._enter("get_slice")
        with self._lock:
            return copy.deepcopy(self._find_slice(name))

    def add_slice(self, body: dict) -> dict:
        self._enter("add_slice")
        wanted = {**copy.deepcopy(_SLICE_DEFAULTS), **copy.deepcopy(body)}
        name = wanted["name"]
        for member in wanted["members"]:
            if member not in self.sites:
                raise ApiError(422, f"request: slice.members: no site is named {member!r}; sites: "
                                    f"{', '.join(sorted(self.sites))}", {"problems": [member]})
        if wanted["rate_mbps"] > self.capacity_mbps:
            raise ApiError(409, f"slice {name} refused: no path with {wanted['rate_mbps']:g} Mbit/s; at most "
                                f"{self.capacity_mbps:g} Mbit/s fit",
                           {"reason": "bandwidth", "link": None, "residual_mbps": self.capacity_mbps,
                            "shortfall_mbps": wanted["rate_mbps"] - self.capacity_mbps})
        sites = sorted(set(wanted["members"]), key=wanted["members"].index)
        with self._lock:
            if name in self.slices:
                raise ApiError(409, f"slice {name!r} is in force already; delete it first (DELETE /slices/{name})")
            free = [i for i in range(1, MAX_SLICE_ID + 1) if i not in {s["id"] for s in self.slices.values()}]
            added = {**wanted, "id": wanted.get("id") or free[0], "hosts": [], "sites": sites, "state": "admitted",
                     "mark": 1 + len(self.slices) % 15,
                     "paths": {f"{a}->{b}": [a, b] for a in sites for b in sites if a != b}, "refusal": None}
            self.slices[name] = added
        return {**copy.deepcopy(added), "enforced_ms": 0.0}

    def delete_slice(self, name: str) -> dict:
        self._enter("delete_slice")
        with self._lock:
            return {"removed": self.slices.pop(self._find_slice(name)["name"])}

    def slice_status(self) -> dict:
        self._enter("slice_status")
        with self._lock:
            return {"slices": {name: {**copy.deepcopy(s), "slo": {"pairs": [], "violations": []}}
                               for name, s in self.slices.items()}, "violations": []}

    def _find_slice(self, name: str) -> dict:
        try:
            return self.slices[name]
        except KeyError:
            raise ApiError(404, f"no slice named {name!r}; list them with GET /slices") from None

    def _find(self, name: str) -> dict:
        try:
            return self.policies[name]
        except KeyError:
            raise ApiError(404, f"no policy named {name!r}; list them with GET /policies") from None

    def _enter(self, call: str) -> None:
        with self._lock:
            self.calls.append(call)
            failure, self.fail_with = self.fail_with, None
        if failure is not None:
            raise failure

