#!/usr/bin/env bash
# Runs the end-to-end tests against local control planes. Brings each up if it
# is not running, and then takes down exactly what it brought up.
#
# With RUN empty (the whole suite, as CI runs it), the tests are spread over
# E2E_SHARDS control planes (default 3) run at the same time: the tests mostly
# wait on timers (rounds, metrics intervals, HPA syncs), so separate clusters
# overlap their waits. Shard 1 is the control plane of OPPORTUNIST_CLUSTER_DIR
# and the OPPORTUNIST_*_PORT variables (hack/cluster's defaults if unset);
# shard k uses the directory "$OPPORTUNIST_CLUSTER_DIR-shard<k>" and every
# port moved up by (k-1) * E2E_SHARD_PORT_OFFSET (default 1000).
# hack/e2e-shards.txt assigns the tests; shard 1 also runs any test not listed
# there. Each shard's output goes to $E2E_ARTIFACTS/shard-<k>.log, printed
# whole at the end with a summary. With RUN set, or E2E_SHARDS=1, it runs on
# the one control plane as before.
set -euo pipefail
cd "$(dirname "$0")/.."
# The braces make bash read the whole script before running it, so an edit
# (a git checkout) during a run does not change the rest of that run.
{

export E2E_ARTIFACTS="${E2E_ARTIFACTS:-$PWD/_output/e2e}"
mkdir -p "$E2E_ARTIFACTS"
shards=${E2E_SHARDS:-3}
if [ -n "${RUN:-}" ]; then
  shards=1
fi
if ! [[ "$shards" =~ ^[1-9][0-9]*$ ]]; then
  echo "e2e: E2E_SHARDS=$shards is not a positive number of control planes (e.g. 3)" >&2
  exit 2
fi
offset=${E2E_SHARD_PORT_OFFSET:-1000}
if ! [[ "$offset" =~ ^[1-9][0-9]*$ ]]; then
  echo "e2e: E2E_SHARD_PORT_OFFSET=$offset is not a positive number of ports (e.g. 1000)" >&2
  exit 2
fi

# hack/cluster built once: every shard's up, env and down use it.
bindir=$(mktemp -d)
go build -o "$bindir/cluster" ./hack/cluster

base_dir=${OPPORTUNIST_CLUSTER_DIR:-${TMPDIR:-/tmp}/opportunist-cluster}
# hack/cluster's default ports (hack/cluster/config.go), the base of the
# shards' port sets when the environment does not move them.
base_ports=(
  "OPPORTUNIST_ETCD_PORT=${OPPORTUNIST_ETCD_PORT:-23791}"
  "OPPORTUNIST_ETCD_PEER_PORT=${OPPORTUNIST_ETCD_PEER_PORT:-23792}"
  "OPPORTUNIST_APISERVER_PORT=${OPPORTUNIST_APISERVER_PORT:-26443}"
  "OPPORTUNIST_CONTROLLER_MANAGER_PORT=${OPPORTUNIST_CONTROLLER_MANAGER_PORT:-26257}"
  "OPPORTUNIST_SCHEDULER_PORT=${OPPORTUNIST_SCHEDULER_PORT:-26259}"
  "OPPORTUNIST_KWOK_PORT=${OPPORTUNIST_KWOK_PORT:-26080}"
)

# shard_env K prints the environment of shard K's control plane as
# `export` lines.
shard_env() {
  local k=$1 kv
  if [ "$k" = 1 ]; then
    echo "export OPPORTUNIST_CLUSTER_DIR=$(printf %q "$base_dir")"
  else
    echo "export OPPORTUNIST_CLUSTER_DIR=$(printf %q "$base_dir-shard$k")"
  fi
  for kv in "${base_ports[@]}"; do
    echo "export ${kv%%=*}=$((${kv#*=} + (k - 1) * offset))"
  done
}

started=()
pids=()
cleanup() {
  local pid k
  for pid in "${pids[@]}"; do # a shard still running (interrupted): its go test too
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done
  for k in "${started[@]}"; do
    echo "e2e: stopping the control plane this run started$([ "$shards" = 1 ] || echo " (shard $k)")"
    (eval "$(shard_env "$k")" && "$bindir/cluster" down) || true
  done
  rm -rf "$bindir"
}
trap cleanup EXIT

# Bring up the shards' control planes that are not running, at the same time.
declare -A up_pid=()
for ((k = 1; k <= shards; k++)); do
  if [ "$shards" = 1 ]; then
    # One control plane: the environment's, exactly as before sharding.
    env_k=""
  else
    env_k=$(shard_env "$k")
  fi
  if ! (eval "$env_k" && "$bindir/cluster" status) >/dev/null 2>&1; then
    echo "e2e: local control plane${env_k:+ of shard $k} not running; starting it (hack/cluster up)"
    started+=("$k")
    if [ "$shards" = 1 ]; then
      "$bindir/cluster" up
    else
      (eval "$env_k" && exec "$bindir/cluster" up) >"$E2E_ARTIFACTS/shard-$k-up.log" 2>&1 &
      up_pid[$k]=$!
    fi
  fi
done
for k in "${!up_pid[@]}"; do
  if ! wait "${up_pid[$k]}"; then
    echo "e2e: shard $k's control plane did not come up; its log ($E2E_ARTIFACTS/shard-$k-up.log):" >&2
    cat "$E2E_ARTIFACTS/shard-$k-up.log" >&2
    exit 1
  fi
done

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

if [ "$shards" = 1 ]; then
  eval "$("$bindir/cluster" env)"
  if [ -n "${RUN:-}" ]; then
    args+=(-run "$RUN")
  fi
  go test "${args[@]}"
  exit
fi

# The opportunist binary, built once for all shards (each test process would
# otherwise build it into the same path while another runs it).
if [ -z "${OPPORTUNIST_E2E_BINARY:-}" ]; then
  go build -o "$E2E_ARTIFACTS/opportunist" ./cmd/opportunist
  export OPPORTUNIST_E2E_BINARY="$E2E_ARTIFACTS/opportunist"
fi
# The test binary's packages, compiled once before the shards link it.
go test "${args[@]}" -run '^$' -exec true >/dev/null

# Assign the listed tests: longest first, each to the least loaded shard; a
# group's tests go together. Prints "shard seconds test|test|..." lines.
plan=$(awk -v n="$shards" '
  /^#/ || NF < 2 { next }
  {
    key = (NF >= 3) ? "group " $3 : $1
    if (!(key in dur)) { keys[++m] = key; dur[key] = 0; members[key] = $1 }
    else members[key] = members[key] "|" $1
    dur[key] += $2
  }
  END {
    for (i = 1; i <= m; i++)       # stable selection sort, longest first
      for (j = i + 1; j <= m; j++)
        if (dur[keys[j]] > dur[keys[i]]) { t = keys[i]; keys[i] = keys[j]; keys[j] = t }
    for (s = 1; s <= n; s++) load[s] = 0
    for (i = 1; i <= m; i++) {
      best = 1
      for (s = 2; s <= n; s++) if (load[s] < load[best]) best = s
      load[best] += dur[keys[i]]
      tests[best] = (tests[best] == "") ? members[keys[i]] : tests[best] "|" members[keys[i]]
    }
    for (s = 1; s <= n; s++) printf "%d %d %s\n", s, load[s], tests[s]
  }' hack/e2e-shards.txt)
others=""
while read -r k secs tests; do
  if [ "$k" != 1 ] && [ -n "$tests" ]; then
    others=${others:+$others|}$tests
  fi
done <<<"$plan"
for t in $(awk '!/^#/ && NF >= 2 { print $1 }' hack/e2e-shards.txt); do
  grep -q "^func $t(" test/e2e/*_test.go || echo "e2e: warning: hack/e2e-shards.txt lists $t, which test/e2e does not have"
done

start_all=$(date +%s)
rm -f "$E2E_ARTIFACTS"/shard-*.rc # an earlier run's exit codes
declare -A shard_pid=()
while read -r k secs tests; do
  if [ "$k" = 1 ]; then
    sel=(-skip "^(${others:-^$})\$") # all but the other shards' tests
  elif [ -n "$tests" ]; then
    sel=(-run "^($tests)\$")
  else
    continue
  fi
  echo "e2e: shard $k (${secs} s listed): ${sel[*]}"
  log="$E2E_ARTIFACTS/shard-$k.log"
  (
    eval "$(shard_env "$k")"
    eval "$("$bindir/cluster" env)"
    s=$(date +%s)
    set +e
    go test "${args[@]}" "${sel[@]}" >"$log" 2>&1 &
    test_pid=$!
    # Top-level results as they come, with the shard's name.
    tail -n +1 -f --pid "$test_pid" "$log" 2>/dev/null | sed -un "s/^\(--- \(PASS\|FAIL\|SKIP\)\|ok \|FAIL\|panic:\)/[shard $k] &/p" &
    wait "$test_pid"
    rc=$?
    wait
    echo "$rc $(($(date +%s) - s))" >"$E2E_ARTIFACTS/shard-$k.rc"
  ) &
  shard_pid[$k]=$!
  pids+=("${shard_pid[$k]}")
done <<<"$plan"
for k in "${!shard_pid[@]}"; do
  wait "${shard_pid[$k]}" || true
done
pids=()

# Each shard's whole output, one after the other, then the summary.
failed_shards=0 passed=0 failed=0
summary=""
for k in $(printf '%s\n' "${!shard_pid[@]}" | sort -n); do
  log="$E2E_ARTIFACTS/shard-$k.log"
  echo "===== e2e shard $k: $log ====="
  cat "$log"
  read -r rc secs <"$E2E_ARTIFACTS/shard-$k.rc" || { rc=1 secs=?; }
  p=$(grep -c '^--- PASS' "$log" || true)
  f=$(grep -c '^--- FAIL' "$log" || true)
  if [ "$rc" != 0 ]; then
    failed_shards=$((failed_shards + 1))
    if [ "$f" = 0 ]; then f=1; fi # a panic or timeout names no test
  fi
  passed=$((passed + p)) failed=$((failed + f))
  summary+=$(printf '  shard %d: %3d passed, %d failed, exit %s, %s s (%s)' "$k" "$p" "$f" "$rc" "$secs" "$(grep -m1 "^export OPPORTUNIST_CLUSTER_DIR" <(shard_env "$k") | cut -d= -f2-)")$'\n'
done
echo "e2e: $shards shards in $(($(date +%s) - start_all)) s:"
printf '%s' "$summary"
echo "e2e: $passed passed, $failed failed"
[ "$failed_shards" = 0 ]
exit
}
