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
tools: ## install the pinned btcd and MinIO into .tools/, and the Electrum wallet, Chromium, systemd-analyze, HAProxy and Bitcoin Core's runtime libraries with apt-get (skipped when present)
	$(GO) run ./internal/testenv/cmd/tools btcd minio
	@missing=""; for p in electrum:electrum chromium:chromium systemd-analyze:systemd haproxy:haproxy; do \
		command -v $${p%%:*} >/dev/null || missing="$$missing $${p#*:}"; done; \
	command -v dpkg-query >/dev/null && for p in libzmq5 libevent-extra-2.1-7 libevent-pthreads-2.1-7; do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing$$missing with apt-get (the real-wallet, status page, systemd unit, fleet and Bitcoin Core tests use them)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else echo "missing:$$missing; run 'sudo apt-get install$$missing'" >&2; exit 1; fi; \
	fi

# Terraform checking (terraform/README.md): the real terraform binary, tflint,
# and a schema-only stand-in for hashicorp/aws built from the cdktf package.
TERRAFORM         ?= terraform
TERRAFORM_VERSION := 1.11.4
TFLINT_VERSION    := v0.64.0
TFLINT            := $(TOOLS)/tflint-$(TFLINT_VERSION)/tflint
CDKTF_AWS_VERSION := 21.22.1
CDKTF_AWS         := $(TOOLS)/cdktf-provider-aws-$(CDKTF_AWS_VERSION)/package
AWS_SCHEMA        := $(TOOLS)/aws-schema-provider-6.25.0
AWS_SCHEMA_SRC     = $(shell git ls-files terraform/schemaprovider 2>/dev/null)
REAL_PROVIDER     ?=

$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(TFLINT):
	GOBIN=$(dir $@) $(GO) install github.com/terraform-linters/tflint@$(TFLINT_VERSION)

$(CDKTF_AWS)/.jsii:
	@rm -rf $(CDKTF_AWS).tmp && mkdir -p $(CDKTF_AWS).tmp
	cd $(CDKTF_AWS).tmp && npm pack --silent @cdktf/provider-aws@$(CDKTF_AWS_VERSION) >/dev/null && tar xzf cdktf-provider-aws-$(CDKTF_AWS_VERSION).tgz
	@rm -rf $(CDKTF_AWS) && mv $(CDKTF_AWS).tmp/package $(CDKTF_AWS) && rm -rf $(CDKTF_AWS).tmp

# The provider binary and its extracted schema, laid out as a filesystem
# mirror, and the CLI config that points terraform at it.
$(AWS_SCHEMA)/terraform.rc: $(AWS_SCHEMA_SRC) $(CDKTF_AWS)/.jsii
	cd terraform/schemaprovider && $(GO) build -o $(AWS_SCHEMA)/bin/schemaprovider .
	@rm -rf $(AWS_SCHEMA)/mirror
	$(AWS_SCHEMA)/bin/schemaprovider install -package $(CDKTF_AWS) -mirror $(AWS_SCHEMA)/mirror
	@printf 'provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n    include = ["hashicorp/aws"]\n  }\n}\n' "$$(cd $(AWS_SCHEMA) && pwd -P)/mirror" > $@

# Checked first, so a machine without terraform learns it before the installs.
.PHONY: terraform-bin
terraform-bin:
	@command -v $(TERRAFORM) >/dev/null || { echo "terraform $(TERRAFORM_VERSION) is not installed: it cannot be built with go install nor fetched here; install it on PATH (or set TERRAFORM=/absolute/path/to/terraform), then rerun" >&2; exit 1; }
	@v=$$($(TERRAFORM) version 2>/dev/null | head -1); case "$$v" in *v$(TERRAFORM_VERSION)*) ;; *) echo "note: $$v, checks are pinned to $(TERRAFORM_VERSION)" >&2;; esac

.PHONY: terraform-tools
terraform-tools: terraform-bin $(TFLINT) $(if $(REAL_PROVIDER),,$(AWS_SCHEMA)/terraform.rc) ## install tflint and the schema-only AWS provider into .tools/

.PHONY: terraform-check
terraform-check: terraform-tools $(STATICCHECK) ## terraform fmt, init, validate, tflint and mock tests of every module; REAL_PROVIDER=1 uses the real AWS provider
	cd terraform/schemaprovider && $(GO) vet ./... && $(STATICCHECK) ./...
	cd terraform/schemaprovider && $(if $(REAL_PROVIDER),AMBER_TF_CHECK=real,AMBER_TF_CHECK=schema TF_CLI_CONFIG_FILE=$(AWS_SCHEMA)/terraform.rc AMBER_CDKTF_AWS=$(CDKTF_AWS)) TERRAFORM=$(TERRAFORM) $(GO) test -count=1 ./...
	$(if $(REAL_PROVIDER),,TF_CLI_CONFIG_FILE=$(AWS_SCHEMA)/terraform.rc) TERRAFORM=$(TERRAFORM) TFLINT=$(TFLINT) terraform/check.sh

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

# Terraform cannot be installed by the project (no go install, no
# registry), so a machine without it skips the check, loudly.
.PHONY: terraform-check-if-installed
terraform-check-if-installed:
	@if command -v $(TERRAFORM) >/dev/null; then $(MAKE) --no-print-directory terraform-check; else \
		echo "######## SKIPPED terraform-check: $(TERRAFORM) $(TERRAFORM_VERSION) is not on PATH; install it and run make terraform-check ########" >&2; fi

.PHONY: check
check: fmt-check vet lint tools terraform-check-if-installed ## everything CI checks: formatting, vet, lint, terraform, then all tests
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

.PHONY: test
test: check ## what CI runs (.ci/run): make check

.PHONY: test-short
test-short: ## unit tests only, no real components
	$(GO) test -short ./...

# WORKLOAD=small writes bench/ and the README's table; any other workload
# writes bench/<workload>/ only. BENCH_NOTE is printed above the table.
# WORKLOAD=scaling runs only BenchmarkScaling: the index's scaling curve on
# a mainnet-shaped chain read from a block file, at the checkpoints of
# SCALE_TXS (transactions; the file is made once in .bench-cache/).
# Indented lines are test logs, which name local paths: the terminal shows
# them, results.txt leaves them out.
WORKLOAD      ?= small
BENCH_WALLETS ?= 1000
BENCH_NOTE    ?=
BENCH_TIMEOUT ?= 3h
SCALE_TXS     ?= 1000000,5000000,20000000

.PHONY: bench
bench: tools ## run the benchmarks on WORKLOAD (small; large by hand) and write results.{txt,json,md,svg} in bench/ and the README table
	@out=bench; readme=README.md; if [ "$(WORKLOAD)" != small ]; then out=bench/$(WORKLOAD); readme=; fi; \
	mkdir -p $$out; set -o pipefail; \
	{ echo "# make bench WORKLOAD=$(WORKLOAD), $$(date -u +%Y-%m-%dT%H:%MZ), $$(nproc) cores, commit $$(git rev-parse --short HEAD 2>/dev/null)"; \
	  if [ "$(WORKLOAD)" = scaling ]; then \
	    AMBER_SCALE_TXS=$(SCALE_TXS) $(GO) test -count=1 -timeout $(BENCH_TIMEOUT) \
	      -run '^$$' -bench '^BenchmarkScaling$$' -benchtime 1x ./builder/ 2>&1; \
	  else \
	    AMBER_BENCH_WORKLOAD=$(WORKLOAD) AMBER_BENCH_WALLETS=$(BENCH_WALLETS) $(GO) test -count=1 -p 1 -timeout $(BENCH_TIMEOUT) \
	      -run '^$$' -bench 'BenchmarkBuilder|BenchmarkServer' -benchtime 1x ./builder/ ./server/ 2>&1 && \
	    $(GO) test -count=1 -run '^$$' -bench . -benchmem ./internal/chain/ ./internal/store/ ./server/rpc/ 2>&1; \
	  fi; } \
	  | tee /dev/stderr | grep -v '^    ' > $$out/results.txt && \
	$(GO) run ./internal/testenv/cmd/benchreport -in $$out/results.txt -out $$out -workload $(WORKLOAD) \
	  $${readme:+-readme $$readme} -note "$(BENCH_NOTE)" && echo "wrote $$out/results.{txt,json,md,svg}"

SOAK_DURATION ?= 20m
.PHONY: soak
soak: tools ## the long reliability run (SOAK_DURATION, default 20m): kills, faults, every fuzz target; summary in reliability/SOAK.md
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -count=1 -timeout 7h ./reliability/; \
	status=$$?; cat reliability/SOAK.md 2>/dev/null; exit $$status

.PHONY: demo
demo: tools ## run a local regtest chain, builder, snapshot and server
	$(GO) run ./cmd/amber demo
