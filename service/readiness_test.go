package service_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/storage/storagetest"
)

// Readiness runs its checks at most once per ReadyCacheTTL however many
// probes arrive (concurrent ones share one run), and a failing check is
// logged at most once per 10s: the probe cannot hammer the dependencies or
// flood the log. Draining is never cached.
func TestReadinessIsCachedAndThrottled(t *testing.T) {
	clock := storagetest.NewFakeClock(time.Unix(1_000_000, 0))
	var calls atomic.Int64
	var failing atomic.Bool
	gate := make(chan struct{})
	var gated atomic.Bool
	check := func(ctx context.Context) error {
		calls.Add(1)
		if gated.Load() {
			<-gate
		}
		if failing.Load() {
			return errors.New("db down")
		}
		return nil
	}
	logs := &syncBuffer{}
	sp := newSpec(t)
	srv := service.NewServer(service.Config{ReadyCacheTTL: time.Second}, service.Deps{
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Users: memory.NewUsers(),
		Tokens: service.NewTokens(testSecret, time.Hour), Hasher: service.NewArgon2id(64, 1, 1),
		Checks: []service.Check{{Name: "db", Func: check}, {Name: "redis"}},
		Now:    clock.Now,
	})
	get := func() (int, string) {
		rec := sp.serve(t, srv, httptest.NewRequest("GET", "/api/v1/health/ready", nil))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	for range 50 {
		if code, _ := get(); code != 200 {
			t.Fatalf("ready: %d", code)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("50 probes within the TTL ran the check %d times, want 1", n)
	}
	// Concurrent probes after expiry share one run.
	clock.Advance(time.Second)
	gated.Store(true)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { get() })
	}
	eventually(t, 5*time.Second, "a run in progress", func() error {
		if calls.Load() != 2 {
			return errNotYet
		}
		return nil
	})
	close(gate)
	wg.Wait()
	gated.Store(false)
	if n := calls.Load(); n > 3 {
		t.Fatalf("20 concurrent probes ran the check %d more times, want 1 (at most 2 if some arrived after it ended)", n-1)
	}
	// A failing check: 503 at once after the TTL, WARN at most every 10s.
	failing.Store(true)
	for i := range 30 {
		clock.Advance(time.Second)
		code, body := get()
		if code != 503 || body != `{"status":"unavailable","checks":{"db":"fail","redis":"disabled"}}` {
			t.Fatalf("probe %d: %d %s", i, code, body)
		}
	}
	if n := strings.Count(logs.String(), `"msg":"readiness check failed"`); n != 3 {
		t.Fatalf("%d WARN lines for 30 failing runs over 30s, want 3 (one per 10s)", n)
	}
	if !strings.Contains(logs.String(), `"check":"db"`) {
		t.Fatal("the WARN line does not name the check")
	}
	// Draining answers 503 at once, cached result or not.
	failing.Store(false)
	clock.Advance(time.Second)
	if code, _ := get(); code != 200 {
		t.Fatalf("recovered: %d", code)
	}
	srv.Drain()
	if code, _ := get(); code != 503 {
		t.Fatalf("draining within the TTL: %d, want 503", code)
	}
}

// A probe whose client hangs up does not fail the run others share.
func TestReadinessRunOutlivesTheProbe(t *testing.T) {
	release := make(chan struct{})
	srv := service.NewServer(service.Config{}, service.Deps{
		Logger: slog.New(slog.DiscardHandler), Users: memory.NewUsers(),
		Tokens: service.NewTokens(testSecret, time.Hour), Hasher: service.NewArgon2id(64, 1, 1),
		Checks: []service.Check{{Name: "db", Timeout: time.Minute, Func: func(ctx context.Context) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/health/ready", nil).WithContext(ctx))
		first <- rec.Code
	}()
	second := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/health/ready", nil))
		second <- rec.Code
	}()
	cancel()
	close(release)
	<-first
	if code := <-second; code != 200 {
		t.Fatalf("a probe sharing a run whose first caller hung up: %d, want 200", code)
	}
}
