package loadgen

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Do sends request seq on behalf of worker (0 ≤ worker < the load's worker
// count; a worker never runs two requests at once) and returns its outcome.
type Do func(ctx context.Context, worker int, seq int64) Outcome

// ClosedLoop is a fixed-concurrency load: Concurrency workers each send
// their next request as soon as the previous one is answered, until
// Duration has passed, Requests have been sent or ctx is done, whichever
// comes first.
type ClosedLoop struct {
	Concurrency int
	Duration    time.Duration // 0: no time limit
	Requests    int64         // 0: no count limit
	Do          Do
	// Done counts completed responses as they come, for progress; may be nil.
	Done *atomic.Int64
}

// Result of a load.
type Result struct {
	Requests   int64         // responses received
	Errors     int64         // transport errors and responses that broke an expectation
	Statuses   map[int]int64 // nil when the client does not report them (wrk)
	Elapsed    time.Duration
	Latency    Latencies // exact, from every sample (wrk: its own percentiles)
	FirstError string
	Client     string // "built-in" or "wrk"
	// ClientCPU is the CPU time the client used: wrk's own; for the
	// built-in client this whole process's, which includes anything else it
	// runs meanwhile (an OTLP sink).
	ClientCPU time.Duration
}

// RPS is responses per second.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Latencies are sorted samples, or a client's own percentile table.
type Latencies struct {
	sorted []time.Duration
	table  map[float64]time.Duration // p → latency, when there are no samples
}

// NewLatencies sorts samples in place and wraps them.
func NewLatencies(samples []time.Duration) Latencies {
	slices.Sort(samples)
	return Latencies{sorted: samples}
}

// Percentile returns the p-quantile (0 ≤ p ≤ 1; 1 is the maximum), 0 without
// samples.
func (l Latencies) Percentile(p float64) time.Duration {
	if l.table != nil {
		return l.table[p]
	}
	if len(l.sorted) == 0 {
		return 0
	}
	return l.sorted[int(p*float64(len(l.sorted)-1))]
}

// Count is the number of samples (0 for a table).
func (l Latencies) Count() int { return len(l.sorted) }

// Run drives the load and returns when every worker has stopped.
func (l ClosedLoop) Run(ctx context.Context) *Result {
	// Shared counters cost a contended cache line per request: the next
	// sequence number is shared only when the load is count-bound, and
	// completions are published only when someone watches (Done).
	var next, errs, completed atomic.Int64
	var stop atomic.Bool
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWhenDone := context.AfterFunc(ctx, func() { stop.Store(true) })
	defer stopWhenDone()
	if l.Duration > 0 {
		t := time.AfterFunc(l.Duration, cancel)
		defer t.Stop()
	}
	var mu sync.Mutex
	res := &Result{Statuses: map[int]int64{}, Client: "built-in"}
	var all []time.Duration
	var wg sync.WaitGroup
	cpu0, start := SelfCPU(), time.Now()
	for w := range l.Concurrency {
		wg.Go(func() {
			statuses := map[int]int64{}
			var lat []time.Duration
			var firstErr string
			var n, nerr int64
			done := ctx.Done()
			for k := int64(0); !stop.Load(); k++ {
				// stop is set by a goroutine AfterFunc starts, which may run
				// late on a busy machine: a closed Done channel stops the
				// loop at once (a non-blocking receive costs no lock).
				select {
				case <-done:
					stop.Store(true)
					continue
				default:
				}
				seq := int64(w) + k*int64(l.Concurrency) // round robin without a shared counter
				if l.Requests > 0 {
					if seq = next.Add(1) - 1; seq >= l.Requests {
						break
					}
				}
				t0 := time.Now()
				o := l.Do(ctx, w, seq)
				d := time.Since(t0)
				if o.Err != nil {
					if stop.Load() && ctx.Err() != nil {
						break // cut off by the end of the load: not an outcome
					}
					nerr++
					if firstErr == "" {
						firstErr = o.Err.Error()
					}
					continue
				}
				n++
				if l.Done != nil {
					l.Done.Add(1)
				}
				statuses[o.Status]++
				lat = append(lat, d)
				if o.Bad != "" {
					nerr++
					if firstErr == "" {
						firstErr = o.Bad
					}
				}
			}
			completed.Add(n)
			errs.Add(nerr)
			mu.Lock()
			defer mu.Unlock()
			for k, v := range statuses {
				res.Statuses[k] += v
			}
			all = append(all, lat...)
			if res.FirstError == "" {
				res.FirstError = firstErr
			}
		})
	}
	wg.Wait()
	res.Elapsed, res.ClientCPU = time.Since(start), SelfCPU()-cpu0
	res.Requests, res.Errors = completed.Load(), errs.Load()
	res.Latency = NewLatencies(all)
	return res
}
