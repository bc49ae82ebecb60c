# bulwark — see README.md. Every target works from a clean clone.
GO          ?= go
# Every target builds with this Go release, fetched once through the module proxy (~76 MB). The
# machines' own go1.26.8 has standard-library vulnerabilities (net/http, crypto/tls, ...) that
# govulncheck reports as reachable; go1.26.11 has them fixed. Override with GOTOOLCHAIN=local.
export GOTOOLCHAIN ?= go1.26.11
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         ?= bin
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)

.PHONY: run build test fmt lint openapi-lint chromium ci e2e e2e-lint slo-test slo-rules up down reliability fuzz vulncheck bench loadtest loadtest-check soak compare compare-lint overload profile wrk

## run: start the API on :8000 with embedded defaults (in-memory store, noop telemetry)
run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/api

## build: build every command into ./bin
build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

## test: the whole test suite with the race detector (Postgres/Redis tests use TEST_DATABASE_URL / TEST_REDIS_URL),
## then the allocation-budget tests without it (the race detector changes allocation counts, so they skip under -race)
test:
	$(GO) test -race -count=1 -timeout 10m ./...
	$(GO) test -count=1 -timeout 5m -run Alloc ./...

## bench: chain benchmarks beside a bare ServeMux (Postgres/Redis rows skip when absent), then a summary; raw output in $(BIN)/bench.txt
BENCH_COUNT ?= 5
BENCH_TIME  ?= 1s
bench:
	@mkdir -p $(BIN)
	$(GO) test ./service -run '^$$' -bench '^BenchmarkChain$$' -benchmem -benchtime $(BENCH_TIME) -count $(BENCH_COUNT) -timeout 30m | tee $(BIN)/bench.txt
	$(GO) run ./cmd/benchsum -out docs/PERFORMANCE.md -command "make bench BENCH_COUNT=$(BENCH_COUNT) BENCH_TIME=$(BENCH_TIME)" < $(BIN)/bench.txt

## wrk: the reference load generator (Debian package), installed with apt-get when missing
wrk:
	@command -v wrk >/dev/null 2>&1 || { echo "wrk not found: apt-get install -y wrk"; \
	  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }; } \
	  || { echo "could not install wrk; install it (Debian/Ubuntu: apt-get install wrk) or use LOADTEST_FLAGS=-client=built-in" >&2; exit 1; }
	@echo "wrk: $$(command -v wrk)"

## loadtest: cmd/api and a bare ServeMux under load on loopback with wrk (~4-6 min), table into docs/PERFORMANCE.md;
## LOADTEST_FLAGS=-quick for a short run while developing
LOADTEST_FLAGS ?=
loadtest: wrk
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/api ./cmd/loadtest
	$(BIN)/loadtest -api $(BIN)/api -client wrk -out docs/PERFORMANCE.md -command "make loadtest$(if $(LOADTEST_FLAGS), LOADTEST_FLAGS='$(LOADTEST_FLAGS)')" $(LOADTEST_FLAGS)

## loadtest-check: the same scenarios, nothing written; exits 1 when a budget is not met (for humans, not CI: timing)
loadtest-check: wrk
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/api ./cmd/loadtest
	$(BIN)/loadtest -api $(BIN)/api -client wrk -enforce $(LOADTEST_FLAGS)

## compare: bulwark's modes beside a bare ServeMux and go-zero (with and without OTLP export), GET /health, rounds
## interleaved (~4 min); go-zero is built from its own module (cmd/loadtest/gozero); table into docs/PERFORMANCE.md
COMPARE_FLAGS ?= -rounds 3
compare: wrk compare-lint
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/api ./cmd/loadtest
	cd cmd/loadtest/gozero && $(GO) build -o $(CURDIR)/$(BIN)/compare-gozero .
	$(BIN)/loadtest -compare -api $(BIN)/api -gozero $(BIN)/compare-gozero -client wrk -out docs/PERFORMANCE.md \
	  -command "make compare COMPARE_FLAGS='$(COMPARE_FLAGS)'" $(COMPARE_FLAGS)

## compare-lint: gofmt and go vet of the go-zero module (separate go.mod)
compare-lint:
	@out=$$(cd cmd/loadtest/gozero && gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed in cmd/loadtest/gozero:"; echo "$$out"; exit 1; fi
	cd cmd/loadtest/gozero && $(GO) vet ./...

## overload: one scenario's capacity (closed loop), then open-loop loads at 1x, 2x, 4x of it; section into docs/PERFORMANCE.md
OVERLOAD_SCENARIO ?= users-get/pg-nocache
OVERLOAD_FLAGS ?=
overload: wrk
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/api ./cmd/loadtest
	$(BIN)/loadtest -overload $(OVERLOAD_SCENARIO) -api $(BIN)/api -client wrk -out docs/PERFORMANCE.md \
	  -command "make overload OVERLOAD_SCENARIO=$(OVERLOAD_SCENARIO)$(if $(OVERLOAD_FLAGS), OVERLOAD_FLAGS='$(OVERLOAD_FLAGS)')" $(OVERLOAD_FLAGS)

## profile: CPU and allocation profiles of each mode, in-process (BenchmarkChain rows, works on any build) and of the
## binary under load (needs DEBUG_ADDR in cmd/api); files in PROFILE_DIR, top entries into docs/PERFORMANCE.md
PROFILE_DIR   ?= $(BIN)/profiles
PROFILE_FLAGS ?=
profile: wrk
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/api ./cmd/loadtest
	$(BIN)/loadtest -profile $(PROFILE_DIR) -api $(BIN)/api -client wrk -go $(GO) -out docs/PERFORMANCE.md \
	  -command "make profile$(if $(PROFILE_FLAGS), PROFILE_FLAGS='$(PROFILE_FLAGS)')" $(PROFILE_FLAGS)

## soak: 1,000,000 requests on one server with everything on, sampling RSS; result into docs/PERFORMANCE.md
SOAK_REQUESTS ?= 1000000
soak:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/api ./cmd/loadtest
	$(BIN)/loadtest -api $(BIN)/api -soak $(SOAK_REQUESTS) -client built-in -out docs/PERFORMANCE.md -command "make soak SOAK_REQUESTS=$(SOAK_REQUESTS)"

## fmt: format the code
fmt:
	gofmt -w $$(git ls-files '*.go')

## lint: gofmt, go vet and staticcheck must be clean, and Spectral must find nothing in docs/openapi.yaml (the nested modules: e2e-lint, compare-lint)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@$(MAKE) --no-print-directory openapi-lint

## openapi-lint: Spectral with spectral:oas and the OWASP API Security ruleset (docs/lint/spectral.yaml) on
## docs/openapi.yaml; any error or warning fails. The npm packages pinned in docs/lint/package-lock.json are
## installed into docs/lint/node_modules on first use (npm ci, no install scripts).
SPECTRAL := docs/lint/node_modules/.bin/spectral
openapi-lint: docs/lint/node_modules/.installed
	$(SPECTRAL) lint --ruleset docs/lint/spectral.yaml --fail-severity warn docs/openapi.yaml

docs/lint/node_modules/.installed: docs/lint/package.json docs/lint/package-lock.json
	cd docs/lint && SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

## chromium: install Debian's chromium when missing (the browser CORS test, TestCORSBrowser, skips without it
## and fails without it under CI)
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }
	@chromium --version

## ci: what .ci/run runs
ci: wrk lint chromium slo-test test e2e reliability

## e2e: the observability pipeline end to end (docs/OBSERVABILITY.md). Builds what is missing
## (collector ~100 s, Jaeger ~5 min once; Prometheus from apt), starts collector + Jaeger +
## Prometheus on free ports (otel-collector/e2e-stack.sh), runs the otel-collector/e2e module's
## tests against them (the service against the local Postgres and Redis), stops the stack.
E2E_TEST_FLAGS ?= -count=1 -v -timeout 20m
e2e: e2e-lint
	otel-collector/e2e-stack.sh run sh -c 'cd otel-collector/e2e && E2E_STACK=1 $(GO) test $(E2E_TEST_FLAGS) ./...'

## e2e-lint: gofmt and go vet of the e2e module (separate go.mod)
e2e-lint:
	@out=$$(cd otel-collector/e2e && gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed in otel-collector/e2e:"; echo "$$out"; exit 1; fi
	cd otel-collector/e2e && $(GO) vet ./...

## slo-test: the Prometheus rules (grafana/prometheus/rules: SLO burn-rate alerts generated by sloth,
## the cardinality alert) checked and unit-tested by promtool on synthetic series; promtool comes
## from Debian's prometheus package, installed when missing. Also fails when slo.yml was not
## regenerated after an edit of the SLO spec.
SLO_SPEC  := grafana/prometheus/slos/bulwark.yml
SLO_RULES := grafana/prometheus/rules/slo.yml
slo-test:
	@otel-collector/e2e-stack.sh prometheus
	@want=$$(sha256sum $(SLO_SPEC) | cut -d' ' -f1); \
	  grep -q "^# spec sha256: $$want$$" $(SLO_RULES) || { echo "$(SLO_RULES) is stale: run make slo-rules"; exit 1; }
	promtool check rules grafana/prometheus/rules/*.yml
	promtool test rules grafana/prometheus/rules/tests/*.yml

## slo-rules: regenerate $(SLO_RULES) from $(SLO_SPEC) with sloth (built once through the module
## proxy, a few minutes on 2 cores; not part of CI, which checks the result with slo-test)
SLOTH_VERSION := v0.16.0
slo-rules:
	@mkdir -p $(BIN)
	GOBIN=$(CURDIR)/$(BIN) $(GO) install -ldflags "-X github.com/slok/sloth/internal/info.Version=$(SLOTH_VERSION)" github.com/slok/sloth/cmd/sloth@$(SLOTH_VERSION)
	{ echo "# GENERATED by make slo-rules (sloth $(SLOTH_VERSION)) from $(SLO_SPEC): do not edit."; \
	  echo "# spec sha256: $$(sha256sum $(SLO_SPEC) | cut -d' ' -f1)"; \
	  $(BIN)/sloth generate -i $(SLO_SPEC); } > $(SLO_RULES).tmp && mv $(SLO_RULES).tmp $(SLO_RULES)

## up: the compose stack (app, Postgres, Redis, collector, Prometheus, Jaeger, Grafana); needs Docker
up:
	BULWARK_VERSION=$(VERSION) docker compose up -d --build

## down: stop it and delete its volumes
down:
	docker compose down -v

## reliability: the real binary under faults (Redis, Postgres, collector), SIGTERM under load and
## attack, then the fuzz targets and govulncheck; prints the summary table (docs/RELIABILITY.md)
reliability:
	@mkdir -p $(BIN)
	RELIABILITY_SUMMARY=$(CURDIR)/$(BIN)/reliability-summary.md $(GO) test -tags reliability -count=1 -timeout 15m -run '^TestReliability$$' -v ./cmd/api/
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory vulncheck
	@echo; echo "=== reliability summary ($(BIN)/reliability-summary.md) ==="; cat $(BIN)/reliability-summary.md

## fuzz: each fuzz target for FUZZTIME (seed corpora in testdata/fuzz)
FUZZTIME ?= 10s
FUZZ_TARGETS := middleware:FuzzValidRequestID middleware:FuzzClientIP service:FuzzJSONBodies service:FuzzTokensVerify
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz $$fn ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 3s ./$$pkg/; \
	done

## vulncheck: govulncheck over the module (local copy of the vulnerability database when offline);
## VULNCHECK_STDLIB=warn lets findings that are only in the Go toolchain's standard library pass
VULNCHECK_STDLIB ?= fail
vulncheck:
	GO=$(GO) VULNCHECK_STDLIB=$(VULNCHECK_STDLIB) .ci/vulncheck.sh

