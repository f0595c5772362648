# opportunist — `make help` lists the targets.
SHELL := bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/opportunist/opportunist/internal/version.Version=$(VERSION)
RUN ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: demo
demo: ## The main job: a simulated cluster filling and yielding, live at http://127.0.0.1:8090/
	$(GO) run ./cmd/opportunist demo

.PHONY: try
try: ## Run opportunist on a local control plane holding the write-up's cluster (no cluster needed)
	hack/try.sh

.PHONY: build
build: ## Build bin/opportunist
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/opportunist ./cmd/opportunist

.PHONY: plugin
plugin: build ## Build bin/kubectl-opportunist (put it on PATH: kubectl opportunist status)
	cp bin/opportunist bin/kubectl-opportunist

.PHONY: test
test: lint unit e2e ## Everything CI runs: lint, unit tests with -race, end-to-end tests

.PHONY: unit
unit: ## Unit tests with the race detector
	$(GO) test -race -count=1 ./...

.PHONY: e2e
e2e: ## End-to-end tests on a local control plane (brought up if needed); RUN=<regex> selects tests
	RUN='$(RUN)' hack/e2e.sh

.PHONY: e2e-scale
e2e-scale: ## Scale test, not in CI: 1,000 kwok nodes, 30,000 pods (SCALE_NODES, SCALE_PODS); see docs/scale.md
	hack/e2e-scale.sh

.PHONY: bench
bench: ## Benchmarks of the hot paths at 5,000 nodes / 150,000 pods
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

.PHONY: lint
lint: verify-generate ## gofmt, go vet (including the e2e build tag), generated files current
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e
	$(GO) vet -tags e2e,scale ./test/e2e

.PHONY: generate
generate: ## Regenerate CRD deepcopy code and manifests (config/crd) from api/ with controller-gen
	$(GO) tool -modfile=hack/tools/go.mod controller-gen object:headerFile="" paths=./api/... crd:maxDescLen=400 output:crd:artifacts:config=config/crd

.PHONY: verify-generate
verify-generate: generate ## Fail when generated files differ from the committed ones
	@git diff --exit-code -- api config || { echo "generated files are stale: run make generate and commit"; exit 1; }

.PHONY: cluster-up
cluster-up: ## Start the local control plane (builds it the first time, ~5 min)
	$(GO) run ./hack/cluster up

.PHONY: cluster-down
cluster-down: ## Stop the local control plane
	$(GO) run ./hack/cluster down

.PHONY: clean
clean: ## Remove build outputs
	rm -rf bin _output
