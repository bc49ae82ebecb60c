package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/bulwark-go/bulwark/cmd/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errBudget: the run completed but -enforce found a budget not met.
var errBudget = errors.New("budget not met")

type options struct {
	serveBare      string
	api            string
	concurrency    int
	threads        int
	duration       time.Duration
	warmup         time.Duration
	users          int
	rounds         int
	out            string
	onlyRE         *regexp.Regexp
	soak           int64
	databaseURL    string
	redisURL       string
	command        string
	url            string
	client         string // auto, wrk or built-in
	wrk            string // path of wrk; "" when the built-in client is the reference
	enforce        bool
	compare        bool
	gozero         string
	profile        string
	goCmd          string
	overload       string
	openWorkers    int
	profileBenches []string
	clientProcs    int
	getenv         func(string) string
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{getenv: getenv}
	var only string
	var quick bool
	fs.StringVar(&o.serveBare, "serve-bare", "", "serve the bare ServeMux baseline on `ADDR` and do nothing else")
	fs.StringVar(&o.api, "api", "bin/api", "path of the built cmd/api `binary`")
	fs.IntVar(&o.concurrency, "c", 32, "concurrent keep-alive connections")
	fs.IntVar(&o.threads, "t", 2, "wrk threads")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "measured duration of each scenario (wrk: whole seconds)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each scenario")
	fs.IntVar(&o.users, "users", 20000, "users seeded in Postgres; the cache-miss scenario reads each once")
	fs.IntVar(&o.rounds, "rounds", 1, "run every scenario this many times, interleaved; figures are medians")
	fs.BoolVar(&quick, "quick", false, "short runs while developing: -d 2s -warmup 1s -users 2000 unless given")
	fs.StringVar(&o.out, "out", "", "markdown `file` to write the results into, between markers (empty: stdout only)")
	fs.StringVar(&only, "only", "", "run only scenarios whose name matches this `regexp`")
	fs.Int64Var(&o.soak, "soak", 0, "instead of the scenarios, one soak run of this many `requests`, sampling RSS")
	fs.StringVar(&o.databaseURL, "database-url", envOr(getenv, "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		"Postgres admin URL; a throw-away database is created next to it (Postgres scenarios skip when unreachable)")
	fs.StringVar(&o.redisURL, "redis-url", getenv("TEST_REDIS_URL"),
		"Redis URL; empty: a private redis-server on a free port when one is on PATH (exact round-trip counts), else redis://127.0.0.1:6379/0")
	fs.StringVar(&o.url, "url", "", "instead of the scenarios, load this running server's `URL` (GET, expecting 200) and print the figures")
	fs.StringVar(&o.command, "command", "", "the command line to print as the reproduction command (default: this one)")
	fs.StringVar(&o.client, "client", "auto", "reference load generator: wrk, built-in, or auto (wrk when on PATH)")
	fs.IntVar(&o.clientProcs, "client-procs", 1, "GOMAXPROCS while the built-in client runs a closed loop (0: unchanged); "+
		"one processor spares the Go runtime's idle spinning, which wrk's epoll loop does not pay")
	fs.BoolVar(&o.enforce, "enforce", false, "exit 1 when a budget of the scenarios run is not met or cannot be measured")
	fs.BoolVar(&o.compare, "compare", false, "instead of the scenarios, bulwark's modes beside a bare ServeMux and go-zero on GET /health (make compare)")
	fs.StringVar(&o.gozero, "gozero", "bin/compare-gozero", "path of the go-zero server `binary` for -compare (cmd/loadtest/gozero)")
	fs.StringVar(&o.profile, "profile", "", "instead of measuring, take CPU and allocation profiles of each API scenario under load into `DIR` (needs DEBUG_ADDR in cmd/api)")
	fs.StringVar(&o.goCmd, "go", "go", "the go command, for go test and go tool pprof (-profile)")
	benches := fs.String("profile-benches", "health/noop-file health/log-file health/otel-file users-get/mem users-get/mem-limiter-memory",
		"-profile: BenchmarkChain rows (space-separated) to profile in-process first, from the module root")
	fs.StringVar(&o.overload, "overload", "", "instead of the scenarios, the `scenario`'s capacity (closed loop), then open-loop loads at 1x, 2x and 4x of it")
	fs.IntVar(&o.openWorkers, "open-workers", 1024, "open loop: requests in flight at most (one connection each)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	o.profileBenches = strings.Fields(*benches)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if quick {
		if !set["d"] {
			o.duration = 2 * time.Second
		}
		if !set["warmup"] {
			o.warmup = time.Second
		}
		if !set["users"] {
			o.users = 2000
		}
	}
	if o.command == "" {
		o.command = strings.Join(args, " ")
	}
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			fmt.Fprintln(stderr, "loadtest: -only:", err)
			return 2
		}
		o.onlyRE = re
	}
	if o.rounds < 1 {
		fmt.Fprintln(stderr, "loadtest: -rounds must be at least 1")
		return 2
	}

	var err error
	switch {
	case o.serveBare != "":
		err = serveBare(ctx, o.serveBare)
	case o.url != "":
		err = loadURL(ctx, o, stdout)
	default:
		if err = o.pickClient(stderr); err == nil {
			err = drive(ctx, o, stdout, stderr)
		}
	}
	switch {
	case errors.Is(err, errBudget):
		fmt.Fprintln(stderr, "loadtest: -enforce:", err)
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "loadtest:", err)
		return 1
	}
	return 0
}

// pickClient settles -client: the path of wrk, or "" for the built-in client.
func (o *options) pickClient(stderr io.Writer) error {
	switch o.client {
	case "built-in":
		return nil
	case "wrk", "auto":
		path, err := loadgen.FindWrk()
		if err == nil {
			o.wrk = path
			return nil
		}
		if o.client == "wrk" {
			return fmt.Errorf("-client wrk: %w (apt-get install wrk; make loadtest installs it)", err)
		}
		fmt.Fprintln(stderr, "loadtest: wrk not on PATH; every row uses the built-in client, which may limit the fast rows (apt-get install wrk)")
		return nil
	}
	return fmt.Errorf("-client %q: want wrk, built-in or auto", o.client)
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}

// loadURL loads one running server with the built-in client: an ad-hoc
// measurement.
func loadURL(ctx context.Context, o options, stdout io.Writer) error {
	u, err := url.Parse(o.url)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("-url %q: want http://host:port/path", o.url)
	}
	c := loadgen.NewRawClient(u.Host, []loadgen.Target{loadgen.NewTarget(u.Host, u.RequestURI(), "", http.StatusOK)}, o.concurrency, 0)
	defer c.Close()
	if o.warmup > 0 {
		loadgen.ClosedLoop{Concurrency: o.concurrency, Duration: o.warmup, Do: c.Do}.Run(ctx)
	}
	r := loadgen.ClosedLoop{Concurrency: o.concurrency, Duration: o.duration, Do: c.Do}.Run(ctx)
	fmt.Fprintf(stdout, "%s: %d requests, %.0f req/s, p50 %s, p99 %s, errors %d %s\n", o.url, r.Requests, r.RPS(),
		dur(r.Latency.Percentile(0.5)), dur(r.Latency.Percentile(0.99)), r.Errors, r.FirstError)
	return nil
}

// serveBare is the baseline: a ServeMux with the API's /health bytes and
// headers and the API's default server timeouts, nothing else.
func serveBare(ctx context.Context, addr string) error {
	body := []byte(`{"status":"ok"}`)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	srv := &http.Server{Addr: addr, Handler: mux,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}
