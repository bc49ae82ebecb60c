package postgres_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/bulwark-go/bulwark/service/user"
	"github.com/bulwark-go/bulwark/storage/postgres"
	"github.com/bulwark-go/bulwark/storage/postgres/pgtest"
	"github.com/bulwark-go/bulwark/storage/storagetest"
)

func openStore(t *testing.T) *postgres.Store { return pgtest.NewStore(t, postgres.Options{}) }

func TestUsersContract(t *testing.T) {
	storagetest.RunUserStore(t, func(t *testing.T) user.Store { return openStore(t) })
}

func TestMigrateIsIdempotent(t *testing.T) {
	s := openStore(t)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	var n int
	if err := s.Pool().QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migration files: %v", err)
	}
	if n != len(files) {
		t.Fatalf("schema_migrations has %d rows, want one per migration file (%d)", n, len(files))
	}
}

func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	s, err := postgres.Open(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1", postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(context.Background()); !errors.Is(err, user.ErrUnavailable) {
		t.Fatalf("Ping: %v, want ErrUnavailable", err)
	}
	if _, err := s.ByEmail(context.Background(), "a@b.co"); !errors.Is(err, user.ErrUnavailable) {
		t.Fatalf("ByEmail: %v, want ErrUnavailable", err)
	}
}
