//go:build reliability

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A small load generator for the reliability suite: N workers loop a
// request function until stopped, and every outcome is recorded in the
// phase that was current when the request started.

// outcome is one request's result.
type outcome struct {
	status  int
	latency time.Duration
	err     error
	// bad names a response that broke an expectation of the scenario
	// (a 503 without the envelope, a missing header...); "" when fine.
	bad string
}

// phaseStats aggregates the outcomes of one phase.
type phaseStats struct {
	name string

	mu        sync.Mutex
	total     int
	statuses  map[int]int
	errs      map[string]int // transport errors by class
	bad       map[string]int
	worst     time.Duration
	latencies []time.Duration
	started   time.Time
	ended     time.Time
}

func (p *phaseStats) add(o outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total++
	if o.err != nil {
		p.errs[errClass(o.err)]++
	} else {
		p.statuses[o.status]++
	}
	if o.bad != "" {
		p.bad[o.bad]++
	}
	p.worst = max(p.worst, o.latency)
	p.latencies = append(p.latencies, o.latency)
}

// count5xx is the number of 5xx answers, excluding the statuses listed.
func (p *phaseStats) count5xx(except ...int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for s, c := range p.statuses {
		if s >= 500 && !slices.Contains(except, s) {
			n += c
		}
	}
	return n
}

func (p *phaseStats) errCount(classes ...string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c, k := range p.errs {
		if len(classes) == 0 || slices.Contains(classes, c) {
			n += k
		}
	}
	return n
}

func (p *phaseStats) badCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, k := range p.bad {
		n += k
	}
	return n
}

func (p *phaseStats) percentile(q float64) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.latencies) == 0 {
		return 0
	}
	l := slices.Clone(p.latencies)
	slices.Sort(l)
	return l[min(len(l)-1, int(float64(len(l))*q))]
}

func (p *phaseStats) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var codes []string
	for s, c := range p.statuses {
		codes = append(codes, fmt.Sprintf("%d×%d", c, s))
	}
	slices.Sort(codes)
	for e, c := range p.errs {
		codes = append(codes, fmt.Sprintf("%d×%s", c, e))
	}
	for b, c := range p.bad {
		codes = append(codes, fmt.Sprintf("%d×BAD(%s)", c, b))
	}
	d := p.ended.Sub(p.started)
	return fmt.Sprintf("%s: %d requests in %.1fs, worst %v, [%s]", p.name, p.total, d.Seconds(),
		p.worst.Round(time.Millisecond), strings.Join(codes, " "))
}

// errClass sorts transport errors into the classes the scenarios reason
// about.
func errClass(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case strings.Contains(msg, "server closed idle connection"):
		return "closed-idle"
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "Client.Timeout"):
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "other: " + msg
}

// load runs workers until stop; outcomes go to the current phase.
type load struct {
	cur    atomic.Pointer[phaseStats]
	phases []*phaseStats
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newPhase(name string) *phaseStats {
	return &phaseStats{name: name, statuses: map[int]int{}, errs: map[string]int{}, bad: map[string]int{}, started: time.Now()}
}

// startLoad starts workers calling do(ctx, worker, iteration) in a loop.
func startLoad(workers int, first string, do func(ctx context.Context, w, i int) outcome) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	p := newPhase(first)
	l.phases = append(l.phases, p)
	l.cur.Store(p)
	for w := range workers {
		l.wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				p := l.cur.Load()
				o := do(ctx, w, i)
				if ctx.Err() != nil && o.err != nil {
					return // stopped mid-request: not an outcome
				}
				p.add(o)
			}
		})
	}
	return l
}

// phase ends the current phase and starts a new one.
func (l *load) phase(name string) *phaseStats {
	p := newPhase(name)
	old := l.cur.Swap(p)
	old.mu.Lock()
	old.ended = p.started
	old.mu.Unlock()
	l.phases = append(l.phases, p)
	return p
}

// stop ends the load and the last phase.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
	p := l.cur.Load()
	p.mu.Lock()
	p.ended = time.Now()
	p.mu.Unlock()
}

// total sums every phase.
func (l *load) total() (requests int, worst time.Duration, elapsed time.Duration) {
	for _, p := range l.phases {
		p.mu.Lock()
		requests += p.total
		worst = max(worst, p.worst)
		elapsed += p.ended.Sub(p.started)
		p.mu.Unlock()
	}
	return
}

// timed does one HTTP request with a client, reads the body, and returns
// the outcome and the body.
func timed(ctx context.Context, c *http.Client, req *http.Request) (outcome, []byte) {
	start := time.Now()
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		return outcome{err: err, latency: time.Since(start)}, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	o := outcome{status: resp.StatusCode, latency: time.Since(start), err: err}
	if err == nil {
		o.bad = ""
	}
	return o, body
}

func newClient(workers int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = workers * 2
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

func newRequest(t testing.TB, method, url, ctype, body, token string) *http.Request {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// summary is the table the suite prints and writes at the end.
type summary struct {
	mu   sync.Mutex
	rows [][6]string
}

func (s *summary) add(fault, held, errs string, worst time.Duration, lost, verdict string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := "—"
	if worst > 0 {
		w = worst.Round(time.Millisecond).String()
	}
	s.rows = append(s.rows, [6]string{fault, held, errs, w, lost, verdict})
}

func (s *summary) markdown() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	b.WriteString("| fault | load held | errors seen | worst latency | data lost | result |\n|---|---|---|---|---|---|\n")
	for _, r := range s.rows {
		b.WriteString("| " + strings.Join(r[:], " | ") + " |\n")
	}
	return b.String()
}

func (s *summary) write(t *testing.T) {
	md := s.markdown()
	fmt.Fprintf(os.Stdout, "\n=== reliability summary ===\n%s\n", md)
	path := os.Getenv("RELIABILITY_SUMMARY")
	if path == "" {
		return
	}
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		t.Errorf("write summary: %v", err)
	}
}

// rss returns the resident set size of pid in KiB (VmRSS).
func rss(pid int) (int, error) { return procStatusKiB(pid, "VmRSS") }

// procStatusKiB reads a "<field>: <n> kB" line of /proc/<pid>/status.
func procStatusKiB(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
