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

.PHONY: bench
bench: tools ## run the benchmarks and write bench/results.txt (sync rates on the generated chain, parsing, store, rpc)
	@mkdir -p bench
	@set -o pipefail; { echo "# make bench, $$(date -u +%Y-%m-%dT%H:%MZ), $$(nproc) cores"; \
	  $(GO) test -run '^$$' -bench 'BenchmarkSync|BenchmarkBootstrap' -benchtime 1x ./builder/ && \
	  $(GO) test -run '^$$' -bench . -benchmem ./internal/chain/ ./internal/store/ ./server/rpc/; } \
	  | grep -v '^    ' | tee bench/results.txt # indented lines are test logs, with local paths

SOAK_DURATION ?= 20m
.PHONY: soak
soak: tools ## the long reliability run (SOAK_DURATION, default 20m): kills, faults, every fuzz target; summary in reliability/SOAK.md
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -count=1 -timeout 7h ./reliability/; \
	status=$$?; cat reliability/SOAK.md 2>/dev/null; exit $$status

.PHONY: demo
demo: tools ## run a local regtest chain, builder, snapshot and server
	$(GO) run ./cmd/amber demo
