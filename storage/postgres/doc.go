// Package postgres is the PostgreSQL implementation of user.Store on a
// pgx connection pool, with its schema migrations embedded and applied at
// start-up. Errors are mapped to the service's sentinels: unique violations
// (SQLSTATE 23505) to user.ErrConflict, a database that cannot be reached
// to user.ErrUnavailable.
package postgres
