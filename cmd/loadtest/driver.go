package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/cmd/internal/docsection"
	"github.com/bulwark-go/bulwark/cmd/internal/loadgen"
	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/service/user"
	"github.com/bulwark-go/bulwark/storage/postgres"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
)

// jwtSecret is given to every API process, so the driver can mint tokens
// for the users it seeds.
const jwtSecret = "bulwark-loadtest-secret-0123456789abcdef"

// scenario is one row of the table: a fresh server per run, one load.
type scenario struct {
	name    string   // row id, also what budgets refer to
	what    string   // what the row measures
	bare    bool     // the baseline binary instead of cmd/api
	argv    []string // another server binary instead of cmd/api (compare)
	env     map[string]string
	needsPG bool
	redis   bool // needs Redis; Redis round trips are counted
	otel    bool // exports to the sink; spans are counted
	// builtIn: always the built-in client (an expected status ≥ 400, a
	// count-bound load, or the client check itself).
	builtIn bool
	// targets builds the requests once the server is up.
	targets func(d *driver, p *loadgen.Process) ([]loadgen.Target, error)
	// requests bounds the measured load by count instead of time.
	requests func(d *driver) int64
	// once: the scenario's requests must all be first requests: no warm-up,
	// first round only.
	once bool
}

// measurement is one run of a scenario.
type measurement struct {
	round     int
	res       *loadgen.Result
	serverCPU time.Duration
	cpuErr    error
	hwmKB     int64
	redisRTT  float64
	rttErr    error
	spans     int64
	logBytes  int64
	exitErr   error
	open      *loadgen.OpenResult // open-loop runs only
	// warmRequests were served before the measured load; spans and log
	// bytes are divided by all requests served.
	warmRequests int64
}

// perServed divides a whole-life count by every request the server served.
func (m *measurement) perServed(n int64) float64 {
	if all := m.res.Requests + m.warmRequests; all > 0 {
		return float64(n) / float64(all)
	}
	return 0
}

// cpuPerReq is the server's CPU time per response, 0 when unknown.
func (m *measurement) cpuPerReq() time.Duration {
	if m.cpuErr != nil || m.res.Requests == 0 {
		return 0
	}
	return m.serverCPU / time.Duration(m.res.Requests)
}

// row is a scenario with its runs.
type row struct {
	sc      *scenario
	runs    []*measurement
	skipped string
}

// rep is the run with the median throughput: its latencies, RSS and notes
// stand for the row.
func (r *row) rep() *measurement {
	if len(r.runs) == 0 {
		return nil
	}
	s := slices.Clone(r.runs)
	slices.SortFunc(s, func(a, b *measurement) int { return cmpFloat(a.res.RPS(), b.res.RPS()) })
	return s[len(s)/2]
}

func (r *row) rps() float64 {
	vs := make([]float64, len(r.runs))
	for i, m := range r.runs {
		vs[i] = m.res.RPS()
	}
	return median(vs)
}

// cpuPerReq is the median over runs of server CPU per request, 0 when any
// run could not read it.
func (r *row) cpuPerReq() time.Duration {
	vs := make([]float64, len(r.runs))
	for i, m := range r.runs {
		c := m.cpuPerReq()
		if c == 0 {
			return 0
		}
		vs[i] = float64(c)
	}
	return time.Duration(median(vs))
}

func (r *row) errors() int64 {
	var n int64
	for _, m := range r.runs {
		n += m.res.Errors
	}
	return n
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type driver struct {
	o         options
	self      string
	dir       string
	stderr    io.Writer
	sink      *loadgen.Sink
	pgAdmin   string
	pgURL     string // the throw-away database; "" when Postgres is unavailable
	rdb       *goredis.Client
	redisURL  string
	redisNote string // how Redis was found, for the report
	userIDs   []uuid.UUID
	tokens    []string
	minter    *service.Tokens
}

// setUp prepares everything scenarios need; the returned function undoes it.
func setUp(ctx context.Context, o options, stderr io.Writer) (*driver, func(), error) {
	if _, err := os.Stat(o.api); err != nil {
		return nil, nil, fmt.Errorf("-api %s: %w (run make loadtest, which builds it)", o.api, err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "bulwark-loadtest-")
	if err != nil {
		return nil, nil, err
	}
	d := &driver{o: o, self: self, dir: dir, stderr: stderr, minter: service.NewTokens([]byte(jwtSecret), 6*time.Hour)}
	var undo []func()
	cleanup := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		_ = os.RemoveAll(dir)
	}
	if d.sink, err = loadgen.StartSink(); err != nil {
		cleanup()
		return nil, nil, err
	}
	undo = append(undo, d.sink.Close)
	if stop := d.connectRedis(ctx); stop != nil {
		undo = append(undo, stop)
	}
	if err := d.createDatabase(ctx); err != nil {
		fmt.Fprintln(stderr, "loadtest: Postgres scenarios skipped:", err)
		if d.pgURL != "" {
			d.dropDatabase()
			d.pgURL = ""
		}
	} else {
		undo = append(undo, d.dropDatabase)
	}
	return d, cleanup, nil
}

func drive(ctx context.Context, o options, stdout, stderr io.Writer) error {
	d, cleanup, err := setUp(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	started, load0 := time.Now().UTC(), loadgen.LoadAvg()
	switch {
	case o.soak > 0:
		return d.soak(ctx, stdout, started, load0)
	case o.compare:
		return d.compare(ctx, stdout, started, load0)
	case o.profile != "":
		return d.profiles(ctx, stdout)
	case o.overload != "":
		return d.overload(ctx, stdout, started, load0)
	}
	rows, err := d.runRounds(ctx, d.scenarios(), false)
	if err != nil {
		return err
	}
	budgets := d.budgets(rows)
	report := d.report(rows, budgets, started, load0, loadgen.LoadAvg())
	fmt.Fprintln(stdout, report)
	if o.out != "" {
		if err := docsection.Write(o.out, "loadtest", report); err != nil {
			return err
		}
	}
	if o.enforce {
		return enforce(budgets)
	}
	return nil
}

// runRounds runs the scenarios -only selects, o.rounds times interleaved;
// with rotate, each round starts one scenario later, so no scenario always
// runs first or last.
func (d *driver) runRounds(ctx context.Context, scs []*scenario, rotate bool) ([]*row, error) {
	var rows []*row
	for _, sc := range scs {
		if d.o.onlyRE == nil || d.o.onlyRE.MatchString(sc.name) {
			rows = append(rows, &row{sc: sc})
		}
	}
	for round := range d.o.rounds {
		for i := range rows {
			r := rows[i]
			if rotate {
				r = rows[(i+round)%len(rows)]
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if r.skipped != "" || (r.sc.once && round > 0) {
				continue
			}
			m, skip := d.runScenario(ctx, r.sc, nil)
			if skip != "" {
				r.skipped = skip
				fmt.Fprintf(d.stderr, "%-28s skipped: %s\n", r.sc.name, firstLine(skip))
				continue
			}
			m.round = round
			r.runs = append(r.runs, m)
			fmt.Fprintf(d.stderr, "%-28s %-8s %8.0f req/s  server CPU %-9s p50 %-9v p99 %-9v errors %d\n",
				r.sc.name, m.res.Client, m.res.RPS(), usPerReq(m.cpuPerReq()), dur(m.res.Latency.Percentile(0.50)),
				dur(m.res.Latency.Percentile(0.99)), m.res.Errors)
		}
	}
	return rows, nil
}

// procEnv is a server's environment: env plus PATH and HOME, nothing else
// of ours.
func (d *driver) procEnv(env map[string]string) map[string]string {
	e := maps.Clone(env)
	if e == nil {
		e = map[string]string{}
	}
	e["PATH"], e["HOME"] = d.o.getenv("PATH"), d.o.getenv("HOME")
	return e
}

func (d *driver) apiEnv(kv ...string) map[string]string {
	env := map[string]string{"LOG_JSON": "true", "LOG_LEVEL": "info", "JWT_SECRET": jwtSecret, "TELEMETRY_MODE": "noop"}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

// otelEnv is otel mode at 100% sampling exporting to the sink.
func (d *driver) otelEnv(kv ...string) map[string]string {
	return d.apiEnv(append([]string{"TELEMETRY_MODE", "otel", "TELEMETRY_SAMPLE_RATE", "1",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "http://" + d.sink.Addr, "OTEL_METRIC_EXPORT_INTERVAL", "5000"}, kv...)...)
}

func healthTargets(_ *driver, p *loadgen.Process) ([]loadgen.Target, error) {
	return []loadgen.Target{loadgen.NewTarget(p.Addr, "/health", "", http.StatusOK)}, nil
}

// selfTargets: each of the first n seeded users reads itself, round robin.
func selfTargets(n int) func(d *driver, p *loadgen.Process) ([]loadgen.Target, error) {
	return func(d *driver, p *loadgen.Process) ([]loadgen.Target, error) {
		n := min(n, len(d.userIDs))
		ts := make([]loadgen.Target, n)
		for i := range n {
			ts[i] = loadgen.NewTarget(p.Addr, "/api/v1/users/"+d.userIDs[i].String(), d.tokens[i], http.StatusOK)
		}
		return ts, nil
	}
}

// signupTarget signs one user up through the API (memory store) and reads
// it back with a token minted for it.
func signupTarget(d *driver, p *loadgen.Process) ([]loadgen.Target, error) {
	body := `{"email":"load-` + randHex(6) + `@example.com","password":"load test password"}`
	resp, err := http.Post("http://"+p.Addr+"/api/v1/users", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("sign-up: %d %s", resp.StatusCode, raw)
	}
	var u struct{ ID uuid.UUID }
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, err
	}
	tok, err := d.minter.Issue(u.ID, 0) // a new user: token version 0
	if err != nil {
		return nil, err
	}
	return []loadgen.Target{loadgen.NewTarget(p.Addr, "/api/v1/users/"+u.ID.String(), tok, http.StatusOK)}, nil
}

// Row names the budgets refer to.
const (
	rowBare        = "health/bare"
	rowBareBuiltIn = "health/bare-built-in"
	rowBareAgain   = "health/bare-again"
	rowNoop        = "health/noop"
	rowLog         = "health/log"
	rowOTel        = "health/otel"
	rowMem         = "users-get/mem"
	rowMemOTel     = "users-get/mem-otel"
	rowMemRedis    = "users-get/mem-limiter-redis"
	rowOverLimit   = "over-limit/redis"
	rowPGNoCache   = "users-get/pg-nocache"
	rowPGMiss      = "users-get/pg-cache-miss"
	rowPGHit       = "users-get/pg-cache-hit"
)

func (d *driver) scenarios() []*scenario {
	noop := d.apiEnv()
	hitUsers := 1000
	return []*scenario{
		{name: rowBare, what: "bare ServeMux, `GET /health`", bare: true, targets: healthTargets},
		{name: rowBareBuiltIn, what: "the same with the built-in client: it must not be the bottleneck", bare: true, builtIn: true, targets: healthTargets},
		{name: rowNoop, what: "api, noop mode, JSON access log to a file", env: noop, targets: healthTargets},
		{name: rowLog, what: "api, log mode (metric lines + access log, JSON to a file)", env: d.apiEnv("TELEMETRY_MODE", "log"), targets: healthTargets},
		{name: rowOTel, what: "api, otel mode, 100% sampled, OTLP/HTTP to an in-process sink, access log to a file", env: d.otelEnv(), otel: true, targets: healthTargets},
		{name: rowMem, what: "api, `GET /api/v1/users/{id}` (self, memory store), noop mode, limiter off", env: noop, targets: signupTarget},
		{name: rowMemOTel, what: "same route, otel mode (100% sampled, OTLP to the sink)", env: d.otelEnv(), otel: true, targets: signupTarget},
		{name: rowMemRedis, what: "same route, noop mode, Redis limiter on (limit never reached)", env: d.apiEnv(
			"REDIS_URL", d.redisURL, "RATE_LIMIT_ENABLED", "true", "RATE_LIMIT_REQUESTS", "1073741824"), redis: true, targets: signupTarget},
		{name: rowOverLimit, what: "api, `GET /api/v1/users/me` with a valid token of an unknown user, over a Redis limit of 1: every request 429", env: d.apiEnv(
			"REDIS_URL", d.redisURL, "RATE_LIMIT_ENABLED", "true", "RATE_LIMIT_REQUESTS", "1", "RATE_LIMIT_WINDOW_SECONDS", "3600"), redis: true, builtIn: true,
			targets: func(d *driver, p *loadgen.Process) ([]loadgen.Target, error) {
				// A fresh identity (user:<random id>, never seen by Redis)
				// with a one-hour window: the warm-up's first request is the
				// only one allowed (a 401: no such user), all others are 429.
				tok, err := d.minter.Issue(uuid.New(), 0)
				if err != nil {
					return nil, err
				}
				return []loadgen.Target{loadgen.NewTarget(p.Addr, "/api/v1/users/me", tok, http.StatusTooManyRequests)}, nil
			}},
		{name: rowPGNoCache, what: fmt.Sprintf("api, `GET /api/v1/users/{id}` (self) on Postgres, cache off, %d users round robin", hitUsers),
			env: d.apiEnv("DATABASE_URL", d.pgURL), needsPG: true, targets: selfTargets(hitUsers)},
		{name: rowPGMiss, what: "same, Redis cache on, every request a user not yet cached (one request per seeded user)",
			env: d.apiEnv("DATABASE_URL", d.pgURL, "REDIS_URL", d.redisURL, "CACHE_ENABLED", "true"), needsPG: true, redis: true, builtIn: true, once: true,
			targets: selfTargets(d.o.users), requests: func(d *driver) int64 { return int64(len(d.userIDs)) }},
		{name: rowPGHit, what: fmt.Sprintf("same, Redis cache on, the %d users cached", hitUsers),
			env: d.apiEnv("DATABASE_URL", d.pgURL, "REDIS_URL", d.redisURL, "CACHE_ENABLED", "true"), needsPG: true, redis: true,
			targets: selfTargets(hitUsers)},
		{name: rowBareAgain, what: "bare ServeMux again, last: the drift of the machine during the run", bare: true, targets: healthTargets},
	}
}

// runScenario starts the scenario's server, warms it up, measures, and
// stops it. during, when set, runs alongside the measured load (profiles).
// A non-empty skip says why nothing was measured.
func (d *driver) runScenario(ctx context.Context, sc *scenario, during func(p *loadgen.Process)) (m *measurement, skip string) {
	return d.runScenarioAt(ctx, sc, during, 0)
}

// runScenarioAt is runScenario; with rate > 0 the measured load is open
// loop at that many requests per second (built-in client; the warm-up
// stays closed loop).
func (d *driver) runScenarioAt(ctx context.Context, sc *scenario, during func(p *loadgen.Process), rate float64) (m *measurement, skip string) {
	switch {
	case sc.needsPG && d.pgURL == "":
		return nil, "Postgres unavailable"
	case sc.redis && d.rdb == nil:
		return nil, "Redis unavailable"
	}
	argv := []string{d.o.api}
	switch {
	case sc.bare:
		argv = []string{d.self, "-serve-bare", "{addr}"}
	case sc.argv != nil:
		argv = sc.argv
	}
	p, err := loadgen.StartProcess(ctx, loadgen.ProcessConfig{Name: sc.name, Dir: d.dir, Argv: argv, Env: d.procEnv(sc.env)})
	if err != nil {
		return nil, err.Error()
	}
	targets, err := sc.targets(d, p)
	if err != nil {
		_ = p.Stop()
		return nil, err.Error()
	}
	load := func(duration time.Duration, requests int64) (*loadgen.Result, error) {
		if d.o.wrk != "" && !sc.builtIn {
			w := loadgen.Wrk{Path: d.o.wrk, Threads: d.o.threads, Connections: d.o.concurrency, Duration: duration, Dir: d.dir}
			return w.Run(ctx, p.Addr, targets)
		}
		if d.o.clientProcs > 0 {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(d.o.clientProcs))
		}
		c := loadgen.NewRawClient(p.Addr, targets, d.o.concurrency, 0)
		defer c.Close()
		return loadgen.ClosedLoop{Concurrency: d.o.concurrency, Duration: duration, Requests: requests, Do: c.Do}.Run(ctx), nil
	}
	// Spans are exported in batches and the log is buffered: both are
	// counted over the server's whole life (warm-up included), per request
	// it served.
	spans0 := d.sink.Spans.Load()
	var warm int64
	if !sc.once && d.o.warmup > 0 {
		w, err := load(d.o.warmup, 0)
		if err != nil {
			_ = p.Stop()
			return nil, "warm-up: " + err.Error()
		}
		warm = w.Requests
	}
	m = &measurement{warmRequests: warm}
	var rtt0 int64
	if sc.redis {
		rtt0, m.rttErr = d.redisCalls(ctx)
	}
	var requests int64
	duration := d.o.duration
	if sc.requests != nil {
		requests, duration = sc.requests(d), 0
	}
	done := make(chan struct{})
	if during != nil {
		go func() { defer close(done); during(p) }()
	} else {
		close(done)
	}
	cpu0, cpuErr0 := loadgen.ProcCPU(p.Pid())
	if rate > 0 {
		c := loadgen.NewRawClient(p.Addr, targets, d.o.openWorkers, 0)
		m.open = loadgen.OpenLoop{Rate: rate, Duration: duration, Workers: d.o.openWorkers, Do: c.Do}.Run(ctx)
		c.Close()
		m.res = &loadgen.Result{Requests: m.open.Sent - m.open.Errors, Errors: m.open.Errors + m.open.Bad, Statuses: m.open.Statuses,
			Elapsed: m.open.Elapsed, Latency: m.open.Admitted, FirstError: m.open.FirstError, Client: "built-in, open loop"}
	} else {
		m.res, err = load(duration, requests)
	}
	cpu1, cpuErr1 := loadgen.ProcCPU(p.Pid())
	<-done
	if err != nil {
		_ = p.Stop()
		return nil, err.Error()
	}
	m.serverCPU, m.cpuErr = cpu1-cpu0, firstErr(cpuErr0, cpuErr1)
	if sc.redis && m.rttErr == nil {
		var rtt1 int64
		if rtt1, m.rttErr = d.redisCalls(ctx); m.rttErr == nil && m.res.Requests > 0 {
			m.redisRTT = float64(rtt1-rtt0-1) / float64(m.res.Requests) // less the first INFO
		}
	}
	m.hwmKB = loadgen.StatusKB(p.Pid(), "VmHWM")
	m.exitErr = p.Stop()
	if sc.otel {
		m.spans = d.sink.Spans.Load() - spans0 // flushed at shutdown
	}
	m.logBytes = p.LogBytes()
	return m, ""
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// --- Redis and Postgres ---

// connectRedis finds Redis: -redis-url, else a private redis-server on a
// free port (so round-trip counts are this run's alone), else the local
// default. It returns what stops the private server, if any.
func (d *driver) connectRedis(ctx context.Context) (stop func()) {
	u := d.o.redisURL
	if u == "" {
		if bin, err := exec.LookPath("redis-server"); err == nil {
			p, err := loadgen.StartProcess(ctx, loadgen.ProcessConfig{Name: "redis", Dir: d.dir,
				Argv: []string{bin, "--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"},
				Ready: func(addr string) error {
					c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
					defer c.Close()
					return c.Ping(ctx).Err()
				}})
			if err == nil {
				u, stop = "redis://"+p.Addr+"/0", func() { _ = p.Stop() }
				d.redisNote = "a private redis-server started for this run"
			} else {
				fmt.Fprintln(d.stderr, "loadtest: private redis-server:", err)
			}
		}
		if u == "" {
			u = "redis://127.0.0.1:6379/0"
			d.redisNote = "the shared Redis at " + u + " (round-trip counts include other clients)"
		}
	} else {
		d.redisNote = "Redis at -redis-url (round-trip counts include other clients)"
	}
	opt, err := goredis.ParseURL(u)
	if err != nil {
		fmt.Fprintln(d.stderr, "loadtest: Redis scenarios skipped:", err)
		return stop
	}
	opt.MaxRetries, opt.DialerRetries = -1, 1
	rdb := goredis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		fmt.Fprintln(d.stderr, "loadtest: Redis scenarios skipped:", err)
		return stop
	}
	d.rdb, d.redisURL = rdb, u
	stopServer := stop
	return func() {
		_ = rdb.Close()
		if stopServer != nil {
			stopServer()
		}
	}
}

// redisCalls counts the commands Redis has served to clients (INFO
// commandstats), less INCR, PTTL and PEXPIRE, which bulwark only runs inside
// its rate-limit script: the round trips. Server-wide.
func (d *driver) redisCalls(ctx context.Context) (int64, error) {
	s, err := d.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, fmt.Errorf("INFO commandstats: %w", err)
	}
	var n int64
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		switch name {
		case "cmdstat_incr", "cmdstat_pttl", "cmdstat_pexpire":
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		v, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO commandstats: %q: %w", line, err)
		}
		n += v
	}
	if n == 0 {
		return 0, fmt.Errorf("INFO commandstats counts no command at all (not even itself)")
	}
	return n, nil
}

// createDatabase makes a throw-away database next to the admin URL, applies
// the migrations and seeds o.users users through the store (one argon2id
// hash shared by all: nobody logs in), with a token minted for each.
func (d *driver) createDatabase(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.o.databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	name := "bulwark_load_" + randHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return err
	}
	u, err := url.Parse(d.o.databaseURL)
	if err != nil {
		return err
	}
	u.Path = "/" + name
	d.pgAdmin, d.pgURL = d.o.databaseURL, u.String()
	st, err := postgres.Open(ctx, d.pgURL, postgres.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	hash, err := service.DefaultArgon2id().Hash("load test password")
	if err != nil {
		return err
	}
	t0 := time.Now()
	d.userIDs = make([]uuid.UUID, d.o.users)
	d.tokens = make([]string, d.o.users)
	const workers = 4 // the store's pool size on a small machine
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < d.o.users && errs[w] == nil; i += workers {
				usr, err := st.Create(ctx, user.User{ID: uuid.New(), Email: fmt.Sprintf("load%d@example.com", i),
					HashedPassword: hash, IsActive: true, CreatedAt: time.Now().UTC()})
				if err != nil {
					errs[w] = fmt.Errorf("seed user %d: %w", i, err)
					return
				}
				d.userIDs[i] = usr.ID
				d.tokens[i], errs[w] = d.minter.Issue(usr.ID, usr.TokenVersion)
			}
		})
	}
	wg.Wait()
	if err := firstErr(errs...); err != nil {
		return err
	}
	fmt.Fprintf(d.stderr, "loadtest: %d users seeded through the store in %v\n", d.o.users, time.Since(t0).Round(time.Millisecond))
	return nil
}

func (d *driver) dropDatabase() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.pgAdmin)
	if err != nil {
		fmt.Fprintln(d.stderr, "loadtest: drop database:", err)
		return
	}
	defer conn.Close(context.Background())
	u, _ := url.Parse(d.pgURL)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+strings.TrimPrefix(u.Path, "/")+" WITH (FORCE)"); err != nil {
		fmt.Fprintln(d.stderr, "loadtest: drop database:", err)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
