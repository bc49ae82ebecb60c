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

.PHONY: run build test fmt lint openapi-lint chromium ci e2e e2e-lint up down reliability fuzz vulncheck bench loadtest soak

## run: start the API on :8000 with embedded defaults (in-memory store, noop telemetry)
run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/api

## build: build every command into ./bin
build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

## test: the whole test suite with the race detector (Postgres/Redis tests use TEST_DATABASE_URL / TEST_REDIS_URL)
test:
	$(GO) test -race -count=1 -timeout 10m ./...

## bench: chain benchmarks beside a bare ServeMux (Postgres/Redis rows skip when absent), then a summary; raw output in $(BIN)/bench.txt
BENCH_COUNT ?= 5
BENCH_TIME  ?= 1s
bench:
	@mkdir -p $(BIN)
	$(GO) test ./service -run '^$$' -bench '^BenchmarkChain$$' -benchmem -benchtime $(BENCH_TIME) -count $(BENCH_COUNT) -timeout 30m | tee $(BIN)/bench.txt
	$(GO) run ./cmd/benchsum < $(BIN)/bench.txt

## loadtest: cmd/api and a bare ServeMux under load on loopback (~3-5 min), table into docs/PERFORMANCE.md
LOADTEST_FLAGS ?=
loadtest:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/api ./cmd/loadtest
	$(BIN)/loadtest -api $(BIN)/api -out docs/PERFORMANCE.md -command "make loadtest $(LOADTEST_FLAGS)" $(LOADTEST_FLAGS)

## soak: 1,000,000 requests on one server with everything on, sampling RSS; result into docs/PERFORMANCE.md
SOAK_REQUESTS ?= 1000000
soak:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/api ./cmd/loadtest
	$(BIN)/loadtest -api $(BIN)/api -soak $(SOAK_REQUESTS) -out docs/PERFORMANCE.md -command "make soak SOAK_REQUESTS=$(SOAK_REQUESTS)"

## fmt: format the code
fmt:
	gofmt -w $$(git ls-files '*.go')

## lint: gofmt, go vet and staticcheck must be clean, and Spectral must find nothing in docs/openapi.yaml
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
ci: lint test e2e reliability

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

