package e2e

// TestPipeline is the end-to-end run of `make e2e`: the real service (cmd/api, otel mode) against
// the local Postgres and Redis, exporting OTLP/HTTP to the collector of otel-collector/e2e-stack.sh,
// whose Prometheus and Jaeger are then asked for what the dashboards and docs promise.
//
//	otel-collector/e2e-stack.sh run env E2E_STACK=1 go test -count=1 -v ./...   (make e2e)
//
// Environment (all optional): E2E_PG_ADMIN_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable, where a throw-away database is
// created and dropped), E2E_REDIS_ADDR (127.0.0.1:6379) and E2E_REDIS_DB (15, flushed at start
// and end).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
)

const (
	rateLimit  = 10 // RATE_LIMIT_REQUESTS of the main run (window 60 s)
	routeUser  = "/api/v1/users/{id}"
	serverSpan = "GET " + routeUser
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// scratchDatabase creates a database with a random name and drops it when the test ends.
func scratchDatabase(t *testing.T) string {
	t.Helper()
	admin := envOr("E2E_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("postgres (%s): %v", admin, err)
	}
	defer conn.Close(ctx)
	name := "bulwark_e2e_" + randHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// scratchRedis flushes the dedicated Redis database now and when the test ends.
func scratchRedis(t *testing.T) string {
	t.Helper()
	addr := envOr("E2E_REDIS_ADDR", "127.0.0.1:6379")
	db, err := strconv.Atoi(envOr("E2E_REDIS_DB", "15"))
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(&goredis.Options{Addr: addr, DB: db})
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rc.FlushDB(ctx).Err(); err != nil {
			t.Errorf("redis %s db %d: flush: %v", addr, db, err)
		}
	}
	flush()
	if t.Failed() {
		t.FailNow()
	}
	t.Cleanup(func() { flush(); _ = rc.Close() })
	return fmt.Sprintf("redis://%s/%d", addr, db)
}

func closedPort(t *testing.T) int {
	t.Helper()
	return freePort(t) // nothing listens there once freePort has closed its listener
}

type user struct {
	ID    string
	Email string
	Token string
}

func TestPipeline(t *testing.T) {
	st := stackFromEnv(t)
	started := time.Now()
	dbURL := scratchDatabase(t)
	redisURL := scratchRedis(t)
	bin := buildAPI(t, t.TempDir())

	run := randHex(4)
	superEmail, superPassword := "admin-"+run+"@example.com", "e2e-admin-"+run
	baseEnv := func(instance string) map[string]string {
		return map[string]string{
			"LOG_JSON":                    "true",
			"LOG_LEVEL":                   "info",
			"TELEMETRY_MODE":              "otel",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:" + st.OTLPHTTPPort,
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
			"OTEL_METRIC_EXPORT_INTERVAL": "1000",
			"OTEL_BSP_SCHEDULE_DELAY":     "200",
			"OTEL_SERVICE_NAME":           "bulwark",
			"OTEL_RESOURCE_ATTRIBUTES":    "service.instance.id=e2e-" + run + "-" + instance + ",deployment.environment.name=e2e",
			"DATABASE_URL":                dbURL,
			"REDIS_URL":                   redisURL,
			"RATE_LIMIT_ENABLED":          "true",
			"RATE_LIMIT_REQUESTS":         strconv.Itoa(rateLimit),
			"RATE_LIMIT_WINDOW_SECONDS":   "60",
			"CACHE_ENABLED":               "true",
			"TELEMETRY_SEMCONV":           "true", // both name sets, pinned in metric_names
			"JWT_SECRET":                  "e2e-" + randHex(24),
			"FIRST_SUPERUSER_EMAIL":       superEmail,
			"FIRST_SUPERUSER_PASSWORD":    superPassword,
		}
	}
	// The panel queries cannot tell runs apart; `make e2e` always starts a fresh stack.
	if res, err := promQuery(st.PrometheusURL, `count(http_requests_total{job="bulwark"})`); err != nil {
		t.Fatal(err)
	} else if len(res) > 0 {
		t.Logf("note: Prometheus already holds bulwark series of an earlier run; panel checks may see them")
	}
	env := baseEnv("main")
	debugAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	env["DEBUG_ADDR"] = debugAddr
	api := startAPI(t, bin, "main", st.Dir, env)
	t.Logf("service (main) at %s, log %s", api.base, api.logPath)

	// ---- traffic ----
	statuses := map[int]int{}
	tally := func(r response) response { statuses[r.Status]++; return r }
	ex := func(want int, method, path, token string, body any) response {
		t.Helper()
		return tally(api.expect(t, want, method, path, token, body))
	}
	login := func(p *apiProcess, email, password string) string {
		t.Helper()
		r := tally(p.expect(t, 200, "POST", "/auth/login", "", url.Values{"username": {email}, "password": {password}}))
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(r.Body, &tok); err != nil || tok.AccessToken == "" {
			t.Fatalf("login: %v %s", err, r.Body)
		}
		return tok.AccessToken
	}

	ex(200, "GET", "/health", "", nil)
	ex(200, "GET", "/api/v1/health/live", "", nil)
	ex(200, "GET", "/api/v1/health/ready", "", nil)
	// Anonymous, limited by client IP (5 of the IP's 10).
	alice := user{Email: "alice-" + run + "@example.com"}
	r := ex(201, "POST", "/api/v1/users", "", map[string]any{"email": alice.Email, "password": "correct-horse-" + run, "full_name": "Alice"})
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.Body, &created); err != nil || created.ID == "" {
		t.Fatalf("sign-up: %v %s", err, r.Body)
	}
	alice.ID = created.ID
	ex(422, "POST", "/api/v1/users", "", map[string]any{"email": "not-an-email", "password": "short"})
	// A taken email: the INSERT fails on the unique index (409), an SQL error for otelpgx's
	// db.client.operation.errors.
	ex(409, "POST", "/api/v1/users", "", map[string]any{"email": alice.Email, "password": "another-password"})
	ex(401, "GET", "/api/v1/users/me", "", nil)
	ex(404, "GET", "/api/v1/no-such-route", "", nil)
	ex(404, "GET", "/no-such-page", "", nil) // outside /api/v1: not rate limited
	// Logins are not rate limited (outside /api/v1).
	ex(401, "POST", "/auth/login", "", url.Values{"username": {alice.Email}, "password": {"wrong-password"}})
	alice.Token = login(api, alice.Email, "correct-horse-"+run)
	superToken := login(api, superEmail, superPassword)

	// Alice, limited by user id: the first read of her record misses the cache (SQL + cache.set),
	// the second hits it.
	miss := ex(200, "GET", "/api/v1/users/"+alice.ID, alice.Token, nil)
	hit := ex(200, "GET", "/api/v1/users/"+alice.ID, alice.Token, nil)
	ex(422, "GET", "/api/v1/users/not-a-uuid", alice.Token, nil)
	ex(403, "GET", "/api/v1/users/"+uuid.NewString(), alice.Token, nil)
	// The superuser: a user that does not exist (404 through the cache and SQL), a list.
	ex(404, "GET", "/api/v1/users/"+uuid.NewString(), superToken, nil)
	ex(200, "GET", "/api/v1/users", superToken, nil)

	// Over the limit: Alice has used 4 of 10; 12 more reads give 6 × 200 and 6 × 429. The IP's
	// anonymous quota (5 used) runs out on /api/v1/users/me too (5 × 401, 5 × 429).
	limited := 0
	var limitedResp response
	for range 12 {
		r := tally(api.do(t, "GET", "/api/v1/users/"+alice.ID, alice.Token, nil))
		if r.Status == 429 {
			limited++
			limitedResp = r
		}
	}
	for range 10 {
		tally(api.do(t, "GET", "/api/v1/users/me", "", nil))
	}
	// (6 unless the machine is so slow that her 60 s window ran out in between.)
	if limited == 0 || limitedResp.Header.Get("Retry-After") == "" {
		t.Fatalf("want responses 429 with Retry-After for alice, got %d (statuses %v)", limited, statuses)
	}
	t.Logf("main run: request ids: cache miss %s, cache hit %s, a 429 %s", miss.RequestID, hit.RequestID, limitedResp.RequestID)

	// Redis down: a second, short run of the same service whose Redis is a closed port. The
	// in-process fallback decides every request (decision fallback, with rate-limit headers), the
	// cache reports errors and reads go to Postgres, readiness answers 503.
	foEnv := baseEnv("failopen")
	foEnv["JWT_SECRET"] = env["JWT_SECRET"]
	foEnv["REDIS_URL"] = fmt.Sprintf("redis://127.0.0.1:%d/0", closedPort(t))
	fo := startAPI(t, bin, "failopen", st.Dir, foEnv)
	for range 5 {
		r := tally(fo.expect(t, 200, "GET", "/api/v1/users/"+alice.ID, alice.Token, nil))
		if r.Header.Get("X-RateLimit-Limit") == "" {
			t.Fatalf("a response decided by the in-process fallback lacks X-RateLimit-Limit: %v", r.Header)
		}
	}
	tally(fo.expect(t, 503, "GET", "/api/v1/health/ready", "", nil))
	if n := len(fo.logLines("rate limiter store unavailable: in-process fallback decides")); n == 0 {
		t.Errorf("the Redis-down run logged no fallback warning\n%s", fo.tail(20))
	}
	t.Logf("traffic sent: statuses %v", sortedCounts(statuses))

	// Keep a trickle of traffic going on both runs while the panels are checked, as a dashboard
	// sees it under load: a counter's increments before its first scrape never show in rate(),
	// so a panel only moves with traffic after that. Main run: the superuser's reads soon get
	// 429s, the readiness probe (not rate limited) keeps SQL and Redis busy. Redis-down run:
	// fallback decisions, cache errors, reads from Postgres, readiness 503s.
	ctx, stopTrickle := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	trickle := func(p *apiProcess, paths []string, token string) {
		wg.Go(func() {
			for ctx.Err() == nil {
				for _, path := range paths {
					p.get(path, token)
				}
				select {
				case <-ctx.Done():
				case <-time.After(300 * time.Millisecond):
				}
			}
		})
	}
	trickle(api, []string{"/api/v1/users/" + alice.ID, "/api/v1/health/ready"}, superToken)
	trickle(fo, []string{"/api/v1/users/" + alice.ID, "/api/v1/health/ready"}, alice.Token)
	// A heap profile with gc=1 on the debug listener runs a garbage collection: the GC-pause
	// panel then has pauses to show whatever the allocation rate of this small traffic.
	wg.Go(func() {
		for ctx.Err() == nil {
			if resp, err := httpClient.Get("http://" + debugAddr + "/debug/pprof/heap?gc=1"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	})
	t.Cleanup(func() { stopTrickle(); wg.Wait() }) // runs before the services' SIGTERM
	mainInstance := "e2e-" + run + "-main"

	t.Run("prometheus_http_series", func(t *testing.T) { checkHTTPSeries(t, st, "e2e-"+run+"-.*") })
	t.Run("dashboard_panels_have_data", func(t *testing.T) { checkPanels(t, st) })
	t.Run("jaeger_traces", func(t *testing.T) { checkTraces(t, st, miss.RequestID, hit.RequestID, limitedResp.RequestID) })
	t.Run("exemplars_link_to_traces", func(t *testing.T) { checkExemplars(t, st) })
	t.Run("metric_names", func(t *testing.T) { checkMetricNames(t, st, mainInstance) })
	t.Run("log_record_reaches_collector", func(t *testing.T) { checkLogRecord(t, st, miss.RequestID) })
	t.Run("cardinality_flood", func(t *testing.T) { checkFlood(t, st, api, mainInstance) })
	t.Run("slo_and_alert_rules", func(t *testing.T) { checkRules(t, st) })
	t.Logf("pipeline test took %s", time.Since(started).Round(time.Second))
}

func sortedCounts(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d×%d ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

// checkHTTPSeries: assertion 1 of the issue.
// Only this run's series count (instance = service.instance.id of its two service runs).
func checkHTTPSeries(t *testing.T, st stack, instances string) {
	q := `count by (__name__, route, method, status_code) ({__name__=~"http_requests_total|http_request_duration_ms_bucket", job="bulwark", instance=~"` + instances + `"})`
	want := []string{"200", "201", "401", "403", "404", "409", "422", "429", "503"}
	var series []promSample
	why := waitFor(context.Background(), 60*time.Second, func() string {
		var err error
		series, err = promQuery(st.PrometheusURL, q)
		if err != nil {
			return err.Error()
		}
		for _, name := range []string{"http_requests_total", "http_request_duration_ms_bucket"} {
			for _, code := range want {
				if !slices.ContainsFunc(series, func(s promSample) bool {
					return s.Metric["__name__"] == name && s.Metric["status_code"] == code
				}) {
					return fmt.Sprintf("no %s{status_code=%q} yet", name, code)
				}
			}
		}
		return ""
	})
	if why != "" {
		t.Fatalf("%s (after 60 s); have %d series", why, len(series))
	}
	uuidRe := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-`)
	byName := map[string][]string{}
	for _, s := range series {
		m := s.Metric
		for _, l := range []string{"route", "method", "status_code"} {
			if m[l] == "" {
				t.Errorf("series %v has no %s label", m, l)
			}
		}
		if uuidRe.MatchString(m["route"]) {
			t.Errorf("a raw path became a route label: %v", m)
		}
		byName[m["__name__"]] = append(byName[m["__name__"]], m["method"]+" "+m["route"]+" "+m["status_code"])
	}
	for name, list := range byName {
		sort.Strings(list)
		t.Logf("%s: %d label sets (method route status_code): %s", name, len(list), strings.Join(list, "; "))
	}
	for _, must := range []string{"GET " + routeUser + " 429", "GET unmatched 404", "GET " + routeUser + " 200", "POST /api/v1/users 422"} {
		if !slices.Contains(byName["http_requests_total"], must) {
			t.Errorf("http_requests_total has no series %q", must)
		}
	}
	// The same in the classic histogram: buckets with le, and _sum/_count.
	for _, q := range []string{
		`http_request_duration_ms_bucket{route="` + routeUser + `", status_code="429", le="+Inf"}`,
		`http_request_duration_ms_count{route="` + routeUser + `"}`,
		`http_request_duration_ms_sum{route="` + routeUser + `"}`,
	} {
		if res, err := promQuery(st.PrometheusURL, q); err != nil || len(res) == 0 {
			t.Errorf("%s: %d results, %v", q, len(res), err)
		}
	}
}

// panelQuery is one target of a dashboard panel.
type panelQuery struct {
	File, Panel, RefID, Expr string
}

type grafanaPanel struct {
	Title   string         `json:"title"`
	Type    string         `json:"type"`
	Panels  []grafanaPanel `json:"panels"` // a collapsed row holds its panels
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
		Hide  bool   `json:"hide"`
	} `json:"targets"`
}

type grafanaVariable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Definition string `json:"definition"`
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
}

// loadPanelQueries reads every grafana/dashboards/*.json.
func loadPanelQueries(t *testing.T) ([]panelQuery, []grafanaVariable, int) {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "grafana", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	var qs []panelQuery
	var vars []grafanaVariable
	panels := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels     []grafanaPanel `json:"panels"`
			Templating struct {
				List []grafanaVariable `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		vars = append(vars, d.Templating.List...)
		var walk func([]grafanaPanel)
		walk = func(ps []grafanaPanel) {
			for _, p := range ps {
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				panels++
				for _, tg := range p.Targets {
					if !tg.Hide {
						qs = append(qs, panelQuery{filepath.Base(f), p.Title, tg.RefID, tg.Expr})
					}
				}
			}
		}
		walk(d.Panels)
	}
	return qs, vars, panels
}

var labelValuesRe = regexp.MustCompile(`^label_values\(\s*([^,\s]+)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$`)

// promRegexValue is how Grafana puts a variable value into a =~ matcher: regex-escaped, then
// escaped for the PromQL string literal.
func promRegexValue(v string) string {
	return strings.ReplaceAll(regexp.QuoteMeta(v), `\`, `\\`)
}

// checkPanels: assertion 2 of the issue. Every panel query is run twice: with each variable at
// "All" (its allValue) and with it set to one concrete value that has data (route
// /api/v1/users/{id}). Built-ins: $__rate_interval = 1m, $__interval = 15s, $__range = 5m.
func checkPanels(t *testing.T, st stack) {
	qs, vars, panels := loadPanelQueries(t)
	builtin := []string{"$__rate_interval", "1m", "${__rate_interval}", "1m", "$__interval", "15s", "$__range", "5m"}
	all, one := append([]string{}, builtin...), append([]string{}, builtin...)
	for _, v := range vars {
		if v.Type != "query" {
			t.Fatalf("variable %s: type %s not handled by this test", v.Name, v.Type)
		}
		m := labelValuesRe.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("variable %s: definition %q is not label_values(metric, label)", v.Name, v.Definition)
		}
		values, err := promLabelValues(st.PrometheusURL, m[1], m[2])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("variable $%s = %s: %d values %v", v.Name, v.Definition, len(values), values)
		pick := values[0]
		if v.Name == "route" {
			pick = routeUser
		}
		if !slices.Contains(values, pick) {
			t.Fatalf("variable $%s: %q not among its values %v", v.Name, pick, values)
		}
		allValue := v.AllValue
		if !v.IncludeAll || allValue == "" {
			allValue = promRegexValue(pick)
		}
		for _, form := range []string{"${" + v.Name + "}", "$" + v.Name} {
			all = append(all, form, allValue)
			one = append(one, form, promRegexValue(pick))
		}
	}
	type pass struct {
		name string
		r    *strings.Replacer
	}
	passes := []pass{{"all", strings.NewReplacer(all...)}, {"route=" + routeUser, strings.NewReplacer(one...)}}
	type run struct {
		q        panelQuery
		pass     string
		expr     string
		positive bool   // must reach a value > 0 (see mustMove)
		why      string // "" once it returned data
		res      []promSample
	}
	var runs []*run
	seen := map[string]bool{}
	for _, q := range qs {
		if _, ok := mustMove[q.Panel+"/"+q.RefID]; ok {
			seen[q.Panel+"/"+q.RefID] = true
		}
		for _, p := range passes {
			expr := p.r.Replace(q.Expr)
			if strings.Contains(expr, "$") {
				t.Errorf("%s / %s %s: unsubstituted variable in %s", q.File, q.Panel, q.RefID, expr)
				continue
			}
			if p.name != "all" && expr == passes[0].r.Replace(q.Expr) {
				continue // no variable in this query: the first pass covered it
			}
			// The 5xx of this run are readiness 503s: none on the users route.
			if p.name != "all" && strings.Contains(expr, `status_code=~"5..`) {
				continue
			}
			runs = append(runs, &run{q: q, pass: p.name, expr: expr, positive: p.name == "all" && mustMove[q.Panel+"/"+q.RefID]})
			// A fallback like `or vector(0)` always returns something; the series it guards must
			// exist too (and move, where the panel must).
			if base, ok := strings.CutSuffix(strings.TrimSpace(expr), "or vector(0)"); ok {
				runs = append(runs, &run{q: q, pass: p.name + ", without or vector(0)", expr: strings.TrimSpace(base), positive: runs[len(runs)-1].positive})
			}
		}
	}
	for k := range mustMove {
		if !seen[k] {
			t.Errorf("mustMove names %q, which is no panel query of the dashboards", k)
		}
	}
	maxOf := func(res []promSample) float64 {
		m := math.NaN()
		for _, s := range res {
			if v := s.float(); !math.IsNaN(v) && (math.IsNaN(m) || v > m) {
				m = v
			}
		}
		return m
	}
	// Rounds over all queries until each returned data (a non-NaN value) and each mustMove
	// query a value > 0, or 90 s passed.
	why := waitFor(context.Background(), 90*time.Second, func() string {
		pending := 0
		for _, r := range runs {
			res, err := promQuery(st.PrometheusURL, r.expr)
			switch m := maxOf(res); {
			case err != nil:
				r.why = err.Error()
			case len(res) == 0:
				r.why = "no data"
			case math.IsNaN(m):
				r.why = "only NaN"
			case r.positive && m <= 0:
				r.why = "data, but not above 0"
			default:
				r.why = ""
			}
			r.res = res
			if r.why != "" {
				pending++
			}
		}
		if pending > 0 {
			return fmt.Sprintf("%d of %d queries pending", pending, len(runs))
		}
		return ""
	})
	ok, moved := 0, 0
	for _, r := range runs {
		if r.why != "" {
			t.Errorf("%s / %q %s [%s]: %s: %s", r.q.File, r.q.Panel, r.q.RefID, r.pass, r.why, r.expr)
			continue
		}
		ok++
		var vals []string
		for _, s := range r.res {
			vals = append(vals, strconv.FormatFloat(s.float(), 'g', 3, 64))
		}
		mark := ""
		if r.positive {
			mark, moved = " (must move: >0)", moved+1
		}
		t.Logf("ok %-40q %s [%s]%s %d series: %s", r.q.Panel, r.q.RefID, r.pass, mark, len(r.res), strings.Join(vals, " "))
	}
	t.Logf("%d panels, %d queries; %d query runs (%d variable passes), %d returned data, %d of them required and reached > 0; %s",
		panels, len(qs), len(runs), len(passes), ok, moved, map[bool]string{true: "all done", false: why}[why == ""])
	if panels == 0 || len(qs) == 0 {
		t.Fatal("no panels or queries found")
	}
}

// mustMove lists the panel queries (title/refId) that must show a value above zero while
// traffic like the test's flows, not just return a series: what an operator reads first. The
// others may legitimately sit at 0 (no pool waits, no SQL errors in the last minute...).
var mustMove = map[string]bool{
	"Request rate by route and status/A":             true,
	"Latency p50 / p95 / p99 by route/A":             true,
	"Latency p50 / p95 / p99 by route/B":             true,
	"Latency p50 / p95 / p99 by route/C":             true,
	"Error rate by status class/A":                   true,
	"Error rate by status class/B":                   true,
	"Error share (5xx / all)/A":                      true,
	"429 rate by route/A":                            true,
	"Share of limited requests/A":                    true,
	"Rate-limit decisions, fallback and fail-open/A": true,
	"Rate-limit decisions, fallback and fail-open/B": true,
	"Cache hit ratio (users)/A":                      true,
	"Cache requests by result/A":                     true,
	"SQL latency p95 and errors/A":                   true,
	"Redis command latency p95 and errors/A":         true,
	"Goroutines/A":                                   true,
	"Memory: live heap, GC goal, RSS/A":              true,
	"Memory: live heap, GC goal, RSS/B":              true,
	"Memory: live heap, GC goal, RSS/C":              true,
	"GC pauses: p99 and rate/A":                      true,
	"GC pauses: p99 and rate/B":                      true,
	"CPU (cores used)/A":                             true,
	"Open file descriptors/A":                        true,
	"Open file descriptors/B":                        true,
	"Error budget remaining (30 d)/A":                true,
}

// checkTraces: assertion 3 of the issue.
func checkTraces(t *testing.T, st stack, missID, hitID, limitedID string) {
	find := func(requestID string, complete func(jaegerTrace) string) jaegerTrace {
		t.Helper()
		var tr jaegerTrace
		why := waitFor(context.Background(), 30*time.Second, func() string {
			traces, err := jaegerFind(st.JaegerURL, "bulwark", "request_id", requestID)
			if err != nil {
				return err.Error()
			}
			if len(traces) != 1 {
				return fmt.Sprintf("%d traces with request_id %s", len(traces), requestID)
			}
			tr = traces[0]
			return complete(tr)
		})
		if why != "" {
			t.Fatalf("request_id %s: %s", requestID, why)
		}
		return tr
	}
	spanNames := func(tr jaegerTrace) string {
		var names []string
		for _, s := range tr.Spans {
			names = append(names, s.OperationName)
		}
		sort.Strings(names)
		return strings.Join(names, ", ")
	}

	// The cache-miss read: server span, rate-limit check, cache get (miss) and set, Redis
	// commands, SQL.
	tr := find(missID, func(tr jaegerTrace) string {
		return missingSpans(tr, true)
	})
	t.Logf("cache-miss trace %s: %d spans: %s", tr.TraceID, len(tr.Spans), spanNames(tr))
	if tr.TraceID != missID {
		t.Errorf("trace id %s != request_id %s (a generated request ID is the trace ID)", tr.TraceID, missID)
	}
	for _, s := range tr.Spans {
		if svc := tr.Processes[s.ProcessID].ServiceName; svc != "bulwark" {
			t.Errorf("span %s from service %q", s.OperationName, svc)
		}
	}
	describeSpans(t, tr)

	// The cache-hit read: cache.get with cache.hit=true and no SQL.
	tr = find(hitID, func(tr jaegerTrace) string { return missingSpans(tr, false) })
	t.Logf("cache-hit trace %s: %d spans: %s", tr.TraceID, len(tr.Spans), spanNames(tr))
	for _, s := range tr.Spans {
		if isSQLSpan(s) {
			t.Errorf("cache-hit trace has a SQL span %s", s.OperationName)
		}
	}

	// A 429: the rate-limit check decided "limited" and the handler did not run.
	tr = find(limitedID, func(tr jaegerTrace) string {
		for _, s := range tr.Spans {
			if s.OperationName == "ratelimit.check" {
				if d, _ := s.tag("ratelimit.decision"); d == "limited" {
					return ""
				}
			}
		}
		return "no ratelimit.check span with decision limited"
	})
	t.Logf("429 trace %s: %d spans: %s", tr.TraceID, len(tr.Spans), spanNames(tr))
	for _, s := range tr.Spans {
		if strings.HasPrefix(s.OperationName, "cache.") || isSQLSpan(s) {
			t.Errorf("429 trace has span %s: the handler ran", s.OperationName)
		}
		if s.OperationName == serverSpan {
			if c, _ := s.tag("http.response.status_code"); c != "429" {
				t.Errorf("429 server span: http.response.status_code = %q", c)
			}
		}
	}
}

func isRedisSpan(s jaegerSpan) bool {
	v, _ := s.tag("db.system")
	w, _ := s.tag("db.system.name")
	return v == "redis" || w == "redis"
}

func isSQLSpan(s jaegerSpan) bool {
	v, _ := s.tag("db.system.name")
	w, _ := s.tag("db.system")
	return v == "postgresql" || w == "postgresql"
}

// missingSpans returns what the trace of a GET /api/v1/users/{id} lacks ("" = complete). miss
// selects the cache-miss shape (SQL and cache.set) or the hit shape.
func missingSpans(tr jaegerTrace, miss bool) string {
	var server *jaegerSpan
	for i, s := range tr.Spans {
		if s.OperationName == serverSpan {
			server = &tr.Spans[i]
		}
	}
	if server == nil {
		return "no server span " + serverSpan
	}
	if r, _ := server.tag("http.route"); r != routeUser {
		return "server span http.route = " + r
	}
	if id, _ := server.tag("request_id"); id != tr.TraceID {
		return "server span request_id = " + id
	}
	if k, _ := server.tag("span.kind"); k != "server" {
		return "server span kind = " + k
	}
	has := func(pred func(jaegerSpan) bool) bool { return slices.ContainsFunc(tr.Spans, pred) }
	if !has(func(s jaegerSpan) bool {
		d, _ := s.tag("ratelimit.decision")
		return s.OperationName == "ratelimit.check" && d == "allowed" && s.parent() == server.SpanID
	}) {
		return "no ratelimit.check (decision allowed) under the server span"
	}
	wantHit := strconv.FormatBool(!miss)
	if !has(func(s jaegerSpan) bool {
		h, _ := s.tag("cache.hit")
		n, _ := s.tag("cache.name")
		return s.OperationName == "cache.get" && h == wantHit && n == "users"
	}) {
		return "no cache.get with cache.hit=" + wantHit
	}
	if !has(isRedisSpan) {
		return "no Redis span (db.system=redis)"
	}
	if miss {
		if !has(func(s jaegerSpan) bool { return s.OperationName == "cache.set" }) {
			return "no cache.set"
		}
		if !has(isSQLSpan) {
			return "no SQL span (db.system.name=postgresql)"
		}
	}
	return ""
}

// describeSpans logs each span with its parent and the attributes the assertions rely on.
func describeSpans(t *testing.T, tr jaegerTrace) {
	names := map[string]string{}
	for _, s := range tr.Spans {
		names[s.SpanID] = s.OperationName
	}
	keys := []string{"http.route", "request_id", "http.response.status_code", "ratelimit.decision", "ratelimit.identity",
		"cache.name", "cache.hit", "db.system", "db.system.name", "db.operation.name", "db.namespace", "error"}
	for _, s := range tr.Spans {
		var attrs []string
		for _, k := range keys {
			if v, ok := s.tag(k); ok {
				attrs = append(attrs, k+"="+v)
			}
		}
		parent := names[s.parent()]
		if parent == "" {
			parent = "-"
		}
		t.Logf("  span %-26q parent %-26q %s", s.OperationName, parent, strings.Join(attrs, " "))
	}
}

// checkExemplars: the collector writes exemplars (trace_id) that Prometheus stores and that
// lead to a trace in Jaeger, which is what Grafana's exemplar link relies on.
func checkExemplars(t *testing.T, st stack) {
	end := time.Now()
	q := url.Values{"query": {`http_request_duration_ms_bucket{job="bulwark"}`},
		"start": {strconv.FormatInt(end.Add(-15*time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(end.Unix()+1, 10)}}
	resp, err := httpClient.Get(st.PrometheusURL + "/api/v1/query_exemplars?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Data   []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("query_exemplars: %v %s", err, r.Status)
	}
	n, traceID := 0, ""
	for _, s := range r.Data {
		for _, e := range s.Exemplars {
			n++
			if traceID == "" && e.Labels["trace_id"] != "" {
				traceID = e.Labels["trace_id"]
			}
		}
	}
	if traceID == "" {
		t.Fatalf("no exemplar with trace_id on http_request_duration_ms_bucket (%d series)", len(r.Data))
	}
	var traces []jaegerTrace
	why := waitFor(context.Background(), 20*time.Second, func() string {
		traces, err = jaegerTraceByID(st.JaegerURL, traceID)
		if err != nil {
			return err.Error()
		}
		if len(traces) == 0 {
			return "not found"
		}
		return ""
	})
	if why != "" {
		t.Fatalf("exemplar trace %s in Jaeger: %s", traceID, why)
	}
	t.Logf("%d exemplars on %d bucket series; exemplar trace %s is in Jaeger (%d spans)", n, len(r.Data), traceID, len(traces[0].Spans))
}
