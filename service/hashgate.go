package service

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/telemetry"
)

// HashGateConfig bounds password hashing (CONTRACT §10: admission-controlled).
type HashGateConfig struct {
	// Slots is how many hash or verify operations run at once; each holds
	// the hasher's memory (19 MiB for argon2id) and a CPU. Zero or less:
	// DefaultHashSlots().
	Slots int
	// Queue is how many requests may wait for a slot; one that finds the
	// queue full is refused at once. Zero or less: 16 × Slots.
	Queue int
	// Wait is the longest a request waits for a slot before it is refused.
	// Zero or less: one second.
	Wait time.Duration
}

// DefaultHashSlots is GOMAXPROCS - 1, at least 1: hashing may take every
// CPU but one, which stays free for the rest of the API, so that /health
// and ordinary requests keep their latency during a flood of sign-ups or
// logins (measured in docs/RELIABILITY.md: /health p99 2-4 times lower than
// with GOMAXPROCS slots on 2 cores, for about the same hashing throughput).
func DefaultHashSlots() int { return max(runtime.GOMAXPROCS(0)-1, 1) }

// ErrHashBusy is returned when no hashing slot was free within the wait
// bound, or the queue was full: the API answers 503 service_unavailable
// with Retry-After.
var ErrHashBusy = errors.New("password hashing at capacity")

// MetricPasswordHashes counts password hash and verify operations by op
// (hash, verify) and result: done (the hasher ran) or busy (refused by the
// gate, nothing ran).
const MetricPasswordHashes = telemetry.MetricPasswordHashes

// GatedHasher runs a PasswordHasher behind an admission gate: at most Slots
// operations at once, at most Queue waiting for a slot, none waiting longer
// than Wait. So the memory and CPU spent on hashing are bounded whatever
// the number of sign-ups, logins and password changes in flight: a flood
// gets 503s, not a queue that grows until the process is killed. Every
// operation is counted. Safe for concurrent use.
type GatedHasher struct {
	h       PasswordHasher
	slots   chan struct{}
	queue   int64
	waiting atomic.Int64
	wait    time.Duration
	tel     telemetry.Telemetry
	tags    map[string][]telemetry.Tag // "op/result"
}

// NewGatedHasher gates h as cfg says; tel counts operations (nil: none).
func NewGatedHasher(h PasswordHasher, cfg HashGateConfig, tel telemetry.Telemetry) *GatedHasher {
	if cfg.Slots <= 0 {
		cfg.Slots = DefaultHashSlots()
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 16 * cfg.Slots
	}
	if cfg.Wait <= 0 {
		cfg.Wait = time.Second
	}
	if tel == nil {
		tel = telemetry.Noop()
	}
	g := &GatedHasher{h: h, slots: make(chan struct{}, cfg.Slots), queue: int64(cfg.Queue), wait: cfg.Wait,
		tel: tel, tags: map[string][]telemetry.Tag{}}
	for _, op := range []string{"hash", "verify"} {
		for _, res := range []string{"done", "busy"} {
			g.tags[op+"/"+res] = []telemetry.Tag{{Key: "op", Value: op}, {Key: "result", Value: res}}
		}
	}
	return g
}

// Hash hashes password in a slot: ErrHashBusy when none was free in time,
// ctx's error when the caller gave up waiting.
func (g *GatedHasher) Hash(ctx context.Context, password string) (string, error) {
	var out string
	err := g.run(ctx, "hash", func() (err error) {
		out, err = g.h.Hash(password)
		return err
	})
	return out, err
}

// Verify checks password against hash in a slot (an empty hash is checked
// against the hasher's dummy, at the same cost): ErrHashBusy when no slot
// was free in time, ctx's error when the caller gave up waiting.
func (g *GatedHasher) Verify(ctx context.Context, password, hash string) (bool, error) {
	var ok bool
	err := g.run(ctx, "verify", func() (err error) {
		ok, err = g.h.Verify(password, hash)
		return err
	})
	return ok, err
}

// Waiting reports how many operations are waiting for a slot now.
func (g *GatedHasher) Waiting() int { return int(g.waiting.Load()) }

func (g *GatedHasher) run(ctx context.Context, op string, f func() error) error {
	if err := g.acquire(ctx); err != nil {
		if errors.Is(err, ErrHashBusy) {
			g.tel.Counter(ctx, MetricPasswordHashes, 1, g.tags[op+"/busy"]...)
		}
		return err
	}
	defer func() { <-g.slots }()
	if err := ctx.Err(); err != nil {
		return err // the caller has gone: hash nothing for nobody
	}
	g.tel.Counter(ctx, MetricPasswordHashes, 1, g.tags[op+"/done"]...)
	return f()
}

// acquire takes a slot: at once when one is free; else, with a place in the
// queue, within the wait bound.
func (g *GatedHasher) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	if g.waiting.Add(1) > g.queue {
		g.waiting.Add(-1)
		return ErrHashBusy
	}
	defer g.waiting.Add(-1)
	timer := time.NewTimer(g.wait)
	defer timer.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return ErrHashBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}
