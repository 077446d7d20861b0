#!/usr/bin/env bash
# README command 1: set up (idempotent), boot the flagship East-Data-West-Computing
# topology with defaults and run the headline experiment (quick mode). Extra
# arguments go to the experiment (e.g. --full, --seed 7).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m experiments.headline.run --quick "$@"
