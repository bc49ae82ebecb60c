// Package middleware holds the HTTP middleware of the hardening layer: the
// request context (RequestContext: request ID, client IP through trusted
// proxies, response recording), per-request metrics and span naming
// (Telemetry), access logging (AccessLog), panic recovery (Recover), CORS,
// the fixed-window rate limiter (RateLimit) and the request body limit
// (BodyLimit), with the client identity every limiter keys by (IPv6 by
// prefix, ClientIdentity) and the one "shared store, then in-process
// fallback, then fail-open" decision (WithFallback).
//
// Middleware here never imports the service package. Where a middleware has to
// answer with an error (413, 429, 500) it calls an ErrorResponder that the
// caller passes in, so every error body is the service's one envelope.
package middleware
