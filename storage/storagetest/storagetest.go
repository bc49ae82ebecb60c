// Package storagetest holds the contract test suites that every rate-store
// and cache backend of bulwark must pass (the memory and Redis backends run
// the same suites), and a fake clock for backends that take one.
//
// The suites define their own small interfaces, matching the ones the
// middleware and service packages consume, so that no shared type is needed.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RateStore is the rate-limiter store under test.
type RateStore interface {
	Hit(ctx context.Context, key string, window time.Duration) (count int64, ttl time.Duration, err error)
}

// Cache is the cache under test.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error)
	ReplaceUnlessGuarded(ctx context.Context, key string, value []byte, ttl time.Duration, mine, guard []byte) (bool, error)
	Delete(ctx context.Context, keys ...string) error
}

// RateHarness adapts one backend to [RunRateStoreSuite].
type RateHarness struct {
	// New returns the store under test. Stores may be shared between
	// subtests: every subtest uses keys of its own.
	New func(t *testing.T) RateStore
	// KeyPrefix is put before every key the suite uses (for example a random
	// per-run prefix that a Redis test deletes afterwards).
	KeyPrefix string
	// Window is the window used by the expiry tests: a few hundred
	// milliseconds against a real server, anything with a fake clock.
	Window time.Duration
	// Wait lets d pass for the store: a real sleep, or a fake-clock advance.
	Wait func(t *testing.T, d time.Duration)
	// Slack is how far a returned TTL may fall short of the exact value
	// (time passing on a real server; zero with a fake clock).
	Slack time.Duration
	// Plant, if set, stores count at key with no expiry, bypassing the
	// store (a key a buggy writer left without TTL). Nil skips that test.
	Plant func(t *testing.T, key string, count int64)
	// PTTL, if set, reads the key's remaining TTL from the backend itself.
	// Nil skips that test.
	PTTL func(t *testing.T, key string) time.Duration
}

// CacheHarness adapts one backend to [RunCacheSuite].
type CacheHarness struct {
	// New returns the cache under test; it may be shared between subtests.
	New func(t *testing.T) Cache
	// KeyPrefix is put before every key the suite uses.
	KeyPrefix string
	// TTL is the short TTL used by the expiry test.
	TTL time.Duration
	// Wait lets d pass for the cache: a real sleep, or a fake-clock advance.
	Wait func(t *testing.T, d time.Duration)
}

// RandomPrefix returns "test:<16 hex>:" for keys of one test run.
func RandomPrefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "test:" + hex.EncodeToString(b[:]) + ":"
}

// FakeClock is a concurrency-safe clock that moves only when told to. Pass
// its Now method where a backend takes a clock.
type FakeClock struct {
	ns atomic.Int64
}

// NewFakeClock returns a clock reading start.
func NewFakeClock(start time.Time) *FakeClock {
	c := &FakeClock{}
	c.ns.Store(start.UnixNano())
	return c
}

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func key(t *testing.T, prefix, kind string) string {
	return prefix + kind + ":" + t.Name()
}

// RunRateStoreSuite checks the fixed-window contract: a hit returns the
// count including itself and the time left in the window; the first hit
// opens a window of the given length; the count resets once it has passed;
// concurrent hits are counted exactly once each; keys are independent; a key
// found without expiry is repaired.
func RunRateStoreSuite(t *testing.T, h RateHarness) {
	t.Helper()
	ctx := context.Background()
	w := h.Window

	t.Run("FirstHitOpensWindow", func(t *testing.T) {
		s := h.New(t)
		k := key(t, h.KeyPrefix, "ratelimit")
		n, ttl, err := s.Hit(ctx, k, w)
		if err != nil {
			t.Fatalf("Hit: %v", err)
		}
		if n != 1 {
			t.Errorf("count = %d, want 1", n)
		}
		checkTTL(t, ttl, w, h.Slack)
	})

	t.Run("CountsUpWithinWindow", func(t *testing.T) {
		s := h.New(t)
		k := key(t, h.KeyPrefix, "ratelimit")
		for want := int64(1); want <= 5; want++ {
			n, ttl, err := s.Hit(ctx, k, w)
			if err != nil {
				t.Fatalf("Hit %d: %v", want, err)
			}
			if n != want {
				t.Fatalf("count = %d, want %d", n, want)
			}
			checkTTL(t, ttl, w, h.Slack)
		}
	})

	t.Run("WindowIsFixedByFirstHit", func(t *testing.T) {
		s := h.New(t)
		k := key(t, h.KeyPrefix, "ratelimit")
		if _, _, err := s.Hit(ctx, k, w); err != nil {
			t.Fatal(err)
		}
		h.Wait(t, w/4)
		// A later hit neither extends the window nor applies its own length.
		n, ttl, err := s.Hit(ctx, k, 10*w)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("count = %d, want 2", n)
		}
		checkTTL(t, ttl, w-w/4, h.Slack)
	})

	t.Run("ResetsAfterWindow", func(t *testing.T) {
		s := h.New(t)
		k := key(t, h.KeyPrefix, "ratelimit")
		for range 3 {
			if _, _, err := s.Hit(ctx, k, w); err != nil {
				t.Fatal(err)
			}
		}
		h.Wait(t, w+w/2)
		n, ttl, err := s.Hit(ctx, k, w)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("count after window = %d, want 1", n)
		}
		checkTTL(t, ttl, w, h.Slack)
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		s := h.New(t)
		a := key(t, h.KeyPrefix, "ratelimit:user:a")
		b := key(t, h.KeyPrefix, "ratelimit:ip:b")
		for range 3 {
			if _, _, err := s.Hit(ctx, a, w); err != nil {
				t.Fatal(err)
			}
		}
		n, _, err := s.Hit(ctx, b, w)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("count of untouched key = %d, want 1", n)
		}
	})

	t.Run("ConcurrentHitsCountedOnce", func(t *testing.T) {
		s := h.New(t)
		k := key(t, h.KeyPrefix, "ratelimit")
		const m = 50
		counts := make([]int64, m)
		errs := make([]error, m)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range m {
			wg.Go(func() {
				<-start
				// A long window: the suite's short one could expire mid-test
				// on a slow machine.
				n, ttl, err := s.Hit(ctx, k, time.Minute)
				if err == nil && (ttl <= 0 || ttl > time.Minute) {
					t.Errorf("hit %d: ttl = %v, want in (0, 1m]", i, ttl)
				}
				counts[i], errs[i] = n, err
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("hit %d: %v", i, err)
			}
		}
		slices.Sort(counts)
		for i, n := range counts {
			if n != int64(i+1) {
				t.Fatalf("sorted counts = %v, want 1..%d each exactly once", counts, m)
			}
		}
		// With a limit of 20, exactly 20 of the 50 are allowed.
		allowed := 0
		for _, n := range counts {
			if n <= 20 {
				allowed++
			}
		}
		if allowed != 20 {
			t.Errorf("allowed = %d of %d, want 20", allowed, m)
		}
	})

	t.Run("RejectsWindowUnderOneMillisecond", func(t *testing.T) {
		s := h.New(t)
		k := key(t, h.KeyPrefix, "ratelimit")
		for _, bad := range []time.Duration{0, -time.Second, time.Microsecond} {
			if _, _, err := s.Hit(ctx, k, bad); err == nil {
				t.Errorf("Hit with window %v: no error", bad)
			}
		}
	})

	t.Run("ReturnedTTLMatchesBackend", func(t *testing.T) {
		if h.PTTL == nil {
			t.Skip("backend exposes no TTL of its own")
		}
		s := h.New(t)
		k := key(t, h.KeyPrefix, "ratelimit")
		if _, _, err := s.Hit(ctx, k, w); err != nil {
			t.Fatal(err)
		}
		h.Wait(t, w/4)
		_, ttl, err := s.Hit(ctx, k, w)
		if err != nil {
			t.Fatal(err)
		}
		backend := h.PTTL(t, k)
		if d := ttl - backend; d < 0 || d > h.Slack {
			t.Errorf("returned ttl %v, backend PTTL right after %v: want backend <= returned <= backend+%v", ttl, backend, h.Slack)
		}
	})

	t.Run("RepairsKeyWithoutExpiry", func(t *testing.T) {
		if h.Plant == nil {
			t.Skip("backend cannot hold a key without expiry")
		}
		s := h.New(t)
		k := key(t, h.KeyPrefix, "ratelimit")
		h.Plant(t, k, 5)
		n, ttl, err := s.Hit(ctx, k, w)
		if err != nil {
			t.Fatal(err)
		}
		if n != 6 {
			t.Errorf("count = %d, want 6 (the planted 5 continue)", n)
		}
		checkTTL(t, ttl, w, h.Slack)
		if h.PTTL != nil {
			if backend := h.PTTL(t, k); backend <= 0 {
				t.Errorf("backend TTL after repair = %v, want > 0", backend)
			}
		}
		h.Wait(t, w+w/2)
		if n, _, err := s.Hit(ctx, k, w); err != nil || n != 1 {
			t.Errorf("after repaired window: count %d, err %v; want 1, nil", n, err)
		}
	})
}

// checkTTL wants got in [want-slack, want].
func checkTTL(t *testing.T, got, want, slack time.Duration) {
	t.Helper()
	if got > want || got < want-slack || got <= 0 {
		t.Errorf("ttl = %v, want %v (at most %v less)", got, want, slack)
	}
}

// RunCacheSuite checks the cache contract: a miss is (nil, false, nil);
// values round-trip byte for byte and are not aliased with the caller's
// slices; Set replaces; Delete removes any number of keys and ignores
// missing ones; entries expire after their TTL; a TTL under a millisecond is
// refused.
func RunCacheSuite(t *testing.T, h CacheHarness) {
	t.Helper()
	ctx := context.Background()

	get := func(t *testing.T, c Cache, k string) ([]byte, bool) {
		t.Helper()
		v, ok, err := c.Get(ctx, k)
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		if !ok && v != nil {
			t.Errorf("Get(%q) miss returned value %q, want nil", k, v)
		}
		return v, ok
	}
	set := func(t *testing.T, c Cache, k string, v []byte, ttl time.Duration) {
		t.Helper()
		if err := c.Set(ctx, k, v, ttl); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
	}

	t.Run("Miss", func(t *testing.T) {
		c := h.New(t)
		if _, ok := get(t, c, key(t, h.KeyPrefix, "cache")); ok {
			t.Error("hit on a key never set")
		}
	})

	t.Run("AddOnlyWhenAbsent", func(t *testing.T) {
		c := h.New(t)
		k := key(t, h.KeyPrefix, "add")
		if ok, err := c.Add(ctx, k, []byte("first"), h.TTL); err != nil || !ok {
			t.Fatalf("Add on an absent key = %v, %v; want true", ok, err)
		}
		if ok, err := c.Add(ctx, k, []byte("second"), h.TTL); err != nil || ok {
			t.Fatalf("Add on a present key = %v, %v; want false", ok, err)
		}
		if v, _ := get(t, c, k); string(v) != "first" {
			t.Fatalf("value %q, want first", v)
		}
		h.Wait(t, h.TTL+h.TTL/2)
		if ok, err := c.Add(ctx, k, []byte("third"), h.TTL); err != nil || !ok {
			t.Fatalf("Add after expiry = %v, %v; want true", ok, err)
		}
	})

	t.Run("CompareAndSwap", func(t *testing.T) {
		c := h.New(t)
		k := key(t, h.KeyPrefix, "cas")
		if ok, err := c.CompareAndSwap(ctx, k, []byte("lease:1"), []byte("v"), h.TTL); err != nil || ok {
			t.Fatalf("CompareAndSwap on an absent key = %v, %v; want false", ok, err)
		}
		if _, ok := get(t, c, k); ok {
			t.Fatal("a failed CompareAndSwap created the key")
		}
		set(t, c, k, []byte("lease:1"), time.Minute)
		if ok, err := c.CompareAndSwap(ctx, k, []byte("lease:2"), []byte("v"), h.TTL); err != nil || ok {
			t.Fatalf("CompareAndSwap with the wrong old value = %v, %v; want false", ok, err)
		}
		if v, _ := get(t, c, k); string(v) != "lease:1" {
			t.Fatalf("value %q after a failed swap, want lease:1", v)
		}
		if ok, err := c.CompareAndSwap(ctx, k, []byte("lease:1"), []byte(`{"id":"x"}`), h.TTL); err != nil || !ok {
			t.Fatalf("CompareAndSwap with the right old value = %v, %v; want true", ok, err)
		}
		if v, _ := get(t, c, k); string(v) != `{"id":"x"}` {
			t.Fatalf("value %q after the swap", v)
		}
		// The swap sets its own TTL.
		h.Wait(t, h.TTL+h.TTL/2)
		if _, ok := get(t, c, k); ok {
			t.Fatal("swapped value outlived its TTL")
		}
		// An expired old value is not swapped.
		set(t, c, k, []byte("lease:3"), h.TTL)
		h.Wait(t, h.TTL+h.TTL/2)
		if ok, err := c.CompareAndSwap(ctx, k, []byte("lease:3"), []byte("v"), time.Minute); err != nil || ok {
			t.Fatalf("CompareAndSwap of an expired value = %v, %v; want false", ok, err)
		}
		if err := c.Set(ctx, k, []byte("x"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CompareAndSwap(ctx, k, []byte("x"), []byte("y"), time.Microsecond); err == nil {
			t.Fatal("CompareAndSwap with a TTL under 1ms: no error")
		}
	})

	t.Run("ConcurrentCompareAndSwapOneWins", func(t *testing.T) {
		c := h.New(t)
		k := key(t, h.KeyPrefix, "cas")
		set(t, c, k, []byte("lease:0"), time.Minute)
		const n = 20
		var won atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				ok, err := c.CompareAndSwap(ctx, k, []byte("lease:0"), []byte(fmt.Sprint(i)), time.Minute)
				if err != nil {
					t.Errorf("CompareAndSwap: %v", err)
				}
				if ok {
					won.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("%d of %d concurrent swaps from one value succeeded, want 1", won.Load(), n)
		}
	})

	t.Run("ReplaceUnlessGuarded", func(t *testing.T) {
		c := h.New(t)
		k := key(t, h.KeyPrefix, "guarded")
		mine, guard := []byte("tomb:p:mine"), []byte("tomb:p:")
		replace := func(want bool, what string) {
			t.Helper()
			ok, err := c.ReplaceUnlessGuarded(ctx, k, []byte("tomb:c:new"), time.Minute, mine, guard)
			if err != nil || ok != want {
				t.Fatalf("%s: stored %v, %v; want %v", what, ok, err, want)
			}
		}
		replace(true, "absent key")
		set(t, c, k, mine, time.Minute)
		replace(true, "holding mine")
		set(t, c, k, []byte(`{"id":"x"}`), time.Minute)
		replace(true, "holding an unguarded value")
		if v, _ := get(t, c, k); string(v) != "tomb:c:new" {
			t.Fatalf("value %q after a replace", v)
		}
		set(t, c, k, []byte("tomb:p:another"), time.Minute)
		replace(false, "holding another guarded value")
		if v, _ := get(t, c, k); string(v) != "tomb:p:another" {
			t.Fatalf("a guarded value was replaced: %q", v)
		}
		set(t, c, k, []byte("tomb:p:another"), h.TTL)
		h.Wait(t, h.TTL+h.TTL/2)
		replace(true, "holding an expired guarded value")
		if _, err := c.ReplaceUnlessGuarded(ctx, k, []byte("v"), time.Microsecond, mine, guard); err == nil {
			t.Fatal("a TTL under 1ms: no error")
		}
	})

	t.Run("SetGet", func(t *testing.T) {
		c := h.New(t)
		k := key(t, h.KeyPrefix, "cache:users")
		want := []byte(`{"id":"7","email":"a@example.com"}` + "\x00\xff")
		set(t, c, k, want, time.Minute)
		got, ok := get(t, c, k)
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("Get = %q, %v; want %q, true", got, ok, want)
		}
	})

	t.Run("EmptyValue", func(t *testing.T) {
		c := h.New(t)
		k := key(t, h.KeyPrefix, "cache")
		set(t, c, k, []byte{}, time.Minute)
		got, ok := get(t, c, k)
		if !ok || len(got) != 0 {
			t.Errorf("Get = %q, %v; want empty, true", got, ok)
		}
	})

	t.Run("NoAliasing", func(t *testing.T) {
		c := h.New(t)
		k := key(t, h.KeyPrefix, "cache")
		v := []byte("original")
		set(t, c, k, v, time.Minute)
		copy(v, "XXXXXXXX")
		got, _ := get(t, c, k)
		if string(got) != "original" {
			t.Fatalf("after changing the slice given to Set: Get = %q", got)
		}
		copy(got, "YYYYYYYY")
		if again, _ := get(t, c, k); string(again) != "original" {
			t.Errorf("after changing a slice Get returned: Get = %q", again)
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		c := h.New(t)
		k := key(t, h.KeyPrefix, "cache")
		set(t, c, k, []byte("one"), time.Minute)
		set(t, c, k, []byte("two"), time.Minute)
		if got, _ := get(t, c, k); string(got) != "two" {
			t.Errorf("Get = %q, want two", got)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		c := h.New(t)
		a := key(t, h.KeyPrefix, "cache:a")
		b := key(t, h.KeyPrefix, "cache:b")
		keep := key(t, h.KeyPrefix, "cache:keep")
		for _, k := range []string{a, b, keep} {
			set(t, c, k, []byte(k), time.Minute)
		}
		if err := c.Delete(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, ok := get(t, c, a); ok {
			t.Error("hit after Delete")
		}
		if err := c.Delete(ctx, b, key(t, h.KeyPrefix, "cache:never-set")); err != nil {
			t.Fatalf("Delete with a missing key: %v", err)
		}
		if _, ok := get(t, c, b); ok {
			t.Error("hit after multi-key Delete")
		}
		if err := c.Delete(ctx); err != nil {
			t.Errorf("Delete of no keys: %v", err)
		}
		if got, ok := get(t, c, keep); !ok || string(got) != keep {
			t.Errorf("untouched key: Get = %q, %v", got, ok)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		c := h.New(t)
		k := key(t, h.KeyPrefix, "cache")
		set(t, c, k, []byte("v"), h.TTL)
		if _, ok := get(t, c, k); !ok {
			t.Fatal("miss right after Set")
		}
		h.Wait(t, h.TTL+h.TTL/2)
		if _, ok := get(t, c, k); ok {
			t.Error("hit after TTL passed")
		}
	})

	t.Run("RejectsTTLUnderOneMillisecond", func(t *testing.T) {
		c := h.New(t)
		k := key(t, h.KeyPrefix, "cache")
		for _, bad := range []time.Duration{0, -time.Second, time.Microsecond} {
			if err := c.Set(ctx, k, []byte("v"), bad); err == nil {
				t.Errorf("Set with ttl %v: no error", bad)
			}
		}
		if _, ok := get(t, c, k); ok {
			t.Error("a refused Set stored a value")
		}
	})
}
