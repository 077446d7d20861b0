"""What the selector knows: instances, their latest metrics, and the network view.

Two stores, updated in place as reports arrive (the controller's event
handlers call :meth:`SteeringState.report` and :meth:`NetworkView.set_path`),
read by the policies. Every update is recorded where derived indexes can find it cheaply — a
per-service journal of the sites whose instances changed, a version counter
per ingress site for paths — so that policies refresh only what changed.
Nothing here reads a clock: freshness is judged against the ``now`` the
caller passes.

Examples
--------
>>> state = SteeringState(period_s=1.0)
>>> state.add_instance(ServiceInstance("k2-1", "site2", "render", "2001:db8:2::2:1"))
>>> state.report(ComputeMetrics("k2-1", 5.0, 0.3, 0, 100.0, 2, 8.0))
True
>>> state.is_healthy("k2-1", now=6.0), state.is_healthy("k2-1", now=7.0)
(True, False)
>>> state.network.set_path("site1", "site2", PathMetrics(4.0, 0.0, 500.0))
>>> state.network.path("site1", "site2").delay_ms, state.network.path("site1", "site1").delay_ms
(4.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from cpn_net.steering.errors import StateError
from cpn_net.steering.metrics import MAX_AGE_PERIODS, ComputeMetrics, max_age_s
from cpn_net.steering.model import LOCAL_PATH, PathMetrics, ServiceInstance

_EMPTY: Mapping[str, PathMetrics] = MappingProxyType({})

JOURNAL_KEEP = 4096
"""Changes per service the journal keeps for readers catching up (at least)."""


class NetworkView:
    """Path telemetry per (ingress site, destination site).

    A missing entry means *unreachable*, except a site to itself, which
    defaults to :data:`~cpn_net.steering.model.LOCAL_PATH` (same switch).

    Parameters
    ----------
    paths : mapping of (str, str) to PathMetrics, optional
        Initial paths keyed by (ingress site, destination site).

    Examples
    --------
    >>> view = NetworkView({("a", "b"): PathMetrics(3.0, 0.1, 50.0)})
    >>> view.path("a", "b").loss_pct, view.path("b", "a")
    (0.1, None)
    """

    def __init__(self, paths: Mapping[tuple[str, str], PathMetrics] | None = None) -> None:
        self._paths: dict[str, dict[str, PathMetrics]] = {}
        self._versions: dict[str, int] = {}
        for (ingress, site), path in (paths or {}).items():
            self.set_path(ingress, site, path)

    def set_path(self, ingress_site: str, site: str, path: PathMetrics) -> None:
        """Record the latest telemetry for the path ``ingress_site`` → ``site``.

        Raises
        ------
        StateError
            If ``path`` is not a :class:`PathMetrics`.
        """
        if not isinstance(path, PathMetrics):
            raise StateError(f"path {ingress_site}->{site}: {path!r} must be a PathMetrics")
        self._paths.setdefault(ingress_site, {})[site] = path
        self._versions[ingress_site] = self._versions.get(ingress_site, 0) + 1

    def remove_path(self, ingress_site: str, site: str) -> None:
        """Forget a path (it becomes unreachable); unknown paths are ignored."""
        if self._paths.get(ingress_site, {}).pop(site, None) is not None:
            self._versions[ingress_site] += 1

    def path(self, ingress_site: str, site: str) -> PathMetrics | None:
        """The path's metrics, :data:`LOCAL_PATH` for an unmeasured self-path, else None."""
        found = self._paths.get(ingress_site, _EMPTY).get(site)
        if found is None and ingress_site == site:
            return LOCAL_PATH
        return found

    def version_from(self, ingress_site: str) -> int:
        """Counter bumped on every change to a path leaving ``ingress_site``."""
        return self._versions.get(ingress_site, 0)


class SteeringState:
    """Registered service instances, their latest reports, and the network view.

    Parameters
    ----------
    period_s : float
        Metrics agents' reporting period, seconds.
    instances : iterable of ServiceInstance, optional
        Instances to register.
    network : NetworkView, optional
        Path telemetry (a new, empty view by default).
    max_age_periods : float
        Periods after which a silent node leaves selection (default 2).

    Raises
    ------
    MetricsError
        If ``period_s`` or ``max_age_periods`` is not positive.
    """

    def __init__(self, period_s: float, *, instances: Iterable[ServiceInstance] = (),
                 network: NetworkView | None = None,
                 max_age_periods: float = MAX_AGE_PERIODS) -> None:
        self.period_s = period_s
        self.max_age_s = max_age_s(period_s, max_age_periods)
        self.network = NetworkView() if network is None else network
        self._instances: dict[tuple[str, str], ServiceInstance] = {}
        self._by_node: dict[str, list[ServiceInstance]] = {}
        self._metrics: dict[str, ComputeMetrics] = {}
        self._at_site: dict[str, dict[str, tuple[ServiceInstance, ...]]] = {}
        self._journal: dict[str, list[str]] = {}
        self._journal_start: dict[str, int] = {}
        self._ordered: dict[str, tuple[ServiceInstance, ...]] = {}
        self.structure_version = 0
        for instance in instances:
            self.add_instance(instance)

    # -- registry -----------------------------------------------------------

    def add_instance(self, instance: ServiceInstance) -> None:
        """Register a service instance.

        Raises
        ------
        StateError
            If (name, service) is already registered, or the node name is
            already registered at another site.
        """
        key = (instance.name, instance.service)
        if key in self._instances:
            raise StateError(f"instance {instance.name} of service {instance.service!r} is "
                             "already registered; remove_instance it first to change it")
        siblings = self._by_node.get(instance.name, [])
        if siblings and siblings[0].site != instance.site:
            raise StateError(f"instance {instance.name}: site={instance.site!r} but the node "
                             f"is registered at site {siblings[0].site!r}; node names are unique")
        self._instances[key] = instance
        self._by_node.setdefault(instance.name, []).append(instance)
        sites = self._at_site.setdefault(instance.service, {})
        sites[instance.site] = tuple(sorted((*sites.get(instance.site, ()), instance),
                                            key=lambda each: each.name))
        self._touch(instance)
        self._ordered.pop(instance.service, None)
        self.structure_version += 1

    def remove_instance(self, name: str, service: str) -> None:
        """Unregister an instance (its node's metrics stay for its other services).

        Raises
        ------
        StateError
            If it is not registered.
        """
        instance = self.instance(name, service)
        del self._instances[(name, service)]
        self._by_node[name].remove(instance)
        if not self._by_node[name]:
            del self._by_node[name]
            self._metrics.pop(name, None)
        sites = self._at_site[service]
        remaining = tuple(each for each in sites[instance.site] if each.name != name)
        if remaining:
            sites[instance.site] = remaining
        else:
            del sites[instance.site]
        self._touch(instance)
        self._ordered.pop(service, None)
        self.structure_version += 1

    def instance(self, name: str, service: str) -> ServiceInstance:
        """The registered instance of ``service`` on node ``name``.

        Raises
        ------
        StateError
            If it is not registered.
        """
        try:
            return self._instances[(name, service)]
        except KeyError:
            raise StateError(f"instance {name} of service {service!r} is not registered; "
                             "add_instance it first") from None

    def has_instance(self, name: str, service: str) -> bool:
        """Whether node ``name`` is registered as an instance of ``service``."""
        return (name, service) in self._instances

    def services(self) -> tuple[str, ...]:
        """Services with at least one registered instance, sorted."""
        return tuple(sorted(service for service, sites in self._at_site.items() if sites))

    def sites_of(self, service: str) -> tuple[str, ...]:
        """Sites hosting ``service``, sorted by name (empty if unknown)."""
        return tuple(sorted(self._at_site.get(service, {})))

    def instances_at(self, service: str, site: str) -> tuple[ServiceInstance, ...]:
        """Instances of ``service`` at ``site``, sorted by node name."""
        return self._at_site.get(service, {}).get(site, ())

    def instances_of(self, service: str) -> tuple[ServiceInstance, ...]:
        """All instances of ``service``, by site then node name (the tie-break order)."""
        ordered = self._ordered.get(service)
        if ordered is None:
            sites = self._at_site.get(service, {})
            ordered = tuple(each for site in sorted(sites) for each in sites[site])
            self._ordered[service] = ordered
        return ordered

    # -- metrics ------------------------------------------------------------

    def report(self, metrics: ComputeMetrics) -> bool:
        """Store a node's report unless a newer one is already stored.

        Parameters
        ----------
        metrics : ComputeMetrics
            The report; its ``instance`` names the node.

        Returns
        -------
        bool
            False when the report was older than the stored one (reordered
            delivery) and was ignored.

        Raises
        ------
        StateError
            If no instance is registered on that node.
        """
        instances = self._by_node.get(metrics.instance)
        if not instances:
            raise StateError(f"metrics for node {metrics.instance!r}: no instance registered "
                             "on it; add_instance before reporting")
        known = self._metrics.get(metrics.instance)
        if known is not None and metrics.reported_at_s < known.reported_at_s:
            return False
        self._metrics[metrics.instance] = metrics
        for instance in instances:
            self._touch(instance)
        return True

    def metrics_of(self, name: str) -> ComputeMetrics | None:
        """The node's latest report, or None if it never reported."""
        return self._metrics.get(name)

    def is_healthy(self, name: str, now: float) -> bool:
        """Whether node ``name`` has a report younger than ``max_age_s`` at ``now``."""
        metrics = self._metrics.get(name)
        return metrics is not None and now - metrics.reported_at_s < self.max_age_s

    # -- change tracking (for derived indexes) --------------------------------

    def service_version(self, service: str) -> int:
        """Counter bumped whenever any instance of ``service`` or its metrics change."""
        return self._journal_start.get(service, 0) + len(self._journal.get(service, ()))

    def sites_changed_since(self, service: str, version: int) -> set[str] | None:
        """Sites of ``service`` touched since :meth:`service_version` was ``version``.

        Returns
        -------
        set of str or None
            None when ``version`` is older than the journal keeps (or
            negative): the caller must then assume every site changed.
        """
        start = self._journal_start.get(service, 0)
        if version < start:
            return None
        return set(self._journal.get(service, ())[version - start:])

    def _touch(self, instance: ServiceInstance) -> None:
        journal = self._journal.setdefault(instance.service, [])
        journal.append(instance.site)
        if len(journal) >= 2 * JOURNAL_KEEP:  # readers this far behind rescan everything
            del journal[:JOURNAL_KEEP]
            self._journal_start[instance.service] = (
                self._journal_start.get(instance.service, 0) + JOURNAL_KEEP)
