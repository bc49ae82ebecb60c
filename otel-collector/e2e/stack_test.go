package e2e

// Helpers of the end-to-end tests (pipeline_test.go, tailsampling_test.go): the stack's ports,
// the processes (service, collector), HTTP calls, and Prometheus and Jaeger queries.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stack is the local observability stack started by otel-collector/e2e-stack.sh.
type stack struct {
	PrometheusURL string // http://127.0.0.1:<port>
	JaegerURL     string // Jaeger query HTTP API
	OTLPHTTPPort  string // the collector's OTLP/HTTP receiver
	JaegerOTLP    string // Jaeger's OTLP/gRPC port (where a second collector can export)
	Dir           string // $E2E_DIR: logs of the service runs go here too
}

// stackKeys are what the pipeline test needs from ports.env.
var stackKeys = []string{"PROMETHEUS_URL", "JAEGER_QUERY_URL", "OTLP_HTTP_PORT", "JAEGER_OTLP_GRPC_PORT"}

// stackFromEnv reads the stack's addresses from the environment (`e2e-stack.sh run` exports
// ports.env), filling gaps from $E2E_DIR/ports.env when E2E_STACK=1 (after `e2e-stack.sh start`).
// Without E2E_STACK=1 and without the variables the test is skipped; with E2E_STACK=1 (what
// `make e2e` sets) anything missing is a failure, never a skip.
func stackFromEnv(t *testing.T) stack {
	t.Helper()
	expected := os.Getenv("E2E_STACK") == "1"
	get := func(k string) string { return os.Getenv(k) }
	missing := func() []string {
		var m []string
		for _, k := range stackKeys {
			if get(k) == "" {
				m = append(m, k)
			}
		}
		return m
	}
	dir := os.Getenv("E2E_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "tmp", "e2e-stack")
	}
	if len(missing()) > 0 && expected {
		if kv, err := readEnvFile(filepath.Join(dir, "ports.env")); err == nil {
			get = func(k string) string {
				if v := os.Getenv(k); v != "" {
					return v
				}
				return kv[k]
			}
		}
	}
	if m := missing(); len(m) > 0 {
		if !expected {
			t.Skipf("no observability stack (%s unset); run `make e2e` or set E2E_STACK=1 after otel-collector/e2e-stack.sh start", strings.Join(m, ", "))
		}
		t.Fatalf("E2E_STACK=1 but %s unset and not in %s/ports.env", strings.Join(m, ", "), dir)
	}
	s := stack{PrometheusURL: get("PROMETHEUS_URL"), JaegerURL: get("JAEGER_QUERY_URL"), OTLPHTTPPort: get("OTLP_HTTP_PORT"), JaegerOTLP: get("JAEGER_OTLP_GRPC_PORT"), Dir: dir}
	for name, u := range map[string]string{"Prometheus": s.PrometheusURL + "/-/ready", "Jaeger": s.JaegerURL + "/api/services"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatalf("%s of the stack is not reachable: %v", name, err)
		}
		resp.Body.Close()
	}
	return s
}

func readEnvFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kv := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			kv[k] = v
		}
	}
	return kv, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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

// buildAPI builds cmd/api of the root module into dir.
func buildAPI(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bulwark-api")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/api")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/api: %v\n%s", err, out)
	}
	t.Logf("built cmd/api in %s", time.Since(start).Round(100*time.Millisecond))
	return bin
}

// apiProcess is one running process of the test: a bulwark service, or a collector.
type apiProcess struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	base    string // the service's base URL ("" for other processes)
	logPath string
	done    chan error
	once    sync.Once
}

// startAPI runs bin with exactly env (plus PATH/HOME/TMPDIR) on a free port and waits for /health.
func startAPI(t *testing.T, bin, name, logDir string, env map[string]string) *apiProcess {
	t.Helper()
	port := freePort(t)
	env["PORT"] = strconv.Itoa(port)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := startProcess(t, name, logDir, env, base+"/health", bin)
	p.base = base
	return p
}

// startProcess runs bin with args and exactly env (plus PATH/HOME/TMPDIR), its output in
// logDir/api-<name>.log, and waits until GET ready answers 200. The test's cleanup stops it
// (SIGTERM); so does the kernel if the test process dies first.
func startProcess(t *testing.T, name, logDir string, env map[string]string, ready, bin string, args ...string) *apiProcess {
	t.Helper()
	list := []string{}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v := os.Getenv(k); v != "" {
			list = append(list, k+"="+v)
		}
	}
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(logDir, "api-"+name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = list
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &apiProcess{t: t, name: name, cmd: cmd, logPath: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	t.Cleanup(func() { p.stop() })

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s exited during start-up: %v\n%s", name, err, p.tail(30))
		default:
		}
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60s (%s)\n%s", name, ready, p.tail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop sends SIGTERM (graceful shutdown flushes traces and metrics) and waits up to 30 s.
func (p *apiProcess) stop() { p.once.Do(p.terminate) }

func (p *apiProcess) terminate() {
	select {
	case err := <-p.done:
		p.done <- err
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			p.t.Errorf("%s: exit after SIGTERM: %v\n%s", p.name, err, p.tail(20))
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		p.t.Errorf("%s did not stop within 30s of SIGTERM", p.name)
	}
}

func (p *apiProcess) tail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logLines returns the JSON log lines of the process with the given msg.
func (p *apiProcess) logLines(msg string) []map[string]any {
	f, err := os.Open(p.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// response is one HTTP exchange with the service.
type response struct {
	Status    int
	RequestID string
	Header    http.Header
	Body      []byte
}

var httpClient = &http.Client{Timeout: 15 * time.Second}

// do sends one request; body may be nil, a url.Values (form) or anything JSON-encodable.
func (p *apiProcess) do(t *testing.T, method, path, token string, body any) response {
	t.Helper()
	r, err := p.send(method, path, token, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send is do that returns its error instead of failing the test (for other goroutines).
func (p *apiProcess) send(method, path, token string, body any) (response, error) {
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-ID"), Header: resp.Header, Body: b}, nil
}

// get is a GET for background traffic: errors ignored (safe outside the test goroutine).
func (p *apiProcess) get(path, token string) { _, _ = p.send(http.MethodGet, path, token, nil) }

// expect is do plus a status check.
func (p *apiProcess) expect(t *testing.T, want int, method, path, token string, body any) response {
	t.Helper()
	r := p.do(t, method, path, token, body)
	if r.Status != want {
		t.Fatalf("%s %s (%s): status %d, want %d: %s", method, path, p.name, r.Status, want, r.Body)
	}
	return r
}

// ---- Prometheus ----

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) float() float64 {
	str, _ := s.Value[1].(string)
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// promQuery runs an instant query; an error is a rejected query or an unreachable server.
func promQuery(base, q string) ([]promSample, error) {
	resp, err := httpClient.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %v: %.300s", q, err, b)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", q, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: result type %s, want vector", q, r.Data.ResultType)
	}
	return r.Data.Result, nil
}

// promLabelValues is what Grafana's label_values(metric, label) variable query runs.
func promLabelValues(base, metric, label string) ([]string, error) {
	resp, err := httpClient.Get(base + "/api/v1/label/" + url.PathEscape(label) + "/values?match[]=" + url.QueryEscape(metric))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		return nil, fmt.Errorf("label values %s of %s: %v %s", label, metric, err, r.Status)
	}
	return r.Data, nil
}

// waitFor polls cond every 500 ms until it returns "" (ok) or the deadline passes; it returns the
// last reason.
func waitFor(ctx context.Context, timeout time.Duration, cond func() string) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		why := cond()
		if why == "" {
			return ""
		}
		select {
		case <-ctx.Done():
			return why
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ---- Jaeger (v1 HTTP query API, kept by Jaeger v2) ----

type jaegerTag struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type jaegerSpan struct {
	TraceID       string                                      `json:"traceID"`
	SpanID        string                                      `json:"spanID"`
	OperationName string                                      `json:"operationName"`
	References    []struct{ RefType, TraceID, SpanID string } `json:"references"`
	Tags          []jaegerTag                                 `json:"tags"`
	ProcessID     string                                      `json:"processID"`
	StartTime     int64                                       `json:"startTime"` // µs since the epoch
	Duration      int64                                       `json:"duration"`  // µs
}

func (s jaegerSpan) tag(key string) (string, bool) {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value), true
		}
	}
	return "", false
}

func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

type jaegerTrace struct {
	TraceID   string       `json:"traceID"`
	Spans     []jaegerSpan `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

// jaegerFind searches service's traces that have tag key=value.
func jaegerFind(base, service, key, value string) ([]jaegerTrace, error) {
	tags, _ := json.Marshal(map[string]string{key: value})
	q := url.Values{"service": {service}, "tags": {string(tags)}, "lookback": {"1h"}, "limit": {"20"}}
	return jaegerGet(base + "/api/traces?" + q.Encode())
}

func jaegerTraceByID(base, id string) ([]jaegerTrace, error) {
	return jaegerGet(base + "/api/traces/" + url.PathEscape(id))
}

func jaegerGet(u string) ([]jaegerTrace, error) {
	resp, err := httpClient.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	var r struct {
		Data   []jaegerTrace `json:"data"`
		Errors []struct {
			Msg string `json:"msg"`
		} `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if len(r.Errors) > 0 {
		return nil, fmt.Errorf("jaeger: %s", r.Errors[0].Msg)
	}
	return r.Data, nil
}
