package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// soak runs one server with every feature on (otel mode exporting to the
// sink, Postgres, Redis limiter with an unreachable limit, Redis cache) for
// o.soak requests spread over /health, a cached user read and a 404, and
// samples the server's RSS every second: memory must stay flat and no
// request may fail.
func (d *driver) soak(ctx context.Context, _ string, started time.Time, load0 string) error {
	if d.pgURL == "" || d.rdb == nil {
		return fmt.Errorf("soak needs Postgres and Redis")
	}
	env := d.apiEnv("TELEMETRY_MODE", "otel", "TELEMETRY_SAMPLE_RATE", "1",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+d.sink.addr, "OTEL_METRIC_EXPORT_INTERVAL", "5000",
		"DATABASE_URL", d.pgURL, "REDIS_URL", d.redisURL, "CACHE_ENABLED", "true",
		"RATE_LIMIT_ENABLED", "true", "RATE_LIMIT_REQUESTS", "1073741824")
	s, err := startServer(ctx, "soak", d.dir, []string{d.o.api}, env)
	if err != nil {
		return err
	}
	n := min(1000, len(d.userIDs))
	targets := []target{newTarget(s.addr, "/health", "", http.StatusOK)}
	for i := range n {
		targets = append(targets,
			newTarget(s.addr, "/api/v1/users/"+d.userIDs[i].String(), d.tokens[i], http.StatusOK),
			newTarget(s.addr, "/health", "", http.StatusOK))
		if i%10 == 0 {
			targets = append(targets, newTarget(s.addr, "/api/v1/no-such-thing", "", http.StatusNotFound))
		}
	}
	var done atomic.Int64
	l := load{addr: s.addr, targets: targets, concurrency: d.o.concurrency, requests: d.o.soak, keepSamples: true, done: &done}
	type sample struct {
		at    time.Duration
		reqs  int64
		rssKB int64
	}
	var samples []sample
	stop := make(chan struct{})
	sampled := make(chan struct{})
	t0 := time.Now()
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				samples = append(samples, sample{time.Since(t0), done.Load(), procStatusKB(s.cmd.Process.Pid, "VmRSS")})
				if len(samples)%10 == 0 {
					last := samples[len(samples)-1]
					fmt.Fprintf(os.Stderr, "soak: %7d requests, RSS %.1f MiB\n", last.reqs, float64(last.rssKB)/1024)
				}
			}
		}
	}()
	res := l.run()
	close(stop)
	<-sampled
	hwm := procStatusKB(s.cmd.Process.Pid, "VmHWM")
	exitErr := s.stop()

	var b strings.Builder
	b.WriteString(d.header(started, load0, loadAvg()))
	fmt.Fprintf(&b, "\nOne server: otel mode (100%% sampled, OTLP to the sink), Postgres, Redis limiter (limit never reached) and Redis cache on; "+
		"%d keep-alive connections; requests round robin over `GET /health`, `GET /api/v1/users/{id}` for %d cached users and a 404.\n\n", d.o.concurrency, n)
	fmt.Fprintf(&b, "| requests | errors | req/s | p50 | p99 | max | peak RSS | server exit |\n|---:|---:|---:|---:|---:|---:|---:|---|\n")
	exit := "0"
	if exitErr != nil {
		exit = exitErr.Error()
	}
	fmt.Fprintf(&b, "| %d | %d | %.0f | %s | %s | %s | %.1f MiB | %s |\n\n", res.requests, res.errors, res.rps(),
		dur(res.percentile(0.5)), dur(res.percentile(0.99)), dur(res.percentile(1)), float64(hwm)/1024, exit)
	if res.errors > 0 {
		fmt.Fprintf(&b, "First error: %s. Statuses: %v\n\n", res.firstErr, res.statuses)
	}
	b.WriteString("RSS over the run (VmRSS, sampled every second; ten evenly spaced samples):\n\n| elapsed | requests done | RSS |\n|---:|---:|---:|\n")
	for i := range 10 {
		if len(samples) == 0 {
			break
		}
		sm := samples[min(len(samples)-1, (i+1)*len(samples)/10)]
		if i == 9 {
			sm = samples[len(samples)-1]
		}
		fmt.Fprintf(&b, "| %v | %d | %.1f MiB |\n", sm.at.Round(time.Second), sm.reqs, float64(sm.rssKB)/1024)
	}
	if len(samples) >= 4 {
		maxOf := func(ss []sample) int64 {
			var m int64
			for _, s := range ss {
				m = max(m, s.rssKB)
			}
			return m
		}
		q := len(samples) / 4
		early, late := maxOf(samples[q:2*q]), maxOf(samples[3*q:])
		verdict := "flat (met)"
		if float64(late) > 1.10*float64(early) {
			verdict = "**growing (NOT MET)**"
		}
		fmt.Fprintf(&b, "\nMemory: highest RSS in the last quarter %.1f MiB vs the second quarter %.1f MiB (%+.1f%%): %s. Errors: %d (%s).\n",
			float64(late)/1024, float64(early)/1024, 100*(float64(late)/float64(early)-1), verdict, res.errors,
			map[bool]string{true: "met", false: "**NOT MET**"}[res.errors == 0])
	}
	fmt.Println(b.String())
	if d.o.out != "" {
		return writeSection(d.o.out, "soak", b.String())
	}
	return nil
}
