package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestDebugListener runs the binary with DEBUG_ADDR and every secret set:
// the debug listener serves pprof, build info and the effective
// configuration with no secret in any of it, and the public listener
// serves none of it (404 envelope).
func TestDebugListener(t *testing.T) {
	secrets := map[string]string{
		"JWT_SECRET":               "jwt-secret-0123456789abcdef0123456789",
		"FIRST_SUPERUSER_PASSWORD": "superuser-password-42",
		// Unreachable, never connected to: only their passwords matter.
		"REDIS_URL": "redis://:redis-password-42@127.0.0.1:1/0",
	}
	debugAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p := start(t,
		"DEBUG_ADDR="+debugAddr,
		"JWT_SECRET="+secrets["JWT_SECRET"],
		"FIRST_SUPERUSER_EMAIL=root@example.com",
		"FIRST_SUPERUSER_PASSWORD="+secrets["FIRST_SUPERUSER_PASSWORD"],
		"REDIS_URL="+secrets["REDIS_URL"],
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://user:otlp-password-42@127.0.0.1:1",
	)
	secretWords := []string{"jwt-secret-0123456789", "superuser-password-42", "redis-password-42", "otlp-password-42"}

	fetch := func(base, path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// The public listener: none of the debug paths.
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline", "/debug/buildinfo", "/debug/config"} {
		code, body := fetch(p.base, path)
		var env struct {
			Error struct {
				Code      string `json:"code"`
				RequestID string `json:"request_id"`
			} `json:"error"`
		}
		if code != http.StatusNotFound || json.Unmarshal([]byte(body), &env) != nil || env.Error.Code == "" || env.Error.RequestID == "" {
			t.Errorf("public %s: %d %.200s; want the 404 envelope", path, code, body)
		}
	}

	// The debug listener.
	debug := "http://" + debugAddr
	var all strings.Builder
	for path, want := range map[string]string{
		"/debug/pprof/":                  "Types of profiles available",
		"/debug/pprof/goroutine?debug=1": "goroutine profile:",
		"/debug/pprof/cmdline":           "api",
		"/debug/buildinfo":               `"go_version"`,
		"/debug/config":                  `"DEBUG_ADDR": "` + debugAddr + `"`,
	} {
		code, body := fetch(debug, path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("debug %s: %d, body lacks %q: %.300s", path, code, want, body)
		}
		all.WriteString(body)
	}
	_, cfgBody := fetch(debug, "/debug/config")
	var cfg struct {
		Config map[string]string `json:"config"`
	}
	if err := json.Unmarshal([]byte(cfgBody), &cfg); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"JWT_SECRET": redacted, "FIRST_SUPERUSER_PASSWORD": redacted, "FIRST_SUPERUSER_EMAIL": "root@example.com",
		"REDIS_URL": "redis://:xxxxx@127.0.0.1:1/0", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://user:xxxxx@127.0.0.1:1",
		"PORT": strings.TrimPrefix(p.base[strings.LastIndex(p.base, ":"):], ":"), "TELEMETRY_MODE": "noop", "RATE_LIMIT_REQUESTS": "100",
	} {
		if cfg.Config[k] != want {
			t.Errorf("config %s = %q, want %q", k, cfg.Config[k], want)
		}
	}
	for _, w := range secretWords {
		if strings.Contains(all.String(), w) {
			t.Errorf("a secret (%s) appears on the debug listener", w)
		}
		if strings.Contains(p.output(), w) {
			t.Errorf("a secret (%s) appears in the log", w)
		}
	}
	p.stop(t)
}
