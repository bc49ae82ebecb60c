package middleware

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Source says which store a limiter's decision came from.
type Source int

// Sources of a decision.
const (
	// SourceStore: the shared store (Redis) answered.
	SourceStore Source = iota
	// SourceFallback: the shared store failed and the in-process fallback
	// store answered for the same window.
	SourceFallback
	// SourceNone: both failed (or there is no fallback); the caller lets the
	// request through (fail-open).
	SourceNone
	// SourceCanceled: the request itself was gone (client hung up) before a
	// store answered; nothing was decided and nothing is counted.
	SourceCanceled
)

// Decision names of ratelimit_decisions_total{decision} (CONTRACT §5, §10),
// shared by every limiter.
const (
	DecisionAllowed  = "allowed"
	DecisionLimited  = "limited"
	DecisionFallback = "fallback"
	DecisionFailOpen = "fail_open"
)

// WithFallback asks store, bounded by timeout, and on any error (Redis down,
// a timeout, a full connection pool) asks fallback, which is in-process and
// so gets no deadline of its own (a deadline would only turn a busy
// scheduler into a fail-open). It
// returns the answer, where it came from, and the shared store's error when
// it failed (for logs and spans; with SourceNone, joined with the
// fallback's). fallback may be nil. This is the one
// place where the order "shared store, then in-process fallback, then
// fail-open" is decided, for the general limiter and the credential
// limiters alike.
func WithFallback[T any](ctx context.Context, timeout time.Duration, store, fallback func(context.Context) (T, error)) (T, Source, error) {
	v, err := call(ctx, timeout, store)
	if err == nil {
		return v, SourceStore, nil
	}
	if ctx.Err() != nil {
		var zero T
		return zero, SourceCanceled, err
	}
	if fallback != nil {
		v, ferr := fallback(ctx)
		if ferr == nil {
			return v, SourceFallback, err
		}
		err = errors.Join(err, fmt.Errorf("fallback: %w", ferr))
	}
	var zero T
	return zero, SourceNone, err
}

func call[T any](ctx context.Context, timeout time.Duration, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return f(ctx)
}
