package telemetry_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/bulwark-go/bulwark/telemetry"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collectAll reads every metric of reader, whatever its scope, as name → data.
func collectAll(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	out := map[string]metricdata.Metrics{}
	for _, sm := range collectRM(t, reader).ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func gaugeValue(t *testing.T, m metricdata.Metrics) int64 {
	t.Helper()
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		if len(d.DataPoints) > 0 {
			var v int64
			for _, dp := range d.DataPoints {
				v += dp.Value
			}
			return v
		}
	case metricdata.Gauge[int64]:
		if len(d.DataPoints) > 0 {
			return d.DataPoints[0].Value
		}
	}
	t.Fatalf("%s: no int64 data in %T", m.Name, m.Data)
	return 0
}

// TestRuntimeMetrics reads the runtime and process metrics the way otel
// mode exports them: the contrib instrumentation, bulwark's additions and
// the GC pause producer on one reader.
func TestRuntimeMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(telemetry.NewGCPauseProducer()))
	mp := sdkmetric.NewMeterProvider(append(telemetry.MeterProviderOptions(), sdkmetric.WithReader(reader))...)
	defer func() { _ = mp.Shutdown(context.Background()) }()
	if err := telemetry.RuntimeMetrics(mp); err != nil {
		t.Fatal(err)
	}
	garbage := make([][]byte, 0, 64)
	for i := range 64 {
		garbage = append(garbage, make([]byte, 64<<10+i))
	}
	_ = garbage
	runtime.GC() // at least one pause to count
	m := collectAll(t, reader)

	for _, name := range []string{"go.goroutine.count", "go.memory.used", "go.memory.gc.goal", telemetry.MetricHeapLive} {
		if v := gaugeValue(t, m[name]); v <= 0 {
			t.Errorf("%s = %d, want > 0", name, v)
		}
	}
	h, ok := m[telemetry.MetricGCPauseDuration].Data.(metricdata.Histogram[float64])
	if !ok || len(h.DataPoints) != 1 || h.DataPoints[0].Count == 0 || m[telemetry.MetricGCPauseDuration].Unit != "s" {
		t.Fatalf("%s: %+v", telemetry.MetricGCPauseDuration, m[telemetry.MetricGCPauseDuration])
	}
	dp := h.DataPoints[0]
	var inBuckets uint64
	for _, c := range dp.BucketCounts {
		inBuckets += c
	}
	if inBuckets != dp.Count || len(dp.BucketCounts) != len(telemetry.GCPauseBuckets())+1 {
		t.Errorf("GC pauses: %d in buckets, count %d, %d buckets", inBuckets, dp.Count, len(dp.BucketCounts))
	}
	t.Logf("GC pauses: %d, buckets %v", dp.Count, dp.BucketCounts)

	if runtime.GOOS != "linux" {
		return
	}
	cpu, ok := m[telemetry.MetricProcessCPUTime].Data.(metricdata.Sum[float64])
	if !ok || !cpu.IsMonotonic {
		t.Fatalf("%s: %+v", telemetry.MetricProcessCPUTime, m[telemetry.MetricProcessCPUTime])
	}
	modes := map[string]float64{}
	for _, dp := range cpu.DataPoints {
		mode, _ := dp.Attributes.Value(attribute.Key("cpu.mode"))
		modes[mode.AsString()] = dp.Value
	}
	if _, ok := modes["user"]; !ok || len(modes) != 2 || modes["user"]+modes["system"] <= 0 {
		t.Errorf("process.cpu.time by cpu.mode: %v", modes)
	}
	fds, limit := gaugeValue(t, m[telemetry.MetricProcessOpenFDs]), gaugeValue(t, m[telemetry.MetricProcessFDLimit])
	if fds < 3 || limit < fds {
		t.Errorf("open fds %d, limit %d", fds, limit)
	}
	if rss := gaugeValue(t, m[telemetry.MetricProcessMemoryUsage]); rss < 1<<20 {
		t.Errorf("rss %d", rss)
	}
}

// TestCardinalityLimitFoldsIntoOverflow records more distinct tag sets on
// one instrument than CardinalityLimit allows, on a meter provider built with
// MeterProviderOptions as Setup builds it: the reader sees CardinalityLimit
// series, one of them otel.metric.overflow=true, and no measurement is lost.
func TestCardinalityLimitFoldsIntoOverflow(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(append(telemetry.MeterProviderOptions(), sdkmetric.WithReader(reader))...)
	defer func() { _ = mp.Shutdown(context.Background()) }()
	tel, err := telemetry.NewOTel(mp)
	if err != nil {
		t.Fatal(err)
	}
	const n = telemetry.CardinalityLimit + 500
	for i := range n {
		tel.Counter(context.Background(), telemetry.MetricHTTPRequestsTotal, 1,
			telemetry.Tag{Key: "route", Value: fmt.Sprintf("/raw/path/%d", i)})
	}
	sum, ok := collectAll(t, reader)[telemetry.MetricHTTPRequestsTotal].Data.(metricdata.Sum[float64])
	if !ok {
		t.Fatal("no http_requests_total")
	}
	var total float64
	overflow := 0
	for _, dp := range sum.DataPoints {
		total += dp.Value
		if v, ok := dp.Attributes.Value("otel.metric.overflow"); ok && v.AsBool() {
			overflow++
		}
	}
	if len(sum.DataPoints) != telemetry.CardinalityLimit || overflow != 1 || total != n {
		t.Fatalf("%d series (want %d), %d overflow series (want 1), total %v (want %d)",
			len(sum.DataPoints), telemetry.CardinalityLimit, overflow, total, n)
	}
}
