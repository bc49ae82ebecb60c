// Command benchsum summarises `go test -bench` output of the chain
// benchmarks (service/bench_test.go) as a markdown table: the median of each
// metric over the -count runs, allocations added over the bare ServeMux of
// the same group, throughput as a share of bare, and the budgets that an
// in-process benchmark can check (allocations per request, Redis round trips
// per request) beside in-process indicators of the throughput budgets, which
// the load test (cmd/loadtest) measures for real.
//
// Usage:
//
//	go test ./service -run '^$' -bench Chain -benchmem -count 5 | tee bench.txt
//	go run ./cmd/benchsum [-out docs/PERFORMANCE.md -command "make bench"] < bench.txt
//
// With -out the summary also replaces the "bench" section of that file
// (between <!-- bench:begin --> and <!-- bench:end -->).
package main
