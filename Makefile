# bulwark — see README.md. Every target works from a clean clone.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         ?= bin
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)

.PHONY: run build test fmt lint ci bench loadtest soak

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

## lint: gofmt, go vet and staticcheck must be clean
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## ci: what .ci/run runs
ci: lint test
