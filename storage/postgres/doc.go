// Package postgres is the PostgreSQL implementation of service.UserStore on a
// pgx connection pool, with its schema migrations embedded and applied at
// start-up. Errors are mapped to the service's sentinels: unique violations
// (SQLSTATE 23505) to service.ErrConflict, a database that cannot be reached
// to service.ErrUnavailable.
package postgres
