package service_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/docs"
	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/service/user"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/storage/postgres"
	"github.com/bulwark-go/bulwark/storage/postgres/pgtest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// panicky wraps a store and panics on ByEmail for one address, to prove the
// recovery path through the real chain.
type panicky struct {
	user.Store
}

func (p panicky) ByEmail(ctx context.Context, email string) (user.User, error) {
	if email == "boom@example.com" {
		panic("secret internal detail: db password is hunter2")
	}
	return p.Store.ByEmail(ctx, email)
}

type env struct {
	t       *testing.T
	h       http.Handler
	spec    *spec // every response of do is validated against docs/openapi.yaml
	logs    *syncBuffer
	tokens  *service.Tokens
	remote  string // RemoteAddr of requests that set none ("" keeps httptest's 192.0.2.1:1234)
	super   string // superuser token
	superID string
	alice   account
	bob     account
	setup   envSetup
}

// sibling is a second server built like e's, sharing its store, tokens,
// cache and rate store: another instance of the same deployment.
func (e *env) sibling() *env {
	s := *e
	s.h = service.NewServer(e.setup.cfg, e.setup.deps)
	return &s
}

// envSetup is what newEnv builds the server from; envOptions change it
// (rate limiting, cache, tracing, the client address of the set-up requests).
type envSetup struct {
	cfg    service.Config
	deps   service.Deps
	remote string
}

type envOption func(*envSetup)

type account struct {
	id    string
	token string
}

func newEnv(t *testing.T, store user.Store, opts ...envOption) *env {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tokens := service.NewTokens(testSecret, time.Hour)
	setup := envSetup{
		cfg: service.Config{MaxBodyBytes: 4096},
		deps: service.Deps{
			Logger: logger,
			Users:  panicky{store},
			Tokens: tokens,
			Hasher: service.NewArgon2id(64, 1, 1),
			Checks: []service.Check{{Name: "db", Func: store.Ping}, {Name: "redis"}},
		},
	}
	for _, o := range opts {
		o(&setup)
	}
	srv := service.NewServer(setup.cfg, setup.deps)
	if err := srv.EnsureSuperuser(context.Background(), "root@example.com", "rootpassword"); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, h: srv, spec: newSpec(t), logs: logs, tokens: tokens, remote: setup.remote, setup: setup}
	e.super = e.login("root@example.com", "rootpassword")
	claims, err := tokens.Verify(e.super)
	if err != nil {
		t.Fatal(err)
	}
	e.superID = claims.UserID.String()
	e.alice = e.signup("alice@example.com", "alicepassword")
	e.bob = e.signup("bob@example.com", "bobpassword1")
	return e
}

type req struct {
	method, path string
	body         string
	ctype        string
	token        string
	header       map[string]string
	remote       string          // RemoteAddr; "" uses the env's
	ctx          context.Context // request context; nil uses the default
}

func (e *env) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	rec := e.spec.serve(e.t, e.h, e.request(r))
	if id := rec.Header().Get("X-Request-ID"); id == "" {
		e.t.Fatalf("%s %s: no X-Request-ID", r.method, r.path)
	}
	return rec
}

// serveRaw serves r without validating the exchange against the
// description: for answers no client receives (a 499 after a hang-up).
func (e *env) serveRaw(r req) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, e.request(r))
	return rec
}

func (e *env) request(r req) *http.Request {
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.ctype != "" {
		hr.Header.Set("Content-Type", r.ctype)
	} else if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	} else if e.remote != "" {
		hr.RemoteAddr = e.remote
	}
	if r.ctx != nil {
		hr = hr.WithContext(r.ctx)
	}
	return hr
}

func (e *env) login(email, password string) string {
	e.t.Helper()
	rec := e.do(req{method: "POST", path: "/auth/login", ctype: "application/x-www-form-urlencoded",
		body: "username=" + email + "&password=" + password})
	if rec.Code != 200 {
		e.t.Fatalf("login %s: %d %s", email, rec.Code, rec.Body)
	}
	var tok struct{ AccessToken, TokenType string }
	var raw map[string]string
	_ = json.Unmarshal(rec.Body.Bytes(), &raw)
	tok.AccessToken, tok.TokenType = raw["access_token"], raw["token_type"]
	if tok.TokenType != "bearer" || tok.AccessToken == "" {
		e.t.Fatalf("login body %s", rec.Body)
	}
	return tok.AccessToken
}

func (e *env) signup(email, password string) account {
	e.t.Helper()
	rec := e.do(req{method: "POST", path: "/api/v1/users", body: `{"email":"` + email + `","password":"` + password + `"}`})
	if rec.Code != 201 {
		e.t.Fatalf("signup %s: %d %s", email, rec.Code, rec.Body)
	}
	var u map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &u)
	id := u["id"].(string)
	if rec.Header().Get("Location") != "/api/v1/users/"+id {
		e.t.Fatalf("Location %q", rec.Header().Get("Location"))
	}
	return account{id: id, token: e.login(email, password)}
}

type envelope struct {
	Error struct {
		Code      string          `json:"code"`
		Message   string          `json:"message"`
		RequestID string          `json:"request_id"`
		Details   json.RawMessage `json:"details"`
	} `json:"error"`
}

// checkEnvelope asserts the CONTRACT §2 shape and returns it.
func checkEnvelope(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) envelope {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("body is not the envelope: %v: %s", err, rec.Body)
	}
	if env.Error.Code != code {
		t.Fatalf("code %q, want %q", env.Error.Code, code)
	}
	if env.Error.RequestID == "" || env.Error.RequestID != rec.Header().Get("X-Request-ID") {
		t.Fatalf("request_id %q, header %q", env.Error.RequestID, rec.Header().Get("X-Request-ID"))
	}
	if env.Error.Message == "" {
		t.Fatal("empty message")
	}
	if len(env.Error.Details) == 0 {
		t.Fatal("details missing (must be present, null when empty)")
	}
	return env
}

func stores(t *testing.T) map[string]func(t *testing.T) user.Store {
	return map[string]func(t *testing.T) user.Store{
		"memory":   func(*testing.T) user.Store { return memory.NewUsers() },
		"postgres": func(t *testing.T) user.Store { return pgtest.NewStore(t, postgres.Options{}) },
	}
}

func forge(t *testing.T, alg jwt.SigningMethod, key any, sub string, exp time.Time) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(alg, jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(exp)}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func algNone(sub string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		enc.EncodeToString([]byte(`{"sub":"`+sub+`","exp":`+jsonNum(time.Now().Add(time.Hour).Unix())+`}`)) + "."
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestAPI(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, newStore(t))
			runAPI(t, e)
			t.Logf("%d responses validated against docs/openapi.yaml", e.spec.validated.Load())
		})
	}
}

func runAPI(t *testing.T, e *env) {
	alice, bob := e.alice, e.bob
	unknown := uuid.New().String()
	expired := forge(t, jwt.SigningMethodHS256, testSecret, alice.id, time.Now().Add(-time.Minute))
	forged := forge(t, jwt.SigningMethodHS256, []byte("another secret another secret !!"), alice.id, time.Now().Add(time.Hour))
	hs512 := forge(t, jwt.SigningMethodHS512, testSecret, alice.id, time.Now().Add(time.Hour))
	ghost := forge(t, jwt.SigningMethodHS256, testSecret, unknown, time.Now().Add(time.Hour))
	notUUID := forge(t, jwt.SigningMethodHS256, testSecret, "admin", time.Now().Add(time.Hour))

	errorCases := []struct {
		name   string
		req    req
		status int
		code   string
		check  func(t *testing.T, rec *httptest.ResponseRecorder, env envelope)
	}{
		{"unknown path under api", req{method: "GET", path: "/api/v1/does-not-exist"}, 404, "not_found", nil},
		{"unknown path outside api", req{method: "GET", path: "/nope"}, 404, "not_found", nil},
		{"trailing slash is another path", req{method: "GET", path: "/api/v1/users/"}, 404, "not_found", nil},
		{"wrong method keeps Allow", req{method: "POST", path: "/health"}, 405, "method_not_allowed",
			func(t *testing.T, rec *httptest.ResponseRecorder, _ envelope) {
				if got := rec.Header().Get("Allow"); got != "GET, HEAD" {
					t.Fatalf("Allow %q", got)
				}
			}},
		{"wrong method on users/{id}", req{method: "PUT", path: "/api/v1/users/" + alice.id, token: alice.token}, 405, "method_not_allowed",
			func(t *testing.T, rec *httptest.ResponseRecorder, _ envelope) {
				if got := rec.Header().Get("Allow"); got != "DELETE, GET, HEAD, PATCH" {
					t.Fatalf("Allow %q", got)
				}
			}},
		{"no token", req{method: "GET", path: "/api/v1/users/me"}, 401, "unauthorized", nil},
		{"not a bearer scheme", req{method: "GET", path: "/api/v1/users/me", header: map[string]string{"Authorization": "Basic YTpi"}}, 401, "unauthorized", nil},
		{"expired token", req{method: "GET", path: "/api/v1/users/me", token: expired}, 401, "unauthorized", nil},
		{"forged signature", req{method: "GET", path: "/api/v1/users/me", token: forged}, 401, "unauthorized", nil},
		{"alg none", req{method: "GET", path: "/api/v1/users/me", token: algNone(alice.id)}, 401, "unauthorized", nil},
		{"other algorithm, right key", req{method: "GET", path: "/api/v1/users/me", token: hs512}, 401, "unauthorized", nil},
		{"token for a missing user", req{method: "GET", path: "/api/v1/users/me", token: ghost}, 401, "unauthorized", nil},
		{"token subject not a uuid", req{method: "GET", path: "/api/v1/users/me", token: notUUID}, 401, "unauthorized", nil},
		{"garbage token", req{method: "GET", path: "/api/v1/users/me", token: "a.b.c"}, 401, "unauthorized", nil},
		{"other user's id: 403", req{method: "GET", path: "/api/v1/users/" + bob.id, token: alice.token}, 403, "forbidden", nil},
		{"unknown id for a non-superuser: 403 not 404", req{method: "GET", path: "/api/v1/users/" + unknown, token: alice.token}, 403, "forbidden", nil},
		{"unknown id for the superuser: 404", req{method: "GET", path: "/api/v1/users/" + unknown, token: e.super}, 404, "not_found", nil},
		{"malformed id", req{method: "GET", path: "/api/v1/users/not-a-uuid", token: alice.token}, 422, "validation_error", fieldIs("id")},
		{"patch other user", req{method: "PATCH", path: "/api/v1/users/" + bob.id, token: alice.token, body: `{"full_name":"x"}`}, 403, "forbidden", nil},
		{"delete other user", req{method: "DELETE", path: "/api/v1/users/" + bob.id, token: alice.token}, 403, "forbidden", nil},
		{"self-promotion", req{method: "PATCH", path: "/api/v1/users/" + alice.id, token: alice.token, body: `{"is_superuser":true}`}, 403, "forbidden", nil},
		{"self-activation field", req{method: "PATCH", path: "/api/v1/users/" + alice.id, token: alice.token, body: `{"is_active":false}`}, 403, "forbidden", nil},
		{"list needs superuser", req{method: "GET", path: "/api/v1/users", token: alice.token}, 403, "forbidden", nil},
		{"list limit too big", req{method: "GET", path: "/api/v1/users?limit=101", token: e.super}, 422, "validation_error", fieldIs("limit")},
		{"list limit zero", req{method: "GET", path: "/api/v1/users?limit=0", token: e.super}, 422, "validation_error", fieldIs("limit")},
		{"list offset negative", req{method: "GET", path: "/api/v1/users?offset=-1", token: e.super}, 422, "validation_error", fieldIs("offset")},
		{"duplicate email", req{method: "POST", path: "/api/v1/users", body: `{"email":"ALICE@example.com","password":"whatever123"}`}, 409, "conflict", nil},
		{"patch to a taken email", req{method: "PATCH", path: "/api/v1/users/" + alice.id, token: alice.token, body: `{"email":"bob@example.com","current_password":"alicepassword"}`}, 409, "conflict", nil},
		{"own email change without current_password", req{method: "PATCH", path: "/api/v1/users/" + alice.id, token: alice.token, body: `{"email":"a3@example.com"}`}, 422, "validation_error", fieldIs("current_password")},
		{"own password change without current_password", req{method: "PATCH", path: "/api/v1/users/" + alice.id, token: alice.token, body: `{"password":"otherpassword"}`}, 422, "validation_error", fieldIs("current_password")},
		{"own password change, wrong current_password, never echoed", req{method: "PATCH", path: "/api/v1/users/" + alice.id, token: alice.token, body: `{"password":"otherpassword","current_password":"guessedpw1"}`}, 403, "forbidden",
			func(t *testing.T, rec *httptest.ResponseRecorder, _ envelope) {
				if strings.Contains(rec.Body.String(), "guessedpw1") || strings.Contains(rec.Body.String(), "otherpassword") {
					t.Fatalf("password echoed: %s", rec.Body)
				}
			}},
		{"current_password over 128 characters", req{method: "PATCH", path: "/api/v1/users/" + alice.id, token: alice.token, body: `{"password":"otherpassword","current_password":"` + strings.Repeat("x", 129) + `"}`}, 422, "validation_error", fieldIs("current_password")},
		{"current_password null", req{method: "PATCH", path: "/api/v1/users/" + alice.id, token: alice.token, body: `{"password":"otherpassword","current_password":null}`}, 422, "validation_error", fieldIs("current_password")},
		{"sign-up mass assignment", req{method: "POST", path: "/api/v1/users", body: `{"email":"m@example.com","password":"whatever123","is_superuser":true}`}, 422, "validation_error", fieldIs("is_superuser")},
		{"malformed JSON", req{method: "POST", path: "/api/v1/users", body: `{"email":`}, 422, "validation_error", fieldIs("body")},
		{"JSON not an object", req{method: "POST", path: "/api/v1/users", body: `[1,2]`}, 422, "validation_error", fieldIs("body")},
		{"trailing data", req{method: "POST", path: "/api/v1/users", body: `{"email":"t@example.com","password":"whatever123"} {}`}, 422, "validation_error", fieldIs("body")},
		{"wrong type", req{method: "POST", path: "/api/v1/users", body: `{"email":5,"password":"whatever123"}`}, 422, "validation_error", fieldIs("email")},
		{"bad email", req{method: "POST", path: "/api/v1/users", body: `{"email":"not-an-email","password":"whatever123"}`}, 422, "validation_error", fieldIs("email")},
		{"short password is never echoed", req{method: "POST", path: "/api/v1/users", body: `{"email":"s@example.com","password":"hunter2"}`}, 422, "validation_error",
			func(t *testing.T, rec *httptest.ResponseRecorder, env envelope) {
				fieldIs("password")(t, rec, env)
				if strings.Contains(rec.Body.String(), "hunter2") {
					t.Fatal("password echoed")
				}
			}},
		{"empty body", req{method: "POST", path: "/api/v1/users", ctype: "application/json"}, 422, "validation_error", fieldIs("body")},
		{"invalid UTF-8", req{method: "POST", path: "/api/v1/users", body: "{\"email\":\"\xff@example.com\",\"password\":\"whatever123\"}"}, 422, "validation_error", fieldIs("body")},
		{"patch null email", req{method: "PATCH", path: "/api/v1/users/" + alice.id, token: alice.token, body: `{"email":null}`}, 422, "validation_error", fieldIs("email")},
		{"patch unknown field", req{method: "PATCH", path: "/api/v1/users/" + alice.id, token: alice.token, body: `{"id":"x"}`}, 422, "validation_error", fieldIs("id")},
		{"wrong content type", req{method: "POST", path: "/api/v1/users", ctype: "text/plain", body: `{}`}, 415, "unsupported_media_type", nil},
		{"login wrong content type", req{method: "POST", path: "/auth/login", ctype: "text/plain", body: "x"}, 415, "unsupported_media_type", nil},
		{"oversize body (declared)", req{method: "POST", path: "/api/v1/users", body: `{"email":"` + strings.Repeat("a", 5000) + `"}`}, 413, "payload_too_large", nil},
		{"login bad password", req{method: "POST", path: "/auth/login", ctype: "application/x-www-form-urlencoded", body: "username=alice@example.com&password=wrongpassword"}, 401, "unauthorized", nil},
		{"login unknown user", req{method: "POST", path: "/auth/login", body: `{"username":"nobody@example.com","password":"whatever123"}`}, 401, "unauthorized", nil},
		{"login missing fields", req{method: "POST", path: "/auth/login", ctype: "application/x-www-form-urlencoded", body: "username=alice@example.com"}, 422, "validation_error", fieldIs("password")},
		{"panic is a clean 500", req{method: "POST", path: "/auth/login", body: `{"username":"boom@example.com","password":"whatever123"}`}, 500, "internal_error",
			func(t *testing.T, rec *httptest.ResponseRecorder, env envelope) {
				if env.Error.Message != "Internal Server Error" || strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "secret") {
					t.Fatalf("500 leaks: %s", rec.Body)
				}
			}},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(tc.req)
			env := checkEnvelope(t, rec, tc.status, tc.code)
			if tc.status == 401 && rec.Header().Get("WWW-Authenticate") != "Bearer" {
				t.Fatalf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
			}
			if tc.status != 422 && string(env.Error.Details) != "null" {
				t.Fatalf("details %s, want null", env.Error.Details)
			}
			if tc.check != nil {
				tc.check(t, rec, env)
			}
		})
	}

	t.Run("oversize body without Content-Length", func(t *testing.T) {
		hr := httptest.NewRequest("POST", "/api/v1/users", io.MultiReader(strings.NewReader(`{"email":"`), strings.NewReader(strings.Repeat("a", 5000))))
		hr.ContentLength = -1
		hr.Header.Set("Content-Type", "application/json")
		rec := e.spec.serve(t, e.h, hr)
		checkEnvelope(t, rec, 413, "payload_too_large")
	})

	t.Run("server keeps serving after a panic, and logs it", func(t *testing.T) {
		rec := e.do(req{method: "GET", path: "/health"})
		if rec.Code != 200 {
			t.Fatalf("after panic: %d", rec.Code)
		}
		logs := e.logs.String()
		var found bool
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, `"msg":"panic recovered"`) {
				found = true
				var m map[string]any
				_ = json.Unmarshal([]byte(line), &m)
				if m["level"] != "ERROR" || !strings.Contains(m["stack"].(string), "panicky") || m["method"] != "POST" {
					t.Fatalf("panic log line: %s", line)
				}
			}
		}
		if !found {
			t.Fatal("no panic log line")
		}
	})

	t.Run("success routes", func(t *testing.T) {
		rec := e.do(req{method: "GET", path: "/health"})
		if rec.Code != 200 || rec.Body.String() != `{"status":"ok"}` || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("/health: %d %q", rec.Code, rec.Body)
		}
		rec = e.do(req{method: "GET", path: "/api/v1/health/live"})
		if rec.Code != 200 || rec.Body.String() != `{"status":"ok"}` {
			t.Fatalf("live: %d %q", rec.Code, rec.Body)
		}
		rec = e.do(req{method: "GET", path: "/api/v1/health/ready"})
		if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"status":"ok","checks":{"db":"ok","redis":"disabled"}}` {
			t.Fatalf("ready: %d %q", rec.Code, rec.Body)
		}
		rec = e.do(req{method: "GET", path: "/api/v1/openapi.json"})
		if want, _ := docs.OpenAPIJSON(); rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), want) || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("openapi.json: %d %.200s", rec.Code, rec.Body)
		}
		rec = e.do(req{method: "GET", path: "/api/v1/users/me", token: alice.token})
		me := decodeUser(t, rec, 200)
		if me["id"] != alice.id || me["email"] != "alice@example.com" || me["is_superuser"] != false {
			t.Fatalf("me: %v", me)
		}
		rec = e.do(req{method: "GET", path: "/api/v1/users/" + alice.id, token: alice.token})
		decodeUser(t, rec, 200)
		rec = e.do(req{method: "GET", path: "/api/v1/users/" + alice.id, token: e.super})
		decodeUser(t, rec, 200)
		rec = e.do(req{method: "PATCH", path: "/api/v1/users/" + alice.id, token: alice.token, body: `{"full_name":"Alice A","email":"Alice2@Example.com","current_password":"alicepassword"}`})
		u := decodeUser(t, rec, 200)
		if u["full_name"] != "Alice A" || u["email"] != "alice2@example.com" {
			t.Fatalf("patched: %v", u)
		}
		// An email change keeps the token; a password change revokes it.
		decodeUser(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: alice.token}), 200)
		rec = e.do(req{method: "PATCH", path: "/api/v1/users/" + alice.id, token: alice.token, body: `{"full_name":null,"password":"newpassword1","current_password":"alicepassword"}`})
		if u := decodeUser(t, rec, 200); u["full_name"] != nil {
			t.Fatalf("full_name not cleared: %v", u)
		}
		checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: alice.token}), 401, "unauthorized")
		alice.token = e.login("alice2@example.com", "newpassword1")
		rec = e.do(req{method: "POST", path: "/auth/login", body: `{"username":"alice2@example.com","password":"newpassword1"}`})
		if rec.Code != 200 {
			t.Fatalf("JSON login: %d %s", rec.Code, rec.Body)
		}
		rec = e.do(req{method: "GET", path: "/api/v1/users?limit=2", token: e.super})
		var list struct {
			Data  []map[string]any `json:"data"`
			Count int              `json:"count"`
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &list) != nil || list.Count != 3 || len(list.Data) != 2 {
			t.Fatalf("list: %d %s", rec.Code, rec.Body)
		}
		// The superuser deactivates bob: his token stops working.
		rec = e.do(req{method: "PATCH", path: "/api/v1/users/" + bob.id, token: e.super, body: `{"is_active":false}`})
		decodeUser(t, rec, 200)
		checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: bob.token}), 401, "unauthorized")
		checkEnvelope(t, e.do(req{method: "POST", path: "/auth/login", ctype: "application/x-www-form-urlencoded", body: "username=bob@example.com&password=bobpassword1"}), 401, "unauthorized")
		// Alice deletes herself: 204, then her token is refused.
		rec = e.do(req{method: "DELETE", path: "/api/v1/users/" + alice.id, token: alice.token})
		if rec.Code != 204 || rec.Body.Len() != 0 {
			t.Fatalf("delete: %d %q", rec.Code, rec.Body)
		}
		checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: alice.token}), 401, "unauthorized")
		checkEnvelope(t, e.do(req{method: "DELETE", path: "/api/v1/users/" + alice.id, token: e.super}), 404, "not_found")
	})

	t.Run("no password or hash in any response or log", func(t *testing.T) {
		logs := e.logs.String()
		for _, secret := range []string{"alicepassword", "bobpassword1", "rootpassword", "newpassword1", "$argon2id$", e.super} {
			if strings.Contains(logs, secret) {
				t.Fatalf("logs contain %q", secret)
			}
		}
	})
}

func fieldIs(field string) func(*testing.T, *httptest.ResponseRecorder, envelope) {
	return func(t *testing.T, _ *httptest.ResponseRecorder, env envelope) {
		t.Helper()
		var d struct {
			Errors []struct{ Field, Message string } `json:"errors"`
		}
		if err := json.Unmarshal(env.Error.Details, &d); err != nil || len(d.Errors) == 0 {
			t.Fatalf("details %s", env.Error.Details)
		}
		for _, fe := range d.Errors {
			if fe.Field == field && fe.Message != "" {
				return
			}
		}
		t.Fatalf("details %s do not name field %q", env.Error.Details, field)
	}
}

func decodeUser(t *testing.T, rec *httptest.ResponseRecorder, status int) map[string]any {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	var u map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &u); err != nil {
		t.Fatal(err)
	}
	want := []string{"id", "email", "full_name", "is_active", "is_superuser", "created_at"}
	if len(u) != len(want) {
		t.Fatalf("UserPublic has fields %v", u)
	}
	for _, k := range want {
		if _, ok := u[k]; !ok {
			t.Fatalf("UserPublic lacks %q: %v", k, u)
		}
	}
	if _, err := time.Parse(time.RFC3339, u["created_at"].(string)); err != nil {
		t.Fatalf("created_at: %v", err)
	}
	return u
}

// Two sign-ups for one email racing through the handler: exactly one 201,
// the rest 409, on every store (on Postgres the unique index decides).
func TestSignupRace(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, newStore(t))
			const n = 10
			codes := make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					codes[i] = e.do(req{method: "POST", path: "/api/v1/users", body: `{"email":"Race@example.com","password":"whatever123"}`}).Code
				})
			}
			wg.Wait()
			created := 0
			for _, c := range codes {
				switch c {
				case 201:
					created++
				case 409:
				default:
					t.Fatalf("unexpected status %d", c)
				}
			}
			if created != 1 {
				t.Fatalf("%d sign-ups succeeded: %v", created, codes)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, memory.NewUsers())
	cases := []struct {
		in   string
		keep bool
	}{
		{"abc-123_X.y:z", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"has space", false},
		{"<script>", false},
		{"ünïcode", false},
	}
	for _, c := range cases {
		rec := e.do(req{method: "GET", path: "/api/v1/nope", header: map[string]string{"X-Request-ID": c.in}})
		got := rec.Header().Get("X-Request-ID")
		env := checkEnvelope(t, rec, 404, "not_found")
		if c.keep && got != c.in {
			t.Fatalf("%q replaced by %q", c.in, got)
		}
		if !c.keep && (got == c.in || strings.Contains(rec.Body.String(), c.in)) {
			t.Fatalf("%q echoed", c.in)
		}
		if !c.keep && len(got) != 32 {
			t.Fatalf("generated id %q is not 32 hex", got)
		}
		if env.Error.RequestID != got {
			t.Fatal("body and header disagree")
		}
	}
}

func TestReadinessDrain(t *testing.T) {
	sp := newSpec(t)
	srv := service.NewServer(service.Config{}, service.Deps{
		Logger: slog.New(slog.DiscardHandler), Users: memory.NewUsers(),
		Tokens: service.NewTokens(testSecret, time.Hour), Hasher: service.NewArgon2id(64, 1, 1),
		Checks: []service.Check{{Name: "db", Func: func(context.Context) error { return nil }},
			{Name: "redis", Func: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, Timeout: 20 * time.Millisecond}},
	})
	get := func() (int, string) {
		rec := sp.serve(t, srv, httptest.NewRequest("GET", "/api/v1/health/ready", nil))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	if code, body := get(); code != 503 || body != `{"status":"unavailable","checks":{"db":"ok","redis":"fail"}}` {
		t.Fatalf("hung check: %d %s", code, body)
	}
	srv2 := service.NewServer(service.Config{}, service.Deps{
		Logger: slog.New(slog.DiscardHandler), Users: memory.NewUsers(),
		Tokens: service.NewTokens(testSecret, time.Hour), Hasher: service.NewArgon2id(64, 1, 1),
		Checks: []service.Check{{Name: "db", Func: func(context.Context) error { return nil }}, {Name: "redis"}},
	})
	srv2.Drain()
	rec := sp.serve(t, srv2, httptest.NewRequest("GET", "/api/v1/health/ready", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"status":"unavailable"`) {
		t.Fatalf("draining: %d %s", rec.Code, rec.Body)
	}
	rec = sp.serve(t, srv2, httptest.NewRequest("GET", "/health", nil))
	if rec.Code != 200 {
		t.Fatalf("/health while draining: %d", rec.Code)
	}
}

// Error envelopes and tokens are never cached or sniffed.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, memory.NewUsers())
	rec := e.do(req{method: "GET", path: "/api/v1/users/me"})
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("error headers: %v", rec.Header())
	}
	rec = e.do(req{method: "POST", path: "/auth/login", ctype: "application/x-www-form-urlencoded", body: "username=alice@example.com&password=alicepassword"})
	if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("token response: %d %v", rec.Code, rec.Header())
	}
}
