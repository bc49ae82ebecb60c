package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/storage/postgres/pgtest"
)

// These tests run the real binary as a process, as an operator would.

var buildOnce struct {
	sync.Once
	path string
	err  error
}

func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bulwark-api-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "api")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type proc struct {
	cmd  *exec.Cmd
	base string
	out  *bytes.Buffer
	mu   *sync.Mutex
	done chan error
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func start(t *testing.T, env ...string) *proc {
	t.Helper()
	port := freePort(t)
	p := &proc{base: "http://127.0.0.1:" + strconv.Itoa(port), out: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binary(t))
	p.cmd.Env = append([]string{"PORT=" + strconv.Itoa(port), "PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Stdout = lockedWriter{p.mu, p.out}
	p.cmd.Stderr = lockedWriter{p.mu, p.out}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("process output:\n%s", p.output())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.base + "/health")
		if err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("process exited early: %v\n%s", err, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %v\n%s", err, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.output())
	}
}

func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("process did not exit")
		return nil
	}
}

func post(t *testing.T, url, ctype, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, ctype, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMalformedEnvStopsStartup(t *testing.T) {
	cmd := exec.Command(binary(t))
	cmd.Env = []string{"PORT=http"}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("exit: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "PORT") {
		t.Fatalf("want one line naming PORT, got %q", out)
	}
}

// A SIGTERM while a request is in flight: readiness turns 503 at once, the
// request completes, and the process exits 0.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	p := start(t, "SHUTDOWN_DELAY=1s")
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"email":"slow@example.com","password":"slowpassword"}`
	half := len(body) / 2
	fmt.Fprintf(conn, "POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:half])
	time.Sleep(200 * time.Millisecond) // the server is now reading the body: the request is in flight

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	resp, err := http.Get(p.base + "/api/v1/health/ready")
	if err != nil {
		t.Fatalf("readiness during the shutdown delay: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("readiness after SIGTERM: %d, want 503", resp.StatusCode)
	}

	if _, err := io.WriteString(conn, body[half:]); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request lost: %v", err)
	}
	if res.StatusCode != 201 {
		t.Fatalf("in-flight request: %d", res.StatusCode)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.output())
	}
	if !strings.Contains(p.output(), "msg=stopped") {
		t.Fatalf("no clean stop logged:\n%s", p.output())
	}
}

// With DATABASE_URL set, users survive a restart of the server.
func TestUsersSurviveRestart(t *testing.T) {
	db := pgtest.NewDatabase(t)
	env := []string{"DATABASE_URL=" + db, "JWT_SECRET=0123456789abcdef0123456789abcdef"}
	p := start(t, env...)
	if code, body := post(t, p.base+"/api/v1/users", "application/json", `{"email":"keep@example.com","password":"keeppassword"}`); code != 201 {
		t.Fatalf("sign-up: %d %s", code, body)
	}
	p.stop(t)

	p = start(t, env...)
	code, body := post(t, p.base+"/auth/login", "application/x-www-form-urlencoded", "username=keep@example.com&password=keeppassword")
	if code != 200 || !strings.Contains(body, "access_token") {
		t.Fatalf("login after restart: %d %s", code, body)
	}
	resp, err := http.Get(p.base + "/api/v1/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"db":"ok"`) {
		t.Fatalf("ready: %d %s", resp.StatusCode, b)
	}
	p.stop(t)
}

// The first superuser is seeded once, however often the process starts.
func TestFirstSuperuserSeedIsIdempotent(t *testing.T) {
	db := pgtest.NewDatabase(t)
	env := []string{"DATABASE_URL=" + db, "FIRST_SUPERUSER_EMAIL=admin@example.com", "FIRST_SUPERUSER_PASSWORD=adminpassword"}
	for range 2 {
		p := start(t, env...)
		code, body := post(t, p.base+"/auth/login", "application/x-www-form-urlencoded", "username=admin@example.com&password=adminpassword")
		if code != 200 {
			t.Fatalf("superuser login: %d %s", code, body)
		}
		p.stop(t)
	}
}

// -check-config validates the environment without starting anything.
func TestCheckConfig(t *testing.T) {
	for _, c := range []struct {
		env  []string
		ok   bool
		line string
	}{
		{[]string{"PORT=8080", "JWT_SECRET=0123456789abcdef0123456789abcdef"}, true, "bulwark: configuration ok"},
		{[]string{"JWT_SECRET=too-short"}, false, "JWT_SECRET"},
		{[]string{"TRUSTED_PROXIES=10.0.0.0/99"}, false, "TRUSTED_PROXIES"},
		// These two passed -check-config and then failed start-up.
		{[]string{"TELEMETRY_MODE=otel", "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL=http/json"}, false, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{[]string{"TELEMETRY_MODE=otel", "OTEL_TRACES_SAMPLER=sometimes"}, false, "OTEL_TRACES_SAMPLER"},
	} {
		cmd := exec.Command(binary(t), "-check-config")
		cmd.Env = c.env
		out, err := cmd.CombinedOutput()
		if (err == nil) != c.ok || !strings.Contains(string(out), c.line) || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("env %v: err %v, output %q; want ok=%v and one line with %q", c.env, err, out, c.ok, c.line)
		}
	}
}
