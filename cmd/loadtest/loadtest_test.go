package main

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadResponse(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" +
		"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(in))
	for _, want := range []struct {
		status int
		close  bool
	}{{200, false}, {429, false}, {404, true}} {
		status, closeConn, err := readResponse(br)
		if err != nil || status != want.status || closeConn != want.close {
			t.Fatalf("got %d %v %v, want %d %v", status, closeConn, err, want.status, want.close)
		}
	}
}

func TestLoadAgainstServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/teapot" {
			w.WriteHeader(http.StatusTeapot)
		}
		_, _ = w.Write([]byte(strings.Repeat("x", 10000))) // chunked: larger than the buffer
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	l := load{addr: addr, concurrency: 4, requests: 200, keepSamples: true,
		targets: []target{newTarget(addr, "/", "", 200), newTarget(addr, "/teapot", "tok", 200)}}
	res := l.run()
	if res.requests != 200 || res.errors != 100 || res.statuses[200] != 100 || res.statuses[418] != 100 || len(res.lat) != 200 {
		t.Fatalf("requests %d errors %d statuses %v samples %d", res.requests, res.errors, res.statuses, len(res.lat))
	}
	l = load{addr: addr, concurrency: 2, duration: 100 * time.Millisecond, targets: l.targets[:1]}
	if res := l.run(); res.requests == 0 || res.errors != 0 {
		t.Fatalf("duration run: %d requests, %d errors (%s)", res.requests, res.errors, res.firstErr)
	}
}

func TestWriteSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(p, []byte("# T\n\n<!-- x:begin -->\nold\n<!-- x:end -->\n\ntail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(p, "x", "new\n"); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(p, "y", "appended"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	want := "# T\n\n<!-- x:begin -->\nnew\n<!-- x:end -->\n\ntail\n\n<!-- y:begin -->\nappended\n<!-- y:end -->\n"
	if string(b) != want {
		t.Fatalf("got %q", b)
	}
}
