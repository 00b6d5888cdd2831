# hub-operator: build, test and run. `make help` lists the targets.
#
# Every tool and control-plane binary is built from the Go module proxy into
# bin/ by test/tools/build.sh, pinned by the go.mod of its tools module under
# test/tools/, and stamped so that a second `make` rebuilds nothing.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := build

BIN ?= $(CURDIR)/bin
export PATH := $(BIN):$(PATH)
GO ?= go
GOTEST_FLAGS ?= -race -count=1 -timeout 60m
CONTROLLER_GEN := $(BIN)/controller-gen
GOLANGCI_LINT := $(BIN)/golangci-lint
CRD_TEMPLATE := charts/hub-operator/templates/crds/myresources.example.com.yaml

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(BIN)/.stamps/controller-gen ## Generate the CRD into the chart (as a Helm template).
	test/tools/gen-crd.sh $(CONTROLLER_GEN) $(CRD_TEMPLATE)

.PHONY: generate
generate: $(BIN)/.stamps/controller-gen ## Generate deepcopy code for api/.
	$(CONTROLLER_GEN) object paths=./api/...

.PHONY: fmt
fmt: ## Run go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: lint
lint: $(BIN)/.stamps/golangci-lint ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: lint-fix
lint-fix: $(BIN)/.stamps/golangci-lint ## Run golangci-lint and fix what it can.
	$(GOLANGCI_LINT) run --fix ./...

.PHONY: helm-lint
helm-lint: $(BIN)/.stamps/helm ## Lint the chart and render it with default and non-default values.
	$(BIN)/helm lint charts/hub-operator
	$(BIN)/helm template t charts/hub-operator -n hub-system > /dev/null
	$(BIN)/helm template t charts/hub-operator -n hub-system --set replicaCount=1,crds.install=false,leaderElection.enabled=false,metrics.enabled=false,registryNamespace=registry > /dev/null
	$(BIN)/helm template t charts/hub-operator -n hub-system --set metrics.serviceMonitor.enabled=true,operator.extraArgs[0]=--zap-devel > /dev/null
	$(BIN)/helm template t charts/hub-operator -n hub-system --set dashboards.enabled=true,prometheusRule.enabled=true > /dev/null

.PHONY: verify
verify: generate manifests ## Fail when generated code or the CRD is stale.
	git diff --exit-code -- api/ charts/

.PHONY: test-unit
test-unit: ## Run every test that needs no control plane (the fast loop: under a minute; control-plane tests skip under -short).
	$(GO) test -short -count=1 ./...

.PHONY: test
test: control-plane $(BIN)/.stamps/controller-gen $(BIN)/.stamps/helm ## Run unit, integration, chart and e2e tests on real control planes (prints the time per package).
	GO=$(GO) test/run-tests.sh $(GOTEST_FLAGS)

.PHONY: test-faults
test-faults: control-plane $(BIN)/.stamps/controller-gen $(BIN)/.stamps/helm ## Run the fault-and-abuse suite (part of make test), one package at a time.
	$(GO) test $(GOTEST_FLAGS) -p 1 ./test/faults/...

##@ Build

.PHONY: build
build: ## Build the hub-operator binary.
	$(GO) build -o $(BIN)/hub-operator ./cmd/hub-operator

# The image holds the static binary for IMAGE_ARCH (linux) only; its tag
# defaults to the chart's appVersion, the tag the chart deploys by default.
IMAGE_TAR ?= $(BIN)/hub-operator-image.tar
IMAGE_TAG ?= hub-operator:$(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' charts/hub-operator/Chart.yaml)
IMAGE_ARCH ?= $(shell $(GO) env GOARCH)

.PHONY: image
image: ## Build the container image without docker into bin/hub-operator-image.tar (docker/podman load, crane push).
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/image/hub-operator ./cmd/hub-operator
	cd test/tools/image && env -u GOOS -u GOARCH $(GO) run . --binary $(BIN)/image/hub-operator --out $(IMAGE_TAR) --tag $(IMAGE_TAG) --arch $(IMAGE_ARCH)

.PHONY: run
run: build ## Run the operator against the hub in KUBECONFIG.
	$(BIN)/hub-operator --leader-elect=false --metrics-bind-address=0

.PHONY: demo
demo: control-plane ## Run the main job on local control planes (DEMO_ONCE=1 exits once Ready).
	DEMO_ONCE=$(DEMO_ONCE) $(GO) run ./test/demo

# The benchmark takes the machine for a while (the full run: 35 minutes on 2
# idle cores, an hour when they are shared), so it is not part of `make test`; BENCH_QUICK=1 runs scenario (a)
# alone in a few minutes. The scaling plot goes next to BENCH_OUT.
BENCH_OUT ?= $(BIN)/bench/results.json
BENCH_QUICK ?=

.PHONY: bench
bench: control-plane ## Benchmark the operator against a client-go baseline on local control planes (BENCH_QUICK=1: scenario a only; JSON in BENCH_OUT).
	BENCH_OUT=$(BENCH_OUT) BENCH_QUICK=$(BENCH_QUICK) $(GO) run ./test/bench

##@ Tools

.PHONY: control-plane
control-plane: $(BIN)/.stamps/etcd $(BIN)/.stamps/k8s $(BIN)/.stamps/kwok ## Build kube-apiserver, etcd, kwok & co. into bin/ (cold: ~17 min).

.PHONY: tools
tools: control-plane $(BIN)/.stamps/controller-gen $(BIN)/.stamps/golangci-lint $(BIN)/.stamps/helm ## Build every pinned tool.

# A stamp is rebuilt when its tools module's pins change; build.sh itself
# compares a hash, so a touched-but-unchanged go.mod costs nothing.
$(BIN)/.stamps/%: test/tools/%/go.mod test/tools/%/go.sum test/tools/build.sh
	test/tools/build.sh test/tools/$* $(BIN)
	@touch $@
