package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/cmd/internal/docsection"
	"github.com/bulwark-go/bulwark/cmd/internal/loadgen"
)

// TestMain lets this test binary stand in for bin/loadtest when the driver
// runs itself as the bare baseline (-serve-bare ADDR).
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "-serve-bare" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		err := serveBare(ctx, os.Args[2])
		stop()
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// run of one scenario, rps req/s, cpu server CPU per request.
func fakeRow(name string, rps float64, cpu time.Duration, rtt float64, rttErr error) *row {
	sc := &scenario{name: name, redis: rtt != 0 || rttErr != nil}
	const n = 10000
	res := &loadgen.Result{Requests: n, Elapsed: time.Duration(float64(n) / rps * float64(time.Second))}
	return &row{sc: sc, runs: []*measurement{{res: res, serverCPU: cpu * n, redisRTT: rtt, rttErr: rttErr}}}
}

func verdicts(bs []budget) map[string]string {
	m := map[string]string{}
	for _, b := range bs {
		m[b.what] = b.verdict
	}
	return m
}

func TestBudgets(t *testing.T) {
	d := &driver{o: options{wrk: "/usr/bin/wrk"}}
	rows := []*row{
		fakeRow(rowBare, 1000, 10*time.Microsecond, 0, nil),
		fakeRow(rowBareBuiltIn, 960, 10*time.Microsecond, 0, nil),
		fakeRow(rowBareAgain, 1000, 10*time.Microsecond, 0, nil),
		fakeRow(rowNoop, 900, 20*time.Microsecond, 0, nil), // throughput met, CPU not
		fakeRow(rowMem, 500, 40*time.Microsecond, 0, nil),
		fakeRow(rowMemRedis, 400, 50*time.Microsecond, 0, errors.New("INFO commandstats: connection refused")),
		fakeRow(rowOverLimit, 400, 50*time.Microsecond, -1.0/10000, nil), // Redis counted nothing: (0-0-1)/n
	}
	v := verdicts(d.budgets(rows))
	for what, want := range map[string]string{
		"noop mode on `GET /health` vs bare, access log to a file, throughput":         vMet,
		"noop mode on `GET /health` vs bare, access log to a file, server CPU/request": vNotMet,
		"log mode on `GET /health` vs bare, throughput":                                vNotRun,
		"Redis limiter on vs off, `GET /api/v1/users/{id}`, throughput":                vMet,
		"Redis limiter on vs off, `GET /api/v1/users/{id}`, server CPU/request":        vMet,
		"one Redis round trip per request (" + rowMemRedis + ")":                       vError,
		"one Redis round trip per request (" + rowOverLimit + ")":                      vError,
		"built-in client vs wrk on the bare row (neither client is the bottleneck)":    vMet,
		"no errors, every server exits 0 (flat memory: `make soak`)":                   vMet,
	} {
		if v[what] != want {
			t.Errorf("%s: %q, want %q", what, v[what], want)
		}
	}
	if err := enforce(d.budgets(rows)); !errors.Is(err, errBudget) {
		t.Fatalf("enforce: %v, want errBudget", err)
	}
	// Only what ran is enforced; a skipped row is a failure.
	ok := []*row{fakeRow(rowBare, 1000, 10*time.Microsecond, 0, nil), fakeRow(rowLog, 800, 12*time.Microsecond, 0, nil)}
	if err := enforce(d.budgets(ok)); err != nil {
		t.Fatalf("enforce with every budget met or not run: %v", err)
	}
	skipped := append(ok, &row{sc: &scenario{name: rowNoop}, skipped: "Postgres unavailable"})
	if err := enforce(d.budgets(skipped)); !errors.Is(err, errBudget) {
		t.Fatalf("enforce with a selected row skipped: %v, want errBudget", err)
	}
}

func TestPairedRatio(t *testing.T) {
	mk := func(rps ...float64) *row {
		r := &row{sc: &scenario{}}
		for i, x := range rps {
			r.runs = append(r.runs, &measurement{round: i, res: &loadgen.Result{Requests: int64(x), Elapsed: time.Second}})
		}
		return r
	}
	// Round by round: 0.5, 0.9, 0.8 → median 0.8 (the ratio of medians
	// would be 900/1000 = 0.9).
	if got, ok := pairedRatio(mk(500, 900, 800), mk(1000, 1000, 1000), throughput); !ok || got != 0.8 {
		t.Fatalf("got %v %v", got, ok)
	}
}

// The whole command against the real cmd/api binary: two short rows,
// Postgres seeded through the store when it is there. Nothing timed is
// asserted: only that every figure was measured and that -enforce's exit
// code agrees with the verdicts it printed.
func TestRunAgainstAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and loads cmd/api")
	}
	dir := t.TempDir()
	api := filepath.Join(dir, "api")
	if out, err := exec.Command("go", "build", "-o", api, "../api").CombinedOutput(); err != nil {
		t.Fatalf("go build ../api: %v\n%s", err, out)
	}
	doc := filepath.Join(dir, "PERFORMANCE.md")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"loadtest", "-api", api, "-only", "^health/(bare|noop)$", "-d", "1s", "-warmup", "0s",
		"-c", "4", "-users", "20", "-out", doc, "-enforce"}, os.Getenv, &stdout, &stderr)
	section, err := docsection.Read(doc, "loadtest")
	if err != nil {
		t.Fatalf("exit %d, %v\n%s", code, err, stderr.String())
	}
	for _, want := range []string{"| health/bare |", "| health/noop |", "noop mode on `GET /health` vs bare"} {
		if !strings.Contains(section, want) {
			t.Errorf("report lacks %q:\n%s", want, section)
		}
	}
	if strings.Contains(section, "| ? |") || strings.Contains(section, "skipped") {
		t.Errorf("a figure was not measured:\n%s", section)
	}
	failed := strings.Contains(section, "**"+vNotMet+"**") || strings.Contains(section, "**"+vError+"**") ||
		strings.Contains(section, "**"+vNotMeasured+"**")
	if failed != (code == 1) {
		t.Fatalf("-enforce exit %d, failed verdicts printed: %v\n%s\n%s", code, failed, section, stderr.String())
	}
	if !strings.Contains(stderr.String(), "users seeded through the store") && !strings.Contains(stderr.String(), "Postgres scenarios skipped") {
		t.Errorf("no word on seeding:\n%s", stderr.String())
	}
}

// Every generated section of docs/PERFORMANCE.md has its markers, so the
// tools replace them instead of appending copies.
func TestPerformanceDocSections(t *testing.T) {
	for _, name := range []string{"bench", "loadtest", "compare", "overload", "profiles", "soak"} {
		if _, err := docsection.Read("../../docs/PERFORMANCE.md", name); err != nil {
			t.Error(err)
		}
	}
}
