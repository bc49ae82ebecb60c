package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func dur(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	}
}

func (d *driver) header(started time.Time, load0, load1 string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s with:\n\n```sh\n%s\n```\n\n", started.Format("2006-01-02 15:04 UTC"), d.o.command)
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, %s/%s, %s; load average %s at the start, %s at the end. ",
		cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), load0, load1)
	fmt.Fprintf(&b, "Load generator and servers share the machine.\n")
	return b.String()
}

func (d *driver) report(rows []*row, started time.Time, load0, load1 string) string {
	var b strings.Builder
	b.WriteString(d.header(started, load0, load1))
	fmt.Fprintf(&b, "%d keep-alive connections; each scenario on a fresh server process, %v warm-up then %v measured (count-bound rows say so).\n\n",
		d.o.concurrency, d.o.warmup, d.o.duration)
	by := map[string]*row{}
	for _, r := range rows {
		if r.skipped == "" {
			by[r.sc.name] = r
		}
	}
	bare := 0.0
	var nb int
	for _, n := range []string{"health/bare", "health/bare-again"} {
		if r := by[n]; r != nil {
			bare += r.res.rps()
			nb++
		}
	}
	if nb > 0 {
		bare /= float64(nb)
	}
	b.WriteString("| scenario | what | requests | req/s | vs bare | p50 | p99 | errors | peak RSS | Redis round trips/req | notes |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rows {
		if r.skipped != "" {
			fmt.Fprintf(&b, "| %s | %s | | | | | | | | | skipped: %s |\n", r.sc.name, r.sc.what, firstLine(r.skipped))
			continue
		}
		vs, rtt := "", ""
		if bare > 0 {
			vs = fmt.Sprintf("%.0f%%", 100*r.res.rps()/bare)
		}
		if r.sc.redis {
			rtt = fmt.Sprintf("%.2f", r.redisRTT)
		}
		var notes []string
		if r.sc.requests != nil {
			notes = append(notes, "count-bound")
		}
		if !r.sc.bare && r.res.requests > 0 {
			notes = append(notes, fmt.Sprintf("log %.0f B/req", float64(r.logBytes)/float64(r.res.requests)))
		}
		if r.sc.otel {
			notes = append(notes, fmt.Sprintf("%d spans exported (%.2f/req)", r.spans, float64(r.spans)/float64(r.res.requests)))
		}
		if r.res.errors > 0 {
			notes = append(notes, "first error: "+r.res.firstErr)
		}
		if r.exitErr != nil {
			notes = append(notes, "exit: "+r.exitErr.Error())
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %s | %s | %s | %d | %.1f MiB | %s | %s |\n",
			r.sc.name, r.sc.what, r.res.requests, r.res.rps(), vs,
			dur(r.res.percentile(0.50)), dur(r.res.percentile(0.99)), r.res.errors,
			float64(r.hwmKB)/1024, rtt, strings.Join(notes, "; "))
	}

	b.WriteString("\nBudgets (ratios of throughput in this run; \"bare\" is the mean of the two bare rows):\n\n")
	share := func(label, num string, den float64, denName string, want float64) {
		r := by[num]
		if r == nil || den <= 0 {
			fmt.Fprintf(&b, "- %s: not measured\n", label)
			return
		}
		got := r.res.rps() / den
		verdict := "met"
		if got < want {
			verdict = fmt.Sprintf("**NOT MET** (short by %.0f points)", 100*(want-got))
		}
		fmt.Fprintf(&b, "- %s: %s at %.0f%% of %s (budget ≥ %.0f%%): %s\n", label, num, 100*got, denName, 100*want, verdict)
	}
	share("noop mode, limiter and cache off, access log to a file", "health/noop", bare, "bare", 0.80)
	share("otel mode, 100% sampled, OTLP export", "health/otel", bare, "bare", 0.55)
	share("log mode, JSON to a file", "health/log", bare, "bare", 0.60)
	if off := by["users-get/mem"]; off != nil {
		share("Redis limiter on vs off, same in-scope route", "users-get/mem-limiter-redis", off.res.rps(), "users-get/mem", 0.50)
	}
	if on := by["users-get/mem-limiter-redis"]; on != nil {
		v := "met"
		if on.redisRTT > 1.05 {
			v = "**NOT MET**"
		}
		fmt.Fprintf(&b, "- Redis limiter, one round trip per request: %.2f (server-wide count): %s\n", on.redisRTT, v)
	}
	if hit, miss := by["users-get/pg-cache-hit"], by["users-get/pg-nocache"]; hit != nil && miss != nil {
		got := hit.res.rps() / miss.res.rps()
		v := "met"
		if got < 2 {
			v = fmt.Sprintf("**NOT MET** (short by %.2fx)", 2-got)
		}
		fmt.Fprintf(&b, "- cache hit vs uncached Postgres on `GET /api/v1/users/{id}`: %.2fx (budget ≥ 2x): %s\n", got, v)
	} else {
		b.WriteString("- cache hit vs uncached Postgres: not measured\n")
	}
	var errs int64
	for _, r := range rows {
		if r.res != nil {
			errs += r.res.errors
		}
	}
	v := "met"
	if errs > 0 {
		v = "**NOT MET**"
	}
	fmt.Fprintf(&b, "- no errors: %d errors in all rows: %s (flat memory over 1,000,000 requests: `make soak`)\n", errs, v)
	return b.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, "|", "/")
}
