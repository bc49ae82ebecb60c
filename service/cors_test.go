package service_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/telemetry"
)

const appOrigin = "https://app.example"

// withCORS turns CORS on for origins (CORS_ALLOWED_ORIGINS syntax) with the
// default methods, headers and max age.
func withCORS(t *testing.T, origins string, credentials bool) envOption {
	t.Helper()
	o, err := middleware.DefaultCORSOptions(origins)
	if err != nil {
		t.Fatal(err)
	}
	o.AllowCredentials = credentials
	c, err := middleware.NewCORS(o)
	if err != nil {
		t.Fatal(err)
	}
	return func(s *envSetup) { s.cfg.CORS = c }
}

func preflight(path, origin, method, headers string) req {
	h := map[string]string{"Access-Control-Request-Method": method}
	if origin != "" {
		h["Origin"] = origin
	}
	if headers != "" {
		h["Access-Control-Request-Headers"] = headers
	}
	return req{method: "OPTIONS", path: path, header: h}
}

// exposed is the Access-Control-Expose-Headers value for the service's list.
var exposed = func() string {
	var names []string
	for _, h := range middleware.CORSExposedHeaders() {
		names = append(names, http.CanonicalHeaderKey(h))
	}
	return strings.Join(names, ", ")
}()

// allowedCORS asserts the headers of an actual response to an allowed origin.
func allowedCORS(t *testing.T, what string, rec *httptest.ResponseRecorder, origin string) {
	t.Helper()
	h := rec.Header()
	if got := h.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != origin {
		t.Errorf("%s (%d): Access-Control-Allow-Origin %q, want %q", what, rec.Code, got, origin)
	}
	if got := h.Get("Access-Control-Expose-Headers"); got != exposed {
		t.Errorf("%s (%d): Access-Control-Expose-Headers %q, want %q", what, rec.Code, got, exposed)
	}
	if got := h.Get("Vary"); got != "Origin" {
		t.Errorf("%s (%d): Vary %q", what, rec.Code, got)
	}
	if h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("%s (%d): credentials allowed", what, rec.Code)
	}
}

// noCORS asserts a response gives the page nothing (it may still vary).
func noCORS(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	for k := range rec.Header() {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("%s (%d): %s: %q", what, rec.Code, k, rec.Header().Get(k))
		}
	}
}

// TestCORS proves CONTRACT §10's CORS through the whole chain, every answer
// validated against docs/openapi.yaml: preflights are answered before the
// rate limiter and the body limit (never a 405) and tagged with their route;
// every response, error envelopes included, carries the headers for an
// allowed origin and none for another.
func TestCORS(t *testing.T) {
	const limit = 3
	b := memoryBackend(t)
	tel := newCountTel()
	e := rateEnv(t, b, limit, time.Minute, withCORS(t, appOrigin+", http://localhost:5173", false), withTelemetry(tel))

	t.Run("preflight", func(t *testing.T) {
		ip := randomIP()
		for _, tc := range []struct {
			path, method, route string
		}{
			{"/api/v1/users", "POST", "/api/v1/users"},
			{"/api/v1/users/" + e.alice.id, "PATCH", "/api/v1/users/{id}"},
			{"/api/v1/users/" + e.alice.id, "DELETE", "/api/v1/users/{id}"},
			{"/api/v1/users/me", "GET", "/api/v1/users/me"},
			{"/auth/login", "POST", "/auth/login"},
			{"/health", "GET", "/health"},
			{"/api/v1/nope", "GET", middleware.RouteUnmatched},
		} {
			r := preflight(tc.path, appOrigin, tc.method, "authorization,content-type,x-request-id")
			r.remote = remote(ip)
			// A body far over the limit: a preflight never reaches the body limit.
			r.body, r.ctype = strings.Repeat("x", 10_000), "text/plain"
			before := tel.get(telemetry.MetricHTTPRequestsTotal, "method=OPTIONS,route="+tc.route+",status_code=204")
			rec := e.do(r)
			if rec.Code != 204 || rec.Body.Len() != 0 {
				t.Fatalf("%s %s: %d %q", tc.method, tc.path, rec.Code, rec.Body)
			}
			h := rec.Header()
			for k, want := range map[string]string{
				"Access-Control-Allow-Origin":  appOrigin,
				"Access-Control-Allow-Methods": tc.method,
				"Access-Control-Allow-Headers": "authorization,content-type,x-request-id",
				"Access-Control-Max-Age":       "600",
				"Vary":                         "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s %s: %s %q, want %q", tc.method, tc.path, k, got, want)
				}
			}
			noRLHeaders(t, "preflight", rec)
			after := tel.get(telemetry.MetricHTTPRequestsTotal, "method=OPTIONS,route="+tc.route+",status_code=204")
			if after != before+1 {
				t.Errorf("%s %s: http_requests_total{method=OPTIONS,route=%s,status_code=204} went %v -> %v", tc.method, tc.path, tc.route, before, after)
			}
		}
		if n := b.keys.count(ipKey(ip)); n != 0 {
			t.Fatalf("preflights reached the rate limiter %d times", n)
		}
		for name, r := range map[string]req{
			"other origin":            preflight("/api/v1/users", "https://evil.example", "POST", "content-type"),
			"other port":              preflight("/api/v1/users", "http://localhost:5174", "POST", "content-type"),
			"method not allowed":      preflight("/api/v1/users", appOrigin, "PUT", ""),
			"header not allowed":      preflight("/api/v1/users", appOrigin, "POST", "content-type,x-evil"),
			"no origin":               preflight("/api/v1/users", "", "POST", "content-type"),
			"origin with a path":      preflight("/api/v1/users", appOrigin+"/", "POST", "content-type"),
			"null origin":             preflight("/api/v1/users", "null", "POST", "content-type"),
			"origin in upper case":    preflight("/api/v1/users", strings.ToUpper(appOrigin), "POST", "content-type"),
			"suffix of a listed host": preflight("/api/v1/users", "https://evilapp.example", "POST", "content-type"),
		} {
			rec := e.do(r)
			if rec.Code != 204 {
				t.Fatalf("%s: %d %s", name, rec.Code, rec.Body)
			}
			noCORS(t, name, rec)
		}
	})

	t.Run("actual requests, envelopes included", func(t *testing.T) {
		ip := remote(randomIP())
		with := func(origin string, r req) req {
			r.remote = ip
			r.header = map[string]string{"Origin": origin}
			return r
		}
		patchPanic := req{method: "PATCH", path: "/api/v1/users/" + e.alice.id, token: e.alice.token, body: `{"full_name":"panic"}`}
		cases := []struct {
			name   string
			r      req
			status int
		}{
			{"200", req{method: "GET", path: "/health"}, 200},
			{"401", req{method: "GET", path: "/api/v1/users/me"}, 401},
			{"404", req{method: "GET", path: "/api/v1/nope"}, 404},
			{"405 (OPTIONS without Access-Control-Request-Method is no preflight)", req{method: "OPTIONS", path: "/health"}, 405},
			{"413", req{method: "POST", path: "/api/v1/users", body: `{"email":"` + strings.Repeat("a", 5000) + `"}`}, 413},
			{"429", req{method: "GET", path: "/api/v1/users/me"}, 429}, // the fourth /api/v1 request of this IP
			{"500", patchPanic, 500},
			{"201", req{method: "POST", path: "/api/v1/users", body: `{"email":"cors@example.com","password":"whatever123"}`, remote: remote(randomIP())}, 201},
		}
		for _, tc := range cases {
			r := with(appOrigin, tc.r)
			if tc.r.remote != "" {
				r.remote = tc.r.remote
			}
			rec := e.do(r)
			if rec.Code != tc.status {
				t.Fatalf("%s: status %d: %s", tc.name, rec.Code, rec.Body)
			}
			allowedCORS(t, tc.name, rec, appOrigin)
			if tc.status == 429 && rec.Header().Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		}
		// Another origin: the same answers, nothing for the page.
		for _, tc := range cases {
			r := with("https://evil.example", tc.r)
			r.remote = remote(randomIP())
			rec := e.do(r)
			noCORS(t, "other origin, "+tc.name, rec)
			if rec.Header().Get("Vary") != "Origin" {
				t.Errorf("other origin, %s: Vary %q", tc.name, rec.Header().Get("Vary"))
			}
		}
		// Two Origin headers: never reflected.
		hr := httptest.NewRequest("GET", "/health", nil)
		hr.Header.Add("Origin", appOrigin)
		hr.Header.Add("Origin", "https://evil.example")
		rec := e.spec.serve(t, e.h, hr)
		noCORS(t, "two Origin headers", rec)
	})

	t.Run("a real listener", func(t *testing.T) {
		ts := httptest.NewServer(e.h)
		defer ts.Close()
		pr, _ := http.NewRequest("OPTIONS", ts.URL+"/api/v1/users", nil)
		pr.Header.Set("Origin", appOrigin)
		pr.Header.Set("Access-Control-Request-Method", "POST")
		pr.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(pr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != appOrigin || resp.Header.Get("X-Request-ID") == "" {
			t.Fatalf("preflight over TCP: %d %v", resp.StatusCode, resp.Header)
		}
		ar, _ := http.NewRequest("POST", ts.URL+"/api/v1/users", strings.NewReader(`{"email":"tcp@example.com","password":"whatever123"}`))
		ar.Header.Set("Origin", appOrigin)
		ar.Header.Set("Content-Type", "application/json")
		resp, err = http.DefaultClient.Do(ar)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 || resp.Header.Get("Access-Control-Allow-Origin") != appOrigin || resp.Header.Get("Access-Control-Expose-Headers") != exposed {
			t.Fatalf("sign-up over TCP: %d %v", resp.StatusCode, resp.Header)
		}
	})
}

// Other configurations: off, any origin, credentials.
func TestCORSConfigurations(t *testing.T) {
	t.Run("off: a preflight is the 405 of the path", func(t *testing.T) {
		e := newEnv(t, failingUpdates{memory.NewUsers()})
		rec := e.do(preflight("/api/v1/users", appOrigin, "POST", "content-type"))
		checkEnvelope(t, rec, 405, "method_not_allowed")
		noCORS(t, "CORS off", rec)
		if rec.Header().Get("Vary") != "" {
			t.Fatalf("CORS off: Vary %q", rec.Header().Get("Vary"))
		}
	})
	t.Run("any origin", func(t *testing.T) {
		e := newEnv(t, memory.NewUsers(), withCORS(t, "*", false))
		rec := e.do(preflight("/api/v1/users", "https://whoever.example", "POST", "content-type"))
		if rec.Code != 204 || rec.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("preflight: %d %v", rec.Code, rec.Header())
		}
		rec = e.do(req{method: "GET", path: "/api/v1/nope", header: map[string]string{"Origin": "https://whoever.example"}})
		allowedCORS(t, "any origin", rec, "*")
	})
	t.Run("credentials", func(t *testing.T) {
		e := newEnv(t, memory.NewUsers(), withCORS(t, appOrigin, true))
		for _, r := range []req{
			preflight("/api/v1/users/me", appOrigin, "GET", "authorization"),
			{method: "GET", path: "/api/v1/users/me", header: map[string]string{"Origin": appOrigin}},
		} {
			rec := e.do(r)
			if rec.Header().Get("Access-Control-Allow-Credentials") != "true" || rec.Header().Get("Access-Control-Allow-Origin") != appOrigin {
				t.Fatalf("%s: %d %v", r.method, rec.Code, rec.Header())
			}
		}
		rec := e.do(req{method: "GET", path: "/api/v1/users/me", header: map[string]string{"Origin": "https://evil.example"}})
		noCORS(t, "credentials, other origin", rec)
	})
}
