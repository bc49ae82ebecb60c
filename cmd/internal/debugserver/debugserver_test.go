package debugserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark/cmd/internal/debugserver"
)

func get(t *testing.T, base, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(debugserver.Handler(debugserver.Info{
		Version: "v1.2.3", Config: map[string]string{"PORT": "8000", "JWT_SECRET": "[redacted]"},
	}))
	defer srv.Close()

	for path, want := range map[string]string{
		"/debug/pprof/":                  "Types of profiles available",
		"/debug/pprof/goroutine?debug=1": "goroutine profile:",
		"/debug/pprof/heap?debug=1":      "heap profile:",
		"/debug/pprof/cmdline":           "debugserver",
	} {
		code, body := get(t, srv.URL, path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body lacks %q: %.200s", path, code, want, body)
		}
	}

	code, body := get(t, srv.URL, debugserver.PathBuildInfo)
	var bi struct {
		Version   string `json:"version"`
		GoVersion string `json:"go_version"`
		Path      string `json:"path"`
	}
	if err := json.Unmarshal([]byte(body), &bi); code != 200 || err != nil || bi.Version != "v1.2.3" || !strings.HasPrefix(bi.GoVersion, "go") {
		t.Errorf("buildinfo: %d %v %+v", code, err, bi)
	}

	code, body = get(t, srv.URL, debugserver.PathConfig)
	var cfg struct {
		Version string            `json:"version"`
		Config  map[string]string `json:"config"`
	}
	if err := json.Unmarshal([]byte(body), &cfg); code != 200 || err != nil || cfg.Config["PORT"] != "8000" || cfg.Config["JWT_SECRET"] != "[redacted]" {
		t.Errorf("config: %d %v %+v", code, err, cfg)
	}

	for _, path := range []string{"/", "/health", "/debug/vars", "/debug/pprofx"} {
		if code, _ := get(t, srv.URL, path); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
}

func TestServerTimeouts(t *testing.T) {
	s := debugserver.New(http.NotFoundHandler(), nil)
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.IdleTimeout <= 0 || s.WriteTimeout <= debugserver.MaxProfile {
		t.Fatalf("timeouts: %+v", s)
	}
	if s.Handler == nil {
		t.Fatal("nil Handler would serve http.DefaultServeMux")
	}
}
