package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/storage/storagetest"
)

func TestRateStoreContract(t *testing.T) {
	clock := storagetest.NewFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s := NewRateStore(clock.Now)
	storagetest.RunRateStoreSuite(t, storagetest.RateHarness{
		New:    func(*testing.T) storagetest.RateStore { return s },
		Window: time.Minute,
		Wait:   func(_ *testing.T, d time.Duration) { clock.Advance(d) },
	})
}

func TestRateStoreWindowBoundary(t *testing.T) {
	clock := storagetest.NewFakeClock(time.Unix(1000, 0))
	s := NewRateStore(clock.Now)
	ctx := context.Background()
	hit := func() (int64, time.Duration) {
		t.Helper()
		n, ttl, err := s.Hit(ctx, "ratelimit:ip:192.0.2.1", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return n, ttl
	}
	hit()
	clock.Advance(10*time.Second - time.Nanosecond)
	if n, ttl := hit(); n != 2 || ttl != time.Nanosecond {
		t.Errorf("last instant of window: %d, %v; want 2, 1ns", n, ttl)
	}
	clock.Advance(time.Nanosecond)
	if n, ttl := hit(); n != 1 || ttl != 10*time.Second {
		t.Errorf("at expiry: %d, %v; want a new window: 1, 10s", n, ttl)
	}
}

func TestRateStoreSweepsExpiredWindows(t *testing.T) {
	clock := storagetest.NewFakeClock(time.Unix(1000, 0))
	s := NewRateStore(clock.Now)
	ctx := context.Background()
	const keys = 20000
	for i := range keys {
		if _, _, err := s.Hit(ctx, fmt.Sprintf("ratelimit:ip:%d", i), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.len(); n != keys {
		t.Fatalf("held %d windows, want %d", n, keys)
	}
	// Every window has passed; traffic on a few other keys (which leaves
	// some shards without hits) must sweep them all.
	clock.Advance(2 * time.Second)
	for i := range rateShards * rateSweepEvery {
		if _, _, err := s.Hit(ctx, fmt.Sprintf("ratelimit:user:%d", i%100), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.len(); n != 100 {
		t.Errorf("held %d windows after sweeping, want about 100 live ones", n)
	}
}

func TestRateStoreCanceledContext(t *testing.T) {
	s := NewRateStore(nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Hit(ctx, "ratelimit:ip:x", time.Second); err == nil {
		t.Error("Hit with a canceled context: no error")
	}
}

func TestRateStoreParallelKeys(t *testing.T) {
	s := NewRateStore(nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			k := fmt.Sprintf("ratelimit:user:%d", g)
			for i := range 1000 {
				n, _, err := s.Hit(ctx, k, time.Hour)
				if err != nil || n != int64(i+1) {
					t.Errorf("%s hit %d: %d, %v", k, i+1, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkRateStoreHitParallel(b *testing.B) {
	s := NewRateStore(nil)
	ctx := context.Background()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("ratelimit:ip:10.0.%d.%d", i/256, i%256)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, _, err := s.Hit(ctx, keys[i%len(keys)], time.Minute); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func TestRateStoreReserveContract(t *testing.T) {
	clock := storagetest.NewFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s := NewRateStore(clock.Now)
	storagetest.RunReserveSuite(t, storagetest.RateHarness{
		New:    func(*testing.T) storagetest.RateStore { return s },
		Window: time.Minute,
		Wait:   func(_ *testing.T, d time.Duration) { clock.Advance(d) },
	})
}

// A bounded store refuses to open windows for new keys once full, keeps
// counting the keys it holds, and takes new keys again once windows expire.
func TestBoundedRateStore(t *testing.T) {
	clock := storagetest.NewFakeClock(time.Unix(1000, 0))
	const maxKeys = rateShards * 4
	s := NewBoundedRateStore(clock.Now, maxKeys)
	ctx := context.Background()
	var full, stored []string
	for i := range maxKeys * 3 {
		k := fmt.Sprintf("ratelimit:ip:%d", i)
		_, _, err := s.Hit(ctx, k, time.Second)
		switch {
		case errors.Is(err, ErrRateStoreFull):
			full = append(full, k)
		case err != nil:
			t.Fatal(err)
		default:
			stored = append(stored, k)
		}
	}
	if n := s.len(); n > maxKeys || n != len(stored) {
		t.Fatalf("holds %d windows (%d stored), bound %d", n, len(stored), maxKeys)
	}
	if len(full) == 0 {
		t.Fatal("3x the bound of new keys and never ErrRateStoreFull")
	}
	// Held keys keep counting; a refused key is refused by Reserve too.
	if n, _, err := s.Hit(ctx, stored[0], time.Second); err != nil || n != 2 {
		t.Fatalf("held key: %d %v, want 2", n, err)
	}
	if ok, _, _, err := s.Reserve(ctx, full[0], 5, time.Second); ok || !errors.Is(err, ErrRateStoreFull) {
		t.Fatalf("reserve of a new key in a full store: %v %v", ok, err)
	}
	// Once the windows have passed, new keys fit again.
	clock.Advance(time.Second)
	accepted := 0
	for _, k := range full {
		if _, _, err := s.Hit(ctx, k, time.Second); err == nil {
			accepted++
		} else if !errors.Is(err, ErrRateStoreFull) {
			t.Fatal(err)
		}
	}
	// A shard that had to make room swept its expired windows; others keep
	// theirs until the periodic sweep. Once everything expired is swept,
	// only the new keys remain.
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.sweepLocked(clock.Now())
		sh.mu.Unlock()
	}
	if accepted == 0 || s.len() != accepted || accepted > maxKeys {
		t.Fatalf("after expiry %d of %d new keys accepted, %d windows held (bound %d): expired windows not swept",
			accepted, len(full), s.len(), maxKeys)
	}
}
