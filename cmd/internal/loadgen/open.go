package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// OpenLoop is a constant-arrival-rate load: request i is due at
// start + i/Rate, for Duration, whether or not earlier requests have been
// answered. Up to Workers requests are in flight at once; a request whose
// due time comes while all workers are busy is sent as soon as one is free,
// and its latency still counts from its due time, so time spent queued in
// the generator is charged to the server that caused it (no coordinated
// omission).
type OpenLoop struct {
	Rate     float64 // intended requests per second (> 0)
	Duration time.Duration
	Workers  int // requests in flight at most (default 256)
	Do       Do
	// Rejected classifies a response as a rejection (load shed) rather
	// than admitted work; default: status 503.
	Rejected func(Outcome) bool
	// MaxLag is how late a send may be at the 99th percentile before the
	// run is reported as behind schedule (default 5ms).
	MaxLag time.Duration
}

// OpenResult is what an open-loop run measured.
type OpenResult struct {
	IntendedRate float64 // OpenLoop.Rate
	Intended     int64   // requests the schedule called for
	Sent         int64   // requests sent (every one, late or not)
	SentOnTime   int64   // sent before the schedule's end (start + Duration)
	AchievedRate float64 // SentOnTime / Duration
	Duration     time.Duration
	Elapsed      time.Duration // from the first due time to the last response (≥ Duration when behind)

	Statuses   map[int]int64
	Errors     int64 // transport errors (no response)
	Bad        int64 // responses that broke an expectation (Outcome.Bad)
	FirstError string
	Goodput    float64 // 2xx responses without Bad, per second of Elapsed

	// Latencies from the intended send time to the end of the response.
	Admitted Latencies // responses not Rejected
	Rejected Latencies // responses Rejected
	// The same from the actual send: what the server (and the network)
	// took, without time queued in the generator.
	AdmittedService, RejectedService Latencies
	// SendLag is how late each request was sent against its due time.
	SendLag     Latencies
	MaxInFlight int

	// Behind is set when the generator did not keep its schedule; Why says
	// how (all workers busy, or too slow to send on time).
	Behind bool
	Why    string
}

// Run drives the load; it returns once the last scheduled request has been
// answered (or failed).
func (l OpenLoop) Run(ctx context.Context) *OpenResult {
	workers := l.Workers
	if workers <= 0 {
		workers = 256
	}
	rejected := l.Rejected
	if rejected == nil {
		rejected = func(o Outcome) bool { return o.Status == 503 }
	}
	maxLag := l.MaxLag
	if maxLag <= 0 {
		maxLag = 5 * time.Millisecond
	}
	intended := int64(l.Rate * l.Duration.Seconds())
	res := &OpenResult{IntendedRate: l.Rate, Intended: intended, Duration: l.Duration, Statuses: map[int]int64{}}
	if intended <= 0 {
		res.Behind, res.Why = true, "nothing scheduled (rate × duration < 1)"
		return res
	}
	nsPer := float64(time.Second) / l.Rate
	var next atomic.Int64
	var inFlight, maxInFlight atomic.Int64
	var mu sync.Mutex
	var admitted, rejectedLat, admittedSvc, rejectedSvc, lags []time.Duration
	var wg sync.WaitGroup
	start := time.Now().Add(time.Millisecond) // every worker is parked before the first is due
	end := start.Add(l.Duration)
	for w := range workers {
		wg.Go(func() {
			var adm, rej, admSvc, rejSvc, lag []time.Duration
			statuses := map[int]int64{}
			var errs, bad, good, onTime int64
			var firstErr string
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for ctx.Err() == nil {
				seq := next.Add(1) - 1
				if seq >= intended {
					break
				}
				due := start.Add(time.Duration(float64(seq) * nsPer))
				if wait := time.Until(due); wait > 0 {
					timer.Reset(wait)
					select {
					case <-timer.C:
					case <-ctx.Done():
						return
					}
				}
				sent := time.Now()
				if n := inFlight.Add(1); n > maxInFlight.Load() {
					maxInFlight.Store(n) // racy max; close enough for a peak
				}
				o := l.Do(ctx, w, seq)
				inFlight.Add(-1)
				lat := time.Since(due)
				svc := lat - sent.Sub(due)
				lag = append(lag, sent.Sub(due))
				if sent.Before(end) {
					onTime++
				}
				switch {
				case o.Err != nil:
					errs++
					if firstErr == "" {
						firstErr = o.Err.Error()
					}
					continue
				case o.Bad != "":
					bad++
					if firstErr == "" {
						firstErr = o.Bad
					}
				case o.Status >= 200 && o.Status < 300:
					good++
				}
				statuses[o.Status]++
				if rejected(o) {
					rej, rejSvc = append(rej, lat), append(rejSvc, svc)
				} else {
					adm, admSvc = append(adm, lat), append(admSvc, svc)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			admitted, rejectedLat, lags = append(admitted, adm...), append(rejectedLat, rej...), append(lags, lag...)
			admittedSvc, rejectedSvc = append(admittedSvc, admSvc...), append(rejectedSvc, rejSvc...)
			for k, v := range statuses {
				res.Statuses[k] += v
			}
			res.Errors += errs
			res.Bad += bad
			res.Goodput += float64(good)
			res.SentOnTime += onTime
			if res.FirstError == "" {
				res.FirstError = firstErr
			}
		})
	}
	wg.Wait()
	res.Elapsed = max(time.Since(start), l.Duration)
	res.Sent = int64(len(lags))
	res.Goodput /= res.Elapsed.Seconds()
	res.AchievedRate = float64(res.SentOnTime) / l.Duration.Seconds()
	res.Admitted, res.Rejected, res.SendLag = NewLatencies(admitted), NewLatencies(rejectedLat), NewLatencies(lags)
	res.AdmittedService, res.RejectedService = NewLatencies(admittedSvc), NewLatencies(rejectedSvc)
	res.MaxInFlight = int(maxInFlight.Load())
	res.check(workers, maxLag)
	return res
}

// check decides whether the generator kept its schedule: it sent at least
// 99% of the scheduled requests before the schedule's end and its 99th
// percentile send lag is at most maxLag.
func (r *OpenResult) check(workers int, maxLag time.Duration) {
	lag := r.SendLag.Percentile(0.99)
	if float64(r.SentOnTime) >= 0.99*float64(r.Intended) && lag <= maxLag {
		return
	}
	r.Behind = true
	cause := "the generator could not send fast enough (CPU)"
	if r.MaxInFlight >= workers {
		cause = fmt.Sprintf("all %d workers were busy waiting for responses: the server is that far behind "+
			"(latencies still count from the intended send times; more workers would only move the queue into the server)", workers)
	}
	r.Why = fmt.Sprintf("behind schedule: %.0f of %.0f req/s sent on time, p99 send lag %v (limit %v): %s",
		r.AchievedRate, r.IntendedRate, lag.Round(time.Microsecond), maxLag, cause)
}

// String is a one-line summary.
func (r *OpenResult) String() string {
	s := fmt.Sprintf("open loop %.0f req/s for %v: sent %d (%.0f req/s on time), goodput %.0f/s, statuses %v, errors %d, bad %d, "+
		"admitted p50 %v p99 %v, rejected p99 %v (from the send: %v), send lag p99 %v",
		r.IntendedRate, r.Duration, r.Sent, r.AchievedRate, r.Goodput, r.Statuses, r.Errors, r.Bad,
		r.Admitted.Percentile(0.5).Round(time.Microsecond), r.Admitted.Percentile(0.99).Round(time.Microsecond),
		r.Rejected.Percentile(0.99).Round(time.Microsecond), r.RejectedService.Percentile(0.99).Round(time.Microsecond),
		r.SendLag.Percentile(0.99).Round(time.Microsecond))
	if r.Behind {
		s += "; " + r.Why
	}
	return s
}
