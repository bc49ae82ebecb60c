package telemetry_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bulwark-go/bulwark/telemetry"
)

func newManual(t *testing.T) (*sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return r, mp
}

// collectRM is one collection of r.
func collectRM(t *testing.T, r *sdkmetric.ManualReader) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	rm := collectRM(t, r)
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != telemetry.MeterName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, telemetry.MeterName)
		}
		for _, m := range sm.Metrics {
			if _, dup := out[m.Name]; dup {
				t.Errorf("metric %q exported twice", m.Name)
			}
			out[m.Name] = m
		}
	}
	return out
}

func wantAttrs(t *testing.T, got attribute.Set, kv ...string) {
	t.Helper()
	if got.Len() != len(kv)/2 {
		t.Errorf("attributes %v, want %v", got.ToSlice(), kv)
	}
	for i := 0; i < len(kv); i += 2 {
		v, ok := got.Value(attribute.Key(kv[i]))
		if !ok || v.AsString() != kv[i+1] {
			t.Errorf("attribute %s = %v (present %v), want %q", kv[i], v.String(), ok, kv[i+1])
		}
	}
}

func TestOTelInstruments(t *testing.T) {
	r, mp := newManual(t)
	tel, err := telemetry.NewOTel(mp)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ok := []telemetry.Tag{{"method", "GET"}, {"route", "/api/v1/users/{id}"}, {"status_code", "200"}}
	nf := []telemetry.Tag{{"method", "GET"}, {"route", "unmatched"}, {"status_code", "404"}}
	const calls = 500
	for range calls {
		tel.Counter(ctx, telemetry.MetricHTTPRequestsTotal, 1, ok...)
		tel.Histogram(ctx, telemetry.MetricHTTPRequestDuration, 7, ok...)
	}
	tel.Counter(ctx, telemetry.MetricHTTPRequestsTotal, 1, nf...)
	tel.Histogram(ctx, telemetry.MetricHTTPRequestDuration, 20000, nf...)
	tel.Counter(ctx, telemetry.MetricHTTPRequestsTotal, -5, nf...) // dropped
	for range calls {
		tel.Counter(ctx, "ratelimit_fail_open_total", 2, telemetry.Tag{Key: "backend", Value: "redis"})
		tel.Histogram(ctx, "custom_ms", 3)
	}

	got := collect(t, r)
	if len(got) != 4 {
		names := make([]string, 0, len(got))
		for n := range got {
			names = append(names, n)
		}
		t.Fatalf("got %d distinct instruments %v, want 4", len(got), names)
	}

	// http_requests_total
	m := got[telemetry.MetricHTTPRequestsTotal]
	if m.Unit != "{request}" || m.Description == "" {
		t.Errorf("%s unit %q description %q", m.Name, m.Unit, m.Description)
	}
	sum, isSum := m.Data.(metricdata.Sum[float64])
	if !isSum || !sum.IsMonotonic || sum.Temporality != metricdata.CumulativeTemporality {
		t.Fatalf("%s data %T %+v, want monotonic cumulative float64 sum", m.Name, m.Data, m.Data)
	}
	if len(sum.DataPoints) != 2 {
		t.Fatalf("%s has %d series, want 2", m.Name, len(sum.DataPoints))
	}
	for _, dp := range sum.DataPoints {
		route, _ := dp.Attributes.Value("route")
		switch route.AsString() {
		case "/api/v1/users/{id}":
			wantAttrs(t, dp.Attributes, "method", "GET", "route", "/api/v1/users/{id}", "status_code", "200")
			if dp.Value != calls {
				t.Errorf("ok series = %v, want %d", dp.Value, calls)
			}
		case "unmatched":
			wantAttrs(t, dp.Attributes, "method", "GET", "route", "unmatched", "status_code", "404")
			if dp.Value != 1 {
				t.Errorf("unmatched series = %v, want 1 (negative add dropped)", dp.Value)
			}
		default:
			t.Errorf("unexpected series %v", dp.Attributes.ToSlice())
		}
	}

	// http_request_duration_ms
	m = got[telemetry.MetricHTTPRequestDuration]
	if m.Unit != telemetry.UnitDuration || m.Description == "" {
		t.Errorf("%s unit %q description %q", m.Name, m.Unit, m.Description)
	}
	hist, isHist := m.Data.(metricdata.Histogram[float64])
	if !isHist {
		t.Fatalf("%s data %T, want float64 histogram", m.Name, m.Data)
	}
	wantBounds := []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
	for _, dp := range hist.DataPoints {
		if !slices.Equal(dp.Bounds, wantBounds) {
			t.Errorf("bounds %v, want %v", dp.Bounds, wantBounds)
		}
		route, _ := dp.Attributes.Value("route")
		switch route.AsString() {
		case "/api/v1/users/{id}":
			if dp.Count != calls || dp.Sum != 7*calls || dp.BucketCounts[3] != calls {
				t.Errorf("ok histogram count %d sum %v buckets %v", dp.Count, dp.Sum, dp.BucketCounts)
			}
		case "unmatched":
			if dp.Count != 1 || dp.BucketCounts[len(wantBounds)] != 1 {
				t.Errorf("unmatched histogram count %d buckets %v (want overflow bucket)", dp.Count, dp.BucketCounts)
			}
		}
	}

	// Unknown names: unit "", SDK default buckets, one instrument each.
	m = got["ratelimit_fail_open_total"]
	if s, ok := m.Data.(metricdata.Sum[float64]); !ok || m.Unit != "" || len(s.DataPoints) != 1 || s.DataPoints[0].Value != 2*calls {
		t.Errorf("unknown counter: unit %q data %+v", m.Unit, m.Data)
	} else {
		wantAttrs(t, s.DataPoints[0].Attributes, "backend", "redis")
	}
	m = got["custom_ms"]
	if h, ok := m.Data.(metricdata.Histogram[float64]); !ok || m.Unit != "" || len(h.DataPoints) != 1 || h.DataPoints[0].Count != calls {
		t.Errorf("unknown histogram: unit %q data %+v", m.Unit, m.Data)
	} else if h.DataPoints[0].Attributes.Len() != 0 {
		t.Errorf("untagged histogram has attributes %v", h.DataPoints[0].Attributes.ToSlice())
	}
}

func TestOTelManyTags(t *testing.T) {
	r, mp := newManual(t)
	tel, err := telemetry.NewOTel(mp)
	if err != nil {
		t.Fatal(err)
	}
	var tags []telemetry.Tag
	for i := range 12 { // more than the stack buffer
		tags = append(tags, telemetry.Tag{Key: string(rune('a' + i)), Value: "v"})
	}
	tags = append(tags, telemetry.Tag{Key: "a", Value: "last wins"})
	orig := slices.Clone(tags)
	tel.Counter(context.Background(), "c", 1, tags...)
	if !slices.Equal(tags, orig) {
		t.Errorf("caller's tags modified")
	}
	s := collect(t, r)["c"].Data.(metricdata.Sum[float64])
	if a := s.DataPoints[0].Attributes; a.Len() != 12 {
		t.Errorf("attributes %v", a.ToSlice())
	} else if v, _ := a.Value("a"); v.AsString() != "last wins" {
		t.Errorf("duplicate key: a = %q, want the last value", v.AsString())
	}
}

func TestOTelExtraSpecs(t *testing.T) {
	r, mp := newManual(t)
	tel, err := telemetry.NewOTel(mp,
		telemetry.InstrumentSpec{Name: telemetry.MetricHTTPRequestDuration, Kind: telemetry.KindHistogram, Unit: "", Buckets: []float64{10, 100}},
		telemetry.InstrumentSpec{Name: "cache_requests_total", Kind: telemetry.KindCounter, Unit: "{request}", Description: "cache lookups"},
	)
	if err != nil {
		t.Fatal(err)
	}
	tel.Histogram(context.Background(), telemetry.MetricHTTPRequestDuration, 50)
	tel.Counter(context.Background(), "cache_requests_total", 1)
	got := collect(t, r)
	h := got[telemetry.MetricHTTPRequestDuration]
	if h.Unit != "" || !slices.Equal(h.Data.(metricdata.Histogram[float64]).DataPoints[0].Bounds, []float64{10, 100}) {
		t.Errorf("override not applied: unit %q data %+v", h.Unit, h.Data)
	}
	if c := got["cache_requests_total"]; c.Unit != "{request}" || c.Description != "cache lookups" {
		t.Errorf("extra counter: %+v", c)
	}

	if _, err := telemetry.NewOTel(mp, telemetry.InstrumentSpec{Name: "x"}); err == nil {
		t.Error("spec without kind accepted")
	}
	if _, err := telemetry.NewOTel(nil); err == nil {
		t.Error("nil MeterProvider accepted")
	}
}

func TestOTelConcurrent(t *testing.T) {
	r, mp := newManual(t)
	tel, err := telemetry.NewOTel(mp)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				tel.Counter(context.Background(), "new_total", 1, tags3...)
				tel.Histogram(context.Background(), "new_ms", 1, tags3...)
				tel.Counter(context.Background(), telemetry.MetricHTTPRequestsTotal, 1, tags3...)
			}
		})
	}
	wg.Wait()
	got := collect(t, r)
	if len(got) != 3 {
		t.Fatalf("%d instruments, want 3", len(got))
	}
	if v := got["new_total"].Data.(metricdata.Sum[float64]).DataPoints[0].Value; v != 1600 {
		t.Errorf("new_total = %v, want 1600", v)
	}
}

func TestOTelZeroAllocsForKnownTags(t *testing.T) {
	_, mp := newManual(t)
	tel, err := telemetry.NewOTel(mp)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tel.Counter(ctx, telemetry.MetricHTTPRequestsTotal, 1, tags3...) // warm the caches
	tel.Histogram(ctx, telemetry.MetricHTTPRequestDuration, 1, tags3...)
	allocs := testing.AllocsPerRun(1000, func() {
		tel.Counter(ctx, telemetry.MetricHTTPRequestsTotal, 1, tags3...)
		tel.Histogram(ctx, telemetry.MetricHTTPRequestDuration, 12.5, tags3...)
	})
	if allocs != 0 {
		t.Errorf("OTel Counter+Histogram with a seen tag set allocates %v, want 0", allocs)
	}
}

// TestOTelHighCardinalityTags goes past the attribute-set cache bound:
// every measurement must still be recorded with its own attributes.
func TestOTelHighCardinalityTags(t *testing.T) {
	r, mp := newManual(t)
	tel, err := telemetry.NewOTel(mp)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for i := range n {
		tel.Counter(context.Background(), "hc_total", 1, telemetry.Tag{Key: "id", Value: strconv.Itoa(i)}, telemetry.Tag{Key: "k", Value: "v"})
	}
	s := collect(t, r)["hc_total"].Data.(metricdata.Sum[float64])
	seen := map[string]bool{}
	for _, dp := range s.DataPoints {
		if _, overflow := dp.Attributes.Value("otel.metric.overflow"); overflow {
			continue
		}
		id, _ := dp.Attributes.Value("id")
		if k, _ := dp.Attributes.Value("k"); k.AsString() != "v" || dp.Value != 1 {
			t.Fatalf("series %v = %v", dp.Attributes.ToSlice(), dp.Value)
		}
		seen[id.AsString()] = true
	}
	// The SDK's default cardinality limit (2000) folds the rest into an
	// overflow series; what matters is that nothing panics and the series
	// that exist are right.
	if len(seen) < 1000 {
		t.Errorf("only %d distinct series", len(seen))
	}
}
