package middleware

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/bulwark-go/bulwark/telemetry"
	"go.opentelemetry.io/otel/trace"
)

// HeaderRequestID is the header that carries the request ID both ways.
const HeaderRequestID = "X-Request-ID"

// headerRequestIDKey is HeaderRequestID in canonical form, for direct map
// access: Header.Get and Set would canonicalise (and allocate) every time.
const headerRequestIDKey = "X-Request-Id"

// ErrorResponder writes the service's error envelope for status. Middleware
// sets any extra headers (Retry-After, Allow, ...) before calling it.
type ErrorResponder func(w http.ResponseWriter, r *http.Request, status int, message string)

type ctxKey struct{}

// state is everything the middleware chain knows about one request. It is
// allocated once per request, together with the response recorder, so the
// chain adds one context value and one request copy however many middlewares
// read it. It is itself that context value: it embeds the request's context
// and answers Value(ctxKey{}) with itself, which saves the context.WithValue
// allocation.
type state struct {
	context.Context
	rec       recorder
	requestID string
	clientIP  string
	route     string
	start     time.Time
	tags      [3]telemetry.Tag // metric tags, kept here so recording them allocates nothing
}

// Value implements context.Context: the state for ctxKey, else the parent's
// value.
func (s *state) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return s
	}
	return s.Context.Value(key)
}

func stateFrom(ctx context.Context) *state {
	s, _ := ctx.Value(ctxKey{}).(*state)
	return s
}

// RequestIDFromContext returns the request ID assigned by RequestContext, or ""
// outside a request.
func RequestIDFromContext(ctx context.Context) string {
	if s := stateFrom(ctx); s != nil {
		return s.requestID
	}
	return ""
}

// ClientIPFromContext returns the client IP resolved by RequestContext.
func ClientIPFromContext(ctx context.Context) string {
	if s := stateFrom(ctx); s != nil {
		return s.clientIP
	}
	return ""
}

// SetRoute records the matched route pattern (without the method) for the
// request in ctx. The router calls it once it has matched; requests that never
// match keep the route "unmatched".
func SetRoute(ctx context.Context, route string) {
	if s := stateFrom(ctx); s != nil {
		s.route = route
	}
}

// RouteFromContext returns the route recorded by SetRoute, or RouteUnmatched.
func RouteFromContext(ctx context.Context) string {
	if s := stateFrom(ctx); s != nil {
		return s.route
	}
	return RouteUnmatched
}

// RouteUnmatched is the route tag of requests no route pattern matched.
const RouteUnmatched = "unmatched"

// RequestContext is the outermost middleware of the chain (inside tracing). It
// assigns the request ID (CONTRACT §3), resolves the client IP through proxies,
// sets X-Request-ID on the response and records status and size for the
// middlewares inside it.
//
// An incoming X-Request-ID is kept when ValidRequestID accepts it. Otherwise the
// ID is the trace ID of the active span when there is one, else 32 random hex
// characters.
func RequestContext(proxies *TrustedProxies) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := &state{Context: r.Context(), start: time.Now(), route: RouteUnmatched}
			s.rec.ResponseWriter = w
			if v := r.Header[headerRequestIDKey]; len(v) > 0 { // = r.Header.Get(HeaderRequestID)
				s.requestID = v[0]
			}
			if !ValidRequestID(s.requestID) {
				s.requestID = newRequestID(r.Context())
			}
			s.clientIP = proxies.ClientIP(r)
			w.Header()[headerRequestIDKey] = []string{s.requestID} // = Header().Set
			next.ServeHTTP(&s.rec, r.WithContext(s))
		})
	}
}

// MaxRequestIDLength is the longest incoming X-Request-ID that is kept.
const MaxRequestIDLength = 128

// ValidRequestID reports whether id may be kept as a request ID: 1 to
// MaxRequestIDLength characters from [A-Za-z0-9._:-].
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > MaxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

func newRequestID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b[:])
}

// recorder remembers the status and the number of body bytes written.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 && code >= 200 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(p []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(p)
	rw.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush,
// deadlines, hijack).
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Status is the status written so far (200 when only a body was written, 0
// when nothing was written yet).
func (rw *recorder) Status() int { return rw.status }

// ResponseStatus returns the status written for the request in ctx so far.
func ResponseStatus(ctx context.Context) int {
	if s := stateFrom(ctx); s != nil {
		return s.rec.status
	}
	return 0
}

// HeaderWritten reports whether the response headers for the request in ctx
// have been sent, after which an error envelope can no longer be written.
func HeaderWritten(ctx context.Context) bool { return ResponseStatus(ctx) != 0 }
