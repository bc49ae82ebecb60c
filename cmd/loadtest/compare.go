package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/cmd/internal/docsection"
	"github.com/bulwark-go/bulwark/cmd/internal/loadgen"
)

// Rows of the compare run.
const (
	cmpBare      = "bare"
	cmpNoop      = "bulwark/noop"
	cmpLog       = "bulwark/log"
	cmpOTel      = "bulwark/otel"
	cmpGoZero    = "go-zero"
	cmpGoZeroOTL = "go-zero/otlp"
)

func (d *driver) compareScenarios() []*scenario {
	gz := []string{d.o.gozero}
	return []*scenario{
		{name: cmpBare, what: "bare ServeMux (`loadtest -serve-bare`)", bare: true, targets: healthTargets},
		{name: cmpNoop, what: "cmd/api, noop mode, JSON access log to a file", env: d.apiEnv(), targets: healthTargets},
		{name: cmpLog, what: "cmd/api, log mode (metric lines + access log)", env: d.apiEnv("TELEMETRY_MODE", "log"), targets: healthTargets},
		{name: cmpOTel, what: "cmd/api, otel mode, 100% sampled, OTLP/HTTP to the sink", env: d.otelEnv(), otel: true, targets: healthTargets},
		{name: cmpGoZero, what: "go-zero v1.10.3 `rest.Server`, default chain, JSON access log to a file, no span export", argv: gz, targets: healthTargets},
		{name: cmpGoZeroOTL, what: "the same with go-zero's OTel agent, 100% sampled, OTLP/HTTP to the same sink", argv: gz,
			env: map[string]string{"GOZERO_OTLP_ENDPOINT": d.sink.Addr}, otel: true, targets: healthTargets},
	}
}

// compare runs bulwark's modes beside a bare ServeMux and go-zero on GET
// /health, rounds interleaved (each round in a rotated order), and writes
// the table into the "compare" section of -out.
func (d *driver) compare(ctx context.Context, stdout io.Writer, started time.Time, load0 string) error {
	if _, err := os.Stat(d.o.gozero); err != nil {
		return fmt.Errorf("-gozero %s: %w (make compare builds it from cmd/loadtest/gozero)", d.o.gozero, err)
	}
	rows, err := d.runRounds(ctx, d.compareScenarios(), true)
	if err != nil {
		return err
	}
	by := byName(rows)
	var b strings.Builder
	b.WriteString(d.header(started, load0, loadgen.LoadAvg()))
	fmt.Fprintf(&b, "%s `GET /health` on each server, a fresh process per run: %v warm-up, %v measured; %d rounds, each in a rotated order. "+
		"Figures are medians over the rounds; \"vs bare\" is the median of each round's ratio to that round's bare row. "+
		"Server CPU is the server process's user+system time per response.\n\n",
		d.clients(), d.o.warmup, d.o.duration, d.o.rounds)
	b.WriteString("| server | what | client | req/s | vs bare | server CPU/req | bare CPU ÷ this | p50 | p99 | errors | spans/req | notes |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	bare := by[cmpBare]
	for _, r := range rows {
		if r.skipped != "" || len(r.runs) == 0 {
			fmt.Fprintf(&b, "| %s | %s | | | | | | | | | | skipped: %s |\n", r.sc.name, r.sc.what, firstLine(r.skipped))
			continue
		}
		m := r.rep()
		vs, cpuVs, spans := "", "", ""
		if bare != nil {
			if x, ok := pairedRatio(r, bare, throughput); ok {
				vs = fmt.Sprintf("%.2f", x)
			}
			if x, ok := pairedRatio(r, bare, efficiency); ok {
				cpuVs = fmt.Sprintf("%.2f", x)
			}
		}
		if r.sc.otel && m.res.Requests > 0 {
			spans = fmt.Sprintf("%.2f", m.perServed(m.spans))
		}
		var notes []string
		if m.res.Errors > 0 {
			notes = append(notes, "first error: "+firstLine(m.res.FirstError))
		}
		if m.exitErr != nil {
			notes = append(notes, "exit: "+firstLine(m.exitErr.Error()))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %d | %s | %s |\n", r.sc.name, r.sc.what, m.res.Client,
			r.rps(), vs, usPerReq(r.cpuPerReq()), cpuVs, dur(m.res.Latency.Percentile(0.5)), dur(m.res.Latency.Percentile(0.99)),
			r.errors(), spans, strings.Join(notes, "; "))
	}
	b.WriteString("\n")
	b.WriteString(budgetTable(d.compareBudgets(rows)))
	fmt.Fprintln(stdout, b.String())
	if d.o.out != "" {
		return docsection.Write(d.o.out, "compare", b.String())
	}
	return nil
}

// A measure of one run: throughput, or efficiency (the inverse of server
// CPU per request, so that higher is better for both).
type measure func(m *measurement) float64

func throughput(m *measurement) float64 { return m.res.RPS() }

func efficiency(m *measurement) float64 {
	if c := m.cpuPerReq(); c > 0 {
		return 1 / float64(c)
	}
	return 0
}

// pairedRatio is the median over rounds of num's measure over den's in the
// same round.
func pairedRatio(num, den *row, f measure) (float64, bool) {
	byRound := map[int]*measurement{}
	for _, m := range den.runs {
		byRound[m.round] = m
	}
	var xs []float64
	for _, m := range num.runs {
		if o := byRound[m.round]; o != nil && f(o) > 0 && f(m) > 0 {
			xs = append(xs, f(m)/f(o))
		}
	}
	return median(xs), len(xs) > 0
}

func (d *driver) compareBudgets(rows []*row) []budget {
	by := byName(rows)
	var out []budget
	check := func(what, num, den string, want float64, unit string) {
		for _, k := range []struct {
			name string
			f    measure
		}{{"throughput", throughput}, {"server CPU/request", efficiency}} {
			b := budget{what: what + ", " + k.name, want: fmt.Sprintf("≥ %.2f%s", want, unit)}
			n, dn := by[num], by[den]
			x, ok := 0.0, n != nil && dn != nil
			if ok {
				x, ok = pairedRatio(n, dn, k.f)
			}
			if !ok {
				b.got, b.verdict = "not measured", vNotMeasured
			} else {
				b.got, b.verdict = fmt.Sprintf("%.2f%s", x, unit), judge(x >= want)
			}
			out = append(out, b)
		}
	}
	check("bulwark noop vs bare", cmpNoop, cmpBare, 0.85, "")
	check("bulwark log vs bare", cmpLog, cmpBare, 0.70, "")
	check("bulwark otel vs bare", cmpOTel, cmpBare, 0.55, "")
	check("bulwark otel vs go-zero with OTLP export", cmpOTel, cmpGoZeroOTL, 1.5, "x")
	return out
}
