package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/service/user"
	"github.com/exaring/otelpgx"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Options tune the store.
type Options struct {
	// TracerProvider and MeterProvider instrument the pool with otelpgx:
	// a span per query named after its operation ("SELECT", never the full
	// SQL text or its parameters), query metrics, and pool statistics
	// (pgxpool.*). Nil: no instrumentation.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// QueryTimeout bounds each store call (default 5s), so a database that
	// stops answering turns into 503s instead of hung requests.
	QueryTimeout time.Duration
	// ConnectTimeout bounds each new connection when the URL sets none
	// (default 3s).
	ConnectTimeout time.Duration
}

// Store is the Postgres user.Store.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
}

// Open creates the pool for url. It does not connect: call Migrate (or Ping)
// to find out whether the database is there.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := parseURL(url)
	if err != nil {
		return nil, fmt.Errorf("invalid database URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = cmpOr(opts.ConnectTimeout, 3*time.Second)
	}
	if opts.TracerProvider != nil || opts.MeterProvider != nil {
		tp, mp := opts.TracerProvider, opts.MeterProvider
		if tp == nil {
			tp = tracenoop.NewTracerProvider()
		}
		if mp == nil {
			mp = metricnoop.NewMeterProvider()
		}
		cfg.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTracerProvider(tp), otelpgx.WithMeterProvider(mp))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if opts.MeterProvider != nil {
		if err := otelpgx.RecordStats(pool, otelpgx.WithStatsMeterProvider(opts.MeterProvider)); err != nil {
			pool.Close()
			return nil, fmt.Errorf("pool metrics: %w", err)
		}
	}
	return &Store{pool: pool, timeout: cmpOr(opts.QueryTimeout, 5*time.Second)}, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Pool exposes the pool (for pool metrics and migrations).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Migrate applies the embedded migrations.
func (s *Store) Migrate(ctx context.Context) error { return classify(Migrate(ctx, s.pool)) }

// Close closes the pool, waiting for acquired connections to be released.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that a connection can be acquired and answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return classify(s.pool.Ping(ctx))
}

func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

const userColumns = "id, email, full_name, hashed_password, is_active, is_superuser, created_at, token_version"

func scanUser(row pgx.Row) (user.User, error) {
	var u user.User
	err := row.Scan(&u.ID, &u.Email, &u.FullName, &u.HashedPassword, &u.IsActive, &u.IsSuperuser, &u.CreatedAt, &u.TokenVersion)
	u.CreatedAt = u.CreatedAt.UTC()
	return u, classify(err)
}

// Create inserts u; a taken email is user.ErrConflict.
func (s *Store) Create(ctx context.Context, u user.User) (user.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return scanUser(s.pool.QueryRow(ctx,
		"INSERT INTO users ("+userColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING "+userColumns,
		u.ID, u.Email, u.FullName, u.HashedPassword, u.IsActive, u.IsSuperuser, u.CreatedAt, u.TokenVersion))
}

// ByID returns the user with id.
func (s *Store) ByID(ctx context.Context, id uuid.UUID) (user.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return scanUser(s.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", id))
}

// ByEmail returns the user with email, compared case-insensitively.
func (s *Store) ByEmail(ctx context.Context, email string) (user.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return scanUser(s.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE lower(email) = lower($1)", email))
}

// List returns a page of users in creation order and the total count.
func (s *Store) List(ctx context.Context, offset, limit int) ([]user.User, int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var total int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&total); err != nil {
		return nil, 0, classify(err)
	}
	rows, err := s.pool.Query(ctx,
		"SELECT "+userColumns+" FROM users ORDER BY created_at, id OFFSET $1 LIMIT $2", offset, limit)
	if err != nil {
		return nil, 0, classify(err)
	}
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (user.User, error) { return scanUser(row) })
	if err != nil {
		return nil, 0, classify(err)
	}
	return users, total, nil
}

// Update applies upd in one statement; absent fields keep their value.
func (s *Store) Update(ctx context.Context, id uuid.UUID, upd user.Update) (user.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return scanUser(s.pool.QueryRow(ctx, `UPDATE users SET
		email = COALESCE($2, email),
		full_name = CASE WHEN $3 THEN $4 ELSE full_name END,
		hashed_password = COALESCE($5, hashed_password),
		is_active = COALESCE($6, is_active),
		is_superuser = COALESCE($7, is_superuser),
		token_version = token_version + CASE WHEN $8 THEN 1 ELSE 0 END
		WHERE id = $1 RETURNING `+userColumns,
		id, upd.Email, upd.SetFullName, upd.FullName, upd.HashedPassword, upd.IsActive, upd.IsSuperuser, upd.BumpTokenVersion))
}

// Delete removes the user with id.
func (s *Store) Delete(ctx context.Context, id uuid.UUID) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, "DELETE FROM users WHERE id = $1", id)
	if err != nil {
		return classify(err)
	}
	if tag.RowsAffected() == 0 {
		return user.ErrNotFound
	}
	return nil
}

// classify maps pgx errors onto the service's sentinels. A server-reported
// error keeps its SQLSTATE meaning; anything that never reached a server
// (refused, reset, timed out, pool closed) means the database is unavailable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return user.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505":
			return fmt.Errorf("%w: unique violation on %s", user.ErrConflict, pgErr.ConstraintName)
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "53"), strings.HasPrefix(pgErr.Code, "57"):
			return fmt.Errorf("%w: %s", user.ErrUnavailable, pgErr.Code)
		}
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %v", user.ErrUnavailable, err)
}
