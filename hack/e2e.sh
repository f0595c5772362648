#!/usr/bin/env bash
# Runs the end-to-end tests against the local control plane. Brings it up if it
# is not running, and then takes down exactly what it brought up.
set -euo pipefail
cd "$(dirname "$0")/.."

started=0
if ! go run ./hack/cluster status >/dev/null 2>&1; then
  echo "e2e: local control plane not running; starting it (hack/cluster up)"
  go run ./hack/cluster up
  started=1
fi
cleanup() {
  if [ "$started" = 1 ]; then
    echo "e2e: stopping the control plane this run started"
    go run ./hack/cluster down
  fi
}
trap cleanup EXIT

eval "$(go run ./hack/cluster env)"
# The KEDA tests run KEDA's own binaries: build them (once, cached) before the
# test timeout starts counting, when the run may include those tests.
if [ -z "${RUN:-}" ] || [[ "${RUN,,}" == *keda* ]]; then
  go run ./hack/cluster keda >/dev/null
fi
# Likewise metrics-server for the reclaim tests.
if [ -z "${RUN:-}" ] || [[ "${RUN,,}" == *reclaim* ]] || [[ "${RUN,,}" == *metricsserver* ]]; then
  go run ./hack/cluster metrics-server >/dev/null
fi
args=(-tags "${E2E_TAGS:-e2e}" -count=1 -timeout 30m -v ./test/e2e)
if [ -n "${RUN:-}" ]; then
  args+=(-run "$RUN")
fi
go test "${args[@]}"
