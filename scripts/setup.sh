#!/usr/bin/env bash
# Set up everything cpn_net needs on a fresh Debian 12 machine, idempotently:
# Debian packages, the Python environment (.venv), and the Open vSwitch daemons.
# Needs root (apt, network namespaces, OVS). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/setup.sh: needs root (apt-get, Open vSwitch, network namespaces); run it with sudo" >&2
    exit 1
fi

DEBIAN_PACKAGES=(mininet openvswitch-switch iperf3 tcpdump tshark nftables ethtool iputils-ping
                 iproute2 procps python3-venv
                 clang llvm libbpf-dev bpftool)  # the eBPF SRv6 data plane, for kernels without seg6
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.cpn-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
    echo "setup: installing Python packages into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
    touch "$stamp"
fi

# The eBPF data plane's programs (cpn_net/dataplane/bpf/*.bpf.c -> build/bpf/*.bpf.o), compiled
# here so that a kernel without seg6 boots at once; `cpn up` recompiles an edited source.
.venv/bin/python -m cpn_net.dataplane.build

if ! ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
    echo "setup: starting Open vSwitch (ovsdb-server, ovs-vswitchd)"
    /usr/share/openvswitch/scripts/ovs-ctl start >/dev/null 2>&1 || true
    ovs-vsctl --timeout=10 show >/dev/null
fi
echo "setup: ready ($(.venv/bin/python --version), $(ovs-vsctl --version | head -1))"
