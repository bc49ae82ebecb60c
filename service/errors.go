package service

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/service/user"
)

// Error is an API error: an HTTP status, a message safe to show, optional
// details (CONTRACT §2), and the cause, which is logged but never sent.
type Error struct {
	Status  int
	Message string
	Details any
	Err     error
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up).
	RetryAfter time.Duration
	// Header holds extra response headers (e.g. X-RateLimit-*).
	Header http.Header
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// FieldError is one entry of a 422's details.errors.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// validation returns a 422 with one entry per field.
func validation(errs ...FieldError) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Message: "Validation Error",
		Details: map[string][]FieldError{"errors": errs}}
}

// CodeForStatus is the one table from HTTP status to envelope code. Statuses
// it does not list get a stable code derived from the status text
// ("im_a_teapot"), or "http_<status>" when there is none.
func CodeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "payload_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusUnprocessableEntity:
		return "validation_error"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusInternalServerError:
		return "internal_error"
	case http.StatusServiceUnavailable:
		return "service_unavailable"
	case StatusClientClosedRequest:
		return "client_closed_request"
	}
	text := http.StatusText(status)
	if text == "" {
		return "http_" + itoa(status)
	}
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	return strings.TrimSuffix(b.String(), "_")
}

func itoa(n int) string {
	if n <= 0 || n > 999 {
		return "0"
	}
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}

// defaultMessage is the message for a status when the caller gives none. 500
// is always "Internal Server Error": nothing about the cause leaks.
func defaultMessage(status int) string {
	switch status {
	case http.StatusConflict:
		return "Resource already exists"
	case http.StatusRequestEntityTooLarge:
		return "Request body too large"
	case http.StatusTooManyRequests:
		return "Too Many Requests"
	case http.StatusServiceUnavailable:
		return "Service Unavailable"
	case StatusClientClosedRequest:
		return "Client Closed Request"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}

type envelope struct {
	Error envelopeBody `json:"error"`
}

type envelopeBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Details   any    `json:"details"`
}

// writeEnvelope writes the error envelope. The request_id is the one already
// on the response's X-Request-ID header, so body and header always agree.
func writeEnvelope(w http.ResponseWriter, status int, message string, details any) {
	if message == "" || status == http.StatusInternalServerError {
		message = defaultMessage(status)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", "Bearer")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(envelope{Error: envelopeBody{
		Code:      CodeForStatus(status),
		Message:   message,
		RequestID: h.Get(middleware.HeaderRequestID),
		Details:   details,
	}})
}

// respondStatus is the middleware.ErrorResponder of the service: middleware
// errors (413, 429, 500 after a panic) get the same envelope and logging as
// handler errors.
//
// Middleware that answers 5xx has logged the cause itself (Recover logs the
// panic with its stack), so only 4xx are logged here.
func (s *Server) respondStatus(w http.ResponseWriter, r *http.Request, status int, message string) {
	if status < 500 {
		s.logError(r, status, message, nil, false)
	}
	writeEnvelope(w, status, message, nil)
}

// StatusClientClosedRequest (499, as nginx logs it) is the status recorded
// for a request whose client hung up before it was answered: it is a 4xx in
// logs and metrics (CONTRACT §10), never a 5xx series or an ERROR line. The
// client is gone, so nobody reads the envelope written with it.
const StatusClientClosedRequest = 499

// retryShortly is the Retry-After of the 503s that a retry a moment later
// can clear (hashing at capacity, the cache fence unavailable).
const retryShortly = time.Second

// respondError maps err to a status and writes the envelope. Unknown errors
// are 500s: logged at ERROR with a stack trace, answered with nothing of them.
// Whatever err is, a request whose client has gone is a 499.
func (s *Server) respondError(w http.ResponseWriter, r *http.Request, err error) {
	var apiErr *Error
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(context.Cause(r.Context()), context.Canceled):
		apiErr = &Error{Status: StatusClientClosedRequest, Message: "Client closed the request", Err: err}
	case errors.As(err, &apiErr):
	case errors.As(err, &tooLarge):
		apiErr = &Error{Status: http.StatusRequestEntityTooLarge, Err: err}
	case errors.Is(err, user.ErrNotFound):
		apiErr = &Error{Status: http.StatusNotFound, Err: err}
	case errors.Is(err, user.ErrConflict):
		apiErr = &Error{Status: http.StatusConflict, Err: err}
	case errors.Is(err, user.ErrUnavailable):
		apiErr = &Error{Status: http.StatusServiceUnavailable, Err: err}
	case errors.Is(err, ErrHashBusy):
		apiErr = &Error{Status: http.StatusServiceUnavailable, Err: err, RetryAfter: retryShortly,
			Message: "Too many password operations in progress, retry shortly"}
	default:
		apiErr = &Error{Status: http.StatusInternalServerError, Err: err}
	}
	for k, v := range apiErr.Header {
		w.Header()[k] = v
	}
	if apiErr.RetryAfter > 0 {
		w.Header().Set("Retry-After", middleware.RetryAfterSeconds(apiErr.RetryAfter))
	}
	s.logError(r, apiErr.Status, apiErr.Message, apiErr.Err, apiErr.Status >= 500)
	writeEnvelope(w, apiErr.Status, apiErr.Message, apiErr.Details)
}

// logError follows CONTRACT §2: 4xx at INFO without a stack, 5xx at ERROR
// (with the stack when the error came from code rather than a middleware).
func (s *Server) logError(r *http.Request, status int, message string, cause error, stack bool) {
	ctx := r.Context()
	attrs := []slog.Attr{
		slog.Int("status", status),
		slog.String("code", CodeForStatus(status)),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
	}
	if message != "" {
		attrs = append(attrs, slog.String("message", message))
	}
	if cause != nil {
		attrs = append(attrs, slog.String("error", cause.Error()))
	}
	if status < 500 {
		s.logger.LogAttrs(ctx, slog.LevelInfo, "request error", attrs...)
		return
	}
	if stack {
		attrs = append(attrs, slog.String("stack", string(debug.Stack())))
	}
	s.logger.LogAttrs(ctx, slog.LevelError, "request failed", attrs...)
}
