package telemetry

import (
	"context"
	"math"
	"runtime/metrics"
	"sync"
	"time"

	otelruntime "go.opentelemetry.io/contrib/instrumentation/runtime"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Names of the runtime and process metrics bulwark adds to what
// go.opentelemetry.io/contrib/instrumentation/runtime records (go.memory.*,
// go.goroutine.count, go.processor.limit, go.config.gogc). The process.*
// names are the OpenTelemetry semantic conventions' (except the descriptor
// limit, which they do not define); the go.* ones are bulwark's own.
const (
	// MetricGCPauseDuration is a histogram (seconds) of the stop-the-world
	// pauses of the garbage collector, from the runtime's
	// /sched/pauses/total/gc:seconds, re-bucketed to GCPauseBuckets.
	MetricGCPauseDuration = "go.gc.pause.duration"
	// MetricHeapLive is the heap occupied by live objects at the last GC
	// (runtime/metrics /gc/heap/live:bytes).
	MetricHeapLive = "go.memory.heap.live"
	// MetricProcessCPUTime is the CPU time the process used, by cpu.mode
	// (user, system), from getrusage(2).
	MetricProcessCPUTime = "process.cpu.time"
	// MetricProcessMemoryUsage is the resident set size (/proc/self/statm).
	MetricProcessMemoryUsage = "process.memory.usage"
	// MetricProcessOpenFDs is the number of open file descriptors
	// (entries of /proc/self/fd).
	MetricProcessOpenFDs = "process.unix.file_descriptor.count"
	// MetricProcessFDLimit is the soft limit on open file descriptors
	// (RLIMIT_NOFILE).
	MetricProcessFDLimit = "process.unix.file_descriptor.limit"
)

// RuntimeScopeName is the instrumentation scope of the metrics RuntimeMetrics
// and NewGCPauseProducer add.
const RuntimeScopeName = MeterName + "/runtime"

// GCPauseBuckets returns the bucket boundaries (seconds) of
// MetricGCPauseDuration: 10 µs to 100 ms. Each call returns a new slice.
func GCPauseBuckets() []float64 {
	return []float64{10e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3}
}

// runtimeReadInterval is how often the contrib runtime instrumentation may
// read runtime statistics at most.
const runtimeReadInterval = 5 * time.Second

// RuntimeMetrics records the Go runtime and process metrics on mp:
// the contrib runtime instrumentation (goroutines, memory used by type, heap
// goal, allocations, GOMAXPROCS, GOGC) plus MetricHeapLive and, where the
// platform has them (Linux), the process CPU time, resident memory and open
// file descriptors with their limit. Values are read when the reader
// collects, not on a timer of their own. GC pauses are a histogram, which
// no observable instrument can carry: add NewGCPauseProducer to the reader.
func RuntimeMetrics(mp metric.MeterProvider) error {
	if err := otelruntime.Start(otelruntime.WithMeterProvider(mp),
		otelruntime.WithMinimumReadMemStatsInterval(runtimeReadInterval)); err != nil {
		return wrap("runtime metrics", err)
	}
	meter := mp.Meter(RuntimeScopeName)
	heapLive, err := meter.Int64ObservableUpDownCounter(MetricHeapLive, metric.WithUnit("By"),
		metric.WithDescription("Heap memory occupied by live objects, as of the last garbage collection."))
	if err != nil {
		return wrap("runtime metrics", err)
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var mu sync.Mutex // metrics.Read must not be called concurrently on one slice
	if _, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		mu.Lock()
		defer mu.Unlock()
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			o.ObserveInt64(heapLive, int64(sample[0].Value.Uint64()))
		}
		return nil
	}, heapLive); err != nil {
		return wrap("runtime metrics", err)
	}
	return wrap("process metrics", processMetrics(meter))
}

// NewGCPauseProducer returns a metric producer (pass it to the reader with
// sdkmetric.WithProducer) that reports MetricGCPauseDuration: the runtime's
// cumulative GC pause histogram, re-bucketed to GCPauseBuckets. A runtime
// bucket is counted in the first boundary at or above its upper edge, so a
// quantile read from it is an upper bound; the sum uses each runtime
// bucket's lower edge, an underestimate (the runtime keeps no exact sum).
func NewGCPauseProducer() sdkmetric.Producer {
	return &gcPauseProducer{
		start:  time.Now(),
		bounds: GCPauseBuckets(),
		sample: []metrics.Sample{{Name: "/sched/pauses/total/gc:seconds"}},
	}
}

type gcPauseProducer struct {
	start  time.Time
	bounds []float64
	mu     sync.Mutex
	sample []metrics.Sample
}

// Produce implements sdkmetric.Producer.
func (p *gcPauseProducer) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	p.mu.Lock()
	metrics.Read(p.sample)
	v := p.sample[0].Value
	p.mu.Unlock()
	if v.Kind() != metrics.KindFloat64Histogram {
		return nil, nil // not available in this runtime
	}
	dp := rebucket(v.Float64Histogram(), p.bounds)
	dp.StartTime, dp.Time = p.start, time.Now()
	return []metricdata.ScopeMetrics{{
		Scope: instrumentation.Scope{Name: RuntimeScopeName},
		Metrics: []metricdata.Metrics{{
			Name:        MetricGCPauseDuration,
			Description: "Stop-the-world pauses of the garbage collector.",
			Unit:        "s",
			Data: metricdata.Histogram[float64]{
				Temporality: metricdata.CumulativeTemporality,
				DataPoints:  []metricdata.HistogramDataPoint[float64]{dp},
			},
		}},
	}}, nil
}

// rebucket folds a runtime histogram (Buckets[i]..Buckets[i+1] holds
// Counts[i]) into explicit bounds: each runtime bucket goes to the first
// bound >= its upper edge, or the overflow bucket.
func rebucket(h *metrics.Float64Histogram, bounds []float64) metricdata.HistogramDataPoint[float64] {
	counts := make([]uint64, len(bounds)+1)
	var total uint64
	var sum float64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		j := len(bounds)
		for k, b := range bounds {
			if hi <= b {
				j = k
				break
			}
		}
		counts[j] += c
		total += c
		if !math.IsInf(lo, 0) && lo > 0 {
			sum += lo * float64(c)
		}
	}
	return metricdata.HistogramDataPoint[float64]{
		Count: total, Sum: sum, Bounds: append([]float64(nil), bounds...), BucketCounts: counts,
	}
}
