package memory

import (
	"context"
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

// RateStore is an in-process fixed-window hit counter with the same
// behaviour as the Redis backend: the first hit on a key opens a window of
// the given length, each hit returns the count including itself and the time
// left, and the count starts again at 1 once the window has passed. It serves
// tests and single-instance deployments without Redis; counts are not shared
// between processes.
//
// Keys are used as given (for example "ratelimit:ip:203.0.113.7"): no prefix
// is added. The store is safe for concurrent use; keys are spread over 32
// independently locked shards. It starts no goroutine and needs no Close:
// every 1024th hit sweeps one shard of its expired windows, round robin, so
// memory stays bounded by the keys seen in a window plus the time 32768 hits
// take (it is not released while no hits arrive at all).
type RateStore struct {
	clock  func() time.Time
	seed   maphash.Seed
	hits   atomic.Uint64
	shards [rateShards]rateShard
}

type rateShard struct {
	mu      sync.Mutex
	windows map[string]rateWindow
}

type rateWindow struct {
	count   int64
	expires time.Time
}

// NewRateStore returns an empty store reading time from clock (time.Now when
// nil). clock must be safe for concurrent use.
func NewRateStore(clock func() time.Time) *RateStore {
	if clock == nil {
		clock = time.Now
	}
	s := &RateStore{clock: clock, seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].windows = make(map[string]rateWindow)
	}
	return s
}

// Hit counts one request against key in its fixed window, opening a window of
// length window if the key has none or its window has passed. It returns the
// count including this hit and the time left in the window. window must be
// at least a millisecond (as with Redis); a done ctx is an error.
func (s *RateStore) Hit(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	if window < time.Millisecond {
		return 0, 0, fmt.Errorf("memory: rate window %v is shorter than 1ms", window)
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	now := s.clock()
	sh := &s.shards[maphash.String(s.seed, key)%rateShards]

	sh.mu.Lock()
	w, ok := sh.windows[key]
	if !ok || !now.Before(w.expires) {
		w = rateWindow{expires: now.Add(window)}
	}
	w.count++
	sh.windows[key] = w
	sh.mu.Unlock()

	if n := s.hits.Add(1); n%rateSweepEvery == 0 {
		s.shards[(n/rateSweepEvery)%rateShards].sweep(now)
	}
	return w.count, w.expires.Sub(now), nil
}

// sweep drops the windows that have passed.
func (sh *rateShard) sweep(now time.Time) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
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

// Peek returns the count of key's current window and the time left in it
// without counting a hit: (0, 0) when the key has no open window. The login
// limiter uses it to refuse an attempt before it costs a password hash.
func (s *RateStore) Peek(ctx context.Context, key string) (int64, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	now := s.clock()
	sh := &s.shards[maphash.String(s.seed, key)%rateShards]
	sh.mu.Lock()
	w, ok := sh.windows[key]
	sh.mu.Unlock()
	if !ok || !now.Before(w.expires) {
		return 0, 0, nil
	}
	return w.count, w.expires.Sub(now), nil
}
