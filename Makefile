# Targets the README uses. Everything a fresh machine needs beyond Go and Rust is built here.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all assets submariner-assets tools headscale prism demo test test-scale unit lint fmt crds chart-crds bench bench-e2e example

all: lint test

## Build (or reuse) the kube-apiserver and etcd binaries the tests run.
assets:
	@hack/envtest/assets.sh >/dev/null

## Build (or reuse) the real Submariner operator and Lighthouse agent the Submariner tests run
## (about 6 minutes cold on two cores; cached next to the envtest assets afterwards).
submariner-assets:
	@hack/submariner/assets.sh >/dev/null

## Install the tools the tests use that a fresh machine lacks (helm), into hack/bin.
tools:
	@hack/tools.sh >/dev/null

## Build (or reuse) the Headscale server the SD-WAN backend's tests run (about 100 s cold).
headscale:
	@hack/headscale/build.sh >/dev/null

## Install (or reuse) Prism, the OpenAPI-validating proxy of the flexiManage contract tests.
prism:
	@hack/prism/install.sh >/dev/null

## The demo: a hub and 3 member control planes, the operator, a Skupper network converging.
## DEMO_ARGS="--members 8 --measure-rest-secs 60" for a bigger network and at-rest figures;
## DEMO_ARGS="--backend submariner" for a Submariner network with the real Submariner operator
## and Lighthouse agents (root; builds them on first use);
## DEMO_ARGS="--sdwan headscale" runs the network over a real Headscale with Tailscale edges
## (built on first use).
demo: assets
	@if [[ "$(DEMO_ARGS)" == *--sdwan* ]]; then hack/headscale/build.sh >/dev/null; fi
	$(CARGO) build -q -p federation-operator
	KUBEBUILDER_ASSETS="$$(hack/envtest/assets.sh 2>/dev/null)" $(CARGO) run -q -p fednet-demo -- $(DEMO_ARGS)

## Every test: unit, property, mocked and real control planes. The operator tests run its
## binary, built first (they would build it themselves otherwise).
test: assets submariner-assets tools headscale prism
	$(CARGO) build -q -p federation-operator
	KUBEBUILDER_ASSETS="$$(hack/envtest/assets.sh 2>/dev/null)" SUBMARINER_ASSETS="$$(hack/submariner/assets.sh 2>/dev/null)" $(CARGO) test --workspace --all-targets

## Only the 33-cluster start of the test kit (part of `make test` too); prints its start time
## and the resident memory of the kit's processes. About 10 GiB and 2-4 minutes on two cores.
test-scale: assets
	KUBEBUILDER_ASSETS="$$(hack/envtest/assets.sh 2>/dev/null)" $(CARGO) test -p federation-testkit --test thirty_three_clusters -- --nocapture

## Pure and mocked tests only (no control planes).
unit:
	$(CARGO) test -p federation-core -p fedctl

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate the committed CRDs from the Rust types (and the Helm chart's copy).
crds:
	$(CARGO) run -q -p fedctl -- crd > deploy/crds/fednet.io.yaml
	$(MAKE) chart-crds

## Copy the CRDs into the Helm chart (a test fails when the copies differ).
chart-crds:
	cp deploy/crds/fednet.io.yaml deploy/helm/fednet-operator/crds/fednet.io.yaml

## Planner benchmarks (criterion).
bench:
	$(CARGO) bench -p federation-core --bench planner

## End-to-end benchmark (not part of `make test`): real control planes, the operator's release
## build with production timings; prints the tables and writes target/bench-e2e.md. Its parts
## took 28 + 10 + 6 minutes on the loaded shared 2-core machine (less when idle); up to ~7 GiB.
## Limit it while developing, e.g.
## BENCH_SIZES=3,8 BENCH_SKIP=memory,simulate make bench-e2e (see README, Performance at scale).
BENCH_TARGET_DIR = $${CARGO_TARGET_DIR:-target}
bench-e2e: assets
	$(CARGO) build --release -q -p federation-operator -p fednet-bench
	KUBEBUILDER_ASSETS="$$(hack/envtest/assets.sh 2>/dev/null)" FEDNET_OPERATOR_BIN="$$(realpath $(BENCH_TARGET_DIR)/release/federation-operator)" $(BENCH_TARGET_DIR)/release/fednet-bench

## Plan the example network offline.
example:
	$(CARGO) run -q -p fedctl -- plan -f examples/three-clusters
