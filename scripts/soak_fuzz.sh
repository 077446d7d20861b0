#!/usr/bin/env bash
# The fuzz tests of issue 13, run longer than CI runs them:
#   - the mutation fuzz of the topology loaders (tests/unit/test_fuzz_topology_loaders.py),
#     CPN_FUZZ_LOADER_CASES cases (default here 500,000; CI runs 20,000);
#   - schemathesis against the REST northbound of a running tiny network
#     (tests/integration/test_rest_fuzz.py) for CPN_FUZZ_REST_BUDGET_S seconds (default here 1,800;
#     CI runs 90), then the data plane and the controller state compared with before.
# Each run takes a fresh seed unless CPN_FUZZ_SEED is set; the seed is printed, and a failure names
# the case that reproduces it. Usage (root, from the project root, after scripts/setup.sh):
#   sudo bash scripts/soak_fuzz.sh [loaders|rest|all]
# The network part takes the machine's network lock (/tmp/cpn-network.lock), so it waits for any
# other cpn network to finish first.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
case "$what" in loaders|rest|all) ;; *) echo "usage: $0 [loaders|rest|all]" >&2; exit 2 ;; esac
export CPN_FUZZ_SEED="${CPN_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
export CPN_FUZZ_LOADER_CASES="${CPN_FUZZ_LOADER_CASES:-500000}"
export CPN_FUZZ_REST_BUDGET_S="${CPN_FUZZ_REST_BUDGET_S:-1800}"
export CPN_FUZZ_REST_EXAMPLES="${CPN_FUZZ_REST_EXAMPLES:-5000}"
echo "soak_fuzz: seed $CPN_FUZZ_SEED; loaders: $CPN_FUZZ_LOADER_CASES cases; REST: $CPN_FUZZ_REST_BUDGET_S s"
status=0
if [ "$what" != rest ]; then
    .venv/bin/python -m pytest -q -s -p no:cacheprovider \
        tests/unit/test_fuzz_topology_loaders.py::test_mutated_topology_files_load_or_raise_only_topology_error \
        || status=1
fi
if [ "$what" != loaders ]; then
    CPN_REQUIRE_INTEGRATION=1 flock /tmp/cpn-network.lock .venv/bin/python -m pytest -q -s -p no:cacheprovider \
        tests/integration/test_rest_fuzz.py || status=1
fi
echo "soak_fuzz: seed $CPN_FUZZ_SEED: $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
