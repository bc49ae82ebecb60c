// Command loadtest measures the real bulwark binary (cmd/api) on loopback
// beside a bare http.ServeMux baseline started from this same binary, in one
// run, and writes markdown tables of the results into docs/PERFORMANCE.md
// (between <!-- name:begin/end --> markers). The engine is
// cmd/internal/loadgen.
//
// For each scenario it starts a fresh server process on a free port (its
// stdout, which carries the JSON access log, redirected to a file), waits
// for GET /health, drives a warm-up and then the measured load with wrk
// (the reference client; the built-in one for what wrk cannot do: expected
// statuses ≥ 400, count-bound loads, the client check), reads the server's
// CPU time (/proc/<pid>/stat) around the measured load for CPU per
// request, its peak RSS, the Redis round trips per request (INFO
// commandstats; a private redis-server when one is on PATH), and stops it
// with SIGTERM. Postgres scenarios run against a throw-away database whose
// users are seeded through the store (postgres.Store.Create). otel mode
// exports over OTLP/HTTP to a sink inside this process that accepts
// /v1/traces, /v1/metrics and /v1/logs and counts spans.
// Budgets are computed from the rows; -enforce exits 1 when one is not met
// or could not be measured.
//
// Modes:
//
//	loadtest -api bin/api [-c 32] [-d 10s] [-rounds N] [-quick] [-enforce] [-out docs/PERFORMANCE.md]   the scenarios (make loadtest)
//	loadtest -api bin/api -compare -gozero bin/compare-gozero [-rounds 3]   bulwark beside bare and go-zero (make compare)
//	loadtest -api bin/api -overload users-get/pg-nocache                    capacity, then open loop at 1x/2x/4x (make overload)
//	loadtest -api bin/api -profile bin/profiles                             CPU and allocation profiles (make profile)
//	loadtest -api bin/api -soak 1000000                                     one long run sampling RSS (make soak)
//	loadtest -url http://127.0.0.1:8000/health                              an ad-hoc load of a running server
//	loadtest -serve-bare 127.0.0.1:8080                                     the baseline server alone
//
// -serve-bare serves GET /health with the same 15 bytes and headers as the
// API's handler from a bare ServeMux, with the API's default server
// timeouts; the driver runs it as a child process so both are measured the
// same way.
package main
