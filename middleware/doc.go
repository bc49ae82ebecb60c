// Package middleware holds the HTTP middleware of the hardening layer: the
// request context (request ID, client IP, response recording), access logging,
// panic recovery, the request body limit and the rate limiter, with the
// client identity every limiter keys by (IPv6 by prefix) and the one "shared
// store, then in-process fallback, then fail-open" decision (WithFallback).
//
// Middleware here never imports the service package. Where a middleware has to
// answer with an error (413, 429, 500) it calls an ErrorResponder that the
// caller passes in, so every error body is the service's one envelope.
package middleware
