package redistest

import (
	"testing"
	"time"
)

func TestLifecycle(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("fresh server: %v", err)
	}
	if s.URL() != "redis://"+s.Addr()+"/0" {
		t.Errorf("URL = %q", s.URL())
	}

	s.Pause()
	if err := ping(s.Addr()); err == nil {
		t.Error("paused server answered")
	}
	s.Resume()
	if err := ping(s.Addr()); err != nil {
		t.Errorf("resumed server: %v", err)
	}

	s.Kill()
	if err := ping(s.Addr()); err == nil {
		t.Error("killed server answered")
	}
	s.Kill() // idempotent

	addr := s.Addr()
	s.Restart()
	if s.Addr() != addr {
		t.Errorf("restarted on %s, was %s", s.Addr(), addr)
	}
	if err := ping(s.Addr()); err != nil {
		t.Errorf("restarted server: %v", err)
	}

	// Restart of a paused server kills it first.
	s.Pause()
	start := time.Now()
	s.Restart()
	if err := ping(s.Addr()); err != nil {
		t.Errorf("server restarted from pause: %v", err)
	}
	t.Logf("restart from pause took %v", time.Since(start))
}

func TestTwoServersGetDifferentPorts(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("both on %s", a.Addr())
	}
}
