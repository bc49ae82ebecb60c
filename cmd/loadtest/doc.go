// Command loadtest measures the real bulwark binary (cmd/api) on loopback
// beside a bare http.ServeMux baseline started from this same binary, in one
// run, and writes a markdown table of the results into docs/PERFORMANCE.md.
//
// For each scenario it starts a fresh server process on a free port (its
// stdout, which carries the JSON access log, redirected to a file), waits
// for GET /health, drives a warm-up and then the measured load at a fixed
// concurrency with a minimal keep-alive HTTP/1.1 client (prepared request
// bytes, exact latency percentiles from every sample), counts transport
// errors and unexpected statuses, reads the server's peak RSS (VmHWM in
// /proc/<pid>/status) and, where Redis is involved, the Redis round trips
// per request (INFO commandstats), then stops the server with SIGTERM.
// Postgres scenarios run against a throw-away database (created, seeded with
// users through SQL, and dropped); otel mode exports over OTLP/HTTP to a
// sink inside this process that accepts /v1/traces, /v1/metrics and /v1/logs and
// counts spans, so it measures the SDK's cost, not a collector's.
//
// Modes:
//
//	loadtest -api bin/api [-c 32] [-d 10s] [-out docs/PERFORMANCE.md]   the scenarios (make loadtest)
//	loadtest -api bin/api -soak 1000000                                 one long run sampling RSS (make soak)
//	loadtest -serve-bare 127.0.0.1:8080                                 the baseline server alone
//
// -serve-bare serves GET /health with the same 15 bytes and headers as the
// API's handler from a bare ServeMux, with the API's default server
// timeouts; the driver runs it as a child process so both are measured the
// same way.
package main
