package service_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/golang-jwt/jwt/v5"
)

// withCredentialLimits turns the login and sign-up limiters on store.
func withCredentialLimits(store service.CredentialRateStore, login service.LoginLimitConfig) envOption {
	return func(s *envSetup) {
		s.deps.CredentialRateStore = store
		s.cfg.LoginLimit = login
	}
}

// forgeVersion signs a token for sub carrying ver (nil: no ver claim) with
// the test secret: what a token issued under that version looks like.
func forgeVersion(t *testing.T, sub string, ver *int64) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
	if ver != nil {
		claims["ver"] = *ver
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestCredentialLifecycle proves CONTRACT §10 "Credentials" through the
// whole chain, on every user store, with the cache off and on (memory and
// a real Redis): authentication then reads the token version through the
// fenced cache.
func TestCredentialLifecycle(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("no cache", func(t *testing.T) { runLifecycle(t, newEnv(t, newStore(t))) })
			for _, bk := range backends {
				t.Run("cache "+bk.name, func(t *testing.T) {
					b := bk.new(t)
					runLifecycle(t, newEnv(t, newStore(t), withCache(b.cache, time.Minute, semanticTimeout)))
				})
			}
		})
	}
}

func runLifecycle(t *testing.T, e *env) {
	me := func(tok string) int { return e.do(req{method: "GET", path: "/api/v1/users/me", token: tok}).Code }
	patch := func(tok, id, body string) int {
		return e.do(req{method: "PATCH", path: "/api/v1/users/" + id, token: tok, body: body}).Code
	}
	// Alice has two sessions; every GET warms the cache.
	second := e.login("alice@example.com", "alicepassword")
	for _, tok := range []string{e.alice.token, second} {
		if c := me(tok); c != 200 {
			t.Fatalf("before: %d", c)
		}
	}

	t.Run("tokens without the version claim, or with an old one, are refused", func(t *testing.T) {
		zero, old := int64(0), int64(-1)
		if c := me(forgeVersion(t, e.alice.id, &zero)); c != 200 {
			t.Fatalf("a well-formed token of the current version: %d, want 200", c)
		}
		for _, tok := range []string{forgeVersion(t, e.alice.id, nil), forgeVersion(t, e.alice.id, &old)} {
			checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: tok}), 401, "unauthorized")
		}
	})

	t.Run("a password change revokes every earlier token", func(t *testing.T) {
		if c := patch(e.alice.token, e.alice.id, `{"password":"alicepassword2","current_password":"alicepassword"}`); c != 200 {
			t.Fatalf("password change: %d", c)
		}
		for _, tok := range []string{e.alice.token, second} {
			checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: tok}), 401, "unauthorized")
			checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/" + e.alice.id, token: tok}), 401, "unauthorized")
		}
		rec := e.do(req{method: "POST", path: "/auth/login", ctype: "application/x-www-form-urlencoded",
			body: "username=alice@example.com&password=alicepassword"})
		checkEnvelope(t, rec, 401, "unauthorized")
		e.alice.token = e.login("alice@example.com", "alicepassword2")
		if c := me(e.alice.token); c != 200 {
			t.Fatalf("a token issued after the change: %d", c)
		}
	})

	t.Run("an email change keeps tokens", func(t *testing.T) {
		if c := patch(e.alice.token, e.alice.id, `{"email":"alice.b@example.com","current_password":"alicepassword2"}`); c != 200 {
			t.Fatalf("email change: %d", c)
		}
		if c := me(e.alice.token); c != 200 {
			t.Fatalf("after an email change: %d", c)
		}
	})

	t.Run("a superuser changes another account without current_password", func(t *testing.T) {
		bob := e.bob.token
		if c := patch(e.super, e.bob.id, `{"password":"bobpassword2"}`); c != 200 {
			t.Fatalf("superuser sets bob's password: %d", c)
		}
		checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: bob}), 401, "unauthorized")
		e.bob.token = e.login("bob@example.com", "bobpassword2")
		// ... but its own email needs its own current password.
		rec := e.do(req{method: "PATCH", path: "/api/v1/users/" + e.superID, token: e.super, body: `{"email":"root2@example.com"}`})
		checkEnvelope(t, rec, 422, "validation_error")
	})

	t.Run("deactivation revokes; reactivation does not revive old tokens", func(t *testing.T) {
		bob := e.bob.token
		if c := me(bob); c != 200 {
			t.Fatalf("before: %d", c)
		}
		if c := patch(e.super, e.bob.id, `{"is_active":false}`); c != 200 {
			t.Fatalf("deactivate: %d", c)
		}
		checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: bob}), 401, "unauthorized")
		if c := patch(e.super, e.bob.id, `{"is_active":true}`); c != 200 {
			t.Fatalf("reactivate: %d", c)
		}
		checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: bob}), 401, "unauthorized")
		if c := me(e.login("bob@example.com", "bobpassword2")); c != 200 {
			t.Fatalf("a fresh login after reactivation: %d", c)
		}
	})

	t.Run("a superuser demoted is refused superuser routes at once", func(t *testing.T) {
		other := e.signup("admin2@example.com", "admin2password")
		if c := patch(e.super, other.id, `{"is_superuser":true}`); c != 200 {
			t.Fatalf("promote: %d", c)
		}
		if c := e.do(req{method: "GET", path: "/api/v1/users", token: other.token}).Code; c != 200 {
			t.Fatalf("as superuser: %d", c)
		}
		if c := patch(e.super, other.id, `{"is_superuser":false}`); c != 200 {
			t.Fatalf("demote: %d", c)
		}
		checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users", token: other.token}), 403, "forbidden")
	})

	t.Run("deletion revokes", func(t *testing.T) {
		if c := e.do(req{method: "DELETE", path: "/api/v1/users/" + e.bob.id, token: e.super}).Code; c != 204 {
			t.Fatalf("delete: %d", c)
		}
		checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: e.bob.token}), 401, "unauthorized")
	})
}

// A wrong current_password is a password guess: counted against the same
// per-account limit as logins, so PATCH is no way around it; a right one
// is given back.
func TestCurrentPasswordCountsAgainstLoginLimit(t *testing.T) {
	const limit = 3
	e := newEnv(t, memory.NewUsers(), withRemote(remote(randomIP())),
		withCredentialLimits(memory.NewRateStore(nil), service.LoginLimitConfig{PerAccount: limit, PerIP: 100, Window: time.Minute}))
	path := "/api/v1/users/" + e.alice.id
	// A right current password spends nothing.
	for range limit + 2 {
		decodeUser(t, e.do(req{method: "PATCH", path: path, token: e.alice.token,
			body: `{"email":"alice@example.com","current_password":"alicepassword"}`}), 200)
	}
	for i := range limit {
		rec := e.do(req{method: "PATCH", path: path, token: e.alice.token, body: `{"password":"stolenpass1","current_password":"guess` + string(rune('a'+i)) + `"}`})
		env := checkEnvelope(t, rec, 403, "forbidden")
		if strings.Contains(rec.Body.String(), "guess") || strings.Contains(rec.Body.String(), "stolenpass1") {
			t.Fatalf("403 echoes a password: %s", env.Error.Message)
		}
	}
	rec := e.do(req{method: "PATCH", path: path, token: e.alice.token, body: `{"password":"stolenpass1","current_password":"alicepassword"}`})
	checkEnvelope(t, rec, 429, "rate_limited")
	if rec.Header().Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// The same budget as login: the account is locked there too, from anywhere.
	rec = e.do(req{method: "POST", path: "/auth/login", ctype: "application/x-www-form-urlencoded",
		body: "username=alice@example.com&password=alicepassword", remote: remote(randomIP())})
	checkEnvelope(t, rec, 429, "rate_limited")
	// Nothing was changed by the refused attempts.
	if c := e.do(req{method: "GET", path: "/api/v1/users/me", token: e.alice.token}).Code; c != 200 {
		t.Fatalf("alice's token after refused password changes: %d", c)
	}
}
