package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/storage/testenv"
)

// chromiumFlags are the flags this kind of machine needs for headless
// Chromium (no sandbox as root, no network beyond loopback).
var chromiumFlags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync"}

// chromiumOrSkip returns Debian's chromium, or skips the test when it is not
// installed (`make chromium` installs it); with CI=true its absence fails.
func chromiumOrSkip(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if testenv.CI() {
		t.Fatal("chromium is required when CI is set: make chromium (apt-get install chromium)")
	}
	t.Skip("skipping: chromium not installed (make chromium, or apt-get install chromium)")
	return ""
}

// The pages' script: each step's outcome (or the error fetch threw) goes into
// one JSON object, posted back to the page's own origin.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>bulwark CORS</title></head><body><script>
const api = {{.API}};
const out = {};
let token = "";
async function step(name, f) {
  try { out[name] = await f(); } catch (e) { out[name] = {error: String(e)}; }
}
(async () => {
{{if .Allowed}}
  await step("health", async () => {
    const r = await fetch(api + "/health", {headers: {"X-Request-ID": "browser-allowed-1"}});
    return {status: r.status, request_id: r.headers.get("X-Request-ID"), body: await r.text()};
  });
  await step("signup", async () => {
    const r = await fetch(api + "/api/v1/users", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({email: "browser@example.com", password: "browserpassword"})});
    return {status: r.status, request_id: r.headers.get("X-Request-ID"), location: r.headers.get("Location"),
      rate_limit: r.headers.get("X-RateLimit-Limit")};
  });
  await step("unauthorized", async () => {
    const r = await fetch(api + "/api/v1/users/me");
    const b = await r.json();
    return {status: r.status, request_id: r.headers.get("X-Request-ID"), envelope_id: b.error.request_id, code: b.error.code};
  });
  await step("login", async () => {
    const r = await fetch(api + "/auth/login", {method: "POST",
      body: new URLSearchParams({username: "browser@example.com", password: "browserpassword"})});
    token = (await r.json()).access_token;
    return {status: r.status};
  });
  await step("me", async () => {
    const r = await fetch(api + "/api/v1/users/me", {headers: {"Authorization": "Bearer " + token}});
    return {status: r.status, email: (await r.json()).email};
  });
{{else}}
  await step("health", async () => {
    const r = await fetch(api + "/health");
    return {status: r.status};
  });
  await step("signup", async () => {
    const r = await fetch(api + "/api/v1/users", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({email: "blocked@example.com", password: "browserpassword"})});
    return {status: r.status};
  });
{{end}}
  await fetch("/result", {method: "POST", body: JSON.stringify(out)});
})();
</script></body></html>`))

type stepResult struct {
	Status     int    `json:"status"`
	Error      string `json:"error"`
	RequestID  string `json:"request_id"`
	EnvelopeID string `json:"envelope_id"`
	Code       string `json:"code"`
	Body       string `json:"body"`
	Location   string `json:"location"`
	RateLimit  string `json:"rate_limit"`
	Email      string `json:"email"`
}

// page serves the test page on an origin of its own and receives its
// result. Its listener exists at once (origin); it serves from start, which
// is called once the API's URL is known.
type page struct {
	srv    *httptest.Server
	origin string
	result chan map[string]stepResult
}

func newPage(t *testing.T, allowed bool, api *string) *page {
	p := &page{result: make(chan map[string]stepResult, 1)}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = pageTemplate.Execute(w, map[string]any{"API": *api, "Allowed": allowed})
		case "/result":
			var res map[string]stepResult
			if err := json.NewDecoder(r.Body).Decode(&res); err != nil {
				t.Errorf("page result: %v", err)
			}
			select {
			case p.result <- res:
			default:
			}
		default:
			http.NotFound(w, r)
		}
	}))
	p.origin = "http://" + p.srv.Listener.Addr().String()
	t.Cleanup(p.srv.Close)
	return p
}

// seen records what reached the API, with the Origin it came from.
type seen struct {
	mu   sync.Mutex
	reqs []string
}

func (s *seen) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Method+" "+r.URL.Path+" from "+r.Header.Get("Origin"))
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (s *seen) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reqs...)
}

func (s *seen) has(req string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.reqs {
		if r == req {
			return true
		}
	}
	return false
}

// visit opens url in a fresh headless Chromium and returns what the page
// reported. The deadline only guards against a hung browser.
func visit(t *testing.T, bin string, p *page) map[string]stepResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append(append([]string{}, chromiumFlags...), "--user-data-dir="+t.TempDir(), p.srv.URL+"/")
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	select {
	case res := <-p.result:
		return res
	case err := <-exited:
		exited <- err
		t.Fatalf("chromium exited (%v) before the page reported; stderr:\n%s", err, stderr.Bytes())
	case <-ctx.Done():
		t.Fatalf("no result from the page within 90s; stderr:\n%s", stderr.Bytes())
	}
	return nil
}

// TestCORSBrowser runs the real thing: a page on one origin calls the API on
// another with fetch in headless Chromium. From the allowed origin the
// preflighted calls succeed and the page reads X-Request-ID (its own, a
// generated one, and the one of a 401 envelope, equal to the body's),
// Location and X-RateLimit-Limit. From another origin the browser blocks
// every read, and never sends the preflighted POST at all.
func TestCORSBrowser(t *testing.T) {
	bin := chromiumOrSkip(t)
	var apiURL string
	allowed, blocked := newPage(t, true, &apiURL), newPage(t, false, &apiURL)
	e := newEnv(t, memory.NewUsers(), withCORS(t, allowed.origin, false),
		withRateLimit(memory.NewRateStore(nil), 1000, time.Minute, semanticTimeout))
	var s seen
	api := httptest.NewServer(s.wrap(e.h))
	t.Cleanup(api.Close)
	apiURL = api.URL
	allowed.srv.Start()
	blocked.srv.Start()

	got := visit(t, bin, allowed)
	t.Logf("allowed origin %s: %+v", allowed.origin, got)
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	if h := got["health"]; h.Status != 200 || h.RequestID != "browser-allowed-1" || h.Body != `{"status":"ok"}` {
		t.Errorf("health: %+v", h)
	}
	if su := got["signup"]; su.Status != 201 || !hexID.MatchString(su.RequestID) ||
		!strings.HasPrefix(su.Location, "/api/v1/users/") || su.RateLimit != "1000" {
		t.Errorf("signup: %+v", su)
	}
	if u := got["unauthorized"]; u.Status != 401 || u.Code != "unauthorized" || !hexID.MatchString(u.RequestID) || u.EnvelopeID != u.RequestID {
		t.Errorf("401 envelope: %+v", u)
	}
	if l, m := got["login"], got["me"]; l.Status != 200 || m.Status != 200 || m.Email != "browser@example.com" {
		t.Errorf("login %+v, me %+v", l, m)
	}
	for _, want := range []string{"OPTIONS /health from " + allowed.origin, "OPTIONS /api/v1/users from " + allowed.origin,
		"POST /api/v1/users from " + allowed.origin} {
		if !s.has(want) {
			t.Errorf("the API never saw %q (saw %q)", want, s.all())
		}
	}

	got = visit(t, bin, blocked)
	t.Logf("other origin %s: %+v", blocked.origin, got)
	for _, step := range []string{"health", "signup"} {
		if r := got[step]; r.Status != 0 || !strings.Contains(r.Error, "TypeError") {
			t.Errorf("%s from another origin was not blocked: %+v", step, r)
		}
	}
	// The block is the browser's CORS check, not a network failure: the
	// simple GET and the preflight reached the API; the POST never did.
	for req, want := range map[string]bool{
		"GET /health from " + blocked.origin:           true,
		"OPTIONS /api/v1/users from " + blocked.origin: true,
		"POST /api/v1/users from " + blocked.origin:    false,
	} {
		if s.has(req) != want {
			t.Errorf("API saw %q: %v, want %v (saw %q)", req, !want, want, s.all())
		}
	}
	if rec := e.do(req{method: "POST", path: "/auth/login", body: `{"username":"blocked@example.com","password":"browserpassword"}`}); rec.Code != 401 {
		t.Errorf("the blocked sign-up created an account: login %d", rec.Code)
	}
}
