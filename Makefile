# opportunist — `make help` lists the targets.
SHELL := bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/opportunist/opportunist/internal/version.Version=$(VERSION)
RUN ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-17s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# make demo's build: demo, simulate and version without the Kubernetes client,
# controller and API server libraries (cmd/opportunist/build_test.go keeps it so).
# Its numbers (docs/build.md): go list -deps -tags nocluster ./cmd/opportunist | wc -l;
# GOCACHE=$(mktemp -d) /usr/bin/time -v go build -tags nocluster ./cmd/opportunist
DEMO_TAGS := nocluster

.PHONY: demo
demo: ## The main job: a simulated cluster filling and yielding, live at http://127.0.0.1:8090/
	@echo "demo: building bin/opportunist-demo (demo and simulate, no cluster libraries): the first build compiles 371 packages, about 60-70 CPU-seconds, 32 s on 2 idle cores, more while modules download; then seconds"
	@$(GO) build -tags $(DEMO_TAGS) -ldflags "$(LDFLAGS)" -o bin/opportunist-demo ./cmd/opportunist
	@echo "demo: starting; open the URL it prints"
	bin/opportunist-demo demo

.PHONY: try
try: ## The product on a local control plane: fake nodes, paid load, a worker and its scaler, opportunist run and its dashboard (then hack/try.sh burst)
	hack/try.sh

.PHONY: build
build: ## Build bin/opportunist, every command (make demo builds bin/opportunist-demo: demo and simulate only)
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/opportunist ./cmd/opportunist

.PHONY: examples
examples: ## Build the examples, static: bin/sample-metrics-app, bin/worker and bin/load (see examples/seed, examples/seed-keda)
	CGO_ENABLED=0 $(GO) build -o bin/ ./examples/sample-metrics-app ./examples/worker ./examples/load

.PHONY: plugin
plugin: build ## Build bin/kubectl-opportunist and its completion bin/kubectl_complete-opportunist (put bin on PATH: kubectl opportunist status)
	cp bin/opportunist bin/kubectl-opportunist
	install -m 0755 hack/kubectl_complete-opportunist bin/kubectl_complete-opportunist

.PHONY: check
check: ## The fast tests, in about a minute: gofmt, go vet (e2e tag too), unit tests without -race or the long ones (-short); no control plane, no tools beyond Go (make test adds promtool's lint)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags nocluster ./...
	$(GO) vet -tags e2e ./test/e2e
	$(GO) test -short -count=1 -skip '^TestPromtoolLint$$' ./...

.PHONY: test
test: lint unit e2e ## The full suite, as CI runs it: lint, unit tests with -race, end-to-end tests on 3 real control planes at once (17 min warm by .ci/run: README)

.PHONY: unit
unit: ## Unit tests with the race detector (TestImage builds the static binary cold: allow it more than go test's default 10 min)
	$(GO) test -race -count=1 -timeout 30m ./...

.PHONY: e2e
e2e: ## End-to-end tests on E2E_SHARDS (3) local control planes at once (brought up if needed; hack/e2e.sh); RUN=<regex> selects tests, run on one
	RUN='$(value RUN)' hack/e2e.sh

.PHONY: keda
keda: ## Build KEDA v2.21.0's operator and metrics server for the KEDA e2e tests, once (cached like the control plane; about 7 min of two idle cores the first time, then 0.3 s)
	$(GO) run ./hack/cluster keda >/dev/null

.PHONY: metrics-server
metrics-server: ## Build metrics-server v0.8.0 for the reclaim e2e tests, once (cached like the control plane; about 6 CPU-minutes the first time, hack/cluster/README.md)
	$(GO) run ./hack/cluster metrics-server >/dev/null

.PHONY: record
record: ## Recordings on the local control plane, not in CI: the calibration (docs/data/calibration-*.csv, docs/img/calibration.png) and the 5-minute HPA runs of docs/hpa.md; RECORD=<regex> selects tests
	RECORD='$(value RECORD)' hack/record.sh

.PHONY: compare-keda
compare-keda: ## Side by side on one burst, not in CI: the write-up's pipeline (Prometheus + KEDA), opportunist direct, opportunist through KEDA; the table of docs/keda.md and docs/img/compare-keda.png (about 8 min once KEDA is built)
	hack/compare-keda.sh

.PHONY: e2e-scale
e2e-scale: ## Scale test, not in CI: 1,000 kwok nodes, 30,000 pods (SCALE_NODES, SCALE_PODS); see docs/scale.md
	hack/e2e-scale.sh

.PHONY: e2e-apiload
e2e-apiload: ## API requests a minute by opportunist in steady churn with 1, 10, 100 scalers (audit log), not in CI; see docs/scale.md
	SCALE_TEST=TestAPILoad hack/e2e-scale.sh

.PHONY: bench
bench: ## Benchmarks of the hot paths at 5,000 nodes / 150,000 pods
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

.PHONY: slots
slots: ## Headroom slots vs cpu: 16 on the web-* scenarios (three weeks each): the table in docs/slots.md and docs/img/slots.png
	$(GO) run ./hack/slots -doc docs/slots.md -plot docs/img/slots.png

.PHONY: lint
lint: verify-generate verify-manifests chart-lint vulncheck ## gofmt, go vet (including the e2e build tag), generated files and manifests current, chart lint, govulncheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags nocluster ./...
	$(GO) vet -tags e2e ./test/e2e
	$(GO) vet -tags e2e,scale ./test/e2e
	$(GO) vet -tags e2e,record ./test/e2e

.PHONY: generate
generate: ## Regenerate CRD deepcopy code and manifests (config/crd) from api/ with controller-gen, and the KEDA external scaler's gRPC stubs with protoc (Debian's protobuf-compiler)
	$(GO) tool -modfile=hack/tools/go.mod controller-gen object:headerFile="" paths=./api/... crd:maxDescLen=400 output:crd:artifacts:config=config/crd
	@command -v protoc >/dev/null || { echo "generate: protoc not found: apt-get install protobuf-compiler (.ci/run does)"; exit 1; }
	@mkdir -p _output/protoc-plugins
	$(GO) build -modfile=hack/tools/go.mod -o _output/protoc-plugins/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
	PATH="$(CURDIR)/_output/protoc-plugins:$$PATH" protoc --proto_path=internal/keda/externalscaler \
	  --go_out=internal/keda/externalscaler --go_opt=paths=source_relative \
	  --go-grpc_out=internal/keda/externalscaler --go-grpc_opt=paths=source_relative \
	  externalscaler.proto

.PHONY: verify-generate
verify-generate: generate ## Fail when generated files differ from the committed ones
	@git diff --exit-code -- api config internal/keda || { echo "generated files are stale: run make generate and commit"; exit 1; }

HELM := $(GO) tool -modfile=hack/tools/go.mod helm
CHART := charts/opportunist
# rendered file => values file; the release is "opportunist" in namespace "opportunist".
MANIFESTS := deploy/opportunist.yaml=deploy/values/opportunist.yaml \
	deploy/opportunist-metrics-api.yaml=deploy/values/opportunist-metrics-api.yaml \
	test/e2e/testdata/install.yaml=test/e2e/testdata/install-values.yaml

.PHONY: manifests
manifests: ## Copy the CRD into the chart and render deploy/*.yaml from it with helm
	cp config/crd/opportunist.io_opportunisticscalers.yaml $(CHART)/crds/
	@set -e; for m in $(MANIFESTS); do out=$${m%%=*}; values=$${m#*=}; \
	  { echo "# Generated by make manifests: helm template $(CHART) with $$values. Do not edit."; \
	    $(HELM) template opportunist $(CHART) --namespace opportunist --include-crds -f $$values; } > $$out.tmp; \
	  mv $$out.tmp $$out; echo "rendered $$out"; done

.PHONY: verify-manifests
verify-manifests: manifests ## Fail when the chart's CRD or the rendered manifests differ from the committed ones
	@git diff --exit-code -- $(CHART)/crds deploy test/e2e/testdata \
	  && test -z "$$(git ls-files --others --exclude-standard -- $(CHART)/crds deploy test/e2e/testdata)" \
	  || { echo "manifests are stale: run make manifests and commit"; exit 1; }

.PHONY: chart-lint
chart-lint: ## helm lint --strict and helm template of the chart with each of its ci/*-values.yaml
	@set -e; for v in $(CHART)/ci/*-values.yaml; do \
	  echo "chart-lint: $$v"; \
	  $(HELM) lint --strict $(CHART) -f $$v --namespace opportunist >/dev/null; \
	  $(HELM) template opportunist $(CHART) --namespace opportunist --include-crds -f $$v >/dev/null; done

.PHONY: vulncheck
vulncheck: ## govulncheck ./... on go1.27.3 with an offline database from golang.org/x/vulndb (fails on a reachable vulnerability)
	GO=$(GO) hack/vulncheck.sh

IMAGE_REPOSITORY ?= ghcr.io/opportunist/opportunist
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
# go1.27.3 for the release binary: its standard library has fixes go1.26.8 lacks.
IMAGE_GO ?= go1.27.3

.PHONY: image
image: ## Build the container image without a Docker engine into _output/image (OCI layout + docker load tarballs)
	GOTOOLCHAIN=$(IMAGE_GO) SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) $(GO) run ./hack/image -version '$(VERSION)' \
	  -revision "$$(git rev-parse HEAD)" -repository $(IMAGE_REPOSITORY) -platforms $(IMAGE_PLATFORMS) \
	  -ldflags '$(LDFLAGS)' -out _output/image

.PHONY: cluster-up
cluster-up: ## Start the local control plane (the first time builds it: about 9 min on 2 cores, see hack/cluster/README.md; then seconds)
	$(GO) run ./hack/cluster up

.PHONY: cluster-down
cluster-down: ## Stop the local control plane
	$(GO) run ./hack/cluster down

.PHONY: clean
clean: ## Remove build outputs
	rm -rf bin _output
