#!/usr/bin/env bash
# `make record`: the recordings on the local control plane that CI does not
# run. The calibration e2e (TestCalibrationOpportunist, TestCalibrationHPA)
# writes real.csv and sim.csv, copied to docs/data/calibration-*.csv and
# drawn into docs/img/calibration.png; the 5-minute HPA recordings
# (TestHPAObjectMetricSeed, TestHPAExternalDesiredReplicas) write the
# replicas.csv files of docs/hpa.md, copied to docs/data/hpa-*.csv. RECORD
# (a test regex) narrows the run, e.g. RECORD=TestCalibration. Data of a run
# whose test failed is copied too (it is what was measured) and the exit
# code is the tests'.
set -uo pipefail
cd "$(dirname "$0")/.."

out=_output/record
rm -rf "$out"
status=0
E2E_TAGS=e2e,record OPPORTUNIST_E2E_RECORD=1 E2E_ARTIFACTS="$PWD/$out" \
  RUN="${RECORD:-TestCalibrationOpportunist\$|TestCalibrationHPA\$|TestHPAObjectMetricSeed\$|TestHPAExternalDesiredReplicas\$}" \
  hack/e2e.sh || status=$?

copy() { # test file destination
  if [ -f "$out/$1/$2" ]; then cp "$out/$1/$2" "docs/data/$3" && echo "record: docs/data/$3"; fi
}
copy TestCalibrationOpportunist real.csv calibration-opportunist-real.csv
copy TestCalibrationOpportunist sim.csv calibration-opportunist-sim.csv
copy TestCalibrationHPA real.csv calibration-hpa-real.csv
copy TestCalibrationHPA sim.csv calibration-hpa-sim.csv
copy TestHPAObjectMetricSeed replicas.csv hpa-seed-object-metric.csv
copy TestHPAExternalDesiredReplicas replicas.csv hpa-external-desired-replicas.csv

if [ -f docs/data/calibration-opportunist-real.csv ] && [ -f docs/data/calibration-hpa-real.csv ]; then
  go run ./hack/calibplot -o docs/img/calibration.png \
    "opportunist: sample app 2 → 17 at 20 s → 2 at 40 s=docs/data/calibration-opportunist-real.csv,docs/data/calibration-opportunist-sim.csv" \
    "the write-up's HPA (10 s sync, 30 s downscale stabilisation), constant paid load=docs/data/calibration-hpa-real.csv,docs/data/calibration-hpa-sim.csv" &&
    echo "record: docs/img/calibration.png"
fi
if [ -f "$out/TestHPAObjectMetricSeed/replicas.csv" ] && [ -f "$out/TestHPAExternalDesiredReplicas/replicas.csv" ]; then
  go run ./hack/hpaplot -o docs/img/hpa-comparison.png \
    "seed HPA (Object metric, Value 30000)=docs/data/hpa-seed-object-metric.csv" \
    "HPA on opportunist_desired_replicas (AverageValue 1)=docs/data/hpa-external-desired-replicas.csv" &&
    echo "record: docs/img/hpa-comparison.png"
fi
exit $status
