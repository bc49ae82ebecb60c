package service

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/service/user"
	"github.com/google/uuid"
)

// allowAll is a rate store that counts keys and allows everything.
type allowAll struct{ keys *atomic.Int64 }

func (a allowAll) Hit(context.Context, string, time.Duration) (int64, time.Duration, error) {
	a.keys.Add(1)
	return 1, time.Minute, nil
}

// oneUser is a user store holding one user.
type oneUser struct {
	user.Store
	u user.User
}

func (o oneUser) ByID(_ context.Context, id uuid.UUID) (user.User, error) {
	if id != o.u.ID {
		return user.User{}, user.ErrNotFound
	}
	return o.u, nil
}

// The bearer token is verified once per request, by the authn step, though
// two steps need it (the limiter's identity, authentication): the token
// clock is read once per verification.
func TestTokenVerifiedOncePerRequest(t *testing.T) {
	var verifications, hits atomic.Int64
	tokens := NewTokens([]byte("0123456789abcdef0123456789abcdef"), time.Hour)
	id := uuid.New()
	tok, err := tokens.Issue(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	tokens.now = func() time.Time { verifications.Add(1); return time.Now() }
	srv := NewServer(Config{RateLimit: RateLimitConfig{Requests: 100, Window: time.Minute}}, Deps{
		Logger: slog.New(slog.DiscardHandler), Users: oneUser{u: user.User{ID: id, Email: "a@example.com", IsActive: true}},
		Tokens: tokens, Hasher: NewArgon2id(64, 1, 1), RateStore: allowAll{&hits},
	})
	for _, path := range []string{"/api/v1/users/me", "/api/v1/users/" + id.String()} {
		verifications.Store(0)
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, r)
		if rec.Code != 200 || rec.Header().Get("X-RateLimit-Limit") == "" {
			t.Fatalf("%s: %d (limit header %q)", path, rec.Code, rec.Header().Get("X-RateLimit-Limit"))
		}
		if n := verifications.Load(); n != 1 {
			t.Fatalf("%s: the token was verified %d times, want 1", path, n)
		}
	}
	if hits.Load() != 2 {
		t.Fatalf("the limiter decided %d times for 2 requests", hits.Load())
	}
}
