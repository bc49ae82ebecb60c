package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.serveBare, "serve-bare", "", "serve the bare ServeMux baseline on `ADDR` and do nothing else")
	flag.StringVar(&o.api, "api", "bin/api", "path of the built cmd/api `binary`")
	flag.IntVar(&o.concurrency, "c", 32, "concurrent keep-alive connections")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "measured duration of each scenario")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each scenario")
	flag.IntVar(&o.users, "users", 20000, "users seeded in Postgres; the cache-miss scenario reads each once")
	flag.StringVar(&o.out, "out", "", "markdown `file` to write the results into, between markers (empty: stdout only)")
	flag.StringVar(&o.only, "only", "", "run only scenarios whose name matches this `regexp`")
	flag.Int64Var(&o.soak, "soak", 0, "instead of the scenarios, one soak run of this many `requests`, sampling RSS")
	flag.StringVar(&o.databaseURL, "database-url", envOr("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		"Postgres admin URL; a throw-away database is created next to it (Postgres scenarios skip when unreachable)")
	flag.StringVar(&o.redisURL, "redis-url", envOr("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL (Redis scenarios skip when unreachable)")
	flag.StringVar(&o.url, "url", "", "instead of the scenarios, load this running server's `URL` (GET, expecting 200) and print the figures")
	flag.StringVar(&o.command, "command", "", "the command line to print as the reproduction command (default: this one)")
	flag.Parse()
	if o.command == "" {
		o.command = strings.Join(os.Args, " ")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case o.serveBare != "":
		err = serveBare(ctx, o.serveBare)
	case o.url != "":
		err = loadURL(o)
	default:
		if o.only != "" {
			if o.onlyRE, err = regexp.Compile(o.only); err != nil {
				break
			}
		}
		err = drive(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

type options struct {
	serveBare   string
	api         string
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	users       int
	out         string
	only        string
	onlyRE      *regexp.Regexp
	soak        int64
	databaseURL string
	redisURL    string
	command     string
	url         string
}

// loadURL loads one running server: an ad-hoc measurement.
func loadURL(o options) error {
	u, err := url.Parse(o.url)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("-url %q: want http://host:port/path", o.url)
	}
	path := u.RequestURI()
	l := load{addr: u.Host, targets: []target{newTarget(u.Host, path, "", http.StatusOK)}, concurrency: o.concurrency}
	if o.warmup > 0 {
		w := l
		w.duration = o.warmup
		w.run()
	}
	l.duration, l.keepSamples = o.duration, true
	r := l.run()
	fmt.Printf("%s: %d requests, %.0f req/s, p50 %s, p99 %s, errors %d %s\n", o.url, r.requests, r.rps(),
		dur(r.percentile(0.5)), dur(r.percentile(0.99)), r.errors, r.firstErr)
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
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
