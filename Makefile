# Targets the README uses. Everything a fresh machine needs beyond Go and Rust is built here.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all assets test unit lint fmt crds bench example

all: lint test

## Build (or reuse) the kube-apiserver and etcd binaries the tests run.
assets:
	@hack/envtest/assets.sh >/dev/null

## Every test: unit, property, mocked and real control planes.
test: assets
	KUBEBUILDER_ASSETS="$$(hack/envtest/assets.sh 2>/dev/null)" $(CARGO) test --workspace --all-targets

## Pure and mocked tests only (no control planes).
unit:
	$(CARGO) test -p federation-core -p fedctl

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate the committed CRDs from the Rust types.
crds:
	$(CARGO) run -q -p fedctl -- crd > deploy/crds/fednet.io.yaml

## Planner benchmarks (criterion).
bench:
	$(CARGO) bench -p federation-core --bench planner

## Plan the example network offline.
example:
	$(CARGO) run -q -p fedctl -- plan -f examples/three-clusters
