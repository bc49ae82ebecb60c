package service_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/service/user"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// jsonRoutes are every route that decodes a JSON body.
var jsonRoutes = []struct{ method, path string }{
	{"POST", "/api/v1/users"},
	{"POST", "/auth/login"},
	{"PATCH", "/api/v1/users/{self}"},
	{"PATCH", "/api/v1/users/{other}"}, // as a superuser
}

// FuzzJSONBodies sends arbitrary bodies to every JSON route through the
// whole middleware chain: the answer is never a 500, and every non-2xx is
// the CONTRACT §2 envelope with the request's ID. Seed corpus:
// testdata/fuzz/FuzzJSONBodies (route index, body).
func FuzzJSONBodies(f *testing.F) {
	seeds := []string{
		`{"email":"a@example.com","password":"whatever123"}`,
		`{"username":"a@example.com","password":"whatever123"}`,
		`{"full_name":"x","email":"b@example.com","password":"newpassword1"}`,
		`{"is_superuser":true}`, `{"is_active":false}`, `{"email":null}`, `{"full_name":null}`,
		`{"email":5}`, `[1,2]`, `"str"`, `null`, `{}`, ``, `{"email":`, `{"a":1} {}`,
		strings.Repeat(`[`, 10000), strings.Repeat(`{"a":`, 3000) + `1` + strings.Repeat(`}`, 3000),
		"{\"email\":\"\xff@example.com\"}", `{"email":"аlice@example.com","password":"whatever123"}`,
		`{"email":"x@example.com'; DROP TABLE users;--","password":"whatever123"}`,
		`{"password":"` + strings.Repeat("p", 200) + `"}`, `{"email":"\u0000@example.com"}`,
		`{"EMAIL":"c@example.com","password":"whatever123"}`, `{"email":"a@example.com","email":"b@example.com"}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i%len(jsonRoutes)), s)
	}
	logger := slog.New(slog.DiscardHandler)
	tokens := service.NewTokens(testSecret, time.Hour)
	users := memory.NewUsers()
	srv := service.NewServer(service.Config{MaxBodyBytes: 64 << 10}, service.Deps{
		Logger: logger, Users: users, Tokens: tokens, Hasher: service.NewArgon2id(64, 1, 1),
	})
	if err := srv.EnsureSuperuser(context.Background(), "root@example.com", "rootpassword"); err != nil {
		f.Fatal(err)
	}
	root, err := users.ByEmail(context.Background(), "root@example.com")
	if err != nil {
		f.Fatal(err)
	}
	mk := func(email string) (string, string) {
		u, err := users.Create(context.Background(), user.User{ID: uuid.New(), Email: email, HashedPassword: "x", IsActive: true})
		if err != nil {
			f.Fatal(err)
		}
		tok, _ := tokens.Issue(u.ID, u.TokenVersion)
		return u.ID.String(), tok
	}
	selfID, selfTok := mk("self@example.com")
	otherID, _ := mk("other@example.com")
	rootTok, _ := tokens.Issue(root.ID, root.TokenVersion)

	f.Fuzz(func(t *testing.T, route uint8, body string) {
		rt := jsonRoutes[int(route)%len(jsonRoutes)]
		path, tok := rt.path, ""
		switch {
		case strings.HasSuffix(path, "{self}"):
			path, tok = strings.Replace(path, "{self}", selfID, 1), selfTok
		case strings.HasSuffix(path, "{other}"):
			path, tok = strings.Replace(path, "{other}", otherID, 1), rootTok
		}
		r := httptest.NewRequest(rt.method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, r)
		switch rec.Code {
		case 200, 201:
			return
		case 400, 401, 403, 409, 413, 415, 422:
		default:
			t.Fatalf("%s %s %q: status %d: %s", rt.method, rt.path, body, rec.Code, rec.Body)
		}
		var env struct {
			Error struct {
				Code      string          `json:"code"`
				Message   string          `json:"message"`
				RequestID string          `json:"request_id"`
				Details   json.RawMessage `json:"details"`
			} `json:"error"`
		}
		if rec.Header().Get("Content-Type") != "application/json" || json.Unmarshal(rec.Body.Bytes(), &env) != nil ||
			env.Error.Code != service.CodeForStatus(rec.Code) || env.Error.RequestID != rec.Header().Get("X-Request-ID") ||
			env.Error.Message == "" || len(env.Error.Details) == 0 {
			t.Fatalf("%s %s %q: %d is not the envelope: %s", rt.method, rt.path, body, rec.Code, rec.Body)
		}
		if len(body) >= 8 && strings.Contains(body, `"password"`) && strings.Contains(rec.Body.String(), "whatever123") {
			t.Fatalf("password echoed: %s", rec.Body)
		}
	})
}

// FuzzTokensVerify feeds arbitrary strings to Tokens.Verify: it never
// panics, and whatever it accepts is an unexpired HS256 token signed with
// the secret whose subject and "ver" claim are the returned ones. Seed corpus:
// testdata/fuzz/FuzzTokensVerify.
func FuzzTokensVerify(f *testing.F) {
	tokens := service.NewTokens(testSecret, time.Hour)
	id := uuid.New()
	good, _ := tokens.Issue(id, 0)
	sign := func(m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	exp := time.Now().Add(time.Hour).Unix()
	for _, s := range []string{
		good, "", ".", "..", "a.b.c", good + "x", strings.Replace(good, ".", "..", 1),
		algNone(id.String()),
		sign(jwt.SigningMethodHS512, testSecret, jwt.MapClaims{"sub": id.String(), "exp": exp}),
		sign(jwt.SigningMethodHS256, []byte("another secret another secret !!"), jwt.MapClaims{"sub": id.String(), "exp": exp}),
		sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": id.String()}),                                             // no exp
		sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": id.String(), "exp": time.Now().Add(-time.Minute).Unix()}), // expired
		sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "admin", "exp": exp}),
		sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": 5, "exp": "tomorrow"}),
		sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": id.String(), "exp": exp, "nbf": exp}),
		sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": id.String(), "exp": exp}),             // no ver
		sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": id.String(), "exp": exp, "ver": "1"}), // ver not a number
		sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": id.String(), "exp": exp, "ver": 7}),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		got, err := tokens.Verify(tok)
		if err != nil {
			return
		}
		var claims struct {
			jwt.RegisteredClaims
			Ver *int64 `json:"ver"`
		}
		parsed, perr := jwt.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return testSecret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
		if perr != nil || !parsed.Valid || claims.Subject != got.UserID.String() || claims.Ver == nil || *claims.Ver != got.Version {
			t.Fatalf("Verify accepted %q as %+v; independent check: %v, subject %q, ver %v", tok, got, perr, claims.Subject, claims.Ver)
		}
	})
}
