package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	in := `goos: linux
BenchmarkChain/health/bare-2         	1000	       100.0 ns/op	      16 B/op	       1 allocs/op
BenchmarkChain/health/noop-file-2    	1000	      3000 ns/op	     769 B/op	       6 allocs/op
BenchmarkChain/users-get/mem-2       	1000	      7000 ns/op	    3754 B/op	      60 allocs/op
BenchmarkChain/users-get/mem-limiter-redis-2 	1000	     60000 ns/op	 0 redis-rtt/op	    5267 B/op	      94 allocs/op
BenchmarkChain/users-get/mem-over-limit-redis-2 	1000	     58000 ns/op	 1.000 redis-rtt/op	    5571 B/op	      97 allocs/op
`
	var out bytes.Buffer
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"| Chain/health/noop-file | 3000 | 769 | 6 | +5 | 3.3% |  |",
		"- noop chain, access log to a file, adds at most 8 allocations per request: met (+5 allocs/op over bare)",
		"- one Redis round trip per request (users-get/mem-limiter-redis): ERROR (0.00 round trips/op counted",
		"- one Redis round trip per request (users-get/mem-over-limit-redis): met (1.00 round trips/op",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}
