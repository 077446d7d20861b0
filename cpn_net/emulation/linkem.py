"""Link emulation: delay, jitter, loss and rate on WAN links, with ground-truth counters.

Two modes, chosen automatically and recorded in every result:

``netem``
    The kernel has ``sch_netem``: the link node bridges its two interfaces and a
    netem qdisc on each egress does delay, jitter, loss and rate (as Mininet's
    ``TCLink`` would). Ground-truth drops come from ``tc -s qdisc``.
``userspace``
    No netem (this project's development machines, see FACTS.md): a link element
    in the link node does delay, jitter, loss and link-down, and an HTB class on
    each egress interface of the link node enforces the rate. Ground-truth drops
    come from the element's counters. The element is the native one
    (``cpn_net/emulation/native/wire.c``, compiled into ``build/native/wire``) unless
    ``CPN_LINK_ELEMENT=python`` asks for :mod:`cpn_net.emulation.wire`; both take the
    same arguments and answer the same control requests.

Set ``CPN_LINK_MODE=userspace`` to force the userspace element where netem exists.
The command builders are pure; :class:`LinkEmulator` runs them in the link node.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import uuid

MODES = ("netem", "userspace")
ELEMENTS = ("native", "python")  # the userspace element: build/native/wire or python -m cpn_net.emulation.wire
QUEUE_MS = 50  # egress buffer of a shaped link, in ms of traffic at its rate
MIN_QUEUE_PACKETS = 100
_detected: str | None = None


class LinkEmulationError(RuntimeError):
    """A link could not be configured; the message names the link and the command."""


def detect_mode() -> str:
    """``netem`` if the kernel accepts a netem qdisc, else ``userspace``.

    Probed once per process in a throwaway network namespace, so no interface
    of anyone else is touched.
    """
    global _detected
    forced = os.environ.get("CPN_LINK_MODE")
    if forced:
        if forced not in MODES:
            raise LinkEmulationError(f"CPN_LINK_MODE={forced!r} must be one of {', '.join(MODES)}")
        return forced
    if _detected is None:
        scratch = f"cpn-probe-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", scratch], check=True)
        try:
            probe = subprocess.run(["ip", "netns", "exec", scratch, "tc", "qdisc", "add", "dev", "lo",
                                    "root", "netem", "delay", "1ms"], capture_output=True)
            _detected = "netem" if probe.returncode == 0 else "userspace"
        finally:
            subprocess.run(["ip", "netns", "del", scratch], check=False)
    return _detected


def element_kind() -> str:
    """Which userspace link element runs: ``CPN_LINK_ELEMENT`` (``native``, the default, or ``python``)."""
    kind = os.environ.get("CPN_LINK_ELEMENT") or "native"
    if kind not in ELEMENTS:
        raise LinkEmulationError(f"CPN_LINK_ELEMENT={kind!r} must be one of {', '.join(ELEMENTS)}")
    return kind


def element_command(kind: str, args: list[str]) -> list[str]:
    """The command line of a userspace link element given its arguments.

    >>> element_command("python", ["--a", "l1x2-eth0"])[1:]
    ['-m', 'cpn_net.emulation.wire', '--a', 'l1x2-eth0']
    """
    if kind == "python":
        return [sys.executable, "-m", "cpn_net.emulation.wire", *args]
    from cpn_net.emulation.native import build
    try:
        return [build.ensure_built("wire"), *args]  # recompiled when wire.c is newer
    except build.BuildError as err:
        raise LinkEmulationError(f"{err} (or set CPN_LINK_ELEMENT=python)") from err


def queue_packets(rate_mbps: float) -> int:
    """Egress queue length for a shaped link: :data:`QUEUE_MS` of traffic in 1500-byte packets.

    Examples
    --------
    >>> queue_packets(100)
    417
    >>> queue_packets(1)
    100
    """
    return max(MIN_QUEUE_PACKETS, math.ceil(rate_mbps * 1e6 * QUEUE_MS / 1000 / (1500 * 8)))


def htb_commands(intf: str, rate_mbps: float | None) -> list[list[str]]:
    """``tc`` commands that shape ``intf``'s egress to ``rate_mbps`` (None: unshaped).

    Examples
    --------
    >>> for c in htb_commands("l1x2-eth0", 10): print(" ".join(c))
    tc qdisc replace dev l1x2-eth0 root handle 1: htb default 1
    tc class replace dev l1x2-eth0 parent 1: classid 1:1 htb rate 10000kbit ceil 10000kbit burst 15000
    tc qdisc replace dev l1x2-eth0 parent 1:1 handle 10: pfifo limit 100
    >>> htb_commands("l1x2-eth0", None)
    [['tc', 'qdisc', 'del', 'dev', 'l1x2-eth0', 'root']]
    """
    if rate_mbps is None:
        return [["tc", "qdisc", "del", "dev", intf, "root"]]
    kbit = max(1, round(rate_mbps * 1000))
    # burst must hold at least one 9000-byte WAN frame; 1 ms of traffic at high rates
    burst = max(15000, math.ceil(rate_mbps * 1e6 / 8 / 1000))
    return [
        ["tc", "qdisc", "replace", "dev", intf, "root", "handle", "1:", "htb", "default", "1"],
        ["tc", "class", "replace", "dev", intf, "parent", "1:", "classid", "1:1", "htb",
         "rate", f"{kbit}kbit", "ceil", f"{kbit}kbit", "burst", str(burst)],
        ["tc", "qdisc", "replace", "dev", intf, "parent", "1:1", "handle", "10:", "pfifo",
         "limit", str(queue_packets(rate_mbps))],
    ]


def netem_command(intf: str, delay_ms: float, jitter_ms: float, loss_pct: float,
                  rate_mbps: float | None) -> list[str]:
    """The netem qdisc for one direction of a link (netem mode only).

    Examples
    --------
    >>> " ".join(netem_command("l1x2-eth1", 5, 1, 0.5, 100))
    'tc qdisc replace dev l1x2-eth1 root netem delay 5.0ms 1.0ms loss random 0.5% rate 100000kbit limit 10000'
    """
    cmd = ["tc", "qdisc", "replace", "dev", intf, "root", "netem", "delay", f"{float(delay_ms)}ms"]
    if jitter_ms:
        cmd.append(f"{float(jitter_ms)}ms")
    if loss_pct:
        cmd += ["loss", "random", f"{loss_pct}%"]
    if rate_mbps is not None:
        cmd += ["rate", f"{round(rate_mbps * 1000)}kbit"]
    return cmd + ["limit", "10000"]


def settings_problem(settings: dict) -> str | None:
    """What is wrong with a link's settings, or None when they can be applied.

    Checked before any command runs, because netem and the userspace element
    would reject some values only half-way and HTB would quietly round a rate
    of 0 up to 1 kbit/s.

    Examples
    --------
    >>> settings_problem({"delay_ms": 5, "jitter_ms": 1, "loss_pct": 0, "rate_mbps": None, "down": False})
    >>> settings_problem({"delay_ms": 5, "jitter_ms": 1, "loss_pct": 0, "rate_mbps": 0, "down": False})
    'rate_mbps=0 must be > 0 (or None for an unshaped link)'
    """
    for name in ("delay_ms", "jitter_ms", "loss_pct", "rate_mbps"):
        value = settings[name]
        if value is None and name == "rate_mbps":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{name}={value!r} must be a finite number"
    if not isinstance(settings["down"], bool):
        return f"down={settings['down']!r} must be true or false"
    for name in ("delay_ms", "jitter_ms"):
        if settings[name] < 0:
            return f"{name}={settings[name]} must be >= 0"
    if not 0 <= settings["loss_pct"] <= 100:
        return f"loss_pct={settings['loss_pct']} must be within 0..100"
    if settings["rate_mbps"] is not None and settings["rate_mbps"] <= 0:
        return f"rate_mbps={settings['rate_mbps']} must be > 0 (or None for an unshaped link)"
    if settings["jitter_ms"] > settings["delay_ms"]:
        return f"jitter_ms={settings['jitter_ms']} must be <= delay_ms={settings['delay_ms']}"
    return None


def root_qdisc_drops(tc_stats: str) -> int:
    """Packets dropped by an interface's root qdisc, from ``tc -s qdisc show dev X``.

    Only the root's counter is read: a classful root (HTB) already counts every
    drop of its child queues, so adding the children's lines would count each
    tail drop twice.

    Examples
    --------
    >>> root_qdisc_drops('''qdisc htb 1: root refcnt 2 r2q 10 default 0x1 direct_packets_stat 0
    ...  Sent 9000 bytes 6 pkt (dropped 4, overlimits 9 requeues 0)
    ... qdisc pfifo 10: parent 1:1 limit 100p
    ...  Sent 9000 bytes 6 pkt (dropped 4, overlimits 0 requeues 0)''')
    4
    """
    in_root = False
    for line in tc_stats.splitlines():
        if line.startswith("qdisc "):
            in_root = " root " in f"{line} "
        elif in_root and "dropped" in line:
            part = line.split("dropped", 1)[1].strip().split(",")[0].strip()
            return int(part) if part.isdigit() else 0
    return 0


class LinkEmulator:
    """Runs and changes the emulation of one WAN link inside its link node."""

    def __init__(self, node, wan_link, mode: str, run_dir: str, seed: int) -> None:
        self.node = node  # a started Mininet node for the link element
        self.link = wan_link
        self.mode = mode
        self.control_path = os.path.join(run_dir, "links", f"{wan_link.element}.sock")
        self.log_path = os.path.join(run_dir, "links", f"{wan_link.element}.log")
        self.seed = seed
        self.element = element_kind() if mode == "userspace" else None
        self.process = None
        self.settings = {"delay_ms": wan_link.delay_ms, "jitter_ms": wan_link.jitter_ms,
                         "loss_pct": wan_link.loss_pct, "rate_mbps": wan_link.rate_mbps, "down": False}

    @property
    def interfaces(self) -> tuple[str, str]:
        return (self.link.element_a, self.link.element_b)

    def _run(self, cmd: list[str]) -> str:
        out = self.node.cmd(" ".join(cmd) + " 2>&1; echo rc=$?").strip().splitlines()
        rc = out[-1] if out else "rc=?"
        if rc != "rc=0":
            raise LinkEmulationError(f"link {self.link.element}: `{' '.join(cmd)}` failed: "
                                     f"{' '.join(out[:-1]) or rc}")
        return "\n".join(out[:-1])

    def start(self) -> None:
        os.makedirs(os.path.dirname(self.control_path), exist_ok=True)
        if self.mode == "netem":
            self._run(["ip", "link", "add", "br0", "type", "bridge"])
            for intf in self.interfaces:
                self._run(["ip", "link", "set", "dev", intf, "master", "br0"])
            self._run(["ip", "link", "set", "dev", "br0", "up"])
            self._apply_netem()
            return
        self._apply_rate()
        s = self.settings
        command = element_command(self.element, [
            "--a", self.link.element_a, "--b", self.link.element_b, "--control", self.control_path,
            "--delay-ms", str(s["delay_ms"]), "--jitter-ms", str(s["jitter_ms"]),
            "--loss-pct", str(s["loss_pct"]), "--seed", str(self.seed)])
        log = open(self.log_path, "ab")
        self.process = self.node.popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def wait_ready(self) -> bool:
        """True once the element answers on its control socket (userspace mode)."""
        if self.mode == "netem":
            return True
        if self.process is not None and self.process.poll() is not None:
            raise LinkEmulationError(f"link {self.link.element}: element exited with "
                                     f"{self.process.returncode}; see {self.log_path}")
        if not os.path.exists(self.control_path):
            return False
        from cpn_net.emulation import wire
        try:
            return wire.request(self.control_path, {"op": "stats"}, timeout_s=0.5)["ok"]
        except OSError:
            return False

    def _apply_rate(self) -> None:
        for intf in self.interfaces:
            for cmd in htb_commands(intf, self.settings["rate_mbps"]):
                if cmd[2] == "del":
                    self.node.cmd(" ".join(cmd) + " 2>/dev/null")  # nothing to delete is fine
                else:
                    self._run(cmd)

    def _apply_netem(self) -> None:
        s = self.settings
        for intf in self.interfaces:
            self._run(netem_command(intf, s["delay_ms"], s["jitter_ms"], s["loss_pct"], s["rate_mbps"]))

    def set(self, delay_ms=None, jitter_ms=None, loss_pct=None, rate_mbps=None, unshaped=False,
            down=None) -> dict:
        """Change the running link; returns the new settings."""
        changes = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss_pct": loss_pct, "down": down}
        new = dict(self.settings)
        new.update({k: v for k, v in changes.items() if v is not None})
        if rate_mbps is not None:
            new["rate_mbps"] = rate_mbps
        if unshaped:
            new["rate_mbps"] = None
        problem = settings_problem(new)
        if problem:
            raise LinkEmulationError(f"link {self.link.site_a}-{self.link.site_b}: {problem}")
        old, self.settings = self.settings, new
        try:
            if self.mode == "netem":
                self._apply_netem()
            else:
                if new["rate_mbps"] != old["rate_mbps"]:
                    self._apply_rate()
                from cpn_net.emulation import wire
                reply = wire.request(self.control_path, {"op": "set", "delay_ms": new["delay_ms"],
                                                         "jitter_ms": new["jitter_ms"],
                                                         "loss_pct": new["loss_pct"], "down": new["down"]})
                if not reply.get("ok"):
                    raise LinkEmulationError(f"link {self.link.element}: {reply.get('error')}")
            if new["down"] != old["down"]:
                state = "down" if new["down"] else "up"
                for intf in self.interfaces:
                    self._run(["ip", "link", "set", "dev", intf, state])
        except Exception:
            self.settings = old
            raise
        return dict(new)

    def counters(self) -> dict:
        """Ground truth: what the emulator itself dropped, per direction."""
        if self.mode == "netem":
            out = {}
            for direction, intf in (("ba", self.link.element_a), ("ab", self.link.element_b)):
                text = self.node.cmd(f"tc -s qdisc show dev {intf}")
                out[direction] = {"tc": text.strip()}
            return out
        from cpn_net.emulation import wire
        try:
            reply = wire.request(self.control_path, {"op": "stats"}, timeout_s=1.0)
        except OSError as err:
            return {"error": f"element not answering: {err}"}
        counters = reply["counters"]
        for direction, intf in (("ab", self.link.element_b), ("ba", self.link.element_a)):
            counters[direction]["queue_drops"] = self._qdisc_drops(intf)
        return counters

    def _qdisc_drops(self, intf: str) -> int | None:
        if self.settings["rate_mbps"] is None:
            return None
        return root_qdisc_drops(self.node.cmd(f"tc -s qdisc show dev {intf}"))

    def terminate(self) -> None:
        """Ask the element to exit (SIGTERM) without waiting."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=3)
