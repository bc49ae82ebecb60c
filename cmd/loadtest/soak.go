package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/cmd/internal/docsection"
	"github.com/bulwark-go/bulwark/cmd/internal/loadgen"
)

// soak runs one server with every feature on (otel mode exporting to the
// sink, Postgres, Redis limiter with an unreachable limit, Redis cache) for
// o.soak requests spread over /health, a cached user read and a 404, and
// samples the server's RSS every second: memory must stay flat and no
// request may fail.
func (d *driver) soak(ctx context.Context, stdout io.Writer, started time.Time, load0 string) error {
	if d.pgURL == "" || d.rdb == nil {
		return fmt.Errorf("soak needs Postgres and Redis")
	}
	env := d.otelEnv("DATABASE_URL", d.pgURL, "REDIS_URL", d.redisURL, "CACHE_ENABLED", "true",
		"RATE_LIMIT_ENABLED", "true", "RATE_LIMIT_REQUESTS", "1073741824")
	s, err := loadgen.StartProcess(ctx, loadgen.ProcessConfig{Name: "soak", Dir: d.dir, Argv: []string{d.o.api}, Env: d.procEnv(env)})
	if err != nil {
		return err
	}
	n := min(1000, len(d.userIDs))
	targets := []loadgen.Target{loadgen.NewTarget(s.Addr, "/health", "", http.StatusOK)}
	for i := range n {
		targets = append(targets,
			loadgen.NewTarget(s.Addr, "/api/v1/users/"+d.userIDs[i].String(), d.tokens[i], http.StatusOK),
			loadgen.NewTarget(s.Addr, "/health", "", http.StatusOK))
		if i%10 == 0 {
			targets = append(targets, loadgen.NewTarget(s.Addr, "/api/v1/no-such-thing", "", http.StatusNotFound))
		}
	}
	var done atomic.Int64
	client := loadgen.NewRawClient(s.Addr, targets, d.o.concurrency, 0)
	defer client.Close()
	l := loadgen.ClosedLoop{Concurrency: d.o.concurrency, Requests: d.o.soak, Do: client.Do, Done: &done}
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
				samples = append(samples, sample{time.Since(t0), done.Load(), loadgen.StatusKB(s.Pid(), "VmRSS")})
				if len(samples)%10 == 0 {
					last := samples[len(samples)-1]
					fmt.Fprintf(d.stderr, "soak: %7d requests, RSS %.1f MiB\n", last.reqs, float64(last.rssKB)/1024)
				}
			}
		}
	}()
	cpu0, cpuErr0 := loadgen.ProcCPU(s.Pid())
	res := l.Run(ctx)
	cpu1, cpuErr1 := loadgen.ProcCPU(s.Pid())
	close(stop)
	<-sampled
	hwm := loadgen.StatusKB(s.Pid(), "VmHWM")
	exitErr := s.Stop()
	cpu := "?"
	if firstErr(cpuErr0, cpuErr1) == nil && res.Requests > 0 {
		cpu = usPerReq((cpu1 - cpu0) / time.Duration(res.Requests))
	}

	var b strings.Builder
	b.WriteString(d.header(started, load0, loadgen.LoadAvg()))
	fmt.Fprintf(&b, "\nOne server: otel mode (100%% sampled, OTLP to the sink), Postgres, Redis limiter (limit never reached) and Redis cache on; "+
		"%d keep-alive connections; requests round robin over `GET /health`, `GET /api/v1/users/{id}` for %d cached users and a 404.\n\n", d.o.concurrency, n)
	fmt.Fprintf(&b, "| requests | errors | req/s | server CPU/req | p50 | p99 | max | peak RSS | server exit |\n|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	exit := "0"
	if exitErr != nil {
		exit = exitErr.Error()
	}
	fmt.Fprintf(&b, "| %d | %d | %.0f | %s | %s | %s | %s | %.1f MiB | %s |\n\n", res.Requests, res.Errors, res.RPS(), cpu,
		dur(res.Latency.Percentile(0.5)), dur(res.Latency.Percentile(0.99)), dur(res.Latency.Percentile(1)), float64(hwm)/1024, exit)
	if res.Errors > 0 {
		fmt.Fprintf(&b, "First error: %s. Statuses: %v\n\n", res.FirstError, res.Statuses)
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
			float64(late)/1024, float64(early)/1024, 100*(float64(late)/float64(early)-1), verdict, res.Errors,
			map[bool]string{true: "met", false: "**NOT MET**"}[res.Errors == 0])
	}
	fmt.Fprintln(stdout, b.String())
	if d.o.out != "" {
		return docsection.Write(d.o.out, "soak", b.String())
	}
	return nil
}
