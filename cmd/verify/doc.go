// Command verify checks a running bulwark end to end, as an operator would
// after "make up" or "make run". It is the Go version of the seed's
// verify_prod_hardening.py.
//
// Usage:
//
//	verify [flags] [BASE_URL]      (default BASE_URL http://localhost:8000)
//
// Checks, in order; the first failure stops the run:
//
//	health              GET /health: 200, body exactly {"status":"ok"},
//	                    Content-Type application/json, an X-Request-ID
//	request id          an X-Request-ID sent on /health comes back unchanged
//	not found envelope  GET /api/v1/does-not-exist: 404, the error envelope
//	                    with code not_found, message "Not Found", details
//	                    null, and request_id equal to the X-Request-ID header
//	readiness           GET /api/v1/health/ready: 200, status ok, each check
//	                    ok or disabled (--require-deps: every check ok)
//	rate limit headers  X-RateLimit-Limit/-Remaining/-Reset on that 404 are
//	                    integers, Reset in epoch seconds; their absence means
//	                    rate limiting is off: this and the 429 check print a
//	                    SKIP line (--require-rate-limit: a failure instead)
//	create user         POST /api/v1/users: 201, Location, a UserPublic
//	                    (with --email: 409 is accepted, the user exists)
//	login               POST /auth/login (form): 200 bearer token whose sub is
//	                    the user's id
//	get user twice      GET /api/v1/users/{id} twice: 200, the same UserPublic
//	                    (the second read may come from the cache)
//	credential change   a user of its own: PATCH of its password without
//	                    current_password is 422 naming it, with it 200; the
//	                    token issued before is then 401 and the new password
//	                    logs in (CONTRACT §10 Credentials)
//	rate limited        GET /api/v1/users/me as the user until a 429: at most
//	                    X-RateLimit-Remaining + 5 requests (never more than
//	                    --max-requests); the 429 is the envelope with code
//	                    rate_limited, Retry-After in seconds, X-RateLimit-*
//	                    with Remaining 0
//
// Each passed check prints "ok   <check>: <what was seen>" on stdout, a
// skipped one "SKIP <check>: <why>". Success ends with
//
//	OK: prod hardening verification passed (<N> checks, <details>)
//
// and exit status 0. A failure prints one line on stderr,
//
//	FAIL <check>: want <expected>; got <status> "<body, truncated>"
//
// and exits 1; bad flags exit 2. Unless --email and --password are given, a
// new user verify+<random>@example.com with a random password is created on
// each run.
//
// Flags:
//
//	--timeout D           timeout of each request (default 10s)
//	--total-timeout D     timeout of the whole run (default 2m)
//	--email E             sign up (409 accepted) and log in as E
//	--password P          password for --email (required with it)
//	--max-requests N      hard cap on the requests of the 429 search (default 1000)
//	--require-rate-limit  fail when rate limiting is off
//	--require-deps        fail unless readiness reports db and redis "ok"
//
// Examples:
//
//	go run ./cmd/verify http://localhost:8000
//	go run ./cmd/verify --require-rate-limit --require-deps http://localhost:8000
package main
