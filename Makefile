# sluice: see README.md. Every target stops at the first failure.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

GO       ?= go
# Integration tests start one control plane per package; on a 2-core machine
# two at once is the most that stays quick.
TEST_FLAGS ?= -count=1 -timeout 30m
FUZZTIME ?= 60s

.PHONY: all build image release version version-set tools generate manifests test unit bench simulate load chaos demo demo-down fuzz lint clean

all: lint build test

# The version every build carries: git describe (a v tag, or the commit),
# unless VERSION=v1.2.3 says otherwise. Builds are static and reproducible:
# they carry the commit's time, not the build's (internal/release).
VERSION ?=
RELEASE = $(GO) run ./hack/release $(if $(VERSION),--version $(VERSION))

## build: every sluice binary (webhook, shifter, kubectl-sluice, sluice-loadtester, gencert) for this machine, stamped with the version, into bin/
build:
	$(RELEASE) binaries --out bin

## image: the image (linux/amd64 and linux/arm64; webhook, shifter, sluice-loadtester) as an OCI layout and archives in dist/image, built without pulling anything; IMAGE_REPO and IMAGE_TAG override the chart's repository and the version
IMAGE_REPO ?=
IMAGE_TAG ?=
image:
	$(RELEASE) image --out dist/image $(if $(IMAGE_REPO),--repo $(IMAGE_REPO)) $(if $(IMAGE_TAG),--tag $(IMAGE_TAG))

## release: dist/ for the chart's version (tag the commit, or VERSION=): binaries for linux and darwin on amd64 and arm64, the image, kubectl-sluice's archives and krew manifest, the packaged chart, install.yaml and SHA256SUMS
release: tools
	rm -rf dist
	$(RELEASE) dist --out dist
	$$(test/tools/install.sh --print-bin-dir)/helm package deploy/chart --destination dist
	$(RELEASE) repack dist/sluice-*.tgz
	$$(test/tools/install.sh --print-bin-dir)/helm show chart dist/sluice-*.tgz >/dev/null
	deploy/render.sh >dist/install.yaml
	$(RELEASE) checksums dist

## version: print the version a build would carry
version:
	@$(RELEASE) version

## version-set: make VERSION (v1.2.3) the chart's version and appVersion, and render deploy/install.yaml with it
version-set: tools
	@[[ "$(VERSION)" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$$ ]] || { echo "version-set: VERSION=$(VERSION) is not a version such as v1.2.3"; exit 1; }
	sed -i -e 's/^version: .*/version: $(VERSION:v%=%)/' -e 's/^appVersion: .*/appVersion: "$(VERSION)"/' deploy/chart/Chart.yaml
	deploy/render.sh >deploy/install.yaml

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
	$(GO) test $(TEST_FLAGS) ./pkg/... ./certs/... ./internal/... ./hack/...

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
	rm -rf bin/ dist/
