#!/usr/bin/env bash
# Runs the scale test (test/e2e/scale_test.go, build tags e2e and scale) on a
# fresh local control plane, and throws that control plane away afterwards:
# it ends up holding tens of thousands of objects.
#
# Size: SCALE_NODES (1000), SCALE_PODS (30000 paid pods), SCALE_STEADY (60s of
# churn only), SCALE_SAMPLES (20), SCALE_YIELDS (3). Results: the test log
# (also in $E2E_ARTIFACTS/scale-test.log) and $E2E_ARTIFACTS/scale-results.json.
#
# SCALE_TEST=TestAPILoad runs the API-load measurement instead (`make
# e2e-apiload`; APILOAD_* variables, docs/scale.md); its log is
# $E2E_ARTIFACTS/apiload-test.log.
set -euo pipefail
cd "$(dirname "$0")/.."

if go run ./hack/cluster status >/dev/null 2>&1; then
  echo "e2e-scale: a control plane is already running ($(go run ./hack/cluster env | grep OPPORTUNIST_CLUSTER_DIR)); the scale test needs a fresh one and deletes it afterwards: stop it (go run ./hack/cluster down) or set OPPORTUNIST_CLUSTER_DIR and the OPPORTUNIST_*_PORT variables to another" >&2
  exit 1
fi
# The controller-manager's 20 QPS would create the worker's thousands of
# pods at 20 a second; the scheduler's 50 would bind them not much faster.
export OPPORTUNIST_KUBE_API_QPS="${OPPORTUNIST_KUBE_API_QPS:-500}"
go run ./hack/cluster down --purge >/dev/null 2>&1 || true # leftovers of a run that was killed
go run ./hack/cluster up
cleanup() {
  echo "e2e-scale: deleting the control plane this run filled"
  go run ./hack/cluster down --purge
}
trap cleanup EXIT

eval "$(go run ./hack/cluster env)"
artifacts="${E2E_ARTIFACTS:-_output/e2e}"
mkdir -p "$artifacts"
echo "e2e-scale: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
test="${SCALE_TEST:-TestScale}"
log="$artifacts/scale-test.log"
if [ "$test" = TestAPILoad ]; then log="$artifacts/apiload-test.log"; fi
go test -tags e2e,scale -count=1 -timeout 90m -v -run "^${test}\$" ./test/e2e 2>&1 | tee "$log"
