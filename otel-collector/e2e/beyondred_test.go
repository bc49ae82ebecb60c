package e2e

// The checks of TestPipeline beyond RED metrics and traces (docs/OBSERVABILITY.md): the exported
// names of both metric sets and of the runtime metrics, a request's log record in the collector,
// a flood that mints no series, and the SLO and alert rules loaded by Prometheus.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkMetricNames pins the Prometheus names the dashboards and rules rely on: the contract's
// (the default), the OpenTelemetry semantic-convention histogram that TELEMETRY_SEMCONV=true adds
// (with its labels and bucket boundaries), and the runtime and process metrics.
func checkMetricNames(t *testing.T, st stack, instance string) {
	sel := `{job="bulwark", instance="` + instance + `"}`
	want := map[string][]string{ // name → labels every series of it must have
		"http_requests_total":                         {"method", "route", "status_code"},
		"http_request_duration_ms_bucket":             {"method", "route", "status_code", "le"},
		"http_request_duration_ms_sum":                {"method", "route", "status_code"},
		"http_request_duration_ms_count":              {"method", "route", "status_code"},
		"ratelimit_decisions_total":                   {"decision"},
		"cache_requests_total":                        {"cache", "result"},
		"http_server_request_duration_seconds_bucket": {"http_request_method", "http_response_status_code", "url_scheme", "le"},
		"http_server_request_duration_seconds_sum":    {"http_request_method", "http_response_status_code", "url_scheme"},
		"http_server_request_duration_seconds_count":  {"http_request_method", "http_response_status_code", "url_scheme"},
		"go_goroutine_count":                          nil,
		"go_memory_used_bytes":                        {"go_memory_type"},
		"go_memory_gc_goal_bytes":                     nil,
		"go_memory_heap_live_bytes":                   nil,
		"go_memory_allocated_bytes_total":             nil,
		"go_gc_pause_duration_seconds_bucket":         {"le"},
		"go_gc_pause_duration_seconds_count":          nil,
		"process_cpu_time_seconds_total":              {"cpu_mode"},
		"process_memory_usage_bytes":                  nil,
		"process_unix_file_descriptor_count":          nil,
		"process_unix_file_descriptor_limit":          nil,
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	var got []promSample
	why := waitFor(context.Background(), 60*time.Second, func() string {
		var err error
		got, err = promQuery(st.PrometheusURL, `count by (__name__) ({__name__=~"`+strings.Join(names, "|")+`", job="bulwark", instance="`+instance+`"})`)
		if err != nil {
			return err.Error()
		}
		for _, n := range names {
			if !slices.ContainsFunc(got, func(s promSample) bool { return s.Metric["__name__"] == n }) {
				return "no " + n + " yet"
			}
		}
		return ""
	})
	if why != "" {
		t.Fatalf("%s (after 60 s)", why)
	}
	for _, n := range names {
		res, err := promQuery(st.PrometheusURL, n+sel)
		if err != nil || len(res) == 0 {
			t.Errorf("%s: %d series, %v", n, len(res), err)
			continue
		}
		for _, s := range res {
			for _, l := range want[n] {
				if s.Metric[l] == "" {
					t.Errorf("%s series %v has no %s label", n, s.Metric, l)
				}
			}
		}
		t.Logf("%-45s %3d series", n, len(res))
	}
	// http.route on the semconv histogram: the route pattern, never a raw path; absent when
	// no route matched.
	res, err := promQuery(st.PrometheusURL, `count by (http_route) (http_server_request_duration_seconds_count`+sel+`)`)
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, s := range res {
		routes = append(routes, s.Metric["http_route"])
	}
	if !slices.Contains(routes, routeUser) || !slices.Contains(routes, "") {
		t.Errorf("http_route values %q: want %s and series without it (unmatched)", routes, routeUser)
	}
	// The semconv histogram's buckets are the convention's boundaries, in seconds.
	res, err = promQuery(st.PrometheusURL, `count by (le) (http_server_request_duration_seconds_bucket`+sel+`)`)
	if err != nil {
		t.Fatal(err)
	}
	var les []float64
	for _, s := range res {
		f, err := strconv.ParseFloat(s.Metric["le"], 64)
		if err != nil {
			t.Fatalf("le %q: %v", s.Metric["le"], err)
		}
		les = append(les, f)
	}
	sort.Float64s(les)
	wantLE := []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	if len(les) != len(wantLE)+1 || !slices.Equal(les[:len(wantLE)], wantLE) {
		t.Errorf("http_server_request_duration_seconds_bucket le = %v, want %v and +Inf", les, wantLE)
	}
}

// debugLogRecord is one log record as the collector's debug exporter (verbosity detailed) prints it.
type debugLogRecord struct {
	Body, TraceID, SpanID, Severity string
	Attrs                           map[string]string
}

// readDebugLogRecords parses the LogRecord blocks of the collector's log.
func readDebugLogRecords(path string) ([]debugLogRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []debugLogRecord
	var cur *debugLogRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.Contains(line, "LogRecord #"):
			out = append(out, debugLogRecord{Attrs: map[string]string{}})
			cur = &out[len(out)-1]
		case cur == nil:
		case strings.Contains(line, "ResourceLog #"), strings.Contains(line, "ScopeLogs #"):
			// (The first line of a batch follows the collector's own log prefix.)
			cur = nil
		case strings.HasPrefix(line, "Body: "):
			cur.Body = unwrapValue(strings.TrimPrefix(line, "Body: "))
		case strings.HasPrefix(line, "SeverityText: "):
			cur.Severity = strings.TrimPrefix(line, "SeverityText: ")
		case strings.HasPrefix(line, "Trace ID: "):
			cur.TraceID = strings.TrimPrefix(line, "Trace ID: ")
		case strings.HasPrefix(line, "Span ID: "):
			cur.SpanID = strings.TrimPrefix(line, "Span ID: ")
		case strings.HasPrefix(line, "-> "):
			if k, v, ok := strings.Cut(strings.TrimPrefix(line, "-> "), ": "); ok {
				cur.Attrs[k] = unwrapValue(v)
			}
		}
	}
	return out, sc.Err()
}

// unwrapValue turns the debug exporter's `Str(value)` / `Int(3)` into the value.
func unwrapValue(v string) string {
	if i := strings.IndexByte(v, '('); i > 0 && strings.HasSuffix(v, ")") {
		return v[i+1 : len(v)-1]
	}
	return v
}

// checkLogRecord: the access-log record of one request went over OTLP to the collector's logs
// pipeline, with its span's trace ID (a generated request ID is the trace ID) and its request_id.
func checkLogRecord(t *testing.T, st stack, requestID string) {
	path := filepath.Join(st.Dir, "collector.log")
	var found *debugLogRecord
	n := 0
	why := waitFor(context.Background(), 30*time.Second, func() string {
		recs, err := readDebugLogRecords(path)
		if err != nil {
			return err.Error()
		}
		n = len(recs)
		for i, r := range recs {
			if r.Attrs["request_id"] == requestID && r.Body == "http.request" {
				found = &recs[i]
				return ""
			}
		}
		return fmt.Sprintf("no http.request record with request_id %s among %d records", requestID, n)
	})
	if why != "" {
		t.Fatalf("%s in %s", why, path)
	}
	if found.TraceID != requestID || len(found.SpanID) != 16 || found.Severity != "INFO" {
		t.Errorf("record %+v: want trace ID %s (the request's span), a span ID, INFO", *found, requestID)
	}
	if found.Attrs["route"] != routeUser || found.Attrs["status"] != "200" {
		t.Errorf("record attributes %v", found.Attrs)
	}
	t.Logf("collector got %d log records; the cache-miss read's: body %q trace %s span %s attrs %v", n, found.Body, found.TraceID, found.SpanID, found.Attrs)
}

// checkFlood: random paths, random (non-standard) methods and random request IDs against the
// running service add requests to existing series and create none. The warm-up makes the
// series such a request belongs to exist first; the check waits until Prometheus has seen the
// whole flood before it counts again.
func checkFlood(t *testing.T, st stack, p *apiProcess, instance string) {
	inst := `instance="` + instance + `"`
	seriesQ := map[string]string{
		"contract (route=unmatched)":    `count({__name__=~"http_requests_total|http_request_duration_ms_bucket", ` + inst + `, route="unmatched"})`,
		"semconv (no http_route)":       `count(http_server_request_duration_seconds_bucket{` + inst + `, http_route=""})`,
		"any route label with flood-":   `count({` + inst + `, route=~".*flood.*"}) or vector(0)`,
		"any method label but standard": `count({` + inst + `, method!="", method!~"GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|CONNECT|TRACE|_OTHER"}) or vector(0)`,
	}
	totalQ := `sum(http_requests_total{` + inst + `, route="unmatched", status_code="404"})`
	send := func(method, path, id string) {
		req, err := http.NewRequest(method, p.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-ID", id)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s %s: %d, want 404", method, path, resp.StatusCode)
		}
	}
	methods := []string{"GET", "FLOOD" + strings.ToUpper(randHex(2)), "get", "PROPFIND"}
	value := func(q string) float64 {
		res, err := promQuery(st.PrometheusURL, q)
		if err != nil || len(res) != 1 {
			return -1
		}
		return res[0].float()
	}
	// Prometheus has seen every request up to now once the unmatched-404 total has reached what
	// the service counted: the counter and the histograms of a request go out in one export and
	// come in with one scrape.
	waitSeen := func(want float64) {
		t.Helper()
		if why := waitFor(context.Background(), 60*time.Second, func() string {
			if v := value(totalQ); v < want {
				return fmt.Sprintf("Prometheus has %v unmatched 404s, want %v", v, want)
			}
			return ""
		}); why != "" {
			t.Fatal(why)
		}
	}
	pre := value(totalQ) // the earlier 404s of the test made the series
	if pre < 0 {
		t.Fatalf("no %s before the flood", totalQ)
	}
	for _, m := range methods {
		send(m, "/flood-"+randHex(4), "warm-"+randHex(4))
	}
	waitSeen(pre + float64(len(methods)))
	before := map[string]float64{}
	for k, q := range seriesQ {
		before[k] = value(q)
	}
	total0 := value(totalQ)

	const flood = 600
	for i := range flood {
		id := randHex(16)
		if i%3 == 0 {
			id = "not a valid id " + randHex(8)
		}
		send(methods[i%len(methods)], fmt.Sprintf("/flood-%s/%s?x=%s", randHex(6), randHex(10), randHex(4)), id)
	}
	waitSeen(total0 + flood)
	for k, q := range seriesQ {
		after := value(q)
		if after != before[k] || after < 0 {
			t.Errorf("%s: %v series before the flood, %v after: %s", k, before[k], after, q)
		}
		t.Logf("%-32s %v series before and after %d requests", k, after, flood)
	}
}

// checkRules: Prometheus loaded the SLO and alert rules of grafana/prometheus/rules, evaluates
// every one without error, and the SLO recording rules have data for this run's traffic.
func checkRules(t *testing.T, st stack) {
	type rule struct {
		Name, Health, LastError, Type string
	}
	var groups []struct {
		Name  string `json:"name"`
		File  string `json:"file"`
		Rules []rule `json:"rules"`
	}
	why := waitFor(context.Background(), 30*time.Second, func() string {
		resp, err := httpClient.Get(st.PrometheusURL + "/api/v1/rules")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Groups json.RawMessage `json:"groups"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return err.Error()
		}
		if err := json.Unmarshal(r.Data.Groups, &groups); err != nil {
			return err.Error()
		}
		for _, g := range groups {
			for _, rl := range g.Rules {
				if rl.Health != "ok" {
					return fmt.Sprintf("group %s rule %s: health %q %s", g.Name, rl.Name, rl.Health, rl.LastError)
				}
			}
		}
		return ""
	})
	if why != "" {
		t.Fatal(why)
	}
	files, alerts, records := map[string]bool{}, map[string]bool{}, 0
	for _, g := range groups {
		files[filepath.Base(g.File)] = true
		for _, rl := range g.Rules {
			if rl.Type == "alerting" {
				alerts[rl.Name] = true
			} else {
				records++
			}
		}
	}
	for _, f := range []string{"slo.yml", "cardinality.yml"} {
		if !files[f] {
			t.Errorf("rule file %s not loaded (have %v)", f, files)
		}
	}
	for _, a := range []string{"BulwarkUsersReadAvailability", "BulwarkUsersReadLatency", "BulwarkAuthAvailability", "BulwarkMetricCardinalityOverflow"} {
		if !alerts[a] {
			t.Errorf("alert %s not loaded", a)
		}
	}
	t.Logf("%d rule groups from %v: %d recording rules, %d alerts, all healthy", len(groups), files, records, len(alerts))
	// The SLIs of this run's traffic.
	for _, q := range []string{
		`slo:sli_error:ratio_rate5m{sloth_service="bulwark", sloth_slo="users-read-availability"}`,
		`slo:sli_error:ratio_rate5m{sloth_service="bulwark", sloth_slo="users-read-latency"}`,
		`slo:period_error_budget_remaining:ratio{sloth_service="bulwark", sloth_slo="users-read-availability"}`,
	} {
		if why := waitFor(context.Background(), 30*time.Second, func() string {
			if res, err := promQuery(st.PrometheusURL, q); err != nil || len(res) == 0 {
				return fmt.Sprintf("no data (%v)", err)
			}
			return ""
		}); why != "" {
			t.Errorf("%s: %s", q, why)
		}
	}
	if res, err := promQuery(st.PrometheusURL, `ALERTS{alertstate="firing", sloth_service="bulwark"}`); err == nil {
		for _, s := range res {
			t.Logf("firing: %s %v", s.Metric["alertname"], s.Metric)
		}
	}
}
