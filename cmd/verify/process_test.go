package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The real cmd/api binary as a process, configured as "make run" with rate
// limiting on: verify must pass. Until the rate limiter is part of the
// build, the service sends no X-RateLimit-* headers and verify skips the 429
// check, which this test then reports.
func TestAgainstAPIProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs cmd/api")
	}
	bin := filepath.Join(t.TempDir(), "api")
	if out, err := exec.Command("go", "build", "-o", bin, "../api").CombinedOutput(); err != nil {
		t.Fatalf("go build ../api: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PORT=" + strconv.Itoa(port),
		"RATE_LIMIT_ENABLED=true", "RATE_LIMIT_REQUESTS=10", "RATE_LIMIT_WINDOW_SECONDS=60"}
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/health"); err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("cmd/api exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("cmd/api did not come up:\n%s", logs.String())
		}
	}
	code, out, errOut := runVerify(t, base)
	if code != 0 || !strings.Contains(out, "\nOK: prod hardening verification passed (") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "SKIP rate limited") {
		t.Log("no X-RateLimit-* headers from cmd/api: the 429 check was skipped")
	} else if !strings.Contains(out, "ok   rate limited: 429 rate_limited after ") {
		t.Fatalf("no 429 check:\n%s", out)
	}
}
