package telemetry

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// WarnThrottle logs a recurring failure (a store that is down, an exporter
// that cannot reach the collector) at most once per interval, with the number
// of occurrences it held back since the last line, so an outage cannot flood
// the log however many requests meet it. Safe for concurrent use; the zero
// value is not usable: call NewWarnThrottle.
type WarnThrottle struct {
	logger *slog.Logger
	msg    string
	every  time.Duration
	now    func() time.Time
	last   atomic.Int64 // unix nanos of the last line written
	held   atomic.Int64 // occurrences not logged since then
}

// NewWarnThrottle returns a throttle writing msg at WARN to logger at most
// once per every. now is the clock (nil: time.Now).
func NewWarnThrottle(logger *slog.Logger, msg string, every time.Duration, now func() time.Time) *WarnThrottle {
	if now == nil {
		now = time.Now
	}
	return &WarnThrottle{logger: logger, msg: msg, every: every, now: now}
}

// Warn records one occurrence of err and logs it unless a line was written
// less than the interval ago.
func (t *WarnThrottle) Warn(ctx context.Context, err error) {
	now := t.now().UnixNano()
	last := t.last.Load()
	if (last != 0 && now-last < int64(t.every)) || !t.last.CompareAndSwap(last, now) {
		t.held.Add(1)
		return
	}
	t.logger.WarnContext(ctx, t.msg, "error", err.Error(), "suppressed_since_last", t.held.Swap(0))
}
