# Amber: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO          ?= go
TOOLS       := $(CURDIR)/.tools
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
TEST_TIMEOUT ?= 25m
GO_FILES     = $(shell git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/amber
	$(GO) build -o bin/amber ./cmd/amber

.PHONY: tools
tools: ## install the pinned btcd and MinIO into .tools/, and the Electrum wallet and Chromium with apt-get (skipped when present)
	$(GO) run ./internal/testenv/cmd/tools btcd minio
	@missing=""; for p in electrum chromium; do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing$$missing with apt-get (the real-wallet and status page tests use them)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else echo "missing:$$missing; run 'sudo apt-get install$$missing'" >&2; exit 1; fi; \
	fi

$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

.PHONY: fmt-check
fmt-check: ## fail when a Go file is not gofmt-formatted
	@out=$$(gofmt -l $(GO_FILES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: vet
vet: ## go vet
	$(GO) vet ./...

.PHONY: lint
lint: $(STATICCHECK) ## staticcheck and the project's own rules (internal/lint)
	$(STATICCHECK) ./...
	$(GO) test -count=1 ./internal/lint/

.PHONY: check
check: fmt-check vet lint tools ## everything CI checks: formatting, vet, lint, then all tests
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

.PHONY: test
test: check ## what CI runs (.ci/run): make check

.PHONY: test-short
test-short: ## unit tests only, no real components
	$(GO) test -short ./...

# WORKLOAD=small writes bench/ and the README's table; any other workload
# writes bench/<workload>/ only. BENCH_NOTE is printed above the table.
# Indented lines are test logs, which name local paths: the terminal shows
# them, results.txt leaves them out.
WORKLOAD      ?= small
BENCH_WALLETS ?= 1000
BENCH_NOTE    ?=
BENCH_TIMEOUT ?= 3h

.PHONY: bench
bench: tools ## run the benchmarks on WORKLOAD (small; large by hand) and write results.{txt,json,md,svg} in bench/ and the README table
	@out=bench; readme=README.md; if [ "$(WORKLOAD)" != small ]; then out=bench/$(WORKLOAD); readme=; fi; \
	mkdir -p $$out; set -o pipefail; \
	{ echo "# make bench WORKLOAD=$(WORKLOAD), $$(date -u +%Y-%m-%dT%H:%MZ), $$(nproc) cores"; \
	  AMBER_BENCH_WORKLOAD=$(WORKLOAD) AMBER_BENCH_WALLETS=$(BENCH_WALLETS) $(GO) test -count=1 -p 1 -timeout $(BENCH_TIMEOUT) \
	    -run '^$$' -bench 'BenchmarkBuilder|BenchmarkServer' -benchtime 1x ./builder/ ./server/ 2>&1 && \
	  $(GO) test -count=1 -run '^$$' -bench . -benchmem ./internal/chain/ ./internal/store/ ./server/rpc/ 2>&1; } \
	  | tee /dev/stderr | grep -v '^    ' > $$out/results.txt && \
	$(GO) run ./internal/testenv/cmd/benchreport -in $$out/results.txt -out $$out -workload $(WORKLOAD) \
	  $${readme:+-readme $$readme} -note "$(BENCH_NOTE)" && echo "wrote $$out/results.{txt,json,md,svg}"

.PHONY: demo
demo: tools ## run a local regtest chain, builder, snapshot and server
	$(GO) run ./cmd/amber demo
