package telemetry

import (
	"math"
	"runtime/metrics"
	"slices"
	"testing"
)

func TestRebucket(t *testing.T) {
	// Runtime buckets: [0,5µs) [5µs,20µs) [20µs,1ms) [1ms,200ms) [200ms,+Inf)
	h := &metrics.Float64Histogram{
		Buckets: []float64{0, 5e-6, 20e-6, 1e-3, 200e-3, math.Inf(1)},
		Counts:  []uint64{3, 2, 4, 1, 7},
	}
	dp := rebucket(h, []float64{10e-6, 1e-3, 100e-3})
	// 0-5µs → ≤10µs; 5-20µs → ≤1ms (upper edge 20µs > 10µs); 20µs-1ms → ≤1ms;
	// 1-200ms → overflow (200ms > 100ms); 200ms-Inf → overflow.
	if want := []uint64{3, 6, 0, 8}; !slices.Equal(dp.BucketCounts, want) {
		t.Errorf("buckets %v, want %v", dp.BucketCounts, want)
	}
	if dp.Count != 17 {
		t.Errorf("count %d", dp.Count)
	}
	if want := 2*5e-6 + 4*20e-6 + 1*1e-3 + 7*200e-3; math.Abs(dp.Sum-want) > 1e-12 {
		t.Errorf("sum %v, want %v (lower edges)", dp.Sum, want)
	}
}
