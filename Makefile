# sluice: see README.md. Every target stops at the first failure.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

GO       ?= go
# Integration tests start one control plane per package; on a 2-core machine
# two at once is the most that stays quick.
TEST_FLAGS ?= -count=1 -timeout 30m
FUZZTIME ?= 60s

.PHONY: all build tools generate manifests test unit bench simulate load chaos demo demo-down fuzz lint clean

all: lint build test

## build: the sluice binaries (webhook, shifter, kubectl-sluice, sluice-loadtester), into bin/; VERSION=v0.1.0 stamps their --version
VERSION ?=
build:
	$(GO) build $(if $(VERSION),-ldflags "-X sluice.dev/sluice/pkg/version.Version=$(VERSION)") -o bin/ ./cmd/...

## tools: the control plane, kubectl, kwok, Prometheus, helm and istio-validate (Istio's own validation), built from pinned modules (first run: several minutes)
tools:
	test/tools/install.sh

## generate: the Canary CRD (deploy/chart/crds) and deep-copy functions from pkg/canary
## (a percentage as a JSON number is why floats are allowed; test/generate checks they are fresh)
generate: tools
	$$(test/tools/install.sh --print-bin-dir)/controller-gen object paths=./pkg/canary/... \
		crd:crdVersions=v1,allowDangerousTypes=true output:crd:dir=deploy/chart/crds

## manifests: deploy/install.yaml, rendered from the chart (test/generate checks it is fresh)
manifests: tools
	deploy/render.sh >deploy/install.yaml

## test: unit and integration tests against the local control plane
test: tools
	$(GO) test $(TEST_FLAGS) ./...
	cd test/tools/istio && $(GO) test $(TEST_FLAGS) ./...

## unit: the tests that need no control plane
unit:
	$(GO) test $(TEST_FLAGS) ./pkg/... ./certs/...

## bench: every benchmark, with allocations; API-server latency over 1,000 updates; one lesson rollout
bench: tools
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...
	$(GO) test -run '^$$' -bench . -benchtime=1000x ./test/webhook/
	$(GO) test -run '^$$' -bench . -benchtime=1x ./test/shifter/

## simulate: 10,000 seeded rollouts per row through the shifter's decision function and Flagger's threshold rule, on the same traffic (SIM_FLAGS, e.g. --rollouts 1000 --seed 1)
SIM_FLAGS ?=
simulate:
	$(GO) run ./test/simulate $(SIM_FLAGS)

## load: N canaries rolling out at once (LOAD_CANARIES, default 1,10,1000; LOAD_FLAGS, e.g. --custom-check): step lag, time to Succeeded, shifter CPU and RSS, API requests per rollout, Prometheus queries per second
LOAD_CANARIES ?= 1,10,1000
LOAD_FLAGS ?=
load: tools
	$(GO) run ./test/load --canaries $(LOAD_CANARIES) $(LOAD_FLAGS)

## chaos: 30 canaries updated at random (new, bad, mid-analysis, undo, cancel, skip-analysis, opt-out, scale) while 50+ faults are injected, until 200 rollouts; checks sluice's invariants (CHAOS_FLAGS, e.g. --seed 42)
CHAOS_FLAGS ?=
chaos: tools
	$(GO) run ./test/chaos $(CHAOS_FLAGS)

## demo: the Jenkins X canary lesson with sluice, on a local control plane (DEMO_INTERVAL, default 10s; DEMO_ROUTER=gateway-api; DEMO_KEEP=0 tears down at the end)
demo: tools
	$(GO) run ./test/demo

## demo-down: stop a demo that keeps running
demo-down:
	$(GO) run ./test/demo down

## fuzz: fuzz the webhook handler and decision for FUZZTIME each (make test runs their seeds)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzHandle$$' -fuzztime $(FUZZTIME) ./pkg/mutate/
	$(GO) test -run '^$$' -fuzz '^FuzzDecide$$' -fuzztime $(FUZZTIME) ./pkg/mutate/

## lint: gofmt, go vet, staticcheck
lint: tools
	@unformatted=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [[ -n "$$unformatted" ]]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$$(test/tools/install.sh --print-bin-dir)/staticcheck ./...

clean:
	rm -rf bin/
