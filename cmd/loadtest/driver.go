package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/postgres"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
)

// jwtSecret is given to every API process, so the driver can mint tokens
// for the users it seeds.
const jwtSecret = "bulwark-loadtest-secret-0123456789abcdef"

// scenario is one row of the table: one fresh server, one load.
type scenario struct {
	name    string // row id, also the budget references
	what    string // what the row measures
	bare    bool   // the baseline binary instead of cmd/api
	env     map[string]string
	needsPG bool
	redis   bool // needs Redis; Redis round trips are counted
	otel    bool // exports to the sink; spans are counted
	// targets builds the requests once the server is up.
	targets func(d *driver, s *server) ([]target, error)
	// requests bounds the measured load by count instead of time.
	requests func(d *driver) int64
	// noWarmup: the scenario's requests must all be first requests.
	noWarmup bool
}

// row is a measured scenario.
type row struct {
	sc       *scenario
	res      *result
	hwmKB    int64
	redisRTT float64
	spans    int64
	logBytes int64
	exitErr  error
	skipped  string
}

type driver struct {
	o        options
	dir      string
	sink     *otlpSink
	pgAdmin  string
	pgURL    string // the throw-away database; "" when Postgres is unavailable
	rdb      *goredis.Client
	redisURL string
	userIDs  []uuid.UUID
	tokens   []string
	minter   *service.Tokens
}

func drive(ctx context.Context, o options) error {
	if _, err := os.Stat(o.api); err != nil {
		return fmt.Errorf("-api %s: %w (run make loadtest, which builds it)", o.api, err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bulwark-loadtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d := &driver{o: o, dir: dir, minter: service.NewTokens([]byte(jwtSecret), 6*time.Hour)}
	if d.sink, err = startSink(); err != nil {
		return err
	}
	defer d.sink.close()
	d.connectRedis(ctx)
	if d.rdb != nil {
		defer d.rdb.Close()
	}
	if err := d.createDatabase(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest: Postgres scenarios skipped:", err)
	} else {
		defer d.dropDatabase()
	}

	started := time.Now().UTC()
	load0 := loadAvg()
	if o.soak > 0 {
		return d.soak(ctx, self, started, load0)
	}
	var rows []*row
	for _, sc := range d.scenarios() {
		if o.onlyRE != nil && !o.onlyRE.MatchString(sc.name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r := d.runScenario(ctx, self, sc)
		rows = append(rows, r)
		if r.skipped != "" {
			fmt.Fprintf(os.Stderr, "%-28s skipped: %s\n", sc.name, r.skipped)
			continue
		}
		fmt.Fprintf(os.Stderr, "%-28s %8.0f req/s  p50 %-9v p99 %-9v errors %d  peak RSS %d MiB\n",
			sc.name, r.res.rps(), r.res.percentile(0.50).Round(time.Microsecond), r.res.percentile(0.99).Round(time.Microsecond),
			r.res.errors, r.hwmKB/1024)
	}
	report := d.report(rows, started, load0, loadAvg())
	fmt.Println(report)
	if o.out != "" {
		return writeSection(o.out, "loadtest", report)
	}
	return nil
}

func (d *driver) apiEnv(kv ...string) map[string]string {
	env := map[string]string{"LOG_JSON": "true", "LOG_LEVEL": "info", "JWT_SECRET": jwtSecret, "TELEMETRY_MODE": "noop"}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

func healthTargets(_ *driver, s *server) ([]target, error) {
	return []target{newTarget(s.addr, "/health", "", http.StatusOK)}, nil
}

// selfTargets: each seeded user reads itself, round robin.
func selfTargets(n int) func(d *driver, s *server) ([]target, error) {
	return func(d *driver, s *server) ([]target, error) {
		n := min(n, len(d.userIDs))
		ts := make([]target, n)
		for i := range n {
			ts[i] = newTarget(s.addr, "/api/v1/users/"+d.userIDs[i].String(), d.tokens[i], http.StatusOK)
		}
		return ts, nil
	}
}

// signupTarget signs one user up through the API (memory store) and reads
// it back with a token minted for it.
func signupTarget(_ *driver, s *server) ([]target, error) {
	body := `{"email":"load-` + randHex(6) + `@example.com","password":"load test password"}`
	resp, err := http.Post("http://"+s.addr+"/api/v1/users", "application/json", strings.NewReader(body))
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
	tok, err := service.NewTokens([]byte(jwtSecret), 6*time.Hour).Issue(u.ID, 0) // a new user: token version 0
	if err != nil {
		return nil, err
	}
	return []target{newTarget(s.addr, "/api/v1/users/"+u.ID.String(), tok, http.StatusOK)}, nil
}

func (d *driver) scenarios() []*scenario {
	noop := d.apiEnv()
	otelEnv := d.apiEnv("TELEMETRY_MODE", "otel", "TELEMETRY_SAMPLE_RATE", "1",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+d.sink.addr, "OTEL_METRIC_EXPORT_INTERVAL", "5000")
	hitUsers := 1000
	return []*scenario{
		{name: "health/bare", what: "bare ServeMux, `GET /health`", bare: true, targets: healthTargets},
		{name: "health/noop", what: "api, noop mode, JSON access log to a file", env: noop, targets: healthTargets},
		{name: "health/log", what: "api, log mode (metric lines + access log, JSON to a file)", env: d.apiEnv("TELEMETRY_MODE", "log"), targets: healthTargets},
		{name: "health/otel", what: "api, otel mode, 100% sampled, OTLP/HTTP to an in-process sink, access log to a file", env: otelEnv, otel: true, targets: healthTargets},
		{name: "users-get/mem", what: "api, `GET /api/v1/users/{id}` (self, memory store), limiter off", env: noop, targets: signupTarget},
		{name: "users-get/mem-limiter-redis", what: "same route, Redis limiter on (limit never reached)", env: d.apiEnv(
			"REDIS_URL", d.redisURL, "RATE_LIMIT_ENABLED", "true", "RATE_LIMIT_REQUESTS", "1073741824"), redis: true, targets: signupTarget},
		{name: "over-limit/redis", what: "api, `GET /api/v1/users/me` with a valid token of an unknown user, over a Redis limit of 1: every request 429", env: d.apiEnv(
			"REDIS_URL", d.redisURL, "RATE_LIMIT_ENABLED", "true", "RATE_LIMIT_REQUESTS", "1", "RATE_LIMIT_WINDOW_SECONDS", "3600"), redis: true,
			targets: func(d *driver, s *server) ([]target, error) {
				// A fresh identity (user:<random id>, never seen by Redis)
				// with a one-hour window: the warm-up's first request is the
				// only one allowed (a 401: no such user), all others are 429.
				tok, err := d.minter.Issue(uuid.New(), 0)
				if err != nil {
					return nil, err
				}
				return []target{newTarget(s.addr, "/api/v1/users/me", tok, http.StatusTooManyRequests)}, nil
			}},
		{name: "users-get/pg-nocache", what: fmt.Sprintf("api, `GET /api/v1/users/{id}` (self) on Postgres, cache off, %d users round robin", hitUsers),
			env: d.apiEnv("DATABASE_URL", d.pgURL), needsPG: true, targets: selfTargets(hitUsers)},
		{name: "users-get/pg-cache-miss", what: "same, Redis cache on, every request a user not yet cached (one request per seeded user)",
			env: d.apiEnv("DATABASE_URL", d.pgURL, "REDIS_URL", d.redisURL, "CACHE_ENABLED", "true"), needsPG: true, redis: true,
			targets: selfTargets(d.o.users), requests: func(d *driver) int64 { return int64(len(d.userIDs)) }, noWarmup: true},
		{name: "users-get/pg-cache-hit", what: fmt.Sprintf("same, Redis cache on, the %d users cached", hitUsers),
			env: d.apiEnv("DATABASE_URL", d.pgURL, "REDIS_URL", d.redisURL, "CACHE_ENABLED", "true"), needsPG: true, redis: true,
			targets: selfTargets(hitUsers)},
		{name: "health/bare-again", what: "bare ServeMux again, last: the drift of the machine during the run", bare: true, targets: healthTargets},
	}
}

func (d *driver) runScenario(ctx context.Context, self string, sc *scenario) *row {
	r := &row{sc: sc}
	switch {
	case sc.needsPG && d.pgURL == "":
		r.skipped = "Postgres unavailable"
		return r
	case sc.redis && d.rdb == nil:
		r.skipped = "Redis unavailable"
		return r
	}
	argv := []string{d.o.api}
	if sc.bare {
		argv = []string{self, "-serve-bare", "{addr}"}
	}
	s, err := startServer(ctx, sc.name, d.dir, argv, sc.env)
	if err != nil {
		r.skipped = err.Error()
		return r
	}
	targets, err := sc.targets(d, s)
	if err != nil {
		_ = s.stop()
		r.skipped = err.Error()
		return r
	}
	l := load{addr: s.addr, targets: targets, concurrency: d.o.concurrency}
	if !sc.noWarmup && d.o.warmup > 0 {
		w := l
		w.duration = d.o.warmup
		w.run()
	}
	rtt0, spans0 := d.redisCalls(), d.sink.spans.Load()
	l.keepSamples = true
	if sc.requests != nil {
		l.requests = sc.requests(d)
	} else {
		l.duration = d.o.duration
	}
	r.res = l.run()
	if sc.redis {
		r.redisRTT = float64(d.redisCalls()-rtt0-1) / float64(r.res.requests)
	}
	r.hwmKB = procStatusKB(s.cmd.Process.Pid, "VmHWM")
	r.exitErr = s.stop()
	if sc.otel {
		r.spans = d.sink.spans.Load() - spans0 // flushed at shutdown
	}
	r.logBytes = s.logBytes()
	return r
}

// --- Redis and Postgres ---

func (d *driver) connectRedis(ctx context.Context) {
	opt, err := goredis.ParseURL(d.o.redisURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest: Redis scenarios skipped:", err)
		return
	}
	opt.MaxRetries, opt.DialerRetries = -1, 1
	rdb := goredis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		fmt.Fprintln(os.Stderr, "loadtest: Redis scenarios skipped:", err)
		return
	}
	d.rdb, d.redisURL = rdb, d.o.redisURL
}

// redisCalls counts the commands Redis has served to clients (INFO
// commandstats), less INCR, PTTL and PEXPIRE, which bulwark only runs inside
// its rate-limit script: the round trips. Server-wide: other clients of the
// same Redis add to it.
func (d *driver) redisCalls() int64 {
	if d.rdb == nil {
		return 0
	}
	s, err := d.rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		return 0
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
		v, _ := strconv.ParseInt(calls, 10, 64)
		n += v
	}
	return n
}

// createDatabase makes a throw-away database next to the admin URL, applies
// the migrations and seeds o.users users (one argon2id hash shared by all:
// nobody logs in), with a token minted for each.
func (d *driver) createDatabase(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
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
	rows, err := st.Pool().Query(ctx, `INSERT INTO users (id, email, hashed_password)
		SELECT gen_random_uuid(), 'load' || g || '@example.com', $1 FROM generate_series(1, $2) AS g
		RETURNING id`, hash, d.o.users)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return err
	}
	d.userIDs = ids
	d.tokens = make([]string, len(ids))
	for i, id := range ids {
		if d.tokens[i], err = d.minter.Issue(id, 0); err != nil { // inserted rows start at token version 0
			return err
		}
	}
	return nil
}

func (d *driver) dropDatabase() {
	if d.pgURL == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.pgAdmin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest: drop database:", err)
		return
	}
	defer conn.Close(context.Background())
	u, _ := url.Parse(d.pgURL)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+strings.TrimPrefix(u.Path, "/")+" WITH (FORCE)"); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest: drop database:", err)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// writeSection replaces the text between <!-- name:begin --> and
// <!-- name:end --> in path (appending the markers when absent).
func writeSection(path, name, content string) error {
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	block := begin + "\n" + strings.TrimSpace(content) + "\n" + end
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i >= 0 && j > i {
		s = s[:i] + block + s[j+len(end):]
	} else {
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		s += "\n" + block + "\n"
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
