#!/usr/bin/env bash
# Runs the scale test (test/e2e/scale_test.go, build tags e2e and scale) on a
# fresh local control plane, and throws that control plane away afterwards:
# it ends up holding tens of thousands of objects.
#
# Size: SCALE_NODES (1000), SCALE_PODS (30000 paid pods), SCALE_SCALERS (10),
# SCALE_STEADY (60s of churn only), SCALE_SAMPLES (100), SCALE_YIELDS (10),
# SCALE_CHURN (50 pods a step, at most), SCALE_GOMEMLIMIT (the chart's).
# Results: the test log (also in $E2E_ARTIFACTS/scale-test.log),
# $E2E_ARTIFACTS/scale-results.json and the profiles in $E2E_ARTIFACTS/profiles.
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
# 150,000 pods and their history outgrow etcd's default 2 GiB quota between
# two compactions (the API server compacts every 5 minutes): 8 GiB.
export OPPORTUNIST_ETCD_QUOTA_BACKEND_BYTES="${OPPORTUNIST_ETCD_QUOTA_BACKEND_BYTES:-8589934592}"
# The API server's default 400 + 200 requests in flight are shared by the
# controllers, the scheduler and the opportunist (kwok and the test's bulk
# writers are system:masters, exempt): twice that, for 5,000 nodes.
export OPPORTUNIST_APISERVER_MAX_REQUESTS_INFLIGHT="${OPPORTUNIST_APISERVER_MAX_REQUESTS_INFLIGHT:-800}"
# kwok works on 4 pods and 4 leases at a time by default: 5,000 node leases
# and 150,000 pods to mark Running need more. Each of its workers waits on one
# API call at a time: at 5,000 nodes, 16 of them did ~35 pod stages a second
# (0.45 s a call on a saturated API server) while the churn asked for more, so
# its queue grew for as long as the churn ran, it reached churn pods long after
# they were gone (22,000 "not found"), and worker pods made after the first
# yield trial were still not marked Running 9 minutes later (docs/scale.md,
# eighth attempt). 64.
export OPPORTUNIST_KWOK_PARALLELISM="${OPPORTUNIST_KWOK_PARALLELISM:-64}"
# kwok renews each node's lease at a quarter of its duration: with kubelet's
# 40 s, 5,000 nodes are 500 lease writes a second, which in the first
# 5,000-node run left leases lapsing and nodes NotReady (docs/scale.md).
# 600 s (and the controller-manager's --node-monitor-grace-period to match):
# 33 a second. (200 s, 100 a second, held in the second run but were still a
# third of all writes while the bulk pods went in.) No node goes away in this
# test; a dead node would be noticed after 10 minutes.
export OPPORTUNIST_KWOK_NODE_LEASE_SECONDS="${OPPORTUNIST_KWOK_NODE_LEASE_SECONDS:-600}"
# The scheduler's adaptive default scores 10 % of 5,000 nodes (500) for each
# pod; Kubernetes' scheduler performance tuning lowers it for big clusters:
# 5 % (at least 100 nodes), so the workers' 20,000 pods bind in the hour.
export OPPORTUNIST_SCHEDULER_PERCENTAGE_OF_NODES_TO_SCORE="${OPPORTUNIST_SCHEDULER_PERCENTAGE_OF_NODES_TO_SCORE:-5}"
# The scheduler's system-default spreading (soft, by zone and by node, for
# every pod a ReplicaSet owns) counts, for each pod it places, every pod on
# every node: 79 % of the scheduler's CPU while the workers filled 2,000
# nodes (a CPU profile, docs/scale.md). Off, as a cluster whose workloads
# carry their own topologySpreadConstraints may run it.
export OPPORTUNIST_SCHEDULER_DEFAULT_SPREADING="${OPPORTUNIST_SCHEDULER_DEFAULT_SPREADING:-off}"
go run ./hack/cluster down --purge >/dev/null 2>&1 || true # leftovers of a run that was killed
go run ./hack/cluster up
eval "$(go run ./hack/cluster env)"
artifacts="${E2E_ARTIFACTS:-_output/e2e}"
mkdir -p "$artifacts"
cleanup() {
  # The components' logs go with the control plane: keep them with the
  # results (not the audit log, which holds every request of the run).
  if [ -d "$OPPORTUNIST_CLUSTER_DIR/logs" ]; then
    mkdir -p "$artifacts/cluster-logs"
    find "$OPPORTUNIST_CLUSTER_DIR/logs" -name '*.log' ! -name audit.log -exec cp {} "$artifacts/cluster-logs/" \;
    echo "e2e-scale: the components' logs are in $artifacts/cluster-logs"
  fi
  echo "e2e-scale: deleting the control plane this run filled"
  go run ./hack/cluster down --purge
}
trap cleanup EXIT

echo "e2e-scale: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
test="${SCALE_TEST:-TestScale}"
log="$artifacts/scale-test.log"
if [ "$test" = TestAPILoad ]; then log="$artifacts/apiload-test.log"; fi
go test -tags e2e,scale -count=1 -timeout 90m -v -run "^${test}\$" ./test/e2e 2>&1 | tee "$log"
