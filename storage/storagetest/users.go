package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/service/user"
	"github.com/google/uuid"
)

func newUser(t testing.TB, email string, created time.Time) user.User {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return user.User{ID: id, Email: email, HashedPassword: "$argon2id$fake", IsActive: true, CreatedAt: created.UTC().Truncate(time.Microsecond)}
}

func ptr[T any](v T) *T { return &v }

// RunUserStore runs the user.Store contract against stores made by
// newStore, which must return an empty store for each call.
func RunUserStore(t *testing.T, newStore func(t *testing.T) user.Store) {
	ctx := context.Background()
	base := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)

	t.Run("create and read back", func(t *testing.T) {
		s := newStore(t)
		u := newUser(t, "ann@example.com", base)
		u.FullName = ptr("Ann")
		got, err := s.Create(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		for _, read := range []func() (user.User, error){
			func() (user.User, error) { return s.ByID(ctx, u.ID) },
			func() (user.User, error) { return s.ByEmail(ctx, "ANN@example.com") },
		} {
			back, err := read()
			if err != nil {
				t.Fatal(err)
			}
			if !back.CreatedAt.Equal(u.CreatedAt) || back.Email != u.Email || *back.FullName != "Ann" ||
				back.HashedPassword != u.HashedPassword || !back.IsActive || back.IsSuperuser || back.ID != u.ID {
				t.Fatalf("read back %+v, want %+v", back, got)
			}
		}
	})

	t.Run("unknown ids and emails are ErrNotFound", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.ByID(ctx, uuid.New()); !errors.Is(err, user.ErrNotFound) {
			t.Fatalf("ByID: %v", err)
		}
		if _, err := s.ByEmail(ctx, "nobody@example.com"); !errors.Is(err, user.ErrNotFound) {
			t.Fatalf("ByEmail: %v", err)
		}
		if _, err := s.Update(ctx, uuid.New(), user.Update{FullName: ptr("x"), SetFullName: true}); !errors.Is(err, user.ErrNotFound) {
			t.Fatalf("Update: %v", err)
		}
		if err := s.Delete(ctx, uuid.New()); !errors.Is(err, user.ErrNotFound) {
			t.Fatalf("Delete: %v", err)
		}
	})

	t.Run("email is unique case-insensitively", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Create(ctx, newUser(t, "bob@example.com", base)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(ctx, newUser(t, "BOB@example.com", base)); !errors.Is(err, user.ErrConflict) {
			t.Fatalf("duplicate create: %v, want ErrConflict", err)
		}
		other, err := s.Create(ctx, newUser(t, "carl@example.com", base))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(ctx, other.ID, user.Update{Email: ptr("Bob@Example.com")}); !errors.Is(err, user.ErrConflict) {
			t.Fatalf("update to taken email: %v, want ErrConflict", err)
		}
	})

	t.Run("concurrent sign-ups with one email: exactly one wins", func(t *testing.T) {
		s := newStore(t)
		const n = 20
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { _, errs[i] = s.Create(ctx, newUser(t, "race@example.com", base)) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, user.ErrConflict):
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d creates succeeded, want exactly 1", ok)
		}
	})

	t.Run("update changes only the given fields", func(t *testing.T) {
		s := newStore(t)
		u := newUser(t, "dan@example.com", base)
		u.FullName = ptr("Dan")
		if _, err := s.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		got, err := s.Update(ctx, u.ID, user.Update{IsSuperuser: ptr(true), HashedPassword: ptr("$new")})
		if err != nil {
			t.Fatal(err)
		}
		if !got.IsSuperuser || got.HashedPassword != "$new" || got.Email != u.Email || got.FullName == nil || *got.FullName != "Dan" || !got.IsActive {
			t.Fatalf("after update: %+v", got)
		}
		got, err = s.Update(ctx, u.ID, user.Update{SetFullName: true, FullName: nil, Email: ptr("dan2@example.com"), IsActive: ptr(false)})
		if err != nil {
			t.Fatal(err)
		}
		if got.FullName != nil || got.Email != "dan2@example.com" || got.IsActive {
			t.Fatalf("after second update: %+v", got)
		}
		if _, err := s.ByEmail(ctx, "dan@example.com"); !errors.Is(err, user.ErrNotFound) {
			t.Fatalf("old email still found: %v", err)
		}
		if _, err := s.Create(ctx, newUser(t, "dan@example.com", base)); err != nil {
			t.Fatalf("old email should be free again: %v", err)
		}
	})

	t.Run("token version starts where created and is bumped only when asked", func(t *testing.T) {
		s := newStore(t)
		u := newUser(t, "tv@example.com", base)
		u.TokenVersion = 4
		got, err := s.Create(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if got.TokenVersion != 4 {
			t.Fatalf("created with version 4, read back %d", got.TokenVersion)
		}
		got, err = s.Update(ctx, u.ID, user.Update{FullName: ptr("x"), SetFullName: true})
		if err != nil || got.TokenVersion != 4 {
			t.Fatalf("update without bump: version %d, %v; want 4", got.TokenVersion, err)
		}
		for want := int64(5); want <= 6; want++ {
			got, err = s.Update(ctx, u.ID, user.Update{HashedPassword: ptr("$new"), BumpTokenVersion: true})
			if err != nil || got.TokenVersion != want || got.HashedPassword != "$new" {
				t.Fatalf("bump: version %d, %v; want %d", got.TokenVersion, err, want)
			}
		}
		// A bump alone is a write too.
		got, err = s.Update(ctx, u.ID, user.Update{BumpTokenVersion: true})
		if err != nil || got.TokenVersion != 7 {
			t.Fatalf("bare bump: version %d, %v; want 7", got.TokenVersion, err)
		}
		for _, read := range []func() (user.User, error){
			func() (user.User, error) { return s.ByID(ctx, u.ID) },
			func() (user.User, error) { return s.ByEmail(ctx, u.Email) },
		} {
			if back, err := read(); err != nil || back.TokenVersion != 7 {
				t.Fatalf("read back version %d, %v; want 7", back.TokenVersion, err)
			}
		}
		page, _, err := s.List(ctx, 0, 10)
		if err != nil || len(page) != 1 || page[0].TokenVersion != 7 {
			t.Fatalf("list: %+v %v", page, err)
		}
	})

	t.Run("concurrent bumps are each counted", func(t *testing.T) {
		s := newStore(t)
		u := newUser(t, "bumps@example.com", base)
		if _, err := s.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		const n = 20
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if _, err := s.Update(ctx, u.ID, user.Update{BumpTokenVersion: true}); err != nil {
					t.Errorf("bump: %v", err)
				}
			})
		}
		wg.Wait()
		if back, err := s.ByID(ctx, u.ID); err != nil || back.TokenVersion != n {
			t.Fatalf("after %d concurrent bumps: version %d, %v", n, back.TokenVersion, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		s := newStore(t)
		u := newUser(t, "eve@example.com", base)
		if _, err := s.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ByID(ctx, u.ID); !errors.Is(err, user.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
		if _, err := s.Create(ctx, newUser(t, "eve@example.com", base)); err != nil {
			t.Fatalf("email should be free after delete: %v", err)
		}
	})

	t.Run("list pages in creation order with the total", func(t *testing.T) {
		s := newStore(t)
		var ids []uuid.UUID
		for i := range 5 {
			u := newUser(t, fmt.Sprintf("u%d@example.com", i), base.Add(time.Duration(i)*time.Second))
			if _, err := s.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, u.ID)
		}
		page, total, err := s.List(ctx, 1, 3)
		if err != nil {
			t.Fatal(err)
		}
		if total != 5 || len(page) != 3 {
			t.Fatalf("total %d, page %d", total, len(page))
		}
		for i, u := range page {
			if u.ID != ids[i+1] {
				t.Fatalf("page[%d] = %s, want %s", i, u.ID, ids[i+1])
			}
		}
		page, total, err = s.List(ctx, 10, 3)
		if err != nil || total != 5 || len(page) != 0 {
			t.Fatalf("past the end: %v %d %d", err, total, len(page))
		}
	})

	t.Run("ping", func(t *testing.T) {
		if err := newStore(t).Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
