"""An in-memory :class:`~controllers.northbound.rest.NorthboundApi` for tests.

It keeps policies in a dict and answers like the controller does (404, 409,
422 with messages naming the value) without a network, so the REST server,
the client and the ``cpn policy`` CLI can be tested end to end as a normal
user. Paths are the requested stops (headend, waypoints, destination) and
segments one locator address per stop after the headend: plausible, not
computed.

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

_DEFAULTS = {"flow": None, "objective": "min_delay", "bandwidth_mbps": None, "waypoints": [], "mode": "encap",
             "backup": False}


class FakeNorthboundApi:
    """Policies in memory over a fixed set of sites and links.

    Parameters
    ----------
    sites : mapping of str to int
        Site name to site id.
    links : iterable of (str, str)
        Site pairs; link events must name one.
    capacity_mbps : float
        A request for more bandwidth is infeasible (422).

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

