#!/usr/bin/env bash
# README command 2: set up (idempotent), then run every test: unit, doctests, integration
# (real Mininet, Open vSwitch, os-ken, kernel SRv6) and experiment smoke tests.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
