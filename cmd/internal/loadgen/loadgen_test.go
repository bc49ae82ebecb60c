package loadgen

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
		status, closeConn, err := ReadResponse(br)
		if err != nil || status != want.status || closeConn != want.close {
			t.Fatalf("got %d %v %v, want %d %v", status, closeConn, err, want.status, want.close)
		}
	}
	for _, bad := range []string{"HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "SSH-2.0\r\n"} {
		if _, _, err := ReadResponse(bufio.NewReader(strings.NewReader(bad))); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err %v, want ErrMalformed", bad, err)
		}
	}
}

// testServer answers 418 on /teapot, a 10,000-byte chunked body elsewhere,
// and counts the bearer tokens it sees per path.
func testServer(t *testing.T) (addr string, tokens func(path string) int64) {
	var mu sync.Mutex
	seen := map[string]int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && tok == "tok"+r.URL.Path {
			mu.Lock()
			seen[r.URL.Path]++
			mu.Unlock()
		}
		if r.URL.Path == "/teapot" {
			w.WriteHeader(http.StatusTeapot)
		}
		_, _ = w.Write([]byte(strings.Repeat("x", 10000))) // chunked: larger than the buffer
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), func(p string) int64 {
		mu.Lock()
		defer mu.Unlock()
		return seen[p]
	}
}

func TestClosedLoopRawClient(t *testing.T) {
	addr, tokens := testServer(t)
	targets := []Target{NewTarget(addr, "/", "", 200), NewTarget(addr, "/teapot", "tok/teapot", 200)}
	c := NewRawClient(addr, targets, 4, 0)
	defer c.Close()
	var done atomic.Int64
	res := ClosedLoop{Concurrency: 4, Requests: 200, Do: c.Do, Done: &done}.Run(context.Background())
	if res.Requests != 200 || done.Load() != 200 || res.Errors != 100 || res.Statuses[200] != 100 || res.Statuses[418] != 100 || res.Latency.Count() != 200 {
		t.Fatalf("requests %d errors %d statuses %v samples %d", res.Requests, res.Errors, res.Statuses, res.Latency.Count())
	}
	if res.FirstError != "status 418, want 200" {
		t.Errorf("first error %q", res.FirstError)
	}
	if n := tokens("/teapot"); n != 100 {
		t.Errorf("server saw the token on %d requests, want 100", n)
	}
	if p50, max := res.Latency.Percentile(0.5), res.Latency.Percentile(1); p50 <= 0 || max < p50 {
		t.Errorf("p50 %v max %v", p50, max)
	}
}

func TestClosedLoopStopsOnContext(t *testing.T) {
	addr, _ := testServer(t)
	c := NewRawClient(addr, []Target{NewTarget(addr, "/", "", 200)}, 2, 0)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var served atomic.Int64
	do := func(ctx context.Context, w int, seq int64) Outcome {
		if served.Add(1) == 50 {
			cancel() // no clock: the load ends after the 50th request
		}
		return c.Do(ctx, w, seq)
	}
	res := ClosedLoop{Concurrency: 2, Do: do}.Run(ctx)
	if res.Requests < 50 || res.Requests > 52 || res.Errors != 0 {
		t.Fatalf("requests %d (want 50-52), errors %d (%s)", res.Requests, res.Errors, res.FirstError)
	}
}

func TestOpenLoopSchedule(t *testing.T) {
	var mu sync.Mutex
	seen := map[int64]int{}
	do := func(_ context.Context, _ int, seq int64) Outcome {
		mu.Lock()
		seen[seq]++
		mu.Unlock()
		switch seq % 4 {
		case 0:
			return Outcome{Status: 503}
		case 1:
			return Outcome{Err: errors.New("refused")}
		case 2:
			return Outcome{Status: 500, Bad: "status 500"}
		}
		return Outcome{Status: 200}
	}
	res := OpenLoop{Rate: 2000, Duration: 100 * time.Millisecond, Workers: 8, Do: do}.Run(context.Background())
	if res.Intended != 200 || res.Sent != 200 || len(seen) != 200 {
		t.Fatalf("intended %d sent %d distinct %d", res.Intended, res.Sent, len(seen))
	}
	for seq, n := range seen {
		if n != 1 || seq < 0 || seq >= 200 {
			t.Fatalf("request %d sent %d times", seq, n)
		}
	}
	if res.Statuses[503] != 50 || res.Statuses[200] != 50 || res.Statuses[500] != 50 || res.Errors != 50 || res.Bad != 50 {
		t.Fatalf("statuses %v errors %d bad %d", res.Statuses, res.Errors, res.Bad)
	}
	if res.Rejected.Count() != 50 || res.Admitted.Count() != 100 || res.SendLag.Count() != 200 ||
		res.RejectedService.Count() != 50 || res.AdmittedService.Count() != 100 {
		t.Fatalf("rejected %d admitted %d lags %d", res.Rejected.Count(), res.Admitted.Count(), res.SendLag.Count())
	}
	if want := 50 / res.Elapsed.Seconds(); res.Goodput != want || res.Elapsed < 100*time.Millisecond {
		t.Fatalf("goodput %v over %v, want %v", res.Goodput, res.Elapsed, want)
	}
}

// One worker and a first request that takes longer than the whole
// schedule: every later request was due before a worker was free, so its
// latency from its due time is at least the stall minus its offset, and
// the run reports that it fell behind because its workers were busy. Only
// lower bounds of sleeps are relied on.
func TestOpenLoopCountsQueueingFromIntendedTime(t *testing.T) {
	const stall = 60 * time.Millisecond
	do := func(_ context.Context, _ int, seq int64) Outcome {
		if seq == 0 {
			time.Sleep(stall)
		}
		return Outcome{Status: 200}
	}
	res := OpenLoop{Rate: 1000, Duration: 20 * time.Millisecond, Workers: 1, Do: do}.Run(context.Background())
	if res.Sent != 20 {
		t.Fatalf("sent %d, want 20", res.Sent)
	}
	// Request 19 was due 19 ms after the start and sent after the stall.
	if min := stall - 19*time.Millisecond; res.Admitted.Percentile(0) < min {
		t.Fatalf("smallest latency %v, want ≥ %v: queueing in the generator not charged", res.Admitted.Percentile(0), min)
	}
	// From the actual send, only the stalled request took the stall.
	if svc := res.AdmittedService; svc.Count() != 20 || svc.Percentile(1) < stall || res.Admitted.Percentile(1) < svc.Percentile(1) {
		t.Fatalf("service latencies: %d, max %v (from intended: max %v)", svc.Count(), svc.Percentile(1), res.Admitted.Percentile(1))
	}
	if !res.Behind || !strings.Contains(res.Why, "all 1 workers were busy") {
		t.Fatalf("behind %v, why %q", res.Behind, res.Why)
	}
}

func TestProcCPU(t *testing.T) {
	tick, err := ClockTick()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		hz, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		if time.Second/time.Duration(hz) != tick {
			t.Fatalf("ClockTick %v, getconf CLK_TCK %d", tick, hz)
		}
	}
	p0, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	r0 := SelfCPU()
	for SelfCPU()-r0 < 100*time.Millisecond { // burn CPU: getrusage advances
	}
	p1, err := ProcCPU(os.Getpid())
	r1 := SelfCPU()
	if err != nil {
		t.Fatal(err)
	}
	// Both are the kernel's account of this process; /proc/<pid>/stat
	// truncates to whole ticks at each end.
	if d, r := p1-p0, r1-r0; d < r-3*tick || d > r+3*tick {
		t.Fatalf("/proc/self/stat says %v of CPU, getrusage %v (tick %v)", d, r, tick)
	}
}

func TestWrk(t *testing.T) {
	path, err := FindWrk()
	if err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("CI") == "1" {
			t.Fatalf("wrk not on PATH (required when CI is set; apt-get install wrk): %v", err)
		}
		t.Skipf("wrk not on PATH: %v", err)
	}
	addr, tokens := testServer(t)
	w := Wrk{Path: path, Threads: 2, Connections: 4, Duration: time.Second, Dir: t.TempDir()}
	res, err := w.Run(context.Background(), addr, []Target{NewTarget(addr, "/a", "tok/a", 200), NewTarget(addr, "/b", "tok/b", 200)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.Client != "wrk" || res.ClientCPU <= 0 {
		t.Fatalf("%+v", res)
	}
	// Round robin with per-request tokens: both paths got their own.
	if a, b := tokens("/a"), tokens("/b"); a == 0 || b == 0 || a+b < res.Requests {
		t.Fatalf("tokens seen: /a %d, /b %d, wrk counted %d", a, b, res.Requests)
	}
	if p50, p99 := res.Latency.Percentile(0.5), res.Latency.Percentile(0.99); p50 <= 0 || p99 < p50 {
		t.Fatalf("p50 %v p99 %v", p50, p99)
	}
	// One target: static request, header set once.
	res, err = w.Run(context.Background(), addr, []Target{NewTarget(addr, "/teapot", "", 200)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != res.Requests {
		t.Fatalf("418s not counted as errors: %+v", res)
	}
	if _, err := w.Run(context.Background(), addr, []Target{NewTarget(addr, "/x", "", 429)}); err == nil {
		t.Fatal("a target wanting 429 accepted; wrk would count every response as an error")
	}
}

func TestLuaString(t *testing.T) {
	if got := luaString("a\"b\\c\n"); got != `"a\"b\\c\010"` {
		t.Fatalf("got %s", got)
	}
}
