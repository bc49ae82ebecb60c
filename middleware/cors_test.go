package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
)

func TestParseCORSOrigins(t *testing.T) {
	good := map[string][]string{
		"":                        nil,
		" , ":                     nil,
		"https://app.example.com": {"https://app.example.com"},
		"HTTPS://App.Example.COM": {"https://app.example.com"},
		"http://localhost:5173":   {"http://localhost:5173"},
		"https://a.example, https://b.example , https://a.example": {"https://a.example", "https://b.example"},
		"http://[::1]:3000":             {"http://[::1]:3000"},
		"http://[0:0::1]:3000":          {"http://[::1]:3000"},
		"https://xn--bcher-kva.example": {"https://xn--bcher-kva.example"},
		"http://127.0.0.1:8080":         {"http://127.0.0.1:8080"},
		"*":                             {"*"},
	}
	for in, want := range good {
		got, err := middleware.ParseCORSOrigins(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseCORSOrigins(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"https://app.example.com/":       "path",
		"https://app.example.com/x":      "path",
		"https://app.example.com?x=1":    "query",
		"https://app.example.com#x":      "fragment",
		"https://*.example.com":          "wildcard",
		"*, https://a.example":           "only entry",
		"null":                           "null",
		"app.example.com":                "scheme",
		"ftp://app.example.com":          "scheme",
		"https://u:p@app.example.com":    "user info",
		"https://app.example.com:443":    "default port",
		"http://app.example.com:80":      "default port",
		"https://app.example.com:0":      "port",
		"https://app.example.com:99999":  "port",
		"https://app.example.com:":       "empty port",
		"https://app.example.com:+80":    "port",
		"https://bücher.example":         "xn--",
		"https://":                       "origin",
		"https://[fe80::1%25eth0]:80":    "IPv6",
		"https://a b.example":            "origin",
		"javascript:alert(1)":            "scheme",
		"https://app.example.com\\@evil": "origin",
	}
	for in, want := range bad {
		_, err := middleware.ParseCORSOrigins(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCORSOrigins(%q) error %v, want one mentioning %q", in, err, want)
		}
	}
}

func TestParseCORSMethodsAndHeaders(t *testing.T) {
	m, err := middleware.ParseCORSMethods(middleware.DefaultCORSMethods)
	if err != nil || !slices.Equal(m, []string{"GET", "HEAD", "POST", "PATCH", "DELETE"}) {
		t.Fatalf("default methods %q, %v", m, err)
	}
	if m, err := middleware.ParseCORSMethods("get, Put,GET"); err != nil || !slices.Equal(m, []string{"GET", "PUT"}) {
		t.Fatalf("%q, %v", m, err)
	}
	for _, bad := range []string{"*", "OPTIONS", "TRACE", "CONNECT", "BREW"} {
		if _, err := middleware.ParseCORSMethods(bad); err == nil {
			t.Errorf("method %q accepted", bad)
		}
	}
	h, err := middleware.ParseCORSHeaders(middleware.DefaultCORSHeaders)
	if err != nil || !slices.Equal(h, []string{"authorization", "content-type", "x-request-id"}) {
		t.Fatalf("default headers %q, %v", h, err)
	}
	for _, bad := range []string{"*", "x y", "a:b", "é"} {
		if _, err := middleware.ParseCORSHeaders(bad); err == nil {
			t.Errorf("header %q accepted", bad)
		}
	}
}

func corsOptions(t *testing.T, origins string) middleware.CORSOptions {
	t.Helper()
	o, err := middleware.DefaultCORSOptions(origins)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestNewCORSRefuses(t *testing.T) {
	star := corsOptions(t, "*")
	star.AllowCredentials = true
	notCanonical := corsOptions(t, "https://a.example")
	notCanonical.AllowedOrigins = []string{"https://A.example/"}
	lowerMethod := corsOptions(t, "https://a.example")
	lowerMethod.AllowedMethods = []string{"get"}
	noHeaders := corsOptions(t, "https://a.example")
	noHeaders.AllowedHeaders = nil
	fraction := corsOptions(t, "https://a.example")
	fraction.MaxAge = 1500 * time.Millisecond
	long := corsOptions(t, "https://a.example")
	long.MaxAge = 25 * time.Hour
	for name, o := range map[string]middleware.CORSOptions{
		"* with credentials": star, "not canonical": notCanonical, "lower-case method": lowerMethod,
		"no headers": noHeaders, "fractional max age": fraction, "max age over 24h": long,
		"no origins": {},
	} {
		if _, err := middleware.NewCORS(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The origin decision on its own (the whole chain is tested in service).
func TestCORSOriginMatch(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	send := func(o middleware.CORSOptions, origins ...string) http.Header {
		t.Helper()
		c, err := middleware.NewCORS(o)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/", nil)
		for _, v := range origins {
			r.Header.Add("Origin", v)
		}
		rec := httptest.NewRecorder()
		c.Middleware(nil)(ok).ServeHTTP(rec, r)
		return rec.Header()
	}
	list := corsOptions(t, "https://a.example, http://localhost:5173")
	cases := []struct {
		name    string
		opts    middleware.CORSOptions
		origins []string
		acao    string
	}{
		{"listed", list, []string{"https://a.example"}, "https://a.example"},
		{"listed, other port", list, []string{"http://localhost:5174"}, ""},
		{"upper case is another origin", list, []string{"https://A.example"}, ""},
		{"prefix trick", list, []string{"https://a.example.evil.com"}, ""},
		{"suffix trick", list, []string{"https://evil-a.example"}, ""},
		{"scheme differs", list, []string{"http://a.example"}, ""},
		{"null", list, []string{"null"}, ""},
		{"two Origin headers", list, []string{"https://a.example", "https://evil.example"}, ""},
		{"no Origin", list, nil, ""},
		{"any", corsOptions(t, "*"), []string{"https://whoever.example"}, "*"},
	}
	for _, c := range cases {
		h := send(c.opts, c.origins...)
		if got := strings.Join(h.Values("Access-Control-Allow-Origin"), ","); got != c.acao {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", c.name, got, c.acao)
		}
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: credentials allowed", c.name)
		}
		if !slices.Contains(h.Values("Vary"), "Origin") {
			t.Errorf("%s: no Vary: Origin (%q)", c.name, h.Values("Vary"))
		}
	}
	cred := corsOptions(t, "https://a.example")
	cred.AllowCredentials = true
	if h := send(cred, "https://a.example"); h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("credentials: %v", h)
	}
	if h := send(cred, "https://b.example"); h.Get("Access-Control-Allow-Credentials") != "" || h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("credentials for an unlisted origin: %v", h)
	}
}
