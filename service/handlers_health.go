package service

import (
	"context"
	"net/http"
	"sync"
	"time"
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

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// handleReady runs every check concurrently, each under its own timeout. Any
// "fail", or a shutdown in progress, answers 503 with status "unavailable".
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
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
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			defer cancel()
			if err := c.Func(ctx); err != nil {
				results[i] = "fail"
				s.logger.WarnContext(r.Context(), "readiness check failed", "check", c.Name, "error", err.Error())
				return
			}
			results[i] = "ok"
		})
	}
	wg.Wait()
	body := readiness{Status: "ok", Checks: make(map[string]string, len(s.checks))}
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
