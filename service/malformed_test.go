package service_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
)

// malformedServer is the real chain behind a real listener, with the
// process' header limits (cmd/api: MaxHeaderBytes 64 KiB).
func malformedServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	tokens := service.NewTokens(testSecret, time.Hour)
	srv := service.NewServer(service.Config{MaxBodyBytes: 1 << 20}, service.Deps{
		Logger: slog.New(slog.DiscardHandler), Users: memory.NewUsers(), Tokens: tokens,
		Hasher: service.NewArgon2id(64, 1, 1),
	})
	if err := srv.EnsureSuperuser(context.Background(), "root@example.com", "rootpassword"); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.MaxHeaderBytes = 64 << 10
	ts.Config.ReadHeaderTimeout = 5 * time.Second
	ts.Start()
	t.Cleanup(ts.Close)
	resp, err := http.Post(ts.URL+"/auth/login", "application/x-www-form-urlencoded", strings.NewReader("username=root@example.com&password=rootpassword"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := strings.Split(strings.Split(string(b), `"access_token":"`)[1], `"`)[0]
	return ts, tok
}

// TestMalformedRequests sends hostile requests through a real server: each
// gets its status and the envelope (request_id = X-Request-ID), never a
// 500.
func TestMalformedRequests(t *testing.T) {
	ts, root := malformedServer(t)
	J := "application/json"
	nested := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	cases := []struct {
		name          string
		method, path  string
		ctype, body   string
		token         bool
		header        map[string]string
		status        int
		code          string
		chunked       bool // send without Content-Length
		wantReplaceID bool
	}{
		{name: "broken JSON", method: "POST", path: "/api/v1/users", ctype: J, body: `{"email":"a@example.com",`, status: 422, code: "validation_error"},
		{name: "JSON with a comment", method: "POST", path: "/api/v1/users", ctype: J, body: `{/*x*/"email":"a@example.com"}`, status: 422, code: "validation_error"},
		{name: "wrong types", method: "POST", path: "/api/v1/users", ctype: J, body: `{"email":["a"],"password":{"x":1}}`, status: 422, code: "validation_error"},
		{name: "number overflow", method: "PATCH", path: "/api/v1/users/{root}", ctype: J, body: `{"is_active":1e999}`, token: true, status: 422, code: "validation_error"},
		{name: "huge body, declared", method: "POST", path: "/api/v1/users", ctype: J, body: `{"email":"` + strings.Repeat("a", 2<<20) + `"}`, status: 413, code: "payload_too_large"},
		{name: "huge body, chunked", method: "POST", path: "/api/v1/users", ctype: J, body: `{"email":"` + strings.Repeat("a", 2<<20) + `"}`, chunked: true, status: 413, code: "payload_too_large"},
		{name: "deeply nested arrays", method: "POST", path: "/api/v1/users", ctype: J, body: nested, status: 422, code: "validation_error"},
		{name: "deeply nested objects", method: "PATCH", path: "/api/v1/users/{root}", ctype: J, token: true, body: strings.Repeat(`{"a":`, 20_000) + "1" + strings.Repeat("}", 20_000), status: 422, code: "validation_error"},
		{name: "invalid UTF-8", method: "POST", path: "/api/v1/users", ctype: J, body: "{\"email\":\"a\xc3\x28@example.com\",\"password\":\"whatever123\"}", status: 422, code: "validation_error"},
		{name: "invalid UTF-8 in a form", method: "POST", path: "/auth/login", ctype: "application/x-www-form-urlencoded", body: "username=\xff&password=x", status: 422, code: "validation_error"},
		{name: "NUL in email", method: "POST", path: "/api/v1/users", ctype: J, body: `{"email":"a\u0000@example.com","password":"whatever123"}`, status: 422, code: "validation_error"},
		{name: "oversize X-Request-ID is replaced", method: "GET", path: "/api/v1/nope", header: map[string]string{"X-Request-ID": strings.Repeat("r", 4096)}, status: 404, code: "not_found", wantReplaceID: true},
		{name: "X-Request-ID with a quote is replaced", method: "GET", path: "/api/v1/nope", header: map[string]string{"X-Request-ID": `a"b`}, status: 404, code: "not_found", wantReplaceID: true},
		{name: "no content type", method: "POST", path: "/api/v1/users", body: `{}`, status: 415, code: "unsupported_media_type"},
		{name: "content type with junk params", method: "POST", path: "/api/v1/users", ctype: "application/json; charset", body: `{}`, status: 415, code: "unsupported_media_type"},
		{name: "encoded traversal", method: "GET", path: "/api/v1/users/%2e%2e%2fhealth", token: true, status: 422, code: "validation_error"},
		{name: "encoded slash in id", method: "GET", path: "/api/v1/users/a%2Fb", token: true, status: 422, code: "validation_error"},
		{name: "NUL in path", method: "GET", path: "/api/v1/users/%00", token: true, status: 422, code: "validation_error"},
		{name: "SQL in id", method: "GET", path: "/api/v1/users/1%27%20OR%20%271%27=%271", token: true, status: 422, code: "validation_error"},
		{name: "SQL in query (the pair is dropped: ';' is no separator)", method: "GET", path: "/api/v1/users?limit=1;DROP%20TABLE%20users", token: true, status: 200},
		{name: "SQL in a query value", method: "GET", path: "/api/v1/users?offset=0%20OR%201=1", token: true, status: 422, code: "validation_error"},
		{name: "SQL in email", method: "POST", path: "/api/v1/users", ctype: J, body: `{"email":"x'; DROP TABLE users;--@example.com","password":"whatever123"}`, status: 422, code: "validation_error"},
		{name: "SQL in login", method: "POST", path: "/auth/login", ctype: "application/x-www-form-urlencoded", body: "username=root@example.com'--&password=' OR '1'='1", status: 401, code: "unauthorized"},
		{name: "Cyrillic look-alike email", method: "POST", path: "/api/v1/users", ctype: J, body: `{"email":"rооt@example.com","password":"whatever123"}`, status: 422, code: "validation_error"},
		{name: "fullwidth look-alike email", method: "POST", path: "/api/v1/users", ctype: J, body: `{"email":"ｒoot@example.com","password":"whatever123"}`, status: 422, code: "validation_error"},
		{name: "look-alike login", method: "POST", path: "/auth/login", ctype: J, body: `{"username":"rооt@example.com","password":"rootpassword"}`, status: 401, code: "unauthorized"},
		{name: "display-name email", method: "POST", path: "/api/v1/users", ctype: J, body: `{"email":"Root <root@example.com>","password":"whatever123"}`, status: 422, code: "validation_error"},
		{name: "unknown method", method: "BREW", path: "/api/v1/users", status: 405, code: "method_not_allowed"},
		{name: "very long path", method: "GET", path: "/api/v1/" + strings.Repeat("a", 30_000), status: 404, code: "not_found"},
		{name: "huge bearer", method: "GET", path: "/api/v1/users/me", header: map[string]string{"Authorization": "Bearer " + strings.Repeat("a", 60_000)}, status: 401, code: "unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := strings.ReplaceAll(tc.path, "{root}", rootID(t, ts.URL, root))
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body) // hides the length: chunked encoding
				}
			}
			req, err := http.NewRequest(tc.method, ts.URL+path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.token {
				req.Header.Set("Authorization", "Bearer "+root)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 500 || resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tc.status, b)
			}
			rec := httptest.NewRecorder()
			rec.Code = resp.StatusCode
			for k, v := range resp.Header {
				rec.Header()[k] = v
			}
			rec.Body.Write(b)
			if tc.status >= 300 {
				checkEnvelope(t, rec, tc.status, tc.code)
			}
			if got := resp.Header.Get("X-Request-ID"); tc.wantReplaceID && (len(got) != 32 || strings.Contains(string(b), tc.header["X-Request-ID"])) {
				t.Fatalf("request id %q not replaced, or echoed", got)
			}
		})
	}
}

func rootID(t *testing.T, base, tok string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/users/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return strings.Split(strings.Split(string(b), `"id":"`)[1], `"`)[0]
}

// TestMalformedRawRequests writes requests net/http's client refuses to
// send. net/http answers these itself, before any handler, with its own
// plain-text responses (docs/ARCHITECTURE.md): only the status is asserted,
// and that it is never a 500.
func TestMalformedRawRequests(t *testing.T) {
	ts, _ := malformedServer(t)
	addr := strings.TrimPrefix(ts.URL, "http://")
	cases := []struct {
		name   string
		raw    string
		status int
		plain  bool // answered by net/http, not the service
	}{
		{"CR inside a header value", "GET /health HTTP/1.1\r\nHost: x\r\nX-Evil: a\rSet-Cookie: b\r\n\r\n", 400, true},
		{"bare LF line endings are tolerated", "GET /health HTTP/1.1\nHost: x\n\n", 200, false},
		{"header without a colon", "GET /health HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", 400, true},
		{"space before the colon", "GET /health HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n", 400, true},
		{"oversize headers (> 64 KiB)", "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", 431, true},
		{"malformed request line", "GET\r\n\r\n", 400, true},
		{"unsupported protocol", "GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 505, true},
		{"missing Host on HTTP/1.1", "GET /health HTTP/1.1\r\n\r\n", 400, true},
		{"two Content-Lengths", "POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, true},
		{"dot-segments in the raw path", "GET /api/v1/users/../health HTTP/1.1\r\nHost: x\r\n\r\n", 404, false},
		{"double slash in the raw path", "GET //api/v1/health/live HTTP/1.1\r\nHost: x\r\n\r\n", 404, false},
		{"encoded dot-segments", "GET /api/v1/%2e%2e/health HTTP/1.1\r\nHost: x\r\n\r\n", 404, false},
		{"control bytes in the bearer token", "GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \x01\x02\r\n\r\n", 400, true},
		{"CRLF-injection attempt in the request id", "GET /api/v1/nope HTTP/1.1\r\nHost: x\r\nX-Request-ID: abc%0d%0aSet-Cookie:x\r\n\r\n", 404, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, tc.raw); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 500 || resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.200s", resp.StatusCode, tc.status, b)
			}
			if resp.Header.Get("Set-Cookie") != "" {
				t.Fatal("header injection reached the response")
			}
			if !tc.plain && tc.status >= 400 && !strings.Contains(string(b), `"request_id"`) {
				t.Fatalf("not the envelope: %s", b)
			}
		})
	}
}
