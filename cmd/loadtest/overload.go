package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/cmd/internal/docsection"
	"github.com/bulwark-go/bulwark/cmd/internal/loadgen"
)

// overload measures one scenario's capacity with the closed loop, then
// loads it open loop (constant arrival rate) at 1x, 2x and 4x that
// capacity, a fresh server each time, and writes the "overload" section.
// Latencies of the open-loop rows count from each request's intended send
// time, so the queueing an overloaded server causes is in them.
func (d *driver) overload(ctx context.Context, stdout io.Writer, started time.Time, load0 string) error {
	var sc *scenario
	for _, s := range d.scenarios() {
		if s.name == d.o.overload {
			sc = s
		}
	}
	if sc == nil || sc.once || sc.builtIn {
		return fmt.Errorf("-overload %q: want a time-bound scenario with a 2xx answer (e.g. %s, %s)", d.o.overload, rowPGNoCache, rowMem)
	}
	capRun, skip := d.runScenario(ctx, sc, nil)
	if skip != "" {
		return fmt.Errorf("%s: %s", sc.name, skip)
	}
	capacity := capRun.res.RPS()
	fmt.Fprintf(d.stderr, "%-28s capacity %.0f req/s (%s client, closed loop)\n", sc.name, capacity, capRun.res.Client)
	var b strings.Builder
	b.WriteString(d.header(started, load0, loadgen.LoadAvg()))
	fmt.Fprintf(&b, "Scenario `%s`: %s. Capacity measured first with the closed loop (%s, %d connections): **%.0f req/s** "+
		"(server CPU %s/req). Then a constant arrival rate at 1x, 2x and 4x of it for %v each, a fresh server each time, "+
		"the built-in client with up to %d requests in flight (one connection each). Latencies count from each request's "+
		"intended send time (no coordinated omission); \"sent on time\" is what the generator managed before the schedule's end.\n\n",
		sc.name, sc.what, capRun.res.Client, d.o.concurrency, capacity, usPerReq(capRun.cpuPerReq()), d.o.duration, d.o.openWorkers)
	b.WriteString("| load | intended req/s | sent on time | goodput (2xx/s of the run's wall time) | statuses | transport errors | admitted p50 | admitted p99 | rejected p99 | rejected p99 from the send | send lag p99 | server CPU/req | generator |\n")
	b.WriteString("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, x := range []float64{1, 2, 4} {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, skip := d.runScenarioAt(ctx, sc, nil, x*capacity)
		if skip != "" {
			fmt.Fprintf(&b, "| %.0fx | %.0f | | | | | | | | | | | skipped: %s |\n", x, x*capacity, firstLine(skip))
			continue
		}
		o := m.open
		fmt.Fprintf(d.stderr, "%-28s %.0fx: %s\n", sc.name, x, o)
		gen := "kept its schedule"
		if o.Behind {
			gen = "**" + firstLine(o.Why) + "**"
		}
		fmt.Fprintf(&b, "| %.0fx | %.0f | %.0f/s | %.0f | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", x, o.IntendedRate, o.AchievedRate, o.Goodput,
			statusList(o.Statuses), o.Errors, pct(o.Admitted, 0.5), pct(o.Admitted, 0.99),
			pct(o.Rejected, 0.99), pct(o.RejectedService, 0.99), pct(o.SendLag, 0.99), usPerReq(m.cpuPerReq()), gen)
	}
	fmt.Fprintln(stdout, b.String())
	if d.o.out != "" {
		return docsection.Write(d.o.out, "overload", b.String())
	}
	return nil
}

// pct is a percentile, "—" without samples.
func pct(l loadgen.Latencies, p float64) string {
	if l.Count() == 0 {
		return "—"
	}
	return dur(l.Percentile(p))
}

func statusList(m map[int]int64) string {
	var parts []string
	for code := 100; code < 600; code++ {
		if n := m[code]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d×%d", n, code))
		}
	}
	return strings.Join(parts, " ")
}
