package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// extraRequests is how many requests past the advertised
// X-RateLimit-Remaining the 429 search allows (a window may roll over, or
// other clients share the bucket).
const extraRequests = 5

// maxBody caps what is read of one response.
const maxBody = 1 << 20

// run is the whole program: it parses args, runs the checks in order and
// returns the exit code. Each passed check prints "ok   <check>: ..." on
// stdout; the first failure prints "FAIL <check>: want ...; got ..." on
// stderr and stops the run.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, code, ok := parseFlags(args, stderr)
	if !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.totalTimeout)
	defer cancel()
	v := &verifier{cfg: cfg, out: stdout, client: &http.Client{
		Timeout: cfg.timeout,
		// A redirect is an answer to check, not to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	if !cfg.givenUser {
		v.email = "verify+" + randomHex(6) + "@example.com"
		v.password = randomHex(12)
	} else {
		v.email, v.password = cfg.email, cfg.password
	}
	for _, c := range []struct {
		name string
		fn   func(context.Context) (string, error)
	}{
		{"health", v.health},
		{"request id", v.requestID},
		{"not found envelope", v.notFound},
		{"readiness", v.readiness},
		{"rate limit headers", v.rateLimitHeaders},
		{"create user", v.createUser},
		{"login", v.login},
		{"get user twice", v.getUserTwice},
		{"credential change", v.credentialChange},
		{"rate limited", v.rateLimited},
	} {
		detail, err := c.fn(ctx)
		var s skipped
		switch {
		case errors.As(err, &s):
			fmt.Fprintf(stdout, "SKIP %s: %s\n", c.name, s.reason)
			v.skipped = append(v.skipped, c.name)
		case err != nil:
			msg := err.Error()
			if ctx.Err() != nil {
				msg += fmt.Sprintf(" (--total-timeout %s reached)", cfg.totalTimeout)
			}
			fmt.Fprintf(stderr, "FAIL %s: %s\n", c.name, msg)
			return exitFail
		default:
			fmt.Fprintf(stdout, "ok   %s: %s\n", c.name, detail)
			v.passed++
		}
	}
	summary := []string{fmt.Sprintf("%d checks", v.passed)}
	if len(v.skipped) > 0 {
		summary = append(summary, fmt.Sprintf("%d skipped", len(v.skipped)))
	}
	summary = append(summary, v.details...)
	fmt.Fprintf(stdout, "OK: prod hardening verification passed (%s)\n", strings.Join(summary, ", "))
	return exitOK
}

// skipped is returned by a check that does not apply.
type skipped struct{ reason string }

func (s skipped) Error() string { return "skipped: " + s.reason }

type verifier struct {
	cfg     config
	client  *http.Client
	out     io.Writer
	passed  int
	skipped []string
	details []string // for the final line

	notFoundResp *response // the 404 of /api/v1/does-not-exist
	limited      bool      // rate limiting is on
	limit        int64     // its X-RateLimit-Limit
	email        string
	password     string
	userID       string
	token        string
}

type response struct {
	method, url string
	status      int
	header      http.Header
	body        []byte
}

// got describes a response for a failure message: status, a truncated body,
// and a hint when it was a 429.
func (r *response) got() string {
	s := fmt.Sprintf("%d %s", r.status, truncate(r.body))
	if r.status == http.StatusTooManyRequests {
		s += fmt.Sprintf(" (rate limited: X-RateLimit-Limit %q is too low for verify, which needs about 5 requests per window per client; wait Retry-After %qs or raise RATE_LIMIT_REQUESTS)",
			r.header.Get("X-RateLimit-Limit"), r.header.Get("Retry-After"))
	}
	return s
}

func truncate(b []byte) string {
	const max = 200
	if len(b) <= max {
		return strconv.Quote(string(b))
	}
	return strconv.Quote(string(b[:max])) + fmt.Sprintf("... (%d bytes)", len(b))
}

// do sends one request. A transport error (refused, timed out) is returned
// as the failure; any HTTP status is a response for the check to judge.
func (v *verifier) do(ctx context.Context, method, path string, body []byte, header map[string]string) (*response, error) {
	u := v.cfg.base + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "bulwark-verify")
	for k, val := range header {
		req.Header.Set(k, val)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		msg := err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			msg = ue.Err.Error()
			if ue.Timeout() && ctx.Err() == nil {
				msg += fmt.Sprintf(" (--timeout %s)", v.cfg.timeout)
			}
		}
		return nil, fmt.Errorf("want a response to %s %s; got %s", method, u, msg)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("want the body of %s %s; got %d and a read error: %v", method, u, resp.StatusCode, err)
	}
	return &response{method: method, url: u, status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func (v *verifier) health(ctx context.Context) (string, error) {
	r, err := v.do(ctx, http.MethodGet, "/health", nil, nil)
	if err != nil {
		return "", err
	}
	if r.status != http.StatusOK || string(r.body) != `{"status":"ok"}` {
		return "", fmt.Errorf(`want 200 with body {"status":"ok"} (15 bytes); got %s`, r.got())
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		return "", fmt.Errorf("want Content-Type application/json; got %q", ct)
	}
	id := r.header.Get("X-Request-ID")
	if id == "" {
		return "", fmt.Errorf("want an X-Request-ID header; got none (%s)", r.got())
	}
	return fmt.Sprintf(`200 {"status":"ok"}, X-Request-ID %s`, id), nil
}

// requestID sends an X-Request-ID of its own: the service keeps a valid one.
func (v *verifier) requestID(ctx context.Context) (string, error) {
	id := "verify-" + randomHex(8)
	r, err := v.do(ctx, http.MethodGet, "/health", nil, map[string]string{"X-Request-ID": id})
	if err != nil {
		return "", err
	}
	if got := r.header.Get("X-Request-ID"); got != id {
		return "", fmt.Errorf("want the X-Request-ID sent (%s) back; got %q (%s)", id, got, r.got())
	}
	return "X-Request-ID " + id + " kept", nil
}

type envelope struct {
	Error struct {
		Code      string          `json:"code"`
		Message   string          `json:"message"`
		RequestID string          `json:"request_id"`
		Details   json.RawMessage `json:"details"`
	} `json:"error"`
}

// checkEnvelope checks the CONTRACT §2 error body of r: status, content
// type, exactly the envelope's fields, code, a message, details null, and
// request_id equal to the X-Request-ID header.
func checkEnvelope(r *response, status int, code string) (envelope, error) {
	var env envelope
	if r.status != status {
		return env, fmt.Errorf("want %d; got %s", status, r.got())
	}
	if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); mt != "application/json" {
		return env, fmt.Errorf("want Content-Type application/json; got %q (%s)", r.header.Get("Content-Type"), r.got())
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || dec.More() {
		return env, fmt.Errorf(`want the envelope {"error":{"code","message","request_id","details"}}; got %s`, r.got())
	}
	var fields map[string]map[string]json.RawMessage
	_ = json.Unmarshal(r.body, &fields)
	for _, k := range []string{"code", "message", "request_id", "details"} {
		if _, ok := fields["error"][k]; !ok {
			return env, fmt.Errorf("want error.%s in the envelope; got %s", k, r.got())
		}
	}
	switch {
	case env.Error.Code != code:
		return env, fmt.Errorf("want error.code %q; got %q (%s)", code, env.Error.Code, r.got())
	case env.Error.Message == "":
		return env, fmt.Errorf("want a non-empty error.message; got %s", r.got())
	case string(env.Error.Details) != "null":
		return env, fmt.Errorf("want error.details null; got %s", env.Error.Details)
	case r.header.Get("X-Request-ID") == "":
		return env, fmt.Errorf("want an X-Request-ID header; got none (%s)", r.got())
	case env.Error.RequestID != r.header.Get("X-Request-ID"):
		return env, fmt.Errorf("want error.request_id equal to the X-Request-ID header %q; got %q", r.header.Get("X-Request-ID"), env.Error.RequestID)
	}
	return env, nil
}

func (v *verifier) notFound(ctx context.Context) (string, error) {
	r, err := v.do(ctx, http.MethodGet, "/api/v1/does-not-exist", nil, nil)
	if err != nil {
		return "", err
	}
	env, err := checkEnvelope(r, http.StatusNotFound, "not_found")
	if err != nil {
		return "", err
	}
	if env.Error.Message != "Not Found" {
		return "", fmt.Errorf("want error.message %q; got %q", "Not Found", env.Error.Message)
	}
	v.notFoundResp = r
	return "404 not_found, request_id = X-Request-ID " + env.Error.RequestID, nil
}

func (v *verifier) readiness(ctx context.Context) (string, error) {
	r, err := v.do(ctx, http.MethodGet, "/api/v1/health/ready", nil, nil)
	if err != nil {
		return "", err
	}
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &body) != nil || body.Status != "ok" || body.Checks == nil {
		return "", fmt.Errorf(`want 200 {"status":"ok","checks":{...}}; got %s`, r.got())
	}
	names := make([]string, 0, len(body.Checks))
	for name := range body.Checks {
		names = append(names, name)
	}
	slices.Sort(names)
	var parts []string
	for _, name := range names {
		state := body.Checks[name]
		switch {
		case state != "ok" && state != "disabled":
			return "", fmt.Errorf(`want every check "ok" or "disabled"; got %s=%q (%s)`, name, state, r.got())
		case state != "ok" && v.cfg.requireDeps:
			return "", fmt.Errorf(`want every check "ok" (--require-deps); got %s=%q`, name, state)
		}
		parts = append(parts, name+"="+state)
	}
	if v.cfg.requireDeps {
		for _, name := range []string{"db", "redis"} {
			if body.Checks[name] != "ok" {
				return "", fmt.Errorf(`want checks.%s "ok" (--require-deps); got %s`, name, r.got())
			}
		}
	}
	detail := "readiness " + strings.Join(parts, " ")
	v.details = append(v.details, detail)
	return "200 ok, " + strings.Join(parts, " "), nil
}

// rateLimitInfo parses the X-RateLimit-* headers of r. present is false when
// X-RateLimit-Limit is absent.
func rateLimitInfo(r *response) (limit, remaining, reset int64, present bool, err error) {
	if r.header.Get("X-RateLimit-Limit") == "" {
		return 0, 0, 0, false, nil
	}
	var vals [3]int64
	for i, h := range [...]string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		raw := r.header.Get(h)
		n, perr := strconv.ParseInt(raw, 10, 64)
		if perr != nil || n < 0 {
			return 0, 0, 0, true, fmt.Errorf("want %s to be a non-negative integer; got %q on %s %s", h, raw, r.method, r.url)
		}
		vals[i] = n
	}
	limit, remaining, reset = vals[0], vals[1], vals[2]
	switch now := time.Now().Unix(); {
	case remaining > limit:
		return 0, 0, 0, true, fmt.Errorf("want X-RateLimit-Remaining <= X-RateLimit-Limit; got %d > %d", remaining, limit)
	case reset < now-5:
		return 0, 0, 0, true, fmt.Errorf("want X-RateLimit-Reset in epoch seconds, not before now (%d); got %d", now, reset)
	}
	return limit, remaining, reset, true, nil
}

// rateLimitHeaders decides whether rate limiting is on, from the 404 of
// /api/v1/does-not-exist, which is in its scope.
func (v *verifier) rateLimitHeaders(context.Context) (string, error) {
	r := v.notFoundResp
	limit, remaining, reset, present, err := rateLimitInfo(r)
	if err != nil {
		return "", err
	}
	if !present {
		if v.cfg.requireRateLimit {
			return "", fmt.Errorf("want X-RateLimit-Limit on GET /api/v1/does-not-exist (--require-rate-limit); got no rate-limit headers")
		}
		v.details = append(v.details, "rate limiting off")
		return "", skipped{"rate limiting is off (no X-RateLimit-Limit on GET /api/v1/does-not-exist); the 429 check is skipped too. Start the service with RATE_LIMIT_ENABLED=true to check it"}
	}
	v.limited, v.limit = true, limit
	return fmt.Sprintf("X-RateLimit-Limit %d, X-RateLimit-Remaining %d, X-RateLimit-Reset in %ds", limit, remaining, reset-time.Now().Unix()), nil
}

// userPublic decodes and checks a UserPublic: exactly its six fields.
func userPublic(r *response) (map[string]any, error) {
	var u map[string]any
	if json.Unmarshal(r.body, &u) != nil {
		return nil, fmt.Errorf("want a UserPublic JSON object; got %s", r.got())
	}
	want := []string{"created_at", "email", "full_name", "id", "is_active", "is_superuser"}
	keys := make([]string, 0, len(u))
	for k := range u {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		return nil, fmt.Errorf("want UserPublic fields %v; got %v (%s)", want, keys, r.got())
	}
	if _, ok := u["id"].(string); !ok {
		return nil, fmt.Errorf("want a string id; got %s", r.got())
	}
	return u, nil
}

func (v *verifier) createUser(ctx context.Context) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": v.email, "password": v.password, "full_name": "bulwark verify"})
	r, err := v.do(ctx, http.MethodPost, "/api/v1/users", body, map[string]string{"Content-Type": "application/json"})
	if err != nil {
		return "", err
	}
	if r.status == http.StatusConflict && v.cfg.givenUser {
		if _, err := checkEnvelope(r, http.StatusConflict, "conflict"); err != nil {
			return "", err
		}
		v.details = append(v.details, "user "+v.email+" (existing)")
		return "409 conflict: " + v.email + " exists, logging in", nil
	}
	if r.status != http.StatusCreated {
		return "", fmt.Errorf("want 201 for POST /api/v1/users %s; got %s", v.email, r.got())
	}
	u, err := userPublic(r)
	if err != nil {
		return "", err
	}
	v.userID = u["id"].(string)
	if u["email"] != strings.ToLower(v.email) {
		return "", fmt.Errorf("want email %q; got %v", strings.ToLower(v.email), u["email"])
	}
	loc := r.header.Get("Location")
	if !strings.HasSuffix(loc, "/api/v1/users/"+v.userID) {
		return "", fmt.Errorf("want Location /api/v1/users/%s; got %q", v.userID, loc)
	}
	v.details = append(v.details, "user "+v.email)
	return fmt.Sprintf("201 %s, Location %s", v.email, loc), nil
}

// loginAs logs in with the password form and returns the bearer token.
func (v *verifier) loginAs(ctx context.Context, email, password string) (string, error) {
	form := url.Values{"username": {email}, "password": {password}}
	r, err := v.do(ctx, http.MethodPost, "/auth/login", []byte(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if err != nil {
		return "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &tok) != nil || tok.AccessToken == "" || tok.TokenType != "bearer" {
		return "", fmt.Errorf(`want 200 {"access_token":"...","token_type":"bearer"} for %s; got %s`, email, r.got())
	}
	return tok.AccessToken, nil
}

func (v *verifier) login(ctx context.Context) (string, error) {
	token, err := v.loginAs(ctx, v.email, v.password)
	if err != nil {
		return "", err
	}
	sub, err := jwtSubject(token)
	if err != nil {
		return "", fmt.Errorf("want a JWT access_token with a sub; got %v", err)
	}
	if v.userID == "" {
		v.userID = sub
	} else if sub != v.userID {
		return "", fmt.Errorf("want token sub %s (the new user's id); got %q", v.userID, sub)
	}
	v.token = token
	return "200 bearer token for user " + v.userID, nil
}

// jwtSubject reads the sub claim of a JWT without verifying it: verify only
// needs the user id the service put there.
func jwtSubject(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("%d parts, not 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("payload: %v", err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Sub == "" {
		return "", errors.New("no sub claim")
	}
	return claims.Sub, nil
}

func (v *verifier) bearer() map[string]string {
	return map[string]string{"Authorization": "Bearer " + v.token}
}

// getUserTwice reads the user twice: the second read may come from the
// cache and must be the same UserPublic.
func (v *verifier) getUserTwice(ctx context.Context) (string, error) {
	path := "/api/v1/users/" + v.userID
	var first []byte
	for i := range 2 {
		r, err := v.do(ctx, http.MethodGet, path, nil, v.bearer())
		if err != nil {
			return "", err
		}
		if r.status != http.StatusOK {
			return "", fmt.Errorf("want 200 for GET %s (read %d of 2); got %s", path, i+1, r.got())
		}
		u, err := userPublic(r)
		if err != nil {
			return "", err
		}
		if u["id"] != v.userID {
			return "", fmt.Errorf("want id %s; got %v", v.userID, u["id"])
		}
		if i == 0 {
			first = r.body
		} else if !bytes.Equal(bytes.TrimSpace(first), bytes.TrimSpace(r.body)) {
			return "", fmt.Errorf("want the same UserPublic twice; got %s then %s", truncate(first), truncate(r.body))
		}
	}
	return "200 twice, same UserPublic", nil
}

// credentialChange signs up a user of its own (so the main user's rate-limit
// budget and password stay as they are), then changes its password: without
// current_password the service must answer 422 naming it; with it, 200; the
// token issued before the change must then get 401, and the new password
// must log in.
func (v *verifier) credentialChange(ctx context.Context) (string, error) {
	email, oldPW, newPW := "verify+cred-"+randomHex(6)+"@example.com", randomHex(12), randomHex(12)
	body, _ := json.Marshal(map[string]string{"email": email, "password": oldPW})
	r, err := v.do(ctx, http.MethodPost, "/api/v1/users", body, map[string]string{"Content-Type": "application/json"})
	if err != nil {
		return "", err
	}
	if r.status != http.StatusCreated {
		return "", fmt.Errorf("want 201 for POST /api/v1/users %s; got %s", email, r.got())
	}
	u, err := userPublic(r)
	if err != nil {
		return "", err
	}
	path := "/api/v1/users/" + u["id"].(string)
	oldTok, err := v.loginAs(ctx, email, oldPW)
	if err != nil {
		return "", err
	}
	auth := map[string]string{"Authorization": "Bearer " + oldTok, "Content-Type": "application/json"}
	patch, _ := json.Marshal(map[string]string{"password": newPW})
	if r, err = v.do(ctx, http.MethodPatch, path, patch, auth); err != nil {
		return "", err
	}
	if err := checkValidation(r, "current_password"); err != nil {
		return "", fmt.Errorf("a password change without current_password: %w", err)
	}
	patch, _ = json.Marshal(map[string]string{"password": newPW, "current_password": oldPW})
	if r, err = v.do(ctx, http.MethodPatch, path, patch, auth); err != nil {
		return "", err
	}
	if r.status != http.StatusOK {
		return "", fmt.Errorf("want 200 for PATCH %s with current_password; got %s", path, r.got())
	}
	if r, err = v.do(ctx, http.MethodGet, "/api/v1/users/me", nil, auth); err != nil {
		return "", err
	}
	if _, err := checkEnvelope(r, http.StatusUnauthorized, "unauthorized"); err != nil {
		return "", fmt.Errorf("the token issued before the password change: %w", err)
	}
	if _, err := v.loginAs(ctx, email, newPW); err != nil {
		return "", err
	}
	return "422 without current_password, 200 with it, then 401 for the old token, 200 login with the new password", nil
}

// checkValidation checks a 422 validation_error whose details name field.
func checkValidation(r *response, field string) error {
	if r.status != http.StatusUnprocessableEntity {
		return fmt.Errorf("want 422; got %s", r.got())
	}
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Details struct {
				Errors []struct{ Field string } `json:"errors"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(r.body, &env) != nil || env.Error.Code != "validation_error" {
		return fmt.Errorf("want the validation_error envelope; got %s", r.got())
	}
	for _, e := range env.Error.Details.Errors {
		if e.Field == field {
			return nil
		}
	}
	return fmt.Errorf("want details.errors naming %s; got %s", field, r.got())
}

// rateLimited requests GET /api/v1/users/me as the user until a 429 comes,
// at most X-RateLimit-Remaining (of the first answer) + extraRequests times
// and never more than --max-requests, and checks the 429.
func (v *verifier) rateLimited(ctx context.Context) (string, error) {
	if !v.limited {
		return "", skipped{"rate limiting is off"}
	}
	const path = "/api/v1/users/me"
	bound := int64(v.cfg.maxRequests)
	var last *response
	var firstRemaining int64
	for n := int64(1); n <= bound; n++ {
		r, err := v.do(ctx, http.MethodGet, path, nil, v.bearer())
		if err != nil {
			return "", err
		}
		last = r
		if r.status == http.StatusTooManyRequests {
			if err := checkRateLimited(r); err != nil {
				return "", err
			}
			v.details = append(v.details, fmt.Sprintf("429 after %d requests", n))
			return fmt.Sprintf("429 rate_limited after %d requests, Retry-After %ss", n, r.header.Get("Retry-After")), nil
		}
		if r.status != http.StatusOK {
			return "", fmt.Errorf("want 200 or 429 for GET %s (request %d); got %s", path, n, r.got())
		}
		_, remaining, _, present, err := rateLimitInfo(r)
		if err != nil {
			return "", err
		}
		if !present {
			return "", fmt.Errorf("want X-RateLimit-* headers on GET %s (request %d); got none", path, n)
		}
		if n == 1 {
			need := 1 + remaining + extraRequests
			if need > int64(v.cfg.maxRequests) {
				return "", fmt.Errorf("want X-RateLimit-Remaining below --max-requests %d to search for a 429; got %d (raise --max-requests or lower RATE_LIMIT_REQUESTS)", v.cfg.maxRequests, remaining)
			}
			bound, firstRemaining = need, remaining
		}
	}
	return "", fmt.Errorf("want a 429 within %d requests of GET %s (1 + X-RateLimit-Remaining %d + %d; X-RateLimit-Limit %d); got none, the last was %d with X-RateLimit-Remaining %q",
		bound, path, firstRemaining, extraRequests, v.limit, last.status, last.header.Get("X-RateLimit-Remaining"))
}

// checkRateLimited checks a 429: the envelope, Retry-After and the
// X-RateLimit-* headers with nothing remaining.
func checkRateLimited(r *response) error {
	if _, err := checkEnvelope(r, http.StatusTooManyRequests, "rate_limited"); err != nil {
		return err
	}
	ra := r.header.Get("Retry-After")
	if n, err := strconv.ParseInt(ra, 10, 64); err != nil || n < 0 {
		return fmt.Errorf("want Retry-After in seconds on the 429; got %q", ra)
	}
	_, remaining, _, present, err := rateLimitInfo(r)
	switch {
	case err != nil:
		return err
	case !present:
		return fmt.Errorf("want X-RateLimit-* headers on the 429; got none")
	case remaining != 0:
		return fmt.Errorf("want X-RateLimit-Remaining 0 on the 429; got %d", remaining)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
