// Package redis is bulwark's Redis backend for rate limiting and caching.
//
// A [Client] wraps one go-redis connection pool, instrumented with redisotel
// tracing and metrics, and hands out the two stores built on it: a fixed-window
// [RateStore] (one Lua script per hit: INCR, then PEXPIRE when the key is new
// or was found without a TTL) and a byte-value [Cache] (GET, SET PX, DEL).
//
// Both stores are meant to sit on the request path of a fail-open service, so
// every operation is bounded by [Options.OpTimeout] (50ms by default), is
// attempted exactly once (no client-side retries: under a slow or dead Redis
// retries only multiply the latency each request pays), and returns its error
// to the caller, who decides to fail open. [New] does not contact Redis: the
// service starts with Redis down and recovers once it is back; use
// [Client.Ping] for readiness.
//
// Callers pass full keys (for example "ratelimit:ip:203.0.113.7" or
// "cache:users:<uuid>"); this package adds no prefix of its own.
package redis
