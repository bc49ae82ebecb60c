package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/bulwark-go/bulwark/service/user"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Tokens issues and verifies the HS256 access tokens (CONTRACT §1).
type Tokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
}

// NewTokens returns a Tokens signing with secret; tokens live for ttl.
func NewTokens(secret []byte, ttl time.Duration) *Tokens {
	return &Tokens{secret: secret, ttl: ttl, now: time.Now}
}

// Claims is what a verified access token says: whose it is, and the
// user's token version it was issued under.
type Claims struct {
	UserID  uuid.UUID
	Version int64
}

// tokenClaims is the JWT payload: the registered claims and "ver", the
// user's token version (user.User.TokenVersion) at issue.
type tokenClaims struct {
	jwt.RegisteredClaims
	Version *int64 `json:"ver,omitempty"`
}

// Issue returns a signed token whose subject is the user id and whose "ver"
// claim is the user's current token version.
func (t *Tokens) Issue(userID uuid.UUID, version int64) (string, error) {
	now := t.now()
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   userID.String(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		},
		Version: &version,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
}

// errBadToken covers every reason a token is refused; the reason is logged,
// the client only learns 401.
var errBadToken = errors.New("invalid token")

// Verify checks the signature (HS256 only: "none" and other algorithms are
// refused), the expiry (required), a user-id subject and the "ver" claim
// (required: a token without one predates token versions and is refused, so
// that no token escapes revocation; see docs/SECURITY.md).
func (t *Tokens) Verify(token string) (Claims, error) {
	var claims tokenClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", errBadToken, err)
	}
	id, err := uuid.Parse(claims.Subject)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: subject is not a user id", errBadToken)
	}
	if claims.Version == nil {
		return Claims{}, fmt.Errorf("%w: no token version", errBadToken)
	}
	return Claims{UserID: id, Version: *claims.Version}, nil
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// PasswordHasher hashes and checks passwords.
type PasswordHasher interface {
	Hash(password string) (string, error)
	Verify(password, hash string) (bool, error)
}

// Argon2id hashes with argon2id in the PHC string format.
type Argon2id struct {
	params *argon2id.Params
	dummy  string
}

// NewArgon2id returns a hasher with the given memory (KiB), iterations and
// parallelism. DefaultArgon2id follows the OWASP minimum (19 MiB, 2, 1).
func NewArgon2id(memoryKiB uint32, iterations uint32, parallelism uint8) *Argon2id {
	p := &argon2id.Params{Memory: memoryKiB, Iterations: iterations, Parallelism: parallelism, SaltLength: 16, KeyLength: 32}
	h := &Argon2id{params: p}
	h.dummy, _ = argon2id.CreateHash("dummy password for timing", p)
	return h
}

// DefaultArgon2id is NewArgon2id(19*1024, 2, 1).
func DefaultArgon2id() *Argon2id { return NewArgon2id(19*1024, 2, 1) }

// Hash returns the PHC-encoded argon2id hash of password.
func (h *Argon2id) Hash(password string) (string, error) {
	return argon2id.CreateHash(password, h.params)
}

// Verify reports whether password matches hash. An empty hash is checked
// against a dummy so unknown users cost as much as known ones.
func (h *Argon2id) Verify(password, hash string) (bool, error) {
	if hash == "" {
		_, _ = argon2id.ComparePasswordAndHash(password, h.dummy)
		return false, nil
	}
	return argon2id.ComparePasswordAndHash(password, hash)
}

// authenticate resolves the bearer token of r to an active user whose
// token version the token carries, or a 401. The token was verified once, by
// the authn step (authn.go); the user is read through the cache when it is
// on (entries are fenced: cache.go), so an authenticated read that hits the
// cache touches no database.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (UserPublic, error) {
	unauthorized := func(reason string, cause error) error {
		return &Error{Status: http.StatusUnauthorized, Message: reason, Err: cause}
	}
	a := authFrom(ctx)
	switch {
	case a == nil:
		return UserPublic{}, unauthorized("Not authenticated", nil)
	case a.err != nil:
		return UserPublic{}, unauthorized("Could not validate credentials", a.err)
	}
	acc, err := s.lookupAccount(ctx, a.claims.UserID)
	if errors.Is(err, user.ErrNotFound) {
		return UserPublic{}, unauthorized("Could not validate credentials", err)
	}
	if err != nil {
		return UserPublic{}, err
	}
	if !acc.IsActive {
		return UserPublic{}, unauthorized("Inactive user", nil)
	}
	if acc.TokenVersion != a.claims.Version {
		return UserPublic{}, unauthorized("Could not validate credentials", errRevoked)
	}
	return acc.UserPublic, nil
}

// errRevoked: the token was issued before the user's last password change
// or deactivation.
var errRevoked = errors.New("token revoked: issued under an older token version")

// identify is the rate limiter's Identify: the user id of a valid bearer
// token on r, as the authn step verified it.
func (s *Server) identify(r *http.Request) (string, bool) {
	if a := authFrom(r.Context()); a != nil && a.err == nil {
		return a.subject, true
	}
	return "", false
}

// EnsureSuperuser creates the first superuser (FIRST_SUPERUSER_EMAIL /
// FIRST_SUPERUSER_PASSWORD) unless a user with that email exists. It is
// idempotent and safe when several instances start at once.
func (s *Server) EnsureSuperuser(ctx context.Context, email, password string) error {
	norm, err := checkSuperuser(email, password)
	if err != nil {
		return err
	}
	if _, err := s.users.ByEmail(ctx, norm); err == nil {
		return nil
	} else if !errors.Is(err, user.ErrNotFound) {
		return err
	}
	if _, err := s.createUser(ctx, norm, password, nil, true); err != nil && !errors.Is(err, user.ErrConflict) {
		return err
	}
	return nil
}
