"""What this machine's kernel and tools can do, and which modes cpn picks from that.

The kernel build changes from time to time and its feature set with it, so cpn
never assumes a feature: :func:`run_probe` tries each one for real (in a scratch
network namespace, see :mod:`cpn_net.dataplane.probe_checks`) and the pure
functions below decide from what it saw:

- :func:`choose_dataplane`: ``kernel`` (Linux seg6 / seg6local routes) when the
  kernel has every seg6 behaviour, else ``bpf`` (cpn's eBPF programs at tc);
- :func:`choose_link_emulation`: ``netem`` or cpn's ``userspace`` link element;
- :func:`choose_ovs_datapath`: Open vSwitch's ``kernel`` or ``user`` datapath.

:func:`report` gathers it all as JSON-ready data (``cpn doctor --json``) and
:func:`render_table` as text (``cpn doctor``).

Examples
--------
A kernel without seg6 but with everything the eBPF data plane needs:

>>> features = feature_set(present=BPF_NEEDS)
>>> choose_dataplane(features), choose_link_emulation(features), choose_ovs_datapath(features)
('bpf', 'userspace', 'user')
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Iterable, Mapping

DATAPLANES = ("auto", "kernel", "bpf")
ENV_DATAPLANE = "CPN_DATAPLANE"
NEEDS_ROOT = "needs root"
SETUP = "sudo bash scripts/setup.sh"
_SEG6 = "absent on this kernel (CONFIG_IPV6_SEG6_LWTUNNEL)"
_TOOL = f"not installed (run {SETUP})"
_BY_BPF = "eBPF data plane (cpn_sid at tc ingress)"
_BY_KERNEL = "kernel seg6 data plane, if present"


@dataclass(frozen=True)
class Info:
    """What cpn knows about a feature before probing it.

    ``absent`` says why a data plane that needs the feature cannot run without
    it, and how to get it (a kernel option, the setup script).
    """

    label: str
    used_for: str
    instead: str
    absent: str = ""


#: Every probed feature, in the order of the report. The names are the JSON keys.
CATALOGUE: dict[str, Info] = {
    "seg6_lwtunnel": Info("seg6 encap", "H.Encaps of SR policies (kernel data plane)",
                          "eBPF data plane (cpn_encap at tc egress)", _SEG6),
    "seg6local_end": Info("seg6local End", "End SIDs (kernel data plane)", _BY_BPF, _SEG6),
    "seg6local_end_x": Info("seg6local End.X", "End.X SIDs (kernel data plane)", _BY_BPF, _SEG6),
    "seg6local_end_dx6": Info("seg6local End.DX6", "End.DX6 SIDs (kernel data plane)", _BY_BPF, _SEG6),
    "seg6local_end_dt6": Info("seg6local End.DT6", "End.DT6 SIDs with a table (kernel data plane)",
                              _BY_BPF, _SEG6),
    "seg6local_end_b6_encaps": Info("seg6local End.B6.Encaps", "binding SIDs (kernel data plane)",
                                    _BY_BPF, _SEG6),
    "netem": Info("netem", "link delay, jitter and loss", "cpn's userspace link element"),
    "openvswitch_module": Info("openvswitch module", "OVS kernel datapath of the site switches",
                               "OVS userspace datapath (datapath=user)"),
    "bpf_syscall": Info("bpf(2)", "eBPF data plane: programs, pinned maps", _BY_KERNEL,
                        "absent on this kernel (CONFIG_BPF_SYSCALL)"),
    "cls_bpf": Info("cls_bpf", "eBPF data plane: tc bpf direct-action filters", _BY_KERNEL,
                    "absent on this kernel (CONFIG_NET_CLS_BPF)"),
    "clsact": Info("clsact", "eBPF data plane: tc ingress and egress hooks", _BY_KERNEL,
                   "absent on this kernel (CONFIG_NET_SCH_INGRESS)"),
    "bpf_fib_lookup_mark": Info("bpf_fib_lookup with mark", "eBPF H.Encaps: the policy route taken",
                                _BY_KERNEL, "absent on this kernel (BPF_FIB_LOOKUP_MARK: Linux 6.10 or later)"),
    "lwt_bpf": Info("LWT BPF", "nothing (it drops GSO packets; H.Encaps is at tc)", ""),
    "ioam_transit": Info("IOAM transit", "delay telemetry: routers fill IOAM traces",
                         "nothing: no delay telemetry (Linux 5.15 or later)"),
    "seg6_enabled_sysctl": Info("seg6_enabled sysctl", "routers and hosts accept SRH packets",
                                "nothing: SRv6 cannot work (CONFIG_IPV6)"),
    "nft_netdev": Info("nftables netdev hooks", "loss telemetry (alternate marking)",
                       "nothing: CONFIG_NF_TABLES_NETDEV, CONFIG_NETFILTER_EGRESS"),
    "htb": Info("htb", "link rates, slice queues", "nothing: CONFIG_NET_SCH_HTB"),
    "policy_routing": Info("policy routing", "slice tables; fwmark rules of the eBPF data plane",
                           "nothing: CONFIG_IPV6_MULTIPLE_TABLES",
                           "absent on this kernel (CONFIG_IPV6_MULTIPLE_TABLES)"),
    "clang": Info("clang", "compiling the eBPF data plane", f"{_BY_KERNEL}; else {SETUP}", _TOOL),
    "bpftool": Info("bpftool", "loading and pinning the eBPF data plane", f"{_BY_KERNEL}; else {SETUP}",
                    _TOOL),
    "tc": Info("tc", "qdiscs and filters", f"nothing: {SETUP}"),
    "ovs_daemons": Info("Open vSwitch daemons", "site switches (OpenFlow 1.3)",
                        f"cpn up starts them (ovs-ctl start); if missing: {SETUP}"),
    "nft": Info("nft", "steering, slice boundaries, loss telemetry", f"nothing: {SETUP}"),
    "ip": Info("ip", "namespaces, addresses, routes, rules", f"nothing: {SETUP}"),
}

#: The kernel data plane: Linux seg6 routes for every behaviour cpn installs.
KERNEL_NEEDS = ("seg6_lwtunnel", "seg6local_end", "seg6local_end_x", "seg6local_end_dx6",
                "seg6local_end_dt6", "seg6local_end_b6_encaps")
#: The eBPF data plane: programs compiled here, pinned per router, attached at tc;
#: the egress program asks the FIB with the mark, the ingress one hands routing to fwmark rules.
BPF_NEEDS = ("bpf_syscall", "cls_bpf", "clsact", "bpf_fib_lookup_mark", "policy_routing", "clang", "bpftool")


class ProbeError(RuntimeError):
    """No data plane fits this machine, or the requested one does not; the message names the fix."""


@dataclass(frozen=True)
class Feature:
    """One probed feature: whether it is there, what the probe saw, what cpn does with it.

    Examples
    --------
    >>> make_feature("netem", False, "Error: Specified qdisc kind is unknown.").to_dict()["instead"]
    "cpn's userspace link element"
    """

    name: str
    present: bool
    detail: str = ""
    used_for: str = ""
    instead: str = ""

    def to_dict(self) -> dict:
        return {"present": self.present, "detail": self.detail, "used_for": self.used_for,
                "instead": self.instead}


def make_feature(name: str, present: bool, detail: str = "") -> Feature:
    """A :class:`Feature` with what cpn uses it for and instead, from :data:`CATALOGUE`."""
    info = CATALOGUE.get(name, Info(name, "", ""))
    return Feature(name, bool(present), detail, info.used_for, info.instead)


def feature_set(present: Iterable[str] = (), detail: str = "absent") -> dict[str, Feature]:
    """Every feature of :data:`CATALOGUE`, those in ``present`` present; for tests and examples.

    Examples
    --------
    >>> features = feature_set(present=["htb"])
    >>> features["htb"].present, features["netem"].present, features["netem"].detail
    (True, False, 'absent')
    """
    chosen = set(present)
    return {name: make_feature(name, name in chosen, "present" if name in chosen else detail)
            for name in CATALOGUE}


# ------------------------------------------------------------- decisions
def _present(features: Mapping, name: str) -> bool:
    value = features.get(name)
    if isinstance(value, Feature):
        return value.present
    if isinstance(value, Mapping):
        return bool(value.get("present"))
    return bool(value)


def _detail(features: Mapping, name: str) -> str:
    value = features.get(name)
    if isinstance(value, Feature):
        return value.detail
    return str(value.get("detail", "")) if isinstance(value, Mapping) else ""


def missing(features: Mapping, needs: Iterable[str]) -> list[str]:
    """The features of ``needs`` that ``features`` lacks (a name not probed counts as lacking).

    >>> missing(feature_set(present=["clang"]), ["clang", "bpftool"])
    ['bpftool']
    """
    return [name for name in needs if not _present(features, name)]


def explain(features: Mapping, names: Iterable[str]) -> str:
    """The missing ``names`` grouped by why they are missing and how to get them.

    >>> explain(feature_set(), ["seg6local_end_dt6"])
    'seg6local End.DT6, absent on this kernel (CONFIG_IPV6_SEG6_LWTUNNEL)'
    >>> explain(feature_set(), ["clang", "bpftool"])
    'clang, bpftool, not installed (run sudo bash scripts/setup.sh)'
    """
    groups: dict[str, list[str]] = {}
    for name in names:
        info = CATALOGUE.get(name, Info(name, "", "", "absent"))
        groups.setdefault(info.absent or "absent", []).append(info.label)
    return "; ".join(f"{', '.join(labels)}, {why}" for why, labels in groups.items())


def choose_dataplane(features: Mapping, requested: str = "auto") -> str:
    """``kernel`` or ``bpf``: the SRv6 data plane for this machine, or :class:`ProbeError` saying why none.

    ``auto`` prefers the kernel's own seg6 (every behaviour in :data:`KERNEL_NEEDS`),
    else cpn's eBPF programs (:data:`BPF_NEEDS`). ``kernel`` and ``bpf`` insist.

    Examples
    --------
    >>> choose_dataplane(feature_set(present=KERNEL_NEEDS + BPF_NEEDS))
    'kernel'
    >>> choose_dataplane(feature_set(present=BPF_NEEDS), "auto")
    'bpf'
    >>> choose_dataplane(feature_set(present=BPF_NEEDS), "kernel")
    Traceback (most recent call last):
    ...
    cpn_net.dataplane.probe.ProbeError: --dataplane kernel needs seg6 encap, ... (CONFIG_IPV6_SEG6_LWTUNNEL); use ... auto
    >>> choose_dataplane(feature_set(detail=NEEDS_ROOT))
    Traceback (most recent call last):
    ...
    cpn_net.dataplane.probe.ProbeError: the kernel was not probed: that needs root ...; run it with sudo
    >>> choose_dataplane({}, "ebpf")
    Traceback (most recent call last):
    ...
    cpn_net.dataplane.probe.ProbeError: unknown data plane 'ebpf': choose one of auto, kernel, bpf
    """
    if requested not in DATAPLANES:
        raise ProbeError(f"unknown data plane {requested!r}: choose one of {', '.join(DATAPLANES)}")
    lacking = {"kernel": missing(features, KERNEL_NEEDS), "bpf": missing(features, BPF_NEEDS)}
    if any(_detail(features, name) == NEEDS_ROOT for name in lacking["kernel"] + lacking["bpf"]):
        raise ProbeError("the kernel was not probed: that needs root (network namespaces, bpf); run it with sudo")
    if requested == "auto":
        for plane in ("kernel", "bpf"):
            if not lacking[plane]:
                return plane
        raise ProbeError("no SRv6 data plane is possible here: the kernel one needs "
                         f"{explain(features, lacking['kernel'])}; the eBPF one needs "
                         f"{explain(features, lacking['bpf'])}")
    if not lacking[requested]:
        return requested
    other = "bpf" if requested == "kernel" else "kernel"
    advice = f"use --dataplane {other} or auto" if not lacking[other] else \
        f"--dataplane {other} is not possible either: it needs {explain(features, lacking[other])}"
    raise ProbeError(f"--dataplane {requested} needs {explain(features, lacking[requested])}; {advice}")


def choose_link_emulation(features: Mapping) -> str:
    """``netem`` when the kernel has it, else cpn's ``userspace`` link element.

    >>> choose_link_emulation(feature_set(present=["netem"])), choose_link_emulation(feature_set())
    ('netem', 'userspace')
    """
    return "netem" if _present(features, "netem") else "userspace"


def choose_ovs_datapath(features: Mapping) -> str:
    """Open vSwitch's ``kernel`` datapath when the openvswitch module is there, else ``user``.

    >>> choose_ovs_datapath(feature_set(present=["openvswitch_module"])), choose_ovs_datapath({})
    ('kernel', 'user')
    """
    return "kernel" if _present(features, "openvswitch_module") else "user"


def requested_dataplane(cli_value: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The data plane asked for: the command line's, else ``$CPN_DATAPLANE``, else ``auto``.

    Examples
    --------
    >>> requested_dataplane(None, {}), requested_dataplane(None, {"CPN_DATAPLANE": "bpf"})
    ('auto', 'bpf')
    >>> requested_dataplane("kernel", {"CPN_DATAPLANE": "bpf"})
    'kernel'
    >>> requested_dataplane(None, {"CPN_DATAPLANE": "ebpf"})
    Traceback (most recent call last):
    ...
    cpn_net.dataplane.probe.ProbeError: CPN_DATAPLANE='ebpf': choose one of auto, kernel, bpf
    """
    environ = os.environ if environ is None else environ
    if cli_value:
        value, source = cli_value, "--dataplane"
    else:
        value, source = environ.get(ENV_DATAPLANE, "").strip() or "auto", ENV_DATAPLANE
    if value not in DATAPLANES:
        raise ProbeError(f"{source}={value!r}: choose one of {', '.join(DATAPLANES)}")
    return value


# --------------------------------------------------------------- output
def report(features: Mapping[str, Feature], requested: str = "auto") -> dict:
    """What ``cpn doctor --json`` prints: every feature, and the modes chosen from them.

    ``dataplane`` is None, with an ``error`` naming the fix, when no data plane fits.

    Examples
    --------
    >>> data = report(feature_set(present=BPF_NEEDS))
    >>> sorted(data), data["dataplane"], data["features"]["clang"]["present"]
    (['dataplane', 'features', 'link_emulation', 'ovs_datapath'], 'bpf', True)
    >>> report(feature_set())["error"]
    'no SRv6 data plane is possible here: the kernel one needs seg6 encap, ...'
    """
    data: dict = {"features": {name: feature.to_dict() for name, feature in features.items()}}
    try:
        data["dataplane"] = choose_dataplane(features, requested)
    except ProbeError as err:
        data["dataplane"], data["error"] = None, str(err)
    data["link_emulation"] = choose_link_emulation(features)
    data["ovs_datapath"] = choose_ovs_datapath(features)
    return data


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in [header, *rows])


def render_table(data: Mapping) -> str:
    """A :func:`report` as text: one row per feature, what was seen of the absent ones, the modes.

    Examples
    --------
    >>> print(render_table(report({"htb": make_feature("htb", True, "tc qdisc add ... htb: ok"),
    ...                            "netem": make_feature("netem", False, "qdisc kind is unknown")})))
    feature  present  cpn uses it for              instead
    htb      yes      link rates, slice queues     nothing: CONFIG_NET_SCH_HTB
    netem    no       link delay, jitter and loss  cpn's userspace link element
    <BLANKLINE>
    absent:
      netem: qdisc kind is unknown
    <BLANKLINE>
    data plane: none (no SRv6 data plane is possible here: ...)
    link emulation: userspace
    OVS datapath: user
    """
    features = data["features"]
    rows = [[name, "yes" if f["present"] else "no", f["used_for"], f["instead"]] for name, f in features.items()]
    parts = [_table(["feature", "present", "cpn uses it for", "instead"], rows)]
    absent = [f"  {name}: {f['detail']}" for name, f in features.items() if not f["present"]]
    if absent:
        parts.append("\n".join(["absent:", *absent]))
    plane = data["dataplane"] or f"none ({data.get('error', '')})"
    parts.append(f"data plane: {plane}\nlink emulation: {data['link_emulation']}\n"
                 f"OVS datapath: {data['ovs_datapath']}")
    return "\n\n".join(parts)


# -------------------------------------------------------------- adapter
def run_probe(timeout_s: float = 10.0) -> dict[str, Feature]:
    """Probe every feature of :data:`CATALOGUE` on this machine (a few seconds; needs root).

    Kernel features are tried in a scratch namespace ``cpn-probe-<pid>`` that is
    removed afterwards; each check has ``timeout_s`` per command, and a check that
    fails or hangs marks only its own feature absent. Without root every feature
    is absent with the detail ``needs root``.
    """
    if os.geteuid() != 0:
        return {name: make_feature(name, False, NEEDS_ROOT) for name in CATALOGUE}
    from cpn_net.dataplane import probe_checks

    features = {}
    with probe_checks.Scratch(timeout_s=timeout_s) as scratch:
        for name in CATALOGUE:
            try:
                present, detail = probe_checks.CHECKS[name](scratch)
            except subprocess.TimeoutExpired as err:
                present, detail = False, f"timed out after {err.timeout:g} s: {' '.join(map(str, err.cmd))}"
            except Exception as err:  # one broken check must not hide the others
                present, detail = False, f"probe failed: {type(err).__name__}: {err}"
            features[name] = make_feature(name, present, detail)
    return features
