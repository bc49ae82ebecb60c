package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/cmd/internal/loadgen"
)

func dur(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	}
}

// usPerReq formats a CPU time per request in µs ("?" when unknown).
func usPerReq(d time.Duration) string {
	if d <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f µs", float64(d)/1e3)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, "|", "/")
}

func (d *driver) header(started time.Time, load0, load1 string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s with:\n\n```sh\n%s\n```\n\n", started.Format("2006-01-02 15:04 UTC"), d.o.command)
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, %s/%s, %s; load average %s at the start, %s at the end. ",
		loadgen.CPUModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), load0, load1)
	b.WriteString("Load generator and servers share the machine.\n")
	return b.String()
}

// clients says which load generator produced which rows.
func (d *driver) clients() string {
	if d.o.wrk == "" {
		return fmt.Sprintf("Client: the built-in one for every row (wrk was not found), %d keep-alive connections.", d.o.concurrency)
	}
	return fmt.Sprintf("Client: wrk (`%s -t%d -c%d`) for every row whose client column says so; the built-in client (%d keep-alive connections) "+
		"for rows wrk cannot do (an expected status ≥ 400, a count-bound load) and for the client check.", d.o.wrk, d.o.threads, d.o.concurrency, d.o.concurrency)
}

// baseline is the bare ServeMux's throughput and CPU per request: the mean
// of the bare rows (first and last) measured with the reference client.
func baseline(by map[string]*row) (rps float64, cpu time.Duration, ok bool) {
	var n int
	var cpuSum time.Duration
	cpuOK := true
	for _, name := range []string{rowBare, rowBareAgain} {
		if r := by[name]; r != nil {
			rps += r.rps()
			c := r.cpuPerReq()
			cpuSum += c
			cpuOK = cpuOK && c > 0
			n++
		}
	}
	if n == 0 {
		return 0, 0, false
	}
	if cpuOK {
		cpu = cpuSum / time.Duration(n)
	}
	return rps / float64(n), cpu, true
}

func (d *driver) report(rows []*row, budgets []budget, started time.Time, load0, load1 string) string {
	var b strings.Builder
	b.WriteString(d.header(started, load0, load1))
	fmt.Fprintf(&b, "%s Each scenario on a fresh server process: %v warm-up, then %v measured (count-bound rows say so)",
		d.clients(), d.o.warmup, d.o.duration)
	if d.o.rounds > 1 {
		fmt.Fprintf(&b, "; %d rounds, scenarios interleaved, figures are medians over the rounds", d.o.rounds)
	}
	fmt.Fprintf(&b, ". Redis: %s. Server CPU is the server process's user+system time (`/proc/<pid>/stat`) over the measured load, per response.\n\n", d.redisNote)
	by := byName(rows)
	bareRPS, bareCPU, _ := baseline(by)
	b.WriteString("| scenario | what | client | requests | req/s | vs bare | server CPU/req | bare CPU ÷ this | p50 | p99 | errors | peak RSS | Redis round trips/req | notes |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rows {
		if r.skipped != "" {
			fmt.Fprintf(&b, "| %s | %s | | | | | | | | | | | | skipped: %s |\n", r.sc.name, r.sc.what, firstLine(r.skipped))
			continue
		}
		m := r.rep()
		vs, cpuVs, rtt := "", "", ""
		if bareRPS > 0 {
			vs = fmt.Sprintf("%.0f%%", 100*r.rps()/bareRPS)
		}
		if c := r.cpuPerReq(); bareCPU > 0 && c > 0 {
			cpuVs = fmt.Sprintf("%.0f%%", 100*float64(bareCPU)/float64(c))
		}
		if r.sc.redis {
			rtt = "error"
			if m.rttErr == nil {
				rtt = fmt.Sprintf("%.2f", m.redisRTT)
			}
		}
		var notes []string
		if len(r.runs) > 1 {
			notes = append(notes, fmt.Sprintf("median of %d runs", len(r.runs)))
		}
		if r.sc.requests != nil {
			notes = append(notes, "count-bound")
		}
		if m.res.Requests > 0 {
			notes = append(notes, fmt.Sprintf("client CPU %s/req", usPerReq(m.res.ClientCPU/time.Duration(m.res.Requests))))
		}
		if !r.sc.bare && m.res.Requests > 0 {
			notes = append(notes, fmt.Sprintf("log %.0f B/req", m.perServed(m.logBytes)))
		}
		if r.sc.otel {
			notes = append(notes, fmt.Sprintf("%d spans exported (%.2f per request served, warm-up included)", m.spans, m.perServed(m.spans)))
		}
		if m.cpuErr != nil {
			notes = append(notes, "server CPU: "+m.cpuErr.Error())
		}
		if m.rttErr != nil {
			notes = append(notes, "Redis count: "+m.rttErr.Error())
		}
		if m.res.Errors > 0 {
			notes = append(notes, "first error: "+firstLine(m.res.FirstError))
		}
		if m.exitErr != nil {
			notes = append(notes, "exit: "+m.exitErr.Error())
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %.0f | %s | %s | %s | %s | %s | %d | %.1f MiB | %s | %s |\n",
			r.sc.name, r.sc.what, m.res.Client, m.res.Requests, r.rps(), vs, usPerReq(r.cpuPerReq()), cpuVs,
			dur(m.res.Latency.Percentile(0.50)), dur(m.res.Latency.Percentile(0.99)), r.errors(),
			float64(m.hwmKB)/1024, rtt, strings.Join(notes, "; "))
	}
	b.WriteString("\n\"vs bare\" is throughput over the mean of the two bare rows; \"bare CPU ÷ this\" is the bare rows' server CPU per request over this row's " +
		"(how much of bare's efficiency is left), which no client speed can flatter.\n\n")
	b.WriteString(budgetTable(budgets))
	return b.String()
}

func byName(rows []*row) map[string]*row {
	by := map[string]*row{}
	for _, r := range rows {
		if r.skipped == "" && len(r.runs) > 0 {
			by[r.sc.name] = r
		}
	}
	return by
}

// Budget verdicts.
const (
	vMet         = "met"
	vNotMet      = "NOT MET"
	vNotMeasured = "not measured"
	vError       = "error"
	vNotRun      = "not run"
)

// budget is one computed verdict.
type budget struct {
	what    string
	got     string // the measured figure, in words
	want    string
	verdict string
}

// failed: -enforce exits non-zero for it.
func (b budget) failed() bool {
	return b.verdict == vNotMet || b.verdict == vNotMeasured || b.verdict == vError
}

func budgetTable(bs []budget) string {
	var b strings.Builder
	b.WriteString("Budgets (computed from the rows above):\n\n| budget | measured | budget | verdict |\n|---|---|---|---|\n")
	for _, x := range bs {
		v := x.verdict
		if x.failed() {
			v = "**" + v + "**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", x.what, x.got, x.want, v)
	}
	return b.String()
}

func enforce(bs []budget) error {
	var failed []string
	for _, b := range bs {
		if b.failed() {
			failed = append(failed, fmt.Sprintf("%s: %s (%s; budget %s)", b.what, b.verdict, b.got, b.want))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  %s", errBudget, strings.Join(failed, "\n  "))
}

// budgetSet computes verdicts; a budget whose rows were not selected
// (-only) is "not run", one whose rows were selected but skipped or could
// not be measured is "not measured".
type budgetSet struct {
	selected map[string]bool
	by       map[string]*row
	out      []budget
}

func (s *budgetSet) add(b budget) { s.out = append(s.out, b) }

// need returns the rows, or records why the budget cannot be judged.
func (s *budgetSet) need(what, want string, names ...string) ([]*row, bool) {
	rs := make([]*row, len(names))
	for i, n := range names {
		if !s.selected[n] {
			s.add(budget{what: what, got: n + " not selected", want: want, verdict: vNotRun})
			return nil, false
		}
		if rs[i] = s.by[n]; rs[i] == nil {
			s.add(budget{what: what, got: n + " skipped", want: want, verdict: vNotMeasured})
			return nil, false
		}
	}
	return rs, true
}

func judge(ok bool) string {
	if ok {
		return vMet
	}
	return vNotMet
}

// ratio adds two budgets: num's throughput over den's, and den's server
// CPU per request over num's, each ≥ want. den "" is the bare baseline.
func (s *budgetSet) ratio(what, num, den string, want float64) {
	names := []string{num}
	if den == "" {
		names = append(names, rowBare)
	} else {
		names = append(names, den)
	}
	wantS := fmt.Sprintf("≥ %.0f%%", 100*want)
	rs, ok := s.need(what+", throughput", wantS, names...)
	if !ok {
		prev := s.out[len(s.out)-1]
		s.add(budget{what: what + ", server CPU/request", got: prev.got, want: wantS, verdict: prev.verdict})
		return
	}
	denName, denRPS, denCPU := den, 0.0, time.Duration(0)
	if den == "" {
		denName = "bare"
		denRPS, denCPU, _ = baseline(s.by)
	} else {
		denRPS, denCPU = rs[1].rps(), rs[1].cpuPerReq()
	}
	got := rs[0].rps() / denRPS
	s.add(budget{what: what + ", throughput", want: wantS, verdict: judge(got >= want),
		got: fmt.Sprintf("%s at %.0f%% of %s (%.0f vs %.0f req/s)", num, 100*got, denName, rs[0].rps(), denRPS)})
	numCPU := rs[0].cpuPerReq()
	if numCPU <= 0 || denCPU <= 0 {
		s.add(budget{what: what + ", server CPU/request", got: "server CPU could not be read", want: wantS, verdict: vError})
		return
	}
	eff := float64(denCPU) / float64(numCPU)
	s.add(budget{what: what + ", server CPU/request", want: wantS, verdict: judge(eff >= want),
		got: fmt.Sprintf("%s %s/req vs %s %s/req: %.0f%%", denName, usPerReq(denCPU), num, usPerReq(numCPU), 100*eff)})
}

func (d *driver) budgets(rows []*row) []budget {
	s := &budgetSet{selected: map[string]bool{}, by: byName(rows)}
	for _, r := range rows {
		s.selected[r.sc.name] = true
	}
	s.ratio("noop mode on `GET /health` vs bare, access log to a file", rowNoop, "", 0.85)
	s.ratio("log mode on `GET /health` vs bare", rowLog, "", 0.70)
	s.ratio("otel mode on `GET /health` vs bare, 100% sampled, OTLP export", rowOTel, "", 0.55)
	s.ratio("otel vs noop mode on `GET /api/v1/users/{id}` (memory store, limiter off)", rowMemOTel, rowMem, 0.75)
	s.ratio("Redis limiter on vs off, `GET /api/v1/users/{id}`", rowMemRedis, rowMem, 0.75)
	for _, name := range []string{rowMemRedis, rowOverLimit} {
		what := "one Redis round trip per request (" + name + ")"
		if rs, ok := s.need(what, "1.00 (± 0.05)", name); ok {
			m := rs[0].rep()
			switch {
			case m.rttErr != nil:
				s.add(budget{what: what, got: m.rttErr.Error(), want: "1.00 (± 0.05)", verdict: vError})
			case m.redisRTT <= 0:
				s.add(budget{what: what, got: fmt.Sprintf("%.2f: Redis counted no round trip of this row, so the limiter did not reach it", m.redisRTT),
					want: "1.00 (± 0.05)", verdict: vError})
			default:
				s.add(budget{what: what, got: fmt.Sprintf("%.2f", m.redisRTT), want: "1.00 (± 0.05)", verdict: judge(m.redisRTT >= 0.95 && m.redisRTT <= 1.05)})
			}
		}
	}
	if rs, ok := s.need("cache hit vs uncached Postgres on `GET /api/v1/users/{id}`, throughput", "≥ 2x", rowPGHit, rowPGNoCache); ok {
		got := rs[0].rps() / rs[1].rps()
		s.add(budget{what: "cache hit vs uncached Postgres on `GET /api/v1/users/{id}`, throughput", want: "≥ 2x", verdict: judge(got >= 2),
			got: fmt.Sprintf("%.2fx", got)})
	}
	// Two-sided: far below wrk, the built-in client limits its rows; far
	// above, something limited wrk's.
	const clientWhat = "built-in client vs wrk on the bare row (neither client is the bottleneck)"
	const clientWant = "95%-105%"
	if d.o.wrk == "" {
		s.add(budget{what: clientWhat, got: "wrk not installed", want: clientWant, verdict: vNotMeasured})
	} else if rs, ok := s.need(clientWhat, clientWant, rowBareBuiltIn, rowBare); ok {
		got := rs[0].rps() / rs[1].rps()
		m0, m1 := rs[0].rep(), rs[1].rep()
		s.add(budget{what: clientWhat, want: clientWant, verdict: judge(got >= 0.95 && got <= 1.05),
			got: fmt.Sprintf("%.0f vs %.0f req/s: %.0f%% (client CPU %s vs %s per request)", rs[0].rps(), rs[1].rps(), 100*got,
				usPerReq(m0.res.ClientCPU/time.Duration(max(1, m0.res.Requests))), usPerReq(m1.res.ClientCPU/time.Duration(max(1, m1.res.Requests))))})
	}
	var errs int64
	var exits []string
	for _, r := range rows {
		errs += r.errors()
		for _, m := range r.runs {
			if m.exitErr != nil {
				exits = append(exits, r.sc.name)
			}
		}
	}
	got := fmt.Sprintf("%d errors", errs)
	if len(exits) > 0 {
		got += "; unclean exit: " + strings.Join(exits, ", ")
	}
	s.add(budget{what: "no errors, every server exits 0 (flat memory: `make soak`)", got: got, want: "0", verdict: judge(errs == 0 && len(exits) == 0)})
	return s.out
}
