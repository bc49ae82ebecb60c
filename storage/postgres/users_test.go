package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/postgres"
	"github.com/bulwark-go/bulwark/storage/postgres/pgtest"
	"github.com/bulwark-go/bulwark/storage/storagetest"
)

func openStore(t *testing.T) *postgres.Store { return pgtest.NewStore(t, postgres.Options{}) }

func TestUsersContract(t *testing.T) {
	storagetest.RunUserStore(t, func(t *testing.T) service.UserStore { return openStore(t) })
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
	if n != 1 {
		t.Fatalf("schema_migrations has %d rows, want 1", n)
	}
}

func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	s, err := postgres.Open(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1", postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(context.Background()); !errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("Ping: %v, want ErrUnavailable", err)
	}
	if _, err := s.ByEmail(context.Background(), "a@b.co"); !errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("ByEmail: %v, want ErrUnavailable", err)
	}
}
