package storagetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Reserver is the reservation side of a rate store, as the credential
// limiters consume it: Reserve counts an attempt only while the window holds
// fewer than limit, in one atomic step; Release gives one back.
type Reserver interface {
	Reserve(ctx context.Context, key string, limit int64, window time.Duration) (ok bool, count int64, ttl time.Duration, err error)
	Release(ctx context.Context, key string) error
}

// RunReserveSuite checks the reservation contract on the store h.New makes
// (which must implement [Reserver]): reservations succeed up to the limit
// and a refusal changes nothing; n concurrent reservations succeed exactly
// min(n, limit) times; Release gives one back, never below zero and without
// creating a key; the window is fixed by the first reservation, shared with
// Hit on the same key, and resets once passed; a key without expiry is
// repaired; bad windows and limits are refused.
func RunReserveSuite(t *testing.T, h RateHarness) {
	t.Helper()
	ctx := context.Background()
	w := h.Window
	store := func(t *testing.T) (Reserver, RateStore) {
		t.Helper()
		s := h.New(t)
		r, ok := s.(Reserver)
		if !ok {
			t.Fatalf("%T has no Reserve/Release", s)
		}
		return r, s
	}
	reserve := func(t *testing.T, r Reserver, k string, limit int64) (bool, int64, time.Duration) {
		t.Helper()
		ok, n, ttl, err := r.Reserve(ctx, k, limit, w)
		if err != nil {
			t.Fatalf("Reserve: %v", err)
		}
		return ok, n, ttl
	}

	t.Run("UpToTheLimitThenRefused", func(t *testing.T) {
		r, _ := store(t)
		k := key(t, h.KeyPrefix, "ratelimit:login")
		for want := int64(1); want <= 3; want++ {
			ok, n, ttl := reserve(t, r, k, 3)
			if !ok || n != want {
				t.Fatalf("reservation %d: ok=%v count=%d", want, ok, n)
			}
			checkTTL(t, ttl, w, h.Slack)
		}
		for range 3 {
			ok, n, ttl := reserve(t, r, k, 3)
			if ok || n != 3 {
				t.Fatalf("over the limit: ok=%v count=%d; want refused at 3 (a refusal counts nothing)", ok, n)
			}
			checkTTL(t, ttl, w, h.Slack)
		}
		// A higher limit on the same key sees the same count.
		if ok, n, _ := reserve(t, r, k, 4); !ok || n != 4 {
			t.Fatalf("limit 4 after 3: ok=%v count=%d", ok, n)
		}
	})

	t.Run("ReleaseGivesOneBack", func(t *testing.T) {
		r, _ := store(t)
		k := key(t, h.KeyPrefix, "ratelimit:login")
		reserve(t, r, k, 2)
		reserve(t, r, k, 2)
		if ok, _, _ := reserve(t, r, k, 2); ok {
			t.Fatal("third reservation of 2 succeeded")
		}
		if err := r.Release(ctx, k); err != nil {
			t.Fatal(err)
		}
		if ok, n, _ := reserve(t, r, k, 2); !ok || n != 2 {
			t.Fatalf("after a release: ok=%v count=%d, want a success at 2", ok, n)
		}
		// Never below zero: three releases of two, then two fit again, not five.
		for range 3 {
			if err := r.Release(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if ok, n, _ := reserve(t, r, k, 5); !ok || n != 1 {
			t.Fatalf("after releasing past zero: ok=%v count=%d, want 1", ok, n)
		}
	})

	t.Run("ReleaseOfAbsentKeyCreatesNothing", func(t *testing.T) {
		r, _ := store(t)
		k := key(t, h.KeyPrefix, "ratelimit:login")
		if err := r.Release(ctx, k); err != nil {
			t.Fatal(err)
		}
		ok, n, ttl := reserve(t, r, k, 1)
		if !ok || n != 1 {
			t.Fatalf("reservation after a release of nothing: ok=%v count=%d, want 1", ok, n)
		}
		checkTTL(t, ttl, w, h.Slack)
	})

	t.Run("ConcurrentReservationsExact", func(t *testing.T) {
		r, _ := store(t)
		k := key(t, h.KeyPrefix, "ratelimit:login")
		const n, limit = 50, 20
		var granted atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				ok, _, _, err := r.Reserve(ctx, k, limit, time.Minute)
				if err != nil {
					t.Errorf("Reserve: %v", err)
				}
				if ok {
					granted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if g := granted.Load(); g != limit {
			t.Fatalf("%d of %d concurrent reservations granted against a limit of %d, want exactly %d", g, n, limit, limit)
		}
		if ok, cnt, _, err := r.Reserve(ctx, k, limit, time.Minute); err != nil || ok || cnt != limit {
			t.Fatalf("after the burst: ok=%v count=%d err=%v; want refused at %d", ok, cnt, err, limit)
		}
	})

	t.Run("ConcurrentReserveAndReleaseBalance", func(t *testing.T) {
		r, _ := store(t)
		k := key(t, h.KeyPrefix, "ratelimit:login")
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 40 {
			wg.Go(func() {
				<-start
				ok, _, _, err := r.Reserve(ctx, k, 10, time.Minute)
				if err != nil {
					t.Errorf("Reserve: %v", err)
				}
				if ok {
					if err := r.Release(ctx, k); err != nil {
						t.Errorf("Release: %v", err)
					}
				}
			})
		}
		close(start)
		wg.Wait()
		if ok, n, _, err := r.Reserve(ctx, k, 10, time.Minute); err != nil || !ok || n != 1 {
			t.Fatalf("every reservation given back, then one more: ok=%v count=%d err=%v; want 1", ok, n, err)
		}
	})

	t.Run("SharesTheWindowWithHit", func(t *testing.T) {
		r, s := store(t)
		k := key(t, h.KeyPrefix, "ratelimit:login")
		reserve(t, r, k, 5)
		h.Wait(t, w/4)
		n, ttl, err := s.Hit(ctx, k, 10*w)
		if err != nil || n != 2 {
			t.Fatalf("Hit after a reservation: %d %v, want 2", n, err)
		}
		checkTTL(t, ttl, w-w/4, h.Slack)
		_, n, ttl = reserve(t, r, k, 5)
		if n != 3 {
			t.Fatalf("reservation after a hit: count %d, want 3", n)
		}
		checkTTL(t, ttl, w-w/4, h.Slack)
	})

	t.Run("ResetsAfterWindow", func(t *testing.T) {
		r, _ := store(t)
		k := key(t, h.KeyPrefix, "ratelimit:login")
		reserve(t, r, k, 1)
		if ok, _, _ := reserve(t, r, k, 1); ok {
			t.Fatal("second reservation of 1 succeeded")
		}
		h.Wait(t, w+w/2)
		if ok, n, ttl := reserve(t, r, k, 1); !ok || n != 1 {
			t.Fatalf("after the window: ok=%v count=%d", ok, n)
		} else {
			checkTTL(t, ttl, w, h.Slack)
		}
	})

	t.Run("RepairsKeyWithoutExpiry", func(t *testing.T) {
		if h.Plant == nil {
			t.Skip("backend cannot hold a key without expiry")
		}
		r, _ := store(t)
		k := key(t, h.KeyPrefix, "ratelimit:login")
		h.Plant(t, k, 7)
		ok, n, ttl := reserve(t, r, k, 5)
		if ok || n != 7 {
			t.Fatalf("planted 7, limit 5: ok=%v count=%d, want refused", ok, n)
		}
		checkTTL(t, ttl, w, h.Slack)
		h.Wait(t, w+w/2)
		if ok, n, _ := reserve(t, r, k, 5); !ok || n != 1 {
			t.Fatalf("after the repaired window: ok=%v count=%d, want 1", ok, n)
		}
	})

	t.Run("RejectsBadArguments", func(t *testing.T) {
		r, _ := store(t)
		k := key(t, h.KeyPrefix, "ratelimit:login")
		for _, bad := range []time.Duration{0, -time.Second, time.Microsecond} {
			if _, _, _, err := r.Reserve(ctx, k, 5, bad); err == nil {
				t.Errorf("Reserve with window %v: no error", bad)
			}
		}
		for _, bad := range []int64{0, -1} {
			if _, _, _, err := r.Reserve(ctx, k, bad, w); err == nil {
				t.Errorf("Reserve with limit %d: no error", bad)
			}
		}
	})
}
