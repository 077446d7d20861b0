"""Boot a topology as a real Mininet network, run it, change it, tear it down.

:class:`EmulatedNetwork` turns a :class:`~cpn_net.emulation.plan.NetworkPlan`
into Linux namespaces, veth pairs, Open vSwitch bridges (OpenFlow 1.3, kernel
datapath where the ``openvswitch`` module exists, else userspace), link
elements and a running os-ken controller, then verifies reachability.

Every step is undone by :meth:`EmulatedNetwork.stop`, which is safe to call
after a partial boot (Ctrl-C half-way leaves nothing behind). Only what this
object started is stopped, by PID and by name.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

from cpn_net.emulation import cleanup, fidelity, linkem
from cpn_net.emulation import manifest as manifest_io
from cpn_net.emulation.plan import NetworkPlan, build_plan
from cpn_net.model import addressing

DEFAULT_OFP_PORT = 6653
DEFAULT_REST_PORT = 8181
OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"


class EmulationError(RuntimeError):
    """The network could not be booted or changed; the message says what and why."""


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.1):
    """Poll ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise EmulationError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def ovs_datapath() -> str:
    """``kernel`` when the openvswitch module is loaded or loadable, else ``user``."""
    if os.path.isdir("/sys/module/openvswitch"):
        return "kernel"
    probe = subprocess.run(["modprobe", "-n", "openvswitch"], capture_output=True)
    return "kernel" if probe.returncode == 0 and os.path.exists("/proc/modules") else "user"


def choose_dataplane(requested: str | None = None) -> str:
    """The SRv6 data plane for this kernel: ``kernel`` (seg6) or ``bpf``, from the capability probe.

    ``requested`` is auto, kernel or bpf (None: ``$CPN_DATAPLANE``, else auto). Raises
    :class:`EmulationError` naming the missing feature and the fix when it cannot be had.
    """
    from cpn_net.dataplane import probe

    try:
        wanted = probe.requested_dataplane(requested)
        return probe.choose_dataplane(_probe_features(), wanted)
    except probe.ProbeError as err:
        raise EmulationError(str(err)) from None


@functools.lru_cache(maxsize=1)
def _probe_features():
    from cpn_net.dataplane import probe

    return probe.run_probe()


def ensure_ovs_running() -> None:
    """Start ovsdb-server and ovs-vswitchd if they are not answering."""
    if subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True).returncode == 0:
        return
    if not os.path.exists(OVS_CTL):
        raise EmulationError("Open vSwitch is not installed; run the README's setup (scripts/setup)")
    subprocess.run([OVS_CTL, "start"], capture_output=True)
    if subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True).returncode != 0:
        raise EmulationError(f"Open vSwitch did not start: `{OVS_CTL} start` failed; "
                             "check /var/log/openvswitch/ovs-vswitchd.log")


def _port_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class EmulatedNetwork:
    """One running cpn network (one per machine at a time)."""

    def __init__(self, topology, *, run_dir: str | None = None, ofp_port: int = DEFAULT_OFP_PORT,
                 rest_port: int = DEFAULT_REST_PORT, frr: bool = True, seed: int = 1, progress=None,
                 dataplane: str | None = None) -> None:
        self.topology = topology
        self.requested_dataplane = dataplane  # auto | kernel | bpf; None: $CPN_DATAPLANE, else auto
        self.plan: NetworkPlan = build_plan(topology)
        self.run_dir = run_dir or manifest_io.RUN_DIR
        self.ofp_port = ofp_port
        self.rest_port = rest_port
        self.frr = frr
        self.seed = seed
        self.progress = progress or (lambda message: None)
        self.run_id = uuid.uuid4().hex[:12]
        self.net = None
        self.controller = None
        self.links: dict[str, linkem.LinkEmulator] = {}
        self.services: dict[tuple[str, str], tuple] = {}  # (node, service) -> (process, control socket)
        self.link_mode = None
        self.datapath = None
        self.dataplane = None
        self.owns_run_dir = False
        self.started_at = None
        self.timings: dict[str, float] = {}
        self.verification: dict = {}

    # ------------------------------------------------------------------ boot
    def start(self, verify: bool = True) -> None:
        t0 = time.monotonic()
        self.started_at = time.time()

        def mark(step: str) -> None:
            self.timings[step] = round(time.monotonic() - t0, 3)

        try:
            self._prepare()
            mark("prepared")
            self._build_mininet()
            mark("nodes_built")
            self._configure_nodes()
            mark("nodes_configured")
            self._attach_dataplane()
            mark("dataplane_attached")
            self._start_links()
            mark("links_started")
            self._start_services()
            mark("services_started")
            self._write_manifest()
            self._start_controller()
            mark("controller_started")
            self._start_switches()
            self._wait_controller_ready()
            mark("controller_ready")
            if verify:
                self.verification = self.verify_reachability()
                mark("reachability_verified")
            self._write_manifest(ready=True)
        except BaseException:
            if self.owns_run_dir:  # a refusal in _prepare leaves alone what another network may own
                self.stop()
            raise

    def _prepare(self) -> None:
        existing = manifest_io.read_json(os.path.join(self.run_dir, "manifest.json"))
        if existing is not None:
            pid = (existing.get("processes") or {}).get("daemon")
            if pid and cleanup.pid_alive(pid):
                raise EmulationError(f"a cpn network is already running (daemon PID {pid}); "
                                     "stop it with `cpn down` first")
            self.progress("removing leftovers of a crashed run")
            cleanup.clean(self.run_dir, self.progress)
        clashes = cleanup.clashing_names(self.plan)
        if clashes:
            raise EmulationError(
                "these names are already in use by something that is not a cpn network: "
                f"{', '.join(clashes[:10])}; remove them (or run `cpn clean` if they are cpn leftovers)")
        for port, option in ((self.ofp_port, "--ofp-port"), (self.rest_port, "--rest-port")):
            if _port_listening(port):
                raise EmulationError(f"TCP port {port} is already in use; pick another with {option}")
        self.dataplane = choose_dataplane(self.requested_dataplane)  # refuses before anything is built
        # From here on the run directory and the plan's names are this network's: a failure
        # tears them down. Before, nothing was built, and a refusal must not touch a running
        # network (its namespaces carry the same names, its run directory is this one).
        self.owns_run_dir = True
        os.makedirs(os.path.join(self.run_dir, "links"), exist_ok=True)
        manifest_io.snapshot_topology(self.run_dir, self.topology.source)
        ensure_ovs_running()
        self.link_mode = linkem.detect_mode()
        self.datapath = ovs_datapath()
        self._write_manifest()
        if self.link_mode == "userspace":
            for warning in fidelity.capacity_warnings(self.topology):
                self.progress(f"warning: {warning}")
        self.progress(f"SRv6 data plane: {self.dataplane}; link emulation: {self.link_mode}; "
                      f"OVS datapath: {self.datapath}")

    def _build_mininet(self) -> None:
        from mininet.link import Link
        from mininet.net import Mininet
        from mininet.node import Host, RemoteController

        self.progress(f"building {len(self.plan.nodes)} nodes and "
                      f"{sum(1 for _ in self.plan.veth_pairs())} links")
        net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False, cleanup=False)
        self.net = net
        net.addController("c0", controller=RemoteController, ip="127.0.0.1", port=self.ofp_port)
        for node in self.plan.nodes:
            if node.kind == "switch":
                net.addSwitch(node.name, cls=_site_switch_class(), datapath=self.datapath,
                              protocols="OpenFlow13", failMode="secure", dpid=f"{node.site_id:016x}",
                              batch=True, run_id=self.run_id)
            else:
                net.addHost(node.name, cls=Host, ip=None)
        for intf, peer in self.plan.veth_pairs():
            port1 = intf.port if self.plan.node(intf.node).kind == "switch" else _intf_port(intf.name)
            port2 = peer.port if self.plan.node(peer.node).kind == "switch" else _intf_port(peer.name)
            net.addLink(intf.node, peer.node, port1=port1, port2=port2, cls=Link,
                        intfName1=intf.name, intfName2=peer.name, addr1=intf.mac, addr2=peer.mac)
        net.build()
        for host in net.hosts:
            subprocess.run(["ip", "netns", "attach", addressing.namespace(host.name), str(host.pid)],
                           check=True, capture_output=True)

    def _configure_nodes(self) -> None:
        self.progress("configuring addresses, sysctls and offloads")
        for node in self.plan.nodes:
            if node.kind == "switch":
                continue
            # From a file: one shell line of a router with many links outgrows the node shell's
            # terminal line (4,095 bytes) and arrives cut ("dev" argument is required).
            path = os.path.join(self.run_dir, "nodes", f"{node.name}.sh")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as handle:
                handle.write(_node_setup_script(node) + "\n")
            out = self.net.get(node.name).cmd(f"sh {path}; echo rc=$?").strip()
            if not out.endswith("rc=0"):
                raise EmulationError(f"configuring node {node.name} failed: {out[-400:]}")
        for switch in self.plan.nodes_of("switch"):
            for intf in switch.interfaces:
                subprocess.run(["ethtool", "-K", intf.name, "tx", "off"], capture_output=True)

    def _attach_dataplane(self) -> None:
        """eBPF data plane: load, pin and attach the SRv6 programs on every router interface."""
        if self.dataplane != "bpf":
            return
        from cpn_net.dataplane import attach

        routers = self.plan.nodes_of("router")
        self.progress(f"attaching the eBPF SRv6 data plane to {len(routers)} routers")
        for router in routers:
            try:
                attach.attach(self.run_dir, router.name, [i.name for i in router.interfaces])
            except RuntimeError as err:
                raise EmulationError(str(err)) from err

    def _start_links(self) -> None:
        self.progress(f"starting {len(self.plan.wan_links)} WAN link elements ({self.link_mode})")
        for index, link in enumerate(self.plan.wan_links):
            emulator = linkem.LinkEmulator(self.net.get(link.element), link, self.link_mode,
                                           self.run_dir, seed=self.seed * 1000 + index)
            self.links[link.element] = emulator
            emulator.start()
        wait_until(lambda: all(e.wait_ready() for e in self.links.values()), 30,
                   "the link elements to answer on their control sockets")

    def _start_services(self) -> None:
        """A real request/response service per (compute node, service), answering on the anycast too."""
        if not self.topology.services:
            return
        self.progress(f"starting {sum(len(s.compute) for s in self.topology.services)} service instances")
        os.makedirs(os.path.join(self.run_dir, "services"), exist_ok=True)
        for index, (service, host) in enumerate((s, self.topology.host(k)) for s in self.topology.services
                                                for k in s.compute):
            node = self.net.get(host.name)
            out = node.cmd(f"ip -6 addr add {service.anycast}/128 dev lo 2>&1; echo rc=$?").strip()
            if not out.endswith("rc=0") and "File exists" not in out:
                raise EmulationError(f"adding anycast {service.anycast} on {host.name} failed: {out}")
            control = os.path.join(self.run_dir, "services", f"{host.name}.{service.name}.sock")
            argv = [sys.executable, "-m", "cpn_net.compute.service", "--instance", host.name,
                    "--service", service.name, "--port", str(service.port), "--workers", str(host.workers),
                    "--service-time-ms", str(host.service_time_ms), "--queue-limit", str(host.queue_limit),
                    "--background-load-pct", str(host.background_load_pct), "--seed", str(self.seed * 1000 + index),
                    "--metrics-socket", os.path.join(self.run_dir, "metrics.sock"), "--metrics-period-s", "1",
                    "--control", control]
            if host.price_cny_per_hour is not None:
                argv += ["--price-cny-per-hour", str(host.price_cny_per_hour)]
            if host.carbon_g_per_kwh is not None:
                argv += ["--carbon-g-per-kwh", str(host.carbon_g_per_kwh)]
            log = open(os.path.join(self.run_dir, "services", f"{host.name}.{service.name}.log"), "ab")
            self.services[(host.name, service.name)] = (node.popen(argv, stdout=log, stderr=subprocess.STDOUT),
                                                        control)
            log.close()

        def ready():
            for (name, svc), (proc, control) in self.services.items():
                if proc.poll() is not None:
                    raise EmulationError(f"service {svc} on {name} exited with {proc.returncode}; see "
                                         f"{self.run_dir}/services/{name}.{svc}.log")
            return all(os.path.exists(control) for _, control in self.services.values())

        wait_until(ready, 30, "every service instance to start")

    def service_request(self, instance: str, message: dict, service: str | None = None) -> dict:
        """Send a control request (stats, set background load, pause) to a running service instance."""
        from cpn_net.emulation import wire

        matches = [(k, v) for k, v in self.services.items() if k[0] == instance and service in (None, k[1])]
        if not matches:
            raise EmulationError(f"no service instance on {instance!r}; compute nodes: "
                                 f"{', '.join(sorted({k[0] for k in self.services}))}")
        return wire.request(matches[0][1][1], message)

    def _start_controller(self, adopt: bool = False) -> None:
        self.progress("starting the os-ken controller")
        log = open(os.path.join(self.run_dir, "controller.log"), "ab")
        env = dict(os.environ, CPN_RUN_DIR=self.run_dir, CPN_REST_PORT=str(self.rest_port),
                   CPN_FRR="1" if self.frr else "0", CPN_DATAPLANE=self.dataplane,
                   CPN_CONTROLLER_ADOPT="1" if adopt else "0")
        self.controller = subprocess.Popen(
            [sys.executable, "-m", "controllers.runner", "--run-dir", self.run_dir,
             "--ofp-port", str(self.ofp_port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()

        def listening():
            if self.controller.poll() is not None:
                raise EmulationError(f"the controller exited with {self.controller.returncode}; "
                                     f"see {self.run_dir}/controller.log")
            return _port_listening(self.ofp_port)

        wait_until(listening, 30, f"the controller to listen on port {self.ofp_port}")
        self._write_manifest()

    def restart_controller(self) -> dict:
        """Stop the controller and start a new one that takes over the running data plane.

        While no controller runs, routers forward with what is installed (kernel routes, or
        the eBPF programs and their pinned maps) and switches with their flows. The new
        controller adopts that state and re-installs the same on top of it, runtime policies
        included, instead of tearing anything down.
        """
        old = self.controller
        started = time.monotonic()
        if old is not None and old.poll() is None:
            old.terminate()
            try:
                old.wait(timeout=10)
            except subprocess.TimeoutExpired:
                old.kill()
                old.wait(timeout=5)
        stopped = time.monotonic()
        self._start_controller(adopt=True)
        self._wait_controller_ready()
        self._write_manifest(ready=True)
        return {"old_pid": None if old is None else old.pid, "pid": self.controller.pid,
                "without_controller_s": round(time.monotonic() - stopped, 3),
                "took_s": round(time.monotonic() - started, 3)}

    def _start_switches(self) -> None:
        self.progress(f"starting {len(self.plan.nodes_of('switch'))} Open vSwitch bridges")
        self.net.start()

    def controller_state(self) -> dict | None:
        return manifest_io.read_json(os.path.join(self.run_dir, "controller.json"))

    def _wait_controller_ready(self) -> None:
        def ready():
            if self.controller.poll() is not None:
                raise EmulationError(f"the controller exited with {self.controller.returncode}; "
                                     f"see {self.run_dir}/controller.log")
            state = self.controller_state()
            if not state or state.get("pid") != self.controller.pid:  # not an earlier controller's file
                return False
            if state.get("errors"):
                raise EmulationError("the controller reported errors: " + "; ".join(state["errors"][:5]))
            switches_ok = all(s["configured"] for s in state["switches"].values())
            routers_ok = len(state["routers"]) == len(self.plan.nodes_of("router"))
            return switches_ok and routers_ok and state.get("rest")

        wait_until(ready, 60, "every switch to be configured by the controller")

    # ---------------------------------------------------------- verification
    def verify_reachability(self, timeout_s: float = 20.0) -> dict:
        """Probe: every host reaches its router, and one host per site reaches one per other site.

        All-pairs grows with the square of the host count; this subset proves every
        router route and every switch port while staying fast on 40 sites.
        """
        self.progress("verifying reachability")
        from cpn_net.slicing.isolation import isolated_hosts

        hosts = [n for n in self.plan.nodes if n.kind in ("client", "compute")]
        # Isolated slices separate their members from everyone else: probe across sites from
        # hosts outside them where a site has one, and only between hosts allowed to talk.
        isolated = isolated_hosts(self.topology.slices)
        first_per_site = {}
        for host in sorted(hosts, key=lambda h: h.name in isolated):
            first_per_site.setdefault(host.site_id, host)
        targets: dict[str, list[str]] = {}
        for host in hosts:
            targets[host.name] = [str(addressing.router_lan_address(host.site_id))]
        for site_id, host in first_per_site.items():
            targets[host.name] += [_address(other) for sid, other in first_per_site.items()
                                   if sid != site_id and isolated.get(other.name) == isolated.get(host.name)]
        results = self.probe_many(targets, timeout_s)
        failures = [f"{src}->{dst}" for src, rtts in results.items() for dst, rtt in rtts.items() if rtt is None]
        probes = sum(len(v) for v in results.values())
        if failures:
            raise EmulationError(f"reachability check failed for {len(failures)} of {probes} probes: "
                                 f"{', '.join(failures[:8])}")
        return {"probes": probes, "failed": 0}

    def probe_many(self, targets: dict[str, list[str]], timeout_s: float) -> dict[str, dict]:
        """Run the ICMPv6 prober in several nodes at once; {source: {address: rtt_ms|None}}."""
        import json

        procs = {}
        for source, addresses in targets.items():
            procs[source] = self.net.get(source).popen(
                [sys.executable, "-m", "cpn_net.emulation.reach", "--timeout-s", str(timeout_s)] + addresses,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        results = {}
        for source, proc in procs.items():
            out, err = proc.communicate(timeout=timeout_s + 30)
            if proc.returncode != 0:
                raise EmulationError(f"prober in {source} failed: {err.decode()[-300:]}")
            results[source] = json.loads(out)
        return results

    # --------------------------------------------------------------- runtime
    def set_link(self, a: str, b: str, **changes) -> dict:
        """Change a running WAN link, named by its two sites or routers."""
        try:
            link = self.plan.wan_link(a, b)
        except KeyError as err:
            raise EmulationError(f"{err.args[0]}; `cpn status` lists the links") from None
        return self.links[link.element].set(**changes)

    def status(self) -> dict:
        nodes = []
        for node in self.plan.nodes:
            nodes.append({"name": node.name, "kind": node.kind, "site": node.site,
                          "namespace": node.namespace,
                          "addresses": [a for i in node.interfaces for a in i.addresses]})
        links = []
        for link in self.plan.wan_links:
            emulator = self.links.get(link.element)
            links.append({"a": link.site_a, "b": link.site_b, "routers": [link.router_a, link.router_b],
                          "node": link.element, "mode": self.link_mode,
                          "configured": dict(emulator.settings) if emulator else None,
                          "ground_truth": emulator.counters() if emulator else None})
        return {"run_id": self.run_id, "topology": self.plan.topology, "link_mode": self.link_mode,
                "dataplane": self.dataplane, "ovs_datapath": self.datapath, "started_at": self.started_at, "timings": self.timings,
                "verification": self.verification, "nodes": nodes, "links": links,
                "controller": self.controller_state()}

    def link_counters(self) -> dict:
        """Every link element's counters ({element: {"ab": {...}, "ba": {...}}}): a fidelity reading."""
        return {name: emulator.counters() for name, emulator in self.links.items()}

    def node(self, name: str):
        return self.net.get(name)

    # -------------------------------------------------------------- teardown
    def stop(self) -> None:
        """Stop everything this network started; safe after a partial boot."""
        for process, _control in self.services.values():
            if process.poll() is None:
                process.terminate()
        for process, _control in self.services.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
        for emulator in self.links.values():
            emulator.terminate()  # all at once, then wait: each takes a moment to exit
        for emulator in self.links.values():
            try:
                emulator.stop()
            except Exception:  # keep tearing down the rest
                pass
        if self.controller is not None and self.controller.poll() is None:
            self.controller.terminate()
            try:
                self.controller.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.controller.kill()
                self.controller.wait(timeout=5)
        if self.net is not None:
            # Not Mininet's stop(): it deletes every interface through the node shells one
            # by one (slow at 40 sites) and hangs forever if a shell has died. Ending the
            # shells and deleting the namespaces removes every veth with them.
            for node in self.net.hosts + self.net.controllers:
                node.terminate()
            bridges = [s.name for s in self.net.switches]
            if bridges:
                subprocess.run(["ovs-vsctl", "--timeout=10"] + [arg for name in bridges for arg in
                                                                 ("--", "--if-exists", "del-br", name)],
                               capture_output=True)
        cleanup.remove_by_plan(self.plan, self.run_id)
        cleanup.remove_bpf(self.run_dir)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def _write_manifest(self, ready: bool = False) -> None:
        processes = {"daemon": os.getpid()}
        if self.controller is not None:
            processes["controller"] = self.controller.pid
        for name, emulator in self.links.items():
            if emulator.process is not None:
                processes[f"link:{name}"] = emulator.process.pid
        for (node, service), (process, _control) in self.services.items():
            processes[f"service:{node}:{service}"] = process.pid
        if self.net is not None:
            for node in self.net.hosts + self.net.controllers:
                processes[f"shell:{node.name}"] = node.pid
        manifest = manifest_io.Manifest(self.run_id, self.topology.to_dict(), self.plan,
                                        self.link_mode or "unknown", self.started_at or time.time(),
                                        processes)
        data = manifest.to_dict()
        data["ready"] = ready
        data["ofp_port"] = self.ofp_port
        data["rest_url"] = f"http://127.0.0.1:{self.rest_port}"
        data["frr"] = self.frr
        data["ovs_datapath"] = self.datapath
        data["dataplane"] = self.dataplane
        manifest_io.write_json_atomic(os.path.join(self.run_dir, "manifest.json"), data)


def _site_switch_class():
    """OVSSwitch that tags its bridge as ours at creation (``external_ids:cpn-run``)."""
    from mininet.node import OVSSwitch

    class SiteSwitch(OVSSwitch):
        def __init__(self, name, run_id="", **params):
            super().__init__(name, **params)
            self.run_id = run_id

        def bridgeOpts(self):
            return super().bridgeOpts() + f" external_ids:cpn-run={self.run_id}"

    return SiteSwitch


def _intf_port(name: str) -> int:
    return int(name.rsplit("eth", 1)[1])


def _address(node) -> str:
    return node.interfaces[0].addresses[0].split("/")[0]


def _node_setup_script(node) -> str:
    """One shell line configuring a node: sysctls, offloads, addresses, routes."""
    cmds = ["sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0",
            "sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0"]
    if node.kind == "link":
        cmds.append("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
    if node.kind == "router":
        cmds.append("sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.all.seg6_enabled=1 "
                    "net.ipv6.conf.default.seg6_enabled=1")
    for intf in node.interfaces:
        if node.kind == "link":
            cmds.append(f"ip link set dev {intf.name} promisc on")
        else:
            cmds.append(f"sysctl -qw net.ipv6.conf.{intf.name}.accept_dad=0")
        if node.kind == "router":
            # Fast reroute: a route whose interface lost carrier is skipped, so the backup matches.
            cmds.append(f"sysctl -qw net.ipv6.conf.{intf.name}.seg6_enabled=1 "
                        f"net.ipv6.conf.{intf.name}.ignore_routes_with_linkdown=1")
        cmds.append(f"ip link set dev {intf.name} mtu {intf.mtu}")
        # Userspace OVS and AF_PACKET elements need complete checksums and no TSO/GSO/GRO.
        cmds.append(f"ethtool -K {intf.name} tx off tso off gso off gro off >/dev/null")
        for address in intf.addresses:
            cmds.append(f"ip -6 addr add {address} dev {intf.name} nodad")
        cmds.append(f"ip link set dev {intf.name} up")
    if node.kind in ("client", "compute"):
        cmds.append(f"ip -6 route add default via {addressing.router_lan_address(node.site_id)}")
        # Hosts end SRv6 paths (telemetry probes carry an SRH to them): Linux drops any
        # packet with an SRH, even one with Segments Left 0, unless seg6 is enabled.
        cmds.append("sysctl -qw net.ipv6.conf.all.seg6_enabled=1 " +
                    " ".join(f"net.ipv6.conf.{i.name}.seg6_enabled=1" for i in node.interfaces))
    return " && ".join(cmds)
