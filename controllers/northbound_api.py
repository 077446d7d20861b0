"""What the REST northbound serves: the controller core, with errors mapped to HTTP.

Implements :class:`controllers.northbound.rest.NorthboundApi`. Request bodies
are validated by the topology model (the same rules and messages as a
topology file's ``policies:`` and ``slices:``), then planned and installed by
:class:`controllers.core.ControllerCore` (policies) or admitted and realised
by :class:`controllers.slice_service.SliceService` (slices). A bad request
changes nothing.
"""

from __future__ import annotations

import json
import logging

from controllers.core import PolicyConflict, UnknownPolicy
from controllers.northbound.rest import ApiError
from controllers.slice_service import SliceConflict, UnknownSlice
from cpn_net.model import TopologyError
from cpn_net.slicing.errors import SliceRefused, SlicingError
from cpn_net.srv6.errors import PathError, PolicyError, SegmentError

LOG = logging.getLogger("cpn.northbound")


class ControllerApi:
    def __init__(self, core, topology, on_change=lambda: None, state_path: str | None = None) -> None:
        self.core = core
        # Policies added at runtime, as requested, so that a restarted controller takes them
        # over: {name: {"body": REST body, "table": flow table or None}} in state_path (JSON).
        self.state_path = state_path
        self.runtime: dict[str, dict] = {}
        self.telemetry = None
        self.steering = None
        self.slices = None  # a SliceService once slicing runs; None answers the slice calls with 404
        self.topology_model = topology
        self.on_change = on_change

    def install_declared_policies(self) -> None:
        """Install the SR policies the topology file declares (``cpn up`` does this at boot)."""
        if self.topology_model is None:
            return
        for spec in self.topology_model.policies:
            self.core.add_policy(spec)

    def reinstall_runtime_policies(self) -> list[str]:
        """A restarted controller: install again the runtime policies its predecessor recorded.

        Returns the problems (a policy that no longer plans); the others keep their tables.
        """
        from cpn_net.model.policies import parse_policy

        if not self.state_path or self.topology_model is None:
            return []
        try:
            with open(self.state_path) as handle:
                recorded = json.load(handle)
        except (OSError, ValueError):
            return []
        problems = []
        for name, entry in recorded.items():
            try:
                self.core.add_policy(parse_policy(entry["body"], self.topology_model), table=entry.get("table"))
                self.runtime[name] = entry
            except Exception as err:  # reported, the others still come back
                problems.append(f"runtime policy {name!r} not taken over: {err}")
        self._save_runtime()
        return problems

    def _record(self, bodies: dict) -> None:
        for name, body in bodies.items():
            self.runtime[name] = {"body": body, "table": self.core.tables.get(name)}
        self._save_runtime()

    def _save_runtime(self) -> None:
        if self.state_path:
            from cpn_net.emulation.manifest import write_json_atomic

            write_json_atomic(self.state_path, self.runtime)

    # --------------------------------------------------------- NorthboundApi
    def status(self) -> dict:
        return self.core.status()

    def topology(self) -> dict:
        if self.topology_model is None:
            raise ApiError(404, "this controller was started without a topology snapshot")
        return self.topology_model.to_dict()

    def get_telemetry(self) -> dict:
        if self.telemetry is None:
            raise ApiError(404, "telemetry is not running on this controller")
        return self.telemetry.view()

    def get_steering(self) -> dict:
        if self.steering is None:
            raise ApiError(404, "no compute-aware steering: the topology declares no services")
        return self.steering.view()

    def set_steering(self, body: dict) -> dict:
        if self.steering is None:
            raise ApiError(404, "no compute-aware steering: the topology declares no services")
        try:
            return self.steering.set_policy(body["policy"])
        except KeyError as err:
            raise ApiError(422, str(err.args[0]) if err.args else "give {\"policy\": NAME}") from None

    def list_policies(self) -> list[dict]:
        return self.core.list_policies()

    def get_policy(self, name: str) -> dict:
        try:
            return self.core.get_policy(name)
        except UnknownPolicy as err:
            raise ApiError(404, str(err)) from None

    def add_policy(self, body: dict) -> dict:
        from cpn_net.model.policies import parse_policy

        if self.topology_model is None:
            raise ApiError(409, "this controller was started without a topology snapshot; cannot validate")
        try:
            spec = parse_policy(body, self.topology_model)
        except TopologyError as err:
            raise ApiError(422, str(err), {"problems": [str(p) for p in err.problems]}) from None
        try:
            result = self.core.add_policy(spec)
        except PolicyConflict as err:
            raise ApiError(409, str(err)) from None
        except (PolicyError, PathError, SegmentError) as err:
            raise ApiError(422, str(err)) from None
        except Exception as err:  # netlink refused: already rolled back by the core
            LOG.exception("installing policy %s", spec.name)
            raise ApiError(500, f"installing policy {spec.name!r} failed and was rolled back: {err}") from None
        self._record({spec.name: body})
        self.on_change()
        return result

    def add_policies(self, bodies: list) -> dict:
        """Validate every body, then plan and install the valid ones in one batch per headend."""
        from cpn_net.model.policies import parse_policy

        if self.topology_model is None:
            raise ApiError(409, "this controller was started without a topology snapshot; cannot validate")
        specs, refused = [], []
        for body in bodies:
            name = body.get("name") if isinstance(body, dict) else None
            try:
                specs.append(parse_policy(body, self.topology_model))
            except TopologyError as err:
                refused.append({"name": name, "status": 422, "message": str(err)})
        installed, failures = self.core.add_policies(specs)
        for name, err in failures:
            status = 409 if isinstance(err, PolicyConflict) else \
                422 if isinstance(err, (PolicyError, PathError, SegmentError)) else 500
            refused.append({"name": name, "status": status, "message": str(err)})
        if installed:
            by_name = {b.get("name"): b for b in bodies if isinstance(b, dict)}
            self._record({p["name"]: by_name[p["name"]] for p in installed if p["name"] in by_name})
            self.on_change()
        return {"installed": installed, "refused": refused}

    def delete_policy(self, name: str) -> dict:
        try:
            removed = self.core.delete_policy(name)
        except UnknownPolicy as err:
            raise ApiError(404, str(err)) from None
        if self.runtime.pop(name, None) is not None:
            self._save_runtime()
        self.on_change()
        return {"removed": removed}

    def link_event(self, body: dict) -> dict:
        try:
            a, b, up = body["a"], body["b"], body["up"]
        except (KeyError, TypeError):
            raise ApiError(400, 'a link event is {"a": site, "b": site, "up": true|false}') from None
        if not isinstance(up, bool):
            raise ApiError(400, f"up={up!r} must be true or false")
        for key, site in (("a", a), ("b", b)):
            if not isinstance(site, str):
                raise ApiError(400, f"{key}={site!r} must be a site name (a string)")
        graph_sites = {r.site for r in self.core.plan.nodes_of("router")}
        for site in (a, b):
            if site not in graph_sites:
                raise ApiError(422, f"{site!r} is not a site of this network")
        try:
            self.core.plan.wan_link(a, b)
        except KeyError as err:
            raise ApiError(422, str(err.args[0])) from None
        event = self.core.link_changed(a, b, up, "northbound")
        if event is None:
            return {"kind": "no_change", "reason": f"link {a}-{b} was already {'up' if up else 'down'}"}
        self.on_change()
        return event

    # ------------------------------------------------------------------ slices
    def list_slices(self) -> list[dict]:
        return self._slice_service().list()

    def get_slice(self, name: str) -> dict:
        service = self._slice_service()
        try:
            return service.get(name)
        except UnknownSlice as err:
            raise ApiError(404, str(err)) from None

    def add_slice(self, body: dict) -> dict:
        """Check, admit and realise one slice; see :meth:`controllers.slice_service.SliceService.add`.

        Raises
        ------
        ApiError
            404 without a slice service; 422 for a body the model refuses
            (``details["problems"]``) or a slice this network cannot realise;
            409 for a name in force, or a refusal by admission control
            (``details``: ``reason``, ``link``, ``residual_mbps``,
            ``shortfall_mbps``); 500 when a router or switch refused a change
            (the slice's changes were removed again).
        """
        service = self._slice_service()
        try:
            spec = service.parse(body)
        except TopologyError as err:
            raise ApiError(422, str(err), {"problems": [str(p) for p in err.problems]}) from None
        try:
            result = service.add(spec)
        except SliceConflict as err:
            raise ApiError(409, str(err)) from None
        except SliceRefused as err:
            raise ApiError(409, str(err), {"reason": err.reason,
                                           "link": None if err.link is None else list(err.link),
                                           "residual_mbps": err.residual_mbps,
                                           "shortfall_mbps": err.shortfall_mbps}) from None
        except SlicingError as err:
            raise ApiError(422, str(err)) from None
        except Exception as err:  # a router or switch refused: already rolled back by the service
            LOG.exception("adding slice %s", spec.name)
            raise ApiError(500, f"adding slice {spec.name!r} failed and was rolled back: {err}") from None
        self.on_change()
        return result

    def delete_slice(self, name: str) -> dict:
        service = self._slice_service()
        try:
            removed = service.delete(name)
        except UnknownSlice as err:
            raise ApiError(404, str(err)) from None
        if self.runtime.pop(name, None) is not None:
            self._save_runtime()
        self.on_change()
        return {"removed": removed}

    def slice_status(self) -> dict:
        """Per-slice SLO monitoring against the live telemetry view (None while telemetry is not running)."""
        service = self._slice_service()
        view = self.telemetry.view() if self.telemetry is not None else None
        return service.status(view)

    def _slice_service(self):
        if self.slices is None:
            raise ApiError(404, "no slices: network slicing is not running on this controller")
        return self.slices
