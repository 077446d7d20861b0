#!/usr/bin/env bash
# Set up everything cpn_net needs on a fresh Debian 12 machine, idempotently:
# Debian packages, the Python environment (.venv), the map page (web/ -> build/web/), and the
# Open vSwitch daemons.
# Needs root (apt, network namespaces, OVS). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/setup.sh: needs root (apt-get, Open vSwitch, network namespaces); run it with sudo" >&2
    exit 1
fi

DEBIAN_PACKAGES=(mininet openvswitch-switch iperf3 tcpdump tshark nftables ethtool iputils-ping
                 iproute2 procps python3-venv
                 clang llvm libbpf-dev bpftool   # the eBPF SRv6 data plane, for kernels without seg6
                 gcc libc6-dev                   # the native link element (cpn_net/emulation/native)
                 chromium fonts-dejavu-core)     # the map page's browser test (headless, driven by Playwright)
command -v npm >/dev/null 2>&1 || DEBIAN_PACKAGES+=(nodejs npm)  # builds the map page (web/)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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
# The native link element (cpn_net/emulation/native/wire.c -> build/native/wire); `cpn up`
# recompiles an edited source.
.venv/bin/python -m cpn_net.emulation.native.build

# The map page (GET /map): JavaScript packages from the npm registry, pinned in web/package-lock.json
# (npm ci installs exactly those, without running their install scripts), bundled into build/web/.
# Each step runs only when its inputs changed since it last succeeded.
if [ -d web ] && { [ ! -f web/node_modules/.cpn-installed ] ||
                   [ web/package-lock.json -nt web/node_modules/.cpn-installed ]; }; then
    echo "setup: installing the map page's JavaScript packages (npm ci in web/)"
    (cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    touch web/node_modules/.cpn-installed
fi
if [ -d web ] && { [ ! -f build/web/.built ] || [ -n "$(find web/src web/build.mjs web/package-lock.json \
                                                    -newer build/web/.built -print -quit)" ]; }; then
    echo "setup: building the map page (web/ -> build/web/)"
    (cd web && npm run --silent build)
    touch build/web/.built
fi

if ! ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
    echo "setup: starting Open vSwitch (ovsdb-server, ovs-vswitchd)"
    /usr/share/openvswitch/scripts/ovs-ctl start >/dev/null 2>&1 || true
    ovs-vsctl --timeout=10 show >/dev/null
fi
echo "setup: ready ($(.venv/bin/python --version), $(ovs-vsctl --version | head -1))"
