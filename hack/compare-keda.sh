#!/usr/bin/env bash
# `make compare-keda`: the side-by-side of docs/keda.md, not in CI. The e2e
# TestCompareKEDA plays the seed run's burst under the write-up's pipeline
# (Prometheus + KEDA's prometheus trigger), opportunist writing /scale and
# opportunist through KEDA's external trigger, one after the other, and
# writes samples.csv and run.json per pipeline; they are copied to
# docs/data/compare-keda-<pipeline>.{csv,json}, and hack/comparekeda writes
# the tables into docs/keda.md and draws docs/img/compare-keda.png. Nothing
# is copied unless all three ran: one table, one run.
set -euo pipefail
cd "$(dirname "$0")/.."

out=_output/compare-keda
rm -rf "$out"
E2E_TAGS=e2e,record E2E_ARTIFACTS="$PWD/$out" RUN='TestCompareKEDA$' hack/e2e.sh

for p in writeup direct keda-external; do
  for f in samples.csv run.json; do
    test -f "$out/TestCompareKEDA_$p/$f" || { echo "compare-keda: $out/TestCompareKEDA_$p/$f missing"; exit 1; }
  done
done
for p in writeup direct keda-external; do
  cp "$out/TestCompareKEDA_$p/samples.csv" "docs/data/compare-keda-$p.csv"
  cp "$out/TestCompareKEDA_$p/run.json" "docs/data/compare-keda-$p.json"
  echo "compare-keda: docs/data/compare-keda-$p.{csv,json}"
done
go run ./hack/comparekeda -data docs/data -doc docs/keda.md -plot docs/img/compare-keda.png
echo "compare-keda: docs/keda.md (between the compare-keda markers), docs/img/compare-keda.png"
