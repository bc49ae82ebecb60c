package memory

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// rateShards splits the counters so that hits on different keys rarely
	// wait for one another.
	rateShards = 32
	// Every rateSweepEvery hits (on any key), the next shard in turn is swept
	// of its expired windows: each shard at least once per
	// rateShards*rateSweepEvery (32768) hits.
	rateSweepEvery = 1024
)

// ErrRateStoreFull is returned by a bounded [RateStore] asked to open a
// window for a new key while it already holds its maximum of live windows.
// The caller decides what then happens (the limiters fail open, counted).
var ErrRateStoreFull = errors.New("memory: rate store full")

// RateStore is an in-process fixed-window hit counter with the same
// behaviour as the Redis backend: the first hit on a key opens a window of
// the given length, each hit returns the count including itself and the time
// left, and the count starts again at 1 once the window has passed. It serves
// tests, single-instance deployments without Redis, and the limiters'
// fallback while Redis fails; counts are not shared between processes.
//
// Keys are used as given (for example "ratelimit:ip:203.0.113.7"): no prefix
// is added. The store is safe for concurrent use; keys are spread over 32
// independently locked shards. It starts no goroutine and needs no Close:
// every 1024th hit sweeps one shard of its expired windows, round robin, so
// memory stays bounded by the keys seen in a window plus the time 32768 hits
// take (it is not released while no hits arrive at all). A store made by
// [NewBoundedRateStore] also holds at most a fixed number of windows.
type RateStore struct {
	clock func() time.Time
	seed  maphash.Seed
	hits  atomic.Uint64
	// perShard is the most windows one shard holds; 0 is unbounded.
	perShard int
	shards   [rateShards]rateShard
}

type rateShard struct {
	mu      sync.Mutex
	windows map[string]rateWindow
}

type rateWindow struct {
	count   int64
	expires time.Time
}

// NewRateStore returns an empty, unbounded store reading time from clock
// (time.Now when nil). clock must be safe for concurrent use.
func NewRateStore(clock func() time.Time) *RateStore {
	return NewBoundedRateStore(clock, 0)
}

// NewBoundedRateStore is [NewRateStore] holding at most about maxKeys live
// windows (spread over 32 shards of maxKeys/32, rounded up, each): a hit or
// reservation that would open a window for a new key in a full shard first
// sweeps that shard of expired windows and, if it is still full, fails with
// [ErrRateStoreFull]. Keys that already have a window keep counting. The
// memory held is then about maxKeys times (key length + 100 bytes).
// maxKeys <= 0 is unbounded.
func NewBoundedRateStore(clock func() time.Time, maxKeys int) *RateStore {
	if clock == nil {
		clock = time.Now
	}
	s := &RateStore{clock: clock, seed: maphash.MakeSeed()}
	if maxKeys > 0 {
		s.perShard = (maxKeys + rateShards - 1) / rateShards
	}
	for i := range s.shards {
		s.shards[i].windows = make(map[string]rateWindow)
	}
	return s
}

func checkWindow(window time.Duration) error {
	if window < time.Millisecond {
		return fmt.Errorf("memory: rate window %v is shorter than 1ms", window)
	}
	return nil
}

func (s *RateStore) shard(key string) *rateShard {
	return &s.shards[maphash.String(s.seed, key)%rateShards]
}

// window returns key's live window at now, or a new empty one of length
// window when it has none. A new key in a full shard of a bounded store
// sweeps the shard, then is ErrRateStoreFull if nothing expired. sh.mu must
// be held.
func (s *RateStore) window(sh *rateShard, key string, now time.Time, window time.Duration) (rateWindow, error) {
	w, ok := sh.windows[key]
	if ok && now.Before(w.expires) {
		return w, nil
	}
	if !ok && s.perShard > 0 && len(sh.windows) >= s.perShard {
		sh.sweepLocked(now)
		if len(sh.windows) >= s.perShard {
			return rateWindow{}, ErrRateStoreFull
		}
	}
	return rateWindow{expires: now.Add(window)}, nil
}

// Hit counts one request against key in its fixed window, opening a window of
// length window if the key has none or its window has passed. It returns the
// count including this hit and the time left in the window. window must be
// at least a millisecond (as with Redis); a done ctx is an error.
func (s *RateStore) Hit(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	_, n, ttl, err := s.count(ctx, key, window, func(int64) bool { return true })
	return n, ttl, err
}

// Reserve counts one attempt against key unless its current window already
// holds limit of them: in one locked step it reads the count and, when it is
// below limit, adds one (opening a window of length window if the key has
// none). ok reports whether the attempt was counted; count is the window's
// count afterwards and ttl the time left in it (for a refusal: until a
// reservation can succeed again). So n concurrent reservations against a
// fresh key succeed exactly min(n, limit) times. A refused reservation
// changes nothing. limit must be at least 1.
func (s *RateStore) Reserve(ctx context.Context, key string, limit int64, window time.Duration) (bool, int64, time.Duration, error) {
	if limit < 1 {
		return false, 0, 0, fmt.Errorf("memory: reserve limit %d is below 1", limit)
	}
	return s.count(ctx, key, window, func(n int64) bool { return n < limit })
}

// count adds one to key's window (opened with length window when it has
// none) when admit accepts the window's current count, in one locked step,
// and returns whether it did, the count afterwards and the time left.
func (s *RateStore) count(ctx context.Context, key string, window time.Duration, admit func(count int64) bool) (bool, int64, time.Duration, error) {
	if err := checkWindow(window); err != nil {
		return false, 0, 0, err
	}
	if err := ctx.Err(); err != nil {
		return false, 0, 0, err
	}
	now := s.clock()
	sh := s.shard(key)

	sh.mu.Lock()
	w, err := s.window(sh, key, now, window)
	if err != nil {
		sh.mu.Unlock()
		return false, 0, 0, err
	}
	ok := admit(w.count)
	if ok {
		w.count++
		sh.windows[key] = w
	}
	sh.mu.Unlock()

	s.maybeSweep(now)
	return ok, w.count, w.expires.Sub(now), nil
}

// Release gives back one attempt reserved against key: it lowers the count
// of key's current window by one, never below zero, keeping the window's
// end. A key without a live window is left alone (its window, and the
// reservation with it, has passed).
func (s *RateStore) Release(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.clock()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if w, ok := sh.windows[key]; ok && now.Before(w.expires) && w.count > 0 {
		w.count--
		sh.windows[key] = w
	}
	return nil
}

func (s *RateStore) maybeSweep(now time.Time) {
	if n := s.hits.Add(1); n%rateSweepEvery == 0 {
		sh := &s.shards[(n/rateSweepEvery)%rateShards]
		sh.mu.Lock()
		sh.sweepLocked(now)
		sh.mu.Unlock()
	}
}

// sweepLocked drops the windows that have passed. sh.mu must be held.
func (sh *rateShard) sweepLocked(now time.Time) {
	for k, w := range sh.windows {
		if !now.Before(w.expires) {
			delete(sh.windows, k)
		}
	}
}

// len counts the windows held, expired or not (for tests).
func (s *RateStore) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.windows)
		sh.mu.Unlock()
	}
	return n
}
