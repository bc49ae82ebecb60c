package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Attribute keys that NewContextHandler adds to log records.
const (
	AttrRequestID = "request_id"
	AttrTraceID   = "trace_id"
	AttrSpanID    = "span_id"
)

// NewContextHandler wraps inner so that every record logged with a context
// gets request_id (from requestID(ctx), when non-empty; requestID may be nil)
// and trace_id and span_id (from the span in ctx, when its span context is
// valid), as 32 and 16 lower-case hex digits.
//
// A key already attached to the logger with With (outside any group) is not
// added again, so a per-request logger that carries request_id itself does
// not get it twice. As with any slog handler, attributes added after
// WithGroup land inside that group.
func NewContextHandler(inner slog.Handler, requestID func(context.Context) string) slog.Handler {
	return &contextHandler{inner: inner, requestID: requestID}
}

type contextHandler struct {
	inner     slog.Handler
	requestID func(context.Context) string
	// inGroup is set once WithGroup has been called.
	inGroup bool
	// has* are set when WithAttrs (outside a group) already attached the key.
	hasRequestID, hasTraceID, hasSpanID bool
}

// Enabled implements slog.Handler.
func (h *contextHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle implements slog.Handler.
func (h *contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.inner.Handle(ctx, r)
	}
	var buf [3]slog.Attr
	add := buf[:0]
	if h.requestID != nil && !h.hasRequestID {
		if id := h.requestID(ctx); id != "" && !recordHas(r, AttrRequestID) {
			add = append(add, slog.String(AttrRequestID, id))
		}
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		if !h.hasTraceID && !recordHas(r, AttrTraceID) {
			add = append(add, slog.String(AttrTraceID, sc.TraceID().String()))
		}
		if !h.hasSpanID && !recordHas(r, AttrSpanID) {
			add = append(add, slog.String(AttrSpanID, sc.SpanID().String()))
		}
	}
	if len(add) > 0 {
		// Clone so that a record shared with other handlers is not changed.
		r = r.Clone()
		r.AddAttrs(add...)
	}
	return h.inner.Handle(ctx, r)
}

func recordHas(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

// WithAttrs implements slog.Handler.
func (h *contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(attrs)
	if !h.inGroup {
		for _, a := range attrs {
			switch a.Key {
			case AttrRequestID:
				c.hasRequestID = true
			case AttrTraceID:
				c.hasTraceID = true
			case AttrSpanID:
				c.hasSpanID = true
			}
		}
	}
	return &c
}

// WithGroup implements slog.Handler.
func (h *contextHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.inner = h.inner.WithGroup(name)
	c.inGroup = true
	return &c
}
