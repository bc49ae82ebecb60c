package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	yaml "go.yaml.in/yaml/v4"
)

// repoRoot is the bulwark repository root, two levels above this module.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// loadCompose parses docker-compose.yml with the compose-spec reference loader (schema
// validation, interpolation, normalisation), as `docker compose config` would.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithName("bulwark"), cli.WithEnv([]string{}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	want := []string{"app", "grafana", "jaeger", "otel-collector", "postgres", "prometheus", "redis"}
	got := p.ServiceNames()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("services = %v, want %v", got, want)
	}
	for _, name := range want {
		s := p.Services[name]
		if name != "app" && s.Image == "" {
			t.Errorf("%s: no image", name)
		}
		if s.Image != "" && (!strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("%s: image %q is not pinned to a tag", name, s.Image)
		}
		// The collector image is FROM scratch: nothing to run a health check command with.
		if name == "otel-collector" {
			continue
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 || s.HealthCheck.Disable {
			t.Errorf("%s: no health check", name)
		}
	}
}

func TestComposeDependencies(t *testing.T) {
	p := loadCompose(t)
	cases := map[string]map[string]string{
		"app":            {"postgres": types.ServiceConditionHealthy, "redis": types.ServiceConditionHealthy, "otel-collector": types.ServiceConditionStarted},
		"otel-collector": {"jaeger": types.ServiceConditionHealthy},
		"grafana":        {"prometheus": types.ServiceConditionHealthy, "jaeger": types.ServiceConditionHealthy},
	}
	for svc, deps := range cases {
		for dep, cond := range deps {
			d, ok := p.Services[svc].DependsOn[dep]
			if !ok {
				t.Errorf("%s does not depend on %s", svc, dep)
				continue
			}
			if d.Condition != cond {
				t.Errorf("%s -> %s condition = %q, want %q", svc, dep, d.Condition, cond)
			}
		}
	}
}

func TestComposeApp(t *testing.T) {
	p := loadCompose(t)
	app := p.Services["app"]
	if app.Build == nil || app.Build.Dockerfile != "Dockerfile" {
		t.Fatalf("app must be built from the repository Dockerfile, got %+v", app.Build)
	}
	df, err := os.ReadFile(filepath.Join(app.Build.Context, app.Build.Dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(df), "./cmd/api") || !strings.Contains(string(df), "USER ") {
		t.Errorf("Dockerfile should build ./cmd/api and run as a non-root USER")
	}
	env := app.Environment
	for k, want := range map[string]string{
		"TELEMETRY_MODE":     "otel",
		"RATE_LIMIT_ENABLED": "true",
		"CACHE_ENABLED":      "true",
	} {
		if v := env[k]; v == nil || *v != want {
			t.Errorf("app env %s = %v, want %q", k, v, want)
		}
	}
	for _, k := range []string{"DATABASE_URL", "REDIS_URL", "JWT_SECRET"} {
		if v := env[k]; v == nil || *v == "" {
			t.Errorf("app env %s missing", k)
		}
	}
	if v := env["DATABASE_URL"]; v != nil && !strings.Contains(*v, "@postgres:5432/") {
		t.Errorf("DATABASE_URL %q does not point at the postgres service", *v)
	}
	if v := env["REDIS_URL"]; v != nil && !strings.HasPrefix(*v, "redis://redis:6379") {
		t.Errorf("REDIS_URL %q does not point at the redis service", *v)
	}
	checkOTLPEndpoint(t, env)
	checkAppConfig(t, env)
	// (env.example is optional: loaded when present, required: false.)
	for _, f := range app.EnvFiles {
		if filepath.Base(f.Path) == "env.example" && f.Required {
			t.Errorf("env_file env.example should be optional")
		}
	}
}

func TestComposeObservability(t *testing.T) {
	p := loadCompose(t)
	root := repoRoot(t)

	col := p.Services["otel-collector"]
	if want := "otel/opentelemetry-collector-contrib:" + strings.TrimPrefix(contribVersion(t), "v"); col.Image != want {
		t.Errorf("collector image %q should be the builder's contrib release: %s", col.Image, want)
	}
	mustMount(t, col, filepath.Join(root, "otel-collector", "config.yaml"))

	prom := p.Services["prometheus"]
	if !slices.Contains(prom.Command, "--enable-feature=exemplar-storage") {
		t.Errorf("prometheus command %v lacks --enable-feature=exemplar-storage", prom.Command)
	}
	mustMount(t, prom, filepath.Join(root, "grafana", "prometheus.yml"))
	mustMount(t, prom, filepath.Join(root, "grafana", "prometheus", "rules"))

	graf := p.Services["grafana"]
	mustMount(t, graf, filepath.Join(root, "grafana", "provisioning"))
	mustMount(t, graf, filepath.Join(root, "grafana", "dashboards"))
}

// contribVersion is the version of the contrib modules in otel-collector/builder-config.yaml
// (all of them at one release; the test fails otherwise).
func contribVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "otel-collector", "builder-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]bool{}
	for _, m := range regexp.MustCompile(`gomod: github\.com/open-telemetry/opentelemetry-collector-contrib/\S+ (v\S+)`).FindAllStringSubmatch(string(b), -1) {
		versions[m[1]] = true
	}
	if len(versions) != 1 {
		t.Fatalf("builder-config.yaml: contrib modules at %d versions %v, want one", len(versions), versions)
	}
	for v := range versions {
		return v
	}
	return ""
}

// mustMount checks the service bind-mounts source, and that source exists in the repository.
func mustMount(t *testing.T, s types.ServiceConfig, source string) {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == source {
			if _, err := os.Stat(source); err != nil {
				t.Errorf("%s mounts %s, which does not exist", s.Name, source)
			}
			return
		}
	}
	t.Errorf("%s does not bind-mount %s", s.Name, source)
}

// checkOTLPEndpoint: the app's OTLP endpoint is the collector service on the receiver port of
// the protocol the service will use (OTEL_EXPORTER_OTLP_PROTOCOL, default http/protobuf), as
// configured in otel-collector/config.yaml. http/protobuf sent to the gRPC port fails on every
// export.
func checkOTLPEndpoint(t *testing.T, env types.MappingWithEquals) {
	t.Helper()
	proto := "http/protobuf" // the service's default (telemetry.DefaultProtocol)
	if v := env["OTEL_EXPORTER_OTLP_PROTOCOL"]; v != nil && *v != "" {
		proto = *v
	}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "otel-collector", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Receivers struct {
			OTLP struct {
				Protocols map[string]struct {
					Endpoint string `yaml:"endpoint"`
				} `yaml:"protocols"`
			} `yaml:"otlp"`
		} `yaml:"receivers"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	key := map[string]string{"http/protobuf": "http", "grpc": "grpc"}[proto]
	if key == "" {
		t.Fatalf("app OTEL_EXPORTER_OTLP_PROTOCOL %q is not one the service supports", proto)
	}
	_, port, err := net.SplitHostPort(cfg.Receivers.OTLP.Protocols[key].Endpoint)
	if err != nil {
		t.Fatalf("config.yaml otlp %s receiver endpoint: %v", key, err)
	}
	want := "http://otel-collector:" + port
	if v := env["OTEL_EXPORTER_OTLP_ENDPOINT"]; v == nil || *v != want {
		t.Errorf("app OTEL_EXPORTER_OTLP_ENDPOINT = %v, want %q (protocol %s -> collector otlp %s receiver)", deref(v), want, proto, key)
	}
}

func deref(p *string) string {
	if p == nil {
		return "<unset>"
	}
	return *p
}

// checkAppConfig runs the service's own configuration check (cmd/api
// -check-config) on the app's compose environment, so a value the service
// would refuse at start-up (a JWT_SECRET under 32 bytes, a bad duration)
// fails here rather than in a container that restarts forever.
func checkAppConfig(t *testing.T, env types.MappingWithEquals) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "api")
	build := exec.Command("go", "build", "-o", bin, "./cmd/api")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/api: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-check-config")
	for k, v := range env {
		if v != nil {
			cmd.Env = append(cmd.Env, k+"="+*v)
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the service refuses the compose app environment: %v: %s", err, out)
	}
}
