package e2e

// Tail sampling in the collector (docs/OBSERVABILITY.md, "Tail sampling"):
//
//   - TestTailSamplingMatchesSLOs (no stack): the policies of config.yaml and config.local.yaml
//     are the same, and their latency thresholds and route selectors are those of the latency
//     SLOs in grafana/prometheus/slos/bulwark.yml.
//   - TestTailSampling (`make e2e`): a second collector, the real binary with config.local.yaml at
//     a 1 % base rate, exporting to the stack's Jaeger; a service sends it ordinary reads, a read
//     that fails on Postgres (503) and a read held up by a lock past the users_read threshold.
//     The error and the slow trace are in Jaeger, and of the ordinary ones only about 1 %.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	yaml "go.yaml.in/yaml/v4"
)

// tsPolicy is one tail_sampling policy (the fields this project uses).
type tsPolicy struct {
	Name    string `yaml:"name"`
	Type    string `yaml:"type"`
	Latency struct {
		ThresholdMs int64 `yaml:"threshold_ms"`
	} `yaml:"latency"`
	StatusCode struct {
		StatusCodes []string `yaml:"status_codes"`
	} `yaml:"status_code"`
	StringAttribute struct {
		Key    string   `yaml:"key"`
		Values []string `yaml:"values"`
		Regex  bool     `yaml:"enabled_regex_matching"`
	} `yaml:"string_attribute"`
	Probabilistic struct {
		SamplingPercentage string `yaml:"sampling_percentage"` // "${env:...}" before resolution
	} `yaml:"probabilistic"`
	And struct {
		Sub []tsPolicy `yaml:"and_sub_policy"`
	} `yaml:"and"`
}

// collectorConfig is the part of an otel-collector config file these tests read.
type collectorConfig struct {
	Processors struct {
		TailSampling map[string]any `yaml:"tail_sampling"`
	} `yaml:"processors"`
	Service struct {
		Pipelines map[string]struct {
			Processors []string `yaml:"processors"`
		} `yaml:"pipelines"`
	} `yaml:"service"`
}

// readCollectorConfig parses otel-collector/<name>, with its tail_sampling policies.
func readCollectorConfig(t *testing.T, name string) (collectorConfig, []tsPolicy) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "otel-collector", name))
	if err != nil {
		t.Fatal(err)
	}
	var cfg collectorConfig
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var ts struct {
		Processors struct {
			TailSampling struct {
				Policies []tsPolicy `yaml:"policies"`
			} `yaml:"tail_sampling"`
		} `yaml:"processors"`
	}
	if err := yaml.Unmarshal(b, &ts); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cfg, ts.Processors.TailSampling.Policies
}

func findPolicy(ps []tsPolicy, name string) (tsPolicy, bool) {
	i := slices.IndexFunc(ps, func(p tsPolicy) bool { return p.Name == name })
	if i < 0 {
		return tsPolicy{}, false
	}
	return ps[i], true
}

// The policies TestTailSampling reads the metrics of, by name.
const (
	policyErrors    = "errors"
	policyUsersRead = "slow-users-read"
	policyBaseRate  = "base-rate"
)

// usersReadThreshold is the latency threshold of the slow-users-read policy in config.local.yaml.
func usersReadThreshold(t *testing.T) time.Duration {
	t.Helper()
	_, ps := readCollectorConfig(t, "config.local.yaml")
	p, ok := findPolicy(ps, policyUsersRead)
	if !ok {
		t.Fatalf("config.local.yaml: no tail_sampling policy %q", policyUsersRead)
	}
	for _, s := range p.And.Sub {
		if s.Type == "latency" && s.Latency.ThresholdMs > 0 {
			return time.Duration(s.Latency.ThresholdMs) * time.Millisecond
		}
	}
	t.Fatalf("config.local.yaml: policy %q has no latency sub-policy", policyUsersRead)
	return 0
}

// latencySLO is one latency SLO of the spec: its route and method selectors and its threshold.
type latencySLO struct {
	Name          string
	RouteOp       string // "=" or "=~"
	Route         string
	Methods       []string
	ThresholdMs   int64
	MatchedPolicy string
}

var (
	routeMatcherRe  = regexp.MustCompile(`\broute(=~|=)"([^"]*)"`)
	methodMatcherRe = regexp.MustCompile(`\bmethod(=~|=)"([^"]*)"`)
	leMatcherRe     = regexp.MustCompile(`\ble=~?"(\d+)`)
)

// readLatencySLOs parses the latency SLOs of grafana/prometheus/slos/bulwark.yml (sloth format):
// the selectors and the le= bucket of each error_query.
func readLatencySLOs(t *testing.T) []latencySLO {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "grafana", "prometheus", "slos", "bulwark.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		SLOs []struct {
			Name string `yaml:"name"`
			SLI  struct {
				Events struct {
					ErrorQuery string `yaml:"error_query"`
				} `yaml:"events"`
			} `yaml:"sli"`
			Alerting struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"alerting"`
		} `yaml:"slos"`
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatalf("bulwark.yml: %v", err)
	}
	var out []latencySLO
	for _, s := range spec.SLOs {
		if s.Alerting.Labels["category"] != "latency" {
			continue
		}
		q := s.SLI.Events.ErrorQuery
		r, m, le := routeMatcherRe.FindStringSubmatch(q), methodMatcherRe.FindStringSubmatch(q), leMatcherRe.FindStringSubmatch(q)
		if r == nil || m == nil || le == nil {
			t.Fatalf("bulwark.yml %s: route, method or le matcher not found in %s", s.Name, q)
		}
		ms, _ := strconv.ParseInt(le[1], 10, 64)
		methods := []string{m[2]}
		if m[1] == "=~" {
			methods = strings.Split(m[2], "|")
		}
		out = append(out, latencySLO{Name: s.Name, RouteOp: r[1], Route: r[2], Methods: methods, ThresholdMs: ms})
	}
	if len(out) == 0 {
		t.Fatal("bulwark.yml: no latency SLO (alerting label category: latency)")
	}
	return out
}

// TestTailSamplingMatchesSLOs: one policy in both collector configs, whose latency rules are the
// latency SLOs' (a trace that spends its SLO's latency budget is kept):
//   - the largest threshold applies to every trace (a plain latency policy);
//   - a smaller one applies to its SLO's routes and methods only (an and policy of http.route,
//     http.request.method and latency);
//   - no other latency threshold.
//
// And the traces pipelines run memory_limiter first, tail_sampling before batch.
func TestTailSamplingMatchesSLOs(t *testing.T) {
	compose, policies := readCollectorConfig(t, "config.yaml")
	local, _ := readCollectorConfig(t, "config.local.yaml") // its tail_sampling must equal config.yaml's
	if !reflect.DeepEqual(compose.Processors.TailSampling, local.Processors.TailSampling) {
		t.Errorf("tail_sampling differs between config.yaml and config.local.yaml:\n%v\n%v", compose.Processors.TailSampling, local.Processors.TailSampling)
	}
	for name, cfg := range map[string]collectorConfig{"config.yaml": compose, "config.local.yaml": local} {
		if got, want := cfg.Service.Pipelines["traces"].Processors, []string{"memory_limiter", "tail_sampling", "batch"}; !slices.Equal(got, want) {
			t.Errorf("%s traces pipeline processors %v, want %v", name, got, want)
		}
	}
	for _, name := range []string{policyErrors, policyUsersRead, policyBaseRate} {
		if _, ok := findPolicy(policies, name); !ok {
			t.Errorf("no tail_sampling policy %q (TestTailSampling reads its metrics)", name)
		}
	}
	if p, _ := findPolicy(policies, policyErrors); p.Type != "status_code" || !slices.Equal(p.StatusCode.StatusCodes, []string{"ERROR"}) {
		t.Errorf("policy %s: %+v, want status_code ERROR", policyErrors, p)
	}
	if p, _ := findPolicy(policies, policyBaseRate); p.Type != "probabilistic" || !strings.Contains(p.Probabilistic.SamplingPercentage, "${env:TAIL_SAMPLING_PERCENTAGE") {
		t.Errorf("policy %s: %+v, want probabilistic with sampling_percentage from TAIL_SAMPLING_PERCENTAGE", policyBaseRate, p)
	}

	slos := readLatencySLOs(t)
	var maxMs int64
	specThresholds := map[int64]bool{}
	for _, s := range slos {
		maxMs = max(maxMs, s.ThresholdMs)
		specThresholds[s.ThresholdMs] = true
	}
	// Every latency threshold of the config, top level or inside an and policy.
	for _, p := range policies {
		for _, q := range append([]tsPolicy{p}, p.And.Sub...) {
			if q.Type == "latency" && !specThresholds[q.Latency.ThresholdMs] {
				t.Errorf("policy %s: latency threshold %d ms is no latency SLO's threshold (%v)", p.Name, q.Latency.ThresholdMs, specThresholds)
			}
		}
	}
	for i, s := range slos {
		for _, p := range policies {
			if s.ThresholdMs == maxMs && p.Type == "latency" && p.Latency.ThresholdMs == maxMs {
				slos[i].MatchedPolicy = p.Name
			}
			if s.ThresholdMs < maxMs && p.Type == "and" && andMatches(p.And.Sub, s) {
				slos[i].MatchedPolicy = p.Name
			}
		}
		if slos[i].MatchedPolicy == "" {
			t.Errorf("latency SLO %s (route%s%q, method %v, %d ms): no tail_sampling policy keeps its slow traces", s.Name, s.RouteOp, s.Route, s.Methods, s.ThresholdMs)
			continue
		}
		t.Logf("latency SLO %s (route%s%q, method %s, > %d ms): policy %s", s.Name, s.RouteOp, s.Route, strings.Join(s.Methods, "|"), s.ThresholdMs, slos[i].MatchedPolicy)
	}
}

// andMatches reports whether and-policy sub-policies select exactly the SLO's traces over its
// threshold: its route (a PromQL matcher is anchored: "^…$"), its methods, its threshold.
func andMatches(sub []tsPolicy, s latencySLO) bool {
	if len(sub) != 3 {
		return false
	}
	var route, method, latency bool
	for _, q := range sub {
		a := q.StringAttribute
		switch {
		case q.Type == "latency":
			latency = q.Latency.ThresholdMs == s.ThresholdMs
		case q.Type == "string_attribute" && a.Key == "http.route":
			if s.RouteOp == "=~" {
				route = a.Regex && slices.Equal(a.Values, []string{"^" + s.Route + "$"})
			} else {
				route = !a.Regex && slices.Equal(a.Values, []string{s.Route})
			}
		case q.Type == "string_attribute" && a.Key == "http.request.method":
			method = !a.Regex && slices.Equal(a.Values, s.Methods)
		}
	}
	return route && method && latency
}

// TestTailSampling: see the file comment. Needs the stack (Jaeger) and bin/otelcol-bulwark.
func TestTailSampling(t *testing.T) {
	st := stackFromEnv(t)
	started := time.Now()
	root := repoRoot(t)
	const percentage = 1.0 // the base rate of this test's collector
	const ordinary = 200   // ordinary reads sent
	threshold := usersReadThreshold(t)

	// The collector: config.local.yaml as the stack runs it, its own ports, exporting to the
	// stack's Jaeger, internal metrics (the tail_sampling counters) on a pull endpoint.
	metricsPort, healthPort, httpPort := freePort(t), freePort(t), freePort(t)
	colEnv := map[string]string{
		"OTLP_GRPC_PORT":           strconv.Itoa(freePort(t)),
		"OTLP_HTTP_PORT":           strconv.Itoa(httpPort),
		"PROM_EXPORTER_PORT":       strconv.Itoa(freePort(t)),
		"COLLECTOR_HEALTH_PORT":    strconv.Itoa(healthPort),
		"JAEGER_OTLP_GRPC_PORT":    st.JaegerOTLP,
		"TAIL_SAMPLING_PERCENTAGE": strconv.FormatFloat(percentage, 'g', -1, 64),
	}
	internal := fmt.Sprintf("yaml:service::telemetry::metrics: {level: normal, readers: [{pull: {exporter: {prometheus: {host: 127.0.0.1, port: %d}}}}]}", metricsPort)
	col := startProcess(t, "collector-sampled", st.Dir, colEnv, fmt.Sprintf("http://127.0.0.1:%d/", healthPort),
		filepath.Join(root, "bin", "otelcol-bulwark"), "--config", filepath.Join(root, "otel-collector", "config.local.yaml"), "--config", internal)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)

	// The service: no cache and no rate limit, so every read runs SQL and none is refused; a
	// service name of its own, so that Jaeger lists exactly the traces this collector kept.
	run := randHex(4)
	serviceName := "bulwark-ts-" + run
	superEmail, superPassword := "admin-"+run+"@example.com", "e2e-admin-"+run
	dbURL := scratchDatabase(t)
	api := startAPI(t, buildAPI(t, t.TempDir()), "tailsampling", st.Dir, map[string]string{
		"LOG_JSON":                    "true",
		"TELEMETRY_MODE":              "otel",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:" + strconv.Itoa(httpPort),
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_BSP_SCHEDULE_DELAY":     "200",
		"OTEL_SERVICE_NAME":           serviceName,
		"DATABASE_URL":                dbURL,
		"JWT_SECRET":                  "e2e-" + randHex(24),
		"FIRST_SUPERUSER_EMAIL":       superEmail,
		"FIRST_SUPERUSER_PASSWORD":    superPassword,
	})
	r := api.expect(t, 200, "POST", "/auth/login", "", url.Values{"username": {superEmail}, "password": {superPassword}})
	token := jsonField(t, r.Body, "access_token")
	r = api.expect(t, 201, "POST", "/api/v1/users", "", map[string]any{"email": "target-" + run + "@example.com", "password": "correct-horse-" + run})
	userPath := "/api/v1/users/" + jsonField(t, r.Body, "id")

	// Ordinary reads: 200, fast. A generated request ID is the trace ID.
	okIDs := make([]string, 0, ordinary)
	for range ordinary {
		r := api.expect(t, 200, "GET", userPath, token, nil)
		okIDs = append(okIDs, r.RequestID)
	}

	// A real Postgres fault: the test locks the users table; the next read blocks on it (the
	// authentication step reads the user), the test terminates that backend (what a failover or
	// an administrator does), and the read answers 503. Then a second read blocks on the lock,
	// which the test holds for twice the users_read threshold before it lets go: a slow read.
	ctx := context.Background()
	connect := func() *pgx.Conn {
		t.Helper()
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(ctx) })
		return c
	}
	// Two connections: one holds the lock in its transaction; the other watches (inside a
	// transaction pg_stat_activity is a snapshot taken once) and terminates.
	lock, watch := connect(), connect()
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "LOCK TABLE users IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	blocked := func() (pid int) {
		t.Helper()
		why := waitFor(ctx, 30*time.Second, func() string {
			err := watch.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
				WHERE datname = current_database() AND backend_type = 'client backend' AND wait_event_type = 'Lock' LIMIT 1`).Scan(&pid)
			if err != nil {
				return "no backend waiting on the lock: " + err.Error()
			}
			return ""
		})
		if why != "" {
			t.Fatal(why)
		}
		return pid
	}
	inBackground := func() func() response {
		var wg sync.WaitGroup
		var res response
		var err error
		wg.Go(func() { res, err = api.send("GET", userPath, token, nil) })
		return func() response {
			wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
	}
	wait := inBackground()
	var killed bool
	if err := watch.QueryRow(ctx, "SELECT pg_terminate_backend($1)", blocked()).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend: %v %v", killed, err)
	}
	failed := wait()
	if failed.Status < 500 {
		t.Fatalf("read whose Postgres backend was terminated: status %d, want 5xx: %s", failed.Status, failed.Body)
	}
	wait = inBackground()
	blocked()
	heldFrom := time.Now()
	time.Sleep(2 * threshold) // the fault: the lock is held this long at least
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	slow := wait()
	if slow.Status != 200 {
		t.Fatalf("read held up by the lock: status %d: %s", slow.Status, slow.Body)
	}
	t.Logf("error read %s: %d; slow read %s: 200 after the lock was held %s (users_read threshold %s)",
		failed.RequestID, failed.Status, slow.RequestID, time.Since(heldFrom).Round(time.Millisecond), threshold)

	// SIGTERM: the service flushes every span to the collector before it exits. Then wait until
	// the collector has decided every trace it received, and Jaeger shows as many traces of this
	// service as the collector kept.
	api.stop()
	var kept float64
	why := waitFor(ctx, 60*time.Second, func() string {
		m, err := scrapeMetrics(metricsURL)
		if err != nil {
			return err.Error()
		}
		received := m.sum("otelcol_processor_tail_sampling_new_trace_id_received", nil)
		decided := m.sum("otelcol_processor_tail_sampling_global_count_traces_sampled", nil)
		kept = m.sum("otelcol_processor_tail_sampling_global_count_traces_sampled", map[string]string{"sampled": "true"})
		if received < ordinary || decided < received {
			return fmt.Sprintf("collector: %v traces received, %v decided", received, decided)
		}
		return ""
	})
	if why != "" {
		t.Fatalf("%s (after 60 s)\n%s", why, col.tail(20))
	}
	var found []jaegerTrace
	why = waitFor(ctx, 30*time.Second, func() string {
		found, err = jaegerGet(st.JaegerURL + "/api/traces?" + url.Values{"service": {serviceName}, "lookback": {"1h"}, "limit": {"100000"}}.Encode())
		if err != nil {
			return err.Error()
		}
		if float64(len(found)) != kept {
			return fmt.Sprintf("Jaeger has %d traces of %s, the collector kept %v", len(found), serviceName, kept)
		}
		return ""
	})
	if why != "" {
		t.Fatal(why)
	}
	byID := map[string]jaegerTrace{}
	for _, tr := range found {
		byID[tr.TraceID] = tr
	}

	// The error trace and the slow trace are kept, whatever the base rate.
	if tr, ok := byID[failed.RequestID]; !ok {
		t.Errorf("error trace %s (a %d) is not in Jaeger", failed.RequestID, failed.Status)
	} else if !slices.ContainsFunc(tr.Spans, func(s jaegerSpan) bool { v, _ := s.tag("otel.status_code"); return v == "ERROR" }) {
		t.Errorf("error trace %s has no span with status ERROR", failed.RequestID)
	}
	if tr, ok := byID[slow.RequestID]; !ok {
		t.Errorf("slow trace %s is not in Jaeger", slow.RequestID)
	} else if d := traceDuration(tr); d <= threshold {
		t.Errorf("slow trace %s lasts %s, not over the threshold %s", slow.RequestID, d, threshold)
	}

	// Of the ordinary reads only those the base rate picks, plus any that happened to be slower
	// than the threshold on a busy machine (the latency policy keeps those, rightly). The number
	// picked by the base rate is Binomial(n ≤ ordinary, p): the bound is its mean plus 5 standard
	// deviations at n = ordinary (exceeded with a probability under 1e-4).
	p := percentage / 100
	bound := int(math.Floor(ordinary*p + 5*math.Sqrt(ordinary*p*(1-p))))
	if bound >= ordinary/2 {
		t.Fatalf("bound %d of %d: the test would not tell a %g %% base rate from keeping everything", bound, ordinary, percentage)
	}
	byRate, bySlowness := 0, 0
	for _, id := range okIDs {
		tr, ok := byID[id]
		switch {
		case !ok:
		case traceDuration(tr) > threshold:
			bySlowness++
		default:
			byRate++
		}
	}
	m, err := scrapeMetrics(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	perPolicy := func(policy string) float64 {
		return m.sum("otelcol_processor_tail_sampling_count_traces_sampled", map[string]string{"policy": policy, "sampled": "true"})
	}
	t.Logf("collector at a %g %% base rate kept %v traces of %s; of %d ordinary reads %d are in Jaeger (%d by the base rate, bound %d; %d slower than %s); traces kept by policy: errors %v, slow-users-read %v, base-rate %v",
		percentage, kept, serviceName, ordinary, byRate+bySlowness, byRate, bound, bySlowness, threshold,
		perPolicy(policyErrors), perPolicy(policyUsersRead), perPolicy(policyBaseRate))
	if byRate > bound {
		t.Errorf("%d of %d ordinary fast reads kept: more than a %g %% base rate allows (bound %d)", byRate, ordinary, percentage, bound)
	}
	if perPolicy(policyErrors) < 1 || perPolicy(policyUsersRead) < 1 {
		t.Errorf("collector metrics: policy errors kept %v traces, slow-users-read %v; want ≥ 1 each", perPolicy(policyErrors), perPolicy(policyUsersRead))
	}
	t.Logf("tail sampling test took %s", time.Since(started).Round(time.Second))
}

// jsonField is the string field key of a JSON object.
func jsonField(t *testing.T, body []byte, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	v, _ := m[key].(string)
	if v == "" {
		t.Fatalf("no %s in %s", key, body)
	}
	return v
}

// traceDuration is what the latency policy measures: first span start to last span end.
func traceDuration(tr jaegerTrace) time.Duration {
	var first, last int64
	for i, s := range tr.Spans {
		if i == 0 || s.StartTime < first {
			first = s.StartTime
		}
		last = max(last, s.StartTime+s.Duration)
	}
	return time.Duration(last-first) * time.Microsecond
}

// promLine is one sample of a scrape in the Prometheus text format.
type promLine struct {
	name   string
	labels map[string]string
	value  float64
}

type promText []promLine

var sampleLineRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)`)
var labelPairRe = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

func scrapeMetrics(u string) (promText, error) {
	resp, err := httpClient.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var out promText
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := sampleLineRe.FindStringSubmatch(sc.Text())
		if m == nil || strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range labelPairRe.FindAllStringSubmatch(m[2], -1) {
			labels[l[1]] = l[2]
		}
		out = append(out, promLine{m[1], labels, v})
	}
	return out, sc.Err()
}

// sum adds the samples of name (a counter with or without the _total suffix) whose labels
// include every pair of match.
func (p promText) sum(name string, match map[string]string) float64 {
	total := 0.0
	for _, s := range p {
		if s.name != name && s.name != name+"_total" {
			continue
		}
		ok := true
		for k, v := range match {
			ok = ok && s.labels[k] == v
		}
		if ok {
			total += s.value
		}
	}
	return total
}
