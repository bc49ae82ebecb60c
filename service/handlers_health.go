package service

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/telemetry"
	"golang.org/x/sync/singleflight"
)

var statusOK = []byte(`{"status":"ok"}`)

// handleHealth answers exactly {"status":"ok"} (15 bytes), touching nothing.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(statusOK)
}

// handleLive is the liveness probe: the process serves HTTP. No dependency is
// touched, so a slow database never gets the process restarted.
func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) { s.handleHealth(w, r) }

type readinessBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// readiness runs the checks at most once per ttl, however many probes ask
// (one run at a time; probes arriving meanwhile wait for it), so the probe
// cannot be used to hammer Postgres and Redis. A failing check is logged at
// WARN at most every 10 seconds per check.
type readiness struct {
	ttl     time.Duration
	now     func() time.Time
	warns   map[string]*telemetry.WarnThrottle
	mu      sync.Mutex
	at      time.Time // when results were taken; zero: never
	res     []string
	run     singleflight.Group
	newWarn func(name string) *telemetry.WarnThrottle
}

func newReadiness(ttl time.Duration, now func() time.Time, logger *slog.Logger) *readiness {
	if ttl <= 0 {
		ttl = time.Second
	}
	return &readiness{ttl: ttl, now: now, warns: map[string]*telemetry.WarnThrottle{},
		newWarn: func(name string) *telemetry.WarnThrottle {
			return telemetry.NewWarnThrottle(logger.With("check", name), "readiness check failed", 10*time.Second, now)
		}}
}

// results returns each check's state: the cached ones while fresh, else
// those of one new run.
func (s *Server) readinessResults(ctx context.Context) []string {
	rd := s.ready
	rd.mu.Lock()
	if !rd.at.IsZero() && rd.now().Sub(rd.at) < rd.ttl {
		res := rd.res
		rd.mu.Unlock()
		return res
	}
	rd.mu.Unlock()
	v, _, _ := rd.run.Do("ready", func() (any, error) {
		res := s.runChecks(context.WithoutCancel(ctx))
		rd.mu.Lock()
		rd.at, rd.res = rd.now(), res
		rd.mu.Unlock()
		return res, nil
	})
	return v.([]string)
}

// runChecks runs every check concurrently, each under its own timeout, on
// a context no client can cancel (the result is shared).
func (s *Server) runChecks(ctx context.Context) []string {
	results := make([]string, len(s.checks))
	var wg sync.WaitGroup
	for i, c := range s.checks {
		if c.Func == nil {
			results[i] = "disabled"
			continue
		}
		wg.Go(func() {
			timeout := c.Timeout
			if timeout <= 0 {
				timeout = time.Second
			}
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := c.Func(cctx); err != nil {
				results[i] = "fail"
				s.ready.warn(c.Name).Warn(ctx, err)
				return
			}
			results[i] = "ok"
		})
	}
	wg.Wait()
	return results
}

func (rd *readiness) warn(name string) *telemetry.WarnThrottle {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	w, ok := rd.warns[name]
	if !ok {
		w = rd.newWarn(name)
		rd.warns[name] = w
	}
	return w
}

// handleReady answers from the checks' results (reused for up to
// ReadyCacheTTL). Any "fail", or a shutdown in progress (never cached),
// answers 503 with status "unavailable".
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	results := s.readinessResults(r.Context())
	body := readinessBody{Status: "ok", Checks: make(map[string]string, len(s.checks))}
	status := http.StatusOK
	for i, c := range s.checks {
		body.Checks[c.Name] = results[i]
		if results[i] == "fail" {
			status = http.StatusServiceUnavailable
		}
	}
	if s.draining.Load() {
		status = http.StatusServiceUnavailable
	}
	if status != http.StatusOK {
		body.Status = "unavailable"
	}
	w.Header().Set("Cache-Control", "no-store")
	encode(w, status, body)
}
