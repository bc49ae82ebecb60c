package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/bulwark-go/bulwark/service/user"
	"github.com/google/uuid"
)

// Users is an in-memory user.Store. Emails are unique
// case-insensitively, like the Postgres store's lower(email) index.
type Users struct {
	mu      sync.RWMutex
	byID    map[uuid.UUID]user.User
	byEmail map[string]uuid.UUID
}

// NewUsers returns an empty store.
func NewUsers() *Users {
	return &Users{byID: map[uuid.UUID]user.User{}, byEmail: map[string]uuid.UUID{}}
}

func emailKey(e string) string { return strings.ToLower(e) }

// Create stores u, or returns user.ErrConflict when the email or id is taken.
func (s *Users) Create(_ context.Context, u user.User) (user.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.byEmail[emailKey(u.Email)]; taken {
		return user.User{}, user.ErrConflict
	}
	if _, taken := s.byID[u.ID]; taken {
		return user.User{}, user.ErrConflict
	}
	s.byID[u.ID] = u
	s.byEmail[emailKey(u.Email)] = u.ID
	return u, nil
}

// ByID returns the user with id, or user.ErrNotFound.
func (s *Users) ByID(_ context.Context, id uuid.UUID) (user.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.byID[id]
	if !ok {
		return user.User{}, user.ErrNotFound
	}
	return u, nil
}

// ByEmail returns the user with email (any case), or user.ErrNotFound.
func (s *Users) ByEmail(ctx context.Context, email string) (user.User, error) {
	s.mu.RLock()
	id, ok := s.byEmail[emailKey(email)]
	s.mu.RUnlock()
	if !ok {
		return user.User{}, user.ErrNotFound
	}
	return s.ByID(ctx, id)
}

// List returns up to limit users from offset in creation order, and the total.
func (s *Users) List(_ context.Context, offset, limit int) ([]user.User, int, error) {
	s.mu.RLock()
	all := make([]user.User, 0, len(s.byID))
	for _, u := range s.byID {
		all = append(all, u)
	}
	s.mu.RUnlock()
	slices.SortFunc(all, func(a, b user.User) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID.String(), b.ID.String())
	})
	total := len(all)
	if offset >= total {
		return []user.User{}, total, nil
	}
	return all[offset:min(offset+limit, total)], total, nil
}

// Update applies upd to the user with id.
func (s *Users) Update(_ context.Context, id uuid.UUID, upd user.Update) (user.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return user.User{}, user.ErrNotFound
	}
	if upd.Email != nil && emailKey(*upd.Email) != emailKey(u.Email) {
		if _, taken := s.byEmail[emailKey(*upd.Email)]; taken {
			return user.User{}, user.ErrConflict
		}
		delete(s.byEmail, emailKey(u.Email))
		u.Email = *upd.Email
		s.byEmail[emailKey(u.Email)] = id
	} else if upd.Email != nil {
		u.Email = *upd.Email
	}
	if upd.SetFullName {
		u.FullName = upd.FullName
	}
	if upd.HashedPassword != nil {
		u.HashedPassword = *upd.HashedPassword
	}
	if upd.IsActive != nil {
		u.IsActive = *upd.IsActive
	}
	if upd.IsSuperuser != nil {
		u.IsSuperuser = *upd.IsSuperuser
	}
	if upd.BumpTokenVersion {
		u.TokenVersion++
	}
	s.byID[id] = u
	return u, nil
}

// Delete removes the user with id.
func (s *Users) Delete(_ context.Context, id uuid.UUID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return user.ErrNotFound
	}
	delete(s.byID, id)
	delete(s.byEmail, emailKey(u.Email))
	return nil
}

// Ping always succeeds.
func (s *Users) Ping(context.Context) error { return nil }
