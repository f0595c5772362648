#!/usr/bin/env bash
# The product on a machine with no cluster. `make try` (this script with no
# argument, or `up`) brings up the local control plane (hack/cluster) with the
# write-up's six fake nodes and its paid Deployments, installs the
# OpportunisticScaler CRD and the seed example's worker and scaler, and runs
# `opportunist run` in the foreground until Ctrl-C. In a second terminal,
# `hack/try.sh burst` scales the paid app 2 -> 17 -> 2 and prints the worker
# yielding and refilling; `hack/try.sh down` stops the control plane.
#
# Environment: LISTEN (default 127.0.0.1:8080) is opportunist's address for
# /dashboard/ and /metrics; TRY_DIR (default /tmp/opportunist-try) holds its
# log; BURST_HOLD (default 10) is how many seconds `burst` holds the paid peak.
# hack/cluster's OPPORTUNIST_* variables choose its directory and ports.
set -euo pipefail
cd "$(dirname "$0")/.."

listen=${LISTEN:-127.0.0.1:8080}
dir=${TRY_DIR:-/tmp/opportunist-try}
burst_hold=${BURST_HOLD:-10}
paid_peak=17 # the write-up's burst: its HPA took the app from 2 to 17 replicas
paid_base=2

die() {
  echo "try: $*" >&2
  exit 1
}

cluster_env() {
  local env
  env=$(go run ./hack/cluster env) || die "could not read the local control plane's environment (go run ./hack/cluster env)"
  eval "$env" # KUBECONFIG, and the kubectl hack/cluster built first on PATH
}

# port_busy HOST:PORT succeeds if something accepts connections there.
port_busy() {
  (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null
}

# state prints one line: worker desired, limited-by, replicas, ready; paid app replicas ready.
state() {
  local osc deploys
  osc=$(kubectl -n demo get osc worker -o jsonpath='{.status.desiredReplicas} {.status.limitedBy}') || return 1
  deploys=$(kubectl get deploy -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {.spec.replicas} {.status.readyReplicas}{"\n"}{end}') || return 1
  awk -v osc="$osc" '
    $1 == "demo/worker" { wr = $2; wready = $3 + 0 }
    $1 == "paid/sample-metrics-app" { pready = $3 + 0 }
    END { split(osc, o, " "); printf "%s %s %s %d %d\n", o[1] + 0, (o[2] == "" ? "-" : o[2]), wr + 0, wready, pready }
  ' <<<"$deploys"
}

# watch_until PAID_READY TIMEOUT [BELOW|EXACTLY N] prints each change of the
# worker and the paid app, with seconds since start, until the paid app has
# PAID_READY ready pods and the worker is settled: scaled to its budget
# (limitedBy Budget), all ready, and below or exactly at N workers (so a status
# written before the change does not count), or STEADY: unchanged for 2 s (two
# rounds). It sets settled (the worker count) and settled_at (milliseconds).
watch_until() {
  local want=$1 timeout=$2 cmp=${3:-} n=${4:-0} start now t changed=0 last="" cur desired limited replicas ready pready
  start=$(date +%s%N)
  while :; do
    now=$(date +%s%N)
    t=$(((now - start) / 1000000))
    cur=$(state) || die "could not read the worker's scaler; is the control plane up? (make try)"
    read -r desired limited replicas ready pready <<<"$cur"
    if [[ $cur != "$last" ]]; then
      printf '  t+%3d.%ds  paid app ready %2d/%d   worker: scaler wants %3d (%s), deployment %3d, ready %3d\n' \
        $((t / 1000)) $((t % 1000 / 100)) "$pready" "$want" "$desired" "$limited" "$replicas" "$ready"
      last=$cur changed=$t
    fi
    if ((pready == want)) && [[ $limited == Budget ]] && ((replicas == desired && ready == desired)) &&
      { [[ $cmp == "" ]] || { [[ $cmp == BELOW ]] && ((desired < n)); } || { [[ $cmp == EXACTLY ]] && ((desired == n)); } ||
        { [[ $cmp == STEADY ]] && ((t - changed >= 2000)); }; }; then
      settled_at=$t settled=$desired
      return 0
    fi
    ((t < timeout * 1000)) || die "the worker did not settle within ${timeout}s; opportunist's log: $dir/opportunist.log"
    sleep 0.5
  done
}

secs() { printf '%d.%d s' $(($1 / 1000)) $(($1 % 1000 / 100)); }

up() {
  port_busy "$listen" && die "$listen is in use (another opportunist or make try?): pick a free address, e.g. LISTEN=127.0.0.1:8081 make try"
  mkdir -p "$dir"
  go run ./hack/cluster up
  cluster_env
  echo "try: building bin/opportunist..."
  make --no-print-directory build >/dev/null
  echo "try: applying the write-up's cluster (examples/seed-cluster), the CRD (config/crd), and the worker with its scaler (examples/seed)..."
  kubectl apply -f examples/seed-cluster/nodes.yaml -f examples/seed-cluster/paid.yaml \
    -f config/crd -f examples/seed/namespace.yaml >/dev/null
  # A new CRD has no status.conditions for a moment, and kubectl wait fails rather than waits on that: retry it.
  timeout 30 sh -c 'until kubectl wait --for=condition=Established crd/opportunisticscalers.opportunist.io --timeout=30s >/dev/null; do sleep 0.5; done'
  kubectl apply -f examples/seed/worker.yaml >/dev/null
  kubectl -n paid rollout status deploy/other-services deploy/sample-metrics-app --timeout=120s >/dev/null

  # Background, so this script can wait for the worker to fill and then print
  # the URL last; Ctrl-C (or any exit) stops it.
  bin/opportunist run --listen-address "$listen" --round-interval 1s --leader-elect=false \
    >"$dir/opportunist.log" 2>&1 &
  pid=$!
  trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; echo; echo "try: opportunist stopped. The control plane is still up: hack/try.sh down stops it (make try starts both again)."' EXIT
  trap 'exit 0' INT TERM
  echo "try: opportunist run (pid $pid, log $dir/opportunist.log); the worker fills the room..."
  local i
  for i in $(seq 60); do
    curl -sf "http://$listen/readyz" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || die "opportunist exited: $(tail -n 3 "$dir/opportunist.log")"
    sleep 0.5
  done
  curl -sf "http://$listen/readyz" >/dev/null || die "opportunist not ready after 30 s; its log: $dir/opportunist.log"
  watch_until "$paid_base" 60 STEADY
  echo
  bin/opportunist status
  cat <<MSG

try: opportunist is running against the local control plane: six fake nodes (184 cores),
     the paid Deployments in namespace paid, and in namespace demo a worker of one-core pods
     whose OpportunisticScaler keeps 30 cores free: it filled the rest, $settled workers.

     dashboard: http://$listen/dashboard/
     a paid burst, in a second terminal: the worker yields, then refills
       ${LISTEN:+LISTEN=$listen }hack/try.sh burst
     the scaler, live: eval "\$(go run ./hack/cluster env)"; kubectl -n demo get osc -w
     Ctrl-C stops opportunist; hack/try.sh down stops the control plane.
MSG
  wait "$pid"
}

burst() {
  cluster_env
  kubectl -n demo get osc worker >/dev/null 2>&1 || die "no worker scaler in namespace demo: run make try first, and keep it running"
  curl -sf "http://$listen/readyz" >/dev/null || die "no opportunist answers on $listen: run make try first (with the same LISTEN)"
  echo "try: before the burst:"
  watch_until "$paid_base" 60 STEADY
  local before=$settled
  echo "try: paid burst: sample-metrics-app $paid_base -> $paid_peak replicas of 4 cores, 60 more cores where 30 are free."
  echo "     Paid pods preempt workers (PriorityClass opportunistic), and the scaler shrinks the worker at once."
  kubectl -n paid scale deploy/sample-metrics-app --replicas="$paid_peak" >/dev/null
  watch_until "$paid_peak" 60 BELOW "$before"
  echo "try: yielded: the worker is at $settled, $(secs "$settled_at") after the burst began."
  echo "try: holding the burst ${burst_hold}s..."
  sleep "$burst_hold"
  echo "try: burst over: sample-metrics-app $paid_peak -> $paid_base. The scaler grows the worker back after 10 s of"
  echo "     steady room (behavior.scaleUp in examples/seed/worker.yaml); shrinking never waits."
  kubectl -n paid scale deploy/sample-metrics-app --replicas="$paid_base" >/dev/null
  watch_until "$paid_base" 90 EXACTLY "$before"
  echo "try: refilled: the worker is at $settled, $(secs "$settled_at") after the burst ended."
  echo "     Each step and its arithmetic: kubectl -n demo get events --field-selector involvedObject.kind=OpportunisticScaler"
}

down() {
  go run ./hack/cluster down
  echo "try: control plane stopped; go run ./hack/cluster down --purge also deletes its state."
}

case ${1:-up} in
up) up ;;
burst) burst ;;
down) down ;;
*) die "unknown command ${1}: usage: hack/try.sh [up|burst|down]" ;;
esac
