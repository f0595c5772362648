#!/usr/bin/env bash
# The main job on a machine with no cluster: bring up the local control plane
# (hack/cluster), give it the write-up's six fake nodes and paid load, and run
# opportunist against it. Ctrl-C stops opportunist; `make cluster-down` stops
# the control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./hack/cluster up
eval "$(go run ./hack/cluster env)" # puts the kubectl hack/cluster built first on PATH
kubectl apply -f examples/seed-cluster/nodes.yaml -f examples/seed-cluster/paid.yaml >/dev/null
echo "try: waiting for the paid pods to run on the fake nodes..."
kubectl -n paid rollout status deploy/other-services deploy/sample-metrics-app --timeout=120s >/dev/null
make --no-print-directory build >/dev/null

listen=${LISTEN:-127.0.0.1:8080}
bin/opportunist status
cat <<MSG

try: opportunist is running against the local control plane (KUBECONFIG=$KUBECONFIG).
     curl -s http://$listen/metrics | grep -E '^(cpu|mem|pod)_'      the write-up's gauges
     kubectl -n paid scale deploy/sample-metrics-app --replicas=17    paid load up: watch cpu_capacity_remaining fall
     bin/opportunist status -o wide                                   per node
MSG
exec bin/opportunist run --listen-address "$listen"
