package user

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// Store errors. Implementations of Store return these (wrapped or not) so
// the API can answer 404, 409 and 503 without knowing the storage engine.
var (
	// ErrNotFound: no such user.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique constraint (the email) was violated.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the store cannot be reached or is shutting down.
	ErrUnavailable = errors.New("store unavailable")
)

// User is a stored user. It carries the password hash and is never encoded to
// a client, a log line, a span or a cache entry: the service's public view
// (service.UserPublic) is what leaves.
type User struct {
	ID             uuid.UUID
	Email          string
	FullName       *string
	HashedPassword string
	IsActive       bool
	IsSuperuser    bool
	CreatedAt      time.Time
	// TokenVersion is carried by every access token issued to the user (the
	// "ver" claim); a token is accepted only while it equals this. A
	// password change or deactivation raises it (Update.BumpTokenVersion),
	// which revokes every token issued before.
	TokenVersion int64
}

// LogValue keeps the hash out of logs even if a User is logged by mistake.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", u.ID.String()),
		slog.Bool("is_active", u.IsActive), slog.Bool("is_superuser", u.IsSuperuser))
}

// Update lists the fields to change; nil means unchanged. FullName is
// changed when SetFullName is true (FullName nil then clears it).
type Update struct {
	Email          *string
	SetFullName    bool
	FullName       *string
	HashedPassword *string
	IsActive       *bool
	IsSuperuser    *bool
	// BumpTokenVersion raises TokenVersion by one in the same write.
	BumpTokenVersion bool
}

// Store persists users. Emails are stored lower-cased by the API, and the
// store keeps them unique (ErrConflict).
type Store interface {
	Create(ctx context.Context, u User) (User, error)
	ByID(ctx context.Context, id uuid.UUID) (User, error)
	ByEmail(ctx context.Context, email string) (User, error)
	List(ctx context.Context, offset, limit int) ([]User, int, error)
	Update(ctx context.Context, id uuid.UUID, upd Update) (User, error)
	Delete(ctx context.Context, id uuid.UUID) error
	Ping(ctx context.Context) error
}
