package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v4"
)

type dashboard struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "grafana", "dashboards", "bulwark.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("bulwark.json: %v", err)
	}
	return d
}

// DashboardExprs returns every panel query of the dashboard as "title\texpr".
func dashboardExprs(d dashboard) [][2]string {
	var out [][2]string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, [2]string{p.Title, tg.Expr})
		}
	}
	return out
}

func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	hasRoute := false
	for _, v := range d.Templating.List {
		hasRoute = hasRoute || v.Name == "route"
	}
	if !hasRoute {
		t.Error("dashboard has no $route variable")
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		if p.Datasource.UID != "prometheus" {
			t.Errorf("panel %q datasource uid = %q", p.Title, p.Datasource.UID)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has an empty expr", p.Title)
			}
		}
	}
	all := ""
	for _, e := range dashboardExprs(d) {
		all += e[1] + "\n"
	}
	for _, want := range []string{
		"http_requests_total", "http_request_duration_ms_bucket", `route=~"$route"`,
		`histogram_quantile(0.5,`, `histogram_quantile(0.95,`, `histogram_quantile(0.99,`,
		`status_code=~"4.."`, `status_code=~"5.."`, `status_code="429"`,
		`ratelimit_decisions_total{decision=~"fallback|fail_open"}`, `ratelimit_decisions_total{decision="limited"}`,
		`cache_requests_total{cache="users", result="hit"}`,
		"pgxpool_acquired_connections", "db_client_connections_usage",
		// Runtime and process row, SLO row.
		"go_goroutine_count", "go_memory_heap_live_bytes", "go_gc_pause_duration_seconds_bucket",
		"process_cpu_time_seconds_total", "process_unix_file_descriptor_count",
		"slo:period_error_budget_remaining:ratio", "slo:current_burn_rate:ratio",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no panel query contains %s", want)
		}
	}
}

func TestDatasourcesLinkExemplarsToJaeger(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "grafana", "provisioning", "datasources", "datasources.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Datasources []struct {
			Name, UID, Type, URL string
			JSONData             struct {
				ExemplarTraceIDDestinations []struct {
					Name          string `yaml:"name"`
					DatasourceUID string `yaml:"datasourceUid"`
				} `yaml:"exemplarTraceIdDestinations"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{}
	for _, ds := range cfg.Datasources {
		uids[ds.Type] = ds.UID
	}
	if uids["prometheus"] != "prometheus" || uids["jaeger"] == "" {
		t.Fatalf("want a prometheus (uid prometheus) and a jaeger datasource, got %v", uids)
	}
	for _, ds := range cfg.Datasources {
		if ds.Type != "prometheus" {
			continue
		}
		dst := ds.JSONData.ExemplarTraceIDDestinations
		if len(dst) != 1 || dst[0].Name != "trace_id" || dst[0].DatasourceUID != uids["jaeger"] {
			t.Errorf("exemplarTraceIdDestinations = %+v, want trace_id -> %s", dst, uids["jaeger"])
		}
	}
}

// TestDashboardQueriesRun runs every panel query against a live Prometheus when PROMETHEUS_URL
// is set (e.g. from otel-collector/e2e-stack.sh's ports.env), with $__rate_interval = 1m and
// $route = .*; each must be accepted by Prometheus. Set DASHBOARD_REQUIRE_DATA=1 to also
// require data (after the service has been exercised).
func TestDashboardQueriesRun(t *testing.T) {
	base := os.Getenv("PROMETHEUS_URL")
	if base == "" {
		t.Skip("PROMETHEUS_URL not set")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, e := range dashboardExprs(loadDashboard(t)) {
		q := strings.NewReplacer("$__rate_interval", "1m", "$route", ".*").Replace(e[1])
		resp, err := client.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
			t.Errorf("%s: %s: %s %s", e[0], q, r.Error, body)
			continue
		}
		if os.Getenv("DASHBOARD_REQUIRE_DATA") == "1" && len(r.Data.Result) == 0 {
			t.Errorf("%s: no data for %s", e[0], q)
		}
	}
}
